//! shelve offload: a SHELVED server's guest is destroyed and its host's
//! resources (its claim) released; it keeps its ports, volumes and
//! quota usage and is SHELVED_OFFLOADED with no host. A failure leaves it
//! SHELVED. Nova does this right after a shelve with its default
//! `shelved_offload_time` of 0, or when an admin asks (`shelveOffload`).

use super::{Saga, SagaCtx, Step};
use crate::scheduler::COMPUTE_BINARY;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, hosts};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};

pub const KIND: &str = "shelve_offload";

pub struct ShelveOffload;

#[async_trait::async_trait]
impl Saga for ShelveOffload {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![Box::new(DestroyGuest), Box::new(ReleaseHost)]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.vm_state = VmState::ShelvedOffloaded;
            x.power_state = PowerState::NoState;
            x.task_state = None;
            x.host = None;
            x.node = None;
            Ok(())
        })
        .await?;
        ctx.record_event("compute_shelve_offload_instance", Ok(()))
            .await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::ShelvingOffloading) {
                x.task_state = None;
            }
            Ok(())
        })
        .await?;
        ctx.record_event("compute_shelve_offload_instance", Err(error))
            .await;
        Ok(())
    }
}

struct DestroyGuest;

#[async_trait::async_trait]
impl Step for DestroyGuest {
    fn name(&self) -> &'static str {
        "offload_destroy"
    }

    /// A host that is down is skipped, as Nova's local offload does (its
    /// power-state sync removes the guest when it comes back).
    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = ctx.set_task(TaskState::ShelvingOffloading).await?;
        store::console_tokens::delete_for_instance(&ctx.svc.db, &i.id).await?;
        let Some(host) = &i.host else {
            return Ok(());
        };
        let up = match hosts::get_service(&ctx.svc.db, host, COMPUTE_BINARY).await? {
            Some(s) => ctx.svc.is_up(&s),
            None => false,
        };
        if !up {
            tracing::warn!(instance = %i.id, host = %host, "compute host is down; offloading locally");
            return Ok(());
        }
        ctx.svc
            .agent(
                host,
                AgentRequest::Destroy {
                    instance_id: i.id.clone(),
                },
            )
            .await
            .map(|_| ())
    }

    /// The snapshot holds the disk: the shelved server unshelves from it.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct ReleaseHost;

#[async_trait::async_trait]
impl Step for ReleaseHost {
    fn name(&self) -> &'static str {
        "offload_release_claims"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        hosts::release(&ctx.svc.db, &ctx.instance_id, "instance").await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
