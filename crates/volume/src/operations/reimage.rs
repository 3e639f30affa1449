//! `os-reimage` (volume API 3.68): the volume's data is replaced by an
//! image's, as Cinder's re-image does for Nova's rebuild of a
//! volume-backed server (compute 2.93). An `available` or `error` volume
//! may be re-imaged, a `reserved` one (held by a server's attachment with
//! no connection) only with `reimage_reserved`; it is `downloading`
//! meanwhile and returns to the status it had, with the new image's
//! metadata; a failure leaves it `error`, as Cinder's. Either way every
//! server holding an attachment hears `volume-reimaged` (`completed` or
//! `failed`), which Nova's rebuild waits for.

use super::{done, failed, param, step, unwinding};
use crate::service::VolumeService;
use crate::store::{self, attachments, operations::OperationRow};
use ferrostack_core::Result;

pub const REIMAGE: &str = "reimage_volume";

/// Run (or resume) a [`REIMAGE`]: the image written over the volume
/// (a complete copy renamed over it, so a restart re-runs it safely).
pub async fn run(svc: &VolumeService, row: &OperationRow) -> Result<()> {
    let id = &row.volume_id;
    let Some(v) = store::volumes::get(&svc.db, id).await? else {
        return done(svc, row).await;
    };
    let previous = param(row, "previous_status");
    let outcome = step(row, super::image::populate(svc, &v, &row.params)).await;
    let status = match &outcome {
        None => {
            store::volumes::transition(&svc.db, id, &["downloading"], &previous).await?;
            svc.notify_by_id("volume.reimage.end", id).await?;
            "completed"
        }
        Some(err) => {
            unwinding(svc, row, err).await?;
            let _ = tokio::fs::remove_file(super::image::download_path(svc, id)).await;
            store::volumes::transition(&svc.db, id, &["downloading"], "error").await?;
            "failed"
        }
    };
    for a in attachments::of_volume(&svc.db, id).await? {
        let Some(server) = a.instance_uuid else {
            continue;
        };
        if let Err(e) = svc.nova.volume_reimaged(&server, id, status).await {
            tracing::warn!(volume = %id, server, error = %e, "volume-reimaged not delivered");
        }
    }
    match outcome {
        None => done(svc, row).await,
        Some(err) => failed(svc, row, &err).await,
    }
}
