//! The scheduler: filters (compute service enabled and alive, RAM, vCPU,
//! disk with allocation ratios, availability zone, image properties), a
//! weigher spreading by free RAM, then a claim on the best host that still
//! fits — the claim is a compare-and-set in the database, so two boots that
//! chose the same host cannot both over-commit it; the loser moves on to
//! the next host.

use crate::service::ComputeService;
use crate::store::catalog::Flavor;
use crate::store::hosts::{self, ComputeNode, Resources};
use ferrostack_core::{Error, Result};
use serde_json::Value;

pub const COMPUTE_BINARY: &str = "nova-compute";

/// What a boot asks of a host.
pub struct Request<'a> {
    pub flavor: &'a Flavor,
    /// Zone wanted, and optionally a forced host (`zone:host`).
    pub availability_zone: Option<&'a str>,
    pub image_properties: &'a Value,
    /// Hosts not to use (anti-affinity).
    pub ignore_hosts: &'a [String],
    /// When set, the only hosts allowed (affinity with placed members).
    pub only_hosts: Option<&'a [String]>,
    /// 2.74: the host and node asked for at create (filters still run).
    pub host: Option<&'a str>,
    pub node: Option<&'a str>,
}

pub fn resources_of(f: &Flavor) -> Resources {
    Resources {
        vcpus: f.vcpus,
        memory_mb: f.ram,
        disk_gb: f.disk + f.ephemeral + (f.swap + 1023) / 1024,
    }
}

/// The most a host may hand out, after reserves and allocation ratios.
pub fn limits_of(svc: &ComputeService, n: &ComputeNode) -> Resources {
    let c = &svc.config.compute;
    Resources {
        vcpus: (n.vcpus as f64 * c.cpu_allocation_ratio) as i64,
        memory_mb: ((n.memory_mb - c.reserved_host_memory_mb).max(0) as f64
            * c.ram_allocation_ratio) as i64,
        disk_gb: ((n.local_gb - c.reserved_host_disk_mb / 1024).max(0) as f64
            * c.disk_allocation_ratio) as i64,
    }
}

fn image_fits(props: &Value, node: &ComputeNode) -> bool {
    if let Some(h) = props["hypervisor_type"].as_str() {
        if !h.eq_ignore_ascii_case(&node.hypervisor_type) {
            return false;
        }
    }
    if let Some(arch) = props["architecture"].as_str() {
        let host_arch = std::env::consts::ARCH;
        let same = arch.eq_ignore_ascii_case(host_arch)
            || (arch == "amd64" && host_arch == "x86_64")
            || (arch == "arm64" && host_arch == "aarch64");
        if !same {
            return false;
        }
    }
    true
}

/// Hosts that pass every filter, best first.
pub async fn candidates(svc: &ComputeService, req: &Request<'_>) -> Result<Vec<ComputeNode>> {
    let (zone, forced_host) = match req.availability_zone {
        Some(az) => match az.split_once(':') {
            Some((z, h)) => ((!z.is_empty()).then_some(z), (!h.is_empty()).then_some(h)),
            None => (Some(az), None),
        },
        None => (None, None),
    };
    let services = hosts::list_services(&svc.db).await?;
    let want = resources_of(req.flavor);
    let mut out = Vec::new();
    for node in hosts::list_nodes(&svc.db).await? {
        let Some(s) = services
            .iter()
            .find(|s| s.host == node.host && s.binary == COMPUTE_BINARY)
        else {
            continue;
        };
        if s.disabled
            || !svc.is_up(s)
            || req.ignore_hosts.contains(&node.host)
            || req
                .only_hosts
                .is_some_and(|only| !only.contains(&node.host))
        {
            continue;
        }
        let asked = req.host.is_none_or(|h| h == node.host)
            && req.node.is_none_or(|n| n == node.hypervisor_hostname);
        if !asked
            || zone.is_some_and(|z| z != s.zone)
            || forced_host.is_some_and(|h| h != node.host)
        {
            continue;
        }
        let lim = limits_of(svc, &node);
        if node.vcpus_used + want.vcpus > lim.vcpus
            || node.memory_mb_used + want.memory_mb > lim.memory_mb
            || node.local_gb_used + want.disk_gb > lim.disk_gb
        {
            continue;
        }
        if !image_fits(req.image_properties, &node) {
            continue;
        }
        out.push(node);
    }
    // Spread: the most free RAM first.
    out.sort_by_key(|n| {
        let lim = limits_of(svc, n);
        std::cmp::Reverse(lim.memory_mb - n.memory_mb_used)
    });
    Ok(out)
}

pub fn no_valid_host() -> Error {
    Error::Internal("No valid host was found. There are not enough hosts available.".into())
}

/// Choose a host and claim `flavor` on it for `instance_id` under `purpose`.
pub async fn select_and_claim(
    svc: &ComputeService,
    instance_id: &str,
    purpose: &str,
    req: &Request<'_>,
) -> Result<ComputeNode> {
    for node in candidates(svc, req).await? {
        let lim = limits_of(svc, &node);
        if hosts::claim(
            &svc.db,
            instance_id,
            purpose,
            &node.host,
            resources_of(req.flavor),
            lim,
        )
        .await?
        {
            return Ok(node);
        }
    }
    Err(no_valid_host())
}
