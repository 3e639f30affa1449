//! Detaching a volume from a server: the host's agent unplugs it from
//! the guest → the Cinder attachment is deleted (the export goes, the
//! volume is `available`) → the mapping row goes. A failure on the host
//! leaves the volume attached; one at Cinder plugs it back in.

use super::attach_volume::{delete_attachment, offloaded, Params};
use super::{Saga, SagaCtx, Step};
use crate::guest::volume_attachment;
use crate::store::{bdms, bdms::Bdm};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};

pub const KIND: &str = "detach_volume";

pub struct DetachVolume;

async fn bdm(ctx: &SagaCtx) -> Result<Option<Bdm>> {
    let p: Params = ctx.params()?;
    bdms::get(&ctx.svc.db, &p.bdm_id).await
}

#[async_trait::async_trait]
impl Saga for DetachVolume {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(DetachOnHost),
            Box::new(DeleteAttachment),
            Box::new(DropMapping),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p: Params = ctx.params()?;
        ctx.record_event("compute_detach_volume", Ok(())).await;
        ctx.svc
            .notify_volume(
                &ctx.instance_id,
                "instance.volume_detach.end",
                &p.volume_id,
                None,
            )
            .await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        let p: Params = ctx.params()?;
        ctx.record_event("compute_detach_volume", Err(error)).await;
        ctx.svc
            .notify_volume(
                &ctx.instance_id,
                "instance.volume_detach.error",
                &p.volume_id,
                Some(error.message()),
            )
            .await;
        Ok(())
    }
}

/// The agent unplugs the volume (the row says detaching meanwhile).
struct DetachOnHost;

#[async_trait::async_trait]
impl Step for DetachOnHost {
    fn name(&self) -> &'static str {
        "detach_on_host"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: Params = ctx.params()?;
        bdms::update(&ctx.svc.db, &p.bdm_id, |b| {
            b.state = bdms::BdmState::Detaching
        })
        .await?;
        // Nothing is plugged into a shelved-offloaded server.
        if offloaded(ctx).await? {
            return Ok(());
        }
        ctx.agent(AgentRequest::DetachVolume {
            instance_id: ctx.instance_id.clone(),
            volume_id: p.volume_id.clone(),
        })
        .await
    }

    /// Plug it back in: the volume stays attached as it was.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let Some(b) = bdm(ctx).await? else {
            return Ok(());
        };
        let offloaded_now = offloaded(ctx).await?;
        if let Some(volume) = volume_attachment(&b).filter(|_| !offloaded_now) {
            ctx.agent(AgentRequest::AttachVolume {
                instance_id: ctx.instance_id.clone(),
                volume,
            })
            .await?;
        }
        bdms::update(&ctx.svc.db, &b.id, |x| x.state = bdms::BdmState::Attached).await?;
        Ok(())
    }
}

/// Cinder attachment delete: the volume is `available` again.
struct DeleteAttachment;

#[async_trait::async_trait]
impl Step for DeleteAttachment {
    fn name(&self) -> &'static str {
        "delete_attachment"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        match bdm(ctx).await? {
            Some(b) => delete_attachment(ctx, &b).await,
            None => Ok(()),
        }
    }

    /// An attachment deleted cannot be made again as it was; this step
    /// only fails before Cinder deleted it.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct DropMapping;

#[async_trait::async_trait]
impl Step for DropMapping {
    fn name(&self) -> &'static str {
        "drop_mapping"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: Params = ctx.params()?;
        bdms::delete(&ctx.svc.db, &p.bdm_id).await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
