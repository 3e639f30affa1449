//! shelve, shelveOffload and unshelve, with Nova's state checks; the work
//! is done by the `shelve_server`, `shelve_offload` and `unshelve_server`
//! sagas.

use super::conflict_state;
use crate::saga;
use crate::service::ComputeService;
use crate::states::{TaskState, VmState};
use crate::store::{self, instances::Instance};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::json;
use std::sync::Arc;

/// Where an unshelve goes (2.77, 2.91): `zone` absent keeps the pin,
/// `Some(None)` unpins, `Some(Some(z))` pins to `z`; `host` (admin).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnshelveTarget {
    pub zone: Option<Option<String>>,
    pub host: Option<String>,
}

/// The states Nova shelves from.
const SHELVABLE: [VmState; 4] = [
    VmState::Active,
    VmState::Stopped,
    VmState::Paused,
    VmState::Suspended,
];

impl ComputeService {
    /// shelve: a `<name>-shelved` snapshot image owned by the server's
    /// project, filled from the guest's disk; then, as with Nova's
    /// default `shelved_offload_time` of 0, the offload. A volume-backed
    /// server's disks are its volumes: as Nova does, no image is made and
    /// it is offloaded straight away (SHELVED_OFFLOADED, no
    /// `shelved_image_id`; the unshelve boots from the volume again).
    pub(super) async fn shelve(self: &Arc<Self>, ctx: &AuthContext, i: &Instance) -> Result<()> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some() || !SHELVABLE.contains(&i.vm_state) || i.host.is_none() {
            return Err(conflict_state("shelve", i));
        }
        if i.image_ref.is_empty() {
            self.begin_task(i, "shelve", &SHELVABLE, TaskState::Shelving)
                .await?;
            let action_id = self.record_action(ctx, i, "shelve").await?;
            crate::usage_notifications::notify(self, "compute.instance.shelve_offload.start", i)
                .await;
            let params = json!({ "action_id": action_id, "was": i.vm_state });
            saga::start(self, saga::shelve_offload::KIND, &i.id, params).await?;
            return Ok(());
        }
        let base = self.image.get(&i.image_ref).await?.unwrap_or_default();
        let mut body = json!({
            "name": format!("{}-shelved", i.name),
            "disk_format": "qcow2",
            "container_format": base["container_format"].as_str().unwrap_or("bare"),
            "instance_uuid": i.id,
            "image_type": "snapshot",
            "base_image_ref": i.image_ref,
            "user_id": i.user_id,
        });
        if let Some(props) = base.as_object() {
            for (k, v) in props.iter().filter(|(k, _)| k.starts_with("hw_")) {
                body[k] = v.clone();
            }
        }
        let image = self.image.create_as(&ctx.token, &body).await?;
        let image_id = image["id"].as_str().unwrap_or_default().to_owned();
        if let Err(e) = self
            .begin_task(i, "shelve", &SHELVABLE, TaskState::Shelving)
            .await
        {
            let _ = self.image.delete(&image_id).await;
            return Err(e);
        }
        let action_id = self.record_action(ctx, i, "shelve").await?;
        let params = json!({
            "action_id": action_id, "image_id": image_id, "was": i.vm_state, "offload": true,
        });
        saga::start(self, saga::shelve_server::KIND, &i.id, params).await?;
        Ok(())
    }

    /// shelveOffload (admin): a SHELVED server's guest and claim go.
    pub(super) async fn shelve_offload(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        self.begin_task(
            i,
            "shelveOffload",
            &[VmState::Shelved],
            TaskState::ShelvingOffloading,
        )
        .await?;
        let action_id = self.record_action(ctx, i, "shelveOffload").await?;
        crate::usage_notifications::notify(self, "compute.instance.shelve_offload.start", i).await;
        saga::start(
            self,
            saga::shelve_offload::KIND,
            &i.id,
            json!({ "action_id": action_id }),
        )
        .await?;
        Ok(())
    }

    /// unshelve: a SHELVED server is powered on where it is; an offloaded
    /// one is scheduled again, to `target`'s zone (2.77; 2.91 unpins with
    /// `null`) and host (2.91, admin), which only an offloaded server takes.
    pub(super) async fn unshelve(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        target: UnshelveTarget,
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        let allowed = [VmState::Shelved, VmState::ShelvedOffloaded];
        if i.task_state.is_some() || !allowed.contains(&i.vm_state) {
            return Err(conflict_state("unshelve", i));
        }
        self.check_unshelve_target(ctx, i, &target).await?;
        let offloaded = i.vm_state == VmState::ShelvedOffloaded;
        self.begin_task(i, "unshelve", &allowed, TaskState::Unshelving)
            .await?;
        let action_id = self.record_action(ctx, i, "unshelve").await?;
        let params = json!({
            "action_id": action_id, "offloaded": offloaded,
            "availability_zone": target.zone.clone().flatten(),
            "unpin": target.zone == Some(None), "host": target.host,
        });
        saga::start(self, saga::unshelve_server::KIND, &i.id, params).await?;
        Ok(())
    }

    /// Nova's checks of a zone or host given to unshelve: the server
    /// offloaded (409), the zone available (400), the host allowed
    /// (`unshelve_to_host`), known (400) and in the zone the server will
    /// be pinned to (409).
    async fn check_unshelve_target(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        target: &UnshelveTarget,
    ) -> Result<()> {
        if target.zone.is_none() && target.host.is_none() {
            return Ok(());
        }
        if i.vm_state != VmState::ShelvedOffloaded {
            return Err(Error::Conflict(format!(
                "Specifying an availability zone or a host when unshelving server \"{}\" with status \"{}\" is not supported. The server status must be SHELVED_OFFLOADED.",
                i.id,
                crate::states::status(i.vm_state, i.task_state)
            )));
        }
        if let Some(Some(z)) = &target.zone {
            let zones = self.zones().await?;
            if !zones.iter().any(|(name, up)| name == z && *up) {
                return Err(Error::BadRequest(
                    "The requested availability zone is not available".into(),
                ));
            }
        }
        let Some(host) = &target.host else {
            return Ok(());
        };
        self.authorize_project(
            ctx,
            "os_compute_api:os-shelve:unshelve_to_host",
            &i.project_id,
        )?;
        let service = store::hosts::get_service(&self.db, host, crate::scheduler::COMPUTE_BINARY)
            .await?
            .ok_or_else(|| Error::BadRequest(format!("Compute host {host} could not be found.")))?;
        let pinned = match &target.zone {
            Some(zone) => zone.clone(),
            None => i.pinned_availability_zone(),
        };
        if let Some(zone) = pinned.filter(|z| *z != service.zone) {
            return Err(Error::Conflict(format!(
                "Host \"{host}\" is not in the availability zone \"{zone}\"."
            )));
        }
        Ok(())
    }
}
