//! The volume service layer: who may see and change which volume, the
//! status machine (`creating → available`, `deleting → gone`, `error` when
//! the backend fails), quotas checked with the insert they guard, and the
//! quota and type rules Cinder applies.

use crate::backend::VolumeBackend;
use crate::store::{self, types::VolumeType, volumes::Volume};
use ferrostack_bus::SharedBus;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};
use ferrostack_db::Db;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The quota resources this service counts, in the order views list them.
pub const QUOTA_RESOURCES: &[&str] = &["volumes", "gigabytes", "snapshots"];

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
];

pub struct VolumeService {
    pub db: Db,
    pub config: Config,
    /// Cinder's rules (`policy.rs`) with the operator's file over them.
    pub policy: Policy,
    pub backend: Arc<dyn VolumeBackend>,
    /// Where `volume.*` notifications go (metering reads them).
    pub bus: SharedBus,
    /// Operations are recorded but not run while set: a test's stand-in
    /// for a service that stopped right after recording one.
    pub paused: AtomicBool,
    /// Woken whenever an operation ends (tests wait on it).
    pub operation_finished: tokio::sync::Notify,
}

/// What a create asks for, after the API checked its shape.
pub struct NewVolume {
    pub size: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
}

pub fn volume_not_found(id: &str) -> Error {
    Error::NotFound(format!("Volume {id} could not be found."))
}

pub fn type_not_found(id: &str) -> Error {
    Error::NotFound(format!("Volume type {id} could not be found."))
}

impl VolumeService {
    pub async fn new(
        db: Db,
        config: Config,
        bus: SharedBus,
        backend: Arc<dyn VolumeBackend>,
    ) -> Result<Arc<VolumeService>> {
        let policy = crate::policy::load(&config)?;
        Ok(Arc::new(VolumeService {
            db,
            config,
            policy,
            backend,
            bus,
            paused: AtomicBool::new(false),
            operation_finished: tokio::sync::Notify::new(),
        }))
    }

    /// Publish `event` (`volume.create.start`, …) about `v` with the
    /// payload Cinder's volume usage notifications carry; the bus being
    /// unavailable never fails the operation.
    pub async fn notify(&self, event: &str, v: &Volume) {
        let payload = serde_json::json!({
            "volume_id": v.id,
            "tenant_id": v.project_id,
            "user_id": v.user_id,
            "display_name": v.name,
            "size": v.size,
            "status": v.status,
            "availability_zone": v.availability_zone,
            "volume_type": v.volume_type_id,
            "created_at": v.created_at,
        });
        let publisher = format!("volume.{}", self.config.common.host);
        if let Err(e) = self.bus.notify(&publisher, event, payload).await {
            tracing::warn!(volume = %v.id, event, error = %e, "notification not sent");
        }
    }

    /// [`notify`](Self::notify) about the volume as it is recorded now.
    pub async fn notify_by_id(&self, event: &str, id: &str) -> Result<()> {
        if let Some(v) = store::volumes::get(&self.db, id).await? {
            self.notify(event, &v).await;
        }
        Ok(())
    }

    /// Enforce `action` on a resource of `project_id`, with Cinder's words.
    pub fn authorize(&self, ctx: &AuthContext, action: &str, project_id: &str) -> Result<()> {
        if self
            .policy
            .check(action, ctx, &crate::policy::target(project_id))
        {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "Policy doesn't allow {action} to be performed."
            )))
        }
    }

    pub fn is_admin(&self, ctx: &AuthContext) -> bool {
        self.policy
            .check("context_is_admin", ctx, &serde_json::json!({}))
    }

    /// The caller's project (a project-scoped token is needed here).
    pub fn project_of(ctx: &AuthContext) -> Result<String> {
        ctx.project_id
            .clone()
            .ok_or_else(|| Error::BadRequest("A project-scoped token is required.".into()))
    }

    /// A volume the caller may see (its project's, or any for an admin);
    /// any other is 404, as Cinder's project-filtered lookup.
    pub async fn visible_volume(&self, ctx: &AuthContext, id: &str) -> Result<Volume> {
        let v = store::volumes::get(&self.db, id)
            .await?
            .ok_or_else(|| volume_not_found(id))?;
        if ctx.project_id.as_deref() != Some(&v.project_id) && !self.is_admin(ctx) {
            return Err(volume_not_found(id));
        }
        Ok(v)
    }

    /// A volume type by id or name (Cinder accepts both where a type is named).
    pub async fn find_type(&self, id_or_name: &str) -> Result<VolumeType> {
        if let Some(t) = store::types::get(&self.db, id_or_name).await? {
            return Ok(t);
        }
        store::types::get_by_name(&self.db, id_or_name)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "Volume type with name {id_or_name} could not be found."
                ))
            })
    }

    /// Type id → name, for views.
    pub async fn type_names(&self) -> Result<HashMap<String, String>> {
        Ok(store::types::list(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect())
    }

    /// A project's limits: its own where set, the configured defaults elsewhere.
    pub fn limits_with(&self, overrides: &HashMap<String, i64>) -> Vec<(&'static str, i64)> {
        let q = &self.config.volume;
        QUOTA_RESOURCES
            .iter()
            .map(|r| {
                let default = match *r {
                    "volumes" => q.quota_volumes,
                    "gigabytes" => q.quota_gigabytes,
                    _ => q.quota_snapshots,
                };
                (*r, overrides.get(*r).copied().unwrap_or(default))
            })
            .collect()
    }

    pub async fn limits(&self, project_id: &str) -> Result<Vec<(&'static str, i64)>> {
        let overrides = store::quotas::overrides(&self.db, project_id).await?;
        Ok(self.limits_with(&overrides))
    }

    /// Record a volume in `creating` and its create operation, in one
    /// transaction under the project's quota lock, then run the operation.
    pub async fn create_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        req: NewVolume,
    ) -> Result<Volume> {
        let project_id = Self::project_of(ctx)?;
        let vtype = self
            .find_type(req.volume_type.as_deref().unwrap_or("__DEFAULT__"))
            .await?;
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
            bootable: false,
            metadata: req.metadata,
            created_at: now.clone(),
            updated_at: now,
        };
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &project_id)
            .await?;
        let overrides = store::quotas::overrides_on(&self.db, &mut tx, &project_id).await?;
        let limits: HashMap<_, _> = self.limits_with(&overrides).into_iter().collect();
        let (count, gigabytes) = store::volumes::usage_on(&self.db, &mut tx, &project_id).await?;
        check_quota("gigabytes", limits["gigabytes"], gigabytes, v.size)?;
        check_quota("volumes", limits["volumes"], count, 1)?;
        store::volumes::insert_on(&self.db, &mut tx, &v).await?;
        let op_id = uuid::Uuid::new_v4().to_string();
        store::operations::create_on(
            &self.db,
            &mut tx,
            &op_id,
            crate::operation::CREATE,
            &v.id,
            &Value::Null,
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
    pub async fn delete_volume(self: &Arc<Self>, ctx: &AuthContext, id: &str) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(ctx, "volume:delete", &v.project_id)?;
        self.start_delete(id, DELETABLE).await
    }

    /// `os-force_delete` (admin): also a volume whose delete failed
    /// (`error_deleting`) or in `maintenance`; never one an operation is
    /// still working on (`creating`, `deleting`, `extending`).
    pub async fn force_delete_volume(self: &Arc<Self>, ctx: &AuthContext, id: &str) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(
            ctx,
            "volume_extension:volume_admin_actions:force_delete",
            &v.project_id,
        )?;
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
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &v.project_id)
            .await?;
        let overrides = store::quotas::overrides_on(&self.db, &mut tx, &v.project_id).await?;
        let limits: HashMap<_, _> = self.limits_with(&overrides).into_iter().collect();
        let (_, gigabytes) = store::volumes::usage_on(&self.db, &mut tx, &v.project_id).await?;
        check_quota(
            "gigabytes",
            limits["gigabytes"],
            gigabytes,
            new_size - v.size,
        )?;
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

fn invalid_volume_status() -> Error {
    Error::BadRequest(
        "Invalid volume: Volume status must be available or error or error_restoring or \
         error_extending or error_managing and must not be migrating, attached, belong to a \
         group, have snapshots, awaiting a transfer, or be disassociated from snapshots after \
         volume transfer."
            .into(),
    )
}

/// 413 when `used + asked` exceeds `limit` (-1: unlimited), in Cinder's words.
fn check_quota(resource: &str, limit: i64, used: i64, asked: i64) -> Result<()> {
    if limit < 0 || used + asked <= limit {
        return Ok(());
    }
    Err(Error::PayloadTooLarge(match resource {
        "gigabytes" => format!(
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed \
             gigabytes quota. Requested {asked}G, quota is {limit}G and {used}G has been consumed."
        ),
        _ => format!(
            "VolumeLimitExceeded: Maximum number of volumes allowed ({limit}) exceeded for quota \
             '{resource}'."
        ),
    }))
}
