//! Cinder's periodic usage audit: `volume.exists` for every volume (and
//! `snapshot.exists`, `backup.exists`) once per audit period, so metering
//! bills what exists even when nothing changes.

use crate::service::VolumeService;
use crate::store;
use ferrostack_core::Result;
use std::sync::Arc;
use std::time::Duration;

/// Cinder's default `volume_usage_audit_period`: an hour.
pub const PERIOD: Duration = Duration::from_secs(3600);

/// Send the audit's notifications once, for what exists now.
pub async fn emit_exists(svc: &VolumeService) -> Result<()> {
    for v in store::volumes::list(&svc.db, None).await? {
        svc.notify("volume.exists", &v).await;
    }
    for s in store::snapshots::list(&svc.db, None).await? {
        crate::operations::snapshot::notify(svc, "snapshot.exists", &s).await;
    }
    for b in store::backups::list(&svc.db, None).await? {
        crate::operations::backup::notify(svc, "backup.exists", &b).await;
    }
    Ok(())
}

/// Run the audit every [`PERIOD`] for as long as the service lives, on
/// one controller at a time (the lease `periodic:volume-usage-audit`).
pub fn spawn(svc: &Arc<VolumeService>) {
    let weak = Arc::downgrade(svc);
    let mut lease = ferrostack_db::lease::Periodic::new(
        &svc.db,
        "volume-usage-audit",
        &svc.config.common.host,
        PERIOD,
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(svc) = weak.upgrade() else { return };
            if !lease.turn().await {
                continue;
            }
            if let Err(e) = emit_exists(&svc).await {
                tracing::warn!(error = %e, "volume usage audit failed");
            }
        }
    });
}
