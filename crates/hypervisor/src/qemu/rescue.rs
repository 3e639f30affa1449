//! Rescue: the guest booted from a throwaway disk made on a rescue image,
//! as Nova's libvirt driver does it. A legacy rescue has the rescue disk
//! first and the guest's own root disk second; a stable device rescue
//! (the image's `hw_rescue_device` / `hw_rescue_bus`) keeps every disk of
//! the guest, volumes too, where it is and adds the rescue disk last on
//! that device and bus — so a guest booted from a volume can be rescued.
//! The record says the guest is rescued, so every later launch of it — a
//! reboot, a start, a new agent finding it after a restart — boots the
//! rescue disk again, until `unrescue` takes it away.

use super::control::{display_name, is_off_status, Observed};
use super::disk;
use super::guest::{self, exists, live_pid, GuestPaths, GuestRecord};
use super::rescue_disk::check_placement;
use super::QemuDriver;
use crate::{DiskFormat, DriverError, RescueImage, Result};

impl QemuDriver {
    pub(super) async fn rescue_guest(&self, id: &str, image: &RescueImage) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let record = self.load_record(&p).await?;
        if record.rescue.is_some() && exists(&p.rescue_disk()).await {
            // Rescued already (a repeated call): see that it runs.
            return self.ensure_running(&p, &record).await;
        }
        if image.is_stable() {
            check_placement(id, image)?;
        } else if record.base.is_none() {
            return Err(DriverError::NotSupported(format!(
                "Instance {id} boots from a volume: only a stable device rescue \
                 (hw_rescue_device, hw_rescue_bus) can rescue it."
            )));
        }
        if image.format == DiskFormat::Iso && !image.is_stable() {
            return Err(DriverError::NotSupported(format!(
                "Instance {id} cannot be rescued with an ISO image."
            )));
        }
        if exists(&p.memory_state()).await {
            return Err(DriverError::InvalidState(format!(
                "Cannot rescue instance {id}: it is suspended."
            )));
        }
        let was_on = self.is_on(&p).await?;
        // A clean shutdown first, as Nova's compute manager does.
        self.power_off_locked(&p).await?;
        if let Err(e) = self.boot_rescue_disk(&p, &record, image).await {
            tracing::warn!("rescuing {} failed: {e}", display_name(&record.spec));
            if let Err(back) = self.back_to_own_disk(&p, was_on).await {
                tracing::warn!(
                    "{} could not be returned to its own disk: {back}",
                    display_name(&record.spec)
                );
            }
            return Err(e);
        }
        Ok(())
    }

    pub(super) async fn unrescue_guest(&self, id: &str) -> Result<()> {
        let p = self.paths(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let record = self.load_record(&p).await?;
        if record.rescue.is_none() {
            // Not rescued, or an unrescue stopped after saving the record.
            guest::remove_file(&p.rescue_disk()).await?;
            return self.ensure_running(&p, &record).await;
        }
        self.back_to_own_disk(&p, true).await
    }

    /// Make `disk.rescue` on the image, record the guest as rescued and
    /// start it from that disk. The guest is off.
    async fn boot_rescue_disk(
        &self,
        p: &GuestPaths,
        record: &GuestRecord,
        image: &RescueImage,
    ) -> Result<()> {
        let name = display_name(&record.spec);
        let path = tokio::fs::canonicalize(&image.path).await.map_err(|e| {
            DriverError::InvalidImage(format!(
                "The rescue image of {name} is not on this host ({}: {e})",
                image.path.display()
            ))
        })?;
        let format = image.format.qemu_name();
        let info = disk::info(&self.config.qemu_img, &path, Some(format))
            .await
            .map_err(|e| {
                DriverError::InvalidImage(format!("The rescue image of {name} cannot be used: {e}"))
            })?;
        guest::remove_file(&p.rescue_disk()).await?;
        disk::create_overlay(
            &self.config.qemu_img,
            &path,
            format,
            &p.rescue_disk(),
            info.virtual_size,
        )
        .await
        .map_err(|e| {
            DriverError::Failed(format!("Could not create the rescue disk of {name}: {e}"))
        })?;
        let rescued = GuestRecord {
            rescue: Some(RescueImage {
                path,
                ..image.clone()
            }),
            ..record.clone()
        };
        rescued.save(&p.record()).await?;
        self.launch(p, &rescued, false).await.map(|_| ())
    }

    /// Stop the guest, record it as not rescued, remove its rescue disk,
    /// and start it from its own disk when `start`.
    async fn back_to_own_disk(&self, p: &GuestPaths, start: bool) -> Result<()> {
        if let Some(pid) = live_pid(p).await {
            self.stop_process(p, pid).await?;
        }
        let mut record = self.load_record(p).await?;
        if record.rescue.take().is_some() {
            record.save(&p.record()).await?;
        }
        guest::remove_file(&p.rescue_disk()).await?;
        if start {
            self.launch(p, &record, false).await?;
        }
        Ok(())
    }

    /// Start the guest from its record unless it runs.
    async fn ensure_running(&self, p: &GuestPaths, record: &GuestRecord) -> Result<()> {
        match self.observe_existing(p).await? {
            Observed::Live { pid, status } if is_off_status(&status) => {
                self.stop_process(p, pid).await?;
                self.launch(p, record, false).await.map(|_| ())
            }
            Observed::Live { .. } => Ok(()),
            Observed::Off { .. } | Observed::Missing => {
                self.launch(p, record, false).await.map(|_| ())
            }
        }
    }
}
