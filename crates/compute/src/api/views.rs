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

fn host_id(i: &Instance) -> String {
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
    json!({"id": i.id, "name": i.name, "links": links(svc, "servers", &i.id)})
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
    v.as_object_mut()
        .expect("object")
        .retain(|k, _| COMMON_KEYS.contains(&k.as_str()) || k == "locked" || k == "description");
    v["addresses"] = addresses(i, false);
    v
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
        "image": if i.image_ref.is_empty() { json!("") } else { json!({"id": i.image_ref,
            "links": [{"href": format!("{base}/images/{}", i.image_ref), "rel": "bookmark"}]}) },
        "flavor": {"id": i.flavor.id, "links": [{"href": format!("{base}/flavors/{}", i.flavor.id), "rel": "bookmark"}]},
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
        "os-extended-volumes:volumes_attached": [],
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
    // Nova leaves the key out when the server has no group.
    if !i.security_groups.is_empty() {
        v["security_groups"] = json!(i
            .security_groups
            .iter()
            .map(|n| json!({ "name": n }))
            .collect::<Vec<_>>());
    }
    if matches!(
        st,
        "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE"
    ) {
        v["progress"] = json!(if st == "ACTIVE" { 100 } else { 0 });
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
    }
    v
}

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
    v["OS-EXT-SRV-ATTR:hostname"] =
        json!(crate::service::metadata::sanitize_hostname(&i.name, &i.id));
    v["OS-EXT-SRV-ATTR:root_device_name"] = match i.host.as_deref() {
        Some(h) if !h.is_empty() => json!("/dev/vda"),
        _ => Value::Null,
    };
    v["OS-EXT-SRV-ATTR:user_data"] = json!(i.user_data);
}

pub fn flavor_brief(svc: &ComputeService, f: &Flavor) -> Value {
    json!({"id": f.id, "name": f.name, "links": links(svc, "flavors", &f.id)})
}

pub fn flavor(svc: &ComputeService, f: &Flavor) -> Value {
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
