//! Cold migration between hosts. The source stops the guest and serves
//! its root disk read-only over NBD: one `qemu-nbd` per guest on the
//! host's management address, under a random export name (the only
//! secret: anyone on the management network who knew it could read the
//! disk until the export ends), daemonized with its pid in `nbd.pid` so it
//! outlives an agent restart. The destination fetches the image into its
//! own cache and pulls the disk with `qemu-img convert` from
//! `nbd://source:port/export` into a qcow2 overlay on that base (only
//! what differs from it is written), grows it to the new flavor's size,
//! and launches. The source keeps its stopped copy until the migration is
//! confirmed (removed) or reverted (started again).

use super::disk::{self, GIB};
use super::guest::{self, exists, GuestPaths, GuestRecord};
use super::spawn::validate_spec;
use super::{exec, tap, QemuDriver};
use crate::{DriverError, GuestDisks, InstanceSpec, NbdExport, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `qemu-nbd` has to open the disk and listen.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Copying a disk between hosts may take a while.
const PULL_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

fn export_record(p: &GuestPaths) -> PathBuf {
    p.dir.join("migrate.json")
}

fn nbd_pidfile(p: &GuestPaths) -> PathBuf {
    p.dir.join("nbd.pid")
}

/// The pid of the guest's `qemu-nbd`, when it runs (its command line
/// names the guest's disk, so the guest's id).
async fn nbd_pid(p: &GuestPaths) -> Option<i32> {
    let text = tokio::fs::read_to_string(nbd_pidfile(p)).await.ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 1 && guest::is_guest_process(pid, &p.id).await).then_some(pid)
}

/// A TCP port free on `address` now (the export binds it right after).
pub(super) fn free_port(address: &str) -> Result<u16> {
    let l = std::net::TcpListener::bind((address, 0)).map_err(|e| {
        DriverError::failed(
            &format!("finding a free port on {address} for the disk export"),
            e,
        )
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| DriverError::failed("finding a free port", e))
}

/// The `qemu-img` source URL of an export.
fn nbd_url(e: &NbdExport) -> Result<String> {
    match (&e.host, e.port) {
        (Some(h), Some(port)) if h.contains(':') => Ok(format!("nbd://[{h}]:{port}/{}", e.export)),
        (Some(h), Some(port)) => Ok(format!("nbd://{h}:{port}/{}", e.export)),
        _ => Err(DriverError::InvalidRequest(
            "A migration source needs a host and a port.".into(),
        )),
    }
}

impl QemuDriver {
    /// Stop the guest, remove its taps (its ports are bound elsewhere
    /// now) and export its disk; the same export when asked again.
    pub(super) async fn migrate_out_guest(
        &self,
        id: &str,
        address: &str,
    ) -> Result<Option<NbdExport>> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let record = self.load_record(&p).await?;
        self.power_off_locked(&p).await?;
        for vif in &record.spec.vifs {
            tap::delete(self.ip.as_deref(), &vif.tap_name()).await?;
        }
        if record.base.is_none() {
            return Ok(None);
        }
        if nbd_pid(&p).await.is_some() {
            if let Ok(text) = tokio::fs::read(export_record(&p)).await {
                if let Ok(e) = serde_json::from_slice::<NbdExport>(&text) {
                    return Ok(Some(e));
                }
            }
        }
        self.stop_export(&p).await?;
        let export = NbdExport {
            export: uuid::Uuid::new_v4().simple().to_string(),
            socket: None,
            host: Some(address.to_owned()),
            port: Some(free_port(address)?),
            access_mode: "ro".into(),
        };
        self.start_export(&p, &export).await?;
        let text = serde_json::to_vec(&export)
            .map_err(|e| DriverError::failed("encoding the export", e))?;
        guest::write_atomic(&export_record(&p), &text).await?;
        Ok(Some(export))
    }

    /// `qemu-nbd --fork`: it returns once it listens. Its output goes to
    /// a file (a daemon keeps its stdio: a pipe would never close).
    async fn start_export(&self, p: &GuestPaths, e: &NbdExport) -> Result<()> {
        let log = std::fs::File::create(p.dir.join("nbd.log"))
            .map_err(|err| DriverError::failed("creating nbd.log", err))?;
        let log2 = log
            .try_clone()
            .map_err(|err| DriverError::failed("creating nbd.log", err))?;
        let port = e.port.unwrap_or_default().to_string();
        let host = e.host.clone().unwrap_or_default();
        let mut cmd = tokio::process::Command::new("qemu-nbd");
        cmd.args(["--fork", "--persistent", "--read-only", "--shared=4"])
            .args(["--format", "qcow2", "--bind", &host, "--port", &port])
            .args(["--export-name", &e.export])
            .arg("--pid-file")
            .arg(nbd_pidfile(p))
            .arg(p.disk())
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2);
        let status = tokio::time::timeout(EXPORT_TIMEOUT, cmd.status())
            .await
            .map_err(|_| DriverError::Failed("qemu-nbd did not start in time".into()))?
            .map_err(|err| DriverError::failed("running qemu-nbd", err))?;
        if !status.success() {
            let said = std::fs::read_to_string(p.dir.join("nbd.log")).unwrap_or_default();
            return Err(DriverError::Failed(format!(
                "Exporting the disk of instance {} failed ({status}): {}",
                p.id,
                said.trim()
            )));
        }
        Ok(())
    }

    async fn stop_export(&self, p: &GuestPaths) -> Result<()> {
        if let Some(pid) = nbd_pid(p).await {
            for sig in [libc::SIGTERM, libc::SIGKILL] {
                guest::signal(pid, sig);
                if guest::wait_gone(pid, &p.id, Duration::from_secs(5)).await {
                    break;
                }
            }
        }
        guest::remove_file(&nbd_pidfile(p)).await?;
        guest::remove_file(&export_record(p)).await
    }

    pub(super) async fn end_migrate_out_guest(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        if !exists(&p.dir).await {
            return Ok(());
        }
        self.stop_export(&p).await
    }

    /// The guest back on this source host with `spec`, started when asked.
    pub(super) async fn revert_migration_guest(
        &self,
        spec: &InstanceSpec,
        power_on: bool,
    ) -> Result<()> {
        let p = self.paths(&spec.id)?;
        let lock = self.lock(&spec.id);
        let _guard = lock.lock().await;
        let mut record = self.load_record(&p).await?;
        self.stop_export(&p).await?;
        let volumes = std::mem::take(&mut record.spec.volumes);
        record.spec = spec.clone();
        record.spec.volumes = volumes;
        record.save(&p.record()).await?;
        if power_on && !self.is_on(&p).await? {
            self.launch(&p, &record, false).await?;
        }
        Ok(())
    }

    /// The guest made here from the source's disk; nothing left on failure.
    pub(super) async fn migrate_in_guest(
        &self,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        source: Option<&NbdExport>,
        power_on: bool,
    ) -> Result<()> {
        let p = self.paths(&spec.id)?;
        let lock = self.lock(&spec.id);
        let _guard = lock.lock().await;
        if exists(&p.record()).await {
            if power_on && !self.is_on(&p).await? {
                let record = GuestRecord::load(&p.record()).await?;
                self.launch(&p, &record, false).await?;
            }
            return Ok(());
        }
        validate_spec(spec)?;
        if exists(&p.dir).await {
            // Left by an import that stopped half way.
            self.discard(&p, spec, disks).await;
        }
        tokio::fs::create_dir_all(&p.dir)
            .await
            .map_err(|e| DriverError::failed(&format!("creating {}", p.dir.display()), e))?;
        let made = async {
            let base = match (source, &disks.base) {
                (Some(src), Some(base)) => Some(self.pull_disk(&p, spec, src, base, disks).await?),
                (None, _) => None,
                (Some(_), None) => {
                    return Err(DriverError::InvalidRequest(format!(
                        "Instance {} has a disk to copy but no image to put it on.",
                        spec.id
                    )))
                }
            };
            let record = self.prepare_files(&p, spec, disks, base).await?;
            if power_on {
                self.launch(&p, &record, false).await?;
            }
            Ok::<(), DriverError>(())
        }
        .await;
        if let Err(e) = made {
            tracing::warn!("migrating instance {} in failed: {e}", spec.id);
            self.discard(&p, spec, disks).await;
            return Err(e);
        }
        Ok(())
    }

    /// Copy the source's disk into `disk` (an overlay on this host's
    /// `base`), grown to the flavor's root disk; returns the base.
    async fn pull_disk(
        &self,
        p: &GuestPaths,
        spec: &InstanceSpec,
        src: &NbdExport,
        base: &Path,
        disks: &GuestDisks,
    ) -> Result<PathBuf> {
        let base = tokio::fs::canonicalize(base).await.map_err(|e| {
            DriverError::InvalidImage(format!(
                "The image of instance {} is not on this host ({}: {e})",
                spec.id,
                base.display()
            ))
        })?;
        let url = nbd_url(src)?;
        let part = p.dir.join("disk.part");
        let base_text = base.to_string_lossy().into_owned();
        let part_text = part.to_string_lossy().into_owned();
        let args = [
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "qcow2",
            "-B",
            &base_text,
            "-F",
            disks.base_format.qemu_name(),
            &url,
            &part_text,
        ];
        exec::run_ok(&self.config.qemu_img, args, PULL_TIMEOUT)
            .await
            .map_err(|e| {
                DriverError::Failed(format!(
                    "Copying the disk of instance {} from the source host failed: {e}",
                    spec.id
                ))
            })?;
        let size = disk::info(&self.config.qemu_img, &part, Some("qcow2"))
            .await
            .map_err(|e| DriverError::Failed(format!("The copied disk cannot be read: {e}")))?
            .virtual_size;
        let wanted = spec.root_gb * GIB;
        if wanted > size {
            disk::grow(&self.config.qemu_img, &part, wanted)
                .await
                .map_err(|e| DriverError::Failed(format!("Growing the copied disk failed: {e}")))?;
        }
        tokio::fs::rename(&part, p.disk())
            .await
            .map_err(|e| DriverError::failed("placing the copied disk", e))?;
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_urls() {
        let mut e = NbdExport {
            export: "abc".into(),
            socket: None,
            host: Some("10.10.10.53".into()),
            port: Some(10809),
            access_mode: "ro".into(),
        };
        assert_eq!(nbd_url(&e).unwrap(), "nbd://10.10.10.53:10809/abc");
        e.host = Some("fd00::1".into());
        assert_eq!(nbd_url(&e).unwrap(), "nbd://[fd00::1]:10809/abc");
        e.port = None;
        assert!(nbd_url(&e).is_err());
    }
}
