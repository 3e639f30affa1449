//! The QEMU driver: one daemonized `qemu-system-x86_64` per guest, driven
//! over QMP, its files in `<instances_dir>/<uuid>/`. Guests outlive the
//! agent: a new driver over the same directory finds them by their pid
//! files and talks to them again.
//!
//! Per guest: `disk` (qcow2 overlay on the cached base image),
//! `disk.config` (config drive), `console.log` (serial console),
//! `qmp.sock`, `vnc.sock`, `qemu.pid`, `qemu.log` (QEMU's stderr at
//! launch), `spec.json` (what is needed to launch it again), plus
//! `memory.state` while suspended, `*.resize-backup` during a resize and
//! `disk.rescue` (the disk it boots from, its own `disk` second) while
//! rescued.
//! A guest booted from a volume has no `disk`; its volumes (NBD exports
//! of the volume service) are in `spec.json` and on its command line.
//!
//! Every operation on a guest holds that guest's lock, and each can be
//! repeated: the control plane's sagas retry and undo freely.

mod accel;
pub use accel::SHARED_PROBE_KERNEL;
mod command;
mod control;
mod disk;
mod exec;
mod guest;
mod host;
mod interfaces;
mod live;
mod migrate;
pub mod qmp;
mod rescue;
mod rescue_disk;
mod resize;
mod save;
mod spawn;
mod stats;
mod tap;
mod volume_nodes;
mod volumes;

use crate::{
    ConsoleTarget, Driver, DriverError, GuestDisks, HostResources, InstanceSpec,
    LiveMigrationProgress, LiveMigrationTarget, NbdExport, PowerState, RebootKind, RescueImage,
    Result, VifSpec, VolumeAttachment, VolumeConnection,
};
use control::{describe, is_off_status, Observed};
use guest::{exists, live_pid, GuestPaths, GuestRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which accelerator guests run under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM when a probe guest actually runs under it, else TCG.
    #[default]
    Auto,
    /// KVM, without probing.
    Kvm,
    /// TCG (emulation), never probing.
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Auto => "auto",
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Accel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Accel, String> {
        match s {
            "auto" => Ok(Accel::Auto),
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            other => Err(format!(
                "unknown QEMU accelerator '{other}' (auto, kvm or tcg)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// The emulator; a bare name is looked up on `PATH`.
    pub binary: PathBuf,
    /// `qemu-img`; a bare name is looked up on `PATH`.
    pub qemu_img: PathBuf,
    /// Where the guests' directories are (created when missing).
    pub instances_dir: PathBuf,
    pub accel: Accel,
    /// How long a guest has to power off cleanly (ACPI) before it is
    /// forced off; Nova's `shutdown_timeout`.
    pub shutdown_timeout: Duration,
    /// This host's `hypervisor_hostname`.
    pub host: String,
    /// How long a launched QEMU has to answer QMP with its guest running.
    pub launch_timeout: Duration,
    /// How long the KVM probe guest has to print.
    pub probe_timeout: Duration,
    /// A Linux kernel the KVM probe boots (after its boot sector) to see a
    /// real kernel run under KVM; `None`: the newest `/boot/vmlinuz-*`, else
    /// [`accel::SHARED_PROBE_KERNEL`] (what `scripts/setup-host.sh` puts there).
    pub probe_kernel: Option<PathBuf>,
    /// How long that kernel has to reach its root-mount panic under KVM.
    pub probe_kernel_timeout: Duration,
    /// Bound of each QMP exchange.
    pub qmp_timeout: Duration,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            binary: "qemu-system-x86_64".into(),
            qemu_img: "qemu-img".into(),
            instances_dir: "/var/lib/ferrostack/instances".into(),
            accel: Accel::Auto,
            shutdown_timeout: Duration::from_secs(60),
            host: hostname(),
            launch_timeout: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(3),
            probe_kernel: None,
            probe_kernel_timeout: Duration::from_secs(15),
            qmp_timeout: Duration::from_secs(10),
        }
    }
}

impl QemuConfig {
    /// The defaults, with guests in `instances_dir` and this `host` name.
    pub fn new(instances_dir: impl Into<PathBuf>, host: impl Into<String>) -> Self {
        QemuConfig {
            instances_dir: instances_dir.into(),
            host: host.into(),
            ..Default::default()
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let n = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Longest unix socket path (sun_path less its NUL).
const MAX_SOCKET_PATH: usize = 107;

pub struct QemuDriver {
    config: QemuConfig,
    ip: Option<PathBuf>,
    accel: Accel,
    accel_reason: String,
    version: (u32, u32, u32),
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl QemuDriver {
    /// Find QEMU and qemu-img, make the instances directory, and choose
    /// the accelerator (probing KVM once per boot for [`Accel::Auto`]).
    pub async fn new(mut config: QemuConfig) -> Result<QemuDriver> {
        let (binary, qemu_img, ip) = {
            let (b, q) = (config.binary.clone(), config.qemu_img.clone());
            tokio::task::spawn_blocking(move || {
                (
                    exec::find_program(&b),
                    exec::find_program(&q),
                    exec::find_program(Path::new("ip")),
                )
            })
            .await
            .map_err(|e| DriverError::failed("looking for QEMU", e))?
        };
        let binary = binary.ok_or_else(|| {
            DriverError::HypervisorUnavailable(format!(
                "{} not found: install the Debian package qemu-system-x86",
                config.binary.display()
            ))
        })?;
        let qemu_img = qemu_img.ok_or_else(|| {
            DriverError::HypervisorUnavailable(format!(
                "{} not found: install the Debian package qemu-utils",
                config.qemu_img.display()
            ))
        })?;
        let ran = exec::run(&binary, ["--version"], Duration::from_secs(30))
            .await
            .map_err(DriverError::HypervisorUnavailable)?;
        if !ran.status.success() {
            return Err(DriverError::HypervisorUnavailable(format!(
                "{} --version failed: {}",
                binary.display(),
                ran.reason()
            )));
        }
        let version_line = ran
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let version = host::parse_version(&version_line).ok_or_else(|| {
            DriverError::HypervisorUnavailable(format!(
                "Cannot tell the QEMU version from '{version_line}'"
            ))
        })?;

        let unusable = |what: String| DriverError::HypervisorUnavailable(what);
        tokio::fs::create_dir_all(&config.instances_dir)
            .await
            .map_err(|e| {
                unusable(format!(
                    "Cannot create the instances directory {}: {e}",
                    config.instances_dir.display()
                ))
            })?;
        let dir = tokio::fs::canonicalize(&config.instances_dir)
            .await
            .map_err(|e| {
                unusable(format!(
                    "Cannot use the instances directory {}: {e}",
                    config.instances_dir.display()
                ))
            })?;
        let dir_text = dir.to_str().ok_or_else(|| {
            unusable(format!(
                "The instances directory {} is not UTF-8",
                dir.display()
            ))
        })?;
        if dir_text.contains(',') {
            return Err(unusable(format!(
                "The instances directory {dir_text} has a comma, which QEMU options cannot take"
            )));
        }
        let longest = dir_text.len() + "/".len() + 36 + "/qmp.sock".len();
        if longest > MAX_SOCKET_PATH {
            return Err(unusable(format!(
                "The instances directory {dir_text} is too long for QEMU's unix sockets \
                 ({} bytes; at most {})",
                dir_text.len(),
                MAX_SOCKET_PATH - (longest - dir_text.len())
            )));
        }
        config.binary = binary;
        config.qemu_img = qemu_img;
        config.instances_dir = dir;

        let (accel, accel_reason) = accel::resolve(
            config.accel,
            &config.binary,
            &version_line,
            &config.instances_dir,
            &accel::Probe {
                timeout: config.probe_timeout,
                kernel: config.probe_kernel.clone(),
                kernel_timeout: config.probe_kernel_timeout,
            },
        )
        .await;
        tracing::info!("QEMU accelerator: {accel} ({accel_reason})");
        Ok(QemuDriver {
            ip,
            config,
            accel,
            accel_reason,
            version,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// The accelerator guests run under (never `Auto`).
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// Why that accelerator (the probe's outcome).
    pub fn accel_reason(&self) -> &str {
        &self.accel_reason
    }

    /// QEMU's version (major, minor, micro).
    pub fn version(&self) -> (u32, u32, u32) {
        self.version
    }

    /// The configuration, with the programs and directory resolved.
    pub fn config(&self) -> &QemuConfig {
        &self.config
    }

    /// `<instances_dir>/<id>`.
    pub fn instance_dir(&self, id: &str) -> PathBuf {
        self.config.instances_dir.join(id)
    }

    /// The pid of the guest's QEMU, when one runs.
    pub async fn qemu_pid(&self, id: &str) -> Option<i32> {
        live_pid(&self.paths(id).ok()?).await
    }

    fn paths(&self, id: &str) -> Result<GuestPaths> {
        GuestPaths::new(&self.config.instances_dir, id)
    }

    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|k, l| k == id || Arc::strong_count(l) > 1);
        locks.entry(id.to_owned()).or_default().clone()
    }
}

#[async_trait::async_trait]
impl Driver for QemuDriver {
    fn kind(&self) -> &'static str {
        "qemu"
    }

    async fn host_resources(&self) -> Result<HostResources> {
        host::resources(&self.config.host, self.version, &self.config.instances_dir).await
    }

    async fn spawn(&self, spec: &InstanceSpec, disks: &GuestDisks) -> Result<()> {
        self.spawn_guest(spec, disks).await
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        if !exists(&p.dir).await {
            return Ok(());
        }
        let record = GuestRecord::load(&p.record()).await.ok();
        if let Some(pid) = live_pid(&p).await {
            self.stop_process(&p, pid).await?;
        }
        if let Some(r) = &record {
            for vif in &r.spec.vifs {
                tap::delete(self.ip.as_deref(), &vif.tap_name()).await?;
            }
        }
        match tokio::fs::remove_dir_all(&p.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DriverError::failed(
                &format!("removing {}", p.dir.display()),
                e,
            )),
        }
    }

    async fn reboot(&self, id: &str, kind: RebootKind) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        if kind == RebootKind::Soft {
            if let Observed::Live { pid, status } = self.observe_existing(&p).await? {
                if status == "running" {
                    if self.clean_shutdown(&p, pid).await
                        && guest::is_guest_process(pid, id).await
                        && self.reset_and_run(&p, pid).await
                    {
                        return Ok(());
                    }
                    tracing::info!(
                        "instance {id} did not reboot cleanly within {} s: rebooting it hard",
                        self.config.shutdown_timeout.as_secs_f64()
                    );
                }
            }
        }
        self.hard_reboot_locked(&p).await
    }

    async fn power_off(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.power_off_locked(&p).await
    }

    async fn power_on(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let mut observed = self.observe_existing(&p).await?;
        if let Observed::Live { pid, status } = &observed {
            if status != "running" && exists(&p.memory_state()).await {
                // A suspend or a restore that did not finish.
                return self.resume_locked(&p).await;
            }
            if !is_off_status(status) {
                return Ok(());
            }
            self.stop_process(&p, *pid).await?;
            observed = self.observe_existing(&p).await?;
        }
        match observed {
            Observed::Off { suspended: true } => self.resume_locked(&p).await,
            _ => {
                let record = self.load_record(&p).await?;
                self.launch(&p, &record, false).await.map(|_| ())
            }
        }
    }

    async fn pause(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        match self.observe_existing(&p).await? {
            Observed::Live { status, .. } if status == "paused" => Ok(()),
            Observed::Live { status, .. } if status == "running" => {
                self.qmp_do(&p, "stop", None).await.map(|_| ())
            }
            o => Err(DriverError::InvalidState(format!(
                "Cannot pause instance {id}: it is {}.",
                describe(&o)
            ))),
        }
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        match self.observe_existing(&p).await? {
            Observed::Live { status, .. } if status == "running" => Ok(()),
            Observed::Live { status, .. } if status == "paused" => {
                self.qmp_do(&p, "cont", None).await.map(|_| ())
            }
            o => Err(DriverError::InvalidState(format!(
                "Cannot unpause instance {id}: it is {}.",
                describe(&o)
            ))),
        }
    }

    async fn suspend(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.suspend_locked(&p).await
    }

    async fn resume(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.resume_locked(&p).await
    }

    async fn rescue(&self, id: &str, image: &RescueImage) -> Result<()> {
        self.rescue_guest(id, image).await
    }

    async fn unrescue(&self, id: &str) -> Result<()> {
        self.unrescue_guest(id).await
    }

    /// QMP `inject-nmi` to a running guest (libvirt's `injectNMI`).
    async fn inject_nmi(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        match self.observe_existing(&p).await? {
            Observed::Live { status, .. } if status == "running" => {
                self.qmp_do(&p, "inject-nmi", None).await.map(|_| ())
            }
            _ => Err(DriverError::InvalidState(format!(
                "Instance {id} is not running."
            ))),
        }
    }

    async fn get_info(&self, id: &str) -> Result<PowerState> {
        let p = self.paths(id)?;
        Ok(match self.observe(&p).await? {
            Observed::Missing => return Err(DriverError::not_found(id)),
            Observed::Off { suspended: true } => PowerState::Suspended,
            Observed::Off { suspended: false } => PowerState::Shutdown,
            Observed::Live { status, .. } => match status.as_str() {
                "running" => PowerState::Running,
                // Saved or being restored: the guest's memory is in the file.
                _ if exists(&p.memory_state()).await => PowerState::Suspended,
                "paused" => PowerState::Paused,
                "shutdown" => PowerState::Shutdown,
                "internal-error" | "guest-panicked" => PowerState::Crashed,
                "suspended" => PowerState::Suspended,
                _ => PowerState::NoState,
            },
        })
    }

    async fn list_instances(&self) -> Result<Vec<String>> {
        let dir = &self.config.instances_dir;
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(|e| DriverError::failed(&format!("reading {}", dir.display()), e))?;
        let mut ids = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| DriverError::failed(&format!("reading {}", dir.display()), e))?
        {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if guest::validate_id(&name).is_ok() && exists(&entry.path().join("spec.json")).await {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    async fn attach_interface(&self, id: &str, vif: &VifSpec) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.attach_interface_locked(&p, vif).await
    }

    async fn detach_interface(&self, id: &str, port_id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.detach_interface_locked(&p, port_id).await
    }

    async fn attach_volume(&self, id: &str, volume: &VolumeAttachment) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.attach_volume_locked(&p, volume).await
    }

    async fn detach_volume(&self, id: &str, volume_id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        if !exists(&p.record()).await {
            // No such guest: it has no volume to let go of.
            return Ok(());
        }
        self.detach_volume_locked(&p, volume_id).await
    }

    async fn extend_volume(
        &self,
        id: &str,
        volume_id: &str,
        connection: &VolumeConnection,
        new_size_bytes: u64,
    ) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.extend_volume_locked(&p, volume_id, connection, new_size_bytes)
            .await
    }

    /// The base images of every guest here (and of the disk a resize kept).
    async fn guest_stats(&self, id: &str) -> Result<crate::stats::GuestStats> {
        self.read_guest_stats(id).await
    }

    async fn base_images_in_use(&self) -> Result<Option<Vec<PathBuf>>> {
        let mut bases = Vec::new();
        for id in self.list_instances().await? {
            let p = self.paths(&id)?;
            for record in [p.record(), p.record_backup()] {
                if let Ok(r) = guest::GuestRecord::load(&record).await {
                    bases.extend(r.base);
                    bases.extend(r.rescue.map(|x| x.path));
                }
            }
        }
        Ok(Some(bases))
    }

    async fn console_output(&self, id: &str, max_bytes: usize) -> Result<String> {
        let p = self.paths(id)?;
        if !exists(&p.record()).await {
            return Err(DriverError::not_found(id));
        }
        guest::read_tail(&p.console_log(), max_bytes)
            .await
            .map_err(|e| DriverError::failed(&format!("reading the console of instance {id}"), e))
    }

    async fn snapshot(&self, id: &str, dest: &Path) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let observed = self.observe_existing(&p).await?;
        if self.load_record(&p).await?.base.is_none() {
            return Err(DriverError::NotSupported(format!(
                "Instance {id} boots from a volume: it is snapshotted through the \
                 block storage service, not by the hypervisor."
            )));
        }
        // Stopping the guest makes QEMU flush its disk.
        let stopped = matches!(&observed, Observed::Live { status, .. } if status == "running");
        if stopped {
            self.qmp_do(&p, "stop", None).await?;
        }
        let copied = disk::convert(&self.config.qemu_img, &p.disk(), dest).await;
        if stopped {
            if let Err(e) = self.qmp(&p, "cont", None).await {
                let e = DriverError::Failed(format!(
                    "Instance {id} could not be resumed after its snapshot: {e}"
                ));
                if copied.is_ok() {
                    return Err(e);
                }
                tracing::warn!("{e}");
            }
        }
        if let Err(e) = copied {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(DriverError::Failed(format!(
                "Snapshot of instance {id} failed: {e}"
            )));
        }
        Ok(())
    }

    async fn resize(&self, spec: &InstanceSpec) -> Result<()> {
        self.resize_guest(spec).await
    }

    async fn confirm_resize(&self, id: &str) -> Result<()> {
        self.confirm_resize_guest(id).await
    }

    async fn revert_resize(&self, spec: &InstanceSpec) -> Result<()> {
        self.revert_resize_guest(spec).await
    }

    async fn migrate_out(&self, id: &str, address: &str) -> Result<Option<NbdExport>> {
        self.migrate_out_guest(id, address).await
    }

    async fn end_migrate_out(&self, id: &str) -> Result<()> {
        self.end_migrate_out_guest(id).await
    }

    async fn migrate_in(
        &self,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        source: Option<&NbdExport>,
        power_on: bool,
    ) -> Result<()> {
        self.migrate_in_guest(spec, disks, source, power_on).await
    }

    async fn revert_migration(&self, spec: &InstanceSpec, power_on: bool) -> Result<()> {
        self.revert_migration_guest(spec, power_on).await
    }

    async fn prepare_live_migration(
        &self,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        copy_disks: bool,
        address: &str,
    ) -> Result<LiveMigrationTarget> {
        self.prepare_live_migration_guest(spec, disks, copy_disks, address)
            .await
    }

    async fn live_migrate(&self, id: &str, target: &LiveMigrationTarget) -> Result<()> {
        self.live_migrate_guest(id, target).await
    }

    async fn live_migration_progress(&self, id: &str) -> Result<LiveMigrationProgress> {
        self.live_migration_progress_of(id).await
    }

    async fn live_migration_force_complete(&self, id: &str) -> Result<()> {
        self.live_migration_force_complete_of(id).await
    }

    async fn live_migration_abort(&self, id: &str) -> Result<()> {
        self.live_migration_abort_of(id).await
    }

    async fn finish_live_migration(&self, id: &str, paused: bool) -> Result<()> {
        self.finish_live_migration_guest(id, paused).await
    }

    async fn rollback_live_migration_at_destination(&self, id: &str) -> Result<()> {
        self.rollback_live_migration_at_destination_guest(id).await
    }

    async fn rollback_live_migration(&self, id: &str, paused: bool) -> Result<()> {
        self.rollback_live_migration_guest(id, paused).await
    }

    async fn vnc_console(&self, id: &str) -> Result<ConsoleTarget> {
        let p = self.paths(id)?;
        match self.observe_existing(&p).await? {
            Observed::Live { .. } => Ok(ConsoleTarget::Unix { path: p.vnc() }),
            o => Err(DriverError::InvalidState(format!(
                "Instance {id} is {}: its console is not available.",
                describe(&o)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerators_parse_and_print() {
        for a in [Accel::Auto, Accel::Kvm, Accel::Tcg] {
            assert_eq!(a.as_str().parse::<Accel>().unwrap(), a);
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert!("xen".parse::<Accel>().is_err());
    }

    #[test]
    fn defaults_follow_nova() {
        let c = QemuConfig::new("/srv/i", "cn1");
        assert_eq!(c.binary, Path::new("qemu-system-x86_64"));
        assert_eq!(c.qemu_img, Path::new("qemu-img"));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(60));
        assert_eq!(c.accel, Accel::Auto);
        assert_eq!(c.host, "cn1");
        assert!(!QemuConfig::default().host.is_empty());
    }

    #[tokio::test]
    async fn a_missing_qemu_names_the_package() {
        let mut c = QemuConfig::new(std::env::temp_dir().join("fs-none"), "h");
        c.binary = "no-such-qemu-system-x86_64".into();
        let e = QemuDriver::new(c).await.err().unwrap();
        assert_eq!(
            e,
            DriverError::HypervisorUnavailable(
                "no-such-qemu-system-x86_64 not found: install the Debian package qemu-system-x86"
                    .into()
            )
        );
    }
}
