//! The compute agent of a host (Nova's `nova-compute`): serves its host's
//! bus topic with typed [`protocol::AgentRequest`]s, runs them through the
//! hypervisor [`Driver`], keeps the host's image cache, writes config
//! drives, and tells the control plane its heartbeats and its guests'
//! power states. It links no database and no API server: everything goes
//! over the bus, so agents run on other hosts than the control plane.

pub mod drivers;
pub mod handler;
pub mod image_cache;
pub mod image_client;
pub mod pollster;
pub mod protocol;

pub use drivers::driver_from_config;

use ferrostack_bus::SharedBus;
use ferrostack_core::config::Config;
use ferrostack_core::service_client::{ServiceClient, ServiceCredentials};
use ferrostack_hypervisor::{Driver, PowerState};
use image_cache::ImageCache;
use image_client::ImageClient;
use protocol::{
    agent_topic, envelope, open_envelope, AgentError, AgentRequest, AgentResult, ConductorRequest,
    ServiceReport, COMPUTE_BINARY, CONDUCTOR_TOPIC,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The agent's settings, read once from `[compute]`.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub host: String,
    pub zone: String,
    pub host_ip: String,
    pub report_interval: Duration,
    pub sync_power_state_interval: Duration,
    pub rpc_timeout: Duration,
    /// Where snapshots and config drives are staged (beside the guests).
    pub work_dir: PathBuf,
    pub image_cache_interval: Option<Duration>,
    pub image_cache_min_age: Duration,
}

impl AgentSettings {
    pub fn from_config(config: &Config) -> AgentSettings {
        let c = &config.compute;
        AgentSettings {
            host: config.common.host.clone(),
            zone: c.default_availability_zone.clone(),
            host_ip: config.common.public_host.clone(),
            report_interval: Duration::from_secs(c.report_interval.max(1)),
            sync_power_state_interval: Duration::from_secs(c.sync_power_state_interval.max(1)),
            rpc_timeout: Duration::from_secs(c.rpc_timeout.max(1)),
            work_dir: config.compute_instances_path().join(".staging"),
            image_cache_interval: (c.image_cache_manager_interval > 0)
                .then(|| Duration::from_secs(c.image_cache_manager_interval)),
            image_cache_min_age: Duration::from_secs(c.remove_unused_original_minimum_age_seconds),
        }
    }
}

pub struct ComputeAgent {
    pub settings: AgentSettings,
    pub bus: SharedBus,
    pub driver: Arc<dyn Driver>,
    pub images: ImageClient,
    pub cache: ImageCache,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The image service as the `nova` service user sees it.
pub fn image_client(config: &Config) -> ImageClient {
    let base = if config.compute.image_url.is_empty() {
        config.public_url(config.image.port)
    } else {
        config.compute.image_url.trim_end_matches('/').to_owned()
    };
    ImageClient {
        client: Arc::new(ServiceClient::new(ServiceCredentials::for_user(
            config, "nova",
        ))),
        base,
    }
}

impl ComputeAgent {
    /// Serve this host's topic, send a first heartbeat, and start the
    /// heartbeat, power-state and image-cache loops.
    pub async fn start(
        config: &Config,
        bus: SharedBus,
        driver: Arc<dyn Driver>,
    ) -> Result<Arc<ComputeAgent>, String> {
        let settings = AgentSettings::from_config(config);
        let images = image_client(config);
        let cache = ImageCache::new(
            config
                .compute_instances_path()
                .join(&config.compute.image_cache_subdirectory_name),
            images.clone(),
            PathBuf::from(&config.compute.qemu_img),
        );
        let agent = Arc::new(ComputeAgent {
            settings,
            bus,
            driver,
            images,
            cache,
            tasks: Mutex::new(Vec::new()),
        });
        let mut rx = agent
            .bus
            .serve(&agent_topic(&agent.settings.host))
            .await
            .map_err(|e| e.to_string())?;
        let a = agent.clone();
        let server = tokio::spawn(async move {
            while let Some(inc) = rx.recv().await {
                let a = a.clone();
                tokio::spawn(async move {
                    let result: AgentResult = match open_envelope::<AgentRequest>(&inc.message) {
                        Ok(req) => a.handle(req).await,
                        Err(e) => Err(AgentError::BadRequest(e)),
                    };
                    let value = serde_json::to_value(&result).expect("results serialize");
                    inc.respond(Ok(value));
                });
            }
        });
        agent.report_state().await;
        let mut tasks = vec![server];
        let a = agent.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(a.settings.report_interval).await;
                a.report_state().await;
            }
        }));
        let a = agent.clone();
        tasks.push(tokio::spawn(async move {
            // Once at start too: the control plane then has this host
            // destroy the guests evacuated from it while it was down.
            a.sync_power_states().await;
            loop {
                tokio::time::sleep(a.settings.sync_power_state_interval).await;
                a.sync_power_states().await;
            }
        }));
        if let Some(period) = agent.settings.image_cache_interval {
            let a = agent.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    a.age_out_images().await;
                }
            }));
        }
        tasks.push(pollster::spawn(
            &agent,
            Duration::from_secs(config.telemetry.polling_interval.max(1)),
        ));
        agent.tasks.lock().unwrap().extend(tasks);
        tracing::info!(host = %agent.settings.host, driver = agent.driver.kind(), "compute agent started");
        Ok(agent)
    }

    /// Stop serving and stop the loops (the agent's process going away;
    /// guests keep running).
    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn tell_conductor(&self, request: &ConductorRequest) -> Result<(), String> {
        self.bus
            .call(
                CONDUCTOR_TOPIC,
                envelope(request),
                self.settings.rpc_timeout,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// One heartbeat: the service's liveness and the host's figures.
    pub async fn report_state(&self) {
        let resources = match self.driver.host_resources().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "host resources unavailable");
                return;
            }
        };
        let running_vms = self
            .driver
            .list_instances()
            .await
            .map(|l| l.len() as i64)
            .unwrap_or(0);
        let report = ConductorRequest::ReportState(ServiceReport {
            host: self.settings.host.clone(),
            binary: COMPUTE_BINARY.into(),
            topic: "compute".into(),
            zone: self.settings.zone.clone(),
            host_ip: self.settings.host_ip.clone(),
            resources,
            running_vms,
        });
        if let Err(e) = self.tell_conductor(&report).await {
            tracing::warn!(error = %e, "heartbeat not delivered");
        }
    }

    /// Report every guest's power state; the control plane corrects its records.
    pub async fn sync_power_states(&self) {
        let mut states = BTreeMap::new();
        for id in self.driver.list_instances().await.unwrap_or_default() {
            if let Ok(p) = self.driver.get_info(&id).await {
                states.insert(id, p);
            }
        }
        let report = ConductorRequest::SyncPowerStates {
            host: self.settings.host.clone(),
            states,
        };
        if let Err(e) = self.tell_conductor(&report).await {
            tracing::warn!(error = %e, "power states not delivered");
        }
    }

    /// Remove cached images no guest uses any more (when the driver knows).
    pub async fn age_out_images(&self) {
        match self.driver.base_images_in_use().await {
            Ok(Some(in_use)) => {
                self.cache
                    .age_out(&in_use, self.settings.image_cache_min_age)
                    .await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "image cache not aged out"),
        }
    }

    /// A guest's power state as the driver sees it (tests).
    pub async fn power_state(&self, id: &str) -> Option<PowerState> {
        self.driver.get_info(id).await.ok()
    }
}
