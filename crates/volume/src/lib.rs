//! Cinder v3-compatible block storage service: volumes, volume types,
//! quotas, limits and availability zones, with a file backend.

pub mod api;
pub mod backend;
pub mod operation;
pub mod policy;
pub mod service;
pub mod store;

pub use api::openapi_document;
pub use service::VolumeService;

use ferrostack_bus::SharedBus;
use ferrostack_core::config::Config;
use ferrostack_db::Db;
use std::sync::Arc;

/// Connect to the volume database, apply migrations, open the configured
/// backend and finish the operations a previous run left unfinished.
pub async fn open(config: &Config, bus: SharedBus) -> Result<Arc<VolumeService>, String> {
    let url = config.database_url("volume", &config.volume.database_url);
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate(store::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    let backend = backend::FileBackend::new(config.volumes_dir(), &config.volume.volume_format)
        .map_err(|e| e.to_string())?;
    let svc = VolumeService::new(db, config.clone(), bus, Arc::new(backend))
        .await
        .map_err(|e| e.to_string())?;
    operation::resume_all(&svc)
        .await
        .map_err(|e| e.to_string())?;
    Ok(svc)
}
