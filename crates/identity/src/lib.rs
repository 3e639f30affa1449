//! Keystone-compatible identity service: v3 (and v2.0 for legacy clients),
//! Fernet-style tokens, SQL store, bootstrap.

pub mod api;
pub mod auth_request;
pub mod bootstrap;
pub mod password;
pub mod policy;
pub mod service;
pub mod store;
pub mod token;

pub use api::openapi_document;
pub use service::IdentityService;

use ferrostack_bus::SharedBus;
use ferrostack_core::config::Config;
use ferrostack_db::Db;
use std::sync::Arc;

/// Connect to the identity database, apply migrations and load keys.
pub async fn open(config: &Config, bus: SharedBus) -> anyhow_like::Result<Arc<IdentityService>> {
    let url = config.database_url("identity", &config.identity.database_url);
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate(store::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    IdentityService::new(db, config.clone(), bus)
        .await
        .map_err(|e| e.to_string())
}

/// Errors at start-up are reported as text to the operator.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, String>;
}
