//! Where a new volume's data comes from (the `create_volume` operation's
//! backend step): empty, a snapshot, another volume, a backup or an image; and what a volume's delete removes besides its own data (the
//! snapshots a `cascade` delete takes along).

use crate::service::VolumeService;
use crate::store::volumes::Volume;
use ferrostack_core::Result;
use serde_json::Value;

/// Fill volume `v` from the source its create recorded in `params`.
/// Idempotent, as every backend step.
pub async fn populate(svc: &VolumeService, v: &Volume, params: &Value) -> Result<()> {
    let size = v.size.max(0) as u64;
    if let Some(snap) = params["snapshot_id"].as_str() {
        return svc.backend.create_from_snapshot(&v.id, snap, size).await;
    }
    if let Some(src) = params["source_volid"].as_str() {
        return svc.backend.clone_volume(&v.id, src, size).await;
    }
    if params["image_id"].is_string() {
        return super::image::populate(svc, v, params).await;
    }
    svc.backend.create(&v.id, size).await
}

/// A volume's delete: the snapshots still there (a `cascade` delete), then
/// the volume's own data.
pub async fn delete(svc: &VolumeService, v: &Volume) -> Result<()> {
    super::snapshot::delete_all_of(svc, &v.id).await?;
    match tokio::fs::remove_file(super::image::download_path(svc, &v.id)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ferrostack_core::Error::internal(e))
        }
        _ => {}
    }
    svc.backend.delete(&v.id).await
}
