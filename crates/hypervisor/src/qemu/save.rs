//! Suspend (Nova's managed save) and resume: the guest's memory goes to
//! `memory.state` through QEMU's migration to a command (`exec:cat`; QEMU
//! 7.2 has no `file:` URI) and comes back with `-incoming defer`.

use super::control::{Observed, Waited, POLL};
use super::guest::{self, exists, GuestPaths, GuestRecord};
use super::QemuDriver;
use crate::{DriverError, Result};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// How long saving or loading a guest's memory may take.
pub(super) fn migration_timeout(memory_mb: u64) -> Duration {
    Duration::from_secs(60 + memory_mb / 8)
}

pub(super) fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', r"'\''"))
}

impl QemuDriver {
    pub(super) async fn resume_locked(&self, p: &GuestPaths) -> Result<()> {
        match self.observe(p).await? {
            Observed::Missing => return Err(DriverError::not_found(&p.id)),
            Observed::Off { suspended: true } => {}
            Observed::Off { suspended: false } => {
                return Err(DriverError::InvalidState(format!(
                    "Cannot resume instance {}: it is shut off, not suspended.",
                    p.id
                )))
            }
            Observed::Live { status, .. } if status == "running" => {
                // Restored already (a file left by a resume cut short is stale).
                return guest::remove_file(&p.memory_state()).await;
            }
            Observed::Live { pid, .. } if exists(&p.memory_state()).await => {
                // A restore that did not finish: start it over.
                self.stop_process(p, pid).await?;
            }
            Observed::Live { status, .. } => {
                return Err(DriverError::InvalidState(format!(
                    "Cannot resume instance {}: it is {status}, not suspended.",
                    p.id
                )))
            }
        }
        let record = self.load_record(p).await?;
        let pid = self.launch(p, &record, true).await?;
        let restored = self.restore_memory(p, pid, &record).await;
        if let Err(e) = restored {
            if guest::is_guest_process(pid, &p.id).await {
                let _ = self.stop_process(p, pid).await;
            }
            return Err(e);
        }
        guest::remove_file(&p.memory_state()).await
    }

    pub(super) async fn restore_memory(
        &self,
        p: &GuestPaths,
        pid: i32,
        record: &GuestRecord,
    ) -> Result<()> {
        let fail = |why: String| {
            DriverError::Failed(format!(
                "Restoring the memory of instance {} from {} failed: {why}",
                p.id,
                p.memory_state().display()
            ))
        };
        let uri = format!("exec:cat {}", sh_quote(&p.memory_state()));
        self.qmp(p, "migrate-incoming", Some(json!({ "uri": uri })))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let timeout = migration_timeout(record.spec.memory_mb);
        match self.wait_for(p, pid, timeout, |s| s != "inmigrate").await {
            Waited::Reached => {}
            Waited::Gone => return Err(fail("QEMU exited while loading it".into())),
            Waited::TimedOut(last) => {
                return Err(fail(format!(
                    "not done within {} s (status: {last})",
                    timeout.as_secs()
                )))
            }
        }
        if let Ok(m) = self.qmp(p, "query-migrate", None).await {
            if m["status"] == "failed" {
                return Err(fail(
                    m["error-desc"].as_str().unwrap_or("failed").to_owned(),
                ));
            }
        }
        self.qmp(p, "cont", None)
            .await
            .map_err(|e| fail(e.to_string()))?;
        match self
            .wait_for(p, pid, self.config.qmp_timeout, |s| s == "running")
            .await
        {
            Waited::Reached => Ok(()),
            Waited::Gone => Err(fail("QEMU exited when resumed".into())),
            Waited::TimedOut(last) => Err(fail(format!("the guest did not run (status: {last})"))),
        }
    }

    pub(super) async fn suspend_locked(&self, p: &GuestPaths) -> Result<()> {
        let (pid, status) = match self.observe(p).await? {
            Observed::Missing => return Err(DriverError::not_found(&p.id)),
            Observed::Off { suspended: true } => return Ok(()),
            Observed::Off { suspended: false } => {
                return Err(DriverError::InvalidState(format!(
                    "Cannot suspend instance {}: it is shut off.",
                    p.id
                )))
            }
            Observed::Live { pid, status }
                if status != "running" && exists(&p.memory_state()).await =>
            {
                // Saved already; its QEMU did not quit.
                return self.stop_process(p, pid).await;
            }
            Observed::Live { pid, status } if status == "running" || status == "paused" => {
                (pid, status)
            }
            Observed::Live { status, .. } => {
                return Err(DriverError::InvalidState(format!(
                    "Cannot suspend instance {}: it is {status}.",
                    p.id
                )))
            }
        };
        let record = self.load_record(p).await?;
        let was_running = status == "running";
        if was_running {
            self.qmp_do(p, "stop", None).await?;
        }
        let saved = self.save_memory(p, pid, &record).await;
        if let Err(e) = saved {
            let _ = guest::remove_file(&p.memory_state_part()).await;
            if was_running {
                if let Err(c) = self.qmp(p, "cont", None).await {
                    tracing::warn!(
                        "instance {} could not be resumed after a failed suspend: {c}",
                        p.id
                    );
                }
            }
            return Err(e);
        }
        tokio::fs::rename(p.memory_state_part(), p.memory_state())
            .await
            .map_err(|e| DriverError::failed("keeping the saved memory", e))?;
        self.stop_process(p, pid).await
    }

    pub(super) async fn save_memory(
        &self,
        p: &GuestPaths,
        pid: i32,
        record: &GuestRecord,
    ) -> Result<()> {
        let fail = |why: String| {
            DriverError::Failed(format!(
                "Saving the memory of instance {} failed: {why}",
                p.id
            ))
        };
        guest::remove_file(&p.memory_state_part()).await?;
        // QEMU's default migration bandwidth (32 MiB/s) is for networks.
        if let Err(e) = self
            .qmp(
                p,
                "migrate-set-parameters",
                Some(json!({ "max-bandwidth": 1u64 << 40 })),
            )
            .await
        {
            tracing::warn!("migrate-set-parameters on instance {}: {e}", p.id);
        }
        let uri = format!("exec:cat > {}", sh_quote(&p.memory_state_part()));
        self.qmp(p, "migrate", Some(json!({ "uri": uri })))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let deadline = Instant::now() + migration_timeout(record.spec.memory_mb);
        loop {
            if !guest::is_guest_process(pid, &p.id).await {
                return Err(fail("QEMU exited while saving it".into()));
            }
            match self.qmp(p, "query-migrate", None).await {
                Ok(m) => match m["status"].as_str().unwrap_or("") {
                    "completed" => return Ok(()),
                    "failed" | "cancelled" => {
                        return Err(fail(
                            m["error-desc"]
                                .as_str()
                                .unwrap_or("the migration failed")
                                .to_owned(),
                        ))
                    }
                    _ => {}
                },
                Err(e) => tracing::debug!("query-migrate on instance {}: {e}", p.id),
            }
            if Instant::now() >= deadline {
                let _ = self.qmp(p, "migrate_cancel", None).await;
                return Err(fail("it did not finish in time".into()));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote(Path::new("/a b/c")), "'/a b/c'");
        assert_eq!(sh_quote(Path::new("/a'b")), r"'/a'\''b'");
    }
}
