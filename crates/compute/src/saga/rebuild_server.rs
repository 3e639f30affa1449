//! Rebuild: the guest is destroyed and built again from the instance's
//! (new) image with its ports and flavor: destroy → cache the image →
//! spawn → power off again if the server was stopped. Each step is
//! idempotent, so a restart resumes where it was; a failure leaves the
//! server in ERROR with the reason.

use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, instances::Fault};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::Deserialize;

pub const KIND: &str = "rebuild_server";

#[derive(Debug, Deserialize)]
struct Params {
    /// The server was SHUTOFF: it stays so after its rebuild, as in Nova.
    #[serde(default)]
    stopped: bool,
    /// 2.93: a volume-backed server's root volume is to get another image.
    #[serde(default)]
    reimage: bool,
}

pub struct RebuildServer;

#[async_trait::async_trait]
impl Saga for RebuildServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(ReimageVolume),
            Box::new(DestroyGuest),
            Box::new(CacheImage),
            Box::new(SpawnGuest),
            Box::new(KeepStopped),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let stopped = ctx.params::<Params>()?.stopped;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.task_state = None;
            if stopped {
                x.vm_state = VmState::Stopped;
                x.power_state = PowerState::Shutdown;
            } else {
                x.vm_state = VmState::Active;
                x.power_state = PowerState::Running;
            }
            x.fault = None;
            x.launched_at = Some(store::now());
            Ok(())
        })
        .await?;
        ctx.record_event("compute_rebuild_instance", Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.task_state = None;
            x.vm_state = VmState::Error;
            x.power_state = PowerState::NoState;
            x.fault = Some(Fault {
                code: 500,
                message: error.message().to_owned(),
                created: store::now(),
            });
            Ok(())
        })
        .await?;
        ctx.record_event("compute_rebuild_instance", Err(error))
            .await;
        Ok(())
    }
}

async fn set_task(ctx: &SagaCtx, task: TaskState) -> Result<store::instances::Instance> {
    store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
        x.task_state = Some(task);
        Ok(())
    })
    .await
}

struct DestroyGuest;

#[async_trait::async_trait]
impl Step for DestroyGuest {
    fn name(&self) -> &'static str {
        "destroy_guest"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        store::console_tokens::delete_for_instance(&ctx.svc.db, &ctx.instance_id).await?;
        ctx.agent(AgentRequest::Destroy {
            instance_id: ctx.instance_id.clone(),
        })
        .await
    }

    /// The old guest is gone for good; a failed rebuild ends in ERROR.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

/// 2.93's re-image of the root volume. Nova's compute has Cinder do it
/// (`os-reimage`, volume API 3.68) and waits for `volume-reimaged`; the
/// volume service here has no re-image, so this fails as Nova's compute
/// does when Cinder's re-image fails (the server in ERROR with Nova's
/// fault) — before the guest is destroyed, so nothing else is lost.
struct ReimageVolume;

#[async_trait::async_trait]
impl Step for ReimageVolume {
    fn name(&self) -> &'static str {
        "reimage_volume"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if !ctx.params::<Params>()?.reimage {
            return Ok(());
        }
        Err(Error::Unavailable(
            "Failed to rebuild volume backed instance.".into(),
        ))
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct CacheImage;

#[async_trait::async_trait]
impl Step for CacheImage {
    fn name(&self) -> &'static str {
        "cache_image"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = set_task(ctx, TaskState::RebuildBlockDeviceMapping).await?;
        if i.image_ref.is_empty() {
            // Volume-backed: no image disk to make.
            return Ok(());
        }
        ctx.agent(AgentRequest::CacheImage {
            image_id: i.image_ref.clone(),
        })
        .await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct SpawnGuest;

#[async_trait::async_trait]
impl Step for SpawnGuest {
    fn name(&self) -> &'static str {
        "spawn"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = set_task(ctx, TaskState::RebuildSpawning).await?;
        let config_drive = ctx.config_drive(&i).await?;
        ctx.agent(AgentRequest::Spawn {
            instance: instance_spec(&i),
            config_drive,
        })
        .await
    }

    /// Leave no half-built guest behind.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        ctx.agent(AgentRequest::Destroy {
            instance_id: ctx.instance_id.clone(),
        })
        .await
    }
}

struct KeepStopped;

#[async_trait::async_trait]
impl Step for KeepStopped {
    fn name(&self) -> &'static str {
        "keep_stopped"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if !ctx.params::<Params>()?.stopped {
            return Ok(());
        }
        ctx.agent(AgentRequest::PowerOff {
            instance_id: ctx.instance_id.clone(),
        })
        .await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
