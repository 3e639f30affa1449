//! `create_snapshot` (copy the volume's data → `available`; on failure
//! the copy is removed and the snapshot is `error`) and `delete_snapshot`
//! (remove the data → the record goes; on failure `error_deleting`).

use super::{done, failed, param, step, unwinding};
use crate::service::VolumeService;
use crate::store::{self, operations::OperationRow, snapshots::Snapshot};
use ferrostack_core::Result;

pub const CREATE: &str = "create_snapshot";
pub const DELETE: &str = "delete_snapshot";

pub async fn create(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let id = param(row, "snapshot_id");
    let Some(snap) = store::snapshots::get(&svc.db, &id).await? else {
        return done(svc, row).await;
    };
    match step(row, svc.backend.create_snapshot(&id, &snap.volume_id)).await {
        None => {
            store::snapshots::transition(&svc.db, &id, &["creating"], "available").await?;
            notify_by_id(svc, "snapshot.create.end", &id).await?;
            done(svc, row).await
        }
        Some(err) => {
            unwinding(svc, row, &err).await?;
            svc.backend.delete_snapshot(&id).await?;
            store::snapshots::transition(&svc.db, &id, &["creating"], "error").await?;
            notify_by_id(svc, "snapshot.create.error", &id).await?;
            failed(svc, row, &err).await
        }
    }
}

pub async fn delete(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let id = param(row, "snapshot_id");
    let Some(snap) = store::snapshots::get(&svc.db, &id).await? else {
        return done(svc, row).await;
    };
    match step(row, svc.backend.delete_snapshot(&id)).await {
        None => {
            store::snapshots::delete(&svc.db, &id).await?;
            notify(svc, "snapshot.delete.end", &snap).await;
            done(svc, row).await
        }
        Some(err) => {
            unwinding(svc, row, &err).await?;
            store::snapshots::transition(&svc.db, &id, &["deleting"], "error_deleting").await?;
            failed(svc, row, &err).await
        }
    }
}

/// Remove every snapshot of a volume being deleted with `cascade`: their
/// data, then their records.
pub async fn delete_all_of(svc: &VolumeService, volume_id: &str) -> Result<()> {
    for snap in store::snapshots::of_volume(&svc.db, volume_id).await? {
        svc.backend.delete_snapshot(&snap.id).await?;
        store::snapshots::delete(&svc.db, &snap.id).await?;
        notify(svc, "snapshot.delete.end", &snap).await;
    }
    Ok(())
}

/// Publish a snapshot usage notification (as Cinder's
/// `_notify_about_snapshot_usage`); the bus being down fails nothing.
pub async fn notify(svc: &VolumeService, event: &str, s: &Snapshot) {
    let payload = serde_json::json!({
        "snapshot_id": s.id,
        "volume_id": s.volume_id,
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "display_name": s.name,
        "volume_size": s.size,
        "status": s.status,
        "created_at": s.created_at,
        "metadata": s.metadata,
    });
    let publisher = format!("snapshot.{}", svc.config.common.host);
    if let Err(e) = svc.bus.notify(&publisher, event, payload).await {
        tracing::warn!(snapshot = %s.id, event, error = %e, "notification not sent");
    }
}

pub async fn notify_by_id(svc: &VolumeService, event: &str, id: &str) -> Result<()> {
    if let Some(s) = store::snapshots::get(&svc.db, id).await? {
        notify(svc, event, &s).await;
    }
    Ok(())
}
