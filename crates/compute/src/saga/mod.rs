//! Durable step machines for the long server operations. A saga is a list
//! of steps, each with its undo; every step's start and end is written to
//! the database before and after it runs, so a service restarted in the
//! middle resumes (steps are idempotent) or, if it was unwinding, finishes
//! unwinding. A failed step unwinds every step that started, newest first.
//! Undos work from the instance record and the remote services' state, not
//! from remembered outputs, so a step that crashed half-way is undone too.

pub mod attach_volume;
pub mod boot_volumes;
pub mod create_server;
pub mod delete_server;
pub mod detach_volume;
pub mod evacuate_server;
pub mod live_migrate_server;
pub mod migrate_server;
pub mod ownership;
pub mod power_action;
pub mod rebuild_server;
pub mod rescue_server;
pub mod resize_server;
pub mod revert_migration;
pub mod revert_resize;
pub mod shelve_offload;
pub mod shelve_server;
pub mod snapshot_server;
pub mod unrescue_server;
pub mod unshelve_server;

use crate::service::ComputeService;
use crate::store::{
    self,
    sagas::{self, SagaRow},
};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde_json::Value;
use std::sync::Arc;

/// What a step sees: the service, the saga's instance and parameters.
pub struct SagaCtx {
    pub svc: Arc<ComputeService>,
    pub saga_id: String,
    pub instance_id: String,
    pub params: Value,
    /// When this run of the saga began (for instance action events).
    pub started: String,
}

impl SagaCtx {
    /// Set the instance's task state, unless it is being deleted (then the
    /// saga stops with a conflict).
    pub async fn set_task(
        &self,
        task: crate::states::TaskState,
    ) -> Result<store::instances::Instance> {
        store::instances::update(&self.svc.db, &self.instance_id, |x| {
            if x.task_state == Some(crate::states::TaskState::Deleting) || x.deleted {
                return Err(Error::Conflict(format!(
                    "Instance {} was deleted meanwhile.",
                    x.id
                )));
            }
            x.task_state = Some(task);
            Ok(())
        })
        .await
    }

    /// The saga's parameters as the type its kind defines.
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.params.clone())
            .map_err(|e| Error::Internal(format!("saga {} has bad parameters: {e}", self.saga_id)))
    }

    /// One parameter; its type's default when absent or null.
    pub fn param<T: serde::de::DeserializeOwned + Default>(&self, key: &str) -> Result<T> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(T::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                Error::Internal(format!("saga {} has a bad {key}: {e}", self.saga_id))
            }),
        }
    }

    /// The saga's instance, deleted or not.
    pub async fn instance(&self) -> Result<store::instances::Instance> {
        store::instances::get(&self.svc.db, &self.instance_id)
            .await?
            .ok_or_else(|| Error::Internal("instance record vanished".into()))
    }

    /// The config drive for `i`, with the admin password the saga carries.
    pub async fn config_drive(
        &self,
        i: &store::instances::Instance,
    ) -> Result<Option<Box<ferrostack_metadata::InstanceMetadata>>> {
        let admin_pass = self.params.get("admin_pass").and_then(Value::as_str);
        self.svc.config_drive_for(i, admin_pass).await
    }

    /// Ask the agent of the instance's host.
    pub async fn agent(&self, request: AgentRequest) -> Result<()> {
        let i = self.instance().await?;
        let host = i
            .host
            .ok_or_else(|| Error::Conflict(format!("Instance {} has no host.", i.id)))?;
        self.svc.agent(&host, request).await.map(|_| ())
    }

    /// Record how the instance action this saga serves went
    /// (`compute_reboot_instance`, …), when the saga carries one.
    pub async fn record_event(&self, event: &str, outcome: std::result::Result<(), &Error>) {
        let Some(action_id) = self.params["action_id"].as_str() else {
            return;
        };
        let outcome = outcome.map_err(|e| e.message().to_owned());
        if let Err(e) =
            store::instances::action_event(&self.svc.db, action_id, event, &self.started, outcome)
                .await
        {
            tracing::warn!(instance = %self.instance_id, error = %e, "action event not recorded");
        }
    }
}

#[async_trait::async_trait]
pub trait Step: Send + Sync {
    fn name(&self) -> &'static str;
    /// Do the step; must be idempotent (it may run again after a restart).
    async fn run(&self, ctx: &SagaCtx) -> Result<()>;
    /// Undo the step, also when it only partly ran; idempotent.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()>;
}

#[async_trait::async_trait]
pub trait Saga: Send + Sync {
    fn kind(&self) -> &'static str;
    fn steps(&self) -> Vec<Box<dyn Step>>;
    /// After the last step succeeded.
    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()>;
    /// After a failure was unwound.
    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()>;
}

/// Every saga kind, for tests that exercise each one.
pub const KINDS: &[&str] = &[
    create_server::KIND,
    delete_server::KIND,
    resize_server::KIND,
    revert_resize::KIND,
    power_action::KIND,
    rebuild_server::KIND,
    snapshot_server::KIND,
    shelve_server::KIND,
    shelve_offload::KIND,
    unshelve_server::KIND,
    rescue_server::KIND,
    unrescue_server::KIND,
];

/// The sagas that need a block storage API (their tests bring one).
pub const VOLUME_KINDS: &[&str] = &[attach_volume::KIND, detach_volume::KIND];

/// The sagas that move a server between hosts (their tests bring a
/// second compute host).
pub const MOVE_KINDS: &[&str] = &[
    migrate_server::KIND,
    revert_migration::KIND,
    evacuate_server::KIND,
    live_migrate_server::KIND,
];

pub fn saga_of(kind: &str) -> Option<Box<dyn Saga>> {
    match kind {
        create_server::KIND => Some(Box::new(create_server::CreateServer)),
        delete_server::KIND => Some(Box::new(delete_server::DeleteServer)),
        resize_server::KIND => Some(Box::new(resize_server::ResizeServer)),
        revert_resize::KIND => Some(Box::new(revert_resize::RevertResize)),
        power_action::KIND => Some(Box::new(power_action::PowerActionSaga)),
        rebuild_server::KIND => Some(Box::new(rebuild_server::RebuildServer)),
        snapshot_server::KIND => Some(Box::new(snapshot_server::SnapshotServer)),
        shelve_server::KIND => Some(Box::new(shelve_server::ShelveServer)),
        shelve_offload::KIND => Some(Box::new(shelve_offload::ShelveOffload)),
        unshelve_server::KIND => Some(Box::new(unshelve_server::UnshelveServer)),
        rescue_server::KIND => Some(Box::new(rescue_server::RescueServer)),
        unrescue_server::KIND => Some(Box::new(unrescue_server::UnrescueServer)),
        attach_volume::KIND => Some(Box::new(attach_volume::AttachVolume)),
        detach_volume::KIND => Some(Box::new(detach_volume::DetachVolume)),
        migrate_server::KIND => Some(Box::new(migrate_server::MigrateServer)),
        revert_migration::KIND => Some(Box::new(revert_migration::RevertMigration)),
        evacuate_server::KIND => Some(Box::new(evacuate_server::EvacuateServer)),
        live_migrate_server::KIND => Some(Box::new(live_migrate_server::LiveMigrateServer)),
        _ => None,
    }
}

/// Record a new saga and run it in the background.
pub async fn start(
    svc: &Arc<ComputeService>,
    kind: &'static str,
    instance_id: &str,
    params: Value,
) -> Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    sagas::create(&svc.db, &id, kind, instance_id, &params).await?;
    spawn(
        svc,
        SagaRow {
            id: id.clone(),
            kind: kind.into(),
            instance_id: instance_id.into(),
            state: "running".into(),
            params,
        },
    );
    Ok(id)
}

/// Run a recorded saga in the background.
pub fn spawn(svc: &Arc<ComputeService>, row: SagaRow) {
    let svc = svc.clone();
    tokio::spawn(async move {
        if let Err(e) = execute(svc, row).await {
            tracing::error!(error = %e, "saga bookkeeping failed");
        }
    });
}

/// Fail every instance left building with no saga to drive it (a boot
/// recorded by an older version that crashed before its saga was): ERROR
/// with a fault and no task, as Nova's compute manager leaves an instance
/// that was building when it stopped; a claim it may hold is released.
pub async fn fail_orphaned_builds(svc: &Arc<ComputeService>) -> Result<usize> {
    let orphans = store::instances::building_without_saga(&svc.db).await?;
    for i in &orphans {
        tracing::warn!(instance = %i.id, "building with no saga: set to ERROR");
        store::instances::update(&svc.db, &i.id, |x| {
            x.vm_state = crate::states::VmState::Error;
            x.task_state = None;
            x.power_state = crate::states::PowerState::NoState;
            x.host = None;
            x.node = None;
            x.fault = Some(store::instances::Fault {
                code: 500,
                message: "The service stopped before the build of this instance started.".into(),
                created: store::now(),
            });
            Ok(())
        })
        .await?;
        store::hosts::release(&svc.db, &i.id, "instance").await?;
    }
    Ok(orphans.len())
}

/// Unwind saga `id` again after [`UNDO_RETRY_SECS`] (one of its undos
/// failed); a restart in between resumes it the same way.
fn unwind_again(svc: &Arc<ComputeService>, id: &str) {
    let (svc, id) = (svc.clone(), id.to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(UNDO_RETRY_SECS)).await;
        match sagas::unfinished(&svc.db).await {
            Ok(rows) => {
                if let Some(row) = rows.into_iter().find(|r| r.id == id) {
                    spawn(&svc, row);
                }
            }
            Err(e) => {
                tracing::error!(saga = %id, error = %e, "cannot reload the saga to unwind it again")
            }
        }
    });
}

/// Pick up every saga a previous run of this controller left unfinished,
/// and those of controllers that are gone ([`ownership`]).
pub async fn resume_all(svc: &Arc<ComputeService>) -> Result<usize> {
    ferrostack_db::lease::ensure_table(&svc.db).await?;
    ownership::heartbeat(svc).await?;
    let rows = ownership::claim(svc, true).await?;
    let n = rows.len();
    for row in rows {
        spawn(svc, row);
    }
    Ok(n)
}

/// Keep this controller's liveness lease, and run the sagas of controllers
/// that are gone, every third of the lease period while the service runs.
pub fn spawn_keeper(svc: &Arc<ComputeService>) {
    let svc = svc.clone();
    tokio::spawn(async move {
        let period = ownership::lease_ttl(&svc) / 3;
        loop {
            tokio::time::sleep(period).await;
            // Failpoint `controller_dead`: this controller stops showing it
            // is alive, as if its process had died (takeover tests).
            if svc.failpoint_on("controller_dead") {
                continue;
            }
            if let Err(e) = ownership::heartbeat(&svc).await {
                tracing::error!(error = %e, "cannot renew the controller lease");
            }
            match ownership::claim(&svc, false).await {
                Ok(rows) => rows.into_iter().for_each(|row| spawn(&svc, row)),
                Err(e) => tracing::error!(error = %e, "cannot look for sagas to take over"),
            }
        }
    });
}

/// How long to wait before each retry of a step or undo that failed with
/// `e`: a busy database (SQLite) briefly; a peer service that does not
/// answer — one starting in this same process, whose port opens after the
/// sagas resume, or one restarting on another host — with backoff for
/// about a minute. Other errors are not retried.
fn retry_delays(e: &Error) -> &'static [u64] {
    const BUSY_DB: &[u64] = &[200, 200, 200, 200, 200];
    const PEER_DOWN: &[u64] = &[250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000];
    let m = e.message();
    if m.contains("database is locked") || m.contains("database table is locked") {
        BUSY_DB
    } else if matches!(e.base(), Error::Unavailable(_)) && m.contains("unreachable") {
        PEER_DOWN
    } else {
        &[]
    }
}

/// Run `attempt` again while it fails with an error [`retry_delays`] says
/// is worth waiting out (steps and undos are idempotent).
async fn retried<F, Fut>(first: Result<()>, mut attempt: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut outcome = first;
    let mut tries = 0;
    while let Err(e) = &outcome {
        let Some(ms) = retry_delays(e).get(tries) else {
            break;
        };
        tries += 1;
        tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
        outcome = attempt().await;
    }
    outcome
}

/// Seconds before a saga whose undo failed is unwound again.
const UNDO_RETRY_SECS: u64 = 30;

/// Whether this controller still owns saga `id` (it may have paused past
/// its lease and been taken over): a step runs only while it does.
async fn still_ours(svc: &ComputeService, id: &str) -> Result<bool> {
    let ours = sagas::owned_by(&svc.db, id, ownership::controller(svc)).await?;
    if !ours {
        tracing::warn!(saga = %id, "saga taken over by another controller: stopping here");
    }
    Ok(ours)
}

/// Run (or resume) one saga to its end.
pub async fn execute(svc: Arc<ComputeService>, row: SagaRow) -> Result<()> {
    let me = ownership::controller(&svc);
    // A saga just recorded has no owner yet; one taken over is ours already.
    if !sagas::owned_by(&svc.db, &row.id, me).await?
        && !sagas::claim(&svc.db, &row.id, None, me).await?
    {
        tracing::info!(saga = %row.id, "saga run by another controller: not started here");
        return Ok(());
    }
    let Some(saga) = saga_of(&row.kind) else {
        sagas::set_state(&svc.db, &row.id, "failed", Some("unknown saga kind")).await?;
        return Ok(());
    };
    let ctx = SagaCtx {
        svc: svc.clone(),
        saga_id: row.id.clone(),
        instance_id: row.instance_id.clone(),
        params: row.params.clone(),
        started: store::now(),
    };
    let steps = saga.steps();
    let recorded = sagas::steps(&svc.db, &row.id).await?;
    let state_of = |name: &str| {
        recorded
            .iter()
            .find(|s| s.step == name)
            .map(|s| s.state.clone())
    };
    let failure = if row.state == "unwinding" {
        Some(Error::Internal(
            "The service restarted while undoing a failed operation.".into(),
        ))
    } else {
        let mut failure = None;
        for (i, step) in steps.iter().enumerate() {
            if state_of(step.name()).as_deref() == Some("done") {
                continue;
            }
            if !still_ours(&svc, &row.id).await? {
                return Ok(());
            }
            sagas::set_step(&svc.db, &row.id, step.name(), i as i64, "started").await?;
            let began = std::time::Instant::now();
            let mut outcome = match svc.failpoint(step.name()) {
                Some(e) => Err(e),
                None => step.run(&ctx).await,
            };
            // `twice:<step>`: the work done again, as after a crash between
            // the step's work and its record (steps must be idempotent).
            if outcome.is_ok() && svc.failpoint_on(&format!("twice:{}", step.name())) {
                outcome = step.run(&ctx).await;
            }
            // A busy database or a peer still starting is not the step
            // failing: steps are idempotent, run it again.
            let outcome = retried(outcome, || step.run(&ctx)).await;
            // Per-step timings (bench/boot.sh splits a boot's time with them).
            tracing::debug!(
                saga = %row.kind,
                instance = %row.instance_id,
                step = step.name(),
                ms = began.elapsed().as_secs_f64() * 1000.0,
                ok = outcome.is_ok(),
                "saga step ran"
            );
            match outcome {
                Ok(()) => {
                    if svc.crashpoint(step.name()) {
                        // A simulated crash: nothing after the step's work is recorded.
                        return Ok(());
                    }
                    sagas::set_step(&svc.db, &row.id, step.name(), i as i64, "done").await?;
                }
                Err(e) => {
                    tracing::warn!(saga = %row.id, step = step.name(), error = %e, "saga step failed");
                    failure = Some(e);
                    break;
                }
            }
        }
        failure
    };
    match failure {
        None => {
            saga.succeeded(&ctx).await?;
            // Secrets go before the end is recorded: an ended saga keeps none.
            sagas::forget_secrets(&svc.db, &row.id, &row.params).await?;
            sagas::set_state(&svc.db, &row.id, "done", None).await?;
        }
        Some(err) => {
            sagas::set_state(&svc.db, &row.id, "unwinding", Some(err.message())).await?;
            let recorded = sagas::steps(&svc.db, &row.id).await?;
            for (i, step) in steps.iter().enumerate().rev() {
                let st = recorded.iter().find(|s| s.step == step.name());
                if !matches!(st.map(|s| s.state.as_str()), Some("started") | Some("done")) {
                    continue;
                }
                if !still_ours(&svc, &row.id).await? {
                    return Ok(());
                }
                let mut undone = step.undo(&ctx).await;
                // `undo_twice`: undos must be idempotent too.
                if undone.is_ok() && svc.failpoint_on("undo_twice") {
                    undone = step.undo(&ctx).await;
                }
                let undone = retried(undone, || step.undo(&ctx)).await;
                if let Err(e) = undone {
                    // Left recorded as started, and the saga unwinding: the
                    // whole unwind runs again later (undos are idempotent),
                    // so nothing the saga made is abandoned.
                    tracing::error!(saga = %row.id, step = step.name(), error = %e, "undo failed");
                    unwind_again(&svc, &row.id);
                    return Ok(());
                }
                sagas::set_step(&svc.db, &row.id, step.name(), i as i64, "undone").await?;
            }
            saga.failed(&ctx, &err).await?;
            sagas::forget_secrets(&svc.db, &row.id, &row.params).await?;
            sagas::set_state(&svc.db, &row.id, "failed", None).await?;
        }
    }
    svc.saga_finished.notify_waiters();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A peer that does not answer yet is waited for; an error of the
    /// request itself fails at once.
    #[tokio::test]
    async fn unreachable_peers_are_retried_and_other_errors_are_not() {
        let calls = AtomicUsize::new(0);
        let down = || Error::Unavailable("identity service unreachable: refused".into());
        let outcome = retried(Err(down()), || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 1 {
                    Err(down())
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(outcome.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let calls = AtomicUsize::new(0);
        let outcome = retried(Err(Error::BadRequest("no".into())), || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await;
        assert!(outcome.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(retry_delays(&Error::Unavailable("No valid host was found.".into())).is_empty());
    }
}
