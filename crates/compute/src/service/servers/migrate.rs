//! Moving a server between compute hosts: cold migration (`migrate`, a
//! resize the scheduler sends to another host) with its confirm and
//! revert, and evacuation's start. The destination is chosen here, so
//! that no host able to take the server is Nova's NoValidHost at once (a
//! 400); the work runs as the `migrate_server`, `revert_migration` and
//! `evacuate_server` sagas.

use crate::saga;
use crate::saga::evacuate_server::EvacuateParams;
use crate::saga::migrate_server::MigrateParams;
use crate::saga::revert_migration::RevertParams;
use crate::scheduler;
use crate::service::ComputeService;
use crate::states::{TaskState, VmState};
use crate::store::{self, catalog::Flavor, instances::Instance, migrations::MigrationRow};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use std::sync::Arc;

/// What the scheduler is asked for a move.
pub(crate) struct MoveRequest<'a> {
    pub flavor: &'a Flavor,
    /// The host asked for (2.56's `host`, evacuate's `host`).
    pub host: Option<&'a str>,
    /// Whether the server's own host may be chosen.
    pub same_host: bool,
}

impl ComputeService {
    /// The host the scheduler chooses for a move of `i` (the best by its
    /// weigher), `None` when no host passes its filters.
    pub(crate) async fn move_destination(
        &self,
        i: &Instance,
        r: &MoveRequest<'_>,
    ) -> Result<Option<String>> {
        let ignore: Vec<String> = match (&i.host, r.same_host) {
            (Some(h), false) => vec![h.clone()],
            _ => Vec::new(),
        };
        let req = scheduler::Request {
            flavor: r.flavor,
            availability_zone: None,
            image_properties: &serde_json::Value::Null,
            ignore_hosts: &ignore,
            only_hosts: None,
            host: r.host,
            node: None,
        };
        Ok(scheduler::candidates(self, &req)
            .await?
            .into_iter()
            .next()
            .map(|n| n.host))
    }

    /// `migrate` (admin): to another host, the scheduler's choice or
    /// `host` (2.56), through VERIFY_RESIZE as Nova's cold migration.
    pub(crate) async fn cold_migrate(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        host: Option<&str>,
    ) -> Result<()> {
        let r = MoveRequest {
            flavor: &i.flavor,
            host,
            same_host: false,
        };
        let dest = self.move_destination(i, &r).await?.ok_or_else(|| {
            Error::BadRequest(
                "No valid host was found. No valid host found for cold migrate".into(),
            )
        })?;
        self.start_move(ctx, i, i.flavor.clone(), &dest, "migrate")
            .await
    }

    /// A resize's destination when it is another host: `None` keeps the
    /// resize on the server's host (allowed by `allow_resize_to_same_host`
    /// and chosen by the weigher, or no host fits: the same-host resize
    /// then fails its claim and rolls back, as before multi-node).
    pub(crate) async fn resize_destination(
        &self,
        i: &Instance,
        flavor: &Flavor,
    ) -> Result<Option<String>> {
        let same_host = self.config.compute.allow_resize_to_same_host;
        let r = MoveRequest {
            flavor,
            host: None,
            same_host,
        };
        match self.move_destination(i, &r).await? {
            Some(h) if Some(&h) != i.host.as_ref() => Ok(Some(h)),
            Some(_) => Ok(None),
            None if same_host => Ok(None),
            None => Err(Error::BadRequest(
                "No valid host was found. No valid host found for resize".into(),
            )),
        }
    }

    /// Record the move (task, action, migration) and run `migrate_server`.
    pub(crate) async fn start_move(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        flavor: Flavor,
        dest: &str,
        action: &str,
    ) -> Result<()> {
        let source = i.host.clone().unwrap_or_default();
        let allowed = [VmState::Active, VmState::Stopped];
        store::instances::update(&self.db, &i.id, |x| {
            if x.task_state.is_some() || !allowed.contains(&x.vm_state) {
                return Err(super::conflict_state(action, x));
            }
            x.new_flavor = Some(flavor.clone());
            x.old_vm_state = Some(x.vm_state);
            x.task_state = Some(TaskState::ResizePrep);
            Ok(())
        })
        .await?;
        let action_id = self.record_action(ctx, i, action).await?;
        let migration_type = if flavor.id == i.flavor.id {
            "migration"
        } else {
            "resize"
        };
        store::migrations::add_migration(
            &self.db,
            &MigrationRow {
                instance_uuid: i.id.clone(),
                source_compute: Some(source.clone()),
                source_node: i.node.clone().or_else(|| Some(source.clone())),
                dest_compute: Some(dest.to_owned()),
                dest_node: Some(dest.to_owned()),
                dest_host: self.host_ip(dest).await?,
                old_flavor_id: i.flavor.id.clone(),
                new_flavor_id: flavor.id.clone(),
                status: "pre-migrating".into(),
                migration_type: migration_type.into(),
                user_id: Some(ctx.user_id.clone()),
                project_id: ctx.project_id.clone(),
                ..Default::default()
            },
        )
        .await?;
        let params = MigrateParams {
            action_id,
            dest: dest.to_owned(),
            source,
        };
        saga::start(self, saga::migrate_server::KIND, &i.id, to_value(&params)?).await?;
        Ok(())
    }

    /// A host's management address (the migration's `dest_host`).
    async fn host_ip(&self, host: &str) -> Result<Option<String>> {
        Ok(store::hosts::get_node(&self.db, host)
            .await?
            .map(|n| n.host_ip)
            .filter(|ip| !ip.is_empty()))
    }

    /// The migration a RESIZED server waits on, when it moved between
    /// hosts (`None`: a resize on its own host).
    pub(crate) async fn pending_move(&self, i: &Instance) -> Result<Option<MigrationRow>> {
        Ok(store::migrations::latest(&self.db, &i.id)
            .await?
            .filter(|m| m.status == "finished")
            .filter(|m| m.source_compute.is_some() && m.source_compute != m.dest_compute))
    }

    /// revertResize of a server that moved: the `revert_migration` saga.
    pub(crate) async fn revert_move(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        m: &MigrationRow,
    ) -> Result<()> {
        self.begin_task(
            i,
            "revertResize",
            &[VmState::Resized],
            TaskState::ResizeReverting,
        )
        .await?;
        let action_id = self.record_action(ctx, i, "revertResize").await?;
        let params = RevertParams {
            action_id,
            source: m.source_compute.clone().unwrap_or_default(),
            dest: i.host.clone().unwrap_or_default(),
        };
        saga::start(
            self,
            saga::revert_migration::KIND,
            &i.id,
            to_value(&params)?,
        )
        .await?;
        Ok(())
    }

    /// Evacuate to another host when one can take the server: the
    /// migration `accepted`, the `evacuate_server` saga started (the
    /// server ends stopped when it was, or from 2.95); `false` when none
    /// can (the caller records Nova's NoValidHost).
    pub(crate) async fn start_evacuation(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        args: &super::evacuate::EvacuateArgs,
        admin_pass: Option<String>,
    ) -> Result<bool> {
        let host = args.host.as_deref();
        let r = MoveRequest {
            flavor: &i.flavor,
            host,
            same_host: false,
        };
        if self.move_destination(i, &r).await?.is_none() {
            return Ok(false);
        }
        let allowed = [VmState::Active, VmState::Stopped, VmState::Error];
        let was = store::instances::update(&self.db, &i.id, |x| {
            if x.task_state.is_some() || !allowed.contains(&x.vm_state) {
                return Err(super::conflict_state("evacuate", x));
            }
            x.task_state = Some(TaskState::Rebuilding);
            Ok(())
        })
        .await?;
        let action_id = self.record_action(ctx, i, "evacuate").await?;
        let source = i.host.clone().unwrap_or_default();
        store::migrations::add_migration(
            &self.db,
            &MigrationRow {
                instance_uuid: i.id.clone(),
                source_compute: Some(source.clone()),
                source_node: i.node.clone().or_else(|| Some(source.clone())),
                dest_host: host.map(str::to_owned),
                old_flavor_id: i.flavor.id.clone(),
                new_flavor_id: i.flavor.id.clone(),
                status: "accepted".into(),
                migration_type: "evacuation".into(),
                user_id: Some(ctx.user_id.clone()),
                project_id: ctx.project_id.clone(),
                ..Default::default()
            },
        )
        .await?;
        let params = EvacuateParams {
            action_id,
            source,
            host: host.map(str::to_owned),
            was_stopped: was.vm_state == VmState::Stopped || args.stop_at_destination,
            admin_pass,
        };
        saga::start(self, saga::evacuate_server::KIND, &i.id, to_value(&params)?).await?;
        Ok(true)
    }
}

fn to_value<T: serde::Serialize>(p: &T) -> Result<serde_json::Value> {
    serde_json::to_value(p).map_err(|e| Error::Internal(format!("saga parameters: {e}")))
}
