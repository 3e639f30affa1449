//! Subnets: CIDR and pool validation, gateways, DNS servers, host routes,
//! IPv6 address modes.

use super::*;
use crate::ipam::{self, Cidr};

/// A subnet's own attributes (a CIDR is required: there are no subnet pools).
pub(super) const ATTRIBUTES: &[Attribute] = &[
    Attribute::required("network_id", Str),
    Attribute::required("ip_version", Int),
    Attribute::required("cidr", Str),
    Attribute::updatable("gateway_ip", Str).or_null(),
    Attribute::updatable("allocation_pools", Array),
    Attribute::updatable("enable_dhcp", Bool),
    Attribute::updatable("dns_nameservers", Array),
    Attribute::updatable("host_routes", Array),
    Attribute::create_only("ipv6_ra_mode", Str).or_null(),
    Attribute::create_only("ipv6_address_mode", Str).or_null(),
    Attribute::create_only("subnetpool_id", Str),
    Attribute::create_only("prefixlen", Int),
    Attribute::create_only("service_types", Array),
    Attribute::create_only("segment_id", Str),
    Attribute::create_only("use_default_subnetpool", Bool),
    Attribute::create_only("dns_publish_fixed_ip", Bool),
];
const IPV6_MODES: &[&str] = &["slaac", "dhcpv6-stateful", "dhcpv6-stateless"];

/// The subnet's CIDR (stored documents are always valid).
pub fn cidr_of(subnet: &Value) -> Cidr {
    Cidr::parse(subnet["cidr"].as_str().unwrap_or("0.0.0.0/0")).unwrap_or(Cidr {
        addr: 0,
        prefix: 0,
        v6: false,
    })
}

/// The subnet's pools as numbers.
pub fn pools_of(subnet: &Value) -> Vec<(u128, u128)> {
    subnet["allocation_pools"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    let s = ipam::parse_ip(p["start"].as_str()?)?.0;
                    let e = ipam::parse_ip(p["end"].as_str()?)?.0;
                    Some((s, e))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pools_json(c: &Cidr, pools: &[(u128, u128)]) -> Value {
    Value::Array(
        pools
            .iter()
            .map(|(s, e)| json!({"start": c.ip(*s), "end": c.ip(*e)}))
            .collect(),
    )
}

fn parse_pools(c: &Cidr, v: &Value) -> Result<Vec<(u128, u128)>> {
    let arr = v.as_array().ok_or_else(|| {
        Error::BadRequest("Invalid input for allocation_pools: must be a list.".into())
    })?;
    let mut out = Vec::new();
    for p in arr {
        let s = p["start"].as_str().and_then(ipam::parse_ip);
        let e = p["end"].as_str().and_then(ipam::parse_ip);
        match (s, e) {
            (Some((s, v6a)), Some((e, v6b))) if v6a == c.v6 && v6b == c.v6 => out.push((s, e)),
            _ => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for allocation_pools. Reason: {p} is not a valid pool."
                )))
            }
        }
    }
    ipam::validate_pools(c, &out).map_err(|e| match e {
        ipam::PoolError::OutOfBounds(m) => Error::BadRequest(m).typed("OutOfBoundsAllocationPool"),
        ipam::PoolError::Overlapping(m) => Error::Conflict(m).typed("OverlappingAllocationPools"),
        ipam::PoolError::Invalid(m) => Error::BadRequest(m).typed("InvalidInput"),
    })?;
    Ok(out)
}

fn check_dns(v: &Value) -> Result<Value> {
    let arr = v.as_array().ok_or_else(|| {
        Error::BadRequest("Invalid input for dns_nameservers: must be a list.".into())
    })?;
    let mut seen = Vec::new();
    for d in arr {
        let s = d
            .as_str()
            .filter(|s| ipam::parse_ip(s).is_some())
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for dns_nameservers. Reason: '{d}' is not a valid IP address."
                ))
            })?;
        if seen.contains(&s) {
            return Err(Error::BadRequest(format!(
                "Invalid input for dns_nameservers. Reason: Duplicate nameserver '{s}'."
            )));
        }
        seen.push(s);
    }
    Ok(v.clone())
}

fn check_routes(c: &Cidr, v: &Value) -> Result<Value> {
    let arr = v.as_array().ok_or_else(|| {
        Error::BadRequest("Invalid input for host_routes: must be a list.".into())
    })?;
    for r in arr {
        let dest = r["destination"].as_str().map(Cidr::parse);
        let hop = r["nexthop"].as_str().and_then(ipam::parse_ip);
        match (dest, hop) {
            (Some(Ok(d)), Some((_, v6))) if d.v6 == c.v6 && v6 == c.v6 => {}
            _ => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for host_routes. Reason: {r} is not a valid route."
                )))
            }
        }
    }
    Ok(v.clone())
}

impl NetworkService {
    pub async fn create_subnet(
        &self,
        ctx: &AuthContext,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::Subnet)?;
        let network_id = body
            .get("network_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::BadRequest("Invalid input: 'network_id' is required for a subnet.".into())
                    .typed("InvalidInput")
            })?
            .to_owned();
        let net = self.get_visible(ctx, Kind::Network, &network_id).await?;
        let version = body
            .get("ip_version")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
        let version = match version {
            Some(4) => 4,
            Some(6) => 6,
            _ => {
                return Err(Error::BadRequest(
                    "Invalid input for ip_version. Reason: it must be 4 or 6.".into(),
                ))
            }
        };
        let cidr_s = body.get("cidr").and_then(Value::as_str).ok_or_else(|| {
            Error::BadRequest(
                "Bad subnets request: a cidr must be specified in the absence of a subnet pool"
                    .into(),
            )
        })?;
        let c = Cidr::parse(cidr_s)
            .map_err(|e| Error::BadRequest(format!("Invalid input for cidr. Reason: {e}.")))?;
        if c.v6 != (version == 6) {
            return Err(Error::BadRequest(format!(
                "Invalid input: cidr {cidr_s} does not match ip_version {version}."
            ))
            .typed("InvalidInput"));
        }
        if !c.v6 && c.prefix > 30 || c.v6 && c.prefix > 126 {
            return Err(Error::BadRequest(format!(
                "Invalid input for cidr. Reason: {cidr_s} is too small for a subnet."
            )));
        }
        let mut doc = self.base_doc(ctx, body, "subnet")?;
        let project = doc["project_id"].as_str().expect("project").to_owned();
        self.authorize_create(ctx, Kind::Subnet, &project, Some(&net), body)?;

        for s in store::list(&self.db, Kind::Subnet)
            .await?
            .iter()
            .filter(|s| s["network_id"] == network_id.as_str())
        {
            if cidr_of(s).overlaps(&c) {
                return Err(Error::BadRequest(format!(
                    "Invalid input for operation: Requested subnet with cidr: {c} for network: {network_id} overlaps with another subnet."
                )).typed("InvalidInput"));
            }
        }
        let gateway = match body.get("gateway_ip") {
            Some(Value::Null) => None,
            Some(Value::String(g)) => {
                let (a, v6) = ipam::parse_ip(g).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Invalid input for gateway_ip. Reason: '{g}' is not a valid IP address."
                    ))
                })?;
                if v6 != c.v6
                    || !c.contains(a, v6)
                    || (!c.v6 && (a == c.network() || a == c.last()))
                {
                    return Err(Error::BadRequest(format!("Gateway ip {g} conflicts with the subnet {c}: it must be a host address of the subnet.")));
                }
                Some(a)
            }
            Some(v) => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for gateway_ip. Reason: '{v}' is not a valid IP address."
                )))
            }
            // Neutron: IPv4 takes the first host, IPv6 the subnet-router anycast address.
            None => Some(if c.v6 { c.network() } else { c.network() + 1 }),
        };
        let pools = match body.get("allocation_pools") {
            None | Some(Value::Null) => ipam::default_pools(&c, gateway),
            Some(v) => {
                let pools = parse_pools(&c, v)?;
                if let Some(g) = gateway {
                    if pools.iter().any(|(s, e)| g >= *s && g <= *e) {
                        return Err(Error::Conflict(format!(
                            "Gateway ip {} conflicts with allocation pool {}.",
                            c.ip(g),
                            pools
                                .iter()
                                .map(|(s, e)| format!("{}-{}", c.ip(*s), c.ip(*e)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                        .typed("GatewayConflictWithAllocationPools"));
                    }
                }
                pools
            }
        };
        let mut modes = [None, None];
        for (i, k) in ["ipv6_ra_mode", "ipv6_address_mode"].iter().enumerate() {
            if let Some(m) = body.get(*k).filter(|v| !v.is_null()) {
                let m = m.as_str().filter(|m| IPV6_MODES.contains(m)).ok_or_else(|| {
                    Error::BadRequest(format!("Invalid input for {k}. Reason: {m} is not in [slaac, dhcpv6-stateful, dhcpv6-stateless]."))
                })?;
                if version == 4 {
                    return Err(Error::BadRequest(format!(
                        "Invalid input: {k} is set but ip_version is 4."
                    ))
                    .typed("InvalidInput"));
                }
                modes[i] = Some(m.to_owned());
            }
        }
        if let (Some(a), Some(b)) = (&modes[0], &modes[1]) {
            if a != b {
                return Err(Error::BadRequest(format!("Invalid input: ipv6_ra_mode {a} and ipv6_address_mode {b} are not a valid combination.")).typed("InvalidInput"));
            }
        }
        if (modes[1].as_deref() == Some("slaac") || modes[1].as_deref() == Some("dhcpv6-stateless"))
            && c.prefix != 64
        {
            return Err(Error::BadRequest(
                "Invalid input: SLAAC subnets need a /64 prefix.".into(),
            )
            .typed("InvalidInput"));
        }
        doc.insert("network_id".into(), json!(network_id));
        doc.insert("ip_version".into(), json!(version));
        doc.insert("cidr".into(), json!(c.to_string()));
        doc.insert("gateway_ip".into(), json!(gateway.map(|g| c.ip(g))));
        doc.insert("allocation_pools".into(), pools_json(&c, &pools));
        doc.insert(
            "enable_dhcp".into(),
            json!(opt_bool(body, "enable_dhcp")?.unwrap_or(true)),
        );
        doc.insert(
            "dns_nameservers".into(),
            check_dns(body.get("dns_nameservers").unwrap_or(&json!([])))?,
        );
        doc.insert(
            "host_routes".into(),
            check_routes(&c, body.get("host_routes").unwrap_or(&json!([])))?,
        );
        doc.insert("ipv6_ra_mode".into(), json!(modes[0]));
        doc.insert("ipv6_address_mode".into(), json!(modes[1]));
        doc.insert("subnetpool_id".into(), Value::Null);
        doc.insert(
            "service_types".into(),
            body.get("service_types")
                .cloned()
                .unwrap_or_else(|| json!([])),
        );
        doc.insert("segment_id".into(), Value::Null);
        let doc = Value::Object(doc);
        let mut tx = store::Tx::begin(&self.db);
        self.limit_quota(&mut tx, Kind::Subnet, &project).await?;
        tx.insert(Kind::Subnet, &doc);
        // A network with DHCP gets a DHCP agent, as Neutron's auto-scheduling does.
        if doc["enable_dhcp"] == true && net["_dhcp_agents"].as_array().is_none_or(|a| a.is_empty())
        {
            if let Some(agent) = self.pick_agent("DHCP agent").await? {
                let mut net = net.clone();
                net["_dhcp_agents"] = json!([agent]);
                tx.update(Kind::Network, &net);
            }
        }
        tx.commit().await?;
        self.notify(Kind::Subnet, "create", &doc).await;
        Ok(doc)
    }

    pub async fn update_subnet(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::Subnet)?;
        let mut doc = self.get_for_update(ctx, Kind::Subnet, id, body).await?;
        for k in [
            "network_id",
            "ip_version",
            "cidr",
            "subnetpool_id",
            "prefixlen",
            "ipv6_ra_mode",
            "ipv6_address_mode",
        ] {
            if let Some(v) = body.get(k) {
                if v != &doc[k] {
                    return Err(Error::BadRequest(format!(
                        "Cannot update read-only attribute {k}"
                    )));
                }
            }
        }
        let c = cidr_of(&doc);
        update_common(&mut doc, body, "subnet")?;
        if let Some(v) = body.get("gateway_ip") {
            let g = match v {
                Value::Null => None,
                Value::String(g) => {
                    let (a, v6) = ipam::parse_ip(g).filter(|(a, v6)| c.contains(*a, *v6)).ok_or_else(|| {
                        Error::BadRequest(format!("Gateway ip {g} conflicts with the subnet {c}: it must be a host address of the subnet."))
                    })?;
                    let _ = v6;
                    if pools_of(&doc).iter().any(|(s, e)| a >= *s && a <= *e)
                        && !body.contains_key("allocation_pools")
                    {
                        return Err(Error::Conflict(format!(
                            "Gateway ip {g} conflicts with an allocation pool."
                        ))
                        .typed("GatewayConflictWithAllocationPools"));
                    }
                    Some(c.ip(a))
                }
                other => {
                    return Err(Error::BadRequest(format!(
                    "Invalid input for gateway_ip. Reason: '{other}' is not a valid IP address."
                )))
                }
            };
            doc["gateway_ip"] = json!(g);
        }
        if let Some(v) = body.get("allocation_pools") {
            let pools = parse_pools(&c, v)?;
            if let Some(g) = doc["gateway_ip"].as_str().and_then(ipam::parse_ip) {
                if pools.iter().any(|(s, e)| g.0 >= *s && g.0 <= *e) {
                    return Err(Error::Conflict(
                        "Gateway ip conflicts with the allocation pools.".into(),
                    )
                    .typed("GatewayConflictWithAllocationPools"));
                }
            }
            doc["allocation_pools"] = pools_json(&c, &pools);
            self.ip_hints.lock().expect("hints").remove(id);
        }
        if let Some(v) = opt_bool(body, "enable_dhcp")? {
            doc["enable_dhcp"] = json!(v);
        }
        if let Some(v) = body.get("dns_nameservers") {
            doc["dns_nameservers"] = check_dns(v)?;
        }
        if let Some(v) = body.get("host_routes") {
            doc["host_routes"] = check_routes(&c, v)?;
        }
        touch(&mut doc);
        let mut tx = store::Tx::begin(&self.db);
        tx.update(Kind::Subnet, &doc);
        tx.commit().await?;
        self.notify(Kind::Subnet, "update", &doc).await;
        Ok(doc)
    }

    /// A subnet with addresses allocated to ports (other than DHCP) is in use: 409.
    pub async fn delete_subnet(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let doc = self.get_for_delete(ctx, Kind::Subnet, id).await?;
        let network_id = doc["network_id"].as_str().unwrap_or_default().to_owned();
        let mut dhcp_ports = Vec::new();
        let auto_address = matches!(
            doc["ipv6_address_mode"].as_str(),
            Some("slaac" | "dhcpv6-stateless")
        );
        for (_, subnet, port_id) in store::used_ips(&self.db, &network_id).await? {
            if subnet != id {
                continue;
            }
            match store::get(&self.db, Kind::Port, &port_id).await? {
                // DHCP ports, and automatic (SLAAC) addresses, do not keep a subnet in use.
                Some(p) if p["device_owner"] == "network:dhcp" || auto_address => dhcp_ports.push(p),
                _ => {
                    return Err(Error::Conflict(format!(
                        "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
                    )).typed("SubnetInUse"))
                }
            }
        }
        let mut tx = store::Tx::begin(&self.db);
        for mut p in dhcp_ports {
            // DHCP ports lose their address on this subnet.
            let fixed: Vec<Value> = p["fixed_ips"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f["subnet_id"] != id)
                .collect();
            p["fixed_ips"] = Value::Array(fixed);
            tx.update(Kind::Port, &p);
        }
        tx.release_subnet_ips(id);
        tx.delete(Kind::Subnet, id);
        tx.commit().await?;
        self.notify(Kind::Subnet, "delete", &doc).await;
        Ok(())
    }
}
