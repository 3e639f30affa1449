//! The L2 agent: plugs the interfaces of ports bound to this host into their
//! network's bridge, whoever created the interface (the compute agent for a
//! VM's tap, the DHCP and L3 agents for theirs, a test for a veth), reports
//! the ports' status, and keeps the security-group firewall in step. The
//! wiring itself is behind [`L2Backend`] so that another data plane (Open
//! vSwitch) can be added beside the Linux bridge one.

use crate::firewall;
use crate::host::{device_name, CmdResult, Host};
use crate::runner::Reconciler;
use crate::{Plugin, Settings};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A network as the data plane needs it.
#[derive(Clone, Debug)]
pub struct Segment {
    pub network_id: String,
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
    pub mtu: i64,
}

impl Segment {
    fn from_json(v: &Value) -> Segment {
        Segment {
            network_id: v["id"].as_str().unwrap_or_default().to_owned(),
            network_type: v["network_type"].as_str().unwrap_or("local").to_owned(),
            physical_network: v["physical_network"].as_str().map(str::to_owned),
            segmentation_id: v["segmentation_id"].as_i64(),
            mtu: v["mtu"].as_i64().unwrap_or(1500),
        }
    }
}

#[async_trait::async_trait]
pub trait L2Backend: Send + Sync {
    /// Make the network's bridge and uplink exist; returns the bridge name.
    async fn ensure_network(&self, seg: &Segment, peers: &[String]) -> CmdResult<String>;
    /// Attach an interface to a bridge, up or down.
    async fn plug(&self, bridge: &str, device: &str, up: bool, mtu: i64) -> CmdResult<()>;
    /// Remove the bridges (and uplinks) of networks not in `keep`.
    async fn remove_unused(&self, keep: &HashSet<String>) -> CmdResult<()>;
}

/// Linux bridges: one `brq<network>` per network with a `vxlan-<vni>`
/// device, a VLAN sub-interface or the mapped interface as uplink; flat
/// networks with a `bridge_mappings` entry use that bridge as it is.
pub struct LinuxBridge {
    host: Host,
    local_ip: String,
    interface_mappings: BTreeMap<String, String>,
    bridge_mappings: BTreeMap<String, String>,
}

/// Host devices the L2 agent makes and may delete: `brq…` bridges and
/// `vxlan-…` devices (by name and kind, so an operator's look-alike stays).
pub fn is_agent_device(name: &str, link: &Value) -> bool {
    let kind = link["linkinfo"]["info_kind"].as_str().unwrap_or_default();
    (name.starts_with("brq") && kind == "bridge") || (name.starts_with("vxlan-") && kind == "vxlan")
}

pub fn bridge_name(network_id: &str) -> String {
    device_name("brq", network_id)
}

impl LinuxBridge {
    pub fn new(settings: &Settings) -> LinuxBridge {
        LinuxBridge {
            host: settings.host(),
            local_ip: settings.local_ip.clone(),
            interface_mappings: settings.interface_mappings.clone(),
            bridge_mappings: settings.bridge_mappings.clone(),
        }
    }

    async fn ensure_bridge(&self, name: &str, mtu: i64) -> CmdResult<()> {
        let links = self.host.links(None).await;
        if !links.contains_key(name) {
            self.host
                .ip(None, &["link", "add", name, "type", "bridge"])
                .await?;
            // Instances' MACs must be usable at once, as on a switch.
            self.host
                .ip(
                    None,
                    &["link", "set", name, "type", "bridge", "forward_delay", "0"],
                )
                .await?;
        }
        self.host
            .ip(None, &["link", "set", name, "mtu", &mtu.to_string(), "up"])
            .await?;
        Ok(())
    }

    async fn ensure_vxlan(
        &self,
        bridge: &str,
        vni: i64,
        mtu: i64,
        peers: &[String],
    ) -> CmdResult<()> {
        let dev = format!("vxlan-{vni}");
        let links = self.host.links(None).await;
        if !links.contains_key(&dev) {
            let vni_s = vni.to_string();
            let mut args = vec![
                "link", "add", &dev, "type", "vxlan", "id", &vni_s, "dstport", "4789",
            ];
            if !self.local_ip.is_empty() {
                args.extend(["local", self.local_ip.as_str()]);
            }
            self.host.ip(None, &args).await?;
        }
        self.plug(bridge, &dev, true, mtu).await?;
        // Unknown destinations flood to every other host's tunnel endpoint.
        let fdb = self
            .host
            .run("bridge", &["fdb", "show", "dev", &dev])
            .await
            .unwrap_or_default();
        let have: HashSet<String> = fdb
            .lines()
            .filter(|l| l.starts_with("00:00:00:00:00:00"))
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                it.find(|w| *w == "dst")?;
                it.next().map(str::to_owned)
            })
            .collect();
        for p in peers.iter().filter(|p| !have.contains(*p)) {
            self.host
                .run(
                    "bridge",
                    &["fdb", "append", "00:00:00:00:00:00", "dev", &dev, "dst", p],
                )
                .await?;
        }
        for p in have.iter().filter(|h| !peers.contains(h)) {
            self.host
                .run(
                    "bridge",
                    &["fdb", "del", "00:00:00:00:00:00", "dev", &dev, "dst", p],
                )
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl L2Backend for LinuxBridge {
    async fn ensure_network(&self, seg: &Segment, peers: &[String]) -> CmdResult<String> {
        let physnet = seg.physical_network.clone().unwrap_or_default();
        if seg.network_type == "flat" {
            if let Some(existing) = self.bridge_mappings.get(&physnet) {
                return Ok(existing.clone());
            }
        }
        let bridge = bridge_name(&seg.network_id);
        self.ensure_bridge(&bridge, seg.mtu).await?;
        match seg.network_type.as_str() {
            "vxlan" | "gre" | "geneve" => {
                let vni = seg.segmentation_id.unwrap_or(0);
                self.ensure_vxlan(&bridge, vni, seg.mtu, peers).await?;
            }
            "flat" => {
                if let Some(iface) = self.interface_mappings.get(&physnet) {
                    self.plug(&bridge, iface, true, seg.mtu).await?;
                }
            }
            "vlan" => {
                if let (Some(iface), Some(vid)) =
                    (self.interface_mappings.get(&physnet), seg.segmentation_id)
                {
                    let sub = format!("{iface}.{vid}");
                    if !self.host.links(None).await.contains_key(&sub) {
                        let vid = vid.to_string();
                        self.host
                            .ip(
                                None,
                                &[
                                    "link", "add", "link", iface, "name", &sub, "type", "vlan",
                                    "id", &vid,
                                ],
                            )
                            .await?;
                    }
                    self.plug(&bridge, &sub, true, seg.mtu).await?;
                }
            }
            _ => {}
        }
        Ok(bridge)
    }

    async fn plug(&self, bridge: &str, device: &str, up: bool, mtu: i64) -> CmdResult<()> {
        let links = self.host.links(None).await;
        let Some(link) = links.get(device) else {
            return Ok(());
        };
        if link["master"].as_str() != Some(bridge) {
            self.host
                .ip(None, &["link", "set", device, "master", bridge])
                .await?;
        }
        let state = if up { "up" } else { "down" };
        self.host
            .ip(
                None,
                &["link", "set", device, "mtu", &mtu.to_string(), state],
            )
            .await?;
        Ok(())
    }

    async fn remove_unused(&self, keep: &HashSet<String>) -> CmdResult<()> {
        let links = self.host.links(None).await;
        for (name, link) in &links {
            if !is_agent_device(name, link) || keep.contains(name) {
                continue;
            }
            // A VXLAN device stays while its bridge does.
            if name.starts_with("vxlan-")
                && link["master"].as_str().is_some_and(|m| keep.contains(m))
            {
                continue;
            }
            self.host.ip(None, &["link", "del", name]).await?;
        }
        Ok(())
    }
}

pub struct L2Agent {
    settings: Settings,
    plugin: Plugin,
    host: Host,
    backend: Box<dyn L2Backend>,
    firewall: firewall::Firewall,
}

impl L2Agent {
    pub fn new(settings: Settings, plugin: Plugin) -> L2Agent {
        L2Agent {
            host: settings.host(),
            backend: Box::new(LinuxBridge::new(&settings)),
            firewall: firewall::Firewall::new(settings.host()),
            settings,
            plugin,
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for L2Agent {
    fn identity(&self) -> (&'static str, &'static str, &'static str) {
        ("Linux bridge agent", "neutron-linuxbridge-agent", "N/A")
    }

    fn initial_configurations(&self) -> Value {
        self.configurations(0)
    }

    fn watches_devices(&self) -> bool {
        true
    }

    fn cares(&self, event: &str) -> bool {
        ["port.", "network.", "security_group", "agent."]
            .iter()
            .any(|p| event.starts_with(p))
    }

    async fn sync(&mut self) -> Result<Value, String> {
        let state = self.plugin.state("l2_state").await?;
        let links = self.host.links(None).await;
        let peers: Vec<String> = state["tunnel_peers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        let mut bridges: HashMap<String, String> = HashMap::new();
        let mut keep = HashSet::new();
        let mut plugged = Vec::new();
        let mut errors = Vec::new();
        for port in state["ports"].as_array().into_iter().flatten() {
            let id = port["id"].as_str().unwrap_or_default();
            let tap = device_name("tap", id);
            let net_id = port["network_id"].as_str().unwrap_or_default();
            let want_up = port["admin_state_up"] != false
                && state["networks"][net_id]["admin_state_up"] != false;
            let mut status = "DOWN";
            if links.contains_key(&tap) {
                let seg = Segment::from_json(&state["networks"][net_id]);
                let bridge = match bridges.get(net_id) {
                    Some(b) => Ok(b.clone()),
                    None => self.backend.ensure_network(&seg, &peers).await,
                };
                match bridge {
                    Ok(bridge) => {
                        bridges.insert(net_id.to_owned(), bridge.clone());
                        keep.insert(bridge.clone());
                        match self.backend.plug(&bridge, &tap, want_up, seg.mtu).await {
                            Ok(()) => {
                                if want_up {
                                    status = "ACTIVE";
                                }
                                plugged.push(port.clone());
                            }
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if port["status"] != status {
                // A port deleted since the state was read is not an error;
                // anything else is retried by the next pass.
                if let Err(e) = self.plugin.port_status(id, status).await {
                    tracing::debug!(port = id, error = %e, "status not recorded");
                }
            }
        }
        self.backend
            .remove_unused(&keep)
            .await
            .map_err(|e| e.to_string())?;
        // Every bridge the instances hang off, for the conntrack zones.
        let zones: Vec<String> = keep.iter().cloned().collect();
        self.firewall
            .apply(&plugged, &state, &zones)
            .await
            .map_err(|e| e.to_string())?;
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(self.configurations(plugged.len()))
    }
}

impl L2Agent {
    fn configurations(&self, devices: usize) -> Value {
        json!({
            "devices": devices, "tunneling_ip": self.settings.local_ip,
            "tunnel_types": ["vxlan"], "interface_mappings": self.settings.interface_mappings,
            "bridge_mappings": self.settings.bridge_mappings, "l2_population": false,
        })
    }
}
