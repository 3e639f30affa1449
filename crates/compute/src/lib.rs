//! Nova v2.1-compatible compute control plane: the API (`api/`), the
//! service layer (`service/`), the scheduler, the server sagas (`saga/`,
//! one file per saga), the conductor that hears the agents, the metadata
//! source and the console tokens. What runs on a compute host lives in
//! `ferrostack-compute-agent` and `ferrostack-hypervisor`.

pub mod api;
pub mod clients;
pub mod conductor;
pub mod guest;
pub mod policy;
pub mod saga;
pub mod scheduler;
pub mod service;
pub mod states;
pub mod store;
pub mod usage_notifications;

pub use api::openapi_document;
pub use ferrostack_compute_agent::ComputeAgent;
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

/// Serve the agents' heartbeats and power states, fail the builds no saga
/// drives, and resume (or finish unwinding) the sagas a previous run left
/// unfinished.
pub async fn start(svc: &Arc<ComputeService>) -> Result<(), String> {
    conductor::serve(svc.clone())
        .await
        .map_err(|e| e.to_string())?;
    saga::fail_orphaned_builds(svc)
        .await
        .map_err(|e| e.to_string())?;
    saga::resume_all(svc).await.map_err(|e| e.to_string())?;
    saga::spawn_keeper(svc);
    usage_notifications::spawn_audit(svc);
    Ok(())
}

/// Nova's metadata API for guests (port `[metadata] port`): instances
/// from this service, requests signed with the proxy's shared secret.
pub fn metadata_router(svc: &Arc<ComputeService>) -> axum::Router {
    ferrostack_metadata::router(
        Arc::new(service::metadata::ComputeMetadataSource(svc.clone())),
        svc.config
            .network_agent
            .metadata_proxy_shared_secret
            .clone(),
    )
}

/// The noVNC console proxy (port `[console] port`), honouring the tokens
/// this service hands out.
pub fn console_router(svc: &Arc<ComputeService>) -> axum::Router {
    let c = &svc.config.console;
    ferrostack_console::router(
        ferrostack_console::ProxyConfig {
            web_dir: c.web.clone().into(),
            allowed_origins: c
                .allowed_origins
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        },
        Arc::new(service::consoles::ConsoleTokens(svc.clone())),
    )
}

/// Start the compute agent of this host with the driver `[compute] driver` names.
pub async fn start_agent(config: &Config, bus: SharedBus) -> Result<Arc<ComputeAgent>, String> {
    let driver = ferrostack_compute_agent::driver_from_config(config).await?;
    ComputeAgent::start(config, bus, driver).await
}
