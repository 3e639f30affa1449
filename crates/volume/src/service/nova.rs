//! Telling compute that a volume attached to a server grew
//! (`volume-extended` through `os-server-external-events`, microversion
//! 2.51) or was re-imaged (`volume-reimaged`, 2.93), as Cinder's Nova
//! notifier does, as the `cinder` service user.

use ferrostack_core::config::Config;
use ferrostack_core::service_client::{ServiceClient, ServiceCredentials};
use ferrostack_core::{Error, Result};
use serde_json::json;
use std::sync::Arc;

pub struct NovaEvents {
    client: Arc<ServiceClient>,
    events_url: String,
}

impl NovaEvents {
    pub fn from_config(cfg: &Config) -> NovaEvents {
        let base = if cfg.volume.nova_url.is_empty() {
            format!("{}/v2.1", cfg.public_url(cfg.compute.port))
        } else {
            cfg.volume.nova_url.trim_end_matches('/').to_owned()
        };
        NovaEvents {
            client: Arc::new(ServiceClient::new(ServiceCredentials::for_user(
                cfg, "cinder",
            ))),
            events_url: format!("{base}/os-server-external-events"),
        }
    }

    /// `volume-extended` for `server` and `volume_id`; compute's refusal is an error.
    pub async fn volume_extended(&self, server: &str, volume_id: &str) -> Result<()> {
        let event = json!({"name": "volume-extended", "server_uuid": server, "tag": volume_id});
        self.send(event, "2.51").await
    }

    /// `volume-reimaged` (compute 2.93) with the re-image's outcome
    /// (`completed` or `failed`), which a rebuild waits for.
    pub async fn volume_reimaged(&self, server: &str, volume_id: &str, status: &str) -> Result<()> {
        let event = json!({"name": "volume-reimaged", "server_uuid": server,
            "tag": volume_id, "status": status});
        self.send(event, "2.93").await
    }

    async fn send(&self, event: serde_json::Value, version: &str) -> Result<()> {
        let name = event["name"].as_str().unwrap_or_default().to_owned();
        let server = event["server_uuid"].as_str().unwrap_or_default().to_owned();
        let body = json!({ "events": [event] });
        let url = &self.events_url;
        let resp = self
            .client
            .send(|http| {
                http.post(url)
                    .header("OpenStack-API-Version", format!("compute {version}"))
                    .header("X-OpenStack-Nova-API-Version", version)
                    .json(&body)
            })
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Error::Unavailable(format!(
                "compute refused {name} for server {server}: HTTP {}",
                resp.status()
            )))
        }
    }
}
