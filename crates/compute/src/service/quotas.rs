//! Per-project quotas: configured defaults, per-project overrides, usage
//! counted from live instances and key pairs.

use super::ComputeService;
use crate::store::{self, instances::ProjectUsage};
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

impl From<ProjectUsage> for Usage {
    fn from(u: ProjectUsage) -> Usage {
        Usage {
            instances: u.instances,
            cores: u.vcpus,
            ram: u.memory_mb,
        }
    }
}

/// How many instances of `vcpus` and `ram` a boot of `min..=max` gets,
/// computed once from the headroom as Nova's `check_num_instances_quota`
/// does: all `max` when they fit, else as many as the tightest of
/// instances, cores and RAM leaves if that is at least `min`, else Nova's
/// `TooManyInstances` (403) naming the resources over quota.
pub fn allowed_instances(
    limits: &BTreeMap<String, i64>,
    used: Usage,
    vcpus: i64,
    ram: i64,
    min: i64,
    max: i64,
) -> Result<i64> {
    let limit = |res: &str| limits.get(res).copied().unwrap_or(-1);
    let resources = [
        ("cores", used.cores, vcpus),
        ("instances", used.instances, 1),
        ("ram", used.ram, ram),
    ];
    // Nova lists the resources over quota sorted by name.
    let overs: Vec<&str> = resources
        .iter()
        .filter(|(res, in_use, each)| {
            let l = limit(res);
            l >= 0 && in_use.saturating_add(max.saturating_mul(*each)) > l
        })
        .map(|(res, _, _)| *res)
        .collect();
    if overs.is_empty() {
        return Ok(max);
    }
    // An unlimited resource leaves as much room as the instance count does.
    let instance_room = match limit("instances") {
        l if l >= 0 => l - used.instances,
        _ => max,
    };
    let room = |res: &str, in_use: i64, each: i64| match limit(res) {
        l if l >= 0 => l - in_use,
        _ => instance_room.saturating_mul(each),
    };
    let mut allowed = instance_room;
    if vcpus > 0 {
        allowed = allowed.min(room("cores", used.cores, vcpus).div_euclid(vcpus));
    }
    if ram > 0 {
        allowed = allowed.min(room("ram", used.ram, ram).div_euclid(ram));
    }
    if allowed > 0 && min <= allowed && allowed <= max {
        return Ok(allowed);
    }
    let requested_instances = if min == max {
        min.to_string()
    } else {
        format!("{min}-{max}")
    };
    let requested = |res: &str, each: i64| match res {
        "instances" => requested_instances.clone(),
        _ => max.saturating_mul(each).to_string(),
    };
    let detail = |f: &dyn Fn(&(&str, i64, i64)) -> String| {
        resources
            .iter()
            .filter(|r| overs.contains(&r.0))
            .map(f)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let overs = overs.join(", ");
    Err(Error::Forbidden(format!(
        "Quota exceeded for {overs}: Requested {}, but already used {} of {} {overs}",
        detail(&|(res, _, each)| requested(res, *each)),
        detail(&|(_, in_use, _)| in_use.to_string()),
        detail(&|(res, _, _)| limit(res).to_string()),
    )))
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
        Ok(store::instances::usage(&self.db, project).await?.into())
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

#[cfg(test)]
mod tests {
    use super::{allowed_instances, Usage};
    use std::collections::BTreeMap;

    fn limits(instances: i64, cores: i64, ram: i64) -> BTreeMap<String, i64> {
        [("instances", instances), ("cores", cores), ("ram", ram)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    #[test]
    fn boots_what_the_headroom_allows_between_min_and_max() {
        let used = Usage {
            instances: 3,
            cores: 3,
            ram: 1536,
        };
        let q = limits(10, 20, 51200);
        assert_eq!(allowed_instances(&q, used, 1, 512, 1, 1).unwrap(), 1);
        assert_eq!(
            allowed_instances(&q, used, 1, 512, 1, 1_000_000_000).unwrap(),
            7
        );
        // Cores are the tightest: 17 left at 4 each.
        assert_eq!(allowed_instances(&q, used, 4, 512, 2, 100).unwrap(), 4);
        // Unlimited instances and RAM: cores decide.
        let q2 = limits(-1, 20, -1);
        assert_eq!(allowed_instances(&q2, used, 2, 512, 1, 1000).unwrap(), 8);
        assert_eq!(
            allowed_instances(&limits(-1, -1, -1), used, 1, 512, 5, 9).unwrap(),
            9
        );
    }

    #[test]
    fn too_many_instances_reads_as_novas() {
        let used = Usage {
            instances: 10,
            cores: 10,
            ram: 5120,
        };
        let q = limits(10, 20, 51200);
        let e = allowed_instances(&q, used, 1, 512, 1, 1).unwrap_err();
        assert_eq!(
            e.message(),
            "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
        );
        let used = Usage {
            instances: 8,
            cores: 8,
            ram: 4096,
        };
        let e = allowed_instances(&q, used, 1, 512, 3, 1_000_000_000).unwrap_err();
        assert_eq!(
            e.message(),
            "Quota exceeded for cores, instances, ram: Requested 1000000000, 3-1000000000, \
             512000000000, but already used 8, 8, 4096 of 20, 10, 51200 cores, instances, ram"
        );
    }
}
