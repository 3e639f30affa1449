//! Resize on the same host (Nova's `allow_resize_to_same_host`): new
//! vCPUs and memory at the next launch, the root disk grown, and what a
//! revert needs kept until the resize is confirmed or reverted.

use super::disk::{self, GIB};
use super::guest::{self, exists, GuestRecord};
use super::spawn::validate_spec;
use super::QemuDriver;
use crate::InstanceSpec;
use crate::{DriverError, Result};
use serde_json::{json, Value};

impl QemuDriver {
    /// New vCPUs, memory and a grown disk; the old disk and record kept
    /// for a revert (once: a repeated call keeps the first backup).
    pub(super) async fn resize_guest(&self, spec: &InstanceSpec) -> Result<()> {
        let p = self.paths(&spec.id)?;
        let lock = self.lock(&spec.id);
        let _guard = lock.lock().await;
        validate_spec(spec)?;
        let mut record = self.load_record(&p).await?;
        if exists(&p.memory_state()).await {
            return Err(DriverError::InvalidState(format!(
                "Cannot resize instance {}: it is suspended.",
                spec.id
            )));
        }
        // A guest booted from a volume has no disk here to grow or keep.
        let has_disk = record.base.is_some();
        let current = if has_disk {
            disk::info(&self.config.qemu_img, &p.disk(), Some("qcow2"))
                .await
                .map_err(|e| {
                    DriverError::Failed(format!(
                        "Cannot read the disk of instance {}: {e}",
                        spec.id
                    ))
                })?
                .virtual_size
        } else {
            0
        };
        let wanted = spec.root_gb * GIB;
        if has_disk && spec.root_gb > 0 && wanted < current {
            return Err(DriverError::InvalidRequest(format!(
                "Unable to resize disk down: the new flavor's root disk is {} GB, \
                 the instance's disk is {current} bytes.",
                spec.root_gb
            )));
        }
        // Whether to start it again: as it was when the resize began.
        let was_running = match tokio::fs::read(p.resize_marker()).await {
            Ok(text) => serde_json::from_slice::<Value>(&text)
                .ok()
                .and_then(|v| v["was_running"].as_bool())
                .unwrap_or(true),
            Err(_) => {
                let on = self.is_on(&p).await?;
                guest::write_atomic(
                    &p.resize_marker(),
                    json!({ "was_running": on }).to_string().as_bytes(),
                )
                .await?;
                on
            }
        };
        self.power_off_locked(&p).await?;
        if has_disk && !exists(&p.disk_backup()).await {
            let part = p.dir.join("disk.resize-backup.part");
            tokio::fs::copy(p.disk(), &part)
                .await
                .map_err(|e| DriverError::failed("keeping the disk for a revert", e))?;
            tokio::fs::rename(&part, p.disk_backup())
                .await
                .map_err(|e| DriverError::failed("keeping the disk for a revert", e))?;
        }
        if !exists(&p.record_backup()).await {
            record.save(&p.record_backup()).await?;
        }
        if has_disk && wanted > current {
            disk::grow(&self.config.qemu_img, &p.disk(), wanted)
                .await
                .map_err(|e| {
                    DriverError::Failed(format!(
                        "Growing the disk of instance {} failed: {e}",
                        spec.id
                    ))
                })?;
        }
        // The volumes are those the guest has, whatever the caller's spec says.
        let volumes = std::mem::take(&mut record.spec.volumes);
        record.spec = spec.clone();
        record.spec.volumes = volumes;
        record.save(&p.record()).await?;
        if was_running {
            self.launch(&p, &record, false).await?;
        }
        Ok(())
    }

    pub(super) async fn confirm_resize_guest(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        for f in [p.disk_backup(), p.record_backup(), p.resize_marker()] {
            guest::remove_file(&f).await?;
        }
        Ok(())
    }

    /// Back to the old flavor and the disk from before the resize.
    pub(super) async fn revert_resize_guest(&self, spec: &InstanceSpec) -> Result<()> {
        let p = self.paths(&spec.id)?;
        let lock = self.lock(&spec.id);
        let _guard = lock.lock().await;
        let mut current = self.load_record(&p).await?;
        let current_volumes = std::mem::take(&mut current.spec.volumes);
        let was_running = self.is_on(&p).await?;
        self.power_off_locked(&p).await?;
        let before = if exists(&p.record_backup()).await {
            GuestRecord::load(&p.record_backup()).await?
        } else {
            current
        };
        if exists(&p.disk_backup()).await {
            tokio::fs::rename(p.disk_backup(), p.disk())
                .await
                .map_err(|e| DriverError::failed("restoring the disk from before the resize", e))?;
        }
        let mut record = GuestRecord {
            spec: spec.clone(),
            ..before
        };
        record.spec.volumes = current_volumes;
        record.save(&p.record()).await?;
        guest::remove_file(&p.record_backup()).await?;
        guest::remove_file(&p.resize_marker()).await?;
        if was_running {
            self.launch(&p, &record, false).await?;
        }
        Ok(())
    }
}
