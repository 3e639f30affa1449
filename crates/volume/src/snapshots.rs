//! The snapshot service: who may see and change which snapshot, the
//! status machine (`creating → available`, `deleting → gone`, `error` /
//! `error_deleting` when the backend fails) and the `snapshots` and
//! `gigabytes` quotas checked with the insert they guard.

use crate::operations::snapshot as op;
use crate::service::{invalid_volume_status, VolumeService};
use crate::sources::snapshot_not_found;
use crate::store::{self, snapshots::Snapshot, types::VolumeType};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Statuses a snapshot may be deleted in.
pub const DELETABLE: &[&str] = &["available", "error"];
/// What `os-force_delete` deletes: Cinder's force skips the status
/// condition, so every status (a delete again from `deleting` too).
pub const FORCE_DELETABLE: &[&str] = &[
    "available",
    "error",
    "error_deleting",
    "creating",
    "deleting",
    "backing-up",
    "restoring",
];
/// What `os-reset_status` may set.
pub const RESETTABLE: &[&str] = &[
    "available",
    "error",
    "error_deleting",
    "creating",
    "deleting",
];

/// What a snapshot create asks for, after the API checked its shape.
pub struct NewSnapshot {
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub force: bool,
}

impl VolumeService {
    /// A snapshot the caller may see (its project's, or any for an admin).
    pub async fn visible_snapshot(&self, ctx: &AuthContext, id: &str) -> Result<Snapshot> {
        let s = store::snapshots::get(&self.db, id)
            .await?
            .ok_or_else(|| snapshot_not_found(id))?;
        if ctx.project_id.as_deref() != Some(&s.project_id) && !self.is_admin(ctx) {
            return Err(snapshot_not_found(id));
        }
        Ok(s)
    }

    /// A private type is usable only by the projects granted it (and admins).
    pub async fn check_type_access(&self, ctx: &AuthContext, t: &VolumeType) -> Result<()> {
        if self.type_visible(ctx, t).await? {
            Ok(())
        } else {
            Err(crate::service::type_not_found(&t.id))
        }
    }

    pub async fn type_visible(&self, ctx: &AuthContext, t: &VolumeType) -> Result<bool> {
        if t.is_public || self.is_admin(ctx) {
            return Ok(true);
        }
        let Some(p) = ctx.project_id.as_deref() else {
            return Ok(false);
        };
        Ok(store::type_access::projects(&self.db, &t.id)
            .await?
            .iter()
            .any(|x| x == p))
    }

    /// A volume with snapshots is deleted only with `cascade`, and then
    /// only when none of them is busy.
    pub async fn check_snapshots_before_delete(&self, id: &str, cascade: bool) -> Result<()> {
        let snaps = store::snapshots::of_volume(&self.db, id).await?;
        if snaps.is_empty() {
            return Ok(());
        }
        if !cascade {
            return Err(invalid_volume_status());
        }
        if let Some(s) = snaps
            .iter()
            .find(|s| !DELETABLE.contains(&s.status.as_str()))
        {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Snapshot {} status must be available or error, but current status is: {}.",
                s.id, s.status
            )));
        }
        Ok(())
    }

    /// `os-update_snapshot_status` (the service that made a snapshot
    /// reports on it): from `creating` to `creating`, `available` or
    /// `error`; from `deleting` to `deleting` or `error_deleting`.
    pub async fn update_snapshot_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: &str,
        progress: Option<&str>,
    ) -> Result<()> {
        let s = self.visible_snapshot(ctx, id).await?;
        self.authorize(
            ctx,
            "snapshot_extension:snapshot_actions:update_snapshot_status",
            &s.project_id,
        )?;
        let allowed: &[&str] = match s.status.as_str() {
            "creating" => &["creating", "available", "error"],
            "deleting" => &["deleting", "error_deleting"],
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Snapshot status {other} not allowed for update_snapshot_status"
                )))
            }
        };
        if !allowed.contains(&status) {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Provided snapshot status {status} not allowed for snapshot with status {}.",
                s.status
            )));
        }
        if !store::snapshots::set_status_progress(&self.db, id, &s.status, status, progress).await?
        {
            return Err(Error::Conflict(format!(
                "Snapshot {id} changed status while being updated."
            )));
        }
        Ok(())
    }

    /// Record a snapshot in `creating` with its operation, under the
    /// project's quota lock, then run it.
    pub async fn create_snapshot(
        self: &Arc<Self>,
        ctx: &AuthContext,
        req: NewSnapshot,
    ) -> Result<Snapshot> {
        let v = self.visible_volume(ctx, &req.volume_id).await?;
        self.authorize(ctx, "volume:create_snapshot", &v.project_id)?;
        let allowed: &[&str] = if req.force {
            &["available", "in-use"]
        } else {
            &["available"]
        };
        if !allowed.contains(&v.status.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Volume {} status must be available, but current status is: {}.",
                v.id, v.status
            )));
        }
        let now = store::now_str();
        let s = Snapshot {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: v.project_id.clone(),
            user_id: ctx.user_id.clone(),
            volume_id: v.id.clone(),
            name: req.name,
            description: req.description,
            size: v.size,
            status: "creating".into(),
            metadata: req.metadata,
            created_at: now.clone(),
            updated_at: now,
            progress: None,
        };
        let type_name = self
            .type_names()
            .await?
            .remove(&v.volume_type_id)
            .unwrap_or_default();
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &v.project_id)
            .await?;
        let deltas = crate::quota::snapshot_deltas(&type_name, s.size);
        self.check_quotas_on(&mut tx, &v.project_id, &deltas)
            .await?;
        store::snapshots::insert_on(&self.db, &mut tx, &s).await?;
        let op_id = uuid::Uuid::new_v4().to_string();
        let params = json!({"snapshot_id": s.id});
        store::operations::create_on(&self.db, &mut tx, &op_id, op::CREATE, &v.id, &params).await?;
        tx.commit()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        op::notify(self, "snapshot.create.start", &s).await;
        crate::operation::start(self, &op_id).await?;
        Ok(s)
    }

    /// Delete a snapshot in one of `from` (its rule already checked).
    pub async fn delete_snapshot(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        force: bool,
    ) -> Result<()> {
        let s = self.visible_snapshot(ctx, id).await?;
        let (rule, from) = if force {
            (
                "volume_extension:snapshot_admin_actions:force_delete",
                FORCE_DELETABLE,
            )
        } else {
            ("volume:delete_snapshot", DELETABLE)
        };
        self.authorize(ctx, rule, &s.project_id)?;
        let op_id = uuid::Uuid::new_v4().to_string();
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        if !store::snapshots::transition_on(&self.db, &mut tx, id, from, "deleting").await? {
            return Err(Error::BadRequest(format!(
                "Invalid snapshot: Volume Snapshot status must be {}",
                from.join(" or ")
            )));
        }
        let params = json!({"snapshot_id": id});
        store::operations::create_on(&self.db, &mut tx, &op_id, op::DELETE, &s.volume_id, &params)
            .await?;
        tx.commit()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        op::notify_by_id(self, "snapshot.delete.start", id).await?;
        crate::operation::start(self, &op_id).await
    }

    /// `os-reset_status` on a snapshot (admin): the record only.
    pub async fn reset_snapshot_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: &str,
    ) -> Result<()> {
        let s = self.visible_snapshot(ctx, id).await?;
        self.authorize(
            ctx,
            "volume_extension:snapshot_admin_actions:reset_status",
            &s.project_id,
        )?;
        if !RESETTABLE.contains(&status) {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid status {status} for a snapshot ({}).",
                RESETTABLE.join(", ")
            )));
        }
        store::snapshots::transition(&self.db, id, &[s.status.as_str()], status).await?;
        Ok(())
    }
}

impl VolumeService {
    /// `os-retype` between types of this one backend: the record changes,
    /// the per-type quotas of the new type are checked under the lock.
    pub async fn retype_volume(&self, ctx: &AuthContext, id: &str, new_type: &str) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(ctx, "volume:retype", &v.project_id)?;
        let t = self.find_type(new_type).await?;
        self.check_type_access(ctx, &t).await?;
        if !matches!(v.status.as_str(), "available" | "in-use") {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Volume {id} status must be available or in-use, but current status is: {}.",
                v.status
            )));
        }
        if t.id == v.volume_type_id {
            return Err(Error::BadRequest(
                "Invalid input received: Retype requires a different volume type from the volume's."
                    .into(),
            ));
        }
        let snaps = store::snapshots::of_volume(&self.db, id).await?;
        let mut deltas = vec![
            (format!("volumes_{}", t.name), 1),
            (format!("gigabytes_{}", t.name), v.size),
        ];
        if !snaps.is_empty() {
            let gb: i64 = snaps.iter().map(|s| s.size).sum();
            deltas.push((format!("snapshots_{}", t.name), snaps.len() as i64));
            deltas[1].1 += gb;
        }
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &v.project_id)
            .await?;
        self.check_quotas_on(&mut tx, &v.project_id, &deltas)
            .await?;
        store::volumes::set_type_on(&self.db, &mut tx, id, &t.id).await?;
        tx.commit()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(())
    }
}
