//! Making a guest: validation, the qcow2 overlay on the base image (none
//! when it boots from a volume), the config drive, the record with its
//! volumes, the first launch — and undoing all of it when any step fails.

use super::control::{display_name, Observed};
use super::disk::{self, GIB};
use super::guest::{self, exists, live_pid, GuestPaths, GuestRecord};
use super::tap;
use super::volume_nodes::{nbd_node, VolumeNames};
use super::QemuDriver;
use crate::{DiskFormat, GuestDisks, InstanceSpec};
use crate::{DriverError, Result};
use std::path::{Path, PathBuf};

pub(super) fn validate_spec(spec: &InstanceSpec) -> Result<()> {
    if spec.vcpus == 0 || spec.memory_mb == 0 {
        return Err(DriverError::InvalidRequest(format!(
            "Instance {} needs at least one vCPU and some memory (flavor: {} vCPUs, {} MB).",
            spec.id, spec.vcpus, spec.memory_mb
        )));
    }
    for vif in &spec.vifs {
        tap::host_mac(&vif.mac_address)?;
        if vif.port_id.is_empty() {
            return Err(DriverError::InvalidRequest(
                "A network interface has no port id.".into(),
            ));
        }
    }
    for v in &spec.volumes {
        let n = VolumeNames::new(&v.volume_id)?;
        nbd_node(&n.nbd[0], &v.connection)?;
    }
    if spec
        .volumes
        .iter()
        .filter(|v| v.boot_index == Some(0))
        .count()
        > 1
    {
        return Err(DriverError::InvalidRequest(format!(
            "Instance {} has more than one boot volume.",
            spec.id
        )));
    }
    Ok(())
}

impl QemuDriver {
    /// A new guest: its disk, config drive, record, taps and QEMU; on
    /// failure, none of them. A guest that exists already is left be
    /// (started if it was made but never launched).
    pub(super) async fn spawn_guest(&self, spec: &InstanceSpec, disks: &GuestDisks) -> Result<()> {
        let p = self.paths(&spec.id)?;
        let lock = self.lock(&spec.id);
        let _guard = lock.lock().await;
        if exists(&p.record()).await {
            // Made already: running (a repeated call) or made but never
            // started (a spawn interrupted before its launch).
            return match self.observe(&p).await? {
                Observed::Off { suspended: false } => {
                    let record = GuestRecord::load(&p.record()).await?;
                    self.launch(&p, &record, false).await.map(|_| ())
                }
                _ => Ok(()),
            };
        }
        validate_spec(spec)?;
        let image = match (&disks.base, spec.boot_volume()) {
            (_, Some(_)) => None,
            (Some(base), None) => Some(self.root_disk_size(spec, base, disks).await?),
            (None, None) => {
                return Err(DriverError::InvalidRequest(format!(
                    "Instance {} has neither an image nor a boot volume.",
                    spec.id
                )))
            }
        };
        if exists(&p.dir).await {
            // Left by a spawn that stopped half way.
            self.discard(&p, spec, disks).await;
        }
        tokio::fs::create_dir_all(&p.dir)
            .await
            .map_err(|e| DriverError::failed(&format!("creating {}", p.dir.display()), e))?;
        if let Err(e) = self.build(&p, spec, disks, image).await {
            tracing::warn!("spawning {} failed: {e}", display_name(spec));
            self.discard(&p, spec, disks).await;
            return Err(e);
        }
        Ok(())
    }

    /// The base image (absolute) and the size of the root disk on it.
    pub(super) async fn root_disk_size(
        &self,
        spec: &InstanceSpec,
        base: &Path,
        disks: &GuestDisks,
    ) -> Result<(PathBuf, u64)> {
        let name = display_name(spec);
        let base = tokio::fs::canonicalize(base).await.map_err(|e| {
            DriverError::InvalidImage(format!(
                "The image of {name} is not on this host ({}: {e})",
                base.display()
            ))
        })?;
        let info = disk::info(
            &self.config.qemu_img,
            &base,
            Some(disks.base_format.qemu_name()),
        )
        .await
        .map_err(|e| {
            DriverError::InvalidImage(format!("The image of {name} cannot be used: {e}"))
        })?;
        let flavor = spec.root_gb * GIB;
        let size = if disks.base_format == DiskFormat::Iso {
            flavor.max(GIB)
        } else {
            if spec.root_gb > 0 && info.virtual_size > flavor {
                return Err(DriverError::InvalidRequest(format!(
                    "Flavor's disk is too small for requested image. Flavor disk is {flavor} \
                     bytes, image is {} bytes.",
                    info.virtual_size
                )));
            }
            flavor.max(info.virtual_size)
        };
        Ok((base, size))
    }

    /// Build a new guest's directory and start it; `image` is the base
    /// image and root disk size (`None`: it boots from a volume).
    pub(super) async fn build(
        &self,
        p: &GuestPaths,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        image: Option<(PathBuf, u64)>,
    ) -> Result<()> {
        let name = display_name(spec);
        if let Some((base, size)) = &image {
            let made = if disks.base_format == DiskFormat::Iso {
                disk::create_blank(&self.config.qemu_img, &p.disk(), *size).await
            } else {
                disk::create_overlay(
                    &self.config.qemu_img,
                    base,
                    disks.base_format.qemu_name(),
                    &p.disk(),
                    *size,
                )
                .await
            };
            made.map_err(|e| {
                DriverError::Failed(format!("Could not create the disk of {name}: {e}"))
            })?;
        }
        let record = self
            .prepare_files(p, spec, disks, image.map(|(base, _)| base))
            .await?;
        self.launch(p, &record, false).await.map(|_| ())
    }

    /// Everything of a new guest but its root disk and its launch: the
    /// scratch disks, the config drive moved in, and its record (`base`:
    /// the base image its `disk` is on, `None` when it boots from a volume).
    pub(super) async fn prepare_files(
        &self,
        p: &GuestPaths,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        base: Option<PathBuf>,
    ) -> Result<GuestRecord> {
        let name = display_name(spec);
        let scratch = [
            (
                spec.ephemeral_gb * GIB,
                p.ephemeral(),
                disk::Scratch::Ephemeral,
            ),
            (spec.swap_mb << 20, p.swap(), disk::Scratch::Swap),
        ];
        for (bytes, file, kind) in scratch {
            if bytes > 0 {
                disk::create_scratch(&file, bytes, kind)
                    .await
                    .map_err(|e| {
                        DriverError::Failed(format!(
                            "Could not create the {kind:?} disk of {name}: {e}"
                        ))
                    })?;
            }
        }
        if let Some(cd) = &disks.config_drive {
            guest::move_file(cd, &p.config_drive()).await.map_err(|e| {
                DriverError::Failed(format!(
                    "Could not move the config drive {} of {name}: {e}",
                    cd.display()
                ))
            })?;
        }
        let record = GuestRecord {
            spec: spec.clone(),
            base,
            base_format: disks.base_format,
            config_drive: disks.config_drive.is_some(),
            rescue: None,
        };
        record.save(&p.record()).await?;
        Ok(record)
    }

    /// Undo a spawn that failed: its QEMU, taps and directory go; the
    /// config drive goes back where it came from.
    pub(super) async fn discard(&self, p: &GuestPaths, spec: &InstanceSpec, disks: &GuestDisks) {
        if let Some(pid) = live_pid(p).await {
            let _ = self.stop_process(p, pid).await;
        }
        for vif in &spec.vifs {
            if let Err(e) = tap::delete(self.ip.as_deref(), &vif.tap_name()).await {
                tracing::warn!("{e}");
            }
        }
        if let Some(cd) = &disks.config_drive {
            if !exists(cd).await && exists(&p.config_drive()).await {
                let _ = guest::move_file(&p.config_drive(), cd).await;
            }
        }
        if let Err(e) = tokio::fs::remove_dir_all(&p.dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("could not remove {}: {e}", p.dir.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_validation() {
        let mut s = InstanceSpec {
            id: "x".into(),
            vcpus: 1,
            memory_mb: 64,
            ..Default::default()
        };
        assert!(validate_spec(&s).is_ok());
        s.vifs.push(crate::VifSpec {
            port_id: "p".into(),
            mac_address: "nope".into(),
            ..Default::default()
        });
        assert!(matches!(
            validate_spec(&s),
            Err(DriverError::InvalidRequest(_))
        ));
        s.vifs.clear();
        s.vcpus = 0;
        assert!(matches!(
            validate_spec(&s),
            Err(DriverError::InvalidRequest(_))
        ));
    }
}
