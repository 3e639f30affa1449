//! Swift-compatible object storage: accounts, containers and objects
//! behind identity tokens, container ACLs, temporary URLs, large objects
//! and expiry, with object bytes in a [`backend::Backend`] (the local
//! filesystem by default) and every record and listing in SQL.

pub mod access;
pub mod api;
pub mod backend;
pub mod large;
pub mod listing;
pub mod s3;
pub mod service;
pub mod store;
pub mod tempurl;

pub use service::ObjectService;

use ferrostack_core::config::Config;
use ferrostack_db::Db;
use std::sync::Arc;

/// Connect to the object database, apply migrations, clean up after an
/// interrupted run and start the expirer.
pub async fn open(config: &Config) -> Result<Arc<ObjectService>, String> {
    let url = config.database_url("object", &config.object.database_url);
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate(store::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    let backend = backend::Filesystem::open(&config.object_data_dir()).map_err(|e| {
        format!(
            "[object] data_dir {}: {e}",
            config.object_data_dir().display()
        )
    })?;
    let svc = ObjectService::new(db, Arc::new(backend), config.clone())?;
    svc.recover().await.map_err(|e| e.to_string())?;
    svc.spawn_expirer();
    Ok(svc)
}
