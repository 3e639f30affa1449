//! 2.86's validation of flavor extra specs, as Nova's
//! `api/validation/extra_specs`: a key one of Nova's validators knows is
//! checked against its value's type, enumeration, pattern or bounds; an
//! unknown key in a namespace Nova knows is refused; keys outside those
//! namespaces (and without a `:`) pass. Standard trait names are taken as
//! any `[A-Z0-9_]+` (Nova checks them against `os-traits`' list).

use ferrostack_core::{Error, Result};
use regex::Regex;
use std::sync::LazyLock;

/// What a known key's value must be.
enum Value {
    Any,
    Bool,
    Int { min: Option<i64>, max: Option<i64> },
    OneOf(&'static [&'static str]),
    Pattern(&'static str),
}
use Value::{Any, Bool, Int, OneOf, Pattern};

/// Nova's validators: each key's name as a pattern, and its value.
const KNOWN: &[(&str, Value)] = &[
    (r"accel:device_profile", Any),
    (r"aggregate_instance_extra_specs:(?P<key>.+)", Any),
    (r"capabilities:id", Any),
    (r"capabilities:uuid", Any),
    (r"capabilities:service_id", Any),
    (r"capabilities:host", Any),
    (r"capabilities:vcpus", Any),
    (r"capabilities:memory_mb", Any),
    (r"capabilities:local_gb", Any),
    (r"capabilities:vcpus_used", Any),
    (r"capabilities:memory_mb_used", Any),
    (r"capabilities:local_gb_used", Any),
    (r"capabilities:hypervisor_type", Any),
    (r"capabilities:hypervisor_version", Any),
    (r"capabilities:hypervisor_hostname", Any),
    (r"capabilities:free_ram_mb", Any),
    (r"capabilities:free_disk_gb", Any),
    (r"capabilities:current_workload", Any),
    (r"capabilities:running_vms", Any),
    (r"capabilities:disk_available_least", Any),
    (r"capabilities:host_ip", Any),
    (r"capabilities:mapped", Any),
    (r"capabilities:cpu_allocation_ratio", Any),
    (r"capabilities:ram_allocation_ratio", Any),
    (r"capabilities:disk_allocation_ratio", Any),
    (r"capabilities:total_usable_ram_mb", Any),
    (r"capabilities:total_usable_disk_gb", Any),
    (r"capabilities:disk_mb_used", Any),
    (r"capabilities:free_disk_mb", Any),
    (r"capabilities:vcpus_total", Any),
    (r"capabilities:num_instances", Any),
    (r"capabilities:num_io_ops", Any),
    (r"capabilities:failed_builds", Any),
    (r"capabilities:aggregates", Any),
    (r"capabilities:cell_uuid", Any),
    (r"capabilities:updated", Any),
    (r"capabilities:cpu_info(?P<filter>(:\w+)*)", Any),
    (r"capabilities:metrics(?P<filter>(:\w+)*)", Any),
    (r"capabilities:stats(?P<filter>(:\w+)*)", Any),
    (r"capabilities:numa_topology(?P<filter>(:\w+)*)", Any),
    (r"capabilities:supported_hv_specs(?P<filter>(:\w+)*)", Any),
    (r"capabilities:pci_device_pools(?P<filter>(:\w+)*)", Any),
    (r"capabilities:nodename(?P<filter>(:\w+)*)", Any),
    (r"capabilities:pci_stats(?P<filter>(:\w+)*)", Any),
    (r"capabilities:supported_instances(?P<filter>(:\w+)*)", Any),
    (r"capabilities:limits(?P<filter>(:\w+)*)", Any),
    (r"capabilities:instances(?P<filter>(:\w+)*)", Any),
    (r"hw:cpu_realtime", Bool),
    (
        r"hw:cpu_realtime_mask",
        Pattern(r"(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    ),
    (r"hw:hide_hypervisor_id", Bool),
    (r"hw:cpu_policy", OneOf(&["dedicated", "shared", "mixed"])),
    (
        r"hw:cpu_thread_policy",
        OneOf(&["prefer", "isolate", "require"]),
    ),
    (r"hw:emulator_threads_policy", OneOf(&["isolate", "share"])),
    (
        r"hw:cpu_dedicated_mask",
        Pattern(r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    ),
    (
        r"hw:mem_page_size",
        Pattern(r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)"),
    ),
    (r"hw:locked_memory", Bool),
    (
        r"hw:numa_nodes",
        Int {
            min: Some(1),
            max: None,
        },
    ),
    (
        r"hw:numa_cpus.(?P<num>\d+)",
        Pattern(r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    ),
    (
        r"hw:numa_mem.(?P<num>\d+)",
        Int {
            min: Some(1),
            max: None,
        },
    ),
    (
        r"hw:pci_numa_affinity_policy",
        OneOf(&["required", "preferred", "legacy", "socket"]),
    ),
    (
        r"hw:cpu_sockets",
        Int {
            min: Some(1),
            max: None,
        },
    ),
    (
        r"hw:cpu_cores",
        Int {
            min: Some(1),
            max: None,
        },
    ),
    (
        r"hw:cpu_threads",
        Int {
            min: Some(1),
            max: None,
        },
    ),
    (
        r"hw:cpu_max_sockets",
        Int {
            min: Some(1),
            max: None,
        },
    ),
    (
        r"hw:cpu_max_cores",
        Int {
            min: Some(1),
            max: None,
        },
    ),
    (
        r"hw:cpu_max_threads",
        Int {
            min: Some(1),
            max: None,
        },
    ),
    (r"hw:boot_menu", Bool),
    (r"hw:vif_multiqueue_enabled", Bool),
    (r"hw:mem_encryption", Bool),
    (
        r"hw:mem_encryption_model",
        OneOf(&["amd-sev", "amd-sev-es", "amd-sev-snp"]),
    ),
    (r"hw:pmem", Pattern(r"([a-zA-Z0-9_]+(,)?)+")),
    (r"hw:pmu", Bool),
    (
        r"hw:serial_port_count",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (r"hw:tpm_model", OneOf(&["tpm-tis", "tpm-crb"])),
    (r"hw:tpm_version", OneOf(&["1.2", "2.0"])),
    (
        r"hw:tpm_secret_security",
        OneOf(&["user", "host", "deployment"]),
    ),
    (
        r"hw:watchdog_action",
        OneOf(&["none", "pause", "poweroff", "reset", "disabled"]),
    ),
    (
        r"hw:viommu_model",
        OneOf(&["intel", "smmuv3", "virtio", "auto"]),
    ),
    (r"hw:virtio_packed_ring", Bool),
    (
        r"hw:sound_model",
        OneOf(&[
            "sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio",
        ]),
    ),
    (r"hw:usb_model", OneOf(&["none", "nec-xhci", "qemu-xhci"])),
    (
        r"hw:redirected_usb_ports",
        Int {
            min: Some(0),
            max: Some(15),
        },
    ),
    (r"hw:ephemeral_encryption", Bool),
    (
        r"hw:ephemeral_encryption_format",
        OneOf(&["plain", "luks", "luksv2"]),
    ),
    (r"hw_rng:allowed", Bool),
    (
        r"hw_rng:rate_bytes",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"hw_rng:rate_period",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"hw_video:ram_max_mb",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (r"hide_hypervisor_id", Bool),
    (r"group_policy", OneOf(&["isolate", "none"])),
    (r"os:secure_boot", OneOf(&["disabled", "required"])),
    (
        r"pci_passthrough:alias",
        Pattern(r"[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*"),
    ),
    (
        r"quota:cpu_limit",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:cpu_reservation",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"quota:cpu_shares_level",
        OneOf(&["custom", "high", "normal", "low"]),
    ),
    (
        r"quota:cpu_shares_share",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:memory_limit",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:memory_reservation",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"quota:memory_shares_level",
        OneOf(&["custom", "high", "normal", "low"]),
    ),
    (
        r"quota:memory_shares_share",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:disk_io_limit",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:disk_io_reservation",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"quota:disk_io_shares_level",
        OneOf(&["custom", "high", "normal", "low"]),
    ),
    (
        r"quota:disk_io_shares_share",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:vif_limit",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:vif_reservation",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"quota:vif_shares_level",
        OneOf(&["custom", "high", "normal", "low"]),
    ),
    (
        r"quota:vif_shares_share",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:cpu_shares",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:cpu_period",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:cpu_quota",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"quota:disk_read_bytes_sec",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:disk_read_iops_sec",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:disk_write_bytes_sec",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:disk_write_iops_sec",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:disk_total_bytes_sec",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:disk_total_iops_sec",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:vif_inbound_average",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:vif_inbound_peak",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:vif_inbound_burst",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:vif_outbound_average",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:vif_outbound_peak",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"quota:vif_outbound_burst",
        Int {
            min: Some(0),
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):VCPU",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):MEMORY_MB",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):DISK_GB",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):PCI_DEVICE",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):SRIOV_NET_VF",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NUMA_SOCKET",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NUMA_CORE",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NUMA_THREAD",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NUMA_MEMORY_MB",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):IPV4_ADDRESS",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):VGPU",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):VGPU_DISPLAY_HEAD",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NET_BW_EGR_KILOBIT_PER_SEC",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NET_BW_IGR_KILOBIT_PER_SEC",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):PCPU",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):MEM_ENCRYPTION_CONTEXT",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):FPGA",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):PGPU",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NET_PACKET_RATE_KILOPACKET_PER_SEC",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?):CUSTOM_(?P<resource>[A-Z0-9_]+)",
        Int {
            min: None,
            max: None,
        },
    ),
    (
        r"trait(?P<group>([a-zA-Z0-9_-]{1,64})?):(?P<trait>[A-Z0-9_]+)",
        OneOf(&["required", "forbidden"]),
    ),
    (r"vmware:hw_version", Any),
    (r"vmware:storage_policy", Any),
];

/// The namespaces of [`KNOWN`] (the part of each name before its `:`).
const NAMESPACES: &[&str] = &[
    "accel",
    "aggregate_instance_extra_specs",
    "capabilities",
    "hw",
    "hw_rng",
    "hw_video",
    "os",
    "pci_passthrough",
    "quota",
    r"resources(?P<group>([a-zA-Z0-9_-]{1,64})?)",
    r"trait(?P<group>([a-zA-Z0-9_-]{1,64})?)",
    "vmware",
];

/// A pattern anchored at both ends (Python's `re.fullmatch`).
fn whole(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("a valid pattern")
}

static NAMES: LazyLock<Vec<Regex>> =
    LazyLock::new(|| KNOWN.iter().map(|(n, _)| whole(n)).collect());
static NAMESPACE_NAMES: LazyLock<Vec<Regex>> =
    LazyLock::new(|| NAMESPACES.iter().map(|n| whole(n)).collect());

fn invalid(why: String) -> Error {
    Error::BadRequest(format!("Validation failed; {why}"))
}

/// Check one extra spec as Nova does from 2.86.
pub fn validate(name: &str, value: &str) -> Result<()> {
    if let Some(i) = NAMES.iter().position(|re| re.is_match(name)) {
        return check_value(&KNOWN[i].1, value);
    }
    let Some((namespace, _)) = name.split_once(':') else {
        return Ok(());
    };
    if NAMESPACE_NAMES.iter().any(|re| re.is_match(namespace)) {
        return Err(invalid(format!(
            "extra spec '{name}' does not appear to be a valid extra spec."
        )));
    }
    Ok(())
}

fn check_value(kind: &Value, value: &str) -> Result<()> {
    match kind {
        Any => Ok(()),
        Bool => match value.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" | "0" | "f" | "false" | "off" | "n" | "no" => {
                Ok(())
            }
            _ => Err(invalid(format!(
                "'{value}' is not a valid boolean-like value."
            ))),
        },
        Int { min, max } => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| invalid(format!("'{value}' is not a valid integer value.")))?;
            if let Some(m) = max.filter(|m| *m < n) {
                return Err(invalid(format!(
                    "'{value}' is greater than the max value of '{m}'."
                )));
            }
            if let Some(m) = min.filter(|m| *m > n) {
                return Err(invalid(format!(
                    "'{value}' is less than the min value of '{m}'."
                )));
            }
            Ok(())
        }
        OneOf(values) if values.contains(&value) => Ok(()),
        OneOf(values) => Err(invalid(format!(
            "'{value}' is not one of: {}.",
            values.join(", ")
        ))),
        Pattern(p) if whole(p).is_match(value) => Ok(()),
        Pattern(p) => Err(invalid(format!("'{value}' is not of the format '{p}'."))),
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn known_keys_are_checked_and_unknown_namespaced_keys_refused() {
        assert!(validate("hw:cpu_policy", "dedicated").is_ok());
        assert!(validate("hw:cpu_policy", "sometimes").is_err());
        assert!(validate("hw:numa_nodes", "2").is_ok());
        assert!(validate("hw:numa_nodes", "0").is_err());
        assert!(validate("hw:numa_nodes", "two").is_err());
        assert!(validate("hw:numa_cpus.0", "0-3,^2").is_ok());
        assert!(validate("hw:mem_page_size", "2MB").is_ok());
        assert!(validate("hw:boot_menu", "yes").is_ok());
        assert!(validate("hw:boot_menu", "maybe").is_err());
        assert!(validate("hw:redirected_usb_ports", "16").is_err());
        assert!(validate("resources:VCPU", "1").is_ok());
        assert!(validate("resources1:CUSTOM_GPU", "1").is_ok());
        assert!(validate("resources:VCPU", "x").is_err());
        assert!(validate("trait:HW_CPU_X86_AVX", "required").is_ok());
        assert!(validate("trait:CUSTOM_FOO", "wanted").is_err());
        assert!(validate("hw:not_a_thing", "1").is_err());
        assert!(validate("trait2:lower", "required").is_err());
        assert!(validate("aggregate_instance_extra_specs:ssd", "true").is_ok());
        assert!(validate("my:own", "anything").is_ok());
        assert!(validate("plain", "anything").is_ok());
    }

    #[test]
    fn every_pattern_compiles() {
        for (name, kind) in super::KNOWN {
            super::whole(name);
            if let super::Value::Pattern(p) = kind {
                super::whole(p);
            }
        }
    }
}
