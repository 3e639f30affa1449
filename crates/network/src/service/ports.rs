//! Ports: MAC and fixed IP allocation, security groups, allowed address
//! pairs, port security, binding. Router and floating IP code creates its
//! ports through [`NetworkService::build_port`] inside its own transaction.

use super::subnets::{cidr_of, pools_of};
use super::*;
use crate::ipam;
use std::collections::HashSet;

/// A port's own attributes.
pub(super) const ATTRIBUTES: &[Attribute] = &[
    Attribute::required("network_id", Str),
    Attribute::updatable("admin_state_up", Bool),
    Attribute::updatable("mac_address", Str),
    Attribute::updatable("fixed_ips", Array),
    Attribute::updatable("device_id", Str),
    Attribute::updatable("device_owner", Str),
    Attribute::updatable("security_groups", Array),
    Attribute::updatable("allowed_address_pairs", Array),
    Attribute::updatable("port_security_enabled", Bool),
    Attribute::updatable("binding:host_id", Str),
    Attribute::updatable("binding:profile", Object).or_null(),
    Attribute::create_only("binding:vnic_type", Str),
    Attribute::updatable("extra_dhcp_opts", Array),
    Attribute::create_only("dns_name", Str),
    Attribute::create_only("qos_policy_id", Str),
    Attribute::create_only("propagate_uplink_status", Bool),
    Attribute::updatable("status", Str),
];

/// What a new port needs; `None` means "the default".
#[derive(Default)]
pub struct PortSpec {
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub fixed_ips: Option<Vec<Value>>,
    pub mac_address: Option<String>,
    pub device_owner: String,
    pub device_id: String,
    pub admin_state_up: bool,
    pub security_groups: Option<Vec<String>>,
    pub port_security_enabled: Option<bool>,
    pub allowed_address_pairs: Vec<Value>,
    pub binding_host: String,
    pub binding_profile: Value,
    pub vnic_type: String,
    /// Router interfaces may take the subnet's gateway address.
    pub allow_gateway_ip: bool,
    pub extra_dhcp_opts: Value,
}

/// `extra_dhcp_opts`: `[{opt_name, opt_value, ip_version}]`, kept for the DHCP agent.
fn dhcp_opts(v: Option<&Value>) -> Result<Value> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(json!([]));
    };
    let arr = v.as_array().ok_or_else(|| {
        Error::BadRequest("Invalid input for extra_dhcp_opts: must be a list.".into())
    })?;
    let mut out = Vec::new();
    for o in arr {
        let name = o["opt_name"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for extra_dhcp_opts. Reason: {o} needs opt_name."
                ))
            })?;
        let version = o
            .get("ip_version")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(4);
        if version != 4 && version != 6 {
            return Err(Error::BadRequest(format!(
                "Invalid input for extra_dhcp_opts. Reason: ip_version {version} must be 4 or 6."
            )));
        }
        out.push(json!({"opt_name": name, "opt_value": o.get("opt_value").cloned().unwrap_or(Value::Null), "ip_version": version}));
    }
    Ok(Value::Array(out))
}

/// The status a new port starts in: router ports are up as soon as they
/// exist (no agent binds them; the L3 agent wires them when it runs),
/// floating IP ports are never bound, everything else waits for an agent.
fn port_status(device_owner: &str) -> &'static str {
    match device_owner {
        "network:router_interface" | "network:router_gateway" => "ACTIVE",
        "network:floatingip" => "N/A",
        _ => "DOWN",
    }
}

pub(super) fn vif(host: &str) -> (Value, Value) {
    if host.is_empty() {
        (json!("unbound"), json!({}))
    } else {
        (
            json!("bridge"),
            json!({"port_filter": true, "connectivity": "l2"}),
        )
    }
}

impl NetworkService {
    fn random_mac(&self) -> String {
        let base: Vec<&str> = self.config.network.base_mac.split(':').collect();
        let mut parts: Vec<String> = base.iter().take(3).map(|s| s.to_string()).collect();
        for _ in 0..3 {
            parts.push(format!("{:02x}", rand::random::<u8>()));
        }
        parts.join(":")
    }

    /// Allocate addresses and a MAC, write the port, all inside `tx`. The
    /// caller holds `alloc_lock`; `taken` collects addresses claimed earlier
    /// in the same transaction.
    pub async fn build_port(
        &self,
        spec: PortSpec,
        tx: &mut store::Tx<'_>,
        taken: &mut HashSet<(String, String)>,
    ) -> Result<Value> {
        let net = self.get_doc(Kind::Network, &spec.network_id).await?;
        let id = new_id();
        let subnets: Vec<Value> = store::list(&self.db, Kind::Subnet)
            .await?
            .into_iter()
            .filter(|s| s["network_id"] == spec.network_id.as_str())
            .collect();
        let mac = match &spec.mac_address {
            Some(m) => {
                let valid = m.len() == 17
                    && m.split(':')
                        .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok());
                let multicast = m
                    .get(..2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
                    .is_none_or(|b| b & 1 == 1);
                if !valid || multicast || m == "00:00:00:00:00:00" {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for mac_address. Reason: '{m}' is not a valid MAC address."
                    )));
                }
                m.to_ascii_lowercase()
            }
            None => loop {
                let m = self.random_mac();
                if !store::mac_in_use(&self.db, &spec.network_id, &m).await? {
                    break m;
                }
            },
        };

        // Addresses: as requested, else one from the first IPv4 subnet with
        // room, plus SLAAC addresses and one stateful IPv6 address.
        let mut fixed: Vec<(Value, u128)> = Vec::new();
        match &spec.fixed_ips {
            Some(reqs) => {
                for r in reqs {
                    let subnet = match (r.get("subnet_id").and_then(Value::as_str), r.get("ip_address").and_then(Value::as_str)) {
                        (Some(sid), _) => subnets.iter().find(|s| s["id"] == sid).cloned().ok_or_else(|| {
                            Error::BadRequest(format!("Invalid input for operation: Failed to create port on network {}, because fixed_ips included invalid subnet {sid}.", spec.network_id)).typed("InvalidInput")
                        })?,
                        (None, Some(ip)) => {
                            let (a, v6) = ipam::parse_ip(ip).ok_or_else(|| Error::BadRequest(format!("Invalid input for fixed_ips. Reason: '{ip}' is not a valid IP address.")))?;
                            subnets.iter().find(|s| cidr_of(s).contains(a, v6)).cloned().ok_or_else(|| {
                                Error::BadRequest(format!("Invalid input for operation: IP address {ip} is not a valid IP for any of the subnets on the specified network.")).typed("InvalidIpForNetwork")
                            })?
                        }
                        (None, None) => return Err(Error::BadRequest("Invalid input for fixed_ips: each entry needs subnet_id or ip_address.".into())),
                    };
                    let c = cidr_of(&subnet);
                    let addr = match r.get("ip_address").and_then(Value::as_str) {
                        Some(ip) => {
                            let (a, v6) = ipam::parse_ip(ip).ok_or_else(|| Error::BadRequest(format!("Invalid input for fixed_ips. Reason: '{ip}' is not a valid IP address.")))?;
                            if !c.contains(a, v6) || (!c.v6 && (a == c.network() || a == c.last()))
                            {
                                return Err(Error::BadRequest(format!(
                                    "IP address {ip} is not a valid IP for the specified subnet."
                                ))
                                .typed("InvalidIpForSubnet"));
                            }
                            if !spec.allow_gateway_ip
                                && subnet["gateway_ip"].as_str() == Some(&c.ip(a))
                                && !spec.device_owner.starts_with("network:")
                            {
                                return Err(Error::Conflict(format!("IP address {ip} already allocated in subnet {}: it is the gateway.", subnet["id"].as_str().unwrap_or(""))).typed("IpAddressAlreadyAllocated"));
                            }
                            if taken.contains(&(spec.network_id.clone(), c.ip(a)))
                                || fixed.iter().any(|(_, x)| *x == a)
                                || store::ip_in_use(&self.db, &spec.network_id, &c.ip(a)).await?
                            {
                                return Err(Error::Conflict(format!(
                                    "IP address {ip} already allocated in subnet {}",
                                    subnet["id"].as_str().unwrap_or("")
                                ))
                                .typed("IpAddressAlreadyAllocated"));
                            }
                            a
                        }
                        None => self
                            .pick_address(&subnet, &spec.network_id, &mac, &fixed, taken)
                            .await?
                            .ok_or_else(|| {
                                Error::Conflict(format!(
                                    "No more IP addresses available on network {}.",
                                    spec.network_id
                                ))
                                .typed("IpAddressGenerationFailure")
                            })?,
                    };
                    fixed.push((subnet, addr));
                }
            }
            None => {
                let mut have_v4 = false;
                let mut have_v6_stateful = false;
                let mut v4_subnets = 0;
                for s in &subnets {
                    let c = cidr_of(s);
                    let mode = s["ipv6_address_mode"].as_str().unwrap_or("");
                    let auto = c.v6 && (mode == "slaac" || mode == "dhcpv6-stateless");
                    if !c.v6 {
                        v4_subnets += 1;
                    }
                    if (!c.v6 && have_v4) || (c.v6 && !auto && have_v6_stateful) {
                        continue;
                    }
                    if let Some(a) = self
                        .pick_address(s, &spec.network_id, &mac, &fixed, taken)
                        .await?
                    {
                        if !c.v6 {
                            have_v4 = true;
                        } else if !auto {
                            have_v6_stateful = true;
                        }
                        fixed.push((s.clone(), a));
                    }
                }
                if v4_subnets > 0 && !have_v4 {
                    return Err(Error::Conflict(format!(
                        "No more IP addresses available on network {}.",
                        spec.network_id
                    ))
                    .typed("IpAddressGenerationFailure"));
                }
            }
        }

        // Security: port security from the network unless given; groups
        // default to the project's default group for ordinary ports.
        let port_security = spec
            .port_security_enabled
            .unwrap_or(net["port_security_enabled"] != false);
        let owned_by_network = spec.device_owner.starts_with("network:");
        let groups = match (&spec.security_groups, port_security, owned_by_network) {
            (Some(g), false, _) if !g.is_empty() => {
                return Err(Error::BadRequest("Port security must be enabled and port must have an IP address in order to use security groups.".into()).typed("PortSecurityAndIPRequiredForSecurityGroups"))
            }
            (Some(g), _, _) => {
                for sg in g {
                    let doc = self.get_doc(Kind::SecurityGroup, sg).await?;
                    if doc["project_id"] != spec.project_id.as_str() && doc["shared"] != true {
                        return Err(not_found(Kind::SecurityGroup, sg));
                    }
                }
                g.clone()
            }
            (None, true, false) => vec![self.ensure_default_security_group(&spec.project_id).await?],
            _ => vec![],
        };
        if !spec.allowed_address_pairs.is_empty() && !port_security {
            return Err(Error::Conflict(
                "Port Security must be enabled in order to have allowed address pairs on a port."
                    .into(),
            )
            .typed("AddressPairAndPortSecurityRequired"));
        }
        let pairs = normalize_pairs(&spec.allowed_address_pairs, &mac)?;

        let fixed_json: Vec<Value> = fixed
            .iter()
            .map(|(s, a)| json!({"subnet_id": s["id"], "ip_address": cidr_of(s).ip(*a)}))
            .collect();
        for (s, a) in &fixed {
            let ip = cidr_of(s).ip(*a);
            tx.allocate_ip(
                &spec.network_id,
                &ip,
                s["id"].as_str().unwrap_or_default(),
                &id,
            );
            taken.insert((spec.network_id.clone(), ip));
        }
        tx.allocate_mac(&spec.network_id, &mac, &id);
        let (vif_type, vif_details) = vif(&spec.binding_host);
        let t = now();
        let doc = json!({
            "id": id, "name": spec.name, "description": spec.description,
            "tenant_id": spec.project_id, "project_id": spec.project_id,
            "network_id": spec.network_id, "mac_address": mac, "admin_state_up": spec.admin_state_up,
            "status": port_status(&spec.device_owner), "fixed_ips": fixed_json, "device_id": spec.device_id, "device_owner": spec.device_owner,
            "security_groups": groups, "allowed_address_pairs": pairs, "port_security_enabled": port_security,
            "binding:host_id": spec.binding_host, "binding:profile": spec.binding_profile,
            "binding:vif_type": vif_type, "binding:vif_details": vif_details, "binding:vnic_type": spec.vnic_type,
            "extra_dhcp_opts": if spec.extra_dhcp_opts.is_null() { json!([]) } else { spec.extra_dhcp_opts }, "tags": [], "created_at": t, "updated_at": t, "revision_number": 0,
        });
        tx.insert(Kind::Port, &doc);
        Ok(doc)
    }

    /// The lowest free address of a subnet's pools (or the EUI-64 address of
    /// a SLAAC subnet). `ip_hints` remembers per subnet an address below
    /// which everything is allocated, so the next one costs a few point
    /// queries instead of reading every allocation of the network.
    async fn pick_address(
        &self,
        s: &Value,
        network_id: &str,
        mac: &str,
        claimed: &[(Value, u128)],
        taken: &HashSet<(String, String)>,
    ) -> Result<Option<u128>> {
        let c = cidr_of(s);
        let mode = s["ipv6_address_mode"].as_str().unwrap_or("");
        if c.v6 && (mode == "slaac" || mode == "dhcpv6-stateless") {
            return Ok(ipam::eui64(&c, mac));
        }
        let subnet_id = s["id"].as_str().unwrap_or_default().to_owned();
        let pools = pools_of(s);
        let hint = self
            .ip_hints
            .lock()
            .expect("hints")
            .get(&subnet_id)
            .copied();
        let mut candidate = match hint {
            Some(h) => h,
            None => {
                // First allocation since start: one full read of the network's addresses.
                let used: HashSet<u128> = store::used_ips(&self.db, network_id)
                    .await?
                    .iter()
                    .filter_map(|(ip, _, _)| ipam::parse_ip(ip).map(|(a, _)| a))
                    .collect();
                match ipam::first_free(&pools, &used) {
                    Some(a) => a,
                    None => return Ok(None),
                }
            }
        };
        loop {
            let Some(a) = ipam::next_in_pools(&pools, candidate) else {
                return Ok(None);
            };
            let ip = c.ip(a);
            let busy = claimed.iter().any(|(_, x)| *x == a)
                || taken.contains(&(network_id.to_owned(), ip.clone()))
                || store::ip_in_use(&self.db, network_id, &ip).await?;
            if !busy {
                self.ip_hints.lock().expect("hints").insert(subnet_id, a);
                return Ok(Some(a));
            }
            candidate = a + 1;
        }
    }

    /// A router named as a port's device must be the caller's own (Neutron's
    /// plugin check, for non-admins).
    async fn check_router_device(
        &self,
        ctx: &AuthContext,
        body: &Map<String, Value>,
    ) -> Result<()> {
        if let (Some(owner), Some(device)) = (
            body.get("device_owner").and_then(Value::as_str),
            body.get("device_id").and_then(Value::as_str),
        ) {
            if owner.starts_with("network:router") && !device.is_empty() && !self.is_admin(ctx) {
                let router = store::get(&self.db, Kind::Router, device).await?;
                if router.is_none_or(|r| r["project_id"].as_str() != ctx.project_id.as_deref()) {
                    return Err(Error::Conflict(format!(
                        "The following device_id {device} is not owned by your project or matches another project's router."
                    ))
                    .typed("DeviceIDNotOwnedByTenant"));
                }
            }
        }
        Ok(())
    }

    /// Addresses a port gave back may be handed out again.
    pub fn note_released(&self, port: &Value) {
        let mut hints = self.ip_hints.lock().expect("hints");
        for f in port["fixed_ips"].as_array().into_iter().flatten() {
            let (Some(sid), Some((a, _))) = (
                f["subnet_id"].as_str(),
                f["ip_address"].as_str().and_then(ipam::parse_ip),
            ) else {
                continue;
            };
            if let Some(h) = hints.get_mut(sid) {
                *h = (*h).min(a);
            }
        }
    }

    pub async fn create_port(&self, ctx: &AuthContext, body: &Map<String, Value>) -> Result<Value> {
        check_known(body, Kind::Port)?;
        let network_id = body
            .get("network_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::BadRequest("Invalid input: 'network_id' is required for a port.".into())
                    .typed("InvalidInput")
            })?
            .to_owned();
        let net = self.get_visible(ctx, Kind::Network, &network_id).await?;
        let base = self.base_doc(ctx, body, "port")?;
        let project = base["project_id"].as_str().expect("project").to_owned();
        self.authorize_create(ctx, Kind::Port, &project, Some(&net), body)?;
        self.check_router_device(ctx, body).await?;
        let device_owner = opt_string(body, "device_owner", "port", 255)?.unwrap_or_default();
        let fixed_ips = match body.get("fixed_ips") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(_) => {
                return Err(Error::BadRequest(
                    "Invalid input for fixed_ips. Reason: must be a list.".into(),
                ))
            }
        };
        let security_groups = match body.get("security_groups") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        Error::BadRequest(
                            "Invalid input for security_groups: must be a list of ids.".into(),
                        )
                    })?,
            ),
            Some(_) => {
                return Err(Error::BadRequest(
                    "Invalid input for security_groups: must be a list of ids.".into(),
                ))
            }
        };
        let spec = PortSpec {
            project_id: project,
            network_id,
            name: base["name"].as_str().unwrap_or_default().to_owned(),
            description: base["description"].as_str().unwrap_or_default().to_owned(),
            fixed_ips,
            mac_address: opt_string(body, "mac_address", "port", 17)?,
            device_owner,
            device_id: opt_string(body, "device_id", "port", 255)?.unwrap_or_default(),
            admin_state_up: opt_bool(body, "admin_state_up")?.unwrap_or(true),
            security_groups,
            port_security_enabled: opt_bool(body, "port_security_enabled")?,
            allowed_address_pairs: body
                .get("allowed_address_pairs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            binding_host: opt_string(body, "binding:host_id", "port", 255)?.unwrap_or_default(),
            binding_profile: body
                .get("binding:profile")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({})),
            vnic_type: opt_string(body, "binding:vnic_type", "port", 64)?
                .unwrap_or_else(|| "normal".into()),
            allow_gateway_ip: false,
            extra_dhcp_opts: dhcp_opts(body.get("extra_dhcp_opts"))?,
        };
        let guard = self.alloc_lock.lock().await;
        let mut tx = store::Tx::begin(&self.db);
        self.limit_quota(&mut tx, Kind::Port, &spec.project_id)
            .await?;
        let doc = self.build_port(spec, &mut tx, &mut HashSet::new()).await?;
        tx.commit().await?;
        drop(guard);
        self.notify(Kind::Port, "create", &doc).await;
        Ok(doc)
    }

    pub async fn update_port(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::Port)?;
        let mut doc = self.get_for_update(ctx, Kind::Port, id, body).await?;
        update_common(&mut doc, body, "port")?;
        if let Some(v) = body.get("network_id") {
            if v != &doc["network_id"] {
                return Err(Error::BadRequest(
                    "Cannot update read-only attribute network_id".into(),
                ));
            }
        }
        if let Some(v) = opt_bool(body, "admin_state_up")? {
            doc["admin_state_up"] = json!(v);
        }
        self.check_router_device(ctx, body).await?;
        for k in ["device_id", "device_owner"] {
            if let Some(v) = opt_string(body, k, "port", 255)? {
                doc[k] = json!(v);
            }
        }
        if let Some(ps) = opt_bool(body, "port_security_enabled")? {
            doc["port_security_enabled"] = json!(ps);
        }
        if let Some(g) = body.get("security_groups") {
            let ids: Vec<String> = g
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                .ok_or_else(|| {
                    Error::BadRequest(
                        "Invalid input for security_groups: must be a list of ids.".into(),
                    )
                })?;
            for sg in &ids {
                self.get_visible(ctx, Kind::SecurityGroup, sg).await?;
            }
            doc["security_groups"] = json!(ids);
        } else if body.get("port_security_enabled") == Some(&json!(false))
            && !body.contains_key("security_groups")
            && doc["security_groups"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        {
            return Err(Error::Conflict(format!(
                "Port {id} has security groups: remove them before disabling port security."
            )));
        }
        if doc["port_security_enabled"] == false
            && doc["security_groups"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        {
            return Err(Error::BadRequest("Port security must be enabled and port must have an IP address in order to use security groups.".into()).typed("PortSecurityAndIPRequiredForSecurityGroups"));
        }
        if let Some(p) = body.get("allowed_address_pairs") {
            let pairs = p.as_array().cloned().unwrap_or_default();
            if !pairs.is_empty() && doc["port_security_enabled"] == false {
                return Err(Error::Conflict("Port Security must be enabled in order to have allowed address pairs on a port.".into()).typed("AddressPairAndPortSecurityRequired"));
            }
            doc["allowed_address_pairs"] =
                normalize_pairs(&pairs, doc["mac_address"].as_str().unwrap_or(""))?;
        }
        if let Some(h) = opt_string(body, "binding:host_id", "port", 255)? {
            let (t, d) = vif(&h);
            doc["binding:host_id"] = json!(h);
            doc["binding:vif_type"] = t;
            doc["binding:vif_details"] = d;
        }
        if let Some(o) = body.get("extra_dhcp_opts") {
            // Options named with a null value are removed; others set or replaced.
            let mut current: Vec<Value> = doc["extra_dhcp_opts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for new in dhcp_opts(Some(o))?.as_array().cloned().unwrap_or_default() {
                current.retain(|c| {
                    !(c["opt_name"] == new["opt_name"] && c["ip_version"] == new["ip_version"])
                });
                if !new["opt_value"].is_null() {
                    current.push(new);
                }
            }
            doc["extra_dhcp_opts"] = Value::Array(current);
        }
        if let Some(p) = body.get("binding:profile") {
            doc["binding:profile"] = if p.is_null() { json!({}) } else { p.clone() };
        }
        if let Some(s) = body.get("status").and_then(Value::as_str) {
            doc["status"] = json!(s);
        }
        let guard = self.alloc_lock.lock().await;
        let mut tx = store::Tx::begin(&self.db);
        if let Some(m) = opt_string(body, "mac_address", "port", 17)? {
            if m != doc["mac_address"] {
                if !doc["binding:host_id"].as_str().unwrap_or("").is_empty() {
                    return Err(Error::Conflict(format!(
                        "Port {id} is bound: its MAC address cannot change."
                    )));
                }
                tx.release_mac(id);
                tx.allocate_mac(
                    doc["network_id"].as_str().unwrap_or_default(),
                    &m.to_ascii_lowercase(),
                    id,
                );
                doc["mac_address"] = json!(m.to_ascii_lowercase());
            }
        }
        if let Some(f) = body.get("fixed_ips") {
            // Reallocate: keep addresses that stay, claim new ones.
            let reqs = f.as_array().cloned().ok_or_else(|| {
                Error::BadRequest("Invalid input for fixed_ips. Reason: must be a list.".into())
            })?;
            tx.release_port_ips(id);
            self.note_released(&doc);
            let spec = PortSpec {
                project_id: doc["project_id"].as_str().unwrap_or_default().to_owned(),
                network_id: doc["network_id"].as_str().unwrap_or_default().to_owned(),
                fixed_ips: Some(reqs),
                mac_address: doc["mac_address"].as_str().map(str::to_owned),
                device_owner: doc["device_owner"].as_str().unwrap_or_default().to_owned(),
                port_security_enabled: Some(false),
                allow_gateway_ip: doc["device_owner"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("network:router"),
                ..Default::default()
            };
            // Allocate through a scratch port, then move its addresses here.
            let scratch = self.build_port_addresses(spec, &mut tx, id).await?;
            doc["fixed_ips"] = scratch;
        }
        touch(&mut doc);
        tx.update(Kind::Port, &doc);
        tx.commit().await?;
        drop(guard);
        self.notify(Kind::Port, "update", &doc).await;
        Ok(doc)
    }

    /// Allocate `spec.fixed_ips` for an existing port `port_id` (update).
    async fn build_port_addresses(
        &self,
        spec: PortSpec,
        tx: &mut store::Tx<'_>,
        port_id: &str,
    ) -> Result<Value> {
        let network_id = spec.network_id.clone();
        let own: HashSet<String> = HashSet::new();
        let _ = own;
        let subnets: Vec<Value> = store::list(&self.db, Kind::Subnet)
            .await?
            .into_iter()
            .filter(|s| s["network_id"] == network_id.as_str())
            .collect();
        let used: HashSet<u128> = store::used_ips(&self.db, &network_id)
            .await?
            .into_iter()
            .filter(|(_, _, p)| p != port_id)
            .filter_map(|(ip, _, _)| ipam::parse_ip(&ip).map(|(a, _)| a))
            .collect();
        let mut out = Vec::new();
        let mut claimed: HashSet<u128> = HashSet::new();
        for r in spec.fixed_ips.unwrap_or_default() {
            let subnet = match (
                r.get("subnet_id").and_then(Value::as_str),
                r.get("ip_address").and_then(Value::as_str),
            ) {
                (Some(sid), _) => subnets.iter().find(|s| s["id"] == sid).cloned(),
                (None, Some(ip)) => ipam::parse_ip(ip).and_then(|(a, v6)| {
                    subnets.iter().find(|s| cidr_of(s).contains(a, v6)).cloned()
                }),
                _ => None,
            }
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for fixed_ips: {r} matches no subnet of network {network_id}."
                ))
            })?;
            let c = cidr_of(&subnet);
            let a = match r.get("ip_address").and_then(Value::as_str) {
                Some(ip) => {
                    let (a, v6) = ipam::parse_ip(ip)
                        .filter(|(a, v6)| c.contains(*a, *v6))
                        .ok_or_else(|| {
                            Error::BadRequest(format!(
                                "IP address {ip} is not a valid IP for the specified subnet."
                            ))
                            .typed("InvalidIpForSubnet")
                        })?;
                    if !v6 && (a == c.network() || a == c.last()) {
                        return Err(Error::BadRequest(format!(
                            "IP address {ip} is not a valid IP for the specified subnet."
                        ))
                        .typed("InvalidIpForSubnet"));
                    }
                    if !spec.allow_gateway_ip && subnet["gateway_ip"].as_str() == Some(ip) {
                        return Err(Error::Conflict(format!(
                            "IP address {ip} already allocated in subnet {}: it is the gateway.",
                            subnet["id"].as_str().unwrap_or("")
                        ))
                        .typed("IpAddressAlreadyAllocated"));
                    }
                    if used.contains(&a) || claimed.contains(&a) {
                        return Err(Error::Conflict(format!(
                            "IP address {ip} already allocated in subnet {}",
                            subnet["id"].as_str().unwrap_or("")
                        ))
                        .typed("IpAddressAlreadyAllocated"));
                    }
                    a
                }
                None => {
                    let mut u = used.clone();
                    u.extend(claimed.iter());
                    ipam::first_free(&pools_of(&subnet), &u).ok_or_else(|| {
                        Error::Conflict(format!(
                            "No more IP addresses available on network {network_id}."
                        ))
                        .typed("IpAddressGenerationFailure")
                    })?
                }
            };
            claimed.insert(a);
            tx.allocate_ip(
                &network_id,
                &c.ip(a),
                subnet["id"].as_str().unwrap_or_default(),
                port_id,
            );
            out.push(json!({"subnet_id": subnet["id"], "ip_address": c.ip(a)}));
        }
        Ok(Value::Array(out))
    }

    /// Ports owned by routers and floating IPs are removed through those APIs.
    pub async fn delete_port(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let doc = self.get_for_delete(ctx, Kind::Port, id).await?;
        let owner = doc["device_owner"].as_str().unwrap_or("");
        if matches!(
            owner,
            "network:router_interface"
                | "network:router_gateway"
                | "network:floatingip"
                | "network:router_interface_distributed"
        ) {
            return Err(Error::Conflict(format!(
                "Port {id} cannot be deleted directly via the port API: has device owner {owner}."
            ))
            .typed("ServicePortInUse"));
        }
        let mut tx = store::Tx::begin(&self.db);
        self.remove_port(&mut tx, &doc).await?;
        tx.commit().await?;
        self.notify(Kind::Port, "delete", &doc).await;
        Ok(())
    }

    /// Delete a port's records and disassociate floating IPs that pointed at it.
    pub async fn remove_port(&self, tx: &mut store::Tx<'_>, doc: &Value) -> Result<()> {
        let id = doc["id"].as_str().unwrap_or_default();
        for mut f in store::list(&self.db, Kind::FloatingIp)
            .await?
            .into_iter()
            .filter(|f| f["port_id"] == id)
        {
            f["port_id"] = Value::Null;
            f["fixed_ip_address"] = Value::Null;
            f["router_id"] = Value::Null;
            f["status"] = json!("DOWN");
            touch(&mut f);
            tx.update(Kind::FloatingIp, &f);
        }
        tx.release_port_ips(id);
        tx.release_mac(id);
        tx.delete(Kind::Port, id);
        self.note_released(doc);
        Ok(())
    }

    /// Agents report a port up or down.
    pub async fn set_port_status(&self, id: &str, status: &str) -> Result<()> {
        let mut old = String::new();
        let written = self
            .update_with_retry(Kind::Port, id, |doc| {
                if doc["status"] == status {
                    return false;
                }
                old = doc["status"].as_str().unwrap_or_default().to_owned();
                doc["status"] = json!(status);
                touch(doc);
                true
            })
            .await?;
        if let (Some(doc), Some(nova)) = (written, &self.nova) {
            if let Some(event) = crate::nova::NovaNotifier::event_for(&doc, &old, status) {
                nova.send(event);
            }
        }
        Ok(())
    }
}

/// Allowed address pairs: valid IP or CIDR, MAC defaulting to the port's.
fn normalize_pairs(pairs: &[Value], port_mac: &str) -> Result<Value> {
    let mut out = Vec::new();
    for p in pairs {
        let ip = p["ip_address"].as_str().ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for allowed_address_pairs: ip_address is required.".into(),
            )
        })?;
        let valid = ipam::parse_ip(ip).is_some() || crate::ipam::Cidr::parse(ip).is_ok();
        if !valid {
            return Err(Error::BadRequest(format!("Invalid input for allowed_address_pairs. Reason: '{ip}' is not a valid IP address or CIDR.")));
        }
        let mac = p["mac_address"].as_str().unwrap_or(port_mac);
        let entry = json!({"ip_address": ip, "mac_address": mac});
        if out.contains(&entry) {
            return Err(Error::BadRequest(format!(
                "Invalid input: duplicate allowed address pair {entry}."
            ))
            .typed("InvalidInput"));
        }
        out.push(entry);
    }
    Ok(Value::Array(out))
}
