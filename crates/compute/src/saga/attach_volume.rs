//! Attaching a volume to a server: the mapping row was reserved (its
//! device taken) by the API → Cinder attachment create (volume
//! `reserved`) → attachment update with the host's connector (Cinder
//! exports it and gives the connection_info) → the host's agent plugs it
//! into the guest → `os-complete` (volume `in-use`). A failure undoes each
//! step: unplugged, attachment deleted (volume `available`), row gone.

use super::{Saga, SagaCtx, Step};
use crate::clients::attachment_of;
use crate::guest::volume_attachment;
use crate::states::VmState;
use crate::store::{self, bdms, bdms::Bdm};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const KIND: &str = "attach_volume";

/// What the saga carries.
#[derive(Serialize, Deserialize)]
pub struct Params {
    pub bdm_id: String,
    pub volume_id: String,
    #[serde(default)]
    pub action_id: Option<String>,
}

pub struct AttachVolume;

/// The saga's mapping row; an error when it vanished.
async fn bdm(ctx: &SagaCtx) -> Result<Bdm> {
    let p: Params = ctx.params()?;
    bdms::get(&ctx.svc.db, &p.bdm_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("block device mapping {} vanished", p.bdm_id)))
}

/// The instance is shelved-offloaded: no host to connect to; the
/// mapping and a completed attachment are recorded, and the unshelve
/// connects the volume (Nova's `_attach_volume_shelved_offloaded`).
pub async fn offloaded(ctx: &SagaCtx) -> Result<bool> {
    let i = ctx.instance().await?;
    Ok(i.vm_state == VmState::ShelvedOffloaded && i.host.is_none())
}

#[async_trait::async_trait]
impl Saga for AttachVolume {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(Reserve),
            Box::new(CreateAttachment),
            Box::new(Connect),
            Box::new(AttachOnHost),
            Box::new(Complete),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p: Params = ctx.params()?;
        ctx.record_event("compute_attach_volume", Ok(())).await;
        ctx.svc
            .notify_volume(
                &ctx.instance_id,
                "instance.volume_attach.end",
                &p.volume_id,
                None,
            )
            .await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        ctx.record_event("compute_attach_volume", Err(error)).await;
        let p: Params = ctx.params()?;
        ctx.svc
            .notify_volume(
                &ctx.instance_id,
                "instance.volume_attach.error",
                &p.volume_id,
                Some(error.message()),
            )
            .await;
        Ok(())
    }
}

/// The API reserved the row (and its device) before the saga began; the
/// step's undo gives the device back.
pub struct Reserve;

#[async_trait::async_trait]
impl Step for Reserve {
    fn name(&self) -> &'static str {
        "reserve_device"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        bdm(ctx).await.map(|_| ())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p: Params = ctx.params()?;
        bdms::delete(&ctx.svc.db, &p.bdm_id).await
    }
}

/// Cinder attachment create (found again when an earlier run made it).
pub struct CreateAttachment;

#[async_trait::async_trait]
impl Step for CreateAttachment {
    fn name(&self) -> &'static str {
        "create_attachment"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let b = bdm(ctx).await?;
        if b.attachment_id.is_some() {
            return Ok(());
        }
        let id = create_attachment(ctx, &b.volume_id).await?;
        bdms::update(&ctx.svc.db, &b.id, |x| x.attachment_id = Some(id)).await?;
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p: Params = ctx.params()?;
        let Some(b) = bdms::get(&ctx.svc.db, &p.bdm_id).await? else {
            return Ok(());
        };
        delete_attachment(ctx, &b).await?;
        bdms::update(&ctx.svc.db, &b.id, |x| {
            x.attachment_id = None;
            x.connection_info = None;
        })
        .await?;
        Ok(())
    }
}

/// The attachment of `volume_id` to the saga's instance, made unless an
/// earlier run of the step made it already.
pub async fn create_attachment(ctx: &SagaCtx, volume_id: &str) -> Result<String> {
    let volumes = &ctx.svc.volume;
    let volume = volumes
        .get_volume(volume_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Volume {volume_id} could not be found.")))?;
    if let Some(id) = attachment_of(&volume, &ctx.instance_id) {
        return Ok(id);
    }
    let a = volumes
        .create_attachment(volume_id, &ctx.instance_id)
        .await?;
    a["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Internal("Cinder returned an attachment without an id".into()))
}

/// Delete the mapping's attachment: the recorded one, or the one Cinder
/// lists for the instance (a create whose answer was not recorded).
pub async fn delete_attachment(ctx: &SagaCtx, b: &Bdm) -> Result<()> {
    let volumes = &ctx.svc.volume;
    let id = match &b.attachment_id {
        Some(id) => Some(id.clone()),
        None if b.volume_id.is_empty() => None,
        None => volumes
            .get_volume(&b.volume_id)
            .await?
            .and_then(|v| attachment_of(&v, &b.instance_id)),
    };
    if let Some(id) = id {
        volumes.delete_attachment(&id).await?;
    }
    Ok(())
}

/// Cinder's connector for the instance's host (as os-brick describes a
/// host): its name and management address.
pub async fn connector(ctx: &SagaCtx, device: &str) -> Result<Value> {
    let i = ctx.instance().await?;
    let host = i
        .host
        .ok_or_else(|| Error::Conflict(format!("Instance {} has no host.", i.id)))?;
    let ip = store::hosts::get_node(&ctx.svc.db, &host)
        .await?
        .map(|n| n.host_ip)
        .unwrap_or_default();
    Ok(json!({
        "host": host, "ip": ip, "initiator": null, "platform": "x86_64",
        "os_type": "linux", "multipath": false, "mountpoint": device,
    }))
}

/// Attachment update with the connector: the connection_info, recorded.
pub struct Connect;

#[async_trait::async_trait]
impl Step for Connect {
    fn name(&self) -> &'static str {
        "connect"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if offloaded(ctx).await? {
            return Ok(());
        }
        let b = bdm(ctx).await?;
        let attachment = b
            .attachment_id
            .clone()
            .ok_or_else(|| Error::Internal("the mapping has no attachment".into()))?;
        let connector = connector(ctx, &b.device_name).await?;
        let a = ctx
            .svc
            .volume
            .update_attachment(&attachment, connector)
            .await?;
        let info = a["connection_info"].clone();
        if info.is_null() {
            return Err(Error::Internal(format!(
                "Cinder gave no connection_info for volume {}.",
                b.volume_id
            )));
        }
        bdms::update(&ctx.svc.db, &b.id, |x| x.connection_info = Some(info)).await?;
        Ok(())
    }

    /// Deleting the attachment (the step before) lets go of the export.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

/// The host's agent plugs the volume into the guest.
pub struct AttachOnHost;

#[async_trait::async_trait]
impl Step for AttachOnHost {
    fn name(&self) -> &'static str {
        "attach_on_host"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if offloaded(ctx).await? {
            return Ok(());
        }
        let b = bdm(ctx).await?;
        let volume = volume_attachment(&b).ok_or_else(|| {
            Error::Internal(format!(
                "Volume {} has no usable connection_info.",
                b.volume_id
            ))
        })?;
        ctx.agent(AgentRequest::AttachVolume {
            instance_id: ctx.instance_id.clone(),
            volume,
        })
        .await
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        if offloaded(ctx).await? {
            return Ok(());
        }
        let p: Params = ctx.params()?;
        ctx.agent(AgentRequest::DetachVolume {
            instance_id: ctx.instance_id.clone(),
            volume_id: p.volume_id,
        })
        .await
    }
}

/// `os-complete`: the volume is `in-use`; the row says attached.
pub struct Complete;

#[async_trait::async_trait]
impl Step for Complete {
    fn name(&self) -> &'static str {
        "complete"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let b = bdm(ctx).await?;
        let attachment = b
            .attachment_id
            .clone()
            .ok_or_else(|| Error::Internal("the mapping has no attachment".into()))?;
        ctx.svc.volume.complete_attachment(&attachment).await?;
        bdms::update(&ctx.svc.db, &b.id, |x| x.state = bdms::BdmState::Attached).await?;
        Ok(())
    }

    /// Deleting the attachment (undone earlier in the list) frees the volume.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
