//! Resize: claim the new flavor (the same host is allowed) → resize the
//! guest on its host → VERIFY_RESIZE. Confirm and revert (in
//! `service::servers`) then release one of the two claims.

use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::scheduler;
use crate::states::VmState;
use crate::store::{self, hosts};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};

pub const KIND: &str = "resize_server";

pub struct ResizeServer;

async fn new_flavor(ctx: &SagaCtx) -> Result<(store::instances::Instance, store::catalog::Flavor)> {
    let i = store::instances::get(&ctx.svc.db, &ctx.instance_id)
        .await?
        .ok_or_else(|| Error::Internal("instance record vanished".into()))?;
    let f = i
        .new_flavor
        .clone()
        .ok_or_else(|| Error::Internal("resize without a new flavor".into()))?;
    Ok((i, f))
}

#[async_trait::async_trait]
impl Saga for ResizeServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![Box::new(ClaimNewFlavor), Box::new(ResizeGuest)]
    }

    /// The migration record is finished before the server shows
    /// VERIFY_RESIZE, so whoever sees that state sees the record too.
    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let i = store::instances::get(&ctx.svc.db, &ctx.instance_id).await?;
        store::migrations::finish_migration(
            &ctx.svc.db,
            &ctx.instance_id,
            "finished",
            i.as_ref().and_then(|i| i.host.as_deref()),
        )
        .await?;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
            let new = i.new_flavor.clone().unwrap_or_default();
            i.old_flavor = Some(std::mem::replace(&mut i.flavor, new));
            i.new_flavor = None;
            i.vm_state = VmState::Resized;
            i.task_state = None;
            Ok(())
        })
        .await?;
        ctx.record_event("compute_resize_instance", Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        tracing::warn!(instance = %ctx.instance_id, error = %error, "resize failed and was rolled back");
        resize_rolled_back(ctx, error).await
    }
}

/// After a resize or cold migration unwound: the server back in the state
/// it had, the failure on its action, its migration record `error`.
pub(super) async fn resize_rolled_back(ctx: &SagaCtx, error: &Error) -> Result<()> {
    store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
        i.new_flavor = None;
        i.vm_state = i.old_vm_state.take().unwrap_or(VmState::Active);
        i.task_state = None;
        Ok(())
    })
    .await?;
    ctx.record_event("compute_resize_instance", Err(error))
        .await;
    store::migrations::finish_migration(&ctx.svc.db, &ctx.instance_id, "error", None).await
}

struct ClaimNewFlavor;

#[async_trait::async_trait]
impl Step for ClaimNewFlavor {
    fn name(&self) -> &'static str {
        "claim_new_flavor"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let (i, f) = new_flavor(ctx).await?;
        let host = i.host.clone().unwrap_or_default();
        let node = hosts::get_node(&ctx.svc.db, &host)
            .await?
            .ok_or_else(scheduler::no_valid_host)?;
        let ok = hosts::claim(
            &ctx.svc.db,
            &i.id,
            "resize",
            &host,
            scheduler::resources_of(&f),
            scheduler::limits_of(&ctx.svc, &node),
        )
        .await?;
        if !ok {
            return Err(scheduler::no_valid_host());
        }
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        hosts::release(&ctx.svc.db, &ctx.instance_id, "resize").await
    }
}

struct ResizeGuest;

#[async_trait::async_trait]
impl Step for ResizeGuest {
    fn name(&self) -> &'static str {
        "resize_guest"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let (mut i, f) = new_flavor(ctx).await?;
        i.flavor = f;
        ctx.agent(AgentRequest::Resize {
            instance: instance_spec(&i),
        })
        .await
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let (i, _) = new_flavor(ctx).await?;
        ctx.agent(AgentRequest::RevertResize {
            instance: instance_spec(&i),
        })
        .await
    }
}
