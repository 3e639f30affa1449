//! Routers (gateway, interfaces, static routes) and floating IPs.

use super::ha::is_ha;
use super::ports::PortSpec;
use super::subnets::cidr_of;
use super::*;
use crate::ipam;
use std::collections::HashSet;

/// A router's own attributes (distributed routers are refused; `ha` is
/// changed only while the router is down, as Neutron's).
pub(super) const ROUTER_ATTRIBUTES: &[Attribute] = &[
    Attribute::updatable("admin_state_up", Bool),
    Attribute::updatable("external_gateway_info", Object).or_null(),
    Attribute::updatable("routes", Array).or_null(),
    Attribute::create_only("distributed", Bool),
    Attribute::updatable("ha", Bool),
    Attribute::create_only("availability_zone_hints", Array),
    Attribute::create_only("flavor_id", Str),
    Attribute::create_only("enable_ndp_proxy", Bool),
];
/// A floating IP's own attributes (an update (dis)associates it).
pub(super) const FLOATINGIP_ATTRIBUTES: &[Attribute] = &[
    Attribute::required("floating_network_id", Str),
    Attribute::create_only("floating_ip_address", Str),
    Attribute::create_only("subnet_id", Str),
    Attribute::updatable("port_id", Str).or_null(),
    Attribute::updatable("fixed_ip_address", Str).or_null(),
    Attribute::create_only("dns_name", Str),
    Attribute::create_only("dns_domain", Str),
    Attribute::create_only("qos_policy_id", Str),
];

/// Distributed (DVR) routers are not built here.
fn refuse_distributed(body: &Map<String, Value>) -> Result<()> {
    if opt_bool(body, "distributed")? == Some(true) {
        return Err(Error::BadRequest(
            "Invalid input: distributed routers are not supported by this deployment.".into(),
        )
        .typed("InvalidInput"));
    }
    Ok(())
}

impl NetworkService {
    fn router_ports(ports: &[Value], router_id: &str, owner: &str) -> Vec<Value> {
        ports
            .iter()
            .filter(|p| p["device_id"] == router_id && p["device_owner"] == owner)
            .cloned()
            .collect()
    }

    /// Validate and apply `external_gateway_info` inside `tx` (the caller holds `alloc_lock`).
    async fn set_gateway(
        &self,
        ctx: &AuthContext,
        router: &mut Value,
        info: &Value,
        tx: &mut store::Tx<'_>,
    ) -> Result<()> {
        let router_id = router["id"].as_str().unwrap_or_default().to_owned();
        let ports = store::list(&self.db, Kind::Port).await?;
        let old = Self::router_ports(&ports, &router_id, "network:router_gateway");
        let new_net = info
            .get("network_id")
            .and_then(Value::as_str)
            .filter(|_| !info.is_null());
        let same_net = new_net.is_some()
            && old
                .first()
                .is_some_and(|p| p["network_id"].as_str() == new_net);
        if !old.is_empty() && (!same_net || info.get("external_fixed_ips").is_some()) {
            // Floating IPs routed through this gateway keep it in use.
            let used = store::list(&self.db, Kind::FloatingIp)
                .await?
                .iter()
                .any(|f| f["router_id"] == router_id.as_str());
            if used && !same_net {
                return Err(Error::Conflict(format!(
                    "Gateway cannot be updated for router {router_id}, since a gateway to external network {} is required by one or more floating IPs.",
                    old[0]["network_id"].as_str().unwrap_or("")
                )).typed("RouterExternalGatewayInUseByFloatingIp"));
            }
            for p in &old {
                self.remove_port(tx, p).await?;
            }
        }
        let Some(net_id) = new_net else {
            router["external_gateway_info"] = Value::Null;
            return Ok(());
        };
        let net = self.get_visible(ctx, Kind::Network, net_id).await?;
        if net["router:external"] != true {
            return Err(Error::BadRequest(format!(
                "Bad router request: Network {net_id} is not an external network."
            ))
            .typed("BadRequest"));
        }
        let enable_snat = info
            .get("enable_snat")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let gw_port = if same_net && info.get("external_fixed_ips").is_none() {
            old[0].clone()
        } else {
            let spec = PortSpec {
                project_id: String::new(),
                network_id: net_id.to_owned(),
                fixed_ips: info
                    .get("external_fixed_ips")
                    .and_then(Value::as_array)
                    .cloned(),
                device_owner: "network:router_gateway".into(),
                device_id: router_id.clone(),
                admin_state_up: true,
                port_security_enabled: Some(false),
                vnic_type: "normal".into(),
                binding_profile: json!({}),
                ..Default::default()
            };
            self.build_port(spec, tx, &mut HashSet::new()).await?
        };
        router["external_gateway_info"] = json!({
            "network_id": net_id,
            "enable_snat": enable_snat,
            "external_fixed_ips": gw_port["fixed_ips"],
        });
        Ok(())
    }

    fn check_routes(&self, routes: &Value, connected: &[crate::ipam::Cidr]) -> Result<Value> {
        let arr = routes
            .as_array()
            .ok_or_else(|| Error::BadRequest("Invalid input for routes: must be a list.".into()))?;
        for r in arr {
            let dest = r["destination"].as_str().map(crate::ipam::Cidr::parse);
            let hop = r["nexthop"].as_str().and_then(ipam::parse_ip);
            match (dest, hop) {
                (Some(Ok(_)), Some((a, v6))) if connected.iter().any(|c| c.contains(a, v6)) => {}
                (Some(Ok(_)), Some(_)) => {
                    return Err(Error::BadRequest(format!(
                        "Invalid format for routes: {r}, the nexthop is not connected with router"
                    )))
                }
                _ => {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for routes. Reason: {r} is not a valid route."
                    )))
                }
            }
        }
        Ok(routes.clone())
    }

    async fn connected_cidrs(&self, router_id: &str) -> Result<Vec<crate::ipam::Cidr>> {
        let ports = store::list(&self.db, Kind::Port).await?;
        let subnets = store::list(&self.db, Kind::Subnet).await?;
        let mut out = Vec::new();
        for p in ports.iter().filter(|p| p["device_id"] == router_id) {
            for f in p["fixed_ips"].as_array().cloned().unwrap_or_default() {
                if let Some(s) = subnets.iter().find(|s| s["id"] == f["subnet_id"]) {
                    out.push(cidr_of(s));
                }
            }
        }
        Ok(out)
    }

    pub async fn create_router(
        &self,
        ctx: &AuthContext,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::Router)?;
        refuse_distributed(body)?;
        let mut doc = self.base_doc(ctx, body, "router")?;
        let project = doc["project_id"].as_str().expect("project").to_owned();
        self.authorize_create(ctx, Kind::Router, &project, None, body)?;
        let ha = opt_bool(body, "ha")?.unwrap_or(self.config.network.l3_ha);
        let ha_net = match ha {
            true => Some(self.prepare_ha(&project).await?),
            false => None,
        };
        doc.insert(
            "admin_state_up".into(),
            json!(opt_bool(body, "admin_state_up")?.unwrap_or(true)),
        );
        doc.insert("status".into(), json!("ACTIVE"));
        doc.insert("external_gateway_info".into(), Value::Null);
        doc.insert("routes".into(), json!([]));
        doc.insert(
            "availability_zone_hints".into(),
            body.get("availability_zone_hints")
                .cloned()
                .unwrap_or_else(|| json!([])),
        );
        doc.insert("availability_zones".into(), json!([]));
        doc.insert("ha".into(), json!(false));
        doc.insert("_l3_agents".into(), json!([]));
        let mut doc = Value::Object(doc);
        let guard = self.alloc_lock.lock().await;
        let mut tx = store::Tx::begin(&self.db);
        self.limit_quota(&mut tx, Kind::Router, &project).await?;
        if let Some(info) = body.get("external_gateway_info").filter(|v| !v.is_null()) {
            self.set_gateway(ctx, &mut doc, info, &mut tx).await?;
        }
        match ha_net {
            Some(net) => self.make_ha(&mut doc, net).await?,
            None => doc["_l3_agents"] = json!(self.pick_agents("L3 agent", 1).await?),
        }
        tx.insert(Kind::Router, &doc);
        tx.commit().await?;
        drop(guard);
        if ha {
            self.ha_ports_for_agents(&doc).await?;
        }
        self.notify(Kind::Router, "create", &doc).await;
        Ok(doc)
    }

    pub async fn update_router(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::Router)?;
        let mut doc = self.get_for_update(ctx, Kind::Router, id, body).await?;
        update_common(&mut doc, body, "router")?;
        if let Some(v) = opt_bool(body, "admin_state_up")? {
            doc["admin_state_up"] = json!(v);
        }
        refuse_distributed(body)?;
        let ha_change = opt_bool(body, "ha")?.filter(|&want| want != is_ha(&doc));
        if ha_change.is_some() && doc["admin_state_up"] != false {
            return Err(Error::BadRequest(
                "Bad router request: Cannot change HA attribute of active routers. Please set router admin_state_up to False prior to upgrade.".into(),
            )
            .typed("BadRequest"));
        }
        let project = doc["project_id"].as_str().unwrap_or_default().to_owned();
        let ha_net = match ha_change {
            Some(true) => Some(self.prepare_ha(&project).await?),
            _ => None,
        };
        let guard = self.alloc_lock.lock().await;
        let mut tx = store::Tx::begin(&self.db);
        match (ha_change, ha_net) {
            (Some(true), Some(net)) => self.make_ha(&mut doc, net).await?,
            (Some(false), _) => self.make_legacy(&mut doc, &mut tx).await?,
            _ => {}
        }
        if let Some(info) = body.get("external_gateway_info") {
            self.set_gateway(ctx, &mut doc, info, &mut tx).await?;
        }
        if let Some(r) = body.get("routes") {
            let connected = self.connected_cidrs(id).await?;
            doc["routes"] = if r.is_null() {
                json!([])
            } else {
                self.check_routes(r, &connected)?
            };
        }
        touch(&mut doc);
        tx.update(Kind::Router, &doc);
        tx.commit().await?;
        drop(guard);
        match ha_change {
            Some(true) => self.ha_ports_for_agents(&doc).await?,
            Some(false) => self.drop_unused_ha_network(&project).await?,
            None => {}
        }
        self.notify(Kind::Router, "update", &doc).await;
        Ok(doc)
    }

    /// An HA router becomes a legacy one on its first agent (inside `tx`).
    async fn make_legacy(&self, doc: &mut Value, tx: &mut store::Tx<'_>) -> Result<()> {
        self.drop_ha_ports(tx, doc["id"].as_str().unwrap_or_default())
            .await?;
        let first: Vec<Value> = doc["_l3_agents"]
            .as_array()
            .into_iter()
            .flatten()
            .take(1)
            .cloned()
            .collect();
        let o = doc.as_object_mut().expect("a router document");
        for k in ["_ha_network", "_ha_vr_id", "_ha_states"] {
            o.remove(k);
        }
        o.insert("ha".into(), json!(false));
        o.insert("_l3_agents".into(), json!(first));
        Ok(())
    }

    pub async fn delete_router(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let doc = self.get_for_delete(ctx, Kind::Router, id).await?;
        let ports = store::list(&self.db, Kind::Port).await?;
        if !Self::router_ports(&ports, id, "network:router_interface").is_empty() {
            return Err(
                Error::Conflict(format!("Router {id} still has ports")).typed("RouterInUse")
            );
        }
        if store::list(&self.db, Kind::FloatingIp)
            .await?
            .iter()
            .any(|f| f["router_id"] == id)
        {
            return Err(Error::Conflict(format!(
                "Router {id} still has floating IPs associated through it"
            ))
            .typed("RouterInUse"));
        }
        let mut tx = store::Tx::begin(&self.db);
        for p in Self::router_ports(&ports, id, "network:router_gateway") {
            self.remove_port(&mut tx, &p).await?;
        }
        self.drop_ha_ports(&mut tx, id).await?;
        tx.delete(Kind::Router, id);
        tx.commit().await?;
        if is_ha(&doc) {
            self.drop_unused_ha_network(doc["project_id"].as_str().unwrap_or_default())
                .await?;
        }
        self.notify(Kind::Router, "delete", &doc).await;
        Ok(())
    }

    /// `PUT /routers/{id}/add_router_interface` with `subnet_id` or `port_id`.
    pub async fn add_router_interface(
        &self,
        ctx: &AuthContext,
        id: &str,
        subnet_id: Option<&str>,
        port_id: Option<&str>,
    ) -> Result<Value> {
        let router = self.get_visible(ctx, Kind::Router, id).await?;
        self.enforce(ctx, "add_router_interface", &router)?;
        let ports = store::list(&self.db, Kind::Port).await?;
        let existing = Self::router_ports(&ports, id, "network:router_interface");
        let guard = self.alloc_lock.lock().await;
        let mut tx = store::Tx::begin(&self.db);
        let port = match (subnet_id, port_id) {
            (Some(_), Some(_)) => {
                return Err(Error::BadRequest(
                    "Bad router request: Cannot specify both subnet-id and port-id".into(),
                )
                .typed("BadRequest"))
            }
            (None, None) => {
                return Err(Error::BadRequest(
                    "Bad router request: Either subnet_id or port_id must be specified".into(),
                )
                .typed("BadRequest"))
            }
            (Some(sid), None) => {
                let subnet = self.get_visible(ctx, Kind::Subnet, sid).await?;
                if !self.is_admin(ctx) && subnet["project_id"] != router["project_id"] {
                    return Err(Error::BadRequest(format!(
                        "Bad router request: Cannot add interface to router {id} because subnet {sid} is not owned by project making the request."
                    ))
                    .typed("BadRequest"));
                }
                let gw = subnet["gateway_ip"].as_str().ok_or_else(|| {
                    Error::BadRequest(
                        "Bad router request: Subnet for router interface must have a gateway IP."
                            .to_string(),
                    )
                    .typed("BadRequest")
                })?;
                if existing.iter().any(|p| {
                    p["fixed_ips"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|f| f["subnet_id"] == sid))
                }) {
                    return Err(Error::BadRequest(format!(
                        "Bad router request: Router already has a port on subnet {sid}."
                    ))
                    .typed("BadRequest"));
                }
                self.check_overlap(id, &subnet, &ports).await?;
                let spec = PortSpec {
                    project_id: router["project_id"].as_str().unwrap_or_default().to_owned(),
                    network_id: subnet["network_id"].as_str().unwrap_or_default().to_owned(),
                    fixed_ips: Some(vec![json!({"subnet_id": sid, "ip_address": gw})]),
                    device_owner: "network:router_interface".into(),
                    device_id: id.to_owned(),
                    admin_state_up: true,
                    port_security_enabled: Some(false),
                    vnic_type: "normal".into(),
                    binding_profile: json!({}),
                    allow_gateway_ip: true,
                    ..Default::default()
                };
                self.build_port(spec, &mut tx, &mut HashSet::new()).await.map_err(|e| match e {
                    Error::Conflict(_) => Error::Conflict(format!("IP address {gw} already allocated in subnet {sid}: the gateway address is in use.")).typed("IpAddressAlreadyAllocated"),
                    other => other,
                })?
            }
            (None, Some(pid)) => {
                let mut port = self.get_visible(ctx, Kind::Port, pid).await?;
                if !port["device_id"].as_str().unwrap_or("").is_empty()
                    || !port["device_owner"].as_str().unwrap_or("").is_empty()
                {
                    return Err(Error::Conflict(format!(
                        "Port {pid} is in use by {}.",
                        port["device_owner"].as_str().unwrap_or("a device")
                    )));
                }
                let fixed = port["fixed_ips"].as_array().cloned().unwrap_or_default();
                if fixed.is_empty() {
                    return Err(Error::BadRequest(
                        "Bad router request: Router port must have at least one fixed IP"
                            .to_string(),
                    )
                    .typed("BadRequest"));
                }
                for f in &fixed {
                    let s = self
                        .get_doc(Kind::Subnet, f["subnet_id"].as_str().unwrap_or_default())
                        .await?;
                    self.check_overlap(id, &s, &ports).await?;
                }
                port["device_owner"] = json!("network:router_interface");
                port["device_id"] = json!(id);
                port["security_groups"] = json!([]);
                port["port_security_enabled"] = json!(false);
                touch(&mut port);
                tx.update(Kind::Port, &port);
                port
            }
        };
        tx.commit().await?;
        drop(guard);
        self.notify(Kind::Port, "create", &port).await;
        self.notify(Kind::Router, "update", &router).await;
        let subnet_ids: Vec<Value> = port["fixed_ips"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| f["subnet_id"].clone())
            .collect();
        Ok(json!({
            "id": id, "tenant_id": router["project_id"], "project_id": router["project_id"],
            "port_id": port["id"], "network_id": port["network_id"],
            "subnet_id": subnet_ids.first().cloned().unwrap_or(Value::Null), "subnet_ids": subnet_ids,
        }))
    }

    /// A router cannot connect two subnets whose CIDRs overlap.
    async fn check_overlap(&self, router_id: &str, subnet: &Value, ports: &[Value]) -> Result<()> {
        let c = cidr_of(subnet);
        for p in ports.iter().filter(|p| {
            p["device_id"] == router_id && p["device_owner"] == "network:router_interface"
        }) {
            for f in p["fixed_ips"].as_array().cloned().unwrap_or_default() {
                if let Some(s) = store::get(
                    &self.db,
                    Kind::Subnet,
                    f["subnet_id"].as_str().unwrap_or_default(),
                )
                .await?
                {
                    if s["id"] != subnet["id"] && cidr_of(&s).overlaps(&c) {
                        return Err(Error::BadRequest(format!(
                            "Bad router request: Cidr {c} of subnet {} overlaps with cidr {} of subnet {}.",
                            subnet["id"].as_str().unwrap_or(""),
                            cidr_of(&s),
                            s["id"].as_str().unwrap_or("")
                        )).typed("BadRequest"));
                    }
                }
            }
        }
        Ok(())
    }

    pub async fn remove_router_interface(
        &self,
        ctx: &AuthContext,
        id: &str,
        subnet_id: Option<&str>,
        port_id: Option<&str>,
    ) -> Result<Value> {
        let router = self.get_visible(ctx, Kind::Router, id).await?;
        self.enforce(ctx, "remove_router_interface", &router)?;
        if subnet_id.is_none() && port_id.is_none() {
            return Err(Error::BadRequest(
                "Bad router request: Either subnet_id or port_id must be specified".into(),
            )
            .typed("BadRequest"));
        }
        let ports = store::list(&self.db, Kind::Port).await?;
        let port = Self::router_ports(&ports, id, "network:router_interface")
            .into_iter()
            .find(|p| {
                port_id.is_none_or(|pid| p["id"] == pid)
                    && subnet_id.is_none_or(|sid| {
                        p["fixed_ips"]
                            .as_array()
                            .is_some_and(|f| f.iter().any(|f| f["subnet_id"] == sid))
                    })
            })
            .ok_or_else(|| match (port_id, subnet_id) {
                (Some(pid), _) => Error::NotFound(format!(
                    "Router {id} does not have an interface with id {pid}"
                ))
                .typed("RouterInterfaceNotFound"),
                (None, Some(sid)) => {
                    Error::NotFound(format!("Router {id} has no interface on subnet {sid}"))
                        .typed("RouterInterfaceNotFoundForSubnet")
                }
                _ => unreachable!("checked above"),
            })?;
        // Floating IPs that reach their port through this interface block its removal.
        let subnets: Vec<Value> = port["fixed_ips"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| f["subnet_id"].clone())
            .collect();
        for f in store::list(&self.db, Kind::FloatingIp)
            .await?
            .iter()
            .filter(|f| f["router_id"] == id)
        {
            if let Some(p) = store::get(
                &self.db,
                Kind::Port,
                f["port_id"].as_str().unwrap_or_default(),
            )
            .await?
            {
                if p["fixed_ips"]
                    .as_array()
                    .is_some_and(|fx| fx.iter().any(|x| subnets.contains(&x["subnet_id"])))
                {
                    return Err(Error::Conflict(format!(
                        "Router interface for subnet on router {id} cannot be deleted, as it is required by one or more floating IPs."
                    )).typed("RouterExternalGatewayInUseByFloatingIp"));
                }
            }
        }
        let mut tx = store::Tx::begin(&self.db);
        self.remove_port(&mut tx, &port).await?;
        tx.commit().await?;
        self.notify(Kind::Port, "delete", &port).await;
        self.notify(Kind::Router, "update", &router).await;
        Ok(json!({
            "id": id, "tenant_id": router["project_id"], "project_id": router["project_id"],
            "port_id": port["id"], "network_id": port["network_id"],
            "subnet_id": subnets.first().cloned().unwrap_or(Value::Null), "subnet_ids": subnets,
        }))
    }

    // ----- floating IPs -----

    /// The port's address to use and the router that connects it to `ext_net`.
    async fn route_for(
        &self,
        ext_net: &str,
        port: &Value,
        fixed: Option<&str>,
    ) -> Result<(String, String)> {
        let ips: Vec<Value> = port["fixed_ips"].as_array().cloned().unwrap_or_default();
        let chosen = match fixed {
            Some(ip) => ips
                .iter()
                .find(|f| f["ip_address"] == ip)
                .cloned()
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Port {} does not have fixed ip {ip}",
                        port["id"].as_str().unwrap_or("")
                    ))
                })?,
            None => ips
                .iter()
                .find(|f| f["ip_address"].as_str().is_some_and(|a| !a.contains(':')))
                .cloned()
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Port {} does not have an IPv4 address.",
                        port["id"].as_str().unwrap_or("")
                    ))
                })?,
        };
        let subnet_id = chosen["subnet_id"].as_str().unwrap_or_default();
        let ports = store::list(&self.db, Kind::Port).await?;
        for r in store::list(&self.db, Kind::Router).await? {
            let rid = r["id"].as_str().unwrap_or_default();
            let has_gw = r["external_gateway_info"]["network_id"] == ext_net;
            let has_if = Self::router_ports(&ports, rid, "network:router_interface")
                .iter()
                .any(|p| {
                    p["fixed_ips"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|f| f["subnet_id"] == subnet_id))
                });
            if has_gw && has_if {
                return Ok((
                    chosen["ip_address"].as_str().unwrap_or_default().to_owned(),
                    rid.to_owned(),
                ));
            }
        }
        Err(Error::NotFound(format!(
            "External network {ext_net} is not reachable from subnet {subnet_id}. Therefore, cannot associate Port {} with a Floating IP.",
            port["id"].as_str().unwrap_or("")
        )).typed("ExternalGatewayForFloatingIPNotFound"))
    }

    async fn associate(
        &self,
        ctx: &AuthContext,
        fip: &mut Value,
        port_id: Option<&str>,
        fixed: Option<&str>,
    ) -> Result<()> {
        match port_id {
            None => {
                fip["port_id"] = Value::Null;
                fip["fixed_ip_address"] = Value::Null;
                fip["router_id"] = Value::Null;
                fip["status"] = json!("DOWN");
            }
            Some(pid) => {
                let port = self.get_visible(ctx, Kind::Port, pid).await?;
                if !self.is_admin(ctx) && port["project_id"] != fip["project_id"] {
                    return Err(not_found(Kind::Port, pid));
                }
                let ext = fip["floating_network_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let (ip, router) = self.route_for(&ext, &port, fixed).await?;
                let clash = store::list(&self.db, Kind::FloatingIp)
                    .await?
                    .into_iter()
                    .find(|f| {
                        f["id"] != fip["id"]
                            && f["port_id"] == pid
                            && f["fixed_ip_address"] == ip.as_str()
                    });
                if let Some(other) = clash {
                    return Err(Error::Conflict(format!(
                        "Cannot associate floating IP {} with port {pid} using fixed IP {ip}, as that fixed IP already has a floating IP on external network {ext}: {}.",
                        fip["floating_ip_address"].as_str().unwrap_or(""),
                        other["floating_ip_address"].as_str().unwrap_or("")
                    )));
                }
                fip["port_id"] = json!(pid);
                fip["fixed_ip_address"] = json!(ip);
                fip["router_id"] = json!(router);
                fip["status"] = json!("ACTIVE");
            }
        }
        Ok(())
    }

    pub async fn create_floatingip(
        &self,
        ctx: &AuthContext,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::FloatingIp)?;
        let net_id = body
            .get("floating_network_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::BadRequest("Invalid input: 'floating_network_id' is required.".into())
                    .typed("InvalidInput")
            })?
            .to_owned();
        let net = self.get_visible(ctx, Kind::Network, &net_id).await?;
        if net["router:external"] != true {
            return Err(Error::BadRequest(format!(
                "Bad floatingip request: Network {net_id} is not a valid external network."
            ))
            .typed("BadRequest"));
        }
        let mut doc = self.base_doc(ctx, body, "floatingip")?;
        doc.remove("name");
        let project = doc["project_id"].as_str().expect("project").to_owned();
        self.authorize_create(ctx, Kind::FloatingIp, &project, None, body)?;
        let id = doc["id"].as_str().expect("id").to_owned();
        let mut fixed = Vec::new();
        if let Some(ip) = body.get("floating_ip_address").and_then(Value::as_str) {
            let mut f = json!({"ip_address": ip});
            if let Some(s) = body.get("subnet_id") {
                f["subnet_id"] = s.clone();
            }
            fixed.push(f);
        } else if let Some(s) = body.get("subnet_id").and_then(Value::as_str) {
            fixed.push(json!({"subnet_id": s}));
        }
        let guard = self.alloc_lock.lock().await;
        let mut tx = store::Tx::begin(&self.db);
        self.limit_quota(&mut tx, Kind::FloatingIp, &project)
            .await?;
        let v4_subnet = store::list(&self.db, Kind::Subnet)
            .await?
            .into_iter()
            .find(|s| s["network_id"] == net_id.as_str() && s["ip_version"] == 4);
        if fixed.is_empty() {
            if let Some(s) = &v4_subnet {
                fixed.push(json!({"subnet_id": s["id"]}));
            }
        }
        let spec = PortSpec {
            project_id: String::new(),
            network_id: net_id.clone(),
            fixed_ips: Some(fixed),
            device_owner: "network:floatingip".into(),
            device_id: id.clone(),
            admin_state_up: true,
            port_security_enabled: Some(false),
            vnic_type: "normal".into(),
            binding_profile: json!({}),
            ..Default::default()
        };
        let port = self
            .build_port(spec, &mut tx, &mut HashSet::new())
            .await
            .map_err(|e| match e {
                Error::Conflict(m) if m.starts_with("No more IP") => Error::Conflict(format!(
                    "No more IP addresses available on network {net_id}."
                ))
                .typed("IpAddressGenerationFailure"),
                other => other,
            })?;
        let address = port["fixed_ips"][0]["ip_address"].clone();
        if address.is_null() {
            return Err(Error::BadRequest(format!(
                "Bad floatingip request: Network {net_id} has no IPv4 subnet to allocate a floating IP from."
            ))
            .typed("BadRequest"));
        }
        doc.insert("floating_network_id".into(), json!(net_id));
        doc.insert("floating_ip_address".into(), address);
        doc.insert("port_id".into(), Value::Null);
        doc.insert("fixed_ip_address".into(), Value::Null);
        doc.insert("router_id".into(), Value::Null);
        doc.insert("status".into(), json!("DOWN"));
        doc.insert("port_forwardings".into(), json!([]));
        doc.insert("_port".into(), port["id"].clone());
        let mut doc = Value::Object(doc);
        if let Some(pid) = body.get("port_id").and_then(Value::as_str) {
            self.associate(
                ctx,
                &mut doc,
                Some(pid),
                body.get("fixed_ip_address").and_then(Value::as_str),
            )
            .await?;
        }
        tx.insert(Kind::FloatingIp, &doc);
        tx.commit().await?;
        drop(guard);
        self.notify(Kind::FloatingIp, "create", &doc).await;
        self.tell_nova_addresses_changed(&[doc["port_id"].as_str()])
            .await;
        Ok(doc)
    }

    pub async fn update_floatingip(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::FloatingIp)?;
        let mut doc = self.get_for_update(ctx, Kind::FloatingIp, id, body).await?;
        let old_port = doc["port_id"].as_str().map(str::to_owned);
        if let Some(v) = opt_string(body, "description", "floatingip", 255)? {
            doc["description"] = json!(v);
        }
        for k in ["floating_network_id", "floating_ip_address"] {
            if let Some(v) = body.get(k) {
                if v != &doc[k] {
                    return Err(Error::BadRequest(format!(
                        "Cannot update read-only attribute {k}"
                    )));
                }
            }
        }
        if body.contains_key("port_id") {
            let pid = body["port_id"].as_str().map(str::to_owned);
            self.associate(
                ctx,
                &mut doc,
                pid.as_deref(),
                body.get("fixed_ip_address").and_then(Value::as_str),
            )
            .await?;
        } else if let Some(ip) = body.get("fixed_ip_address").and_then(Value::as_str) {
            let pid = doc["port_id"].as_str().map(str::to_owned);
            self.associate(ctx, &mut doc, pid.as_deref(), Some(ip))
                .await?;
        }
        touch(&mut doc);
        let mut tx = store::Tx::begin(&self.db);
        tx.update(Kind::FloatingIp, &doc);
        tx.commit().await?;
        self.notify(Kind::FloatingIp, "update", &doc).await;
        if old_port.as_deref() != doc["port_id"].as_str() {
            self.tell_nova_addresses_changed(&[old_port.as_deref(), doc["port_id"].as_str()])
                .await;
        }
        Ok(doc)
    }

    pub async fn delete_floatingip(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let doc = self.get_for_delete(ctx, Kind::FloatingIp, id).await?;
        let mut tx = store::Tx::begin(&self.db);
        if let Some(p) = store::get(
            &self.db,
            Kind::Port,
            doc["_port"].as_str().unwrap_or_default(),
        )
        .await?
        {
            tx.release_port_ips(p["id"].as_str().unwrap_or_default());
            tx.release_mac(p["id"].as_str().unwrap_or_default());
            tx.delete(Kind::Port, p["id"].as_str().unwrap_or_default());
            self.note_released(&p);
        }
        tx.delete(Kind::FloatingIp, id);
        tx.commit().await?;
        self.notify(Kind::FloatingIp, "delete", &doc).await;
        self.tell_nova_addresses_changed(&[doc["port_id"].as_str()])
            .await;
        Ok(())
    }

    /// Tell compute that these instance ports' floating IPs changed.
    async fn tell_nova_addresses_changed(&self, ports: &[Option<&str>]) {
        let Some(nova) = &self.nova else {
            return;
        };
        for id in ports.iter().flatten() {
            if let Ok(Some(port)) = store::get(&self.db, Kind::Port, id).await {
                if let Some(event) = crate::nova::NovaNotifier::network_changed_for(&port) {
                    nova.send(event);
                }
            }
        }
    }
}
