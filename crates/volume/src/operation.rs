//! The multi-step volume operations, durable as compute's sagas at the
//! scale a volume needs: the record is written with the status change that
//! starts the operation, the backend step is idempotent, and the step that
//! ends it (status and record) comes after. A service restarted in the
//! middle runs every `running` operation again and finishes the undo of
//! every `unwinding` one, so no volume stays `creating` or `deleting` and
//! no file outlives its volume.
//!
//! - `create_volume`: backend create → `available`; on failure the file is
//!   removed (undo) and the volume is `error`.
//! - `extend_volume`: the record already has the new size (`extending`);
//!   backend extend → `available`; on failure the old size comes back and
//!   the volume is `error_extending`, as Cinder leaves it.
//! - `delete_volume`: backend delete → the record goes; on failure the
//!   volume is `error_deleting` (its file may be partly gone; delete again).

use crate::service::VolumeService;
use crate::store::{self, operations::OperationRow};
use ferrostack_core::{Error, Result};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const CREATE: &str = "create_volume";
pub const DELETE: &str = "delete_volume";
pub const EXTEND: &str = "extend_volume";

/// Run a recorded operation in the background (unless the service is paused).
pub async fn start(svc: &Arc<VolumeService>, op_id: &str) -> Result<()> {
    if svc.paused.load(Ordering::SeqCst) {
        return Ok(());
    }
    let row = store::operations::get(&svc.db, op_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("operation {op_id} vanished")))?;
    spawn(svc, row);
    Ok(())
}

fn spawn(svc: &Arc<VolumeService>, row: OperationRow) {
    let svc = svc.clone();
    tokio::spawn(async move {
        if let Err(e) = execute(&svc, &row).await {
            tracing::error!(operation = %row.id, error = %e, "volume operation bookkeeping failed");
        }
        svc.operation_finished.notify_waiters();
    });
}

/// Pick up every operation a previous run left unfinished.
pub async fn resume_all(svc: &Arc<VolumeService>) -> Result<usize> {
    let rows = store::operations::unfinished(&svc.db).await?;
    for row in &rows {
        tracing::info!(operation = %row.id, kind = %row.kind, volume = %row.volume_id, "resuming volume operation");
        spawn(svc, row.clone());
    }
    Ok(rows.len())
}

/// Run (or resume) one operation to its end.
pub async fn execute(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    if let Some(outcome) = crate::operations::execute(svc, row).await {
        return outcome;
    }
    let db = &svc.db;
    let Some(volume) = store::volumes::get(db, &row.volume_id).await? else {
        // A delete that removed the record but not yet its own: done.
        store::operations::set_state(db, &row.id, "done", None).await?;
        return Ok(());
    };
    let failure = if row.state == "unwinding" {
        Some(Error::Internal(
            "The service restarted while undoing a failed operation.".into(),
        ))
    } else {
        let outcome = match row.kind.as_str() {
            CREATE => match crate::scheduler::place(svc, &volume).await {
                Ok(()) => crate::operations::source::populate(svc, &volume, &row.params).await,
                Err(e) => {
                    use crate::messages::{Action, Detail};
                    let (action, detail) =
                        (Action::ScheduleAllocateVolume, Detail::NoBackendAvailable);
                    svc.record_message(&volume.project_id, &volume.id, action, detail)
                        .await;
                    Err(e)
                }
            },
            DELETE => match svc.exporter.unexport(&volume.id).await {
                Ok(()) => crate::operations::source::delete(svc, &volume).await,
                Err(e) => Err(e),
            },
            EXTEND => {
                svc.backend
                    .extend(&volume.id, volume.size.max(0) as u64)
                    .await
            }
            other => Err(Error::Internal(format!("unknown volume operation {other}"))),
        };
        outcome.err()
    };
    match failure {
        None => {
            let event = match row.kind.as_str() {
                CREATE => {
                    store::volumes::transition(db, &volume.id, &["creating"], "available").await?;
                    "volume.create.end"
                }
                EXTEND => {
                    store::volumes::transition(db, &volume.id, &["extending"], "available").await?;
                    "volume.resize.end"
                }
                _ => {
                    let mut tx = db
                        .pool
                        .begin()
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    store::volumes::delete_on(db, &mut tx, &volume.id).await?;
                    tx.commit()
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    store::attachments::delete_of_volume(db, &volume.id).await?;
                    svc.notify("volume.delete.end", &volume).await;
                    return store::operations::set_state(db, &row.id, "done", None).await;
                }
            };
            svc.notify_by_id(event, &volume.id).await?;
            store::operations::set_state(db, &row.id, "done", None).await
        }
        Some(err) => {
            tracing::warn!(volume = %volume.id, operation = %row.kind, error = %err, "volume operation failed");
            store::operations::set_state(db, &row.id, "unwinding", Some(err.message())).await?;
            if row.kind == CREATE {
                // Undo: no file may outlive a volume in error.
                crate::operations::source::delete(svc, &volume).await?;
                store::volumes::transition(db, &volume.id, &["creating"], "error").await?;
            } else if row.kind == EXTEND {
                let old = row.params["old_size"].as_i64().unwrap_or(volume.size);
                let mut conn = db
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?;
                store::volumes::resize_on(
                    db,
                    &mut conn,
                    &volume.id,
                    old,
                    "extending",
                    "error_extending",
                )
                .await?;
            } else {
                store::volumes::transition(db, &volume.id, &["deleting"], "error_deleting").await?;
            }
            store::operations::set_state(db, &row.id, "failed", Some(err.message())).await
        }
    }
}
