//! The notification consumer: every notification on the bus becomes the
//! samples `meters` derives from it, recorded in batches (what arrived
//! together, up to `BATCH`) so a burst costs one transaction. The
//! subscription is taken when the service opens, before other services
//! start publishing, so nothing sent after start-up is missed.

use crate::meters;
use crate::service::{Batch, TelemetryService};
use ferrostack_bus::Notification;
use std::sync::Arc;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Most notifications recorded in one transaction.
pub const BATCH: usize = 512;

/// Consume `rx` for as long as the service lives.
pub fn spawn(svc: &Arc<TelemetryService>, mut rx: Receiver<Notification>) {
    let weak = Arc::downgrade(svc);
    tokio::spawn(async move {
        loop {
            let first = match rx.recv().await {
                Ok(n) => n,
                Err(RecvError::Lagged(k)) => {
                    tracing::warn!(
                        missed = k,
                        "metering fell behind the bus; notifications lost"
                    );
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let mut notes = vec![first];
            while notes.len() < BATCH {
                match rx.try_recv() {
                    Ok(n) => notes.push(n),
                    Err(_) => break,
                }
            }
            let Some(svc) = weak.upgrade() else { return };
            if let Err(e) = crate::alarms::on_notifications(&svc, &notes).await {
                tracing::warn!(error = %e, "event alarms not evaluated");
            }
            let batches: Vec<Batch> = notes
                .iter()
                .map(|n| Batch {
                    message_id: Some(n.message_id.clone()),
                    readings: meters::from_notification(n),
                })
                .filter(|b| !b.readings.is_empty())
                .collect();
            if batches.is_empty() {
                continue;
            }
            if let Err(e) = svc.record(batches).await {
                tracing::warn!(error = %e, "recording samples failed");
            }
        }
    });
}

/// Expire raw samples and old rollups hourly, on one controller at a time
/// (the lease `periodic:telemetry-expiry`).
pub fn spawn_expiry(svc: &Arc<TelemetryService>) {
    let weak = Arc::downgrade(svc);
    let period = std::time::Duration::from_secs(3600);
    let mut lease = ferrostack_db::lease::Periodic::new(
        &svc.db,
        "telemetry-expiry",
        &svc.config.common.host,
        period,
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let Some(svc) = weak.upgrade() else { return };
            if !lease.turn().await {
                continue;
            }
            if let Err(e) = svc.expire().await {
                tracing::warn!(error = %e, "telemetry expiry failed");
            }
        }
    });
}
