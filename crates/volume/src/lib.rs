//! Cinder v3-compatible block storage service: volumes, volume types,
//! quotas, limits and availability zones, with a file backend.

pub mod api;
pub mod attach;
pub mod audit;
pub mod backend;
pub mod backups;
pub mod encryption;
pub mod export;
pub mod groups;
pub mod hosts;
pub mod image_client;
pub mod images;
pub mod io_limits;
pub mod messages;
pub mod operation;
pub mod operations;
pub mod policy;
pub mod qos;
pub mod quota;
pub mod reimage;
pub mod scheduler;
pub mod service;
pub mod snapshots;
pub mod sources;
pub mod store;
pub mod transfers;
pub mod volumes;

pub use api::openapi_document;
pub use service::VolumeService;

use ferrostack_bus::SharedBus;
use ferrostack_core::config::Config;
use ferrostack_db::Db;
use std::sync::Arc;

/// Connect to the volume database, apply migrations, open the configured
/// backend and finish the operations a previous run left unfinished.
pub async fn open(config: &Config, bus: SharedBus) -> Result<Arc<VolumeService>, String> {
    check_config(config)?;
    let url = config.database_url("volume", &config.volume.database_url);
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate(store::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    let backend = backend::FileBackend::new(config.volumes_dir(), &config.volume.volume_format)
        .map_err(|e| e.to_string())?;
    let svc = VolumeService::new(db, config.clone(), bus, Arc::new(backend))
        .await
        .map_err(|e| e.to_string())?;
    // Exports first: an extend of an attached volume resumed below grows
    // the data through its (revived) storage daemon.
    attach::reconcile(&svc).await.map_err(|e| e.to_string())?;
    operation::resume_all(&svc)
        .await
        .map_err(|e| e.to_string())?;
    attach::spawn_heartbeat(&svc);
    audit::spawn(&svc);
    Ok(svc)
}

/// Refuse, at start, `[volume]` values the service would otherwise trip
/// on later: quota defaults below -1 (-1 is unlimited) and a relative
/// `backup_dir` (backups would land wherever the process was started).
pub fn check_config(config: &Config) -> Result<(), String> {
    let v = &config.volume;
    for (key, value) in [
        ("quota_volumes", v.quota_volumes),
        ("quota_gigabytes", v.quota_gigabytes),
        ("quota_snapshots", v.quota_snapshots),
        ("quota_backups", v.quota_backups),
        ("quota_backup_gigabytes", v.quota_backup_gigabytes),
        ("per_volume_size_limit", v.per_volume_size_limit),
    ] {
        if value < -1 {
            return Err(format!(
                "[volume] {key} = {value}: must be -1 (unlimited) or more"
            ));
        }
    }
    if !v.backup_dir.is_empty() && !std::path::Path::new(&v.backup_dir).is_absolute() {
        return Err(format!(
            "[volume] backup_dir = {:?}: must be an absolute path",
            v.backup_dir
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn volume_config_is_checked_at_start() {
        let mut c = ferrostack_core::config::Config::default();
        assert!(super::check_config(&c).is_ok());
        c.volume.quota_backups = -2;
        assert!(super::check_config(&c)
            .unwrap_err()
            .contains("quota_backups"));
        c.volume.quota_backups = -1;
        c.volume.backup_dir = "relative/dir".into();
        assert!(super::check_config(&c).unwrap_err().contains("backup_dir"));
        c.volume.backup_dir = "/srv/backups".into();
        assert!(super::check_config(&c).is_ok());
    }
}
