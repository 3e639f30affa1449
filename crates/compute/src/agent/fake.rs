//! The fake driver: guests are records in memory that report running, as
//! Nova's fake driver does. Tests make its next call of a method fail
//! through [`FakeDriver::fail_next`].

use super::driver::{power, Driver, HostResources, InstanceSpec};
use ferrostack_core::config::Config;
use ferrostack_core::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

#[derive(Clone, Debug)]
pub struct FakeGuest {
    pub spec: InstanceSpec,
    pub power_state: i64,
    pub console: Vec<String>,
}

pub struct FakeDriver {
    resources: HostResources,
    guests: Mutex<HashMap<String, FakeGuest>>,
    failures: Mutex<HashSet<String>>,
}

impl FakeDriver {
    pub fn new(config: &Config) -> Self {
        FakeDriver {
            resources: HostResources {
                hypervisor_type: "fake".into(),
                hypervisor_version: 1000,
                hypervisor_hostname: config.common.host.clone(),
                cpu_info: "{\"arch\": \"x86_64\", \"model\": \"fake\", \"vendor\": \"ferrostack\", \"topology\": {\"sockets\": 1, \"cores\": 1, \"threads\": 1}, \"features\": []}".into(),
                vcpus: config.compute.fake_vcpus,
                memory_mb: config.compute.fake_memory_mb,
                local_gb: config.compute.fake_local_gb,
            },
            guests: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashSet::new()),
        }
    }

    /// Make the next call of `method` (`spawn`, `destroy`, `power_off`, …) fail.
    pub fn fail_next(&self, method: &str) {
        self.failures.lock().unwrap().insert(method.to_owned());
    }

    /// Change a guest's power state behind the control plane's back (tests
    /// of the power-state sync).
    pub fn set_power_state(&self, id: &str, state: i64) {
        if let Some(g) = self.guests.lock().unwrap().get_mut(id) {
            g.power_state = state;
        }
    }

    pub fn guest(&self, id: &str) -> Option<FakeGuest> {
        self.guests.lock().unwrap().get(id).cloned()
    }

    fn injected(&self, method: &str) -> Result<()> {
        if self.failures.lock().unwrap().remove(method) {
            return Err(Error::Internal(format!(
                "fake driver: injected {method} failure"
            )));
        }
        Ok(())
    }

    fn with_guest<T>(&self, id: &str, f: impl FnOnce(&mut FakeGuest) -> T) -> Result<T> {
        self.guests
            .lock()
            .unwrap()
            .get_mut(id)
            .map(f)
            .ok_or_else(|| Error::NotFound(format!("Instance {id} could not be found.")))
    }

    fn set_state(&self, method: &str, id: &str, state: i64, line: &str) -> Result<()> {
        self.injected(method)?;
        self.with_guest(id, |g| {
            g.power_state = state;
            g.console.push(line.to_owned());
        })
    }
}

#[async_trait::async_trait]
impl Driver for FakeDriver {
    fn resources(&self) -> HostResources {
        self.resources.clone()
    }

    async fn spawn(&self, spec: &InstanceSpec, _image: &Path) -> Result<()> {
        self.injected("spawn")?;
        let mut guests = self.guests.lock().unwrap();
        let g = guests.entry(spec.id.clone()).or_insert_with(|| FakeGuest {
            spec: spec.clone(),
            power_state: power::RUNNING,
            console: Vec::new(),
        });
        g.spec = spec.clone();
        g.power_state = power::RUNNING;
        for line in [
            format!("Ferrostack fake guest {} booting", spec.name),
            format!(
                "{} vCPU, {} MB RAM, {} GB disk",
                spec.vcpus, spec.memory_mb, spec.disk_gb
            ),
            format!("image {}", spec.image_id),
            "Starting network: udhcpc: lease obtained".to_owned(),
            "checking http://169.254.169.254/2009-04-04/instance-id".to_owned(),
            format!("{} login:", spec.instance_name),
        ] {
            g.console.push(line);
        }
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        self.injected("destroy")?;
        self.guests.lock().unwrap().remove(id);
        Ok(())
    }

    async fn reboot(&self, id: &str, hard: bool) -> Result<()> {
        let line = if hard { "hard reboot" } else { "soft reboot" };
        self.set_state("reboot", id, power::RUNNING, line)
    }

    async fn power_off(&self, id: &str) -> Result<()> {
        self.set_state("power_off", id, power::SHUTDOWN, "powered off")
    }

    async fn power_on(&self, id: &str) -> Result<()> {
        self.set_state("power_on", id, power::RUNNING, "powered on")
    }

    async fn pause(&self, id: &str) -> Result<()> {
        self.set_state("pause", id, power::PAUSED, "paused")
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        self.set_state("unpause", id, power::RUNNING, "unpaused")
    }

    async fn suspend(&self, id: &str) -> Result<()> {
        self.set_state("suspend", id, power::SUSPENDED, "suspended")
    }

    async fn resume(&self, id: &str) -> Result<()> {
        self.set_state("resume", id, power::RUNNING, "resumed")
    }

    async fn get_info(&self, id: &str) -> Result<i64> {
        self.with_guest(id, |g| g.power_state)
    }

    async fn list_instances(&self) -> Result<Vec<String>> {
        Ok(self.guests.lock().unwrap().keys().cloned().collect())
    }

    async fn get_console_output(&self, id: &str) -> Result<String> {
        self.with_guest(id, |g| g.console.join("\n"))
    }

    async fn snapshot(&self, id: &str, dest: &Path) -> Result<()> {
        self.injected("snapshot")?;
        let content = self.with_guest(id, |g| format!("fake snapshot of {}\n", g.spec.id))?;
        tokio::fs::write(dest, content)
            .await
            .map_err(Error::internal)
    }

    async fn resize(&self, spec: &InstanceSpec) -> Result<()> {
        self.injected("resize")?;
        self.with_guest(&spec.id, |g| {
            g.spec = spec.clone();
            g.console.push(format!("resized to {} MB", spec.memory_mb));
        })
    }
}
