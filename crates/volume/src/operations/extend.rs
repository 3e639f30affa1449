//! Growing an attached volume: the export's daemon resizes the disk the
//! guest sees, then compute is told so the guest rescans it.

use crate::service::VolumeService;
use crate::store::attachments::{self, AttachStatus};
use crate::store::{self, db_err, operations::OperationRow};
use ferrostack_core::Result;

/// The operation kind of an extend of an `in-use` volume.
pub const EXTEND_ATTACHED: &str = "extend_attached_volume";

/// Run an [`EXTEND_ATTACHED`] operation: `block_resize` in the daemon (and
/// the file, for a volume whose export is gone), `in-use` again, then
/// `volume-extended` to compute for each server using it. On failure the
/// old size comes back and the volume is `in-use`, as it was.
pub async fn run_extend_attached(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let db = &svc.db;
    let Some(v) = store::volumes::get(db, &row.volume_id).await? else {
        return store::operations::set_state(db, &row.id, "done", None).await;
    };
    let new_size = row.params["new_size"].as_i64().unwrap_or(v.size);
    let grown = svc
        .exporter
        .resize(&v.id, new_size.max(0) as u64 * (1 << 30))
        .await;
    if let Err(e) = grown {
        tracing::warn!(volume = %v.id, error = %e, "extend of an attached volume failed");
        let old = row.params["old_size"].as_i64().unwrap_or(v.size);
        let mut conn = db.pool.acquire().await.map_err(db_err)?;
        store::volumes::resize_on(db, &mut conn, &v.id, old, "extending", "in-use").await?;
        return store::operations::set_state(db, &row.id, "failed", Some(e.message())).await;
    }
    store::volumes::transition(db, &v.id, &["extending"], "in-use").await?;
    svc.notify_by_id("volume.resize.end", &v.id).await?;
    for a in attachments::of_volume(db, &v.id).await? {
        let Some(server) = a
            .instance_uuid
            .filter(|_| a.status == AttachStatus::Attached)
        else {
            continue;
        };
        if let Err(e) = svc.nova.volume_extended(&server, &v.id).await {
            tracing::warn!(volume = %v.id, server, error = %e, "volume-extended not delivered");
        }
    }
    store::operations::set_state(db, &row.id, "done", None).await
}
