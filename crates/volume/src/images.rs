//! The volume service's side of the image service: reading an image's
//! record (as the caller, so Glance decides what the caller may see),
//! downloading and uploading data (as the `cinder` service user, so a
//! resumed operation needs no user token), and the checks Cinder makes
//! before it makes a volume from an image.

use crate::image_client::qemu_format;
use crate::service::VolumeService;
use crate::sources::Source;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const GIB: u64 = 1 << 30;

/// The properties Cinder copies into `volume_image_metadata`.
fn image_metadata(image: &Value) -> Map<String, Value> {
    const CORE: &[&str] = &[
        "checksum",
        "container_format",
        "disk_format",
        "min_disk",
        "min_ram",
        "size",
    ];
    const SKIP: &[&str] = &[
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "tags",
        "owner",
        "created_at",
        "updated_at",
        "file",
        "schema",
        "self",
        "direct_url",
        "locations",
        "os_hash_algo",
        "os_hash_value",
        "os_hidden",
        "virtual_size",
        "stores",
    ];
    let mut m = Map::new();
    m.insert("image_id".into(), image["id"].clone());
    m.insert("image_name".into(), image["name"].clone());
    for k in CORE {
        m.insert((*k).into(), json!(image[*k].to_string().trim_matches('"')));
    }
    if let Some(obj) = image.as_object() {
        for (k, v) in obj {
            if !SKIP.contains(&k.as_str()) && !CORE.contains(&k.as_str()) {
                m.insert(
                    k.clone(),
                    json!(v.as_str().map(str::to_owned).unwrap_or(v.to_string())),
                );
            }
        }
    }
    m
}

fn bad_image(id: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input received: Invalid image identifier or unable to access requested image. ({id})"
    ))
}

impl VolumeService {
    /// An active disk image the caller may see, as a source; `size` (GiB)
    /// is checked against its size, virtual size and `min_disk`.
    pub async fn image_source(
        &self,
        ctx: &AuthContext,
        id: &str,
        size: Option<i64>,
    ) -> Result<(Source, i64)> {
        let image = self
            .images
            .show_as(&ctx.token, id)
            .await?
            .ok_or_else(|| bad_image(id))?;
        if image["status"] != "active" {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Image {id} is not active."
            )));
        }
        let disk = image["disk_format"].as_str().unwrap_or_default();
        let container = image["container_format"].as_str().unwrap_or_default();
        let Some(qemu) = qemu_format(disk).filter(|_| matches!(container, "bare" | "ami")) else {
            return Err(Error::BadRequest(format!(
                "Image {id} is unacceptable: disk format {disk} in container {container} is not a volume's disk."
            )));
        };
        let bytes = image["size"]
            .as_u64()
            .unwrap_or(0)
            .max(image["virtual_size"].as_u64().unwrap_or(0));
        let needed = bytes.div_ceil(GIB) as i64;
        let min_disk = image["min_disk"].as_i64().unwrap_or(0);
        let size = size.unwrap_or(needed.max(min_disk).max(1));
        if needed > size {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Size of specified image {needed} GB is larger than volume size {size} GB."
            )));
        }
        if min_disk > size {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Volume size {size}GB cannot be smaller than the image minDisk size {min_disk}GB."
            )));
        }
        let params = json!({
            "image_id": id,
            "qemu_format": qemu,
            "image_metadata": image_metadata(&image),
        });
        let source = Source {
            params,
            min_size: size,
            volume_type_id: None,
            snapshot_id: None,
            source_volid: None,
            // The create operation records both once the data is in.
            bootable: false,
            image_metadata: serde_json::Map::new(),
        };
        Ok((source, size))
    }
}

/// What `os-volume_upload_image` asks for, after the API checked its shape.
pub struct UploadRequest {
    pub image_name: String,
    pub disk_format: String,
    pub container_format: String,
    pub visibility: String,
    pub protected: bool,
    pub force: bool,
}

impl VolumeService {
    /// Make an image record (owned by the volume's project) and record the
    /// upload of the volume's data to it (the volume `uploading`); the
    /// response body of Cinder's action.
    pub async fn upload_to_image(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        req: UploadRequest,
    ) -> Result<Value> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(
            ctx,
            "volume_extension:volume_actions:upload_image",
            &v.project_id,
        )?;
        let allowed: &[&str] = if req.force {
            &["available", "in-use"]
        } else {
            &["available"]
        };
        if !allowed.contains(&v.status.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Volume {id} status must be available or in-use with force, but current status is: {}.",
                v.status
            )));
        }
        let Some(qemu) =
            qemu_format(&req.disk_format).filter(|f| *f != "raw" || req.disk_format == "raw")
        else {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid disk-format '{}' is specified. Allowed disk-formats are raw, qcow2, vmdk, vdi, vhd, vhdx.",
                req.disk_format
            )));
        };
        let image = self
            .images
            .create(&json!({
                "name": req.image_name,
                "disk_format": req.disk_format,
                "container_format": req.container_format,
                "visibility": req.visibility,
                "protected": req.protected,
                "owner": v.project_id,
            }))
            .await?;
        let image_id = image["id"].as_str().unwrap_or_default().to_owned();
        let op_id = uuid::Uuid::new_v4().to_string();
        let params =
            json!({"image_id": image_id, "qemu_format": qemu, "previous_status": v.status});
        let mut tx = self.db.pool.begin().await.map_err(Error::internal)?;
        let from = [v.status.as_str()];
        let moved =
            crate::store::volumes::transition_on(&self.db, &mut tx, id, &from, "uploading").await?;
        if !moved {
            drop(tx);
            let _ = self.images.delete(&image_id).await;
            return Err(crate::service::invalid_volume_status());
        }
        let kind = crate::operations::image::UPLOAD;
        crate::store::operations::create_on(&self.db, &mut tx, &op_id, kind, id, &params).await?;
        tx.commit().await.map_err(Error::internal)?;
        crate::operation::start(self, &op_id).await?;
        let types = self.type_names().await?;
        Ok(json!({"os-volume_upload_image": {
            "id": v.id,
            "updated_at": v.updated_at,
            "status": "uploading",
            "display_description": v.description,
            "size": v.size,
            "volume_type": {"name": types.get(&v.volume_type_id)},
            "image_id": image_id,
            "container_format": req.container_format,
            "disk_format": req.disk_format,
            "image_name": req.image_name,
            "protected": req.protected,
            "visibility": req.visibility,
        }}))
    }
}
