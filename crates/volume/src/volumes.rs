//! A volume's life: create (placed, then made by its operation), delete,
//! force-delete, reset-status and extend, each a durable operation where
//! it has more than one step.

use crate::service::{invalid_volume_status, VolumeService};
use crate::store::{self, volumes::Volume};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Statuses a volume may be deleted in (Cinder's `delete` without `force`).
pub const DELETABLE: &[&str] = &[
    "available",
    "error",
    "error_restoring",
    "error_extending",
    "error_managing",
];

/// What `os-force_delete` also deletes.
pub const FORCE_DELETABLE: &[&str] = &[
    "available",
    "error",
    "error_restoring",
    "error_extending",
    "error_managing",
    "error_deleting",
    "maintenance",
];

/// The statuses `os-reset_status` may set: those this service's status
/// machine knows.
pub const RESETTABLE: &[&str] = &[
    "available",
    "error",
    "error_deleting",
    "error_extending",
    "creating",
    "deleting",
    "extending",
    "maintenance",
    "attaching",
    "detaching",
    "reserved",
];

/// What `os-force_delete` also deletes when no operation works on the
/// volume and no attachment holds it: a status an admin set with
/// `os-reset_status` (Cinder force-deletes whatever the status, unless
/// the volume is attached).
pub const FORCE_DELETABLE_IDLE: &[&str] = &[
    "creating",
    "attaching",
    "detaching",
    "reserved",
    "deleting",
    "extending",
];

/// What a create asks for, after the API checked its shape.
pub struct NewVolume {
    pub size: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    /// Where its data comes from (`None`: an empty volume).
    pub source: Option<crate::sources::Source>,
    /// The group it is made in (3.13+).
    pub group_id: Option<String>,
}

impl VolumeService {
    /// Record a volume in `creating` and its create operation, in one
    /// transaction under the project's quota lock, then run the operation.
    pub async fn create_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        req: NewVolume,
    ) -> Result<Volume> {
        let project_id = Self::project_of(ctx)?;
        let inherited = req.source.as_ref().and_then(|s| s.volume_type_id.clone());
        let vtype = match req.volume_type.as_deref().map(str::to_owned).or(inherited) {
            Some(t) => self.find_type(&t).await?,
            None => self.find_type("__DEFAULT__").await?,
        };
        self.check_type_access(ctx, &vtype).await?;
        if store::encryption::of_type(&self.db, &vtype.id)
            .await?
            .is_some()
        {
            // No key manager and no encrypting backend: refusing beats
            // writing in clear what the type promises to encrypt.
            return Err(Error::BadRequest(format!(
                "Invalid volume type: {} is an encrypted type; the {} backend cannot encrypt volumes.",
                vtype.name,
                self.backend.name()
            )));
        }
        self.check_volume_size(&project_id, req.size).await?;
        if let Some(group) = &req.group_id {
            self.check_group_takes(ctx, group, &vtype.id).await?;
        }
        let zone = &self.config.volume.storage_availability_zone;
        if let Some(az) = &req.availability_zone {
            if az != zone {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Availability zone '{az}' is invalid."
                )));
            }
        }
        let now = store::now_str();
        let v = Volume {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.clone(),
            user_id: ctx.user_id.clone(),
            name: req.name,
            description: req.description,
            size: req.size,
            status: "creating".into(),
            volume_type_id: vtype.id,
            availability_zone: zone.clone(),
            bootable: req.source.as_ref().is_some_and(|s| s.bootable),
            metadata: req.metadata,
            created_at: now.clone(),
            updated_at: now,
            snapshot_id: req.source.as_ref().and_then(|s| s.snapshot_id.clone()),
            source_volid: req.source.as_ref().and_then(|s| s.source_volid.clone()),
            image_metadata: req
                .source
                .as_ref()
                .map(|s| s.image_metadata.clone())
                .unwrap_or_default(),
            group_id: req.group_id,
        };
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &project_id)
            .await?;
        let deltas = crate::quota::volume_deltas(&vtype.name, v.size);
        self.check_quotas_on(&mut tx, &project_id, &deltas).await?;
        store::volumes::insert_on(&self.db, &mut tx, &v).await?;
        let op_id = uuid::Uuid::new_v4().to_string();
        let params = req.source.map(|s| s.params).unwrap_or(Value::Null);
        store::operations::create_on(
            &self.db,
            &mut tx,
            &op_id,
            crate::operation::CREATE,
            &v.id,
            &params,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.notify("volume.create.start", &v).await;
        crate::operation::start(self, &op_id).await?;
        Ok(v)
    }

    /// Move a deletable volume to `deleting` and run its delete operation;
    /// anything else is refused as Cinder refuses it (400).
    pub async fn delete_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        cascade: bool,
    ) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(ctx, "volume:delete", &v.project_id)?;
        self.check_snapshots_before_delete(id, cascade).await?;
        self.start_delete(id, DELETABLE).await
    }

    /// `os-force_delete` (admin): also a volume whose delete failed
    /// (`error_deleting`) or in `maintenance`, and one in a transient
    /// status ([`FORCE_DELETABLE_IDLE`]) no operation is working on and
    /// no attachment holds (an admin's `os-reset_status` left it there).
    pub async fn force_delete_volume(self: &Arc<Self>, ctx: &AuthContext, id: &str) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(
            ctx,
            "volume_extension:volume_admin_actions:force_delete",
            &v.project_id,
        )?;
        if FORCE_DELETABLE_IDLE.contains(&v.status.as_str()) {
            let attached = store::attachments::of_volume(&self.db, id)
                .await?
                .iter()
                .any(|a| a.status == store::attachments::AttachStatus::Attached);
            if attached || store::operations::busy(&self.db, id).await? {
                return Err(invalid_volume_status());
            }
            return self.start_delete(id, &[v.status.as_str()]).await;
        }
        self.start_delete(id, FORCE_DELETABLE).await
    }

    /// `os-reset_status` (admin): set the status the record shows, and
    /// nothing else, as Cinder does.
    pub async fn reset_status(&self, ctx: &AuthContext, id: &str, status: &str) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(
            ctx,
            "volume_extension:volume_admin_actions:reset_status",
            &v.project_id,
        )?;
        if !RESETTABLE.contains(&status) {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid status {status} for a volume ({}).",
                RESETTABLE.join(", ")
            )));
        }
        store::volumes::transition(&self.db, id, &[v.status.as_str()], status).await?;
        Ok(())
    }

    /// Move a volume in one of `from` to `deleting` with its delete
    /// operation, and run it.
    async fn start_delete(self: &Arc<Self>, id: &str, from: &[&str]) -> Result<()> {
        let op_id = uuid::Uuid::new_v4().to_string();
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        if !store::volumes::transition_on(&self.db, &mut tx, id, from, "deleting").await? {
            return Err(invalid_volume_status());
        }
        store::operations::create_on(
            &self.db,
            &mut tx,
            &op_id,
            crate::operation::DELETE,
            id,
            &Value::Null,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.notify_by_id("volume.delete.start", id).await?;
        crate::operation::start(self, &op_id).await
    }

    /// Grow an `available` volume to `new_size` GiB: the new size is
    /// recorded (`extending`) with its operation under the quota lock, so
    /// the added gigabytes count at once; the backend grows the file.
    pub async fn extend_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        new_size: i64,
    ) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(ctx, "volume:extend", &v.project_id)?;
        if v.status != "available" {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Volume {id} status must be available to extend, but current status is: {}.",
                v.status
            )));
        }
        if new_size <= v.size {
            return Err(Error::BadRequest(format!(
                "Invalid input received: New size for extend must be greater than current size. (current: {}, extended: {new_size})."
            , v.size)));
        }
        self.check_volume_size(&v.project_id, new_size).await?;
        let type_name = self
            .type_names()
            .await?
            .remove(&v.volume_type_id)
            .unwrap_or_default();
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &v.project_id)
            .await?;
        let added = new_size - v.size;
        let deltas = [
            ("gigabytes".to_owned(), added),
            (format!("gigabytes_{type_name}"), added),
        ];
        self.check_quotas_on(&mut tx, &v.project_id, &deltas)
            .await?;
        if !store::volumes::resize_on(&self.db, &mut tx, id, new_size, "available", "extending")
            .await?
        {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Volume {id} status must be available to extend."
            )));
        }
        let op_id = uuid::Uuid::new_v4().to_string();
        let params = serde_json::json!({"old_size": v.size, "new_size": new_size});
        store::operations::create_on(
            &self.db,
            &mut tx,
            &op_id,
            crate::operation::EXTEND,
            id,
            &params,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.notify_by_id("volume.resize.start", id).await?;
        crate::operation::start(self, &op_id).await
    }
}
