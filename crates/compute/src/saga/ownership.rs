//! Which controller runs which unfinished saga, when several controllers
//! share one database (docs/multinode.md). Each controller keeps a
//! liveness lease `compute-controller:<host>` in the database and owns the
//! sagas it runs; when a controller's lease lapses (its process died),
//! another takes its unfinished sagas over, one claim per saga, and runs
//! them to their end. A controller that restarts under the same host name
//! resumes its own sagas at once. Before each step the runner checks it is
//! still the owner, so two controllers never run the same step.

use crate::service::ComputeService;
use crate::store::sagas::{self, OwnedSaga, SagaRow};
use ferrostack_core::{Error, Result};
use ferrostack_db::lease;
use std::sync::Arc;
use std::time::Duration;

/// This controller's name as saga owner and lease holder.
pub fn controller(svc: &ComputeService) -> &str {
    &svc.config.common.host
}

fn lease_name(controller: &str) -> String {
    format!("compute-controller:{controller}")
}

pub fn lease_ttl(svc: &ComputeService) -> Duration {
    Duration::from_secs(svc.config.compute.saga_lease_secs.max(1))
}

/// Take or renew this controller's liveness lease. The holder is this
/// host's name, so only a stale row with another holder (a changed host
/// name over an old database) can refuse it until it lapses.
pub async fn heartbeat(svc: &ComputeService) -> Result<()> {
    let me = controller(svc);
    let held = lease::acquire(&svc.db, &lease_name(me), me, lease_ttl(svc))
        .await
        .map_err(Error::from)?;
    match held {
        Some(_) => Ok(()),
        None => Err(Error::Conflict(format!(
            "the lease of controller '{me}' is held under another name until it lapses"
        ))),
    }
}

/// Whether saga `s` may be claimed by this controller now: its own, one
/// whose owner's lease lapsed, or one with no owner that has not moved for
/// a lease period (its controller stopped between recording and running it).
async fn claimable(svc: &ComputeService, s: &OwnedSaga) -> Result<bool> {
    let me = controller(svc);
    Ok(match s.owner.as_deref() {
        Some(owner) if owner == me => true,
        Some(owner) => !lease::is_held(&svc.db, &lease_name(owner))
            .await
            .map_err(Error::from)?,
        None => {
            let ttl = chrono::Duration::from_std(lease_ttl(svc)).unwrap_or_default();
            ferrostack_core::time::parse(&s.updated_at).is_none_or(|t| t + ttl < chrono::Utc::now())
        }
    })
}

/// Claim every unfinished saga this controller may take, for the caller
/// to run: at start its own from before a restart too (`own_too`), and
/// periodically those of controllers that stopped.
pub async fn claim(svc: &Arc<ComputeService>, own_too: bool) -> Result<Vec<SagaRow>> {
    let me = controller(svc).to_owned();
    let mut taken = Vec::new();
    for s in sagas::unfinished_with_owners(&svc.db).await? {
        let mine = s.owner.as_deref() == Some(me.as_str());
        if (mine && !own_too) || !claimable(svc, &s).await? {
            continue;
        }
        if mine || sagas::claim(&svc.db, &s.row.id, s.owner.as_deref(), &me).await? {
            tracing::info!(saga = %s.row.id, kind = %s.row.kind, from = ?s.owner, "taking over saga");
            taken.push(s.row);
        }
    }
    Ok(taken)
}
