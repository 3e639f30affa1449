//! Swift-compatible object storage: accounts, containers and objects
//! behind identity tokens, container ACLs, temporary URLs, large objects
//! and expiry, with object bytes in a [`backend::Backend`] (the local
//! filesystem by default) and every record and listing in SQL.

pub mod access;
pub mod api;
pub mod backend;
pub mod large;
pub mod listing;
pub mod rgw;
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
    let backend = open_backend(config).await?;
    let svc = ObjectService::new(db, backend, config.clone())?;
    svc.recover().await.map_err(|e| e.to_string())?;
    svc.spawn_expirer();
    Ok(svc)
}

/// The `[object] backend`: the local filesystem, or an S3 service.
async fn open_backend(config: &Config) -> Result<Arc<dyn backend::Backend>, String> {
    match config.object.backend.as_str() {
        "filesystem" => {
            let root = config.object_data_dir();
            let fs = backend::Filesystem::open(&root)
                .map_err(|e| format!("[object] data_dir {}: {e}", root.display()))?;
            Ok(Arc::new(fs))
        }
        "s3" => Ok(Arc::new(rgw::S3Backend::open(config).await?)),
        other => Err(format!(
            "[object] backend = '{other}': use 'filesystem' or 's3'"
        )),
    }
}
