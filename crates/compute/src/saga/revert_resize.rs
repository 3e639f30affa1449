//! revertResize: the host returns the guest to its old flavor and its
//! disk from before the resize, then the new flavor's claim is released
//! and the server takes its old flavor and state again.

use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::states::{TaskState, VmState};
use crate::store::{self, hosts, instances::Fault};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};

pub const KIND: &str = "revert_resize";

pub struct RevertResize;

#[async_trait::async_trait]
impl Saga for RevertResize {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![Box::new(RevertGuest), Box::new(ReleaseNewClaim)]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if let Some(old) = x.old_flavor.take() {
                x.flavor = old;
            }
            x.task_state = None;
            x.vm_state = x.old_vm_state.take().unwrap_or(VmState::Active);
            Ok(())
        })
        .await?;
        store::migrations::set_migration_status(&ctx.svc.db, &ctx.instance_id, "reverted").await?;
        ctx.record_event("compute_revert_resize", Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        revert_failed(ctx, error).await
    }
}

/// A revert (on one host or back from another) that could not finish
/// leaves the server in ERROR with the fault, as Nova's compute does.
pub(super) async fn revert_failed(ctx: &SagaCtx, error: &Error) -> Result<()> {
    store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
        x.task_state = None;
        x.vm_state = VmState::Error;
        x.fault = Some(Fault::of(error));
        Ok(())
    })
    .await?;
    ctx.record_event("compute_revert_resize", Err(error)).await;
    Ok(())
}

struct RevertGuest;

#[async_trait::async_trait]
impl Step for RevertGuest {
    fn name(&self) -> &'static str {
        "revert_guest"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let mut i = ctx.instance().await?;
        if i.task_state != Some(TaskState::ResizeReverting) {
            return Err(Error::Conflict("The revert was cancelled.".into()));
        }
        if let Some(old) = i.old_flavor.clone() {
            i.flavor = old;
        }
        ctx.agent(AgentRequest::RevertResize {
            instance: instance_spec(&i),
        })
        .await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct ReleaseNewClaim;

#[async_trait::async_trait]
impl Step for ReleaseNewClaim {
    fn name(&self) -> &'static str {
        "release_new_claim"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        hosts::release(&ctx.svc.db, &ctx.instance_id, "resize").await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
