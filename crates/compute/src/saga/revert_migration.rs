//! revertResize of a server that moved to another host (`migrate_server`):
//! the destination's guest goes → the ports are bound to the source again
//! → the source's stopped copy takes its old flavor and starts (unless the
//! server was stopped) → the destination's claim is released → the server
//! is back on the source with its old flavor and state.

use super::migrate_server::{bind_ports, gone_is_fine, node_of, runs_after};
use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, hosts};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::{Deserialize, Serialize};

pub const KIND: &str = "revert_migration";

/// The saga's parameters: the hosts of the migration being reverted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevertParams {
    pub action_id: String,
    pub source: String,
    pub dest: String,
}

pub struct RevertMigration;

#[async_trait::async_trait]
impl Saga for RevertMigration {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(DestroyOnDestination),
            Box::new(BindPortsToSource),
            Box::new(RestartOnSource),
            Box::new(ReleaseDestinationClaim),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p: RevertParams = ctx.params()?;
        let node = node_of(ctx, &p.source).await?;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if let Some(old) = x.old_flavor.take() {
                x.flavor = old;
            }
            x.host = Some(p.source.clone());
            x.node = Some(node.clone());
            x.task_state = None;
            x.vm_state = x.old_vm_state.take().unwrap_or(VmState::Active);
            x.power_state = if x.vm_state == VmState::Stopped {
                PowerState::Shutdown
            } else {
                PowerState::Running
            };
            Ok(())
        })
        .await?;
        store::migrations::set_migration_status(&ctx.svc.db, &ctx.instance_id, "reverted").await?;
        ctx.record_event("compute_revert_resize", Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        super::revert_resize::revert_failed(ctx, error).await
    }
}

struct DestroyOnDestination;

#[async_trait::async_trait]
impl Step for DestroyOnDestination {
    fn name(&self) -> &'static str {
        "destroy_on_destination"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = ctx.instance().await?;
        if i.task_state != Some(TaskState::ResizeReverting) {
            return Err(Error::Conflict("The revert was cancelled.".into()));
        }
        let p: RevertParams = ctx.params()?;
        let r = ctx
            .svc
            .agent(
                &p.dest,
                AgentRequest::Destroy {
                    instance_id: i.id.clone(),
                },
            )
            .await;
        gone_is_fine(r)
    }

    /// A destroyed guest cannot come back; the unwind leaves the server
    /// in ERROR, on the source's stopped copy.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct BindPortsToSource;

#[async_trait::async_trait]
impl Step for BindPortsToSource {
    fn name(&self) -> &'static str {
        "bind_ports_to_source"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: RevertParams = ctx.params()?;
        bind_ports(ctx, &ctx.instance().await?, &p.source).await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct RestartOnSource;

#[async_trait::async_trait]
impl Step for RestartOnSource {
    fn name(&self) -> &'static str {
        "restart_on_source"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: RevertParams = ctx.params()?;
        let mut i = ctx.instance().await?;
        if let Some(old) = i.old_flavor.clone() {
            i.flavor = old;
        }
        ctx.svc
            .agent(
                &p.source,
                AgentRequest::RevertMigration {
                    instance: instance_spec(&i),
                    power_on: runs_after(&i),
                },
            )
            .await?;
        Ok(())
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct ReleaseDestinationClaim;

#[async_trait::async_trait]
impl Step for ReleaseDestinationClaim {
    fn name(&self) -> &'static str {
        "release_destination_claim"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        hosts::release(&ctx.svc.db, &ctx.instance_id, "resize").await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
