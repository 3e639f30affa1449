//! Live migration (`os-migrateLive`): the guest moves to another host
//! while it runs. Claim the flavor on the destination → the destination
//! makes the guest paused, waiting for it (its ports marked
//! `migrating_to` there first, so that host's agents wire the taps: Nova's
//! `pre_live_migration`) → the source copies the local disks and then the
//! memory into it (QEMU's mirror jobs and migration) until it switches
//! over → the destination lets the guest run: the commit point. Then
//! (`succeeded`, rolling forward only) the ports are bound to the
//! destination and the source's stopped copy is removed.
//!
//! Before the commit, any failure or abort rolls back: the waiting guest
//! on the destination goes and the source's guest runs on (resumed even
//! after a switch-over the destination did not take up). The destination's
//! rollback refuses to remove a guest that runs there, so no unwind can
//! leave the guest running twice or nowhere; after the commit the saga
//! only rolls forward. The destination is chosen before the saga, in its
//! parameters, as for cold migration.

use super::migrate_server::{gone_is_fine, node_of};
use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::scheduler;
use crate::states::PowerState;
use crate::store::{self, hosts, migrations::Progress};
use ferrostack_compute_agent::protocol::{AgentReply, AgentRequest};
use ferrostack_core::{Error, Result};
use ferrostack_hypervisor::{LiveMigrationProgress, LiveMigrationTarget};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

pub const KIND: &str = "live_migrate_server";

/// The destination's claim until the migration ends (then the instance's).
pub const CLAIM: &str = "live-migration";

/// How often the source is asked how far the copy has got.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The saga's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LiveMigrateParams {
    pub action_id: String,
    /// The migration record this saga moves through its statuses.
    pub migration_id: i64,
    pub source: String,
    pub dest: String,
    /// Copy the local disks (a block migration).
    pub block_migration: bool,
    /// The server was PAUSED: it stays paused on the destination.
    pub paused: bool,
}

pub struct LiveMigrateServer;

/// The abort asked for (2.24) ends the migration here, as cancelled.
async fn check_abort(ctx: &SagaCtx, p: &LiveMigrateParams) -> Result<()> {
    let m = store::migrations::get(&ctx.svc.db, p.migration_id).await?;
    if m.is_some_and(|m| m.abort_requested) {
        return Err(cancelled(p));
    }
    Ok(())
}

fn cancelled(p: &LiveMigrateParams) -> Error {
    Error::Conflict(format!(
        "The live migration {} was cancelled.",
        p.migration_id
    ))
}

/// Mark (or, with `None`, unmark) the instance's ports as moving to `dest`.
async fn mark_ports(ctx: &SagaCtx, dest: Option<&str>) -> Result<()> {
    let i = ctx.instance().await?;
    let profile = match dest {
        Some(d) => json!({ "migrating_to": d }),
        None => json!({}),
    };
    for v in &i.network_info {
        ctx.svc
            .network
            .update_port(&v.port_id, json!({ "binding:profile": profile }))
            .await?;
    }
    Ok(())
}

impl From<&LiveMigrationProgress> for Progress {
    fn from(p: &LiveMigrationProgress) -> Self {
        let n = |v: u64| Some(v as i64);
        Progress {
            memory_total: n(p.memory_total),
            memory_processed: n(p.memory_processed),
            memory_remaining: n(p.memory_remaining),
            disk_total: n(p.disk_total),
            disk_processed: n(p.disk_processed),
            disk_remaining: n(p.disk_remaining),
        }
    }
}

#[async_trait::async_trait]
impl Saga for LiveMigrateServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(ClaimDestination),
            Box::new(PrepareDestination),
            Box::new(CopyGuest),
            Box::new(SwitchOver),
        ]
    }

    /// After the commit, rolling forward only: the ports bound to the
    /// destination, the source's stopped copy removed (failures logged:
    /// the guest runs on the destination whatever happens to the
    /// source), the destination's claim become the instance's, the
    /// record showing the new host, the migration `completed`.
    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        clean_up_source(ctx, &p).await?;
        let node = node_of(ctx, &p.dest).await?;
        if hosts::get_claim(&ctx.svc.db, &ctx.instance_id, CLAIM)
            .await?
            .is_some()
        {
            hosts::release(&ctx.svc.db, &ctx.instance_id, "instance").await?;
            hosts::rename_claim(&ctx.svc.db, &ctx.instance_id, CLAIM, "instance").await?;
        }
        store::migrations::set_status_of(&ctx.svc.db, p.migration_id, "completed").await?;
        let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.host = Some(p.dest.clone());
            x.node = Some(node.clone());
            x.task_state = None;
            x.power_state = if p.paused {
                PowerState::Paused
            } else {
                PowerState::Running
            };
            Ok(())
        })
        .await?;
        ctx.record_event("compute_live_migration", Ok(())).await;
        for event in [
            "compute.instance.live_migration._post.end",
            "compute.instance.live_migration.post.dest.end",
        ] {
            crate::usage_notifications::notify(&ctx.svc, event, &i).await;
        }
        Ok(())
    }

    /// As Nova: the server runs on where it was, ACTIVE (or PAUSED), no
    /// fault; the migration `cancelled` when aborted, else `failed`.
    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        tracing::warn!(instance = %ctx.instance_id, error = %error, "live migration rolled back");
        let aborted = store::migrations::get(&ctx.svc.db, p.migration_id)
            .await?
            .is_some_and(|m| m.abort_requested);
        let status = if aborted { "cancelled" } else { "failed" };
        store::migrations::set_status_of(&ctx.svc.db, p.migration_id, status).await?;
        let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.task_state = None;
            Ok(())
        })
        .await?;
        ctx.record_event("compute_live_migration", Err(error)).await;
        crate::usage_notifications::notify(
            &ctx.svc,
            "compute.instance.live_migration._rollback.end",
            &i,
        )
        .await;
        Ok(())
    }
}

/// The flavor claimed on the destination (scheduler's limits).
struct ClaimDestination;

#[async_trait::async_trait]
impl Step for ClaimDestination {
    fn name(&self) -> &'static str {
        "claim_destination"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        check_abort(ctx, &p).await?;
        let i = ctx.instance().await?;
        let node = hosts::get_node(&ctx.svc.db, &p.dest)
            .await?
            .ok_or_else(scheduler::no_valid_host)?;
        let ok = hosts::claim(
            &ctx.svc.db,
            &i.id,
            CLAIM,
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
        hosts::release(&ctx.svc.db, &ctx.instance_id, CLAIM).await
    }
}

/// Nova's `pre_live_migration`: the ports marked as moving to the
/// destination, whose agent then makes the guest, paused, waiting.
struct PrepareDestination;

impl PrepareDestination {
    /// Ask the destination (again: the same target while it waits).
    async fn target(ctx: &SagaCtx, p: &LiveMigrateParams) -> Result<LiveMigrationTarget> {
        let i = ctx.instance().await?;
        let config_drive = ctx.config_drive(&i).await?;
        let reply = ctx
            .svc
            .agent(
                &p.dest,
                AgentRequest::PrepareLiveMigration {
                    instance: instance_spec(&i),
                    config_drive,
                    copy_disks: p.block_migration,
                },
            )
            .await?;
        match reply {
            AgentReply::LiveMigrationTarget(t) => Ok(t),
            other => Err(Error::Internal(format!(
                "compute host {} gave no live migration target: {other:?}",
                p.dest
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Step for PrepareDestination {
    fn name(&self) -> &'static str {
        "pre_live_migration"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        check_abort(ctx, &p).await?;
        store::migrations::set_status_of(&ctx.svc.db, p.migration_id, "preparing").await?;
        mark_ports(ctx, Some(&p.dest)).await?;
        Self::target(ctx, &p).await?;
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        let r = ctx
            .svc
            .agent(
                &p.dest,
                AgentRequest::RollbackLiveMigrationAtDestination {
                    instance_id: ctx.instance_id.clone(),
                },
            )
            .await;
        gone_is_fine(r)?;
        mark_ports(ctx, None).await
    }
}

/// The source copies the guest (disks, then memory) into the waiting
/// destination until it switches over; its progress is recorded, and an
/// abort asked for meanwhile is passed on to it.
struct CopyGuest;

impl CopyGuest {
    /// Ask the source how far it has got, record it, and pass on an
    /// abort (once). Errors only delay the next look.
    async fn watch(ctx: &SagaCtx, p: &LiveMigrateParams, aborted: &mut bool) -> Result<()> {
        let request = AgentRequest::LiveMigrationProgress {
            instance_id: ctx.instance_id.clone(),
        };
        if let AgentReply::LiveMigrationProgress(progress) =
            ctx.svc.agent(&p.source, request).await?
        {
            store::migrations::set_progress(&ctx.svc.db, p.migration_id, &(&progress).into())
                .await?;
        }
        let wanted = store::migrations::get(&ctx.svc.db, p.migration_id)
            .await?
            .is_some_and(|m| m.abort_requested);
        if wanted && !*aborted {
            *aborted = true;
            let abort = AgentRequest::AbortLiveMigration {
                instance_id: ctx.instance_id.clone(),
            };
            ctx.svc.agent(&p.source, abort).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Step for CopyGuest {
    fn name(&self) -> &'static str {
        "live_migration"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        check_abort(ctx, &p).await?;
        let target = PrepareDestination::target(ctx, &p).await?;
        store::migrations::set_status_of(&ctx.svc.db, p.migration_id, "running").await?;
        let copy = ctx.svc.agent(
            &p.source,
            AgentRequest::LiveMigrate {
                instance_id: ctx.instance_id.clone(),
                target,
            },
        );
        tokio::pin!(copy);
        let mut aborted = false;
        let copied = loop {
            tokio::select! {
                r = &mut copy => break r,
                _ = tokio::time::sleep(PROGRESS_EVERY) => {
                    if let Err(e) = Self::watch(ctx, &p, &mut aborted).await {
                        tracing::debug!(instance = %ctx.instance_id, error = %e, "live migration progress unknown");
                    }
                }
            }
        };
        if aborted {
            return Err(cancelled(&p));
        }
        copied?;
        let _ = Self::watch(ctx, &p, &mut true).await;
        Ok(())
    }

    /// The source's guest runs on (a switch-over the destination did not
    /// take up is undone; the destination's own rollback, newer, has
    /// refused to go on if the guest runs there).
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        let r = ctx
            .svc
            .agent(
                &p.source,
                AgentRequest::RollbackLiveMigration {
                    instance_id: ctx.instance_id.clone(),
                    paused: p.paused,
                },
            )
            .await;
        gone_is_fine(r)
    }
}

/// The commit point: the destination stops serving the disks and lets
/// the guest run.
struct SwitchOver;

#[async_trait::async_trait]
impl Step for SwitchOver {
    fn name(&self) -> &'static str {
        "post_live_migration_at_destination"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        ctx.svc
            .agent(
                &p.dest,
                AgentRequest::FinishLiveMigration {
                    instance_id: ctx.instance_id.clone(),
                    paused: p.paused,
                },
            )
            .await?;
        Ok(())
    }

    /// Only a guest still waiting goes: one that runs there is refused
    /// (the unwind stops and is retried; the source stays stopped).
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p: LiveMigrateParams = ctx.params()?;
        let r = ctx
            .svc
            .agent(
                &p.dest,
                AgentRequest::RollbackLiveMigrationAtDestination {
                    instance_id: ctx.instance_id.clone(),
                },
            )
            .await;
        gone_is_fine(r)
    }
}

/// The ports bound to the destination (their `migrating_to` cleared),
/// the source's copy removed; failures logged, not returned.
async fn clean_up_source(ctx: &SagaCtx, p: &LiveMigrateParams) -> Result<()> {
    let i = ctx.instance().await?;
    for v in &i.network_info {
        let port = json!({ "binding:host_id": p.dest, "binding:profile": {} });
        if let Err(e) = ctx.svc.network.update_port(&v.port_id, port).await {
            tracing::error!(instance = %i.id, port = %v.port_id, error = %e,
                "port not bound to the live migration's destination");
        }
    }
    let destroy = AgentRequest::Destroy {
        instance_id: i.id.clone(),
    };
    if let Err(e) = gone_is_fine(ctx.svc.agent(&p.source, destroy).await) {
        tracing::error!(instance = %i.id, host = %p.source, error = %e,
            "the source's copy of a live-migrated guest was not removed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_recorded_in_bytes() {
        let p = LiveMigrationProgress {
            memory_total: 10,
            memory_processed: 4,
            memory_remaining: 6,
            disk_total: 3,
            ..Default::default()
        };
        let r: Progress = (&p).into();
        assert_eq!(r.memory_total, Some(10));
        assert_eq!(r.memory_remaining, Some(6));
        assert_eq!(r.disk_total, Some(3));
        assert_eq!(r.disk_remaining, Some(0));
    }
}
