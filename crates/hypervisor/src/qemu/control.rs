//! Driving one guest's QEMU: what state it is in, launching it from its
//! record, waiting on its QMP status, ending it (ACPI, `quit`, signals).

use super::command;
use super::exec;
use super::guest::{self, exists, live_pid, GuestPaths, GuestRecord};
use super::qmp::{Qmp, QmpError};
use super::tap;
use super::QemuDriver;
use crate::InstanceSpec;
use crate::{DriverError, Result};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// How long QEMU gets to exit after `quit`, then after SIGTERM.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// Interval of status polls.
pub(super) const POLL: Duration = Duration::from_millis(100);
/// How often a guest that has not powered off is asked again.
const POWERDOWN_RETRY: Duration = Duration::from_secs(5);

/// What is on the host for a guest.
#[derive(Debug)]
pub(super) enum Observed {
    /// No guest (no directory, or one without its record).
    Missing,
    /// The guest exists; no QEMU runs it.
    Off { suspended: bool },
    /// Its QEMU runs; `status` is `query-status`'s.
    Live { pid: i32, status: String },
}

/// How a wait for a QEMU status ended.
pub(super) enum Waited {
    Reached,
    Gone,
    TimedOut(String),
}

/// QMP statuses in which the guest is not on (its QEMU still runs).
pub(super) fn is_off_status(status: &str) -> bool {
    matches!(
        status,
        "shutdown" | "internal-error" | "guest-panicked" | "postmigrate"
    )
}

pub(super) fn describe(o: &Observed) -> String {
    match o {
        Observed::Missing => "gone".into(),
        Observed::Off { suspended: true } => "suspended".into(),
        Observed::Off { suspended: false } => "shut off".into(),
        Observed::Live { status, .. } => status.clone(),
    }
}

pub(super) fn display_name(spec: &InstanceSpec) -> String {
    if spec.instance_name.is_empty() {
        format!("instance {}", spec.id)
    } else {
        spec.instance_name.clone()
    }
}

pub(super) async fn append(path: &Path, text: &str) {
    use tokio::io::AsyncWriteExt;
    if let Ok(mut f) = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
    {
        let _ = f.write_all(text.as_bytes()).await;
    }
}

impl QemuDriver {
    /// One QMP command over its own connection.
    pub(super) async fn qmp(
        &self,
        p: &GuestPaths,
        command: &str,
        args: Option<Value>,
    ) -> std::result::Result<Value, QmpError> {
        let mut q = Qmp::connect(&p.qmp(), self.config.qmp_timeout).await?;
        q.execute(command, args).await
    }

    pub(super) async fn qmp_do(
        &self,
        p: &GuestPaths,
        command: &str,
        args: Option<Value>,
    ) -> Result<Value> {
        self.qmp(p, command, args).await.map_err(|e| {
            DriverError::Failed(format!("QMP {command} on instance {} failed: {e}", p.id))
        })
    }

    pub(super) async fn status(&self, p: &GuestPaths) -> std::result::Result<String, QmpError> {
        let v = self.qmp(p, "query-status", None).await?;
        v["status"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| QmpError::Protocol(format!("query-status gave {v}")))
    }

    pub(super) async fn observe(&self, p: &GuestPaths) -> Result<Observed> {
        if !exists(&p.record()).await {
            return Ok(Observed::Missing);
        }
        let suspended = exists(&p.memory_state()).await;
        let Some(pid) = live_pid(p).await else {
            return Ok(Observed::Off { suspended });
        };
        match self.status(p).await {
            Ok(status) => Ok(Observed::Live { pid, status }),
            Err(_) if live_pid(p).await.is_none() => Ok(Observed::Off { suspended }),
            Err(e) => Err(DriverError::Failed(format!(
                "QEMU of instance {} (pid {pid}) does not answer QMP: {e}",
                p.id
            ))),
        }
    }

    pub(super) async fn observe_existing(&self, p: &GuestPaths) -> Result<Observed> {
        match self.observe(p).await? {
            Observed::Missing => Err(DriverError::not_found(&p.id)),
            o => Ok(o),
        }
    }

    pub(super) async fn load_record(&self, p: &GuestPaths) -> Result<GuestRecord> {
        if !exists(&p.record()).await {
            return Err(DriverError::not_found(&p.id));
        }
        GuestRecord::load(&p.record()).await
    }

    /// Poll `query-status` until `done` holds, the process is gone, or
    /// `timeout` passes.
    pub(super) async fn wait_for(
        &self,
        p: &GuestPaths,
        pid: i32,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Waited {
        let deadline = Instant::now() + timeout;
        loop {
            if !guest::is_guest_process(pid, &p.id).await {
                return Waited::Gone;
            }
            let last = match self.status(p).await {
                Ok(s) if done(&s) => return Waited::Reached,
                Ok(s) => s,
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Waited::TimedOut(last);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Start the guest's QEMU from its record (taps first); wait until it
    /// runs (or, `incoming`, waits for its saved memory).
    pub(super) async fn launch(
        &self,
        p: &GuestPaths,
        record: &GuestRecord,
        incoming: bool,
    ) -> Result<i32> {
        let name = display_name(&record.spec);
        for vif in &record.spec.vifs {
            tap::ensure(self.ip.as_deref(), vif).await?;
        }
        for stale in [p.qmp(), p.vnc(), p.pidfile()] {
            guest::remove_file(&stale).await?;
        }
        let args = command::qemu_args(&command::Launch {
            record,
            paths: p,
            accel: self.accel,
            incoming,
        });
        tracing::debug!(
            "starting {name}: {} {}",
            self.config.binary.display(),
            args.join(" ")
        );
        let started = std::time::Instant::now();
        let ran = exec::run(&self.config.binary, &args, self.config.launch_timeout)
            .await
            .map_err(|e| {
                DriverError::HypervisorUnavailable(format!("QEMU could not start {name}: {e}"))
            })?;
        if !ran.stderr.trim().is_empty() {
            append(&p.qemu_log(), &ran.stderr).await;
        }
        if !ran.status.success() {
            let reason = ran.reason();
            let message = format!("QEMU could not start {name}: {reason}");
            return Err(if reason.to_ascii_lowercase().contains("kvm") {
                DriverError::HypervisorUnavailable(message)
            } else {
                DriverError::Failed(message)
            });
        }
        let pid = live_pid(p).await.ok_or_else(|| {
            DriverError::Failed(format!(
                "QEMU started {name} but exited at once (see {})",
                p.qemu_log().display()
            ))
        })?;
        let want = if incoming { "inmigrate" } else { "running" };
        match self
            .wait_for(p, pid, self.config.launch_timeout, |s| s == want)
            .await
        {
            Waited::Reached => {
                tracing::info!(
                    "started {name} (pid {pid}, {}) in {} ms",
                    self.accel,
                    started.elapsed().as_millis()
                );
                Ok(pid)
            }
            Waited::Gone => Err(DriverError::Failed(format!(
                "QEMU exited right after starting {name}"
            ))),
            Waited::TimedOut(last) => {
                let _ = self.stop_process(p, pid).await;
                Err(DriverError::Failed(format!(
                    "QEMU started {name} but it was not {want} within {} s (status: {last})",
                    self.config.launch_timeout.as_secs_f64()
                )))
            }
        }
    }

    /// End the guest's QEMU: `quit`, then SIGTERM, then SIGKILL.
    pub(super) async fn stop_process(&self, p: &GuestPaths, pid: i32) -> Result<()> {
        let _ = self.qmp(p, "quit", None).await;
        if guest::wait_gone(pid, &p.id, EXIT_WAIT).await {
            return Ok(());
        }
        for sig in [libc::SIGTERM, libc::SIGKILL] {
            guest::signal(pid, sig);
            if guest::wait_gone(pid, &p.id, EXIT_WAIT).await {
                return Ok(());
            }
        }
        Err(DriverError::Failed(format!(
            "The QEMU process {pid} of instance {} did not exit, even after SIGKILL",
            p.id
        )))
    }

    /// ACPI power button, then wait for the guest to power off. The button
    /// is pressed again every few seconds, as Nova's libvirt driver does: a
    /// guest still booting misses the first press.
    pub(super) async fn clean_shutdown(&self, p: &GuestPaths, pid: i32) -> bool {
        let deadline = Instant::now() + self.config.shutdown_timeout;
        loop {
            if let Err(e) = self.qmp(p, "system_powerdown", None).await {
                tracing::warn!("system_powerdown of instance {} failed: {e}", p.id);
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .wait_for(p, pid, left.min(POWERDOWN_RETRY), |s| s == "shutdown")
                .await
            {
                Waited::Reached | Waited::Gone => return true,
                Waited::TimedOut(_) if Instant::now() >= deadline => return false,
                Waited::TimedOut(_) => {}
            }
        }
    }

    pub(super) async fn power_off_locked(&self, p: &GuestPaths) -> Result<()> {
        match self.observe_existing(p).await? {
            Observed::Live { pid, status } => {
                if status == "running" && !self.clean_shutdown(p, pid).await {
                    tracing::info!(
                        "instance {} did not power off within {} s: forcing it off",
                        p.id,
                        self.config.shutdown_timeout.as_secs_f64()
                    );
                }
                self.stop_process(p, pid).await
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn hard_reboot_locked(&self, p: &GuestPaths) -> Result<()> {
        let record = self.load_record(p).await?;
        if let Some(pid) = live_pid(p).await {
            self.stop_process(p, pid).await?;
        }
        guest::remove_file(&p.memory_state()).await?;
        guest::remove_file(&p.memory_state_part()).await?;
        self.launch(p, &record, false).await.map(|_| ())
    }

    /// The running-ness the guest had: on when its QEMU runs it.
    pub(super) async fn is_on(&self, p: &GuestPaths) -> Result<bool> {
        Ok(matches!(
            self.observe_existing(p).await?,
            Observed::Live { ref status, .. } if !is_off_status(status)
        ))
    }

    /// After a clean power-off in the same process: reset and run again.
    pub(super) async fn reset_and_run(&self, p: &GuestPaths, pid: i32) -> bool {
        if let Err(e) = self.qmp(p, "system_reset", None).await {
            tracing::warn!("system_reset of instance {}: {e}", p.id);
            return false;
        }
        // The reset is done by QEMU's main loop; `cont` is refused until then.
        let deadline = Instant::now() + self.config.qmp_timeout;
        loop {
            match self.qmp(p, "cont", None).await {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!("cont of instance {} after reset: {e}", p.id);
                    return false;
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
        matches!(
            self.wait_for(p, pid, self.config.qmp_timeout, |s| s == "running")
                .await,
            Waited::Reached
        )
    }
}
