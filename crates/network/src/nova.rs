//! Telling the compute service that an instance's port came up or went down
//! (`network-vif-plugged` / `network-vif-unplugged` through
//! `os-server-external-events`), as Neutron's Nova notifier does: a server
//! waiting in BUILD for its network goes ACTIVE when the L2 agent has wired
//! its tap.

use ferrostack_core::config::Config;
use ferrostack_core::service_client::{ServiceClient, ServiceCredentials};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct NovaNotifier {
    client: ServiceClient,
    events_url: String,
}

impl NovaNotifier {
    /// `None` when `notify_nova_on_port_status_changes` is off.
    pub fn from_config(cfg: &Config) -> Option<Arc<NovaNotifier>> {
        if !cfg.network.notify_nova_on_port_status_changes {
            return None;
        }
        let base = if cfg.network.nova_url.is_empty() {
            format!("{}/v2.1", cfg.public_url(cfg.compute.port))
        } else {
            cfg.network.nova_url.trim_end_matches('/').to_owned()
        };
        Some(Arc::new(NovaNotifier {
            client: ServiceClient::new(ServiceCredentials::for_user(cfg, "neutron")),
            events_url: format!("{base}/os-server-external-events"),
        }))
    }

    /// The event for an instance port's status change, if it is one Nova
    /// waits for.
    pub fn event_for(port: &Value, old: &str, new: &str) -> Option<Value> {
        let owner = port["device_owner"].as_str().unwrap_or_default();
        let server = port["device_id"].as_str().filter(|d| !d.is_empty())?;
        if !owner.starts_with("compute:") || old == new {
            return None;
        }
        let name = match new {
            "ACTIVE" => "network-vif-plugged",
            "DOWN" if old == "ACTIVE" => "network-vif-unplugged",
            _ => return None,
        };
        Some(json!({"name": name, "server_uuid": server, "tag": port["id"], "status": "completed"}))
    }

    /// `network-changed` for an instance port whose addresses changed (a
    /// floating IP came or went), as Neutron sends it: Nova then refreshes
    /// the server's addresses.
    pub fn network_changed_for(port: &Value) -> Option<Value> {
        let owner = port["device_owner"].as_str().unwrap_or_default();
        let server = port["device_id"].as_str().filter(|d| !d.is_empty())?;
        if !owner.starts_with("compute:") {
            return None;
        }
        Some(
            json!({"name": "network-changed", "server_uuid": server, "tag": port["id"], "status": "completed"}),
        )
    }

    /// Send in the background: the agent's status report does not wait on Nova.
    pub fn send(self: &Arc<Self>, event: Value) {
        let me = self.clone();
        tokio::spawn(async move {
            let body = json!({ "events": [event] });
            let url = me.events_url.clone();
            match me.client.send(|http| http.post(&url).json(&body)).await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::info!(status = %r.status(), "compute refused a port event"),
                Err(e) => tracing::debug!(error = %e, "compute not reachable for a port event"),
            }
        });
    }
}
