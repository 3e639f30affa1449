//! Live migration without shared storage, as libvirt does it for Nova:
//!
//! - The destination makes the guest's directory with empty copies of
//!   its local disks (the root disk an overlay of the same size on this
//!   host's cached base image), plugs its taps and starts the same
//!   machine paused with `-incoming defer`; its QEMU serves those disks
//!   writable over NBD on the management address (`nbd-server-start`,
//!   `nbd-server-add`) and waits for the migration stream on another
//!   port (`migrate-incoming`). `live-incoming.json` records that target:
//!   while it is there the guest is only waiting here, and a rollback
//!   removes it.
//! - The source mirrors each local disk into its export while the guest
//!   runs (`blockdev-mirror`, only the overlay's own clusters when the
//!   base is the same: `sync: top`), waits until every job is ready (the
//!   copies in step, writes now going to both), then migrates the memory
//!   (`migrate tcp:…`) with `pause-before-switchover`: when it pauses
//!   there (the guest stopped, its last writes mirrored), the mirrors are
//!   cancelled — which, once ready, leaves each copy consistent — and the
//!   migration continues to `completed`.
//! - The destination then stops its NBD server, forgets the target (the
//!   commit: the guest lives here now) and lets the guest run.
//!
//! Until that commit, the source's guest can always run on: an abort
//! (`migrate_cancel`, the jobs cancelled) or a rollback resumes it, also
//! from `postmigrate`, since its disk never stopped being its own.

use super::control::{Observed, POLL};
use super::guest::{self, exists, live_pid, GuestPaths};
use super::migrate::free_port;
use super::{tap, QemuDriver};
use crate::{
    DiskFormat, DriverError, GuestDisks, InstanceSpec, LiveMigrationPhase, LiveMigrationProgress,
    LiveMigrationTarget, MirrorTarget, Result,
};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

/// How long the destination's L2 agent has to plug the taps.
const PLUG_TIMEOUT: Duration = Duration::from_secs(20);
/// The prefix of the source's mirror jobs and their NBD target nodes.
const JOB: &str = "livemig-";

fn incoming_record(p: &GuestPaths) -> std::path::PathBuf {
    p.dir.join("live-incoming.json")
}

/// Written by `force_complete` (the guest was paused for the copy to
/// converge) and by an abort; removed by the rollback.
fn forced_marker(p: &GuestPaths) -> std::path::PathBuf {
    p.dir.join("live-forced")
}

fn failed(id: &str, why: impl std::fmt::Display) -> DriverError {
    DriverError::Failed(format!("The live migration of instance {id} failed: {why}"))
}

/// The local disks of a guest and how each is copied: the root disk's
/// own clusters only when it is an overlay on the base image, the
/// scratch disks whole. The config drive is made anew on the destination.
fn local_drives(record: &super::guest::GuestRecord) -> Vec<(String, bool)> {
    let spec = &record.spec;
    let mut drives = Vec::new();
    if record.base.is_some() {
        let id = match super::command::disk_bus(record) {
            super::command::DiskBus::Virtio => "drive-virtio-disk0",
            super::command::DiskBus::Ide => "drive-ide0-0-0",
        };
        drives.push((id.to_owned(), record.base_format != DiskFormat::Iso));
    }
    if spec.ephemeral_gb > 0 {
        drives.push(("drive-virtio-disk1".to_owned(), false));
    }
    if spec.swap_mb > 0 {
        drives.push(("drive-virtio-disk2".to_owned(), false));
    }
    drives
}

/// `host:port` in QEMU's `tcp:` URI form.
fn tcp_uri(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("tcp:[{host}]:{port}")
    } else {
        format!("tcp:{host}:{port}")
    }
}

impl QemuDriver {
    /// The destination's side: see the module's documentation.
    pub(super) async fn prepare_live_migration_guest(
        &self,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        copy_disks: bool,
        address: &str,
    ) -> Result<LiveMigrationTarget> {
        let p = self.paths(&spec.id)?;
        let lock = self.lock(&spec.id);
        let _guard = lock.lock().await;
        if exists(&p.record()).await {
            let waiting = tokio::fs::read(incoming_record(&p)).await.ok();
            match (waiting, live_pid(&p).await) {
                (Some(text), Some(_)) => {
                    return serde_json::from_slice(&text)
                        .map_err(|e| DriverError::failed("reading live-incoming.json", e))
                }
                (None, _) => {
                    return Err(DriverError::InvalidState(format!(
                        "Instance {} is on this host already.",
                        spec.id
                    )))
                }
                // Its QEMU is gone (a failed stream ends it): start over.
                (Some(_), None) => {}
            }
        }
        super::spawn::validate_spec(spec)?;
        if exists(&p.dir).await {
            self.discard(&p, spec, disks).await;
        }
        tokio::fs::create_dir_all(&p.dir)
            .await
            .map_err(|e| DriverError::failed(&format!("creating {}", p.dir.display()), e))?;
        match self
            .make_incoming(&p, spec, disks, copy_disks, address)
            .await
        {
            Ok(t) => Ok(t),
            Err(e) => {
                tracing::warn!("preparing the live migration of {} failed: {e}", spec.id);
                self.discard(&p, spec, disks).await;
                Err(e)
            }
        }
    }

    async fn make_incoming(
        &self,
        p: &GuestPaths,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        copy_disks: bool,
        address: &str,
    ) -> Result<LiveMigrationTarget> {
        let image = match (&disks.base, spec.boot_volume()) {
            (Some(base), None) => Some(self.root_disk_size(spec, base, disks).await?),
            _ => None,
        };
        if image.is_some() && !copy_disks {
            return Err(DriverError::InvalidRequest(format!(
                "Instance {} has a local disk and this host shares no storage with the \
                 source: only a block migration can move it.",
                spec.id
            )));
        }
        if let Some((base, size)) = &image {
            let made = if disks.base_format == DiskFormat::Iso {
                super::disk::create_blank(&self.config.qemu_img, &p.disk(), *size).await
            } else {
                super::disk::create_overlay(
                    &self.config.qemu_img,
                    base,
                    disks.base_format.qemu_name(),
                    &p.disk(),
                    *size,
                )
                .await
            };
            made.map_err(|e| DriverError::Failed(format!("Could not create the disk: {e}")))?;
        }
        let record = self
            .prepare_files(p, spec, disks, image.map(|(b, _)| b))
            .await?;
        // Written before QEMU starts: a rollback finds a guest that waits.
        guest::write_atomic(&incoming_record(p), b"{}").await?;
        self.launch(p, &record, true).await?;
        let mut target = LiveMigrationTarget {
            host: address.to_owned(),
            port: free_port(address)?,
            nbd_port: None,
            disks: Vec::new(),
        };
        let drives = local_drives(&record);
        if !drives.is_empty() {
            let nbd_port = free_port(address)?;
            let addr =
                json!({"type": "inet", "data": {"host": address, "port": nbd_port.to_string()}});
            self.qmp_do(p, "nbd-server-start", Some(json!({ "addr": addr })))
                .await?;
            for (drive, top_only) in drives {
                let export = uuid::Uuid::new_v4().simple().to_string();
                let args = json!({"device": drive, "name": export, "writable": true});
                self.qmp_do(p, "nbd-server-add", Some(args)).await?;
                target.disks.push(MirrorTarget {
                    drive,
                    export,
                    top_only,
                });
            }
            target.nbd_port = Some(nbd_port);
        }
        let uri = tcp_uri(address, target.port);
        self.qmp_do(p, "migrate-incoming", Some(json!({ "uri": uri })))
            .await?;
        self.wait_plugged(spec).await;
        let text = serde_json::to_vec(&target)
            .map_err(|e| DriverError::failed("encoding the live migration target", e))?;
        guest::write_atomic(&incoming_record(p), &text).await?;
        Ok(target)
    }

    /// Wait (bounded) until the L2 agent has put every tap in its bridge,
    /// so the guest's first packets after the switch-over go out.
    async fn wait_plugged(&self, spec: &InstanceSpec) {
        let deadline = Instant::now() + PLUG_TIMEOUT;
        for vif in &spec.vifs {
            let name = vif.tap_name();
            while tap::master(self.ip.as_deref(), &name).await.is_none() {
                if Instant::now() >= deadline {
                    tracing::warn!("{name} of instance {} is in no bridge yet", spec.id);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// The source's side: mirror the disks, migrate the memory, switch
    /// over; any failure before that leaves the guest running here.
    pub(super) async fn live_migrate_guest(
        &self,
        id: &str,
        target: &LiveMigrationTarget,
    ) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let (pid, status) = match self.observe_existing(&p).await? {
            Observed::Live { pid, status } => (pid, status),
            o => {
                return Err(DriverError::InvalidState(format!(
                    "Cannot live-migrate instance {id}: it is {}.",
                    super::control::describe(&o)
                )))
            }
        };
        let m = self.qmp_do(&p, "query-migrate", None).await?;
        let under_way = matches!(
            m["status"].as_str(),
            Some("setup" | "active" | "pre-switchover" | "device" | "completed")
        );
        if !under_way {
            if status == "postmigrate" {
                return Ok(());
            }
            let record = self.load_record(&p).await?;
            let copied = self.mirror_disks(&p, pid, target, &record).await;
            if let Err(e) = copied {
                self.cancel_copies(&p).await;
                return Err(e);
            }
            if let Err(e) = self.start_migration(&p, target).await {
                self.cancel_copies(&p).await;
                return Err(e);
            }
        }
        let outcome = self.follow_migration(&p, pid).await;
        if outcome.is_err() {
            self.cancel_copies(&p).await;
        }
        outcome
    }

    /// Start (unless started) a mirror of each local disk into its
    /// export, and wait until all are ready.
    async fn mirror_disks(
        &self,
        p: &GuestPaths,
        pid: i32,
        target: &LiveMigrationTarget,
        record: &super::guest::GuestRecord,
    ) -> Result<()> {
        let local = local_drives(record);
        let jobs = self.mirror_jobs(p).await?;
        for disk in &target.disks {
            if !local.iter().any(|(d, _)| *d == disk.drive) {
                return Err(failed(&p.id, format!("it has no disk {}", disk.drive)));
            }
            let job = format!("{JOB}{}", disk.drive);
            if jobs.iter().any(|j| j["device"] == job.as_str()) {
                continue;
            }
            let (Some(port), host) = (target.nbd_port, &target.host) else {
                return Err(failed(&p.id, "the destination serves no disks"));
            };
            let node = json!({
                "driver": "nbd", "node-name": job,
                "server": {"type": "inet", "host": host, "port": port.to_string()},
                "export": disk.export,
            });
            if let Err(e) = self.qmp(p, "blockdev-add", Some(node)).await {
                if !e.to_string().contains("Duplicate") {
                    return Err(failed(&p.id, format!("connecting to {}: {e}", disk.export)));
                }
            }
            let sync = if disk.top_only { "top" } else { "full" };
            let mirror = json!({"job-id": job, "device": disk.drive, "target": job,
                "sync": sync, "auto-dismiss": true});
            self.qmp(p, "blockdev-mirror", Some(mirror))
                .await
                .map_err(|e| failed(&p.id, format!("mirroring {}: {e}", disk.drive)))?;
        }
        let wanted = target.disks.len();
        loop {
            if !guest::is_guest_process(pid, &p.id).await {
                return Err(failed(&p.id, "its QEMU exited"));
            }
            if self.aborted(p).await {
                return Err(failed(&p.id, "it was cancelled"));
            }
            let jobs = self.mirror_jobs(p).await?;
            if jobs.len() < wanted {
                return Err(failed(&p.id, "a disk copy stopped"));
            }
            if jobs.iter().all(|j| j["ready"] == true) {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The source's mirror jobs of a live migration.
    async fn mirror_jobs(&self, p: &GuestPaths) -> Result<Vec<Value>> {
        let jobs = self.qmp_do(p, "query-block-jobs", None).await?;
        Ok(jobs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|j| j["device"].as_str().is_some_and(|d| d.starts_with(JOB)))
            .cloned()
            .collect())
    }

    /// Whether an abort stopped the migration (its marker says so).
    async fn aborted(&self, p: &GuestPaths) -> bool {
        tokio::fs::read_to_string(forced_marker(p))
            .await
            .is_ok_and(|t| t.contains("abort"))
    }

    async fn start_migration(&self, p: &GuestPaths, target: &LiveMigrationTarget) -> Result<()> {
        let caps = json!({"capabilities": [
            {"capability": "pause-before-switchover", "state": true},
        ]});
        self.qmp_do(p, "migrate-set-capabilities", Some(caps))
            .await?;
        // QEMU's default bandwidth (32 MiB/s) is a WAN's.
        let params = json!({"max-bandwidth": 1u64 << 34, "downtime-limit": 500});
        self.qmp_do(p, "migrate-set-parameters", Some(params))
            .await?;
        let uri = tcp_uri(&target.host, target.port);
        self.qmp(p, "migrate", Some(json!({ "uri": uri })))
            .await
            .map_err(|e| failed(&p.id, e))?;
        Ok(())
    }

    /// Follow the migration to its end: at the pause before the
    /// switch-over the mirrors are cancelled (the copies now complete),
    /// then it continues to `completed`.
    async fn follow_migration(&self, p: &GuestPaths, pid: i32) -> Result<()> {
        let record = self.load_record(p).await?;
        let deadline = Instant::now() + super::save::migration_timeout(record.spec.memory_mb) * 4;
        loop {
            if !guest::is_guest_process(pid, &p.id).await {
                return Err(failed(&p.id, "its QEMU exited"));
            }
            let m = self.qmp_do(p, "query-migrate", None).await?;
            match m["status"].as_str().unwrap_or("") {
                "completed" => return Ok(()),
                "pre-switchover" => {
                    self.finish_mirrors(p).await?;
                    self.qmp_do(
                        p,
                        "migrate-continue",
                        Some(json!({"state": "pre-switchover"})),
                    )
                    .await?;
                }
                "failed" | "cancelled" | "cancelling" | "none" => {
                    let why = m["error-desc"].as_str().unwrap_or("it was cancelled");
                    return Err(failed(&p.id, why));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(failed(&p.id, "it did not complete in time"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Cancel the ready mirrors while the guest is stopped (each copy
    /// then has every write), and wait until they are gone.
    async fn finish_mirrors(&self, p: &GuestPaths) -> Result<()> {
        for j in self.mirror_jobs(p).await? {
            let job = j["device"].as_str().unwrap_or_default();
            self.qmp_do(p, "block-job-cancel", Some(json!({ "device": job })))
                .await?;
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while !self.mirror_jobs(p).await?.is_empty() {
            if Instant::now() >= deadline {
                return Err(failed(&p.id, "the disk copies did not finish"));
            }
            tokio::time::sleep(POLL).await;
        }
        self.drop_targets(p).await;
        Ok(())
    }

    /// Remove the NBD nodes the mirrors wrote into.
    async fn drop_targets(&self, p: &GuestPaths) {
        let Ok(nodes) = self.qmp(p, "query-named-block-nodes", None).await else {
            return;
        };
        for n in nodes.as_array().into_iter().flatten() {
            if let Some(name) = n["node-name"].as_str().filter(|n| n.starts_with(JOB)) {
                let _ = self
                    .qmp(p, "blockdev-del", Some(json!({ "node-name": name })))
                    .await;
            }
        }
    }

    /// Stop whatever copy is under way (migration, mirrors); best effort.
    async fn cancel_copies(&self, p: &GuestPaths) {
        let _ = self.qmp(p, "migrate_cancel", None).await;
        if let Ok(jobs) = self.mirror_jobs(p).await {
            for j in jobs {
                let job = j["device"].as_str().unwrap_or_default();
                let args = json!({ "device": job, "force": true });
                let _ = self.qmp(p, "block-job-cancel", Some(args)).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.mirror_jobs(p).await.is_ok_and(|j| !j.is_empty()) && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
        self.drop_targets(p).await;
    }

    /// The source's view of how far it has got (no lock: the migration
    /// holds it).
    pub(super) async fn live_migration_progress_of(
        &self,
        id: &str,
    ) -> Result<LiveMigrationProgress> {
        let p = self.paths(id)?;
        let mut out = LiveMigrationProgress {
            phase: LiveMigrationPhase::None,
            ..Default::default()
        };
        let Observed::Live { status, .. } = self.observe_existing(&p).await? else {
            return Ok(out);
        };
        for j in self.mirror_jobs(&p).await? {
            let len = j["len"].as_u64().unwrap_or(0);
            let done = j["offset"].as_u64().unwrap_or(0).min(len);
            out.disk_total += len;
            out.disk_processed += done;
            out.disk_remaining += len - done;
            out.phase = LiveMigrationPhase::CopyingDisks;
        }
        let m = self.qmp_do(&p, "query-migrate", None).await?;
        let ram = &m["ram"];
        out.memory_total = ram["total"].as_u64().unwrap_or(0);
        out.memory_processed = ram["transferred"].as_u64().unwrap_or(0);
        out.memory_remaining = ram["remaining"].as_u64().unwrap_or(0);
        out.phase = match m["status"].as_str().unwrap_or("") {
            "completed" => LiveMigrationPhase::Completed,
            "setup" | "active" | "pre-switchover" | "device" => LiveMigrationPhase::CopyingMemory,
            _ if status == "postmigrate" => LiveMigrationPhase::Completed,
            _ => out.phase,
        };
        Ok(out)
    }

    /// Pause the migrating guest (no lock: the migration holds it).
    pub(super) async fn live_migration_force_complete_of(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        guest::write_atomic(&forced_marker(&p), b"paused").await?;
        self.qmp_do(&p, "stop", None).await.map(|_| ())
    }

    /// Cancel the copy under way (no lock: the migration holds it); the
    /// migration then fails and resumes the guest.
    pub(super) async fn live_migration_abort_of(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        if !exists(&p.record()).await {
            return Ok(());
        }
        guest::write_atomic(&forced_marker(&p), b"abort").await?;
        self.cancel_copies(&p).await;
        Ok(())
    }

    /// The source's rollback: copies cancelled, the guest running again
    /// (paused when asked), also from `postmigrate`.
    pub(super) async fn rollback_live_migration_guest(&self, id: &str, paused: bool) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let Observed::Live { status, .. } = self.observe_existing(&p).await? else {
            guest::remove_file(&forced_marker(&p)).await?;
            return Ok(());
        };
        self.cancel_copies(&p).await;
        match status.as_str() {
            "running" if paused => self.qmp_do(&p, "stop", None).await.map(|_| ())?,
            "running" => {}
            _ if paused => {}
            _ => {
                self.qmp_do(&p, "cont", None).await?;
            }
        }
        guest::remove_file(&forced_marker(&p)).await
    }

    /// The destination's commit: the stream complete, the disks no longer
    /// served, the record of the wait gone, the guest let run.
    pub(super) async fn finish_live_migration_guest(&self, id: &str, paused: bool) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let Observed::Live { pid, .. } = self.observe_existing(&p).await? else {
            return Err(failed(id, "no QEMU runs it on the destination"));
        };
        if exists(&incoming_record(&p)).await {
            let waited = self
                .wait_for(&p, pid, self.config.launch_timeout, |s| s != "inmigrate")
                .await;
            let m = self.qmp_do(&p, "query-migrate", None).await?;
            if !matches!(waited, super::control::Waited::Reached) || m["status"] != "completed" {
                return Err(failed(
                    id,
                    format!("the destination has not received it ({m})"),
                ));
            }
            if let Err(e) = self.qmp(&p, "nbd-server-stop", None).await {
                tracing::debug!("nbd-server-stop on instance {id}: {e}");
            }
            guest::remove_file(&incoming_record(&p)).await?;
        }
        let status = self.status(&p).await.map_err(|e| failed(id, e))?;
        if status != "running" && !paused {
            self.qmp_do(&p, "cont", None).await?;
        }
        Ok(())
    }

    /// The destination's rollback: only a guest still waiting goes.
    pub(super) async fn rollback_live_migration_at_destination_guest(
        &self,
        id: &str,
    ) -> Result<()> {
        let p = self.paths(id)?;
        {
            let lock = self.lock(id);
            let _guard = lock.lock().await;
            if !exists(&p.record()).await && !exists(&p.dir).await {
                return Ok(());
            }
            if exists(&p.record()).await && !exists(&incoming_record(&p)).await {
                return Err(DriverError::InvalidState(format!(
                    "Instance {id} runs on this host: its live migration is not rolled back here."
                )));
            }
        }
        crate::Driver::destroy(self, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(tcp_uri("10.0.0.2", 49152), "tcp:10.0.0.2:49152");
        assert_eq!(tcp_uri("fd00::2", 49152), "tcp:[fd00::2]:49152");
    }

    #[test]
    fn local_disks_and_how_they_are_copied() {
        let mut r = super::super::guest::GuestRecord {
            spec: InstanceSpec {
                id: "x".into(),
                ephemeral_gb: 1,
                ..Default::default()
            },
            base: Some("/cache/base".into()),
            base_format: DiskFormat::Raw,
            config_drive: true,
            rescue: None,
        };
        assert_eq!(
            local_drives(&r),
            [
                ("drive-virtio-disk0".to_owned(), true),
                ("drive-virtio-disk1".to_owned(), false)
            ]
        );
        r.base = None;
        r.spec.ephemeral_gb = 0;
        assert!(local_drives(&r).is_empty());
    }
}
