//! The EC2 format: `/<version>/meta-data/…` and `/<version>/user-data`, as
//! Nova renders it (`get_ec2_metadata`, `ec2_md_print` and
//! `find_path_in_tree` in `nova/api/metadata/base.py`).
//!
//! The `meta-data` tree is a JSON object: objects are directories, strings,
//! numbers and lists are leaves. A directory listing names its entries in
//! sorted order, sub-directories with a trailing `/` — except that a
//! directory with a `_name` entry is listed under that label instead
//! (`public-keys/` lists `0=mykey`, which clients read as "key 0, called
//! mykey, under `0/`").

use crate::InstanceMetadata;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The dated versions, oldest first; `latest` is the newest of them.
pub const VERSIONS: [&str; 9] = [
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
];

/// The label key of a directory (see the module documentation).
pub const LABEL: &str = "_name";

/// The root device when the instance names none.
pub const DEFAULT_ROOT_DEVICE: &str = "/dev/vda";

/// A requested version as its position in [`VERSIONS`]; `None` when unknown.
pub fn version_index(version: &str) -> Option<usize> {
    if version == "latest" {
        return Some(VERSIONS.len() - 1);
    }
    VERSIONS.iter().position(|v| *v == version)
}

fn has(index: usize, since: &str) -> bool {
    version_index(since).is_some_and(|s| index >= s)
}

/// `GET /`: the versions and `latest`.
pub fn versions() -> Vec<&'static str> {
    VERSIONS.iter().copied().chain(["latest"]).collect()
}

/// The first 32 bits of SHA-256 of `text`.
fn hash32(text: &str) -> u32 {
    let digest = Sha256::digest(text.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// `instance-id`: `i-%08x` of the number in Nova's instance name
/// (`instance-0000002a` → `i-0000002a`). Nova numbers EC2 ids through a
/// mapping table; the instance name carries the same kind of number. A
/// name without one falls back to a hash of the uuid, as for `ami-id`.
pub fn instance_id(md: &InstanceMetadata) -> String {
    let number = md
        .instance_name
        .rsplit('-')
        .next()
        .filter(|n| !n.is_empty() && n.len() <= 16)
        .and_then(|n| u64::from_str_radix(n, 16).ok())
        .unwrap_or_else(|| u64::from(hash32(&md.uuid)));
    format!("i-{number:08x}")
}

/// `ami-id`: `ami-%08x` of the first 32 bits of SHA-256 of the image's uuid.
/// Nova numbers images through a mapping table we do not keep; a hash is
/// stable across restarts and controllers, and the same image always gets
/// the same id. An instance without an image (booted from a volume) gets
/// `ami-00000000`.
pub fn ami_id(md: &InstanceMetadata) -> String {
    if md.image_id.is_empty() {
        return "ami-00000000".to_owned();
    }
    format!("ami-{:08x}", hash32(&md.image_id))
}

/// The first fixed IPv4 address of the instance, in port order.
pub fn first_fixed_ipv4(md: &InstanceMetadata) -> Option<&str> {
    md.interfaces
        .iter()
        .flat_map(|i| &i.fixed_ips)
        .find(|ip| ip.version == 4)
        .map(|ip| ip.address.as_str())
}

/// The `meta-data` tree of the version at `index`, with its directory
/// labels. `address` is where the request came from: Nova's `local-ipv4`
/// when the instance has no fixed IPv4 (`null` when unknown).
pub fn meta_data(md: &InstanceMetadata, index: usize, address: Option<&str>) -> Value {
    let root = md
        .root_device_name
        .as_deref()
        .unwrap_or(DEFAULT_ROOT_DEVICE);
    let mut tree = Map::new();
    let mut put = |key: &str, value: Value| {
        tree.insert(key.to_owned(), value);
    };
    put("ami-id", json!(ami_id(md)));
    put("ami-launch-index", json!(md.launch_index));
    put("ami-manifest-path", json!("FIXME"));
    put("instance-id", json!(instance_id(md)));
    put("hostname", json!(md.hostname));
    put("local-ipv4", json!(first_fixed_ipv4(md).or(address)));
    put("reservation-id", json!(md.reservation_id));
    put("security-groups", json!(md.security_groups));
    if !md.public_keys.is_empty() {
        let keys: Map<String, Value> = md
            .public_keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                (
                    i.to_string(),
                    json!({ LABEL: format!("{i}={}", key.name), "openssh-key": key.data }),
                )
            })
            .collect();
        put("public-keys", Value::Object(keys));
    }
    if has(index, "2007-01-19") {
        put("local-hostname", json!(md.hostname));
        put("public-hostname", json!(md.hostname));
        put(
            "public-ipv4",
            json!(md.floating_ips.first().map(String::as_str).unwrap_or("")),
        );
    }
    if has(index, "2007-08-29") {
        put("instance-type", json!(md.flavor_name));
    }
    if has(index, "2007-12-15") {
        put(
            "block-device-mapping",
            json!({ "ami": root.strip_prefix("/dev/").unwrap_or(root), "root": root }),
        );
    }
    if has(index, "2008-02-01") {
        put(
            "placement",
            json!({ "availability-zone": md.availability_zone }),
        );
    }
    if has(index, "2008-09-01") {
        put("instance-action", json!("none"));
    }
    Value::Object(tree)
}

/// The tree without directory labels: the config drive's `meta-data.json`.
pub fn strip_labels(value: &mut Value) {
    if let Value::Object(map) = value {
        map.remove(LABEL);
        for child in map.values_mut() {
            strip_labels(child);
        }
    }
}

/// The node at `path` (tokens below `meta-data`); `None` when there is
/// none. Labels are not nodes.
pub fn find<'a>(tree: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |node, token| {
        if *token == LABEL {
            return None;
        }
        node.as_object()?.get(*token)
    })
}

/// What `GET` of a node answers: a directory's listing, a list's items one
/// a line, a leaf's text.
pub fn render(node: &Value) -> String {
    match node {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| *k != LABEL).collect();
            keys.sort();
            keys.iter()
                .map(|key| match &map[*key] {
                    Value::Object(child) => match child.get(LABEL) {
                        Some(label) => leaf_text(label),
                        None => format!("{key}/"),
                    },
                    _ => (*key).clone(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        Value::Array(items) => items.iter().map(leaf_text).collect::<Vec<_>>().join("\n"),
        other => leaf_text(other),
    }
}

fn leaf_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::two_port_instance;

    fn get(tree: &Value, path: &str) -> Option<String> {
        let tokens: Vec<&str> = path.split('/').filter(|t| !t.is_empty()).collect();
        find(tree, &tokens).map(render)
    }

    #[test]
    fn ids() {
        let mut md = two_port_instance();
        assert_eq!(instance_id(&md), "i-0000002a");
        md.instance_name = "instance-1ff0000002a".into();
        assert_eq!(instance_id(&md), "i-1ff0000002a");
        md.instance_name = "guest".into();
        let hashed = instance_id(&md);
        assert_eq!(hashed.len(), 10);
        assert_eq!(hashed, instance_id(&md));
        assert_eq!(hashed, format!("i-{:08x}", hash32(&md.uuid)));

        let ami = ami_id(&md);
        assert!(ami.starts_with("ami-") && ami.len() == 12, "{ami}");
        // SHA-256("3f1e3b4c-0000-4000-8000-000000000001")[..4]
        let digest = Sha256::digest(md.image_id.as_bytes());
        assert_eq!(
            ami,
            format!(
                "ami-{:02x}{:02x}{:02x}{:02x}",
                digest[0], digest[1], digest[2], digest[3]
            )
        );
        md.image_id.clear();
        assert_eq!(ami_id(&md), "ami-00000000");
    }

    #[test]
    fn latest_tree_and_listings() {
        let md = two_port_instance();
        let tree = meta_data(&md, version_index("latest").unwrap(), None);
        assert_eq!(
            get(&tree, "").unwrap(),
            "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nhostname\n\
             instance-action\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\n\
             placement/\npublic-hostname\npublic-ipv4\npublic-keys/\nreservation-id\n\
             security-groups"
        );
        assert_eq!(get(&tree, "ami-launch-index").unwrap(), "0");
        assert_eq!(get(&tree, "ami-manifest-path").unwrap(), "FIXME");
        assert_eq!(get(&tree, "block-device-mapping").unwrap(), "ami\nroot");
        assert_eq!(get(&tree, "block-device-mapping/ami").unwrap(), "vda");
        assert_eq!(get(&tree, "block-device-mapping/root").unwrap(), "/dev/vda");
        assert_eq!(get(&tree, "hostname").unwrap(), "web-1");
        assert_eq!(get(&tree, "instance-action").unwrap(), "none");
        assert_eq!(get(&tree, "instance-id").unwrap(), "i-0000002a");
        assert_eq!(get(&tree, "instance-type").unwrap(), "m1.tiny");
        assert_eq!(get(&tree, "local-ipv4").unwrap(), "10.0.0.5");
        assert_eq!(get(&tree, "placement").unwrap(), "availability-zone");
        assert_eq!(get(&tree, "placement/availability-zone").unwrap(), "nova");
        assert_eq!(get(&tree, "public-ipv4").unwrap(), "172.24.4.10");
        assert_eq!(get(&tree, "public-keys").unwrap(), "0=mykey");
        assert_eq!(get(&tree, "public-keys/0").unwrap(), "openssh-key");
        assert_eq!(
            get(&tree, "public-keys/0/openssh-key").unwrap(),
            "ssh-ed25519 AAAA mykey"
        );
        assert_eq!(get(&tree, "public-keys/0/_name"), None);
        assert_eq!(get(&tree, "reservation-id").unwrap(), "r-abcd1234");
        assert_eq!(get(&tree, "security-groups").unwrap(), "default\nweb");
        assert_eq!(get(&tree, "security-groups/default"), None);
        assert_eq!(get(&tree, "hostname/x"), None);
        assert_eq!(get(&tree, "nothing"), None);
    }

    #[test]
    fn old_versions_have_less() {
        let mut md = two_port_instance();
        let tree = meta_data(&md, 0, None);
        assert_eq!(
            get(&tree, "").unwrap(),
            "ami-id\nami-launch-index\nami-manifest-path\nhostname\ninstance-id\n\
             local-ipv4\npublic-keys/\nreservation-id\nsecurity-groups"
        );
        let tree = meta_data(&md, version_index("2007-12-15").unwrap(), None);
        assert!(find(&tree, &["block-device-mapping"]).is_some());
        assert!(find(&tree, &["placement"]).is_none());

        // No fixed IPv4: the asking address; no floating IP: empty.
        md.interfaces.remove(0);
        md.floating_ips.clear();
        md.public_keys.clear();
        let tree = meta_data(&md, 8, Some("10.9.9.9"));
        assert_eq!(get(&tree, "local-ipv4").unwrap(), "10.9.9.9");
        assert_eq!(get(&tree, "public-ipv4").unwrap(), "");
        assert_eq!(get(&tree, "public-keys"), None);
        let tree = meta_data(&md, 8, None);
        assert_eq!(tree["local-ipv4"], Value::Null);
    }

    #[test]
    fn labels_are_stripped_for_the_drive() {
        let md = two_port_instance();
        let mut tree = meta_data(&md, 8, None);
        strip_labels(&mut tree);
        assert_eq!(
            tree["public-keys"],
            json!({"0": {"openssh-key": "ssh-ed25519 AAAA mykey"}})
        );
        assert_eq!(tree["ami-launch-index"], 0);
        assert_eq!(tree["security-groups"], json!(["default", "web"]));
    }
}
