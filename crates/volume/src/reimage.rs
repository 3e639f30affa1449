//! The `os-reimage` request: checked and recorded here, run by
//! [`crate::operations::reimage`] in the background (a module of the
//! request side, as `volumes.rs` and `snapshots.rs` are, so the operations
//! never call back into their runner).

use crate::operations::reimage::REIMAGE;
use crate::service::VolumeService;
use crate::store;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use std::sync::Arc;

impl VolumeService {
    /// Check and record a re-image; the operation runs in the background.
    pub async fn reimage(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        image_id: &str,
        reimage_reserved: bool,
    ) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        let rule = if reimage_reserved {
            "volume:reimage_reserved"
        } else {
            "volume:reimage"
        };
        self.authorize(ctx, rule, &v.project_id)?;
        let mut from = vec!["available", "error"];
        if reimage_reserved {
            from.push("reserved");
        }
        if !from.contains(&v.status.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Volume {id} status must be {}, but current status is: {}.",
                from.join(" or "),
                v.status
            )));
        }
        let (source, _) = self.image_source(ctx, image_id, Some(v.size)).await?;
        let mut params = source.params;
        params["previous_status"] = serde_json::json!(v.status);
        let op_id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.db.pool.begin().await.map_err(Error::internal)?;
        let moved =
            store::volumes::transition_on(&self.db, &mut tx, id, &from, "downloading").await?;
        if !moved {
            return Err(crate::service::invalid_volume_status());
        }
        store::operations::create_on(&self.db, &mut tx, &op_id, REIMAGE, id, &params).await?;
        tx.commit().await.map_err(Error::internal)?;
        self.notify_by_id("volume.reimage.start", id).await?;
        crate::operation::start(self, &op_id).await
    }
}
