//! Networks: provider attributes, segmentation id allocation, sharing,
//! external networks, MTU.

use super::*;

/// A network's own attributes (provider ones are fixed at create).
pub(super) const ATTRIBUTES: &[Attribute] = &[
    Attribute::updatable("admin_state_up", Bool),
    Attribute::updatable("shared", Bool),
    Attribute::updatable("router:external", Bool),
    Attribute::updatable("mtu", Int),
    Attribute::updatable("port_security_enabled", Bool),
    Attribute::create_only("availability_zone_hints", Array),
    Attribute::create_only("provider:network_type", Str),
    Attribute::create_only("provider:physical_network", Str),
    Attribute::create_only("provider:segmentation_id", Int).or_null(),
    Attribute::create_only("dns_domain", Str),
    Attribute::create_only("qos_policy_id", Str),
    Attribute::create_only("is_default", Bool),
];

/// `min:max` → the inclusive range.
fn range(spec: &str) -> Option<(i64, i64)> {
    let (a, b) = spec.rsplit_once(':')?;
    let (a, b) = (
        a.rsplit(':').next()?.trim().parse().ok()?,
        b.trim().parse().ok()?,
    );
    (a <= b).then_some((a, b))
}

impl NetworkService {
    fn ranges_for(&self, network_type: &str, physnet: &str) -> Vec<(i64, i64)> {
        let n = &self.config.network;
        let spec = match network_type {
            "vxlan" => n.vni_ranges.clone(),
            "gre" => n.gre_tunnel_id_ranges.clone(),
            "vlan" => n
                .network_vlan_ranges
                .split(',')
                .filter(|r| r.trim().starts_with(&format!("{physnet}:")))
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        };
        spec.split(',').filter_map(|r| range(r.trim())).collect()
    }

    fn mtu_for(&self, network_type: &str) -> i64 {
        let base = self.config.network.global_physnet_mtu;
        match network_type {
            "vxlan" => base - 50,
            "gre" => base - 42,
            "geneve" => base - 58,
            _ => base,
        }
    }

    pub async fn create_network(
        &self,
        ctx: &AuthContext,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::Network)?;
        let shared = opt_bool(body, "shared")?.unwrap_or(false);
        let mut doc = self.base_doc(ctx, body, "network")?;
        let project = doc["project_id"].as_str().expect("project").to_owned();
        self.authorize_create(ctx, Kind::Network, &project, None, body)?;
        let id = doc["id"].as_str().expect("id").to_owned();

        // Segment: the requested provider attributes, else the tenant type.
        let requested_type = opt_string(body, "provider:network_type", "network", 16)?;
        let physnet =
            opt_string(body, "provider:physical_network", "network", 64)?.filter(|p| !p.is_empty());
        let seg_id = match body.get("provider:segmentation_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| {
                        Error::BadRequest(
                            "Invalid input for provider:segmentation_id: must be an integer."
                                .into(),
                        )
                    })?,
            ),
        };
        let network_type =
            requested_type.unwrap_or_else(|| self.config.network.tenant_network_type.clone());
        let (physnet, seg_id) = match network_type.as_str() {
            "local" => {
                if physnet.is_some() || seg_id.is_some() {
                    return Err(Error::BadRequest("Invalid input: local networks take no physical network or segmentation id.".into()).typed("InvalidInput"));
                }
                (None, None)
            }
            "flat" => {
                let p = physnet.ok_or_else(|| {
                    Error::BadRequest(
                        "Invalid input: provider:physical_network is required for flat networks."
                            .into(),
                    )
                    .typed("InvalidInput")
                })?;
                let allowed = &self.config.network.flat_networks;
                if allowed != "*" && !allowed.split(',').any(|x| x.trim() == p) {
                    return Err(Error::BadRequest(format!(
                        "Invalid input: physical network {p} is not a configured flat network."
                    ))
                    .typed("InvalidInput"));
                }
                if seg_id.is_some() {
                    return Err(Error::BadRequest(
                        "Invalid input: flat networks take no segmentation id.".into(),
                    )
                    .typed("InvalidInput"));
                }
                (Some(p), None)
            }
            "vlan" => {
                let p = physnet.ok_or_else(|| {
                    Error::BadRequest(
                        "Invalid input: provider:physical_network is required for vlan networks."
                            .into(),
                    )
                    .typed("InvalidInput")
                })?;
                if let Some(s) = seg_id {
                    if !(1..=4094).contains(&s) {
                        return Err(Error::BadRequest(format!(
                            "Invalid input: segmentation id {s} is outside 1-4094 for vlan."
                        ))
                        .typed("InvalidInput"));
                    }
                }
                (Some(p), seg_id)
            }
            "vxlan" | "gre" | "geneve" => {
                if physnet.is_some() {
                    return Err(Error::BadRequest(format!(
                        "Invalid input: {network_type} networks take no physical network."
                    ))
                    .typed("InvalidInput"));
                }
                (None, seg_id)
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input: network type {other} is not supported."
                ))
                .typed("InvalidInput"))
            }
        };

        let _guard = self.alloc_lock.lock().await;
        let phys_key = physnet.clone().unwrap_or_default();
        let seg_id = match (network_type.as_str(), seg_id) {
            ("local", _) => None,
            ("flat", _) => Some(0),
            (_, Some(s)) => Some(s),
            (t, None) => {
                let used: std::collections::HashSet<i64> =
                    store::used_segments(&self.db, t, &phys_key)
                        .await?
                        .into_iter()
                        .collect();
                let free = self
                    .ranges_for(t, &phys_key)
                    .into_iter()
                    .flat_map(|(a, b)| a..=b)
                    .find(|s| !used.contains(s));
                Some(free.ok_or_else(|| {
                    Error::Unavailable(format!(
                        "Unable to create the network. No {t} segmentation id is available."
                    ))
                })?)
            }
        };

        let mtu = self.mtu_for(&network_type);
        if let Some(m) = body.get("mtu") {
            let m = m.as_i64().ok_or_else(|| {
                Error::BadRequest("Invalid input for mtu: must be an integer.".into())
            })?;
            if m < 68 || m > mtu {
                return Err(Error::BadRequest(format!(
                    "Requested MTU is too big, maximum is {mtu}."
                ))
                .typed("InvalidInput"));
            }
            doc.insert("mtu".into(), json!(m));
        } else {
            doc.insert("mtu".into(), json!(mtu));
        }
        doc.insert(
            "admin_state_up".into(),
            json!(opt_bool(body, "admin_state_up")?.unwrap_or(true)),
        );
        doc.insert("status".into(), json!("ACTIVE"));
        doc.insert("shared".into(), json!(shared));
        doc.insert(
            "router:external".into(),
            json!(opt_bool(body, "router:external")?.unwrap_or(false)),
        );
        doc.insert(
            "port_security_enabled".into(),
            json!(opt_bool(body, "port_security_enabled")?.unwrap_or(true)),
        );
        doc.insert(
            "availability_zone_hints".into(),
            body.get("availability_zone_hints")
                .cloned()
                .unwrap_or_else(|| json!([])),
        );
        doc.insert("availability_zones".into(), json!([]));
        doc.insert("provider:network_type".into(), json!(network_type));
        doc.insert("provider:physical_network".into(), json!(physnet));
        doc.insert(
            "provider:segmentation_id".into(),
            json!(if network_type == "flat" { None } else { seg_id }),
        );
        doc.insert("ipv4_address_scope".into(), Value::Null);
        doc.insert("ipv6_address_scope".into(), Value::Null);
        doc.insert("l2_adjacency".into(), json!(true));
        doc.insert("is_default".into(), json!(false));
        doc.insert("subnets".into(), json!([]));
        let doc = Value::Object(doc);

        let mut tx = store::Tx::begin(&self.db);
        self.limit_quota(&mut tx, Kind::Network, &project).await?;
        if let Some(s) = seg_id {
            tx.allocate_segment(&network_type, &phys_key, s, &id);
        }
        tx.insert(Kind::Network, &doc);
        tx.commit().await?;
        drop(_guard);
        self.notify(Kind::Network, "create", &doc).await;
        Ok(doc)
    }

    pub async fn update_network(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::Network)?;
        let mut doc = self.get_for_update(ctx, Kind::Network, id, body).await?;
        for k in [
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        ] {
            if body.contains_key(k) && body[k] != doc[k] {
                return Err(
                    Error::BadRequest(format!("Invalid input: {k} cannot be updated."))
                        .typed("InvalidInput"),
                );
            }
        }
        update_common(&mut doc, body, "network")?;
        if let Some(v) = opt_bool(body, "admin_state_up")? {
            doc["admin_state_up"] = json!(v);
        }
        if let Some(v) = opt_bool(body, "shared")? {
            if !v && doc["shared"] == true {
                // Refuse unsharing while other projects have ports on it.
                let owner = doc["project_id"].clone();
                let foreign = store::list(&self.db, Kind::Port)
                    .await?
                    .into_iter()
                    .any(|p| {
                        p["network_id"] == id
                            && p["project_id"] != owner
                            && !p["device_owner"]
                                .as_str()
                                .unwrap_or("")
                                .starts_with("network:")
                    });
                if foreign {
                    return Err(Error::Conflict(format!("Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it.")).typed("InvalidSharedSetting"));
                }
            }
            doc["shared"] = json!(v);
        }
        if let Some(v) = opt_bool(body, "router:external")? {
            doc["router:external"] = json!(v);
        }
        if let Some(v) = opt_bool(body, "port_security_enabled")? {
            doc["port_security_enabled"] = json!(v);
        }
        if let Some(m) = body.get("mtu") {
            let m = m.as_i64().ok_or_else(|| {
                Error::BadRequest("Invalid input for mtu: must be an integer.".into())
            })?;
            let max = self.mtu_for(doc["provider:network_type"].as_str().unwrap_or(""));
            if m < 68 || m > max {
                return Err(Error::BadRequest(format!(
                    "Requested MTU is too big, maximum is {max}."
                ))
                .typed("InvalidInput"));
            }
            doc["mtu"] = json!(m);
        }
        touch(&mut doc);
        let mut tx = store::Tx::begin(&self.db);
        tx.update(Kind::Network, &doc);
        tx.commit().await?;
        self.notify(Kind::Network, "update", &doc).await;
        Ok(doc)
    }

    /// A network with ports (other than its own DHCP ports) is in use: 409.
    pub async fn delete_network(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let doc = self.get_for_delete(ctx, Kind::Network, id).await?;
        // Unassociated floating IPs of an external network go with it.
        for f in store::list(&self.db, Kind::FloatingIp).await? {
            if f["floating_network_id"] == id && f["port_id"].is_null() {
                self.delete_floatingip(ctx, f["id"].as_str().unwrap_or_default())
                    .await?;
            }
        }
        let ports: Vec<Value> = store::list(&self.db, Kind::Port)
            .await?
            .into_iter()
            .filter(|p| p["network_id"] == id)
            .collect();
        if ports.iter().any(|p| p["device_owner"] != "network:dhcp") {
            return Err(Error::Conflict(format!(
                "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
            )).typed("NetworkInUse"));
        }
        let mut tx = store::Tx::begin(&self.db);
        for p in &ports {
            let pid = p["id"].as_str().unwrap_or_default();
            tx.release_port_ips(pid);
            tx.release_mac(pid);
            tx.delete(Kind::Port, pid);
        }
        for s in store::list(&self.db, Kind::Subnet)
            .await?
            .into_iter()
            .filter(|s| s["network_id"] == id)
        {
            tx.delete(Kind::Subnet, s["id"].as_str().unwrap_or_default());
        }
        tx.release_segments(id);
        tx.delete(Kind::Network, id);
        tx.commit().await?;
        self.notify(Kind::Network, "delete", &doc).await;
        Ok(())
    }
}
