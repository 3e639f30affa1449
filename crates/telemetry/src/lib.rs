//! Metering: notifications from every service (and the compute hosts'
//! pollsters) become samples in one store with Gnocchi's model — resources
//! with revisions, metrics under archive policies with rollups computed on
//! write — served as Ceilometer's v2 API (8777), Gnocchi's v1 API (8041)
//! and a Prometheus exposition.

pub mod alarms;
pub mod api;
pub mod archive;
pub mod collector;
pub mod derive;
pub mod meters;
pub mod policy;
pub mod query;
pub mod record;
pub mod service;
pub mod stats;
pub mod store;

pub use service::TelemetryService;

use ferrostack_bus::SharedBus;
use ferrostack_core::config::Config;
use ferrostack_db::Db;
use std::sync::Arc;

/// Connect to the telemetry database, apply migrations, seed Gnocchi's
/// defaults and start consuming notifications.
pub async fn open(config: &Config, bus: SharedBus) -> Result<Arc<TelemetryService>, String> {
    let url = config.database_url("telemetry", &config.telemetry.database_url);
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate(&store::migrations(db.backend))
        .await
        .map_err(|e| e.to_string())?;
    let rx = bus
        .subscribe_notifications()
        .await
        .map_err(|e| e.to_string())?;
    let svc = Arc::new(
        TelemetryService::new(db, config.clone())
            .await
            .map_err(|e| e.to_string())?,
    );
    collector::spawn(&svc, rx);
    collector::spawn_expiry(&svc);
    alarms::spawn(&svc);
    Ok(svc)
}
