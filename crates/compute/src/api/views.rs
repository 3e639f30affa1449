//! The v2.1 response shapes (checked against tempest's schemas): servers,
//! flavors (the status Nova derives from vm_state and task_state is
//! `crate::states::status`).

use super::{base_url, ApiVersion};
use crate::service::ComputeService;
use crate::store::{catalog::Flavor, instances::Instance};
use ferrostack_core::auth::AuthContext;
use serde_json::{json, Map, Value};

pub fn links(svc: &ComputeService, collection: &str, id: &str) -> Value {
    let base = base_url(svc);
    json!([
        {"href": format!("{base}/v2.1/{collection}/{id}"), "rel": "self"},
        {"href": format!("{base}/{collection}/{id}"), "rel": "bookmark"},
    ])
}

/// Nova's `hostId`: the host hashed with the project (the same host looks
/// different to each project), `""` without a host.
pub fn host_id(i: &Instance) -> String {
    use sha2::Digest;
    match &i.host {
        Some(h) if !h.is_empty() => {
            let d = sha2::Sha224::digest(format!("{}{h}", i.project_id).as_bytes());
            d.iter().map(|b| format!("{b:02x}")).collect()
        }
        _ => String::new(),
    }
}

/// `{"net": [{"version", "addr", …}]}`; the extended attributes are part
/// of the detail view.
pub fn addresses(i: &Instance, extended: bool) -> Value {
    let mut out = Map::new();
    for v in &i.network_info {
        let list = out
            .entry(v.network_name.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("array");
        let fixed = v.ips.iter().map(|(a, ver)| (a, *ver, "fixed"));
        let floating = v.floating_ips.iter().map(|a| (a, 4, "floating"));
        for (addr, version, kind) in fixed.chain(floating) {
            let mut a = json!({"version": version, "addr": addr});
            if extended {
                a["OS-EXT-IPS:type"] = json!(kind);
                a["OS-EXT-IPS-MAC:mac_addr"] = json!(v.mac_address);
            }
            list.push(a);
        }
    }
    Value::Object(out)
}

/// Timestamps the way Nova prints `launched_at`: naive, with microseconds.
fn naive(ts: &Option<String>) -> Value {
    match ts.as_deref().and_then(ferrostack_core::time::parse) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::Null,
    }
}

pub fn server_brief(svc: &ComputeService, i: &Instance) -> Value {
    brief(svc, &i.id, &i.name)
}

/// The brief view from the two columns it shows.
pub fn brief(svc: &ComputeService, id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "links": links(svc, "servers", id)})
}

/// The keys of the common view that update and rebuild answer with
/// (tempest's `common_show_server`); the detail view adds the extensions.
const COMMON_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "image",
    "flavor",
    "fault",
    "user_id",
    "tenant_id",
    "created",
    "updated",
    "progress",
    "metadata",
    "links",
    "addresses",
    "hostId",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
];

/// The view of update and rebuild: no extension attributes.
pub fn server_common(
    svc: &ComputeService,
    ctx: &AuthContext,
    version: ApiVersion,
    i: &Instance,
) -> Value {
    let mut v = server(svc, ctx, version, i);
    v.as_object_mut().expect("object").retain(|k, _| {
        COMMON_KEYS.contains(&k.as_str())
            || matches!(
                k.as_str(),
                "locked" | "locked_reason" | "description" | "tags" | "trusted_image_certificates"
            )
    });
    v["addresses"] = addresses(i, false);
    v
}

/// `os-extended-volumes:volumes_attached`: each volume's id, and from
/// 2.3 whether it goes with the server.
fn volumes_attached(version: ApiVersion, i: &Instance) -> Value {
    i.bdms
        .iter()
        .filter(|b| !b.volume_id.is_empty())
        .map(|b| {
            if version >= (2, 3) {
                json!({"id": b.volume_id, "delete_on_termination": b.delete_on_termination})
            } else {
                json!({"id": b.volume_id})
            }
        })
        .collect()
}

/// Nova's `progress`: shown in the states where it means something.
pub fn progress(status: &str) -> Option<u8> {
    match status {
        "ACTIVE" => Some(100),
        "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" => Some(0),
        _ => None,
    }
}

/// The detail view (show, list detail) at `version`.
pub fn server(svc: &ComputeService, ctx: &AuthContext, version: ApiVersion, i: &Instance) -> Value {
    let base = base_url(svc);
    let st = crate::states::status(i.vm_state, i.task_state);
    let mut v = json!({
        "id": i.id, "name": i.name, "status": st,
        "tenant_id": i.project_id, "user_id": i.user_id,
        "metadata": i.metadata,
        "hostId": host_id(i),
        "image": image(&base, version, i),
        "flavor": if version >= (2, 47) { embedded_flavor(svc, ctx, i) } else {
            json!({"id": i.flavor.id, "links": [{"href": format!("{base}/flavors/{}", i.flavor.id), "rel": "bookmark"}]})
        },
        "created": i.created_at, "updated": i.updated_at,
        "addresses": addresses(i, true),
        "accessIPv4": i.access_ip_v4, "accessIPv6": i.access_ip_v6,
        "links": links(svc, "servers", &i.id),
        "OS-DCF:diskConfig": "MANUAL",
        "key_name": i.key_name,
        "OS-SRV-USG:launched_at": naive(&i.launched_at),
        "OS-SRV-USG:terminated_at": naive(&i.terminated_at),
        "OS-EXT-AZ:availability_zone": i.availability_zone,
        "OS-EXT-STS:task_state": i.task_state,
        "OS-EXT-STS:vm_state": i.vm_state,
        "OS-EXT-STS:power_state": i.power_state.code(),
        "os-extended-volumes:volumes_attached": volumes_attached(version, i),
        "config_drive": i.config_drive,
    });
    if version >= (2, 9) {
        v["locked"] = json!(i.locked);
    }
    if version >= (2, 19) {
        v["description"] = json!(i.description);
    }
    if version >= (2, 26) {
        v["tags"] = json!(i.tags);
    }
    if version >= (2, 63) {
        v["trusted_image_certificates"] = json!(i.trusted_image_certificates);
    }
    if version >= (2, 73) {
        v["locked_reason"] = json!(i.locked_reason);
    }
    // Nova leaves the key out when the server has no group.
    if !i.security_groups.is_empty() {
        v["security_groups"] = json!(i
            .security_groups
            .iter()
            .map(|n| json!({ "name": n }))
            .collect::<Vec<_>>());
    }
    if let Some(p) = progress(st) {
        v["progress"] = json!(p);
    }
    if matches!(st, "ERROR" | "DELETED") {
        if let Some(f) = &i.fault {
            v["fault"] = json!({"code": f.code, "message": f.message, "created": f.created});
        }
    }
    let extended = crate::policy::project_target(&i.project_id);
    if svc.policy.check(
        "os_compute_api:os-extended-server-attributes",
        ctx,
        &extended,
    ) {
        v["OS-EXT-SRV-ATTR:host"] = json!(i.host);
        v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(i.node);
        v["OS-EXT-SRV-ATTR:instance_name"] = json!(i.instance_name);
        if version >= (2, 3) {
            extended_attributes_2_3(&mut v, i);
        }
    } else if version >= (2, 90) {
        // 2.90 shows the host name to everyone.
        v["OS-EXT-SRV-ATTR:hostname"] = json!(i.hostname());
    }
    if version >= (2, 96) {
        v["pinned_availability_zone"] = json!(i.pinned_availability_zone());
    }
    if version >= (2, 100) {
        v["scheduler_hints"] = json!(i.scheduler_hints);
    }
    v
}

/// The server's image: `""` when it boots from a volume, else its id and
/// bookmark, from 2.98 with the image properties Nova knows
/// ([`IMAGE_META_PROPERTIES`]) as strings.
fn image(base: &str, version: ApiVersion, i: &Instance) -> Value {
    if i.image_ref.is_empty() {
        return json!("");
    }
    let mut v = json!({"id": i.image_ref,
        "links": [{"href": format!("{base}/images/{}", i.image_ref), "rel": "bookmark"}]});
    if version >= (2, 98) {
        let props: Map<String, Value> = i
            .image_properties
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| IMAGE_META_PROPERTIES.binary_search(&k.as_str()).is_ok())
            .filter_map(|(k, v)| {
                let text = match v {
                    Value::Null => return None,
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
                    other => other.to_string(),
                };
                Some((k.clone(), json!(text.chars().take(255).collect::<String>())))
            })
            .collect();
        v["properties"] = Value::Object(props);
    }
    v
}

/// The image properties Nova's `ImageMetaProps` knows (its fields and
/// legacy names, sorted): 2.98 shows these and no others.
const IMAGE_META_PROPERTIES: &[&str] = &[
    "architecture",
    "auto_disk_config",
    "bdm_v2",
    "bittorrent",
    "block_device_mapping",
    "cache_in_nova",
    "hw_architecture",
    "hw_auto_disk_config",
    "hw_boot_menu",
    "hw_cdrom_bus",
    "hw_cpu_cores",
    "hw_cpu_max_cores",
    "hw_cpu_max_sockets",
    "hw_cpu_max_threads",
    "hw_cpu_policy",
    "hw_cpu_realtime_mask",
    "hw_cpu_sockets",
    "hw_cpu_thread_policy",
    "hw_cpu_threads",
    "hw_device_id",
    "hw_disk_bus",
    "hw_disk_type",
    "hw_emulation_architecture",
    "hw_ephemeral_encryption",
    "hw_ephemeral_encryption_format",
    "hw_ephemeral_encryption_secret_uuid",
    "hw_firmware_stateless",
    "hw_firmware_type",
    "hw_floppy_bus",
    "hw_input_bus",
    "hw_ipxe_boot",
    "hw_locked_memory",
    "hw_machine_type",
    "hw_maxphysaddr_bits",
    "hw_maxphysaddr_mode",
    "hw_mem_encryption",
    "hw_mem_encryption_model",
    "hw_mem_page_size",
    "hw_numa_cpus",
    "hw_numa_mem",
    "hw_numa_nodes",
    "hw_pci_numa_affinity_policy",
    "hw_pmu",
    "hw_pointer_model",
    "hw_qemu_guest_agent",
    "hw_redirected_usb_ports",
    "hw_rescue_bus",
    "hw_rescue_device",
    "hw_rng_model",
    "hw_scsi_model",
    "hw_serial_port_count",
    "hw_sound_model",
    "hw_time_hpet",
    "hw_tpm_model",
    "hw_tpm_version",
    "hw_usb_model",
    "hw_video_model",
    "hw_video_ram",
    "hw_vif_model",
    "hw_vif_multiqueue_enabled",
    "hw_viommu_model",
    "hw_virtio_packed_ring",
    "hw_vm_mode",
    "hw_watchdog_action",
    "hypervisor_type",
    "hypervisor_version_requires",
    "img_bdm_v2",
    "img_bittorrent",
    "img_block_device_mapping",
    "img_cache_in_nova",
    "img_compression_level",
    "img_config_drive",
    "img_hide_hypervisor_id",
    "img_hv_requested_version",
    "img_hv_type",
    "img_linked_clone",
    "img_mappings",
    "img_owner_id",
    "img_root_device_name",
    "img_signature",
    "img_signature_certificate_uuid",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_use_agent",
    "img_version",
    "ipxe_boot",
    "mappings",
    "os_admin_user",
    "os_command_line",
    "os_distro",
    "os_require_quiesce",
    "os_secure_boot",
    "os_skip_agent_inject_files_at_boot",
    "os_skip_agent_inject_ssh",
    "os_type",
    "owner_id",
    "root_device_name",
    "traits_required",
    "vm_mode",
    "vmware_disktype",
    "vmware_image_version",
    "vmware_linked_clone",
    "vmware_ostype",
    "xenapi_device_id",
    "xenapi_image_compression_level",
    "xenapi_skip_agent_inject_files_at_boot",
    "xenapi_skip_agent_inject_ssh",
    "xenapi_use_agent",
];

/// What 2.3 added to the extended attributes (for the standalone EC2 API).
/// The root device is the one every guest of this cloud boots from, once
/// the server has a host; kernel and ramdisk come from the image.
fn extended_attributes_2_3(v: &mut Value, i: &Instance) {
    let image_property = |key: &str| {
        i.image_properties
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    v["OS-EXT-SRV-ATTR:reservation_id"] = json!(i.reservation_id);
    v["OS-EXT-SRV-ATTR:launch_index"] = json!(i.launch_index);
    v["OS-EXT-SRV-ATTR:kernel_id"] = json!(image_property("kernel_id"));
    v["OS-EXT-SRV-ATTR:ramdisk_id"] = json!(image_property("ramdisk_id"));
    v["OS-EXT-SRV-ATTR:hostname"] = json!(i.hostname());
    v["OS-EXT-SRV-ATTR:root_device_name"] = match i.host.as_deref() {
        Some(h) if !h.is_empty() => json!("/dev/vda"),
        _ => Value::Null,
    };
    v["OS-EXT-SRV-ATTR:user_data"] = json!(i.user_data);
}

/// A flavor in a list; from 2.55 with its `description`.
pub fn flavor_brief(svc: &ComputeService, f: &Flavor, version: ApiVersion) -> Value {
    let mut v = json!({"id": f.id, "name": f.name, "links": links(svc, "flavors", &f.id)});
    if version >= (2, 55) {
        v["description"] = json!(f.description);
    }
    v
}

/// A flavor's detail; from 2.55 with its `description`.
pub fn flavor(svc: &ComputeService, f: &Flavor, version: ApiVersion) -> Value {
    let mut v = flavor_detail(svc, f);
    // 2.75: no swap is 0, not "".
    if version >= (2, 75) {
        v["swap"] = json!(f.swap);
    }
    if version >= (2, 55) {
        v["description"] = json!(f.description);
    }
    v
}

fn flavor_detail(svc: &ComputeService, f: &Flavor) -> Value {
    json!({
        "id": f.id, "name": f.name, "ram": f.ram, "vcpus": f.vcpus, "disk": f.disk,
        "swap": if f.swap == 0 { json!("") } else { json!(f.swap) },
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral,
        "OS-FLV-DISABLED:disabled": f.disabled,
        "os-flavor-access:is_public": f.is_public,
        "rxtx_factor": f.rxtx_factor,
        "links": links(svc, "flavors", &f.id),
    })
}

/// 2.47: the server's flavor as it was when the server got it (later
/// changes to the flavor do not show), with its extra specs to those the
/// extra specs rule lets list them.
fn embedded_flavor(svc: &ComputeService, ctx: &AuthContext, i: &Instance) -> Value {
    let f = &i.flavor;
    let mut v = json!({
        "original_name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk,
        "ephemeral": f.ephemeral, "swap": f.swap,
    });
    let target = crate::policy::project_target(&i.project_id);
    if svc
        .policy
        .check("os_compute_api:os-flavor-extra-specs:index", ctx, &target)
    {
        v["extra_specs"] = json!(f.extra_specs);
    }
    v
}

/// 2.48's standard diagnostics: what the server is made of (CPUs, NICs,
/// disks, memory) from its record. The counters are the driver's to
/// report and neither driver here reports them yet, so they are 0.
/// `driver` is `libvirt`, the only QEMU driver Nova's (and tempest's)
/// enumeration has.
pub fn diagnostics(svc: &ComputeService, i: &Instance) -> Value {
    use crate::states::PowerState;
    let state = match i.power_state {
        PowerState::NoState => "pending",
        PowerState::Running => "running",
        PowerState::Paused => "paused",
        PowerState::Shutdown => "shutdown",
        PowerState::Crashed => "crashed",
        PowerState::Suspended => "suspended",
    };
    let uptime = i
        .launched_at
        .as_deref()
        .and_then(ferrostack_core::time::parse)
        .map(|t| (chrono::Utc::now() - t).num_seconds().max(0));
    let nics: Vec<Value> = i
        .network_info
        .iter()
        .map(|v| {
            json!({"mac_address": v.mac_address, "rx_octets": 0, "rx_errors": 0, "rx_drop": 0,
                "rx_packets": 0, "rx_rate": null, "tx_octets": 0, "tx_errors": 0, "tx_drop": 0,
                "tx_packets": 0, "tx_rate": null})
        })
        .collect();
    let disk_count = 1 + i.bdms.iter().filter(|b| !b.volume_id.is_empty()).count();
    let disks: Vec<Value> = (0..disk_count)
        .map(|_| json!({"read_bytes": 0, "read_requests": 0, "write_bytes": 0, "write_requests": 0, "errors_count": 0}))
        .collect();
    let hypervisor = if svc.config.compute.driver == "fake" {
        "fake"
    } else {
        "qemu"
    };
    json!({
        "state": state, "driver": "libvirt", "hypervisor": hypervisor, "hypervisor_os": "linux",
        "uptime": uptime, "config_drive": i.has_config_drive,
        "num_cpus": i.flavor.vcpus, "num_nics": nics.len(), "num_disks": disks.len(),
        "memory_details": {"maximum": i.flavor.ram, "used": 0},
        "cpu_details": (0..i.flavor.vcpus).map(|n| json!({"id": n, "time": 0, "utilisation": null})).collect::<Vec<_>>(),
        "nic_details": nics, "disk_details": disks,
    })
}
