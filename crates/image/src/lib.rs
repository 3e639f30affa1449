//! Glance v2-compatible image service with a streaming, crash-safe
//! filesystem store.

pub mod api;
pub mod backend;
pub mod format;
pub mod policy;
pub mod service;
pub mod store;
pub mod swift;

pub use api::openapi_document;
pub use service::ImageService;

use ferrostack_bus::SharedBus;
use ferrostack_core::config::Config;
use ferrostack_db::Db;
use std::sync::Arc;

/// Connect to the image database, apply migrations, recover the store.
pub async fn open(config: &Config, bus: SharedBus) -> Result<Arc<ImageService>, String> {
    let url = config.database_url("image", &config.image.database_url);
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate(store::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    ImageService::new(db, config.clone(), bus)
        .await
        .map_err(|e| e.to_string())
}
