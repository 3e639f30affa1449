//! The OpenStack format: `/openstack/<version>/` with `meta_data.json`,
//! `user_data`, `password`, `vendor_data.json`, `network_data.json` and
//! `vendor_data2.json`, as Nova renders them (`nova/api/metadata/base.py`,
//! `nova/virt/netutils.py`). Documents keep Nova's key order.

use crate::{FixedIp, InstanceMetadata, NetworkInterface};
use rand::RngCore;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const FOLSOM: &str = "2012-08-10";
pub const GRIZZLY: &str = "2013-04-04";
pub const HAVANA: &str = "2013-10-17";
pub const LIBERTY: &str = "2015-10-15";
pub const NEWTON_ONE: &str = "2016-06-30";
pub const NEWTON_TWO: &str = "2016-10-06";
pub const OCATA: &str = "2017-02-22";
pub const ROCKY: &str = "2018-08-27";
pub const VICTORIA: &str = "2020-10-14";

/// The dated versions, oldest first; `latest` is the newest of them.
pub const VERSIONS: [&str; 9] = [
    FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA,
];

pub const META_DATA: &str = "meta_data.json";
pub const USER_DATA: &str = "user_data";
pub const PASSWORD: &str = "password";
pub const VENDOR_DATA: &str = "vendor_data.json";
pub const NETWORK_DATA: &str = "network_data.json";
pub const VENDOR_DATA2: &str = "vendor_data2.json";

/// The number of random bytes in `random_seed`.
pub const RANDOM_SEED_BYTES: usize = 512;

/// A requested version (`latest` or a dated one), as its position in
/// [`VERSIONS`]; `None` for an unknown version.
pub fn version_index(version: &str) -> Option<usize> {
    if version == "latest" {
        return Some(VERSIONS.len() - 1);
    }
    VERSIONS.iter().position(|v| *v == version)
}

/// Whether the version at `index` has what `since` introduced.
fn has(index: usize, since: &str) -> bool {
    version_index(since).is_some_and(|s| index >= s)
}

/// `GET /openstack`: the versions and `latest`.
pub fn versions() -> Vec<&'static str> {
    VERSIONS.iter().copied().chain(["latest"]).collect()
}

/// `GET /openstack/<version>`: the documents of that version.
pub fn listing(md: &InstanceMetadata, version: usize) -> Vec<&'static str> {
    let mut files = vec![META_DATA];
    if md.user_data_lossy().is_some() {
        files.push(USER_DATA);
    }
    if has(version, GRIZZLY) {
        files.push(PASSWORD);
    }
    if has(version, HAVANA) {
        files.push(VENDOR_DATA);
    }
    if has(version, LIBERTY) {
        files.push(NETWORK_DATA);
    }
    if has(version, NEWTON_TWO) {
        files.push(VENDOR_DATA2);
    }
    files
}

/// `{name: data}` in the order of the instance's keys.
struct KeyMap<'a>(&'a [crate::PublicKey]);

impl Serialize for KeyMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for key in self.0 {
            map.serialize_entry(&key.name, &key.data)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct MetaData<'a> {
    uuid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_pass: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_keys: Option<KeyMap<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<&'a [crate::PublicKey]>,
    hostname: &'a str,
    name: &'a str,
    launch_index: i64,
    availability_zone: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    random_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    devices: Option<[(); 0]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedicated_cpus: Option<[(); 0]>,
}

/// `meta_data.json` of the version at `index`. `admin_pass` is Nova's
/// `extra_md`: only the config drive carries it.
pub fn meta_data(md: &InstanceMetadata, version: usize, with_admin_pass: bool) -> Vec<u8> {
    let random_seed = has(version, GRIZZLY).then(|| {
        use base64::Engine as _;
        let mut seed = [0u8; RANDOM_SEED_BYTES];
        rand::thread_rng().fill_bytes(&mut seed);
        base64::engine::general_purpose::STANDARD.encode(seed)
    });
    let doc = MetaData {
        uuid: &md.uuid,
        meta: (!md.meta.is_empty()).then_some(&md.meta),
        admin_pass: md.admin_pass.as_deref().filter(|_| with_admin_pass),
        public_keys: (!md.public_keys.is_empty()).then_some(KeyMap(&md.public_keys)),
        keys: (!md.public_keys.is_empty()).then_some(&md.public_keys[..]),
        hostname: &md.hostname,
        name: &md.name,
        launch_index: md.launch_index,
        availability_zone: &md.availability_zone,
        random_seed,
        project_id: has(version, LIBERTY).then_some(&md.project_id[..]),
        devices: has(version, NEWTON_ONE).then_some([]),
        dedicated_cpus: has(version, VICTORIA).then_some([]),
    };
    serde_json::to_vec(&doc).expect("plain data serializes")
}

/// `vendor_data.json`: the operator's static vendor data.
pub fn vendor_data(md: &InstanceMetadata) -> Vec<u8> {
    serde_json::to_vec(&md.static_vendor_data()).expect("JSON value serializes")
}

/// `vendor_data2.json`: each provider's data under its name; the static
/// provider (Nova's only default one, `StaticJSON`) is `static`.
pub fn vendor_data2(md: &InstanceMetadata) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "static": md.static_vendor_data() }))
        .expect("JSON value serializes")
}

// ---------------------------------------------------------------------------
// network_data.json (nova/virt/netutils.py get_network_metadata)

/// Nova's `LEGACY_EXPOSED_VIF_TYPES`: the VIF types shown as the link type;
/// any other is `phy`.
const EXPOSED_VIF_TYPES: [&str; 8] = [
    "bridge",
    "dvs",
    "hw_veb",
    "hyperv",
    "ovs",
    "tap",
    "vhostuser",
    "vif",
];

/// Linux's interface name limit, which Nova's `devname` respects.
const NIC_NAME_LEN: usize = 14;

#[derive(Serialize)]
struct NetworkData {
    links: Vec<Link>,
    networks: Vec<Network>,
    services: Vec<Service>,
}

#[derive(Serialize)]
struct Link {
    id: String,
    vif_id: String,
    #[serde(rename = "type")]
    link_type: String,
    mtu: Option<u32>,
    ethernet_mac_address: String,
}

#[derive(Serialize)]
struct Network {
    id: String,
    #[serde(rename = "type")]
    network_type: String,
    link: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netmask: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    routes: Option<Vec<Route>>,
    network_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<Vec<Service>>,
}

#[derive(Serialize)]
struct Route {
    network: String,
    netmask: String,
    gateway: String,
}

#[derive(Serialize, PartialEq, Clone)]
struct Service {
    #[serde(rename = "type")]
    service_type: &'static str,
    address: String,
}

/// A CIDR's network address and netmask, as Python's
/// `str(IPNetwork(cidr).network)` and `str(….netmask)` print them.
fn network_and_mask(cidr: &str) -> Option<(IpAddr, IpAddr)> {
    let (addr, prefix) = cidr.split_once('/')?;
    let addr: IpAddr = addr.trim().parse().ok()?;
    let prefix: u32 = prefix.trim().parse().ok()?;
    match addr {
        IpAddr::V4(a) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            let net = Ipv4Addr::from(u32::from(a) & mask);
            Some((net.into(), Ipv4Addr::from(mask).into()))
        }
        IpAddr::V6(a) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            let net = Ipv6Addr::from(u128::from(a) & mask);
            Some((net.into(), Ipv6Addr::from(mask).into()))
        }
        _ => None,
    }
}

fn dns_services(ip: &FixedIp) -> Vec<Service> {
    ip.dns_nameservers
        .iter()
        .map(|address| Service {
            service_type: "dns",
            address: address.clone(),
        })
        .collect()
}

/// Nova's `_get_link_mtu`: no MTU on the link when a subnet of the port is
/// served by DHCP (DHCP tells the guest), else the network's.
fn link_mtu(vif: &NetworkInterface) -> Option<u32> {
    if vif.fixed_ips.iter().any(|ip| ip.enable_dhcp) {
        None
    } else {
        vif.mtu
    }
}

fn eth_link(vif: &NetworkInterface, index: usize) -> Link {
    let id = if vif.port_id.is_empty() {
        format!("interface{index}")
    } else {
        format!("tap{}", vif.port_id)
            .chars()
            .take(NIC_NAME_LEN)
            .collect()
    };
    let link_type = if EXPOSED_VIF_TYPES.contains(&vif.vif_type.as_str()) {
        vif.vif_type.clone()
    } else {
        "phy".to_owned()
    };
    Link {
        id,
        vif_id: vif.port_id.clone(),
        link_type,
        mtu: link_mtu(vif),
        ethernet_mac_address: vif.mac_address.clone(),
    }
}

/// Nova's `_get_nets` for the first address of one subnet.
fn network(vif: &NetworkInterface, ip: &FixedIp, version: u8, index: usize, link: &str) -> Network {
    let id = format!("network{index}");
    let mode = if version == 6 {
        ip.ipv6_address_mode.as_deref().filter(|m| !m.is_empty())
    } else {
        None
    };
    let suffix = match mode {
        Some(mode) => format!("_{mode}"),
        // DHCP (v4 or stateful v6 without an address mode): the guest asks
        // for everything.
        None if ip.enable_dhcp => {
            return Network {
                id,
                network_type: format!("ipv{version}_dhcp"),
                link: link.to_owned(),
                ip_address: None,
                netmask: None,
                routes: None,
                network_id: vif.network_id.clone(),
                services: None,
            }
        }
        None => String::new(),
    };
    let netmask = network_and_mask(&ip.cidr).map(|(_, mask)| mask.to_string());
    let mut routes = Vec::new();
    if let Some(gateway) = ip.gateway.as_deref().filter(|g| !g.is_empty()) {
        let any = if version == 4 { "0.0.0.0" } else { "::" };
        routes.push(Route {
            network: any.to_owned(),
            netmask: any.to_owned(),
            gateway: gateway.to_owned(),
        });
    }
    for (destination, nexthop) in &ip.host_routes {
        match network_and_mask(destination) {
            Some((net, mask)) => routes.push(Route {
                network: net.to_string(),
                netmask: mask.to_string(),
                gateway: nexthop.clone(),
            }),
            None => tracing::warn!(%destination, "skipping a host route with a bad CIDR"),
        }
    }
    Network {
        id,
        network_type: format!("ipv{version}{suffix}"),
        link: link.to_owned(),
        ip_address: Some(ip.address.clone()),
        netmask,
        routes: Some(routes),
        network_id: vif.network_id.clone(),
        services: Some(dns_services(ip)),
    }
}

/// `network_data.json`: a link per interface with addresses, an IPv4 and an
/// IPv6 network per interface (its first address of each family, as Nova
/// uses only the first subnet of each), and the DNS servers. An instance
/// without interfaces gets `{}`, as in Nova.
pub fn network_data(md: &InstanceMetadata) -> Vec<u8> {
    if md.interfaces.is_empty() {
        return b"{}".to_vec();
    }
    let mut doc = NetworkData {
        links: Vec::new(),
        networks: Vec::new(),
        services: Vec::new(),
    };
    let mut interface_index = 0;
    for vif in &md.interfaces {
        if vif.fixed_ips.is_empty() {
            continue;
        }
        let link = eth_link(vif, interface_index);
        interface_index += 1;
        let link_id = link.id.clone();
        doc.links.push(link);
        for version in [4u8, 6] {
            let Some(ip) = vif.fixed_ips.iter().find(|ip| ip.version == version) else {
                continue;
            };
            let index = doc.networks.len();
            doc.networks
                .push(network(vif, ip, version, index, &link_id));
            for service in dns_services(ip) {
                if !doc.services.contains(&service) {
                    doc.services.push(service);
                }
            }
        }
    }
    serde_json::to_vec(&doc).expect("plain data serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::two_port_instance;
    use serde_json::{json, Value};

    fn parse(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn listing_grows_with_the_version() {
        let mut md = two_port_instance();
        let v = |s| version_index(s).unwrap();
        assert_eq!(listing(&md, v(FOLSOM)), ["meta_data.json", "user_data"]);
        assert_eq!(
            listing(&md, v(GRIZZLY)),
            ["meta_data.json", "user_data", "password"]
        );
        assert_eq!(
            listing(&md, v(LIBERTY)),
            [
                "meta_data.json",
                "user_data",
                "password",
                "vendor_data.json",
                "network_data.json"
            ]
        );
        assert_eq!(
            listing(&md, v("latest")),
            [
                "meta_data.json",
                "user_data",
                "password",
                "vendor_data.json",
                "network_data.json",
                "vendor_data2.json"
            ]
        );
        md.user_data_b64 = None;
        assert_eq!(listing(&md, v(FOLSOM)), ["meta_data.json"]);
        assert_eq!(version_index("2012-08-11"), None);
        assert_eq!(versions().last(), Some(&"latest"));
        assert_eq!(versions().len(), 10);
    }

    #[test]
    fn meta_data_keys_per_version() {
        let md = two_port_instance();
        let keys = |version: &str| -> Vec<String> {
            let doc = parse(meta_data(&md, version_index(version).unwrap(), false));
            doc.as_object().unwrap().keys().cloned().collect()
        };
        let mut folsom = keys(FOLSOM);
        folsom.sort();
        assert_eq!(
            folsom,
            [
                "availability_zone",
                "hostname",
                "keys",
                "launch_index",
                "meta",
                "name",
                "public_keys",
                "uuid"
            ]
        );
        let mut latest = keys("latest");
        latest.sort();
        assert_eq!(
            latest,
            [
                "availability_zone",
                "dedicated_cpus",
                "devices",
                "hostname",
                "keys",
                "launch_index",
                "meta",
                "name",
                "project_id",
                "public_keys",
                "random_seed",
                "uuid"
            ]
        );
        let mut liberty = keys(LIBERTY);
        liberty.sort();
        assert!(liberty.contains(&"project_id".to_owned()));
        assert!(!liberty.contains(&"devices".to_owned()));

        let doc = parse(meta_data(&md, version_index("latest").unwrap(), false));
        assert_eq!(doc["uuid"], md.uuid);
        assert_eq!(doc["meta"], json!({"role": "web"}));
        assert_eq!(
            doc["public_keys"],
            json!({"mykey": "ssh-ed25519 AAAA mykey"})
        );
        assert_eq!(
            doc["keys"],
            json!([{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAA mykey"}])
        );
        assert_eq!(doc["devices"], json!([]));
        assert_eq!(doc["dedicated_cpus"], json!([]));
        use base64::Engine as _;
        let seed = base64::engine::general_purpose::STANDARD
            .decode(doc["random_seed"].as_str().unwrap())
            .unwrap();
        assert_eq!(seed.len(), RANDOM_SEED_BYTES);
        // Nova's key order.
        let text = String::from_utf8(meta_data(&md, 0, false)).unwrap();
        assert!(text.starts_with(r#"{"uuid":"#), "{text}");
    }

    #[test]
    fn admin_pass_only_when_asked_and_empty_fields_left_out() {
        let mut md = two_port_instance();
        md.admin_pass = Some("s3cret".into());
        let doc = parse(meta_data(&md, 0, false));
        assert!(doc.get("admin_pass").is_none());
        let doc = parse(meta_data(&md, 0, true));
        assert_eq!(doc["admin_pass"], "s3cret");
        md.meta.clear();
        md.public_keys.clear();
        let doc = parse(meta_data(&md, 0, false));
        assert!(doc.get("meta").is_none());
        assert!(doc.get("public_keys").is_none());
        assert!(doc.get("keys").is_none());
    }

    #[test]
    fn vendor_data_documents() {
        let mut md = two_port_instance();
        assert_eq!(parse(vendor_data(&md)), json!({}));
        assert_eq!(parse(vendor_data2(&md)), json!({"static": {}}));
        md.vendor_data = json!({"cloud": "ferrostack"});
        assert_eq!(parse(vendor_data(&md)), json!({"cloud": "ferrostack"}));
        assert_eq!(
            parse(vendor_data2(&md)),
            json!({"static": {"cloud": "ferrostack"}})
        );
    }

    #[test]
    fn network_data_for_dhcp_v4_and_slaac_v6() {
        let md = two_port_instance();
        let doc = parse(network_data(&md));
        assert_eq!(
            doc,
            json!({
                "links": [
                    {
                        "id": "tap11111111-22",
                        "vif_id": "11111111-2222-3333-4444-555555555555",
                        "type": "bridge",
                        "mtu": null,
                        "ethernet_mac_address": "fa:16:3e:00:00:01"
                    },
                    {
                        "id": "tapaaaaaaaa-bb",
                        "vif_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                        "type": "phy",
                        "mtu": null,
                        "ethernet_mac_address": "fa:16:3e:00:00:02"
                    }
                ],
                "networks": [
                    {
                        "id": "network0",
                        "type": "ipv4_dhcp",
                        "link": "tap11111111-22",
                        "network_id": "net-a"
                    },
                    {
                        "id": "network1",
                        "type": "ipv6_slaac",
                        "link": "tapaaaaaaaa-bb",
                        "ip_address": "fd00:1::f816:3eff:fe00:2",
                        "netmask": "ffff:ffff:ffff:ffff::",
                        "routes": [
                            {"network": "::", "netmask": "::", "gateway": "fd00:1::1"},
                            {"network": "fd00:2::", "netmask": "ffff:ffff:ffff:ffff::", "gateway": "fd00:1::fe"}
                        ],
                        "network_id": "net-b",
                        "services": [{"type": "dns", "address": "fd00:1::53"}]
                    }
                ],
                "services": [
                    {"type": "dns", "address": "10.0.0.53"},
                    {"type": "dns", "address": "fd00:1::53"}
                ]
            })
        );
        let text = String::from_utf8(network_data(&md)).unwrap();
        assert!(text.starts_with(r#"{"links":[{"id":"tap11111111-22","vif_id""#));
    }

    #[test]
    fn network_data_static_v4_and_edge_cases() {
        let mut md = two_port_instance();
        md.interfaces.truncate(1);
        let ip = &mut md.interfaces[0].fixed_ips[0];
        ip.enable_dhcp = false;
        ip.host_routes = vec![("192.168.7.9/16".into(), "10.0.0.254".into())];
        let doc = parse(network_data(&md));
        assert_eq!(doc["links"][0]["mtu"], 1500);
        assert_eq!(
            doc["networks"][0],
            json!({
                "id": "network0",
                "type": "ipv4",
                "link": "tap11111111-22",
                "ip_address": "10.0.0.5",
                "netmask": "255.255.255.0",
                "routes": [
                    {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                    {"network": "192.168.0.0", "netmask": "255.255.0.0", "gateway": "10.0.0.254"}
                ],
                "network_id": "net-a",
                "services": [{"type": "dns", "address": "10.0.0.53"}]
            })
        );
        // No gateway: no default route.
        md.interfaces[0].fixed_ips[0].gateway = None;
        md.interfaces[0].fixed_ips[0].host_routes.clear();
        let doc = parse(network_data(&md));
        assert_eq!(doc["networks"][0]["routes"], json!([]));
        // A port without addresses has no link; no ports at all is `{}`.
        md.interfaces[0].fixed_ips.clear();
        assert_eq!(
            parse(network_data(&md)),
            json!({"links": [], "networks": [], "services": []})
        );
        md.interfaces.clear();
        assert_eq!(parse(network_data(&md)), json!({}));
    }

    #[test]
    fn cidr_masks() {
        let nm = |c| network_and_mask(c).map(|(n, m)| (n.to_string(), m.to_string()));
        assert_eq!(
            nm("10.1.2.3/8"),
            Some(("10.0.0.0".into(), "255.0.0.0".into()))
        );
        assert_eq!(nm("0.0.0.0/0"), Some(("0.0.0.0".into(), "0.0.0.0".into())));
        assert_eq!(
            nm("10.0.0.1/32"),
            Some(("10.0.0.1".into(), "255.255.255.255".into()))
        );
        assert_eq!(nm("::/0"), Some(("::".into(), "::".into())));
        assert_eq!(nm("10.0.0.0/33"), None);
        assert_eq!(nm("10.0.0.0"), None);
        assert_eq!(nm("x/8"), None);
    }
}
