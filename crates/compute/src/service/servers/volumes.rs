//! `os-volume_attachments`: a server's volumes, attaching one (the
//! `attach_volume` saga) and detaching one (`detach_volume`), with Nova's
//! state checks and messages; the `volume-extended` event Cinder sends
//! when an attached volume grew; the `instance.volume_*` notifications.

use super::conflict_state;
use crate::saga;
use crate::service::ComputeService;
use crate::states::VmState;
use crate::store::{self, bdms, bdms::Bdm, instances::Instance, sagas::SagaRow};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// What `POST os-volume_attachments` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeAttachRequest {
    pub volume_id: String,
    pub device: Option<String>,
    pub tag: Option<String>,
    pub delete_on_termination: bool,
    /// From 2.60 a multiattach volume may be attached.
    pub multiattach_allowed: bool,
    /// From 2.20 a shelved(-offloaded) server takes volumes.
    pub shelved_allowed: bool,
}

/// Nova's `check_instance_state` for attach and detach. A
/// shelved-offloaded server has no host: its mapping is recorded and the
/// volume connected when it is unshelved (2.20).
const ATTACHABLE: [VmState; 7] = [
    VmState::Active,
    VmState::Paused,
    VmState::Stopped,
    VmState::Resized,
    VmState::Suspended,
    VmState::Shelved,
    VmState::ShelvedOffloaded,
];

/// How long an attach or detach request waits for its saga before
/// answering (the saga goes on after).
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

fn not_attached(i: &Instance, volume_id: &str) -> Error {
    Error::NotFound(format!(
        "Volume {volume_id} is not attached to instance {}.",
        i.id
    ))
}

impl ComputeService {
    /// The server's volume mappings (those with a volume).
    pub fn volume_attachments<'a>(&self, i: &'a Instance) -> Vec<&'a Bdm> {
        i.bdms.iter().filter(|b| !b.volume_id.is_empty()).collect()
    }

    /// One mapping of the server; 404 when the volume is not attached.
    pub fn volume_attachment<'a>(&self, i: &'a Instance, volume_id: &str) -> Result<&'a Bdm> {
        i.bdms
            .iter()
            .find(|b| b.volume_id == volume_id)
            .ok_or_else(|| not_attached(i, volume_id))
    }

    /// Nova's checks: unlocked, no task, an attachable state, shelved ones
    /// only from 2.20 (`_check_request_version`).
    fn check_volume_state(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        action: &str,
        shelved_allowed: bool,
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        let offloaded = i.vm_state == VmState::ShelvedOffloaded;
        let shelved = offloaded || i.vm_state == VmState::Shelved;
        if i.task_state.is_some()
            || !ATTACHABLE.contains(&i.vm_state)
            || (i.host.is_none() && !offloaded)
            || (shelved && !shelved_allowed)
        {
            return Err(conflict_state(action, i));
        }
        Ok(())
    }

    /// Attach a volume: the caller must see it, it must be `available`
    /// (or multiattach), the device free. Answers once the volume is
    /// attached (or after [`ANSWER_WITHIN`], the saga going on).
    pub async fn attach_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        req: VolumeAttachRequest,
    ) -> Result<Bdm> {
        self.check_volume_state(ctx, i, "attach_volume", req.shelved_allowed)?;
        let project = ctx.project_id.clone().unwrap_or_default();
        let volume = self
            .volume
            .get_volume_as(&ctx.token, &project, &req.volume_id)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("Volume {} could not be found.", req.volume_id))
            })?;
        if i.bdms.iter().any(|b| b.volume_id == req.volume_id) {
            return Err(Error::BadRequest(format!(
                "Invalid volume: volume {} already attached",
                req.volume_id
            )));
        }
        check_multiattach(&volume, req.multiattach_allowed)?;
        check_available(&volume)?;
        let device = self.pick_device(i, req.device.as_deref())?;
        let b = Bdm {
            id: uuid::Uuid::new_v4().to_string(),
            instance_id: i.id.clone(),
            volume_id: req.volume_id.clone(),
            device_name: device,
            delete_on_termination: req.delete_on_termination,
            tag: req.tag.clone(),
            ..Default::default()
        };
        let action_id = self.record_action(ctx, i, "attach_volume").await?;
        let params = json!({"bdm_id": b.id, "volume_id": b.volume_id, "action_id": action_id});
        let saga_id = uuid::Uuid::new_v4().to_string();
        let kind = saga::attach_volume::KIND;
        bdms::insert_with_saga(&self.db, &b, &saga_id, kind, &params)
            .await
            .map_err(|e| match e {
                Error::Conflict(m) => Error::BadRequest(m),
                e => e,
            })?;
        self.notify_volume(&i.id, "instance.volume_attach.start", &b.volume_id, None)
            .await;
        let row = SagaRow {
            id: saga_id.clone(),
            kind: kind.into(),
            instance_id: i.id.clone(),
            state: "running".into(),
            params,
        };
        saga::spawn(self, row);
        self.await_saga(&saga_id).await?;
        Ok(b)
    }

    /// The device a new volume gets: the one asked for when it is free,
    /// else the next `/dev/vdX` after the root disk and the others.
    fn pick_device(&self, i: &Instance, asked: Option<&str>) -> Result<String> {
        let mut taken: Vec<String> = i.bdms.iter().map(|b| b.device_name.clone()).collect();
        if !i.bdms.iter().any(|b| b.boot_index == Some(0)) {
            taken.push("/dev/vda".into());
        }
        // The flavor's ephemeral disk and swap follow the root (libvirt's layout).
        if i.flavor.ephemeral > 0 {
            taken.push("/dev/vdb".into());
        }
        if i.flavor.swap > 0 {
            let next = bdms::next_device(&taken).unwrap_or_default();
            taken.push(next);
        }
        match asked.filter(|d| !d.is_empty()) {
            Some(d) if !bdms::valid_device(d) => Err(Error::BadRequest(format!(
                "The supplied device path ({d}) is invalid."
            ))),
            Some(d) if taken.iter().any(|t| t == d) => Err(Error::BadRequest(format!(
                "The supplied device path ({d}) is in use."
            ))),
            Some(d) => Ok(d.to_owned()),
            None => bdms::next_device(&taken).ok_or_else(|| {
                Error::BadRequest("No free disk device names for prefix 'vd'".into())
            }),
        }
    }

    /// Wait (bounded) for a saga to end; its failure becomes the answer.
    async fn await_saga(&self, saga_id: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
        loop {
            let notified = self.saga_finished.notified();
            match store::sagas::outcome(&self.db, saga_id).await? {
                Some((state, _)) if state == "done" => return Ok(()),
                Some((state, error)) if state == "failed" => {
                    let m = error.unwrap_or_else(|| "The operation failed.".into());
                    return Err(if m.starts_with("Invalid volume") {
                        Error::BadRequest(m)
                    } else {
                        Error::Conflict(m)
                    });
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    /// Detach a volume: 404 when it is not attached, 409 in a state Nova
    /// refuses; the boot volume stays (Nova: 400).
    pub async fn detach_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        volume_id: &str,
        shelved_allowed: bool,
    ) -> Result<()> {
        let b = self.volume_attachment(i, volume_id)?.clone();
        self.check_volume_state(ctx, i, "detach_volume", shelved_allowed)?;
        if b.boot_index == Some(0) {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Can't detach root device volume {volume_id}"
            )));
        }
        if b.state != bdms::BdmState::Attached {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Invalid input received: Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach. (volume {volume_id})"
            )));
        }
        let action_id = self.record_action(ctx, i, "detach_volume").await?;
        self.notify_volume(&i.id, "instance.volume_detach.start", volume_id, None)
            .await;
        let params = json!({"bdm_id": b.id, "volume_id": volume_id, "action_id": action_id});
        let saga_id = saga::start(self, saga::detach_volume::KIND, &i.id, params).await?;
        self.await_saga(&saga_id).await
    }

    /// `volume-extended`: the host's agent makes the guest see the new size.
    pub async fn extend_attached_volume(&self, instance_id: &str, volume_id: &str) -> Result<()> {
        let Some(i) = store::instances::get(&self.db, instance_id).await? else {
            return Ok(());
        };
        let b = self.volume_attachment(&i, volume_id)?;
        let (Some(host), Some(info)) = (&i.host, &b.connection_info) else {
            return Ok(());
        };
        let connection = serde_json::from_value(info.clone()).map_err(|e| {
            Error::Internal(format!("volume {volume_id} has bad connection_info: {e}"))
        })?;
        let size =
            self.volume.volume_size(volume_id).await?.ok_or_else(|| {
                Error::NotFound(format!("Volume {volume_id} could not be found."))
            })?;
        self.agent(
            host,
            AgentRequest::ExtendVolume {
                instance_id: i.id.clone(),
                volume_id: volume_id.to_owned(),
                connection,
                new_size_bytes: size * 1024 * 1024 * 1024,
            },
        )
        .await?;
        Ok(())
    }

    /// Nova's versioned `instance.volume_*` notification (best effort).
    pub async fn notify_volume(
        &self,
        instance_id: &str,
        event: &str,
        volume_id: &str,
        fault: Option<&str>,
    ) {
        let mut payload = json!({
            "nova_object.name": "InstanceActionVolumePayload",
            "nova_object.data": {"uuid": instance_id, "volume_id": volume_id},
        });
        if let Some(f) = fault {
            payload["nova_object.data"]["fault"] = json!({"exception_message": f});
        }
        let publisher = format!("nova-compute:{}", self.config.common.host);
        if let Err(e) = self.bus.notify(&publisher, event, payload).await {
            tracing::warn!(instance = %instance_id, error = %e, "notification not sent");
        }
    }
}

/// Before 2.60 Nova refuses a multiattach volume (attach or boot).
pub(super) fn check_multiattach(volume: &Value, allowed: bool) -> Result<()> {
    if volume["multiattach"] == true && !allowed {
        return Err(Error::BadRequest(
            "Multiattach volumes are only supported starting with compute API version 2.60.".into(),
        ));
    }
    Ok(())
}

/// A volume may be attached when `available`, or `in-use` when multiattach.
fn check_available(volume: &Value) -> Result<()> {
    let status = volume["status"].as_str().unwrap_or_default();
    let shared = volume["multiattach"] == true && status == "in-use";
    if status == "available" || shared {
        return Ok(());
    }
    Err(Error::BadRequest(format!(
        "Invalid volume: volume '{}' status must be 'available'. Currently in '{status}'",
        volume["id"].as_str().unwrap_or_default()
    )))
}
