//! The fake driver: guests are records in memory that report running, as
//! Nova's fake driver does — for scale tests of the control plane, never
//! in place of a real hypervisor. Tests make its next call of a method
//! fail through [`FakeDriver::fail_next`].

use crate::{
    ConsoleTarget, Driver, DriverError, GuestDisks, HostResources, InstanceSpec,
    LiveMigrationPhase, LiveMigrationProgress, LiveMigrationTarget, NbdExport, PowerState,
    RebootKind, RescueImage, Result, VifSpec, VolumeAttachment, VolumeConnection,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

/// What the fake hypervisor claims to have.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub host: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
}

#[derive(Clone, Debug)]
pub struct FakeGuest {
    pub spec: InstanceSpec,
    pub power_state: PowerState,
    pub console: Vec<String>,
    /// The flavor before a resize, until it is confirmed or reverted.
    pub pre_resize: Option<InstanceSpec>,
    pub config_drive: bool,
    /// The rescue image it runs from while rescued.
    pub rescue: Option<RescueImage>,
    /// How many NMIs it was sent (`trigger_crash_dump`).
    pub nmis: u32,
    /// Where it is in a live migration (`None`: not migrating).
    pub live: Option<LiveState>,
}

/// A fake guest's part in a live migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveState {
    /// Destination: made, paused, waiting for the guest.
    Incoming,
    /// Source: copying (`rounds` so far); `forced` once paused to converge.
    Outgoing { rounds: u64, forced: bool },
    /// Source: switched over; this copy is stopped for good.
    MigratedOut,
    /// Source: the migration was aborted (the copy runs on).
    Aborted,
}

pub struct FakeDriver {
    resources: HostResources,
    guests: Mutex<HashMap<String, FakeGuest>>,
    failures: Mutex<HashSet<String>>,
    /// Live migrations from here wait (copying) until released, forced or
    /// aborted, so that tests see them under way.
    hold_live: std::sync::atomic::AtomicBool,
}

impl FakeDriver {
    pub fn new(config: &FakeConfig) -> Self {
        FakeDriver {
            resources: HostResources {
                hypervisor_type: "fake".into(),
                hypervisor_version: 1000,
                hypervisor_hostname: config.host.clone(),
                cpu_info: "{\"arch\": \"x86_64\", \"model\": \"fake\", \"vendor\": \"ferrostack\", \"topology\": {\"sockets\": 1, \"cores\": 1, \"threads\": 1}, \"features\": []}".into(),
                vcpus: config.vcpus,
                memory_mb: config.memory_mb,
                local_gb: config.local_gb,
                disk_available_least_gb: config.local_gb,
            },
            guests: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashSet::new()),
            hold_live: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Make the next call of `method` (`spawn`, `destroy`, `power_off`, …) fail.
    pub fn fail_next(&self, method: &str) {
        self.failures.lock().unwrap().insert(method.to_owned());
    }

    /// Change a guest's power state behind the control plane's back (tests
    /// of the power-state sync).
    pub fn set_power_state(&self, id: &str, state: PowerState) {
        if let Some(g) = self.guests.lock().unwrap().get_mut(id) {
            g.power_state = state;
        }
    }

    /// Hold live migrations from this host copying until released,
    /// forced to complete or aborted (`false` releases them).
    pub fn hold_live_migrations(&self, hold: bool) {
        self.hold_live
            .store(hold, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn guest(&self, id: &str) -> Option<FakeGuest> {
        self.guests.lock().unwrap().get(id).cloned()
    }

    fn injected(&self, method: &str) -> Result<()> {
        if self.failures.lock().unwrap().remove(method) {
            return Err(DriverError::Failed(format!(
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
            .ok_or_else(|| DriverError::not_found(id))
    }

    fn set_state(&self, method: &str, id: &str, state: PowerState, line: &str) -> Result<()> {
        self.injected(method)?;
        self.with_guest(id, |g| {
            g.power_state = state;
            g.console.push(line.to_owned());
        })
    }
}

#[async_trait::async_trait]
impl Driver for FakeDriver {
    fn kind(&self) -> &'static str {
        "fake"
    }

    fn uses_disks(&self) -> bool {
        false
    }

    async fn host_resources(&self) -> Result<HostResources> {
        Ok(self.resources.clone())
    }

    async fn spawn(&self, spec: &InstanceSpec, disks: &GuestDisks) -> Result<()> {
        self.injected("spawn")?;
        let mut guests = self.guests.lock().unwrap();
        if guests.contains_key(&spec.id) {
            return Ok(());
        }
        let mut console = vec![
            format!("Ferrostack fake guest {} booting", spec.name),
            format!(
                "{} vCPU, {} MB RAM, {} GB disk",
                spec.vcpus, spec.memory_mb, spec.root_gb
            ),
            format!("image {}", spec.image_id),
        ];
        for v in &spec.vifs {
            console.push(format!("{}: {}", v.tap_name(), v.mac_address));
        }
        console.push(format!("{} login:", spec.instance_name));
        guests.insert(
            spec.id.clone(),
            FakeGuest {
                spec: spec.clone(),
                power_state: PowerState::Running,
                console,
                pre_resize: None,
                config_drive: disks.config_drive.is_some(),
                rescue: None,
                nmis: 0,
                live: None,
            },
        );
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        self.injected("destroy")?;
        self.guests.lock().unwrap().remove(id);
        Ok(())
    }

    async fn reboot(&self, id: &str, kind: RebootKind) -> Result<()> {
        let line = match kind {
            RebootKind::Hard => "hard reboot",
            RebootKind::Soft => "soft reboot",
        };
        self.set_state("reboot", id, PowerState::Running, line)
    }

    async fn power_off(&self, id: &str) -> Result<()> {
        self.set_state("power_off", id, PowerState::Shutdown, "powered off")
    }

    async fn power_on(&self, id: &str) -> Result<()> {
        self.set_state("power_on", id, PowerState::Running, "powered on")
    }

    async fn pause(&self, id: &str) -> Result<()> {
        self.set_state("pause", id, PowerState::Paused, "paused")
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        self.set_state("unpause", id, PowerState::Running, "unpaused")
    }

    async fn suspend(&self, id: &str) -> Result<()> {
        self.set_state("suspend", id, PowerState::Suspended, "suspended")
    }

    async fn resume(&self, id: &str) -> Result<()> {
        self.set_state("resume", id, PowerState::Running, "resumed")
    }

    async fn rescue(&self, id: &str, image: &RescueImage) -> Result<()> {
        self.injected("rescue")?;
        self.with_guest(id, |g| {
            if g.rescue.is_none() {
                g.rescue = Some(image.clone());
                g.console.push("booted from the rescue disk".into());
            }
            g.power_state = PowerState::Running;
        })
    }

    async fn unrescue(&self, id: &str) -> Result<()> {
        self.injected("unrescue")?;
        self.with_guest(id, |g| {
            if g.rescue.take().is_some() {
                g.console.push("booted from its own disk".into());
            }
            g.power_state = PowerState::Running;
        })
    }

    async fn inject_nmi(&self, id: &str) -> Result<()> {
        self.injected("inject_nmi")?;
        let state = self.with_guest(id, |g| g.power_state)?;
        if state != PowerState::Running {
            return Err(DriverError::InvalidState(format!(
                "Instance {id} is not running."
            )));
        }
        self.with_guest(id, |g| {
            g.nmis += 1;
            g.console.push("NMI received".into());
        })
    }

    async fn get_info(&self, id: &str) -> Result<PowerState> {
        self.with_guest(id, |g| g.power_state)
    }

    async fn list_instances(&self) -> Result<Vec<String>> {
        Ok(self.guests.lock().unwrap().keys().cloned().collect())
    }

    /// Made-up figures that grow with every poll (the fake runs nothing).
    async fn guest_stats(&self, id: &str) -> Result<crate::stats::GuestStats> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static POLLS: AtomicU64 = AtomicU64::new(0);
        let spec = self.with_guest(id, |g| g.spec.clone())?;
        let n = POLLS.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(crate::stats::GuestStats {
            cpu_time_ns: n * 1_000_000_000 * u64::from(spec.vcpus),
            vcpus: spec.vcpus,
            memory_used_mb: Some(spec.memory_mb / 2),
            disks: vec![crate::stats::DiskStats {
                device: "vda".into(),
                read_bytes: n * 4096,
                read_requests: n,
                write_bytes: n * 8192,
                write_requests: n * 2,
            }],
            interfaces: spec
                .vifs
                .iter()
                .map(|v| crate::stats::InterfaceStats {
                    port_id: v.port_id.clone(),
                    device: v.tap_name(),
                    mac_address: v.mac_address.clone(),
                    rx_bytes: n * 1500,
                    rx_packets: n,
                    tx_bytes: n * 600,
                    tx_packets: n,
                })
                .collect(),
        })
    }

    async fn console_output(&self, id: &str, max_bytes: usize) -> Result<String> {
        let text = self.with_guest(id, |g| g.console.join("\n") + "\n")?;
        Ok(crate::tail(&text, max_bytes))
    }

    async fn snapshot(&self, id: &str, dest: &Path) -> Result<()> {
        self.injected("snapshot")?;
        self.with_guest(id, |_| ())?;
        // A qcow2 header (version 3, 1 GiB, no backing file) and nothing
        // else: what the image service checks, and no disk data.
        let mut content = vec![0u8; 512];
        content[0..4].copy_from_slice(b"QFI\xfb");
        content[4..8].copy_from_slice(&3u32.to_be_bytes());
        content[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        tokio::fs::write(dest, content)
            .await
            .map_err(|e| DriverError::failed("writing the snapshot", e))
    }

    async fn resize(&self, spec: &InstanceSpec) -> Result<()> {
        self.injected("resize")?;
        self.with_guest(&spec.id, |g| {
            if g.pre_resize.is_none() {
                g.pre_resize = Some(g.spec.clone());
            }
            g.spec = spec.clone();
            g.console.push(format!("resized to {} MB", spec.memory_mb));
        })
    }

    async fn confirm_resize(&self, id: &str) -> Result<()> {
        self.with_guest(id, |g| g.pre_resize = None).or(Ok(()))
    }

    async fn revert_resize(&self, spec: &InstanceSpec) -> Result<()> {
        self.injected("revert_resize")?;
        self.with_guest(&spec.id, |g| {
            g.pre_resize = None;
            g.spec = spec.clone();
            g.console.push(format!("reverted to {} MB", spec.memory_mb));
        })
    }

    async fn migrate_out(&self, id: &str, address: &str) -> Result<Option<NbdExport>> {
        self.injected("migrate_out")?;
        self.with_guest(id, |g| {
            g.power_state = PowerState::Shutdown;
            g.console.push("migrating out".into());
        })?;
        Ok(Some(NbdExport {
            export: format!("fake-{id}"),
            socket: None,
            host: Some(address.to_owned()),
            port: Some(10809),
            access_mode: "ro".into(),
        }))
    }

    async fn end_migrate_out(&self, _id: &str) -> Result<()> {
        self.injected("end_migrate_out")
    }

    async fn migrate_in(
        &self,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        _source: Option<&NbdExport>,
        power_on: bool,
    ) -> Result<()> {
        self.injected("migrate_in")?;
        let existed = self.guests.lock().unwrap().contains_key(&spec.id);
        if !existed {
            self.spawn(spec, disks).await?;
            self.with_guest(&spec.id, |g| {
                g.console.push("migrated in".into());
                if !power_on {
                    g.power_state = PowerState::Shutdown;
                }
            })?;
        } else if power_on {
            self.with_guest(&spec.id, |g| g.power_state = PowerState::Running)?;
        }
        Ok(())
    }

    async fn revert_migration(&self, spec: &InstanceSpec, power_on: bool) -> Result<()> {
        self.injected("revert_migration")?;
        self.with_guest(&spec.id, |g| {
            g.spec = spec.clone();
            g.console.push("migration reverted".into());
            if power_on {
                g.power_state = PowerState::Running;
            }
        })
    }

    async fn prepare_live_migration(
        &self,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        copy_disks: bool,
        address: &str,
    ) -> Result<LiveMigrationTarget> {
        self.injected("prepare_live_migration")?;
        if self.guests.lock().unwrap().contains_key(&spec.id) {
            let live = self.with_guest(&spec.id, |g| g.live)?;
            if live != Some(LiveState::Incoming) {
                return Err(DriverError::InvalidState(format!(
                    "Instance {} is on this host already.",
                    spec.id
                )));
            }
        } else {
            self.spawn(spec, disks).await?;
            self.with_guest(&spec.id, |g| {
                g.power_state = PowerState::Paused;
                g.live = Some(LiveState::Incoming);
                g.console.push("waiting for the live migration".into());
            })?;
        }
        let disks = if copy_disks {
            vec![crate::MirrorTarget {
                drive: "drive-virtio-disk0".into(),
                export: format!("fake-{}", spec.id),
                top_only: true,
            }]
        } else {
            Vec::new()
        };
        Ok(LiveMigrationTarget {
            host: address.to_owned(),
            port: 49152,
            nbd_port: copy_disks.then_some(10809),
            disks,
        })
    }

    /// Copies in rounds of 20 ms; with migrations held, until released,
    /// forced or aborted.
    async fn live_migrate(&self, id: &str, _target: &LiveMigrationTarget) -> Result<()> {
        self.injected("live_migrate")?;
        loop {
            let hold = self.hold_live.load(std::sync::atomic::Ordering::SeqCst);
            let done = self.with_guest(id, |g| match g.live {
                Some(LiveState::MigratedOut) => Ok(true),
                Some(LiveState::Aborted) => {
                    g.live = None;
                    Err(DriverError::Failed(format!(
                        "The live migration of instance {id} was cancelled."
                    )))
                }
                Some(LiveState::Outgoing { rounds, forced })
                    if forced || !hold || rounds > 3000 =>
                {
                    g.live = Some(LiveState::MigratedOut);
                    g.power_state = PowerState::Paused;
                    g.console.push("migrated out".into());
                    Ok(true)
                }
                Some(LiveState::Outgoing { rounds, forced }) => {
                    g.live = Some(LiveState::Outgoing {
                        rounds: rounds + 1,
                        forced,
                    });
                    Ok(false)
                }
                _ => {
                    g.live = Some(LiveState::Outgoing {
                        rounds: 0,
                        forced: false,
                    });
                    Ok(false)
                }
            })??;
            if done {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn live_migration_progress(&self, id: &str) -> Result<LiveMigrationProgress> {
        let (live, memory) = self.with_guest(id, |g| (g.live, g.spec.memory_mb << 20))?;
        let (phase, done) = match live {
            Some(LiveState::Outgoing { rounds, .. }) => (
                LiveMigrationPhase::CopyingMemory,
                (rounds * 4096).min(memory),
            ),
            Some(LiveState::MigratedOut) => (LiveMigrationPhase::Completed, memory),
            _ => (LiveMigrationPhase::None, 0),
        };
        Ok(LiveMigrationProgress {
            phase,
            memory_total: memory,
            memory_processed: done,
            memory_remaining: memory - done,
            ..Default::default()
        })
    }

    async fn live_migration_force_complete(&self, id: &str) -> Result<()> {
        self.injected("live_migration_force_complete")?;
        self.with_guest(id, |g| {
            if let Some(LiveState::Outgoing { rounds, .. }) = g.live {
                g.live = Some(LiveState::Outgoing {
                    rounds,
                    forced: true,
                });
                g.power_state = PowerState::Paused;
            }
        })
    }

    async fn live_migration_abort(&self, id: &str) -> Result<()> {
        self.injected("live_migration_abort")?;
        self.with_guest(id, |g| {
            if let Some(LiveState::Outgoing { .. }) = g.live {
                g.live = Some(LiveState::Aborted);
            }
        })
    }

    async fn finish_live_migration(&self, id: &str, paused: bool) -> Result<()> {
        self.injected("finish_live_migration")?;
        self.with_guest(id, |g| {
            if g.live == Some(LiveState::Incoming) {
                g.live = None;
                g.power_state = if paused {
                    PowerState::Paused
                } else {
                    PowerState::Running
                };
                g.console.push("live-migrated in".into());
            }
        })
    }

    async fn rollback_live_migration_at_destination(&self, id: &str) -> Result<()> {
        self.injected("rollback_live_migration_at_destination")?;
        let mut guests = self.guests.lock().unwrap();
        match guests.get(id).map(|g| g.live) {
            None => Ok(()),
            Some(Some(LiveState::Incoming)) => {
                guests.remove(id);
                Ok(())
            }
            Some(_) => Err(DriverError::InvalidState(format!(
                "Instance {id} runs on this host: it is not rolled back."
            ))),
        }
    }

    async fn rollback_live_migration(&self, id: &str, paused: bool) -> Result<()> {
        self.injected("rollback_live_migration")?;
        self.with_guest(id, |g| {
            if g.live.take().is_some() {
                g.console.push("live migration rolled back".into());
            }
            g.power_state = if paused {
                PowerState::Paused
            } else {
                PowerState::Running
            };
        })
    }

    async fn attach_interface(&self, id: &str, vif: &VifSpec) -> Result<()> {
        self.injected("attach_interface")?;
        self.with_guest(id, |g| {
            if !g.spec.vifs.iter().any(|v| v.port_id == vif.port_id) {
                g.spec.vifs.push(vif.clone());
                g.console
                    .push(format!("{}: {} attached", vif.tap_name(), vif.mac_address));
            }
        })
    }

    async fn detach_interface(&self, id: &str, port_id: &str) -> Result<()> {
        self.injected("detach_interface")?;
        self.with_guest(id, |g| g.spec.vifs.retain(|v| v.port_id != port_id))
    }

    async fn attach_volume(&self, id: &str, volume: &VolumeAttachment) -> Result<()> {
        self.injected("attach_volume")?;
        self.with_guest(id, |g| {
            if !g
                .spec
                .volumes
                .iter()
                .any(|v| v.volume_id == volume.volume_id)
            {
                g.spec.volumes.push(volume.clone());
                g.console.push(format!(
                    "{}: volume {} attached",
                    volume.device_name, volume.volume_id
                ));
            }
        })
    }

    async fn detach_volume(&self, id: &str, volume_id: &str) -> Result<()> {
        self.injected("detach_volume")?;
        // A guest that is not there has no volume to let go of.
        if let Some(g) = self.guests.lock().unwrap().get_mut(id) {
            g.spec.volumes.retain(|v| v.volume_id != volume_id);
        }
        Ok(())
    }

    async fn extend_volume(
        &self,
        id: &str,
        volume_id: &str,
        _connection: &VolumeConnection,
        new_size_bytes: u64,
    ) -> Result<()> {
        self.injected("extend_volume")?;
        self.with_guest(id, |g| {
            g.console
                .push(format!("volume {volume_id} is now {new_size_bytes} bytes"))
        })
    }

    async fn vnc_console(&self, id: &str) -> Result<ConsoleTarget> {
        self.with_guest(id, |_| ())?;
        Err(DriverError::NotSupported(
            "The fake driver has no graphical console.".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `destroy`: a detach from a guest that is gone succeeds, so an
    /// attach's undo after a host restart completes.
    #[tokio::test]
    async fn detaching_a_volume_from_a_missing_guest_succeeds() {
        let d = FakeDriver::new(&FakeConfig {
            host: "h".into(),
            vcpus: 1,
            memory_mb: 512,
            local_gb: 1,
        });
        d.detach_volume("gone", "v1").await.unwrap();
    }
}
