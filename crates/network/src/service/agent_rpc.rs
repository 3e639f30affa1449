//! What the agents ask for: the desired state of one host, computed from the
//! documents (Neutron's `get_devices_details_list`, `get_active_networks_info`
//! and `sync_routers` folded into one answer per agent kind). The agents
//! reconcile their host against it, so an answer is always complete, never
//! a delta: a lost notification costs a little delay, never a wrong host.

use super::ha::is_ha;
use super::ports::PortSpec;
use super::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The device owner of the DHCP agent's port on a network.
pub const DHCP_OWNER: &str = "network:dhcp";

fn segment(net: &Value) -> Value {
    json!({
        "id": net["id"],
        "network_type": net["provider:network_type"],
        "physical_network": net["provider:physical_network"],
        "segmentation_id": net["provider:segmentation_id"],
        "mtu": net["mtu"],
        "admin_state_up": net["admin_state_up"],
    })
}

fn is_network_owned(port: &Value) -> bool {
    port["device_owner"]
        .as_str()
        .is_some_and(|o| o.starts_with("network:"))
}

/// `address/prefixlen` for each fixed IP, with its subnet's prefix length.
fn addresses(port: &Value, subnets: &HashMap<String, Value>) -> Vec<Value> {
    port["fixed_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let subnet = subnets.get(f["subnet_id"].as_str()?)?;
            let prefix = subnet["cidr"].as_str()?.split('/').nth(1)?;
            Some(json!({
                "ip_address": f["ip_address"],
                "cidr": format!("{}/{prefix}", f["ip_address"].as_str()?),
                "subnet_id": f["subnet_id"],
                "subnet_cidr": subnet["cidr"],
                "gateway_ip": subnet["gateway_ip"],
                "ip_version": subnet["ip_version"],
            }))
        })
        .collect()
}

impl NetworkService {
    pub(super) async fn l3_agent_id(&self, host: &str) -> Result<Option<String>> {
        self.agent_id("L3 agent", host).await
    }

    async fn agent_id(&self, agent_type: &str, host: &str) -> Result<Option<String>> {
        Ok(store::list(&self.db, Kind::Agent)
            .await?
            .into_iter()
            .find(|a| a["agent_type"] == agent_type && a["host"] == host)
            .and_then(|a| a["id"].as_str().map(str::to_owned)))
    }

    /// HA routers whose namespace is on `host` too: their ports are
    /// plugged there as well, bound or not (only the VRRP master answers).
    async fn ha_routers_on(&self, host: &str) -> Result<HashSet<String>> {
        let Some(agent_id) = self.l3_agent_id(host).await? else {
            return Ok(HashSet::new());
        };
        Ok(self
            .hosted_by(&agent_id, Kind::Router)
            .await?
            .into_iter()
            .filter(is_ha)
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect())
    }

    /// The ports an L2 agent on `host` wires: those bound to it, and the
    /// router ports of the HA routers it hosts (bound to the active one).
    async fn ports_on_host(&self, host: &str, ha_here: &HashSet<String>) -> Result<Vec<Value>> {
        let mut ports =
            store::list_by(&self.db, Kind::Port, store::LookupColumn::Host, host).await?;
        let mut seen: HashSet<String> = ports
            .iter()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect();
        for router in ha_here {
            for p in
                store::list_by(&self.db, Kind::Port, store::LookupColumn::Device, router).await?
            {
                if seen.insert(p["id"].as_str().unwrap_or_default().to_owned()) {
                    ports.push(p);
                }
            }
        }
        for p in store::ports_migrating_to(&self.db, host).await? {
            if seen.insert(p["id"].as_str().unwrap_or_default().to_owned()) {
                ports.push(p);
            }
        }
        Ok(ports)
    }

    /// The addresses of every port in each of `groups` (on any host), read
    /// a chunk of ports at a time.
    async fn group_members(
        &self,
        groups: &HashSet<String>,
    ) -> Result<BTreeMap<String, Vec<Value>>> {
        let mut members: BTreeMap<String, Vec<Value>> =
            groups.iter().map(|g| (g.clone(), Vec::new())).collect();
        if groups.is_empty() {
            return Ok(members);
        }
        let scan = store::Scan {
            kind: Kind::Port,
            order: store::Order::Created,
            descending: false,
            lookup: None,
            project_id: None,
            fixed_ip: None,
        };
        let mut after = None;
        loop {
            let chunk = scan.chunk(&self.db, after.as_ref(), 500).await?;
            let exhausted = chunk.len() < 500;
            for (position, p) in chunk {
                after = Some(position);
                for g in p["security_groups"].as_array().into_iter().flatten() {
                    if let Some(list) = g.as_str().and_then(|g| members.get_mut(g)) {
                        for f in p["fixed_ips"].as_array().into_iter().flatten() {
                            list.push(f["ip_address"].clone());
                        }
                        for pair in p["allowed_address_pairs"].as_array().into_iter().flatten() {
                            list.push(pair["ip_address"].clone());
                        }
                    }
                }
            }
            if exhausted {
                return Ok(members);
            }
        }
    }

    /// The L2 agent's view of `host`: the ports bound to it with their
    /// networks, security groups (with the addresses of remote-group
    /// members) and the tunnel endpoints of the other hosts.
    pub async fn l2_state(&self, host: &str) -> Result<Value> {
        let ha_here = self.ha_routers_on(host).await?;
        let ports = self.ports_on_host(host, &ha_here).await?;
        let networks: HashMap<String, Value> = store::list(&self.db, Kind::Network)
            .await?
            .into_iter()
            .filter_map(|n| Some((n["id"].as_str()?.to_owned(), n)))
            .collect();
        let subnets: HashMap<String, Value> = store::list(&self.db, Kind::Subnet)
            .await?
            .into_iter()
            .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s)))
            .collect();
        // The L3 agent wires no device for a router that is down, and the
        // L2 agent would mark its ports DOWN for the missing device; their
        // status stays as it is (tempest removes an interface of such a
        // router only once its port is ACTIVE, as it is on Neutron).
        let routers_down: HashSet<String> = store::list(&self.db, Kind::Router)
            .await?
            .into_iter()
            .filter(|r| r["admin_state_up"] == false)
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        let of_router_down = |p: &Value| {
            p["device_owner"]
                .as_str()
                .is_some_and(|o| o.starts_with("network:router_"))
                && p["device_id"]
                    .as_str()
                    .is_some_and(|d| routers_down.contains(d))
        };
        let on_host = |p: &Value| {
            p["binding:host_id"] == host
                || p["binding:profile"]["migrating_to"] == host
                || (p["device_owner"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("network:router_"))
                    && p["device_id"].as_str().is_some_and(|d| ha_here.contains(d)))
        };
        let mut wanted_groups = HashSet::new();
        let mut out_ports = Vec::new();
        let mut out_networks = BTreeMap::new();
        for p in ports.iter().filter(|p| on_host(p) && !of_router_down(p)) {
            let Some(net) = networks.get(p["network_id"].as_str().unwrap_or_default()) else {
                continue;
            };
            out_networks.insert(
                net["id"].as_str().unwrap_or_default().to_owned(),
                segment(net),
            );
            let filtered = p["port_security_enabled"] != false && !is_network_owned(p);
            if filtered {
                for g in p["security_groups"].as_array().into_iter().flatten() {
                    if let Some(g) = g.as_str() {
                        wanted_groups.insert(g.to_owned());
                    }
                }
            }
            out_ports.push(json!({
                "id": p["id"], "mac_address": p["mac_address"], "network_id": p["network_id"],
                "admin_state_up": p["admin_state_up"], "device_owner": p["device_owner"],
                "device_id": p["device_id"], "status": p["status"],
                "fixed_ips": addresses(p, &subnets), "filtered": filtered,
                "security_groups": if filtered { p["security_groups"].clone() } else { json!([]) },
                "allowed_address_pairs": p["allowed_address_pairs"],
            }));
        }
        // Rules and, for remote groups, the member addresses.
        let rules = store::list(&self.db, Kind::SecurityGroupRule).await?;
        let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut remote_groups = HashSet::new();
        for r in rules {
            let Some(g) = r["security_group_id"].as_str() else {
                continue;
            };
            if wanted_groups.contains(g) {
                if let Some(rg) = r["remote_group_id"].as_str() {
                    remote_groups.insert(rg.to_owned());
                }
                groups.entry(g.to_owned()).or_default().push(r);
            }
        }
        for g in &wanted_groups {
            groups.entry(g.clone()).or_default();
        }
        let members = self.group_members(&remote_groups).await?;
        // Flooding goes to every other L2 agent's tunnel endpoint.
        let peers: Vec<Value> = store::list(&self.db, Kind::Agent)
            .await?
            .into_iter()
            .filter(|a| a["agent_type"] == "Linux bridge agent" && a["host"] != host)
            .filter_map(|a| {
                let ip = a["configurations"]["tunneling_ip"].as_str()?;
                (!ip.is_empty()).then(|| json!(ip))
            })
            .collect();
        Ok(json!({
            "ports": out_ports, "networks": out_networks, "security_groups": groups,
            "remote_group_members": members, "tunnel_peers": peers,
        }))
    }

    /// Networks that need DHCP and have no DHCP agent go to this one
    /// (Neutron's `network_auto_schedule`).
    async fn auto_schedule_dhcp(&self, agent_id: &str, subnets: &[Value]) -> Result<()> {
        let wants: HashSet<&str> = subnets
            .iter()
            .filter(|s| s["enable_dhcp"] == true)
            .filter_map(|s| s["network_id"].as_str())
            .collect();
        for net in store::list(&self.db, Kind::Network).await? {
            let unhosted = net["_dhcp_agents"].as_array().is_none_or(|a| a.is_empty());
            if unhosted && wants.contains(net["id"].as_str().unwrap_or_default()) {
                let mut net = net;
                net["_dhcp_agents"] = json!([agent_id]);
                let mut tx = store::Tx::begin(&self.db);
                tx.update(Kind::Network, &net);
                match tx.commit().await {
                    Ok(()) => {}
                    // A user changed it meanwhile: the next sync picks it up.
                    Err(e) if e.status() == axum::http::StatusCode::CONFLICT => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The DHCP agent's view: each network it serves with its DHCP-enabled
    /// subnets, its own port (created here when missing) and every port's
    /// MAC/IP pairs and extra options.
    pub async fn dhcp_state(&self, host: &str) -> Result<Value> {
        let Some(agent_id) = self.agent_id("DHCP agent", host).await? else {
            return Ok(json!({"networks": []}));
        };
        let subnets = store::list(&self.db, Kind::Subnet).await?;
        self.auto_schedule_dhcp(&agent_id, &subnets).await?;
        let hosted: Vec<Value> = self.hosted_by(&agent_id, Kind::Network).await?;
        let subnet_map: HashMap<String, Value> = subnets
            .iter()
            .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s.clone())))
            .collect();
        let mut out = Vec::new();
        for net in hosted {
            let net_id = net["id"].as_str().unwrap_or_default().to_owned();
            let dhcp_subnets: Vec<Value> = subnets
                .iter()
                .filter(|s| s["network_id"] == net_id.as_str() && s["enable_dhcp"] == true)
                .cloned()
                .collect();
            if dhcp_subnets.is_empty() || net["admin_state_up"] == false {
                continue;
            }
            let mut ports =
                store::list_by(&self.db, Kind::Port, store::LookupColumn::Parent, &net_id).await?;
            let device_id = format!("dhcp-{host}-{net_id}");
            let existing = ports
                .iter()
                .find(|p| p["device_owner"] == DHCP_OWNER && p["device_id"] == device_id.as_str())
                .cloned();
            let dhcp_port = match existing {
                Some(p) => self.with_dhcp_subnets(p, &dhcp_subnets, host).await?,
                None => {
                    let p = self.create_dhcp_port(&net, &device_id, host).await?;
                    ports.push(p.clone());
                    p
                }
            };
            let routed = ports.iter().any(|p| {
                p["network_id"] == net_id.as_str()
                    && p["device_owner"] == "network:router_interface"
            });
            let hosts: Vec<Value> = ports
                .iter()
                .filter(|p| p["network_id"] == net_id.as_str() && p["device_owner"] != DHCP_OWNER)
                .map(|p| {
                    json!({
                        "id": p["id"], "mac_address": p["mac_address"],
                        "fixed_ips": addresses(p, &subnet_map),
                        "extra_dhcp_opts": p["extra_dhcp_opts"],
                        "admin_state_up": p["admin_state_up"],
                    })
                })
                .collect();
            out.push(json!({
                "id": net_id, "mtu": net["mtu"], "subnets": dhcp_subnets,
                "dhcp_port": {
                    "id": dhcp_port["id"], "mac_address": dhcp_port["mac_address"],
                    "fixed_ips": addresses(&dhcp_port, &subnet_map),
                },
                "isolated": !routed, "ports": hosts,
            }));
        }
        Ok(json!({ "networks": out }))
    }

    async fn create_dhcp_port(&self, net: &Value, device_id: &str, host: &str) -> Result<Value> {
        let spec = PortSpec {
            project_id: net["project_id"].as_str().unwrap_or_default().to_owned(),
            network_id: net["id"].as_str().unwrap_or_default().to_owned(),
            name: String::new(),
            description: String::new(),
            fixed_ips: None,
            mac_address: None,
            device_owner: DHCP_OWNER.into(),
            device_id: device_id.into(),
            admin_state_up: true,
            security_groups: Some(vec![]),
            port_security_enabled: Some(false),
            allowed_address_pairs: vec![],
            binding_host: host.into(),
            binding_profile: json!({}),
            vnic_type: "normal".into(),
            allow_gateway_ip: false,
            extra_dhcp_opts: json!([]),
        };
        let guard = self.alloc_lock.lock().await;
        let mut tx = store::Tx::begin(&self.db);
        let doc = self.build_port(spec, &mut tx, &mut HashSet::new()).await?;
        tx.commit().await?;
        drop(guard);
        self.notify(Kind::Port, "create", &doc).await;
        Ok(doc)
    }

    /// A DHCP port gains an address on subnets created after it.
    async fn with_dhcp_subnets(&self, port: Value, subnets: &[Value], host: &str) -> Result<Value> {
        let has: HashSet<&str> = port["fixed_ips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["subnet_id"].as_str())
            .collect();
        let missing = subnets
            .iter()
            .any(|s| !has.contains(s["id"].as_str().unwrap_or_default()));
        if !missing && port["binding:host_id"] == host {
            return Ok(port);
        }
        let mut body = Map::new();
        let mut fixed: Vec<Value> = port["fixed_ips"].as_array().cloned().unwrap_or_default();
        for s in subnets {
            if !has.contains(s["id"].as_str().unwrap_or_default()) {
                fixed.push(json!({"subnet_id": s["id"]}));
            }
        }
        body.insert("fixed_ips".into(), json!(fixed));
        body.insert("binding:host_id".into(), json!(host));
        let ctx = agent_context();
        let id = port["id"].as_str().unwrap_or_default().to_owned();
        match self.update_port(&ctx, &id, &body).await {
            Ok(p) => Ok(p),
            // Out of addresses: serve what it has.
            Err(_) => Ok(port),
        }
    }

    /// Routers without an L3 agent go to this one, HA routers short of
    /// their agents too (`router_auto_schedule`).
    async fn auto_schedule_routers(&self, agent_id: &str) -> Result<()> {
        for mut r in store::list(&self.db, Kind::Router).await? {
            let agents: Vec<Value> = r["_l3_agents"].as_array().cloned().unwrap_or_default();
            let room = self.agents_per_router(is_ha(&r));
            if agents.len() < room && !agents.iter().any(|a| a == agent_id) {
                let mut agents = agents;
                agents.push(json!(agent_id));
                r["_l3_agents"] = json!(agents);
                let mut tx = store::Tx::begin(&self.db);
                tx.update(Kind::Router, &r);
                match tx.commit().await {
                    Ok(()) => {}
                    Err(e) if e.status() == axum::http::StatusCode::CONFLICT => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The L3 agent's view: its routers with interfaces, gateway, routes and
    /// floating IPs. The routers' ports are bound to the agent's host so
    /// that the host's L2 agent plugs them.
    pub async fn l3_state(&self, host: &str) -> Result<Value> {
        let Some(agent_id) = self.agent_id("L3 agent", host).await? else {
            return Ok(json!({"routers": []}));
        };
        self.auto_schedule_routers(&agent_id).await?;
        let routers = self.hosted_by(&agent_id, Kind::Router).await?;
        let subnets: HashMap<String, Value> = store::list(&self.db, Kind::Subnet)
            .await?
            .into_iter()
            .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s)))
            .collect();
        let fips = store::list(&self.db, Kind::FloatingIp).await?;
        let mtus: HashMap<String, Value> = store::list(&self.db, Kind::Network)
            .await?
            .into_iter()
            .filter_map(|n| Some((n["id"].as_str()?.to_owned(), n["mtu"].clone())))
            .collect();
        let mut out = Vec::new();
        for r in routers {
            let rid = r["id"].as_str().unwrap_or_default();
            let mut interfaces = Vec::new();
            let mut gateway = Value::Null;
            // An HA router's ports are bound to the active agent's host
            // (until one reports, the first agent's).
            let binds = !is_ha(&r) || self.ha_binding_agent(&r).as_deref() == Some(&agent_id);
            let ports =
                store::list_by(&self.db, Kind::Port, store::LookupColumn::Device, rid).await?;
            for p in &ports {
                let owner = p["device_owner"].as_str().unwrap_or_default();
                if owner != "network:router_interface" && owner != "network:router_gateway" {
                    continue;
                }
                if binds && p["binding:host_id"] != host {
                    self.bind_port_to(p, host).await?;
                }
                let mtu = mtus.get(p["network_id"].as_str().unwrap_or_default());
                let view = json!({
                    "id": p["id"], "mac_address": p["mac_address"], "network_id": p["network_id"],
                    "fixed_ips": addresses(p, &subnets), "mtu": mtu,
                });
                if owner == "network:router_gateway" {
                    gateway = view;
                } else {
                    interfaces.push(view);
                }
            }
            let floating: Vec<Value> = fips
                .iter()
                .filter(|f| f["router_id"] == rid && f["fixed_ip_address"].is_string())
                .map(|f| {
                    json!({
                        "id": f["id"], "floating_ip_address": f["floating_ip_address"],
                        "fixed_ip_address": f["fixed_ip_address"],
                    })
                })
                .collect();
            let snat = r["external_gateway_info"]["enable_snat"] != false;
            let mut view = json!({
                "id": rid, "admin_state_up": r["admin_state_up"], "enable_snat": snat,
                "gateway": gateway, "interfaces": interfaces, "routes": r["routes"],
                "floating_ips": floating, "ha": is_ha(&r),
            });
            if is_ha(&r) && r["admin_state_up"] != false {
                let p = self.ensure_ha_port(&r, host).await?;
                view["ha_vr_id"] = r["_ha_vr_id"].clone();
                view["ha_port"] = json!({
                    "id": p["id"], "mac_address": p["mac_address"],
                    "fixed_ips": addresses(&p, &subnets),
                    "mtu": mtus.get(p["network_id"].as_str().unwrap_or_default()),
                });
            }
            out.push(view);
        }
        Ok(json!({ "routers": out }))
    }

    /// The agent whose host an HA router's ports are bound to: the one
    /// that last said active, else the first scheduled.
    fn ha_binding_agent(&self, router: &Value) -> Option<String> {
        let agents = router["_l3_agents"].as_array()?;
        agents
            .iter()
            .find(|a| router["_ha_states"][a.as_str().unwrap_or_default()] == "active")
            .or_else(|| agents.first())
            .and_then(|a| a.as_str().map(str::to_owned))
    }

    /// Bind a router's interface and gateway ports to `host`.
    pub(super) async fn bind_router_ports(&self, router_id: &str, host: &str) -> Result<()> {
        for p in
            store::list_by(&self.db, Kind::Port, store::LookupColumn::Device, router_id).await?
        {
            let owner = p["device_owner"].as_str().unwrap_or_default();
            if p["device_id"] == router_id
                && matches!(owner, "network:router_interface" | "network:router_gateway")
                && p["binding:host_id"] != host
            {
                self.bind_port_to(&p, host).await?;
            }
        }
        Ok(())
    }

    async fn bind_port_to(&self, port: &Value, host: &str) -> Result<()> {
        let id = port["id"].as_str().unwrap_or_default();
        let written = self
            .update_with_retry(Kind::Port, id, |doc| {
                let (vif_type, vif_details) = super::ports::vif(host);
                doc["binding:host_id"] = json!(host);
                doc["binding:vif_type"] = vif_type;
                doc["binding:vif_details"] = vif_details;
                true
            })
            .await;
        match written {
            // Deleted or still changing: the next pass binds it.
            Err(e) if matches!(e.status().as_u16(), 404 | 409) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Which instance asks the metadata proxy: the port with `ip` on the
    /// network, or on one of the router's networks.
    pub async fn metadata_lookup(
        &self,
        router_id: Option<&str>,
        network_id: Option<&str>,
        ip: &str,
    ) -> Result<Value> {
        let networks: HashSet<String> = match (router_id, network_id) {
            (Some(r), _) => store::list_by(&self.db, Kind::Port, store::LookupColumn::Device, r)
                .await?
                .iter()
                .filter(|p| p["device_owner"] == "network:router_interface")
                .filter_map(|p| p["network_id"].as_str().map(str::to_owned))
                .collect(),
            (None, Some(n)) => [n.to_owned()].into(),
            (None, None) => HashSet::new(),
        };
        let ports = store::ports_with_ip(&self.db, ip).await?;
        let port = ports.iter().find(|p| {
            networks.contains(p["network_id"].as_str().unwrap_or_default())
                && !is_network_owned(p)
                && p["fixed_ips"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f["ip_address"] == ip))
        });
        match port {
            Some(p) if p["device_id"].as_str().is_some_and(|d| !d.is_empty()) => Ok(json!({
                "instance_id": p["device_id"], "project_id": p["project_id"], "port_id": p["id"],
            })),
            _ => Err(Error::NotFound(format!(
                "No instance has address {ip} on this network."
            ))),
        }
    }
}
