//! Nova v2.1-compatible compute: the API (`api/`), the service layer
//! (`service/`), the scheduler, the server sagas (`saga/`, one file per
//! saga), the conductor that hears the agents, and the compute agent
//! (`agent/`) with its hypervisor drivers.

pub mod agent;
pub mod api;
pub mod clients;
pub mod conductor;
pub mod saga;
pub mod scheduler;
pub mod service;
pub mod store;

pub use agent::ComputeAgent;
pub use service::ComputeService;

use ferrostack_bus::SharedBus;
use ferrostack_core::config::Config;
use ferrostack_db::Db;
use std::sync::Arc;

/// Connect to the compute database, apply migrations, create the default
/// flavors, then [`start`] the control plane.
pub async fn open(config: &Config, bus: SharedBus) -> Result<Arc<ComputeService>, String> {
    let url = config.database_url("compute", &config.compute.database_url);
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate(store::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    let svc = ComputeService::new(db, config.clone(), bus)
        .await
        .map_err(|e| e.to_string())?;
    start(&svc).await?;
    Ok(svc)
}

/// Serve the agents' heartbeats and power states, and resume (or finish
/// unwinding) the sagas a previous run left unfinished.
pub async fn start(svc: &Arc<ComputeService>) -> Result<(), String> {
    conductor::serve(svc.clone())
        .await
        .map_err(|e| e.to_string())?;
    saga::resume_all(svc).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Start the compute agent of this host with the driver `[compute] driver` names.
pub async fn start_agent(config: &Config, bus: SharedBus) -> Result<Arc<ComputeAgent>, String> {
    let driver = agent::driver_from_config(config)?;
    ComputeAgent::start(config, bus, driver).await
}
