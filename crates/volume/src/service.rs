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
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub mod nova;

pub struct VolumeService {
    pub db: Db,
    pub config: Config,
    /// Cinder's rules (`policy.rs`) with the operator's file over them.
    pub policy: Policy,
    pub backend: Arc<dyn VolumeBackend>,
    /// How attached volumes reach their hosts (`export.rs`).
    pub exporter: Arc<dyn crate::export::VolumeExporter>,
    /// Tells compute a volume attached to a server grew.
    pub nova: nova::NovaEvents,
    /// Where `volume.*` notifications go (metering reads them).
    pub bus: SharedBus,
    /// Operations are recorded but not run while set: a test's stand-in
    /// for a service that stopped right after recording one.
    pub paused: AtomicBool,
    /// Woken whenever an operation ends (tests wait on it).
    pub operation_finished: tokio::sync::Notify,
    /// The image service, for volumes from images and uploads to them.
    pub images: crate::image_client::ImageClient,
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
        let exporter = Arc::new(crate::export::NbdExporter::from_config(&config)?);
        let nova = nova::NovaEvents::from_config(&config);
        Ok(Arc::new(VolumeService {
            db,
            policy,
            backend,
            exporter,
            nova,
            bus,
            paused: AtomicBool::new(false),
            operation_finished: tokio::sync::Notify::new(),
            images: crate::image_client::ImageClient::new(&config),
            config,
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
}

pub fn invalid_volume_status() -> Error {
    Error::BadRequest(
        "Invalid volume: Volume status must be available or error or error_restoring or \
         error_extending or error_managing and must not be migrating, attached, belong to a \
         group, have snapshots, awaiting a transfer, or be disassociated from snapshots after \
         volume transfer."
            .into(),
    )
}
