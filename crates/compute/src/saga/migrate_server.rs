//! Cold migration, and a resize the scheduler sends to another host: claim
//! the (new) flavor on the destination → the source stops the guest and
//! exports its disk → the ports are bound to the destination → the
//! destination copies the disk and starts the guest → the export ends →
//! VERIFY_RESIZE on the destination. The source keeps its stopped copy
//! until `confirmResize` (removed there) or `revertResize` (the
//! `revert_migration` saga). The destination is chosen before the saga
//! (Nova's API answers NoValidHost at once) and is in its parameters.

use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::scheduler;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, hosts, instances::Instance};
use ferrostack_compute_agent::protocol::{AgentReply, AgentRequest};
use ferrostack_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const KIND: &str = "migrate_server";

/// The saga's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MigrateParams {
    pub action_id: String,
    /// Where the guest goes.
    pub dest: String,
    /// Where it is (the instance's host when the saga began).
    pub source: String,
}

pub struct MigrateServer;

/// The instance with the flavor it is to have on the destination.
async fn moving(ctx: &SagaCtx) -> Result<(Instance, MigrateParams)> {
    let mut i = ctx.instance().await?;
    if let Some(f) = i.new_flavor.clone() {
        i.flavor = f;
    }
    Ok((i, ctx.params()?))
}

/// Whether the guest is to run after the move: unless it was stopped.
pub(super) fn runs_after(i: &Instance) -> bool {
    i.old_vm_state.unwrap_or(i.vm_state) != VmState::Stopped
}

/// Bind every port of the instance to `host`, so that host's network
/// agents wire the guest (the networking API's `binding:host_id`).
pub(super) async fn bind_ports(ctx: &SagaCtx, i: &Instance, host: &str) -> Result<()> {
    for v in &i.network_info {
        ctx.svc
            .network
            .update_port(&v.port_id, json!({ "binding:host_id": host }))
            .await?;
    }
    Ok(())
}

/// A host's hypervisor name (`node`), its host name when unknown.
pub(super) async fn node_of(ctx: &SagaCtx, host: &str) -> Result<String> {
    Ok(hosts::get_node(&ctx.svc.db, host)
        .await?
        .map(|n| n.hypervisor_hostname)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| host.to_owned()))
}

/// An undo's agent call: a guest already gone is what the undo wants.
pub(super) fn gone_is_fine(r: Result<AgentReply>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.base(), Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait::async_trait]
impl Saga for MigrateServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(ClaimDestination),
            Box::new(MigrateOut),
            Box::new(BindPorts),
            Box::new(MigrateIn),
            Box::new(EndExport),
        ]
    }

    /// The migration record is finished before the server shows
    /// VERIFY_RESIZE, so whoever sees that state sees the record too.
    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p: MigrateParams = ctx.params()?;
        let node = node_of(ctx, &p.dest).await?;
        store::migrations::finish_migration(
            &ctx.svc.db,
            &ctx.instance_id,
            "finished",
            Some(&p.dest),
        )
        .await?;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
            let new = i.new_flavor.clone().unwrap_or_else(|| i.flavor.clone());
            i.old_flavor = Some(std::mem::replace(&mut i.flavor, new));
            i.new_flavor = None;
            i.power_state = if runs_after(i) {
                PowerState::Running
            } else {
                PowerState::Shutdown
            };
            i.host = Some(p.dest.clone());
            i.node = Some(node.clone());
            i.vm_state = VmState::Resized;
            i.task_state = None;
            Ok(())
        })
        .await?;
        ctx.record_event("compute_resize_instance", Ok(())).await;
        ctx.record_event("compute_finish_resize", Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        tracing::warn!(instance = %ctx.instance_id, error = %error, "migration failed and was rolled back");
        super::resize_server::resize_rolled_back(ctx, error).await
    }
}

/// The destination's claim is the `resize` claim: confirm and revert
/// treat it as the same-host resize's.
struct ClaimDestination;

#[async_trait::async_trait]
impl Step for ClaimDestination {
    fn name(&self) -> &'static str {
        "claim_destination"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let (i, p) = moving(ctx).await?;
        let node = hosts::get_node(&ctx.svc.db, &p.dest)
            .await?
            .ok_or_else(scheduler::no_valid_host)?;
        let ok = hosts::claim(
            &ctx.svc.db,
            &i.id,
            "resize",
            &p.dest,
            scheduler::resources_of(&i.flavor),
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

/// The source stops the guest and exports its disk.
struct MigrateOut;

#[async_trait::async_trait]
impl Step for MigrateOut {
    fn name(&self) -> &'static str {
        "migrate_out"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        ctx.set_task(TaskState::ResizeMigrating).await?;
        let p: MigrateParams = ctx.params()?;
        store::migrations::set_migration_status(&ctx.svc.db, &ctx.instance_id, "migrating").await?;
        ctx.svc
            .agent(
                &p.source,
                AgentRequest::MigrateOut {
                    instance_id: ctx.instance_id.clone(),
                },
            )
            .await?;
        Ok(())
    }

    /// The source's guest as it was: its export ended, started again
    /// unless it was stopped.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p: MigrateParams = ctx.params()?;
        let i = ctx.instance().await?;
        let r = ctx
            .svc
            .agent(
                &p.source,
                AgentRequest::RevertMigration {
                    instance: instance_spec(&i),
                    power_on: runs_after(&i),
                },
            )
            .await;
        gone_is_fine(r)
    }
}

struct BindPorts;

#[async_trait::async_trait]
impl Step for BindPorts {
    fn name(&self) -> &'static str {
        "bind_ports"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let (i, p) = moving(ctx).await?;
        bind_ports(ctx, &i, &p.dest).await
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let (i, p) = moving(ctx).await?;
        bind_ports(ctx, &i, &p.source).await
    }
}

/// The destination copies the disk from the source's export (asked for
/// again: the same export while it lasts) and starts the guest.
struct MigrateIn;

#[async_trait::async_trait]
impl Step for MigrateIn {
    fn name(&self) -> &'static str {
        "migrate_in"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        ctx.set_task(TaskState::ResizeFinish).await?;
        let (i, p) = moving(ctx).await?;
        let reply = ctx
            .svc
            .agent(
                &p.source,
                AgentRequest::MigrateOut {
                    instance_id: i.id.clone(),
                },
            )
            .await?;
        let AgentReply::Export(source) = reply else {
            return Err(Error::Internal(format!(
                "compute host {} gave no disk export: {reply:?}",
                p.source
            )));
        };
        let config_drive = ctx.config_drive(&i).await?;
        ctx.svc
            .agent(
                &p.dest,
                AgentRequest::MigrateIn {
                    instance: instance_spec(&i),
                    config_drive,
                    source,
                    power_on: runs_after(&i),
                },
            )
            .await?;
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p: MigrateParams = ctx.params()?;
        let r = ctx
            .svc
            .agent(
                &p.dest,
                AgentRequest::Destroy {
                    instance_id: ctx.instance_id.clone(),
                },
            )
            .await;
        gone_is_fine(r)
    }
}

struct EndExport;

#[async_trait::async_trait]
impl Step for EndExport {
    fn name(&self) -> &'static str {
        "end_export"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: MigrateParams = ctx.params()?;
        ctx.svc
            .agent(
                &p.source,
                AgentRequest::EndMigrateOut {
                    instance_id: ctx.instance_id.clone(),
                },
            )
            .await?;
        Ok(())
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
