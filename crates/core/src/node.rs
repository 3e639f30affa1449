//! `[node]`: one node of a multi-node cloud in one short section. Each fact
//! is stated once — the database URL (a template over the services), the
//! bus, this host's addresses and bridges, the shared secrets, where the
//! controller is — and [`expand`] fills in the per-service options it
//! implies before the configuration is read. An option stated both in
//! `[node]` and in its own section is refused, naming both; a service's
//! own `database_url` wins over the template.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The services with a database of their own (each `[<service>]
/// database_url`), in the order `{service}` is filled in. The object store
/// is not one of them yet: it keeps its listings in SQLite until its
/// byte-ordered names are settled on MariaDB and PostgreSQL (ADR 0010).
pub const DATABASE_SERVICES: [&str; 6] = [
    "identity",
    "image",
    "network",
    "compute",
    "volume",
    "telemetry",
];

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// What this node runs: seed roles (`controller`, `network`,
    /// `compute`) and/or services (`identity`, …, `compute-agent`,
    /// `l2-agent`, `dhcp-agent`, `l3-agent`), as a list or comma-separated.
    #[serde(deserialize_with = "list_or_csv")]
    pub roles: Vec<String>,
    /// This host's name as services and agents report it (`[common] host`).
    pub host: String,
    /// The controller's management address: identity, image, networking,
    /// block storage and metadata URLs of agents and remote services.
    /// Empty on a controller means its own `management_ip`.
    pub controller: String,
    /// This host's address on the management network (10.10.10.x): APIs
    /// listen there; consoles and volume exports are reached there.
    pub management_ip: String,
    /// This host's tunnel endpoint on the VM data network (10.20.20.x).
    pub tunnel_ip: String,
    /// This host's address on the external network (192.168.100.x): a
    /// controller publishes its APIs there (and listens on every address).
    pub external_ip: String,
    /// `physnet:bridge,…` (the network node's `physnet1:br-ex`).
    pub bridge_mappings: String,
    /// `physnet:interface,…`.
    pub physical_interface_mappings: String,
    /// Every service's database: a URL with `{service}` standing for the
    /// service (`mysql://ferrostack:pw@10.10.10.51/ferrostack_{service}`).
    pub database_url: String,
    /// The message bus (`amqp://user:pass@10.10.10.51:5672/%2f`).
    pub bus_url: String,
    /// The service users' password (the seed's SERVICE_PASSWORD).
    pub service_password: String,
    /// The metadata proxy's signing secret, shared by network nodes and
    /// the controller's metadata API.
    pub metadata_secret: String,
    /// The Fernet key repository, the same keys on every controller.
    pub fernet_keys: String,
    /// Which `section.key` options were filled in from which `[node]`
    /// field (for error messages); not read from the file.
    #[serde(skip)]
    pub derived: BTreeMap<String, String>,
}

fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Roles {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Roles::deserialize(d)? {
        Roles::List(l) => l,
        Roles::Csv(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

impl NodeConfig {
    pub fn is_set(&self) -> bool {
        !self.roles.is_empty()
            || !self.controller.is_empty()
            || !self.management_ip.is_empty()
            || !self.database_url.is_empty()
            || !self.bus_url.is_empty()
    }
}

fn table<'a>(doc: &'a toml::Table, section: &str) -> Option<&'a toml::Table> {
    doc.get(section).and_then(toml::Value::as_table)
}

fn has(doc: &toml::Table, section: &str, key: &str) -> bool {
    table(doc, section).is_some_and(|t| t.contains_key(key))
}

fn port(doc: &toml::Table, env: &toml::Table, section: &str, key: &str, default: u16) -> u16 {
    [env, doc]
        .into_iter()
        .filter_map(|d| table(d, section)?.get(key)?.as_integer())
        .next()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(default)
}

fn ip(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.parse::<std::net::IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!("[node] {field}: '{value}' is not an IP address"))
    }
}

/// One option `[node]` implies.
struct Derived {
    section: &'static str,
    key: String,
    from: &'static str,
    value: toml::Value,
}

fn derive(node: &NodeConfig, doc: &toml::Table, env: &toml::Table) -> Vec<Derived> {
    let mut out = Vec::new();
    let mut put = |section: &'static str, key: &str, from: &'static str, value: &str| {
        if !value.is_empty() {
            out.push(Derived {
                section,
                key: key.to_owned(),
                from,
                value: toml::Value::String(value.to_owned()),
            });
        }
    };
    put("common", "host", "host", &node.host);
    let (bind, public) = match (node.management_ip.as_str(), node.external_ip.as_str()) {
        ("", "") => ("", ""),
        (m, "") => (m, m),
        (_, e) => ("0.0.0.0", e),
    };
    put("common", "bind_host", "management_ip", bind);
    put(
        "common",
        "public_host",
        if node.external_ip.is_empty() {
            "management_ip"
        } else {
            "external_ip"
        },
        public,
    );
    put("volume", "my_ip", "management_ip", &node.management_ip);
    put("bus", "url", "bus_url", &node.bus_url);
    put(
        "identity",
        "service_password",
        "service_password",
        &node.service_password,
    );
    put(
        "network_agent",
        "metadata_proxy_shared_secret",
        "metadata_secret",
        &node.metadata_secret,
    );
    put(
        "identity",
        "key_repository",
        "fernet_keys",
        &node.fernet_keys,
    );
    put("network_agent", "local_ip", "tunnel_ip", &node.tunnel_ip);
    put(
        "network_agent",
        "bridge_mappings",
        "bridge_mappings",
        &node.bridge_mappings,
    );
    put(
        "network_agent",
        "physical_interface_mappings",
        "physical_interface_mappings",
        &node.physical_interface_mappings,
    );
    let controller = if node.controller.is_empty() {
        node.management_ip.as_str()
    } else {
        node.controller.as_str()
    };
    if !controller.is_empty() {
        let url = |section, key, default| {
            format!(
                "http://{controller}:{}",
                port(doc, env, section, key, default)
            )
        };
        let auth = format!("{}/v3", url("identity", "public_port", 5000));
        put("service_auth", "auth_url", "controller", &auth);
        put(
            "compute",
            "image_url",
            "controller",
            &url("image", "port", 9292),
        );
        put(
            "compute",
            "network_url",
            "controller",
            &url("network", "port", 9696),
        );
        put(
            "compute",
            "volume_url",
            "controller",
            &url("volume", "port", 8776),
        );
        put(
            "network_agent",
            "metadata_url",
            "controller",
            &url("metadata", "port", 8775),
        );
    }
    out
}

/// Fill in what `doc`'s `[node]` (with the environment's `[node]` over it)
/// implies. Options the environment sets are left to it.
pub fn expand(
    doc: &mut toml::Table,
    env: &toml::Table,
) -> Result<BTreeMap<String, String>, String> {
    let mut node_table = table(doc, "node").cloned().unwrap_or_default();
    if let Some(e) = table(env, "node") {
        node_table.extend(e.clone());
    }
    let node: NodeConfig = toml::Value::Table(node_table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| format!("invalid configuration: [node] {}", e.message()))?;
    // The typed `roles` (a list) replaces a comma-separated string.
    node_table.insert(
        "roles".into(),
        toml::Value::Array(
            node.roles
                .iter()
                .cloned()
                .map(toml::Value::String)
                .collect(),
        ),
    );
    doc.insert("node".into(), toml::Value::Table(node_table));
    for (field, value) in [
        ("controller", &node.controller),
        ("management_ip", &node.management_ip),
        ("tunnel_ip", &node.tunnel_ip),
        ("external_ip", &node.external_ip),
    ] {
        ip(field, value)?;
    }
    let mut derived = BTreeMap::new();
    if !node.database_url.is_empty() {
        if !node.database_url.contains("{service}") {
            return Err(format!(
                "[node] database_url: '{}' has no {{service}}: each service needs its own database (e.g. …/ferrostack_{{service}})",
                crate::redact_url(&node.database_url)
            ));
        }
        for service in DATABASE_SERVICES {
            if has(doc, service, "database_url") || has(env, service, "database_url") {
                continue;
            }
            let url = node.database_url.replace("{service}", service);
            set(doc, service, "database_url", toml::Value::String(url));
            derived.insert(format!("{service}.database_url"), "database_url".into());
        }
    }
    for d in derive(&node, doc, env) {
        if has(env, d.section, &d.key) {
            continue;
        }
        if has(doc, d.section, &d.key) {
            return Err(format!(
                "[{}] {} and [node] {} both set it: state it once (in [node])",
                d.section, d.key, d.from
            ));
        }
        derived.insert(format!("{}.{}", d.section, d.key), d.from.to_owned());
        set(doc, d.section, &d.key, d.value);
    }
    Ok(derived)
}

fn set(doc: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    let t = doc
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = t {
        t.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_doc(
            text.parse().unwrap(),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    const COMPUTE: &str = r#"
[node]
roles = ["compute"]
host = "compute"
controller = "10.10.10.51"
management_ip = "10.10.10.53"
tunnel_ip = "10.20.20.53"
bus_url = "amqp://u:p@10.10.10.51:5672/%2f"
service_password = "s3cret"
metadata_secret = "m3ta"
"#;

    #[test]
    fn a_compute_node_states_each_thing_once() {
        let cfg = load(COMPUTE, &[]).unwrap();
        assert_eq!(cfg.node.roles, ["compute"]);
        assert_eq!(cfg.common.host, "compute");
        assert_eq!(cfg.common.bind_host, "10.10.10.53");
        assert_eq!(cfg.common.public_host, "10.10.10.53");
        assert_eq!(cfg.bus.url, "amqp://u:p@10.10.10.51:5672/%2f");
        assert_eq!(cfg.network_agent.local_ip, "10.20.20.53");
        assert_eq!(cfg.identity.service_password, "s3cret");
        assert_eq!(cfg.network_agent.metadata_proxy_shared_secret, "m3ta");
        assert_eq!(cfg.service_auth_url(), "http://10.10.10.51:5000/v3");
        assert_eq!(cfg.compute.image_url, "http://10.10.10.51:9292");
        assert_eq!(cfg.network_agent.metadata_url, "http://10.10.10.51:8775");
        assert_eq!(cfg.origin("network_agent", "local_ip"), "[node] tunnel_ip");
        assert_eq!(cfg.origin("compute", "driver"), "[compute] driver");
    }

    #[test]
    fn a_controller_gets_a_database_per_service_and_listens_everywhere() {
        let cfg = load(
            r#"
[node]
roles = "controller"
management_ip = "10.10.10.51"
external_ip = "192.168.100.51"
database_url = "mysql://fs:pw@10.10.10.51/ferrostack_{service}"
fernet_keys = "/etc/ferrostack/fernet-keys"

[image]
port = 9393
database_url = "postgresql://glance@db/glance"
"#,
            &[],
        )
        .unwrap();
        assert_eq!(cfg.node.roles, ["controller"]);
        assert_eq!(
            cfg.identity.database_url,
            "mysql://fs:pw@10.10.10.51/ferrostack_identity"
        );
        assert_eq!(
            cfg.telemetry.database_url,
            "mysql://fs:pw@10.10.10.51/ferrostack_telemetry"
        );
        // A service's own URL wins over the template.
        assert_eq!(cfg.image.database_url, "postgresql://glance@db/glance");
        assert_eq!(cfg.common.bind_host, "0.0.0.0");
        assert_eq!(cfg.common.public_host, "192.168.100.51");
        assert_eq!(cfg.compute.image_url, "http://10.10.10.51:9393");
        assert_eq!(cfg.identity.key_repository, "/etc/ferrostack/fernet-keys");
        assert_eq!(cfg.origin("compute", "database_url"), "[node] database_url");
    }

    #[test]
    fn a_fact_stated_twice_or_malformed_is_refused_naming_the_fields() {
        let twice = format!("{COMPUTE}\n[network_agent]\nlocal_ip = \"10.20.20.9\"\n");
        let e = load(&twice, &[]).unwrap_err();
        assert!(
            e.contains("[network_agent] local_ip") && e.contains("[node] tunnel_ip"),
            "{e}"
        );
        let e = load("[node]\ntunnel_ip = \"10.20.20\"\n", &[]).unwrap_err();
        assert!(e.contains("[node] tunnel_ip"), "{e}");
        let e = load("[node]\ndatabase_url = \"mysql://u:pw@h/one\"\n", &[]).unwrap_err();
        assert!(
            e.contains("[node] database_url") && !e.contains("pw"),
            "{e}"
        );
        let e = load("[node]\nrole = \"compute\"\n", &[]).unwrap_err();
        assert!(e.contains("role"), "{e}");
    }

    #[test]
    fn the_environment_overrides_node_fields_and_what_they_imply() {
        let cfg = load(
            COMPUTE,
            &[
                ("FERROSTACK__NODE__TUNNEL_IP", "10.20.20.54"),
                ("FERROSTACK__BUS__URL", "amqp://other/%2f"),
                ("FERROSTACK__NODE__ROLES", "l2-agent,compute-agent"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.network_agent.local_ip, "10.20.20.54");
        assert_eq!(cfg.bus.url, "amqp://other/%2f");
        assert_eq!(cfg.origin("bus", "url"), "[bus] url");
        assert_eq!(cfg.node.roles, ["l2-agent", "compute-agent"]);
    }
}
