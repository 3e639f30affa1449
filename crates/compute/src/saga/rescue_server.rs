//! rescue: the guest is booted from a disk made on the rescue image (the
//! server's own image unless another was asked for), its own disk
//! attached second — or, for a stable device rescue, every disk kept and
//! the rescue disk added on the image's device and bus: cache the image →
//! rescue on the host. The server is
//! then RESCUED and running. A failure returns the guest to its own disk
//! (powered off again when the server was SHUTOFF) and, as Nova's compute
//! manager does, leaves the server in ERROR with the reason.

use super::{Saga, SagaCtx, Step};
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, instances::Fault};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use ferrostack_hypervisor::{RescueBus, RescueDevice};
use serde::Deserialize;

pub const KIND: &str = "rescue_server";

const EVENT: &str = "compute_rescue_instance";

#[derive(Debug, Deserialize)]
struct Params {
    /// The image the rescue disk is made on.
    image_id: String,
    /// The state the server was rescued from.
    was: VmState,
    /// The image's `hw_rescue_device` / `hw_rescue_bus` (stable rescue).
    #[serde(default)]
    device: Option<RescueDevice>,
    #[serde(default)]
    bus: Option<RescueBus>,
}

pub struct RescueServer;

#[async_trait::async_trait]
impl Saga for RescueServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![Box::new(CacheRescueImage), Box::new(RescueGuest)]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.task_state = None;
            x.vm_state = VmState::Rescued;
            x.power_state = PowerState::Running;
            Ok(())
        })
        .await?;
        ctx.record_event(EVENT, Ok(())).await;
        crate::usage_notifications::notify(&ctx.svc, "compute.instance.rescue.end", &i).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        let was = ctx.params::<Params>()?.was;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.task_state = None;
            x.vm_state = VmState::Error;
            // The undo left the guest on its own disk, as it was.
            x.power_state = if was == VmState::Stopped {
                PowerState::Shutdown
            } else {
                PowerState::Running
            };
            x.fault = Some(Fault::of(error));
            Ok(())
        })
        .await?;
        ctx.record_event(EVENT, Err(error)).await;
        Ok(())
    }
}

struct CacheRescueImage;

#[async_trait::async_trait]
impl Step for CacheRescueImage {
    fn name(&self) -> &'static str {
        "cache_rescue_image"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let image_id = ctx.params::<Params>()?.image_id;
        ctx.agent(AgentRequest::CacheImage { image_id }).await
    }

    /// The cache keeps images for every guest; nothing to undo.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct RescueGuest;

#[async_trait::async_trait]
impl Step for RescueGuest {
    fn name(&self) -> &'static str {
        "rescue_guest"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        ctx.agent(AgentRequest::Rescue {
            instance_id: ctx.instance_id.clone(),
            image_id: p.image_id,
            device: p.device,
            bus: p.bus,
        })
        .await
    }

    /// Back on its own disk (the driver's unrescue is a no-op but for a
    /// start on a guest that was never rescued), and off again when the
    /// server was SHUTOFF. A guest the host does not have (a server in
    /// ERROR whose spawn failed) has nothing to undo.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let back = ctx
            .agent(AgentRequest::Unrescue {
                instance_id: ctx.instance_id.clone(),
            })
            .await;
        match back {
            Err(e) if matches!(e.base(), Error::NotFound(_)) => return Ok(()),
            other => other?,
        }
        if ctx.params::<Params>()?.was == VmState::Stopped {
            ctx.agent(AgentRequest::PowerOff {
                instance_id: ctx.instance_id.clone(),
            })
            .await?;
        }
        Ok(())
    }
}
