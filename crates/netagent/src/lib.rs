//! The network agents of one host: they turn the networking API's resources
//! into Linux bridges, VXLAN devices, namespaces, dnsmasq processes and
//! nftables rules. Each agent reconciles: it asks the network service for
//! the whole desired state of its host, compares it with what the host
//! has, and changes only the difference — so a start after a crash is the
//! same code path as a routine resync, and nothing is left orphaned.

pub mod dhcp;
pub mod firewall;
pub mod host;
pub mod keepalived;
pub mod l2;
pub mod l3;
pub mod ledger;
pub mod metadata;
mod runner;

use ferrostack_bus::{RpcMessage, SharedBus};
use ferrostack_core::config::Config;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The network service's RPC topic (Neutron's `q-plugin`).
pub const PLUGIN_TOPIC: &str = "q-plugin";

/// One host's agent settings, validated when read.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host: String,
    pub host_netns: String,
    pub local_ip: String,
    pub interface_mappings: BTreeMap<String, String>,
    pub bridge_mappings: BTreeMap<String, String>,
    pub report_interval: Duration,
    pub resync_interval: Duration,
    pub metadata_url: String,
    pub metadata_secret: String,
    pub dnsmasq: String,
    pub lease_seconds: u64,
    pub state_dir: PathBuf,
    pub l2: bool,
    pub dhcp: bool,
    pub l3: bool,
}

fn mappings(field: &str, spec: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (physnet, dev) = item
            .split_once(':')
            .filter(|(p, d)| !p.is_empty() && !d.is_empty() && d.len() <= 15)
            .ok_or_else(|| {
                format!("network_agent.{field}: '{item}' is not physnet:device (device ≤ 15 characters)")
            })?;
        out.insert(physnet.to_owned(), dev.to_owned());
    }
    Ok(out)
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Result<Settings, String> {
        let a = &cfg.network_agent;
        let host = if a.host.is_empty() {
            cfg.common.host.clone()
        } else {
            a.host.clone()
        };
        if !a.local_ip.is_empty() && a.local_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "network_agent.local_ip: '{}' is not an IP address",
                a.local_ip
            ));
        }
        let mut l2 = false;
        let mut dhcp = false;
        let mut l3 = false;
        for name in a.agents.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "l2" => l2 = true,
                "dhcp" => dhcp = true,
                "l3" => l3 = true,
                other => {
                    return Err(format!(
                        "network_agent.agents: unknown agent '{other}' (l2, dhcp, l3)"
                    ))
                }
            }
        }
        let state_dir = if a.state_dir.is_empty() {
            cfg.common.data_dir.join("netagent").join(&host)
        } else {
            PathBuf::from(&a.state_dir)
        };
        Ok(Settings {
            host,
            host_netns: a.host_netns.clone(),
            local_ip: a.local_ip.clone(),
            interface_mappings: mappings(
                "physical_interface_mappings",
                &a.physical_interface_mappings,
            )?,
            bridge_mappings: mappings("bridge_mappings", &a.bridge_mappings)?,
            report_interval: Duration::from_secs(a.report_interval.max(1)),
            resync_interval: Duration::from_secs(a.resync_interval.max(1)),
            metadata_url: a.metadata_url.trim_end_matches('/').to_owned(),
            metadata_secret: a.metadata_proxy_shared_secret.clone(),
            dnsmasq: a.dnsmasq.clone(),
            lease_seconds: a.dhcp_lease_seconds,
            state_dir,
            l2,
            dhcp,
            l3,
        })
    }

    pub fn host(&self) -> host::Host {
        host::Host::new(&self.host_netns)
    }
}

/// Calls to the network service over the bus.
#[derive(Clone)]
pub struct Plugin {
    bus: SharedBus,
    host: String,
}

impl Plugin {
    pub fn new(bus: SharedBus, host: &str) -> Plugin {
        Plugin {
            bus,
            host: host.to_owned(),
        }
    }

    pub async fn call(&self, method: &str, args: Value) -> Result<Value, String> {
        self.bus
            .call(
                PLUGIN_TOPIC,
                RpcMessage {
                    method: method.into(),
                    args,
                },
                Duration::from_secs(30),
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// The desired state for this host (`l2_state`, `dhcp_state`, `l3_state`).
    pub async fn state(&self, method: &str) -> Result<Value, String> {
        self.call(method, json!({ "host": self.host })).await
    }

    pub async fn port_status(&self, port_id: &str, status: &str) -> Result<(), String> {
        self.call(
            "update_port_status",
            json!({"port_id": port_id, "status": status}),
        )
        .await
        .map(|_| ())
    }
}

/// The running agents of a host; dropping it does not stop them, `stop` does.
pub struct Agents {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Agents {
    /// Stop the agents as a crash would: what they built stays on the host
    /// (the next start reconciles it).
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Check that the host has the tools the agents drive.
pub fn check_tools(settings: &Settings) -> Result<(), String> {
    let mut need = vec!["ip", "bridge", "nft"];
    if settings.dhcp {
        need.push(settings.dnsmasq.as_str());
    }
    for tool in need {
        let found = if tool.contains('/') {
            std::path::Path::new(tool).exists()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        };
        if !found {
            return Err(format!(
                "'{tool}' is not installed (scripts/setup-host.sh installs it)"
            ));
        }
    }
    Ok(())
}

/// Remove everything the agents of this host built, as Neutron's
/// `neutron-netns-cleanup --force` does: dnsmasq and keepalived processes, the router and
/// DHCP namespaces in the ledgers, the host's bridges, VXLAN devices and
/// firewall tables. For taking a host (or a test's cloud) out of service;
/// the agents must be stopped. Returns what was removed.
pub async fn cleanup(settings: &Settings) -> Vec<String> {
    let host = settings.host();
    let mut removed = Vec::new();
    for ledger in ["dhcp-namespaces.json", "l3-namespaces.json"] {
        let mut ledger = ledger::Ledger::open(settings.state_dir.join(ledger));
        for ns in ledger.with_prefix("q") {
            if let Some(net) = ns.strip_prefix("qdhcp-") {
                dhcp::stop_dnsmasq(&settings.state_dir, net).await;
            }
            if let Some(router) = ns.strip_prefix("qrouter-") {
                keepalived::stop(&keepalived::RouterFiles::new(&settings.state_dir, router)).await;
            }
            if host::delete_namespace(&host, &ns).await.is_ok() {
                let _ = ledger.remove(&ns);
                removed.push(ns);
            }
        }
    }
    for (name, link) in host.links(None).await {
        if l2::is_agent_device(&name, &link) && host.ip(None, &["link", "del", &name]).await.is_ok()
        {
            removed.push(name);
        }
    }
    for table in ["bridge ferrostack_ports", "inet ferrostack_sg"] {
        let script = format!("table {table}\ndelete table {table}\n");
        if host.nft(None, &script).await.is_ok() {
            removed.push(format!("nftables {table}"));
        }
    }
    removed
}

/// Start the configured agents of one host.
pub async fn start(settings: Settings, bus: SharedBus) -> Result<Agents, String> {
    check_tools(&settings)?;
    std::fs::create_dir_all(&settings.state_dir)
        .map_err(|e| format!("{}: {e}", settings.state_dir.display()))?;
    let plugin = Plugin::new(bus.clone(), &settings.host);
    let mut tasks = Vec::new();
    if settings.l2 {
        let agent = l2::L2Agent::new(settings.clone(), plugin.clone());
        tasks.push(runner::spawn(agent, settings.clone(), plugin.clone(), bus.clone()).await?);
    }
    if settings.dhcp {
        let agent = dhcp::DhcpAgent::new(settings.clone(), plugin.clone());
        tasks.push(runner::spawn(agent, settings.clone(), plugin.clone(), bus.clone()).await?);
    }
    if settings.l3 {
        let agent = l3::L3Agent::new(settings.clone(), plugin.clone());
        tasks.push(runner::spawn(agent, settings.clone(), plugin.clone(), bus.clone()).await?);
    }
    Ok(Agents { tasks })
}

/// What [`check_host`] found wrong: the `[network_agent]` option and why.
#[derive(Debug)]
pub struct HostProblem {
    pub option: &'static str,
    pub message: String,
}

/// Check that this host is the one the settings describe: the tunnel
/// address is one of its addresses, every mapped bridge or interface
/// exists. Agents started on the wrong host would build tunnels nobody
/// reaches or wait for a bridge that never comes.
pub async fn check_host(settings: &Settings) -> Result<(), HostProblem> {
    let host = settings.host();
    if !settings.local_ip.is_empty() {
        let out = host
            .run("ip", &["-j", "addr", "show"])
            .await
            .map_err(|e| HostProblem {
                option: "local_ip",
                message: e.to_string(),
            })?;
        let links: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
        let ours = links
            .iter()
            .flat_map(|l| l["addr_info"].as_array().into_iter().flatten())
            .any(|a| a["local"].as_str() == Some(settings.local_ip.as_str()));
        if !ours {
            return Err(HostProblem {
                option: "local_ip",
                message: format!(
                    "{} is not an address of this host (ip addr shows no such address)",
                    settings.local_ip
                ),
            });
        }
    }
    for (option, map) in [
        ("bridge_mappings", &settings.bridge_mappings),
        ("physical_interface_mappings", &settings.interface_mappings),
    ] {
        for (physnet, dev) in map {
            if host.run("ip", &["link", "show", "dev", dev]).await.is_err() {
                return Err(HostProblem {
                    option,
                    message: format!("{physnet}:{dev}: this host has no interface '{dev}'"),
                });
            }
        }
    }
    Ok(())
}
