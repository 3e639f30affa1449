//! What the agent does for each request: everything goes through the
//! driver; images come from the cache; config drives are written here.

use crate::image_cache::{CacheError, CachedImage};
use crate::protocol::{AgentError, AgentReply, AgentRequest, AgentResult};
use crate::ComputeAgent;
use ferrostack_hypervisor::{
    DiskFormat, DriverError, GuestDisks, InstanceSpec, NbdExport, RescueImage,
};
use ferrostack_metadata::InstanceMetadata;
use std::path::PathBuf;

/// How much of a console log one request reads at most (Nova's
/// `MAX_CONSOLE_BYTES`).
const MAX_CONSOLE_BYTES: usize = 100 * 1024;

impl From<CacheError> for AgentError {
    fn from(e: CacheError) -> Self {
        match e {
            CacheError::InvalidImage(m) => AgentError::Driver(DriverError::InvalidImage(m)),
            CacheError::Api(m) => AgentError::Image(m),
            CacheError::Host(m) => AgentError::Driver(DriverError::Failed(m)),
        }
    }
}

impl ComputeAgent {
    pub async fn handle(&self, request: AgentRequest) -> AgentResult {
        let method = request.method();
        let started = std::time::Instant::now();
        let result = self.run(request).await;
        match &result {
            Ok(_) => tracing::debug!(
                method,
                ms = started.elapsed().as_millis() as u64,
                "agent request done"
            ),
            Err(e) => tracing::warn!(method, error = %e, "agent request failed"),
        }
        result
    }

    async fn run(&self, request: AgentRequest) -> AgentResult {
        let d = &self.driver;
        let done =
            |r: Result<(), DriverError>| r.map(|_| AgentReply::Done).map_err(AgentError::from);
        match request {
            AgentRequest::CacheImage { image_id } => {
                self.prepare_image(&image_id).await?;
                Ok(AgentReply::Done)
            }
            AgentRequest::Spawn {
                instance,
                config_drive,
            } => self.spawn(&instance, config_drive.as_deref()).await,
            AgentRequest::Destroy { instance_id } => done(d.destroy(&instance_id).await),
            AgentRequest::Reboot { instance_id, kind } => done(d.reboot(&instance_id, kind).await),
            AgentRequest::PowerOff { instance_id } => done(d.power_off(&instance_id).await),
            AgentRequest::PowerOn { instance_id } => done(d.power_on(&instance_id).await),
            AgentRequest::Pause { instance_id } => done(d.pause(&instance_id).await),
            AgentRequest::Unpause { instance_id } => done(d.unpause(&instance_id).await),
            AgentRequest::Suspend { instance_id } => done(d.suspend(&instance_id).await),
            AgentRequest::Resume { instance_id } => done(d.resume(&instance_id).await),
            AgentRequest::InjectNmi { instance_id } => done(d.inject_nmi(&instance_id).await),
            AgentRequest::Rescue {
                instance_id,
                image_id,
                device,
                bus,
            } => {
                let image = self.prepare_image(&image_id).await?;
                let image = RescueImage {
                    path: image.path,
                    format: image.format,
                    device,
                    bus,
                };
                done(d.rescue(&instance_id, &image).await)
            }
            AgentRequest::Unrescue { instance_id } => done(d.unrescue(&instance_id).await),
            AgentRequest::Resize { instance } => done(d.resize(&instance).await),
            AgentRequest::ConfirmResize { instance_id } => {
                done(d.confirm_resize(&instance_id).await)
            }
            AgentRequest::RevertResize { instance } => done(d.revert_resize(&instance).await),
            AgentRequest::MigrateOut { instance_id } => Ok(AgentReply::Export(
                d.migrate_out(&instance_id, &self.settings.host_ip).await?,
            )),
            AgentRequest::EndMigrateOut { instance_id } => {
                done(d.end_migrate_out(&instance_id).await)
            }
            AgentRequest::MigrateIn {
                instance,
                config_drive,
                source,
                power_on,
            } => {
                self.migrate_in(
                    &instance,
                    config_drive.as_deref(),
                    source.as_ref(),
                    power_on,
                )
                .await
            }
            AgentRequest::ConfirmMigration { instance_id } => {
                done(d.confirm_migration(&instance_id).await)
            }
            AgentRequest::RevertMigration { instance, power_on } => {
                done(d.revert_migration(&instance, power_on).await)
            }
            AgentRequest::PrepareLiveMigration {
                instance,
                config_drive,
                copy_disks,
            } => {
                self.prepare_live_migration(&instance, config_drive.as_deref(), copy_disks)
                    .await
            }
            AgentRequest::LiveMigrate {
                instance_id,
                target,
            } => done(d.live_migrate(&instance_id, &target).await),
            AgentRequest::LiveMigrationProgress { instance_id } => Ok(
                AgentReply::LiveMigrationProgress(d.live_migration_progress(&instance_id).await?),
            ),
            AgentRequest::ForceCompleteLiveMigration { instance_id } => {
                done(d.live_migration_force_complete(&instance_id).await)
            }
            AgentRequest::AbortLiveMigration { instance_id } => {
                done(d.live_migration_abort(&instance_id).await)
            }
            AgentRequest::FinishLiveMigration {
                instance_id,
                paused,
            } => done(d.finish_live_migration(&instance_id, paused).await),
            AgentRequest::RollbackLiveMigrationAtDestination { instance_id } => {
                done(d.rollback_live_migration_at_destination(&instance_id).await)
            }
            AgentRequest::RollbackLiveMigration {
                instance_id,
                paused,
            } => done(d.rollback_live_migration(&instance_id, paused).await),
            AgentRequest::GetInfo { instance_id } => {
                Ok(AgentReply::PowerState(d.get_info(&instance_id).await?))
            }
            AgentRequest::ListInstances => Ok(AgentReply::Instances(d.list_instances().await?)),
            AgentRequest::ConsoleOutput {
                instance_id,
                length,
            } => {
                let text = d.console_output(&instance_id, MAX_CONSOLE_BYTES).await?;
                Ok(AgentReply::ConsoleOutput(last_lines(&text, length)))
            }
            AgentRequest::Snapshot {
                instance_id,
                image_id,
            } => self.snapshot(&instance_id, &image_id).await,
            AgentRequest::VncConsole { instance_id } => {
                Ok(AgentReply::Console(d.vnc_console(&instance_id).await?))
            }
            AgentRequest::AttachInterface { instance_id, vif } => {
                done(d.attach_interface(&instance_id, &vif).await)
            }
            AgentRequest::DetachInterface {
                instance_id,
                port_id,
            } => done(d.detach_interface(&instance_id, &port_id).await),
            AgentRequest::AttachVolume {
                instance_id,
                volume,
            } => done(d.attach_volume(&instance_id, &volume).await),
            AgentRequest::DetachVolume {
                instance_id,
                volume_id,
            } => done(d.detach_volume(&instance_id, &volume_id).await),
            AgentRequest::ExtendVolume {
                instance_id,
                volume_id,
                connection,
                new_size_bytes,
            } => done(
                d.extend_volume(&instance_id, &volume_id, &connection, new_size_bytes)
                    .await,
            ),
        }
    }

    fn staging_file(&self, what: &str, id: &str) -> Result<PathBuf, AgentError> {
        std::fs::create_dir_all(&self.settings.work_dir).map_err(|e| {
            AgentError::Driver(DriverError::failed("creating the staging directory", e))
        })?;
        Ok(self
            .settings
            .work_dir
            .join(format!("{id}.{what}-{}", uuid::Uuid::new_v4())))
    }

    /// The image in the cache; for a driver whose guests read no disks,
    /// only a check that the image exists and is active.
    async fn prepare_image(&self, image_id: &str) -> Result<CachedImage, AgentError> {
        if self.driver.uses_disks() {
            return Ok(self.cache.fetch(image_id).await?);
        }
        let record = self
            .images
            .get(image_id)
            .await
            .map_err(|e| AgentError::Image(e.to_string()))?
            .ok_or_else(|| AgentError::Image(format!("Image {image_id} could not be found.")))?;
        if record["status"] != "active" {
            return Err(AgentError::Driver(DriverError::InvalidImage(format!(
                "Image {image_id} is not active."
            ))));
        }
        Ok(CachedImage {
            path: PathBuf::new(),
            format: DiskFormat::Raw,
        })
    }

    async fn spawn(&self, spec: &InstanceSpec, metadata: Option<&InstanceMetadata>) -> AgentResult {
        let disks = self.guest_disks(spec, metadata).await?;
        let result = self.driver.spawn(spec, &disks).await;
        Self::drop_staged(&disks).await;
        result?;
        Ok(AgentReply::Done)
    }

    /// A guest moved here by a cold migration: its image cached and its
    /// config drive made as for a spawn, its disk pulled from `source`.
    async fn migrate_in(
        &self,
        spec: &InstanceSpec,
        metadata: Option<&InstanceMetadata>,
        source: Option<&NbdExport>,
        power_on: bool,
    ) -> AgentResult {
        let disks = self.guest_disks(spec, metadata).await?;
        let result = self.driver.migrate_in(spec, &disks, source, power_on).await;
        Self::drop_staged(&disks).await;
        result?;
        Ok(AgentReply::Done)
    }

    /// A guest live-migrating here: its image cached and its config drive
    /// made as for a spawn, then made waiting for the source's copy.
    async fn prepare_live_migration(
        &self,
        spec: &InstanceSpec,
        metadata: Option<&InstanceMetadata>,
        copy_disks: bool,
    ) -> AgentResult {
        let disks = self.guest_disks(spec, metadata).await?;
        let result = self
            .driver
            .prepare_live_migration(spec, &disks, copy_disks, &self.settings.host_ip)
            .await;
        Self::drop_staged(&disks).await;
        Ok(AgentReply::LiveMigrationTarget(result?))
    }

    /// The disks a new guest is made from: the cached image (none for a
    /// guest booted from a volume) and a config drive when asked for.
    async fn guest_disks(
        &self,
        spec: &InstanceSpec,
        metadata: Option<&InstanceMetadata>,
    ) -> Result<GuestDisks, AgentError> {
        // A guest booted from a volume has no image disk: nothing to fetch
        // (its `image_id` may be empty).
        let image = match spec.boot_volume() {
            Some(_) => None,
            None => Some(self.prepare_image(&spec.image_id).await?),
        };
        let config_drive = match metadata {
            Some(md) => {
                let path = self.staging_file("config-drive", &spec.id)?;
                ferrostack_metadata::build_config_drive(md, &path)
                    .await
                    .map_err(|e| {
                        AgentError::Driver(DriverError::Failed(format!(
                            "The config drive could not be made: {e}"
                        )))
                    })?;
                Some(path)
            }
            None => None,
        };
        Ok(GuestDisks {
            base_format: image.as_ref().map_or(DiskFormat::Raw, |i| i.format),
            base: image.map(|i| i.path),
            config_drive,
        })
    }

    /// The driver moved the config drive into the guest's directory; a
    /// failed call did not.
    async fn drop_staged(disks: &GuestDisks) {
        if let Some(p) = &disks.config_drive {
            let _ = tokio::fs::remove_file(p).await;
        }
    }

    /// Snapshot the guest into a staging file, then stream it into the
    /// image record; the staging file goes in every case.
    async fn snapshot(&self, instance_id: &str, image_id: &str) -> AgentResult {
        let dest = self.staging_file("snapshot", instance_id)?;
        let result = async {
            self.driver.snapshot(instance_id, &dest).await?;
            self.images
                .upload_file(image_id, &dest)
                .await
                .map_err(|e| AgentError::Image(e.to_string()))?;
            Ok(AgentReply::Done)
        }
        .await;
        let _ = tokio::fs::remove_file(&dest).await;
        result
    }
}

/// The last `length` lines of a console log (all of it when `None`),
/// counted as Nova does: the text split at every newline, so a log that
/// ends in one has an empty last "line" (tempest's console-output test
/// asks for 3 and splits the answer into exactly 3).
pub fn last_lines(text: &str, length: Option<u32>) -> String {
    let Some(n) = length else {
        return text.to_owned();
    };
    if n == 0 {
        return String::new();
    }
    let parts: Vec<&str> = text.split('\n').collect();
    let start = parts.len().saturating_sub(n as usize);
    parts[start..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_lines_counts_from_the_end() {
        assert_eq!(super::last_lines("a\nb\nc\n", Some(2)), "c\n");
        assert_eq!(
            super::last_lines("a\nb\nc\n", Some(3)).split('\n').count(),
            3
        );
        assert_eq!(super::last_lines("a\nb\nc", Some(2)), "b\nc");
        assert_eq!(super::last_lines("a\nb\nc", None), "a\nb\nc");
        assert_eq!(super::last_lines("a\nb\nc\n", Some(0)), "");
        assert_eq!(super::last_lines("a\n", Some(10)), "a\n");
    }
}
