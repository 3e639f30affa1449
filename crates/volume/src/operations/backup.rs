//! Backups to a directory: one qcow2 file per backup under `[volume]
//! backup_dir`, written under a temporary name and renamed.
//!
//! - `create_backup`: the volume (or the snapshot backed up) is
//!   `backing-up`; write the file → backup `available`, the volume back
//!   to its previous status (the snapshot to `available`); on failure the
//!   partial file goes and the backup is `error` (with its reason). An
//!   incremental backup's file is a qcow2 over its parent's, holding the
//!   blocks that changed since (`VolumeBackend::write_backup`); a restore
//!   reads the whole chain.
//! - `delete_backup`: remove the file → the record goes; `error` on failure.
//! - `restore_backup`: the volume is `restoring-backup`, the backup
//!   `restoring`; import → both `available`; on failure the volume is
//!   `error_restoring` and the backup `available` again.

use super::{done, failed, param, step, unwinding};
use crate::backend::BackupSource;
use crate::service::VolumeService;
use crate::store::{self, backups::Backup, operations::OperationRow};
use ferrostack_core::{Error, Result};
use std::path::PathBuf;

pub const CREATE: &str = "create_backup";
pub const DELETE: &str = "delete_backup";
pub const RESTORE: &str = "restore_backup";

/// Where the directory driver keeps backups: `[volume] backup_dir`, by
/// default `<data_dir>/backups`.
pub fn backups_dir(svc: &VolumeService) -> PathBuf {
    if svc.config.volume.backup_dir.is_empty() {
        svc.config.common.data_dir.join("backups")
    } else {
        PathBuf::from(&svc.config.volume.backup_dir)
    }
}

/// The file of backup `id`.
pub fn path(svc: &VolumeService, id: &str) -> PathBuf {
    backups_dir(svc).join(format!("backup-{id}"))
}

fn tmp_path(svc: &VolumeService, id: &str) -> PathBuf {
    backups_dir(svc).join(format!(".backup-{id}.tmp"))
}

async fn remove_files(svc: &VolumeService, id: &str) -> Result<()> {
    for p in [tmp_path(svc, id), path(svc, id)] {
        match tokio::fs::remove_file(&p).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Internal(format!(
                    "cannot remove {}: {e}",
                    p.display()
                )))
            }
        }
    }
    Ok(())
}

/// Export the volume into the backup's file (idempotent: a file with the
/// backup's name is whole).
async fn write_backup(svc: &VolumeService, b: &Backup) -> Result<()> {
    let dest = path(svc, &b.id);
    if dest.exists() {
        return Ok(());
    }
    let dir = backups_dir(svc);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = tmp_path(svc, &b.id);
    let _ = tokio::fs::remove_file(&tmp).await;
    let source = match &b.snapshot_id {
        Some(s) => BackupSource::Snapshot(s),
        None => BackupSource::Volume(&b.volume_id),
    };
    let parent = b.parent_id.as_deref().map(|p| path(svc, p));
    svc.backend
        .write_backup(source, &tmp, parent.as_deref())
        .await?;
    tokio::fs::rename(&tmp, &dest)
        .await
        .map_err(|e| Error::Internal(format!("cannot place {}: {e}", dest.display())))
}

pub async fn create(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let id = param(row, "backup_id");
    let previous = row.params["previous_status"]
        .as_str()
        .unwrap_or("available");
    let Some(b) = store::backups::get(&svc.db, &id).await? else {
        return done(svc, row).await;
    };
    let outcome = step(row, write_backup(svc, &b)).await;
    match &b.snapshot_id {
        Some(s) => {
            store::snapshots::transition(&svc.db, s, &["backing-up"], "available").await?;
        }
        None => {
            store::volumes::transition(&svc.db, &b.volume_id, &["backing-up"], previous).await?;
        }
    }
    match outcome {
        None => {
            store::backups::transition(&svc.db, &id, &["creating"], "available", None).await?;
            notify_by_id(svc, "backup.create.end", &id).await?;
            done(svc, row).await
        }
        Some(err) => {
            unwinding(svc, row, &err).await?;
            remove_files(svc, &id).await?;
            store::backups::transition(&svc.db, &id, &["creating"], "error", Some(err.message()))
                .await?;
            notify_by_id(svc, "backup.create.error", &id).await?;
            failed(svc, row, &err).await
        }
    }
}

pub async fn delete(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let id = param(row, "backup_id");
    let Some(b) = store::backups::get(&svc.db, &id).await? else {
        return done(svc, row).await;
    };
    match step(row, remove_files(svc, &id)).await {
        None => {
            store::backups::delete(&svc.db, &id).await?;
            notify(svc, "backup.delete.end", &b).await;
            done(svc, row).await
        }
        Some(err) => {
            unwinding(svc, row, &err).await?;
            store::backups::transition(&svc.db, &id, &["deleting"], "error", Some(err.message()))
                .await?;
            failed(svc, row, &err).await
        }
    }
}

pub async fn restore(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let id = param(row, "backup_id");
    let volume = store::volumes::get(&svc.db, &row.volume_id).await?;
    let (Some(b), Some(v)) = (store::backups::get(&svc.db, &id).await?, volume) else {
        return done(svc, row).await;
    };
    let src = path(svc, &id);
    let work = svc
        .backend
        .import(&v.id, &src, "qcow2", v.size.max(0) as u64);
    let outcome = step(row, work).await;
    store::backups::transition(&svc.db, &b.id, &["restoring"], "available", None).await?;
    match outcome {
        None => {
            let from = ["restoring-backup", "creating"];
            store::volumes::transition(&svc.db, &v.id, &from, "available").await?;
            notify(svc, "backup.restore.end", &b).await;
            done(svc, row).await
        }
        Some(err) => {
            unwinding(svc, row, &err).await?;
            let from = ["restoring-backup", "creating"];
            store::volumes::transition(&svc.db, &v.id, &from, "error_restoring").await?;
            failed(svc, row, &err).await
        }
    }
}

/// Publish a backup usage notification; the bus being down fails nothing.
pub async fn notify(svc: &VolumeService, event: &str, b: &Backup) {
    let payload = serde_json::json!({
        "backup_id": b.id,
        "volume_id": b.volume_id,
        "tenant_id": b.project_id,
        "user_id": b.user_id,
        "display_name": b.name,
        "size": b.size,
        "status": b.status,
        "fail_reason": b.fail_reason,
        "created_at": b.created_at,
    });
    let publisher = format!("backup.{}", svc.config.common.host);
    if let Err(e) = svc.bus.notify(&publisher, event, payload).await {
        tracing::warn!(backup = %b.id, event, error = %e, "notification not sent");
    }
}

pub async fn notify_by_id(svc: &VolumeService, event: &str, id: &str) -> Result<()> {
    if let Some(b) = store::backups::get(&svc.db, id).await? {
        notify(svc, event, &b).await;
    }
    Ok(())
}
