//! shelve offload: a SHELVED server's guest is destroyed and its host's
//! resources (its claim) released; it keeps its ports, volumes and
//! quota usage and is SHELVED_OFFLOADED with no host. A failure leaves it
//! SHELVED. Nova does this right after a shelve with its default
//! `shelved_offload_time` of 0, or when an admin asks (`shelveOffload`).
//!
//! It is also the whole shelve of a volume-backed server (Nova's API
//! sends such a shelve to `shelve_offload_instance`, no snapshot made):
//! `was` is then the state it was shelved from. The guest is shut down
//! cleanly first (its disks are volumes it keeps), the task stays
//! `shelving`, and a failure leaves the server in that state, running
//! again if it ran.

use super::{Saga, SagaCtx, Step};
use crate::scheduler::COMPUTE_BINARY;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, hosts};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::Deserialize;

pub const KIND: &str = "shelve_offload";

#[derive(Debug, Default, Deserialize)]
struct Params {
    /// A volume-backed server's shelve: the state it was shelved from.
    #[serde(default)]
    was: Option<VmState>,
}

/// The server's host when its compute service is up (an offload from a
/// host that is down is done locally, as Nova's is).
async fn live_host(ctx: &SagaCtx, i: &store::instances::Instance) -> Result<Option<String>> {
    let Some(host) = &i.host else {
        return Ok(None);
    };
    let up = match hosts::get_service(&ctx.svc.db, host, COMPUTE_BINARY).await? {
        Some(s) => ctx.svc.is_up(&s),
        None => false,
    };
    if !up {
        tracing::warn!(instance = %i.id, host = %host, "compute host is down; offloading locally");
        return Ok(None);
    }
    Ok(Some(host.clone()))
}

pub struct ShelveOffload;

#[async_trait::async_trait]
impl Saga for ShelveOffload {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(PowerOffGuest),
            Box::new(DestroyGuest),
            Box::new(ReleaseHost),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
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
        crate::usage_notifications::notify(&ctx.svc, "compute.instance.shelve_offload.end", &i)
            .await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if matches!(
                x.task_state,
                Some(TaskState::ShelvingOffloading | TaskState::Shelving)
            ) {
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
        let i = if ctx.params::<Params>()?.was.is_some() {
            ctx.instance().await?
        } else {
            ctx.set_task(TaskState::ShelvingOffloading).await?
        };
        store::console_tokens::delete_for_instance(&ctx.svc.db, &i.id).await?;
        let Some(host) = live_host(ctx, &i).await? else {
            return Ok(());
        };
        ctx.svc
            .agent(
                &host,
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

/// A clean shutdown of the guest before it goes, as Nova's offload does
/// (`clean_shutdown`); a SHELVED server's guest is off already.
struct PowerOffGuest;

#[async_trait::async_trait]
impl Step for PowerOffGuest {
    fn name(&self) -> &'static str {
        "offload_power_off"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = ctx.instance().await?;
        if i.vm_state == VmState::Shelved {
            return Ok(());
        }
        let Some(host) = live_host(ctx, &i).await? else {
            return Ok(());
        };
        ctx.svc
            .agent(
                &host,
                AgentRequest::PowerOff {
                    instance_id: i.id.clone(),
                },
            )
            .await
            .map(|_| ())
    }

    /// A volume-backed server that ran before its shelve runs again.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        if ctx.params::<Params>()?.was != Some(VmState::Active) {
            return Ok(());
        }
        ctx.agent(AgentRequest::PowerOn {
            instance_id: ctx.instance_id.clone(),
        })
        .await
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
