//! The durable operations on a volume's data beyond create, extend and
//! delete (`crate::operation`): snapshots, backups and restores, and where
//! a new volume's data comes from. Each kind is recorded in `operations`
//! with the status change that starts it, its backend step is idempotent,
//! and a restart runs a `running` one again and finishes the undo of an
//! `unwinding` one, as `crate::operation` does for its kinds.

pub mod backup;
pub mod extend;
pub mod image;
pub mod reimage;
pub mod snapshot;
pub mod source;

use crate::service::VolumeService;
use crate::store::{self, operations::OperationRow};
use ferrostack_core::{Error, Result};

/// Run `row` if it is one of this module's kinds (`None` otherwise).
pub async fn execute(svc: &VolumeService, row: &OperationRow) -> Option<Result<()>> {
    Some(match row.kind.as_str() {
        snapshot::CREATE => snapshot::create(svc, row).await,
        snapshot::DELETE => snapshot::delete(svc, row).await,
        backup::CREATE => backup::create(svc, row).await,
        backup::DELETE => backup::delete(svc, row).await,
        backup::RESTORE => backup::restore(svc, row).await,
        image::UPLOAD => image::upload_image(svc, row).await,
        reimage::REIMAGE => reimage::run(svc, row).await,
        extend::EXTEND_ATTACHED if row.state == "running" => {
            extend::run_extend_attached(svc, row).await
        }
        _ => return None,
    })
}

/// The step's error, or the restart's when the operation was already
/// unwinding (its undo must be finished, never the step run again).
pub(crate) async fn step<F>(row: &OperationRow, work: F) -> Option<Error>
where
    F: std::future::Future<Output = Result<()>>,
{
    if row.state == "unwinding" {
        return Some(Error::Internal(
            "The service restarted while undoing a failed operation.".into(),
        ));
    }
    work.await.err()
}

/// Mark `row` unwinding with `err` (before its undo runs).
pub(crate) async fn unwinding(svc: &VolumeService, row: &OperationRow, err: &Error) -> Result<()> {
    tracing::warn!(operation = %row.id, kind = %row.kind, error = %err, "volume operation failed");
    store::operations::set_state(&svc.db, &row.id, "unwinding", Some(err.message())).await
}

pub(crate) async fn failed(svc: &VolumeService, row: &OperationRow, err: &Error) -> Result<()> {
    store::operations::set_state(&svc.db, &row.id, "failed", Some(err.message())).await
}

pub(crate) async fn done(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    store::operations::set_state(&svc.db, &row.id, "done", None).await
}

/// A string parameter of an operation.
pub(crate) fn param(row: &OperationRow, key: &str) -> String {
    row.params[key].as_str().unwrap_or_default().to_owned()
}
