//! The compute agent (nova-compute): serves its host's bus topic with the
//! driver's operations, caches images, sends heartbeats with the host's
//! resources, and reports the guests' power states so the control plane
//! can correct its records. It needs no database: everything goes over the
//! bus, so agents run on other nodes than the API.

pub mod driver;
pub mod fake;

use crate::clients::ImageClient;
use crate::service::{agent_topic, image_url, service_client, CONDUCTOR_TOPIC};
use driver::{Driver, InstanceSpec};
use ferrostack_bus::{RpcMessage, SharedBus};
use ferrostack_core::config::Config;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

pub struct ComputeAgent {
    pub config: Config,
    pub bus: SharedBus,
    pub driver: Arc<dyn Driver>,
    pub host: String,
    image: ImageClient,
    cache_dir: PathBuf,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The driver `[compute] driver` names.
pub fn driver_from_config(config: &Config) -> std::result::Result<Arc<dyn Driver>, String> {
    match config.compute.driver.as_str() {
        "fake" => Ok(Arc::new(fake::FakeDriver::new(config))),
        other => Err(format!(
            "unknown compute driver '{other}' (this build has: fake)"
        )),
    }
}

impl ComputeAgent {
    /// Serve this host's topic, send a first heartbeat, and start the
    /// heartbeat and power-state sync loops.
    pub async fn start(
        config: &Config,
        bus: SharedBus,
        driver: Arc<dyn Driver>,
    ) -> std::result::Result<Arc<ComputeAgent>, String> {
        let agent = Arc::new(ComputeAgent {
            host: config.common.host.clone(),
            image: ImageClient {
                client: service_client(config, "nova"),
                base: image_url(config),
            },
            cache_dir: config.common.data_dir.join("compute").join("_base"),
            config: config.clone(),
            bus,
            driver,
            tasks: Mutex::new(Vec::new()),
        });
        let mut rx = agent
            .bus
            .serve(&agent_topic(&agent.host))
            .await
            .map_err(|e| e.to_string())?;
        let a = agent.clone();
        let server = tokio::spawn(async move {
            while let Some(inc) = rx.recv().await {
                let a = a.clone();
                tokio::spawn(async move {
                    let RpcMessage { method, args } = inc.message.clone();
                    let result = a.dispatch(&method, &args).await;
                    inc.respond(result.map_err(|e| e.message().to_owned()));
                });
            }
        });
        agent.report_state().await;
        let a = agent.clone();
        let heartbeat = tokio::spawn(async move {
            let period = Duration::from_secs(a.config.compute.report_interval.max(1));
            loop {
                tokio::time::sleep(period).await;
                a.report_state().await;
            }
        });
        let a = agent.clone();
        let sync = tokio::spawn(async move {
            let period = Duration::from_secs(a.config.compute.sync_power_state_interval.max(1));
            loop {
                tokio::time::sleep(period).await;
                a.sync_power_states().await;
            }
        });
        agent
            .tasks
            .lock()
            .unwrap()
            .extend([server, heartbeat, sync]);
        tracing::info!(host = %agent.host, "compute agent started");
        Ok(agent)
    }

    /// Stop serving and stop the loops (the agent's process going away).
    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn conductor(&self, method: &str, args: Value) -> Result<Value> {
        self.bus
            .call(
                CONDUCTOR_TOPIC,
                RpcMessage {
                    method: method.into(),
                    args,
                },
                Duration::from_secs(self.config.compute.rpc_timeout),
            )
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))
    }

    /// One heartbeat: the service row's `updated_at` and the node's resources.
    pub async fn report_state(&self) {
        let r = self.driver.resources();
        let running = self
            .driver
            .list_instances()
            .await
            .map(|l| l.len())
            .unwrap_or(0);
        let args = json!({
            "host": self.host, "binary": crate::scheduler::COMPUTE_BINARY, "topic": "compute",
            "zone": self.config.compute.default_availability_zone,
            "node": {
                "hypervisor_hostname": r.hypervisor_hostname, "hypervisor_type": r.hypervisor_type,
                "hypervisor_version": r.hypervisor_version, "cpu_info": r.cpu_info,
                "host_ip": self.config.common.public_host,
                "vcpus": r.vcpus, "memory_mb": r.memory_mb, "local_gb": r.local_gb,
                "running_vms": running,
            },
        });
        if let Err(e) = self.conductor("report_state", args).await {
            tracing::warn!(error = %e, "heartbeat not delivered");
        }
    }

    /// Report every guest's power state; the control plane corrects its records.
    pub async fn sync_power_states(&self) {
        let mut states = serde_json::Map::new();
        for id in self.driver.list_instances().await.unwrap_or_default() {
            if let Ok(p) = self.driver.get_info(&id).await {
                states.insert(id, json!(p));
            }
        }
        let args = json!({"host": self.host, "states": states});
        if let Err(e) = self.conductor("sync_power_states", args).await {
            tracing::warn!(error = %e, "power states not delivered");
        }
    }

    fn image_path(&self, image_id: &str) -> Result<PathBuf> {
        if image_id.is_empty() || image_id.contains('/') || image_id.contains("..") {
            return Err(Error::BadRequest(format!("bad image id '{image_id}'")));
        }
        Ok(self.cache_dir.join(image_id))
    }

    /// Fetch an image into the local cache once (idempotent).
    async fn cache_image(&self, image_id: &str) -> Result<PathBuf> {
        let path = self.image_path(image_id)?;
        if tokio::fs::metadata(&path).await.is_ok() {
            return Ok(path);
        }
        self.image.download(image_id, &path).await?;
        Ok(path)
    }

    async fn dispatch(&self, method: &str, args: &Value) -> Result<Value> {
        let id = args["instance_id"].as_str().unwrap_or_default();
        let spec = || -> Result<InstanceSpec> {
            serde_json::from_value(args["instance"].clone())
                .map_err(|e| Error::BadRequest(format!("bad instance: {e}")))
        };
        let d = &self.driver;
        match method {
            "cache_image" => {
                self.cache_image(args["image_id"].as_str().unwrap_or_default())
                    .await?;
            }
            "spawn" => {
                let spec = spec()?;
                let image = self.cache_image(&spec.image_id).await?;
                d.spawn(&spec, &image).await?;
                return Ok(json!({"power_state": d.get_info(&spec.id).await?}));
            }
            "destroy" => d.destroy(id).await?,
            "reboot" => {
                d.reboot(id, args["hard"].as_bool().unwrap_or(false))
                    .await?
            }
            "power_off" => d.power_off(id).await?,
            "power_on" => d.power_on(id).await?,
            "pause" => d.pause(id).await?,
            "unpause" => d.unpause(id).await?,
            "suspend" => d.suspend(id).await?,
            "resume" => d.resume(id).await?,
            "resize" => d.resize(&spec()?).await?,
            "get_info" => return Ok(json!({"power_state": d.get_info(id).await?})),
            "list_instances" => return Ok(json!(d.list_instances().await?)),
            "get_console_output" => return Ok(json!({"output": d.get_console_output(id).await?})),
            "snapshot" => {
                let image_id = args["image_id"].as_str().unwrap_or_default();
                let dest = self
                    .cache_dir
                    .join(format!(".snapshot-{}", uuid::Uuid::new_v4()));
                tokio::fs::create_dir_all(&self.cache_dir)
                    .await
                    .map_err(Error::internal)?;
                let result = async {
                    d.snapshot(id, &dest).await?;
                    let data = tokio::fs::read(&dest).await.map_err(Error::internal)?;
                    self.image.upload(image_id, data).await
                }
                .await;
                let _ = tokio::fs::remove_file(&dest).await;
                result?;
            }
            other => return Err(Error::BadRequest(format!("unknown method {other}"))),
        }
        Ok(Value::Null)
    }
}
