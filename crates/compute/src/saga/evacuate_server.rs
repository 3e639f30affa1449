//! evacuate: rebuild a server of a compute host that is down on another
//! host, from its image (the disk on the dead host is lost, as with Nova
//! without shared storage): claim on a host the scheduler chooses (or the
//! one asked for) → bind the ports there → cache the image and spawn →
//! ACTIVE (or SHUTOFF, as it was) on the new host, the migration record
//! `done`. When the dead host's agent comes back and reports the guest,
//! the conductor has it destroyed there (`conductor::destroy_evacuated`).

use super::migrate_server::{bind_ports, gone_is_fine, node_of};
use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::scheduler;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, hosts, instances::Fault};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::{Deserialize, Serialize};

pub const KIND: &str = "evacuate_server";

/// The saga's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvacuateParams {
    pub action_id: String,
    /// The failed host.
    pub source: String,
    /// The host asked for; the scheduler chooses when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Whether the server ends stopped: it was, or the request's version
    /// (2.95) says so.
    #[serde(default)]
    pub was_stopped: bool,
    /// The password for the rebuilt guest's config drive (a secret: the
    /// saga forgets it when it ends).
    #[serde(default)]
    pub admin_pass: Option<String>,
}

/// The claim taken on the destination until the evacuation ends.
const CLAIM: &str = "evacuate";

pub struct EvacuateServer;

/// Where the server is going: the host of its evacuation claim.
async fn destination(ctx: &SagaCtx) -> Result<String> {
    hosts::get_claim(&ctx.svc.db, &ctx.instance_id, CLAIM)
        .await?
        .map(|(host, _)| host)
        .ok_or_else(|| Error::Internal("The evacuation has no destination claim.".into()))
}

#[async_trait::async_trait]
impl Saga for EvacuateServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(ClaimNewHost),
            Box::new(BindPortsThere),
            Box::new(RebuildThere),
        ]
    }

    /// The source's claim goes (its host is down; its copy of the guest
    /// is destroyed when it comes back), the new one becomes the
    /// instance's.
    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p: EvacuateParams = ctx.params()?;
        let dest = destination(ctx).await?;
        let node = node_of(ctx, &dest).await?;
        hosts::release(&ctx.svc.db, &ctx.instance_id, "instance").await?;
        hosts::rename_claim(&ctx.svc.db, &ctx.instance_id, CLAIM, "instance").await?;
        store::migrations::finish_migration(&ctx.svc.db, &ctx.instance_id, "done", Some(&dest))
            .await?;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.host = Some(dest.clone());
            x.node = Some(node.clone());
            x.task_state = None;
            x.fault = None;
            (x.vm_state, x.power_state) = if p.was_stopped {
                (VmState::Stopped, PowerState::Shutdown)
            } else {
                (VmState::Active, PowerState::Running)
            };
            x.launched_at = Some(store::now());
            Ok(())
        })
        .await?;
        ctx.record_event("compute_rebuild_instance", Ok(())).await;
        Ok(())
    }

    /// As Nova: the server is left in ERROR with the fault, on its failed
    /// host, the migration `error`.
    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.task_state = None;
            x.vm_state = VmState::Error;
            x.fault = Some(Fault::of(error));
            Ok(())
        })
        .await?;
        store::migrations::finish_migration(&ctx.svc.db, &ctx.instance_id, "error", None).await?;
        ctx.record_event("compute_rebuild_instance", Err(error))
            .await;
        Ok(())
    }
}

struct ClaimNewHost;

#[async_trait::async_trait]
impl Step for ClaimNewHost {
    fn name(&self) -> &'static str {
        "claim_new_host"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if hosts::get_claim(&ctx.svc.db, &ctx.instance_id, CLAIM)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let p: EvacuateParams = ctx.params()?;
        let i = ctx.instance().await?;
        let ignore = [p.source.clone()];
        let req = scheduler::Request {
            flavor: &i.flavor,
            availability_zone: None,
            image_properties: &serde_json::Value::Null,
            ignore_hosts: &ignore,
            only_hosts: None,
            host: p.host.as_deref(),
            node: None,
        };
        scheduler::select_and_claim(&ctx.svc, &i.id, CLAIM, &req).await?;
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        hosts::release(&ctx.svc.db, &ctx.instance_id, CLAIM).await
    }
}

struct BindPortsThere;

#[async_trait::async_trait]
impl Step for BindPortsThere {
    fn name(&self) -> &'static str {
        "bind_ports"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let dest = destination(ctx).await?;
        bind_ports(ctx, &ctx.instance().await?, &dest).await
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p: EvacuateParams = ctx.params()?;
        bind_ports(ctx, &ctx.instance().await?, &p.source).await
    }
}

/// A new guest from the image on the destination (stopped again when the
/// server was).
struct RebuildThere;

#[async_trait::async_trait]
impl Step for RebuildThere {
    fn name(&self) -> &'static str {
        "rebuild_there"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = ctx.set_task(TaskState::RebuildSpawning).await?;
        let p: EvacuateParams = ctx.params()?;
        let dest = destination(ctx).await?;
        if !i.image_ref.is_empty() {
            ctx.svc
                .agent(
                    &dest,
                    AgentRequest::CacheImage {
                        image_id: i.image_ref.clone(),
                    },
                )
                .await?;
        }
        let config_drive = ctx.config_drive(&i).await?;
        ctx.svc
            .agent(
                &dest,
                AgentRequest::Spawn {
                    instance: instance_spec(&i),
                    config_drive,
                },
            )
            .await?;
        if p.was_stopped {
            ctx.svc
                .agent(
                    &dest,
                    AgentRequest::PowerOff {
                        instance_id: i.id.clone(),
                    },
                )
                .await?;
        }
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let Some((dest, _)) = hosts::get_claim(&ctx.svc.db, &ctx.instance_id, CLAIM).await? else {
            return Ok(());
        };
        let r = ctx
            .svc
            .agent(
                &dest,
                AgentRequest::Destroy {
                    instance_id: ctx.instance_id.clone(),
                },
            )
            .await;
        gone_is_fine(r)
    }
}
