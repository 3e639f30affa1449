//! A volume create's source (`snapshot_id`, `source_volid`, `backup_id`):
//! checked when the request arrives, recorded as the create operation's
//! parameters, which `operations::source` reads when it fills the volume.

use crate::service::{invalid_volume_status, VolumeService};
use crate::store;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

/// What a new volume is made from, after its checks.
pub struct Source {
    /// The create operation's parameters (`{"snapshot_id": …}`, …).
    pub params: Value,
    /// The source's size in GiB: the least the volume may have.
    pub min_size: i64,
    /// The type the volume inherits when the request names none.
    pub volume_type_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub source_volid: Option<String>,
    /// Cinder's new volume takes the source volume's bootable flag and
    /// image metadata (a snapshot's: its volume's).
    pub bootable: bool,
    pub image_metadata: serde_json::Map<String, Value>,
}

pub fn snapshot_not_found(id: &str) -> Error {
    Error::NotFound(format!("Snapshot {id} could not be found."))
}

impl VolumeService {
    /// An `available` snapshot the caller may see, as a source.
    pub async fn snapshot_source(&self, ctx: &AuthContext, id: &str) -> Result<Source> {
        let snap = self.visible_snapshot(ctx, id).await?;
        if snap.status != "available" {
            return Err(Error::BadRequest(format!(
                "Invalid snapshot: Originating snapshot status must be one of 'available' values (current: {}).",
                snap.status
            )));
        }
        let parent = store::volumes::get(&self.db, &snap.volume_id).await?;
        Ok(Source {
            params: json!({"snapshot_id": id}),
            min_size: snap.size,
            bootable: parent.as_ref().is_some_and(|v| v.bootable),
            image_metadata: parent
                .as_ref()
                .map(|v| v.image_metadata.clone())
                .unwrap_or_default(),
            volume_type_id: parent.map(|v| v.volume_type_id),
            snapshot_id: Some(id.to_owned()),
            source_volid: None,
        })
    }

    /// An `available` or `in-use` volume the caller may see, to clone.
    pub async fn volume_source(&self, ctx: &AuthContext, id: &str) -> Result<Source> {
        let v = self.visible_volume(ctx, id).await?;
        if !matches!(v.status.as_str(), "available" | "in-use") {
            return Err(invalid_volume_status());
        }
        Ok(Source {
            params: json!({"source_volid": id}),
            min_size: v.size,
            volume_type_id: Some(v.volume_type_id),
            snapshot_id: None,
            source_volid: Some(id.to_owned()),
            bootable: v.bootable,
            image_metadata: v.image_metadata.clone(),
        })
    }

    /// A volume's size where the request gave one, else its source's; a
    /// size under the source's is refused as Cinder refuses it.
    pub fn size_for(size: Option<i64>, source: &Source) -> Result<i64> {
        let size = size.unwrap_or(source.min_size);
        if size < source.min_size {
            let what = if source.snapshot_id.is_some() {
                "snapshot"
            } else {
                "volume"
            };
            return Err(Error::BadRequest(format!(
                "Invalid input received: Volume size '{size}'GB cannot be smaller than the {what} \
                 size {}GB. They must be >= original {what} size.",
                source.min_size
            )));
        }
        Ok(size)
    }
}
