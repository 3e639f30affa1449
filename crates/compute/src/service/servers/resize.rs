//! Resize: on the same host, `resize` claims the new flavor and lets the
//! `resize_server` saga give the guest its new vCPUs, memory and disk
//! (VERIFY_RESIZE); `confirmResize` keeps it, `revertResize` (a
//! `revert_resize` saga) returns the guest to its old flavor and disk.
//! When the scheduler chooses another host (`migrate.rs`), the server
//! moves there (`migrate_server`), and confirm and revert act on both
//! hosts.

use super::conflict_state;
use crate::saga;
use crate::service::ComputeService;
use crate::states::{TaskState, VmState};
use crate::store::{self, instances::Instance};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::json;
use std::sync::Arc;

impl ComputeService {
    pub(crate) async fn resize(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        flavor_ref: &str,
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        let allowed = [VmState::Active, VmState::Stopped];
        if i.task_state.is_some() || !allowed.contains(&i.vm_state) || i.host.is_none() {
            return Err(conflict_state("resize", i));
        }
        let f = self
            .visible_flavor(ctx, flavor_ref)
            .await
            .map_err(|_| Error::BadRequest("Invalid flavorRef provided.".into()))?;
        if f.id == i.flavor.id {
            return Err(Error::BadRequest(
                "When resizing, instances must change flavor!".into(),
            ));
        }
        // A disk cannot shrink: the driver refuses, and the resize rolls
        // back (as Nova's libvirt driver does).
        if f.disk == 0 && i.flavor.disk != 0 {
            return Err(Error::BadRequest(
                "Resize to zero disk flavor is not allowed.".into(),
            ));
        }
        let extra_cores = (f.vcpus - i.flavor.vcpus).max(0);
        let extra_ram = (f.ram - i.flavor.ram).max(0);
        let q = self.quotas(&i.project_id).await?;
        let u = self.usage(&i.project_id).await?;
        for (res, used, more) in [("cores", u.cores, extra_cores), ("ram", u.ram, extra_ram)] {
            if q[res] >= 0 && more > 0 && used + more > q[res] {
                return Err(Error::Forbidden(format!(
                    "Quota exceeded for {res}: Requested {more}, but already used {used} of {} {res}",
                    q[res]
                )));
            }
        }
        if let Some(dest) = self.resize_destination(i, &f).await? {
            return self.start_move(ctx, i, f, &dest, "resize").await;
        }
        store::instances::update(&self.db, &i.id, |x| {
            if x.task_state.is_some() || !allowed.contains(&x.vm_state) {
                return Err(conflict_state("resize", x));
            }
            x.new_flavor = Some(f.clone());
            x.old_vm_state = Some(x.vm_state);
            x.task_state = Some(TaskState::ResizePrep);
            Ok(())
        })
        .await?;
        let action_id = self.record_action(ctx, i, "resize").await?;
        store::migrations::add_migration(
            &self.db,
            &store::migrations::MigrationRow {
                instance_uuid: i.id.clone(),
                source_compute: i.host.clone(),
                source_node: i.node.clone().or_else(|| i.host.clone()),
                old_flavor_id: i.flavor.id.clone(),
                new_flavor_id: f.id.clone(),
                status: "pre-migrating".into(),
                migration_type: "resize".into(),
                user_id: Some(ctx.user_id.clone()),
                project_id: ctx.project_id.clone(),
                ..Default::default()
            },
        )
        .await?;
        saga::start(
            self,
            saga::resize_server::KIND,
            &i.id,
            json!({ "action_id": action_id }),
        )
        .await?;
        Ok(())
    }

    /// Keep the new flavor: the old claim goes, the host drops what it
    /// kept for a revert.
    pub(crate) async fn confirm_resize(&self, ctx: &AuthContext, i: &Instance) -> Result<()> {
        if i.vm_state != VmState::Resized || i.task_state.is_some() {
            return Err(conflict_state("confirmResize", i));
        }
        store::instances::update(&self.db, &i.id, |x| {
            if x.vm_state != VmState::Resized || x.task_state.is_some() {
                return Err(conflict_state("confirmResize", x));
            }
            x.task_state = Some(TaskState::ResizeConfirming);
            Ok(())
        })
        .await?;
        // After a move, the source host drops its stopped copy; after a
        // resize on the host, what it kept for a revert.
        let target = match self.pending_move(i).await? {
            Some(m) => m.source_compute.map(|host| {
                let request = AgentRequest::ConfirmMigration {
                    instance_id: i.id.clone(),
                };
                (host, request)
            }),
            None => i.host.clone().map(|host| {
                let request = AgentRequest::ConfirmResize {
                    instance_id: i.id.clone(),
                };
                (host, request)
            }),
        };
        if let Some((host, request)) = target {
            // What the host kept for a revert is only disk space: a host
            // that does not answer now drops it when the guest goes.
            if let Err(e) = self.agent(&host, request).await {
                tracing::warn!(instance = %i.id, host = %host, error = %e, "confirming on the host failed");
            }
        }
        store::hosts::release(&self.db, &i.id, "instance").await?;
        store::hosts::rename_claim(&self.db, &i.id, "resize", "instance").await?;
        store::instances::update(&self.db, &i.id, |x| {
            x.old_flavor = None;
            x.task_state = None;
            x.vm_state = x.old_vm_state.take().unwrap_or(VmState::Active);
            Ok(())
        })
        .await?;
        self.record_action(ctx, i, "confirmResize").await?;
        store::migrations::set_migration_status(&self.db, &i.id, "confirmed").await?;
        Ok(())
    }

    /// Return to the old flavor: a `revert_resize` saga does it on the host.
    pub(crate) async fn revert_resize(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
    ) -> Result<()> {
        if i.vm_state == VmState::Resized && i.task_state.is_none() {
            if let Some(m) = self.pending_move(i).await? {
                return self.revert_move(ctx, i, &m).await;
            }
        }
        self.begin_task(
            i,
            "revertResize",
            &[VmState::Resized],
            TaskState::ResizeReverting,
        )
        .await?;
        let action_id = self.record_action(ctx, i, "revertResize").await?;
        saga::start(
            self,
            saga::revert_resize::KIND,
            &i.id,
            json!({ "action_id": action_id }),
        )
        .await?;
        Ok(())
    }
}
