//! Cinder's quota resources: the project-wide ones, the per-type ones
//! (`volumes_<type>`, `gigabytes_<type>`, `snapshots_<type>`, unlimited by
//! default) and `per_volume_gigabytes`; checked inside the project's quota
//! lock with the records that count against them.

use crate::service::VolumeService;
use crate::store;
use ferrostack_core::{Error, Result};
use ferrostack_db::sqlx::AnyConnection;
use std::collections::HashMap;

/// The project-wide resources, in the order views list them.
pub const RESOURCES: &[&str] = &[
    "volumes",
    "gigabytes",
    "snapshots",
    "backups",
    "backup_gigabytes",
    "groups",
    "per_volume_gigabytes",
];

/// The quota class every project falls back to (Cinder's
/// `default_quota_class`).
pub const DEFAULT_CLASS: &str = "default";

/// The resources every volume type adds (`<kind>_<type name>`).
pub const PER_TYPE: &[&str] = &["volumes", "gigabytes", "snapshots"];

impl VolumeService {
    /// The configured default of a resource (per-type ones: unlimited).
    pub fn default_limit(&self, resource: &str) -> i64 {
        let q = &self.config.volume;
        match resource {
            "volumes" => q.quota_volumes,
            "gigabytes" => q.quota_gigabytes,
            "snapshots" => q.quota_snapshots,
            "backups" => q.quota_backups,
            "backup_gigabytes" => q.quota_backup_gigabytes,
            "per_volume_gigabytes" => q.per_volume_size_limit,
            // Cinder's `quota_groups`.
            "groups" => 10,
            _ => -1,
        }
    }

    /// The limits of a project: its own where set, else the `default`
    /// quota class's where an admin set one, else the configured default.
    fn limit_of(
        &self,
        own: &HashMap<String, i64>,
        class: &HashMap<String, i64>,
        resource: &str,
    ) -> i64 {
        own.get(resource)
            .or_else(|| class.get(resource))
            .copied()
            .unwrap_or_else(|| self.default_limit(resource))
    }

    /// Every resource name: the project-wide ones, then each type's.
    pub async fn quota_resources(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = RESOURCES.iter().map(|r| r.to_string()).collect();
        for t in store::types::list(&self.db).await? {
            names.extend(PER_TYPE.iter().map(|k| format!("{k}_{}", t.name)));
        }
        Ok(names)
    }

    /// A project's limit of every resource (its own where set).
    pub async fn project_limits(&self, project_id: &str) -> Result<Vec<(String, i64)>> {
        let overrides = store::quotas::overrides(&self.db, project_id).await?;
        self.with_overrides(&overrides, DEFAULT_CLASS).await
    }

    /// The defaults of every resource (the `default` class's).
    pub async fn default_limits(&self) -> Result<Vec<(String, i64)>> {
        self.with_overrides(&HashMap::new(), DEFAULT_CLASS).await
    }

    /// The limits of quota class `class` (unset ones: the defaults).
    pub async fn class_limits(&self, class: &str) -> Result<Vec<(String, i64)>> {
        let own = store::quota_classes::limits(&self.db, class).await?;
        self.with_overrides(&own, DEFAULT_CLASS).await
    }

    async fn with_overrides(
        &self,
        o: &HashMap<String, i64>,
        class: &str,
    ) -> Result<Vec<(String, i64)>> {
        let class = store::quota_classes::limits(&self.db, class).await?;
        Ok(self
            .quota_resources()
            .await?
            .into_iter()
            .map(|r| {
                let l = self.limit_of(o, &class, &r);
                (r, l)
            })
            .collect())
    }

    /// Refuse (413, in Cinder's words) when adding `deltas` to what
    /// `project_id` uses would pass a limit. Called inside the project's
    /// quota lock, on its transaction.
    pub async fn check_quotas_on(
        &self,
        conn: &mut AnyConnection,
        project_id: &str,
        deltas: &[(String, i64)],
    ) -> Result<()> {
        let overrides = store::quotas::overrides_on(&self.db, conn, project_id).await?;
        let class = store::quota_classes::limits_on(&self.db, conn, DEFAULT_CLASS).await?;
        let used = store::usage::project_on(&self.db, conn, project_id).await?;
        for (resource, asked) in deltas {
            if *asked <= 0 {
                continue;
            }
            let limit = self.limit_of(&overrides, &class, resource);
            let have = used.get(resource).copied().unwrap_or(0);
            if limit >= 0 && have + asked > limit {
                return Err(over_quota(resource, limit, have, *asked));
            }
        }
        Ok(())
    }

    /// `per_volume_gigabytes` of the project: a volume above it is refused.
    pub async fn check_volume_size(&self, project_id: &str, size: i64) -> Result<()> {
        let overrides = store::quotas::overrides(&self.db, project_id).await?;
        let class = store::quota_classes::limits(&self.db, DEFAULT_CLASS).await?;
        let limit = self.limit_of(&overrides, &class, "per_volume_gigabytes");
        if limit >= 0 && size > limit {
            return Err(Error::PayloadTooLarge(format!(
                "VolumeSizeExceedsLimit: Requested volume size {size}G is larger than maximum allowed limit {limit}G."
            )));
        }
        Ok(())
    }
}

/// The quota deltas of a volume of `size` GiB of type `type_name`.
pub fn volume_deltas(type_name: &str, size: i64) -> Vec<(String, i64)> {
    vec![
        ("volumes".into(), 1),
        ("gigabytes".into(), size),
        (format!("volumes_{type_name}"), 1),
        (format!("gigabytes_{type_name}"), size),
    ]
}

/// The quota deltas of a snapshot of `size` GiB of a volume of `type_name`.
pub fn snapshot_deltas(type_name: &str, size: i64) -> Vec<(String, i64)> {
    vec![
        ("snapshots".into(), 1),
        ("gigabytes".into(), size),
        (format!("snapshots_{type_name}"), 1),
        (format!("gigabytes_{type_name}"), size),
    ]
}

/// Cinder's over-quota exceptions, by resource.
fn over_quota(resource: &str, limit: i64, used: i64, asked: i64) -> Error {
    let kind = resource.split('_').next().unwrap_or(resource);
    Error::PayloadTooLarge(match (resource, kind) {
        ("backup_gigabytes", _) => format!(
            "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup \
             gigabytes quota. Requested {asked}G, quota is {limit}G and {used}G has been consumed."
        ),
        (_, "gigabytes") => format!(
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed \
             {resource} quota. Requested {asked}G, quota is {limit}G and {used}G has been consumed."
        ),
        (_, "snapshots") => {
            format!("SnapshotLimitExceeded: Maximum number of snapshots allowed ({limit}) exceeded")
        }
        (_, "backups") => {
            format!("BackupLimitExceeded: Maximum number of backups allowed ({limit}) exceeded")
        }
        _ => format!(
            "VolumeLimitExceeded: Maximum number of volumes allowed ({limit}) exceeded for quota \
             '{resource}'."
        ),
    })
}
