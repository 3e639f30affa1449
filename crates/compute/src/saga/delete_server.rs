//! Server deletion: destroy the VM on its host → detach its volumes
//! (Cinder attachment deleted, the volumes marked delete_on_termination
//! deleted, the mappings dropped) → delete (or unbind) its ports →
//! release its claims → DELETED. A compute host that is down is
//! skipped (its power-state sync cleans up), as Nova's local delete does.

use super::attach_volume::delete_attachment;
use super::live_migrate_server::CLAIM;
use super::{Saga, SagaCtx, Step};
use crate::guest::deallocate_ports;
use crate::scheduler::COMPUTE_BINARY;
use crate::states::{PowerState, VmState};
use crate::store::{self, hosts};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};

pub const KIND: &str = "delete_server";

pub struct DeleteServer;

async fn instance(ctx: &SagaCtx) -> Result<store::instances::Instance> {
    store::instances::get(&ctx.svc.db, &ctx.instance_id)
        .await?
        .ok_or_else(|| Error::Internal("instance record vanished".into()))
}

#[async_trait::async_trait]
impl Saga for DeleteServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(Destroy),
            Box::new(DetachVolumes),
            Box::new(DeallocatePorts),
            Box::new(ReleaseClaims),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        if let Some(g) = store::server_groups::of_instance(&ctx.svc.db, &ctx.instance_id).await? {
            store::server_groups::set_member(&ctx.svc.db, &g.id, &ctx.instance_id, false).await?;
        }
        let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
            i.vm_state = VmState::Deleted;
            i.task_state = None;
            i.power_state = PowerState::NoState;
            i.deleted = true;
            i.terminated_at = Some(store::now());
            Ok(())
        })
        .await?;
        crate::usage_notifications::notify(&ctx.svc, "compute.instance.delete.end", &i).await;
        // A shelved server's snapshot goes with it, as in Nova.
        if let Some(image) = &i.shelved_image_id {
            if let Err(e) = ctx.svc.image.delete(image).await {
                tracing::warn!(instance = %i.id, image = %image, error = %e, "shelved image not deleted");
            }
        }
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
            i.vm_state = VmState::Error;
            i.task_state = None;
            i.fault = Some(store::instances::Fault::of(error));
            Ok(())
        })
        .await?;
        Ok(())
    }
}

struct Destroy;

#[async_trait::async_trait]
impl Step for Destroy {
    fn name(&self) -> &'static str {
        "destroy"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = instance(ctx).await?;
        store::console_tokens::delete_for_instance(&ctx.svc.db, &i.id).await?;
        let Some(host) = &i.host else {
            return Ok(());
        };
        let up = match hosts::get_service(&ctx.svc.db, host, COMPUTE_BINARY).await? {
            Some(s) => ctx.svc.is_up(&s),
            None => false,
        };
        if up {
            ctx.svc
                .agent(
                    host,
                    AgentRequest::Destroy {
                        instance_id: i.id.clone(),
                    },
                )
                .await?;
        } else {
            tracing::warn!(instance = %i.id, host = %host, "compute host is down; deleting locally");
        }
        // A server deleted after a move that was neither confirmed nor
        // reverted (VERIFY_RESIZE, or ERROR from a failed revert): the
        // copy its source host kept goes too (Nova confirms first).
        if let Some(source) = ctx
            .svc
            .pending_move(&i)
            .await?
            .and_then(|m| m.source_compute)
        {
            let request = AgentRequest::ConfirmMigration {
                instance_id: i.id.clone(),
            };
            if let Err(e) = ctx.svc.agent(&source, request).await {
                tracing::warn!(instance = %i.id, host = %source, error = %e, "the source's copy was not removed");
            }
        }
        Ok(())
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct DetachVolumes;

#[async_trait::async_trait]
impl Step for DetachVolumes {
    fn name(&self) -> &'static str {
        "detach_volumes"
    }

    /// Per mapping: attachment deleted, volume deleted when it goes with
    /// the server, row dropped last (so a rerun finds what is left).
    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        for b in store::bdms::of_instance(&ctx.svc.db, &ctx.instance_id).await? {
            delete_attachment(ctx, &b).await?;
            if b.delete_on_termination && !b.volume_id.is_empty() {
                ctx.svc.volume.delete_volume_when_free(&b.volume_id).await?;
            }
            store::bdms::delete(&ctx.svc.db, &b.id).await?;
        }
        Ok(())
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct DeallocatePorts;

#[async_trait::async_trait]
impl Step for DeallocatePorts {
    fn name(&self) -> &'static str {
        "deallocate_ports"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = instance(ctx).await?;
        deallocate_ports(&ctx.svc, &i).await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct ReleaseClaims;

#[async_trait::async_trait]
impl Step for ReleaseClaims {
    fn name(&self) -> &'static str {
        "release_claims"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        hosts::release(&ctx.svc.db, &ctx.instance_id, "instance").await?;
        hosts::release(&ctx.svc.db, &ctx.instance_id, "evacuate").await?;
        hosts::release(&ctx.svc.db, &ctx.instance_id, "resize").await?;
        hosts::release(&ctx.svc.db, &ctx.instance_id, CLAIM).await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
