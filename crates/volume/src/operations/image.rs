//! Volumes and images: a create from an image (download to a temporary
//! file next to the volumes, convert into the volume, record the image's
//! metadata, bootable) and `upload_image` (export the volume in the
//! requested format and upload it to an image record made before).

use super::{done, failed, param, step, unwinding};
use crate::service::VolumeService;
use crate::store::{self, operations::OperationRow, volumes::Volume};
use ferrostack_core::Result;
use serde_json::Value;
use std::path::PathBuf;

pub const UPLOAD: &str = "upload_image";

/// Where a create downloads its image (removed whatever the outcome).
pub fn download_path(svc: &VolumeService, volume_id: &str) -> PathBuf {
    svc.config
        .volumes_dir()
        .join(format!(".image-{volume_id}.tmp"))
}

/// Where an upload exports its volume.
fn export_path(svc: &VolumeService, volume_id: &str) -> PathBuf {
    svc.config
        .volumes_dir()
        .join(format!(".upload-{volume_id}.tmp"))
}

/// Fill volume `v` from image `params.image_id`.
pub async fn populate(svc: &VolumeService, v: &Volume, params: &Value) -> Result<()> {
    let image = params["image_id"].as_str().unwrap_or_default();
    let format = params["qemu_format"].as_str().unwrap_or("raw");
    let tmp = download_path(svc, &v.id);
    let outcome = async {
        svc.images.download(image, &tmp).await?;
        svc.backend
            .import(&v.id, &tmp, format, v.size.max(0) as u64)
            .await
    }
    .await;
    let _ = tokio::fs::remove_file(&tmp).await;
    outcome?;
    let meta = params["image_metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    store::volumes::set_image_metadata(&svc.db, &v.id, &meta).await
}

async fn upload(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let tmp = export_path(svc, &row.volume_id);
    let image = param(row, "image_id");
    let outcome = async {
        svc.backend
            .export(&row.volume_id, &tmp, &param(row, "qemu_format"))
            .await?;
        svc.images.upload(&image, &tmp).await
    }
    .await;
    let _ = tokio::fs::remove_file(&tmp).await;
    outcome
}

/// `upload_image`: the volume is `uploading`; on success it returns to its
/// previous status, on failure too, and the image record is deleted.
pub async fn upload_image(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let previous = row.params["previous_status"]
        .as_str()
        .unwrap_or("available")
        .to_owned();
    let outcome = step(row, upload(svc, row)).await;
    let id = &row.volume_id;
    match outcome {
        None => {
            store::volumes::transition(&svc.db, id, &["uploading"], &previous).await?;
            done(svc, row).await
        }
        Some(err) => {
            unwinding(svc, row, &err).await?;
            let _ = tokio::fs::remove_file(export_path(svc, id)).await;
            if let Err(e) = svc.images.delete(&param(row, "image_id")).await {
                tracing::warn!(volume = %id, error = %e, "image of a failed upload not deleted");
            }
            store::volumes::transition(&svc.db, id, &["uploading"], &previous).await?;
            failed(svc, row, &err).await
        }
    }
}
