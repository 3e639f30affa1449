//! Neutron v2.0-compatible networking API: networks, subnets (IPAM), ports,
//! routers, floating IPs, security groups, agents, quotas.

pub mod api;
pub mod ipam;
pub mod nova;
pub mod policy;
pub mod service;
pub mod store;

pub use service::NetworkService;

use ferrostack_bus::{RpcMessage, SharedBus};
use ferrostack_core::config::Config;
use ferrostack_db::Db;
use std::sync::Arc;

/// The bus topic agents report their state and port status to (Neutron's `q-plugin`).
pub const PLUGIN_TOPIC: &str = "q-plugin";

/// The API's OpenAPI 3.1 document, from the same routes the service serves
/// (and answers at `GET /openapi.json`).
pub fn openapi_document() -> serde_json::Value {
    api::routes().document(&api::info())
}

/// Connect to the network database, apply migrations, start serving agents.
pub async fn open(config: &Config, bus: SharedBus) -> Result<Arc<NetworkService>, String> {
    let url = config.database_url("network", &config.network.database_url);
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate(store::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    store::backfill_lookup_columns(&db)
        .await
        .map_err(|e| e.to_string())?;
    let svc = NetworkService::new(db, config.clone(), bus)
        .await
        .map_err(|e| e.to_string())?;
    serve_agents(svc.clone()).await.map_err(|e| e.to_string())?;
    Ok(svc)
}

/// Answer agents' RPC: `report_state` (registration and heartbeat),
/// `update_port_status`, `update_ha_states` (which L3 agent is VRRP
/// master of each HA router), the per-host desired state (`l2_state`,
/// `dhcp_state`, `l3_state`) and `metadata_lookup`.
pub async fn serve_agents(svc: Arc<NetworkService>) -> Result<(), ferrostack_bus::BusError> {
    let mut rx = svc.bus.serve(PLUGIN_TOPIC).await?;
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let RpcMessage { method, args } = inc.message.clone();
            let result = match method.as_str() {
                "report_state" => svc
                    .report_state(&args["agent_state"])
                    .await
                    .map(|a| a["id"].clone()),
                "update_port_status" => svc
                    .set_port_status(
                        args["port_id"].as_str().unwrap_or_default(),
                        args["status"].as_str().unwrap_or("DOWN"),
                    )
                    .await
                    .map(|_| serde_json::Value::Null),
                "l2_state" => {
                    svc.l2_state(args["host"].as_str().unwrap_or_default())
                        .await
                }
                "dhcp_state" => {
                    svc.dhcp_state(args["host"].as_str().unwrap_or_default())
                        .await
                }
                "l3_state" => {
                    svc.l3_state(args["host"].as_str().unwrap_or_default())
                        .await
                }
                "update_ha_states" => svc
                    .update_ha_states(
                        args["host"].as_str().unwrap_or_default(),
                        args["states"]
                            .as_object()
                            .unwrap_or(&serde_json::Map::new()),
                    )
                    .await
                    .map(|_| serde_json::Value::Null),
                "metadata_lookup" => {
                    svc.metadata_lookup(
                        args["router_id"].as_str(),
                        args["network_id"].as_str(),
                        args["ip"].as_str().unwrap_or_default(),
                    )
                    .await
                }
                other => Err(ferrostack_core::Error::BadRequest(format!(
                    "unknown method {other}"
                ))),
            };
            inc.respond(result.map_err(|e| e.to_string()));
        }
    });
    Ok(())
}
