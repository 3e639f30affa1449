//! The hypervisor driver contract, modelled on Nova's virt driver: spawn
//! cleans up after its own failure, destroy succeeds on a missing guest,
//! and every call is idempotent, so sagas may repeat or undo them freely.

use ferrostack_core::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Nova's power states, as the API reports them (`OS-EXT-STS:power_state`).
pub mod power {
    pub const NOSTATE: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSED: i64 = 3;
    pub const SHUTDOWN: i64 = 4;
    pub const CRASHED: i64 = 6;
    pub const SUSPENDED: i64 = 7;
}

/// One network interface of a guest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VifSpec {
    pub port_id: String,
    pub network_id: String,
    pub mac_address: String,
}

/// What a driver needs to build a guest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InstanceSpec {
    pub id: String,
    pub name: String,
    pub instance_name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub image_id: String,
    pub user_data: Option<String>,
    pub key_data: Option<String>,
    pub vifs: Vec<VifSpec>,
}

/// What the hypervisor has to offer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HostResources {
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub hypervisor_hostname: String,
    pub cpu_info: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
}

#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    fn resources(&self) -> HostResources;
    /// Create and start the guest from the cached base image at `image`;
    /// on failure, leave nothing behind.
    async fn spawn(&self, spec: &InstanceSpec, image: &Path) -> Result<()>;
    /// Remove the guest; a missing guest is not an error.
    async fn destroy(&self, id: &str) -> Result<()>;
    async fn reboot(&self, id: &str, hard: bool) -> Result<()>;
    async fn power_off(&self, id: &str) -> Result<()>;
    async fn power_on(&self, id: &str) -> Result<()>;
    async fn pause(&self, id: &str) -> Result<()>;
    async fn unpause(&self, id: &str) -> Result<()>;
    async fn suspend(&self, id: &str) -> Result<()>;
    async fn resume(&self, id: &str) -> Result<()>;
    /// The guest's power state; `NotFound` when it does not exist.
    async fn get_info(&self, id: &str) -> Result<i64>;
    /// Ids of the guests the hypervisor has.
    async fn list_instances(&self) -> Result<Vec<String>>;
    async fn get_console_output(&self, id: &str) -> Result<String>;
    /// Write a snapshot of the guest's disk to `dest`.
    async fn snapshot(&self, id: &str, dest: &Path) -> Result<()>;
    /// Give the guest the resources of a new flavor (resize, same host).
    async fn resize(&self, spec: &InstanceSpec) -> Result<()>;
}
