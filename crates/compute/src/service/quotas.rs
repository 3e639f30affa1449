//! Per-project quotas: configured defaults, per-project overrides, usage
//! counted from live instances and key pairs.

use super::ComputeService;
use crate::store;
use ferrostack_core::{Error, Result};
use std::collections::BTreeMap;

/// The quota resources of the v2.1 API, in the order Nova lists them.
pub const RESOURCES: &[&str] = &[
    "instances",
    "cores",
    "ram",
    "floating_ips",
    "fixed_ips",
    "metadata_items",
    "key_pairs",
    "security_groups",
    "security_group_rules",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "server_groups",
    "server_group_members",
];

/// The quota rows of the `default` quota class (os-quota-class-sets).
pub const DEFAULT_CLASS: &str = "__quota_class_default__";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
}

impl ComputeService {
    pub fn default_quotas(&self) -> BTreeMap<String, i64> {
        let c = &self.config.compute;
        let n = &self.config.network;
        [
            ("instances", c.quota_instances),
            ("cores", c.quota_cores),
            ("ram", c.quota_ram),
            ("floating_ips", n.quota_floatingip),
            ("fixed_ips", -1),
            ("metadata_items", c.quota_metadata_items),
            ("key_pairs", c.quota_key_pairs),
            ("security_groups", n.quota_security_group),
            ("security_group_rules", n.quota_security_group_rule),
            ("injected_files", c.quota_injected_files),
            (
                "injected_file_content_bytes",
                c.quota_injected_file_content_bytes,
            ),
            (
                "injected_file_path_bytes",
                c.quota_injected_file_path_length,
            ),
            ("server_groups", c.quota_server_groups),
            ("server_group_members", c.quota_server_group_members),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The defaults in force: configuration, then the `default` quota class.
    pub async fn class_quotas(&self) -> Result<BTreeMap<String, i64>> {
        let mut q = self.default_quotas();
        for (k, v) in store::catalog::project_quotas(&self.db, DEFAULT_CLASS).await? {
            q.insert(k, v);
        }
        Ok(q)
    }

    /// The limits in force for a project.
    pub async fn quotas(&self, project: &str) -> Result<BTreeMap<String, i64>> {
        let mut q = self.class_quotas().await?;
        for (k, v) in store::catalog::project_quotas(&self.db, project).await? {
            q.insert(k, v);
        }
        Ok(q)
    }

    pub async fn usage(&self, project: &str) -> Result<Usage> {
        let mut u = Usage::default();
        for i in store::instances::list(&self.db, Some(project), false).await? {
            u.instances += 1;
            u.cores += i.flavor.vcpus;
            u.ram += i.flavor.ram;
        }
        Ok(u)
    }

    /// Refuse (403, Nova's wording) when `count` more instances of this
    /// size would exceed the project's quota.
    pub async fn check_instance_quota(
        &self,
        project: &str,
        count: i64,
        vcpus: i64,
        ram: i64,
    ) -> Result<()> {
        let q = self.quotas(project).await?;
        let u = self.usage(project).await?;
        for (res, used, each) in [
            ("instances", u.instances, 1),
            ("cores", u.cores, vcpus),
            ("ram", u.ram, ram),
        ] {
            let limit = q[res];
            if limit >= 0 && used + count * each > limit {
                return Err(Error::Forbidden(format!(
                    "Quota exceeded for {res}: Requested {}, but already used {used} of {limit} {res}",
                    count * each
                )));
            }
        }
        Ok(())
    }

    /// Set limits; lowering one below what is in use needs `force`.
    pub async fn update_quotas(
        &self,
        project: &str,
        changes: &BTreeMap<String, i64>,
        force: bool,
    ) -> Result<()> {
        let u = self.usage(project).await?;
        let keypairs = 0;
        for (k, v) in changes {
            if !RESOURCES.contains(&k.as_str()) {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute quota_set. Value: {k}. Additional properties are not allowed"
                )));
            }
            if *v < -1 {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {k}. Value: {v}. {v} is less than the minimum of -1"
                )));
            }
            let used = match k.as_str() {
                "instances" => u.instances,
                "cores" => u.cores,
                "ram" => u.ram,
                "key_pairs" => keypairs,
                _ => 0,
            };
            if !force && *v >= 0 && *v < used {
                return Err(Error::BadRequest(format!(
                    "Quota limit {v} for {k} must be greater than or equal to already used and reserved {used}."
                )));
            }
        }
        for (k, v) in changes {
            store::catalog::set_quota(&self.db, project, k, *v).await?;
        }
        Ok(())
    }
}
