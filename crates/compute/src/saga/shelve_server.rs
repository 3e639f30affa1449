//! shelve: the guest is powered off and its disk snapshotted into the
//! image record the API made (`<name>-shelved`), through the same agent
//! path as createImage; the server is then SHELVED on its host. With
//! Nova's default `shelved_offload_time` of 0 the offload
//! ([`super::shelve_offload`]) is started at once. A failure deletes the
//! image and powers the guest back on when it was running.

use super::{Saga, SagaCtx, Step};
use crate::states::{PowerState, TaskState, VmState};
use crate::store;
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::Deserialize;
use serde_json::json;

pub const KIND: &str = "shelve_server";

#[derive(Debug, Deserialize)]
struct Params {
    image_id: String,
    /// The state the server was shelved from (restored on failure).
    was: VmState,
    /// Offload right after (Nova's `shelved_offload_time` 0).
    #[serde(default)]
    offload: bool,
}

pub struct ShelveServer;

#[async_trait::async_trait]
impl Saga for ShelveServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![Box::new(PowerOff), Box::new(Snapshot)]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.vm_state = VmState::Shelved;
            x.power_state = PowerState::Shutdown;
            x.task_state = p.offload.then_some(TaskState::ShelvingOffloading);
            x.shelved_image_id = Some(p.image_id.clone());
            x.shelved_at = Some(store::now());
            x.shelved_host = x.host.clone();
            Ok(())
        })
        .await?;
        ctx.record_event("compute_shelve_instance", Ok(())).await;
        if p.offload && i.task_state == Some(TaskState::ShelvingOffloading) {
            crate::usage_notifications::notify(
                &ctx.svc,
                "compute.instance.shelve_offload.start",
                &i,
            )
            .await;
            super::start(&ctx.svc, super::shelve_offload::KIND, &i.id, json!({})).await?;
        }
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        let p = ctx.params::<Params>()?;
        let was = p.was;
        // The API made the image before the first step: it goes however
        // far the saga came.
        ctx.svc.image.delete(&p.image_id).await?;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.task_state = None;
            // The undo powered a guest that ran back on.
            if was == VmState::Stopped {
                x.vm_state = VmState::Stopped;
                x.power_state = PowerState::Shutdown;
            } else {
                x.vm_state = VmState::Active;
                x.power_state = PowerState::Running;
            }
            Ok(())
        })
        .await?;
        ctx.record_event("compute_shelve_instance", Err(error))
            .await;
        Ok(())
    }
}

struct PowerOff;

#[async_trait::async_trait]
impl Step for PowerOff {
    fn name(&self) -> &'static str {
        "shelve_power_off"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        ctx.set_task(TaskState::Shelving).await?;
        ctx.agent(AgentRequest::PowerOff {
            instance_id: ctx.instance_id.clone(),
        })
        .await
    }

    /// A guest that was not stopped runs again (a guest already gone
    /// cannot be: the power-state sync records what is left).
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        if ctx.params::<Params>()?.was == VmState::Stopped {
            return Ok(());
        }
        let on = ctx
            .agent(AgentRequest::PowerOn {
                instance_id: ctx.instance_id.clone(),
            })
            .await;
        if let Err(e) = on {
            tracing::warn!(instance = %ctx.instance_id, error = %e, "guest not powered on again");
        }
        Ok(())
    }
}

struct Snapshot;

#[async_trait::async_trait]
impl Step for Snapshot {
    fn name(&self) -> &'static str {
        "shelve_snapshot"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        // Uploaded before a restart: nothing more to do.
        if let Some(image) = ctx.svc.image.get(&p.image_id).await? {
            if image["status"] == "active" {
                return Ok(());
            }
        }
        ctx.set_task(TaskState::ShelvingImagePendingUpload).await?;
        ctx.set_task(TaskState::ShelvingImageUploading).await?;
        ctx.agent(AgentRequest::Snapshot {
            instance_id: ctx.instance_id.clone(),
            image_id: p.image_id,
        })
        .await
    }

    /// The image record the API made goes, with any data uploaded.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        ctx.svc.image.delete(&p.image_id).await
    }
}
