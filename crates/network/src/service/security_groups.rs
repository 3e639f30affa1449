//! Security groups and rules, with the per-project `default` group.

use super::*;
use crate::ipam::{self, Cidr};

/// A security group's own attributes.
pub(super) const GROUP_ATTRIBUTES: &[Attribute] = &[
    Attribute::updatable("stateful", Bool),
    Attribute::create_only("shared", Bool),
];
/// A security group rule's attributes (a rule is never updated).
pub(super) const RULE_ATTRIBUTES: &[Attribute] = &[
    Attribute::required("security_group_id", Str),
    Attribute::required("direction", Str),
    Attribute::create_only("ethertype", Str),
    Attribute::create_only("protocol", Open),
    Attribute::create_only("port_range_min", Int).or_null(),
    Attribute::create_only("port_range_max", Int).or_null(),
    Attribute::create_only("remote_ip_prefix", Str).or_null(),
    Attribute::create_only("remote_group_id", Str).or_null(),
    Attribute::create_only("remote_address_group_id", Str),
    Attribute::create_only("normalized_cidr", Str),
];
/// Protocols with ports.
const PORT_PROTOCOLS: &[&str] = &[
    "tcp", "udp", "udplite", "dccp", "sctp", "6", "17", "136", "33", "132",
];
const NAMED: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("icmp", 1),
    ("icmpv6", 58),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

fn rule_doc(
    project: &str,
    sg: &str,
    direction: &str,
    ethertype: &str,
    remote_group: Option<&str>,
) -> Value {
    let t = now();
    json!({
        "id": new_id(), "tenant_id": project, "project_id": project, "security_group_id": sg,
        "direction": direction, "ethertype": ethertype, "protocol": null, "port_range_min": null,
        "port_range_max": null, "remote_ip_prefix": null, "remote_group_id": remote_group,
        "remote_address_group_id": null, "normalized_cidr": null, "description": "",
        "created_at": t, "updated_at": t, "revision_number": 0,
    })
}

impl NetworkService {
    /// The project's `default` group, created on first use as Neutron does:
    /// all egress allowed, ingress only from members of the same group.
    pub async fn ensure_default_security_group(&self, project: &str) -> Result<String> {
        let _guard = self.default_sg_lock.lock().await;
        let existing = store::list(&self.db, Kind::SecurityGroup)
            .await?
            .into_iter()
            .find(|g| g["project_id"] == project && g["name"] == "default");
        if let Some(g) = existing {
            return Ok(g["id"].as_str().unwrap_or_default().to_owned());
        }
        let id = new_id();
        let t = now();
        let doc = json!({
            "id": id, "name": "default", "description": "Default security group", "tenant_id": project,
            "project_id": project, "stateful": true, "shared": false, "tags": [], "created_at": t,
            "updated_at": t, "revision_number": 0,
        });
        let mut tx = store::Tx::begin(&self.db);
        tx.insert(Kind::SecurityGroup, &doc);
        for (dir, eth, remote) in [
            ("egress", "IPv4", None),
            ("egress", "IPv6", None),
            ("ingress", "IPv4", Some(id.as_str())),
            ("ingress", "IPv6", Some(id.as_str())),
        ] {
            tx.insert(
                Kind::SecurityGroupRule,
                &rule_doc(project, &id, dir, eth, remote),
            );
        }
        match tx.commit().await {
            Ok(()) => {}
            // Another request made it first.
            Err(_) => {
                if let Some(g) = store::list(&self.db, Kind::SecurityGroup)
                    .await?
                    .into_iter()
                    .find(|g| g["project_id"] == project && g["name"] == "default")
                {
                    return Ok(g["id"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        self.notify(Kind::SecurityGroup, "create", &doc).await;
        Ok(id)
    }

    pub async fn create_security_group(
        &self,
        ctx: &AuthContext,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::SecurityGroup)?;
        let mut doc = self.base_doc(ctx, body, "security_group")?;
        let project = doc["project_id"].as_str().expect("project").to_owned();
        self.authorize_create(ctx, Kind::SecurityGroup, &project, None, body)?;
        if doc["name"] == "default" {
            self.ensure_default_security_group(&project).await?;
            return Err(
                Error::Conflict("Default security group already exists.".into())
                    .typed("SecurityGroupDefaultAlreadyExists"),
            );
        }
        self.ensure_default_security_group(&project).await?;
        doc.insert(
            "stateful".into(),
            json!(opt_bool(body, "stateful")?.unwrap_or(true)),
        );
        doc.insert("shared".into(), json!(false));
        let doc = Value::Object(doc);
        let id = doc["id"].as_str().expect("id").to_owned();
        let mut tx = store::Tx::begin(&self.db);
        self.limit_quota(&mut tx, Kind::SecurityGroup, &project)
            .await?;
        tx.insert(Kind::SecurityGroup, &doc);
        for eth in ["IPv4", "IPv6"] {
            tx.insert(
                Kind::SecurityGroupRule,
                &rule_doc(&project, &id, "egress", eth, None),
            );
        }
        tx.commit().await?;
        self.notify(Kind::SecurityGroup, "create", &doc).await;
        Ok(doc)
    }

    pub async fn update_security_group(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::SecurityGroup)?;
        let mut doc = self
            .get_for_update(ctx, Kind::SecurityGroup, id, body)
            .await?;
        if let Some(n) = body.get("name").and_then(Value::as_str) {
            if doc["name"] == "default" && n != "default" {
                return Err(Error::Conflict(
                    "Updating default security group not allowed.".into(),
                ));
            }
            if n == "default" && doc["name"] != "default" {
                return Err(
                    Error::Conflict("Default security group already exists.".into())
                        .typed("SecurityGroupDefaultAlreadyExists"),
                );
            }
        }
        update_common(&mut doc, body, "security_group")?;
        if let Some(s) = opt_bool(body, "stateful")? {
            let used = store::list(&self.db, Kind::Port).await?.iter().any(|p| {
                p["security_groups"]
                    .as_array()
                    .is_some_and(|g| g.iter().any(|g| g == id))
            });
            if used && doc["stateful"] != s {
                return Err(Error::Conflict(format!(
                    "Security group {id} is in use: its statefulness cannot change."
                )));
            }
            doc["stateful"] = json!(s);
        }
        touch(&mut doc);
        let mut tx = store::Tx::begin(&self.db);
        tx.update(Kind::SecurityGroup, &doc);
        tx.commit().await?;
        self.notify(Kind::SecurityGroup, "update", &doc).await;
        Ok(doc)
    }

    pub async fn delete_security_group(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let doc = self.get_for_delete(ctx, Kind::SecurityGroup, id).await?;
        if doc["name"] == "default" && !self.is_admin(ctx) {
            return Err(
                Error::Conflict("Removing default security group not allowed.".into())
                    .typed("SecurityGroupCannotRemoveDefault"),
            );
        }
        if store::list(&self.db, Kind::Port).await?.iter().any(|p| {
            p["security_groups"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g == id))
        }) {
            return Err(Error::Conflict(format!("Security Group {id} in use.")));
        }
        let mut tx = store::Tx::begin(&self.db);
        // Its rules, and other groups' rules that name it as remote group.
        for r in store::list(&self.db, Kind::SecurityGroupRule)
            .await?
            .into_iter()
            .filter(|r| r["security_group_id"] == id || r["remote_group_id"] == id)
        {
            tx.delete(
                Kind::SecurityGroupRule,
                r["id"].as_str().unwrap_or_default(),
            );
        }
        tx.delete(Kind::SecurityGroup, id);
        tx.commit().await?;
        self.notify(Kind::SecurityGroup, "delete", &doc).await;
        Ok(())
    }

    pub async fn create_security_group_rule(
        &self,
        ctx: &AuthContext,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        check_known(body, Kind::SecurityGroupRule)?;
        let sg_id = body
            .get("security_group_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::BadRequest("Invalid input: 'security_group_id' is required.".into())
                    .typed("InvalidInput")
            })?
            .to_owned();
        let sg = self.get_visible(ctx, Kind::SecurityGroup, &sg_id).await?;
        let mut base = self.base_doc(ctx, body, "security_group_rule")?;
        base.remove("name");
        base.remove("tags");
        let project = sg["project_id"].as_str().unwrap_or_default().to_owned();
        self.authorize_create(ctx, Kind::SecurityGroupRule, &project, Some(&sg), body)?;
        base.insert("tenant_id".into(), json!(project));
        base.insert("project_id".into(), json!(project));

        let direction = body.get("direction").and_then(Value::as_str).unwrap_or("");
        if !matches!(direction, "ingress" | "egress") {
            return Err(Error::BadRequest(format!("Invalid input for direction. Reason: '{direction}' is not in ['ingress', 'egress'].")));
        }
        let ethertype = body
            .get("ethertype")
            .and_then(Value::as_str)
            .unwrap_or("IPv4");
        if !matches!(ethertype, "IPv4" | "IPv6") {
            return Err(Error::BadRequest(format!(
                "Invalid input for ethertype. Reason: '{ethertype}' is not in ['IPv4', 'IPv6']."
            )));
        }
        // Protocol: a name, a number 0-255, "any" or none.
        let protocol: Option<String> = match body.get("protocol") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "any" || s.is_empty() => None,
            Some(Value::String(s)) if NAMED.iter().any(|(n, _)| n == s) => Some(s.clone()),
            Some(Value::String(s)) if s.parse::<u8>().is_ok() => Some(s.clone()),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= 255) => Some(n.to_string()),
            Some(v) => {
                return Err(Error::BadRequest(format!(
                    "Security group rule protocol {v} not supported. Only protocol values [None, ah, dccp, egp, esp, gre, icmp, icmpv6, igmp, ipip, ipv6-encap, ipv6-frag, ipv6-icmp, ipv6-nonxt, ipv6-opts, ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp, udplite, vrrp] and integer representations [0 to 255] are supported."
                )))
            }
        };
        if ethertype == "IPv4" && matches!(protocol.as_deref(), Some("icmpv6" | "ipv6-icmp" | "58"))
        {
            return Err(Error::BadRequest("Security group rule for ethertype 'IPv4' not supported. Allowed values are 'IPv6'.".to_string()));
        }
        let port = |k: &str| -> Result<Option<i64>> {
            match body.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .map(Some)
                    .ok_or_else(|| {
                        Error::BadRequest(format!(
                            "Invalid input for {k}. Reason: '{v}' is not an integer."
                        ))
                    }),
            }
        };
        let (min, max) = (port("port_range_min")?, port("port_range_max")?);
        let is_icmp = matches!(
            protocol.as_deref(),
            Some("icmp" | "icmpv6" | "ipv6-icmp" | "1" | "58")
        );
        if is_icmp {
            if let Some(m) = min {
                if !(0..=255).contains(&m) {
                    return Err(Error::BadRequest(format!(
                        "Invalid value for ICMP type (port_range_min) {m}. It must be 0 to 255."
                    )));
                }
            }
            if let Some(m) = max {
                if !(0..=255).contains(&m) {
                    return Err(Error::BadRequest(format!(
                        "Invalid value for ICMP code (port_range_max) {m}. It must be 0 to 255."
                    )));
                }
                if min.is_none() {
                    return Err(Error::BadRequest("ICMP code (port-range-max) is provided but ICMP type (port-range-min) is missing.".into()));
                }
            }
        } else if min.is_some() || max.is_some() {
            let p = protocol.as_deref().unwrap_or("");
            if !PORT_PROTOCOLS.contains(&p) {
                return Err(Error::BadRequest("Security group rule ports are only allowed with TCP, UDP, UDP-Lite, DCCP, SCTP and ICMP.".into()));
            }
            for p in [min, max].into_iter().flatten() {
                if !(1..=65535).contains(&p) {
                    return Err(Error::BadRequest(format!("Invalid value for port {p}")));
                }
            }
            // Neutron: a maximum without a minimum is an inverted range.
            let (a, b) = (min.unwrap_or(65536), max.unwrap_or(65535));
            if a > b {
                return Err(Error::BadRequest(
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max".into(),
                ));
            }
        }
        let remote_group = body
            .get("remote_group_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let prefix = body
            .get("remote_ip_prefix")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if remote_group.is_some() && prefix.is_some() {
            return Err(Error::BadRequest(
                "Only remote_ip_prefix or remote_group_id may be provided.".into(),
            ));
        }
        if let Some(g) = &remote_group {
            self.get_visible(ctx, Kind::SecurityGroup, g).await?;
        }
        let normalized = match &prefix {
            None => None,
            Some(p) => {
                let (addr, plen) = match p.split_once('/') {
                    Some((a, l)) => (
                        a,
                        Some(l.parse::<u8>().map_err(|_| {
                            Error::BadRequest(format!("Invalid input for remote_ip_prefix. Reason: '{p}' is not a valid IP prefix."))
                                .typed("HTTPBadRequest")
                        })?),
                    ),
                    None => (p.as_str(), None),
                };
                let (a, v6) = ipam::parse_ip(addr).ok_or_else(|| Error::BadRequest(format!("Invalid input for remote_ip_prefix. Reason: '{p}' is not a valid IP prefix.")))?;
                if v6 != (ethertype == "IPv6") {
                    return Err(Error::BadRequest(format!(
                        "Conflicting value ethertype {ethertype} for CIDR {p}"
                    )));
                }
                let bits = if v6 { 128 } else { 32 };
                let plen = match plen {
                    None => bits,
                    Some(l) if l <= bits => l,
                    Some(_) => {
                        return Err(Error::BadRequest(format!(
                            "Invalid input for remote_ip_prefix. Reason: '{p}' is not a valid IP prefix."
                        ))
                        .typed("HTTPBadRequest"))
                    }
                };
                let c = Cidr {
                    addr: a,
                    prefix: plen,
                    v6,
                };
                Some(
                    Cidr {
                        addr: c.network(),
                        ..c
                    }
                    .to_string(),
                )
            }
        };
        // Duplicates: the same rule already in the group.
        for r in store::list(&self.db, Kind::SecurityGroupRule)
            .await?
            .iter()
            .filter(|r| r["security_group_id"] == sg_id.as_str())
        {
            let same = r["direction"] == direction
                && r["ethertype"] == ethertype
                && r["protocol"].as_str() == protocol.as_deref()
                && r["port_range_min"].as_i64() == min
                && r["port_range_max"].as_i64()
                    == max.or(if min.is_some() && !is_icmp { min } else { None })
                && r["remote_group_id"].as_str() == remote_group.as_deref()
                && r["normalized_cidr"].as_str() == normalized.as_deref();
            if same {
                return Err(Error::Conflict(format!(
                    "Security group rule already exists. Rule id is {}.",
                    r["id"].as_str().unwrap_or("")
                ))
                .typed("SecurityGroupRuleExists"));
            }
        }
        let max = if !is_icmp && min.is_some() && max.is_none() {
            min
        } else {
            max
        };
        base.insert("security_group_id".into(), json!(sg_id));
        base.insert("direction".into(), json!(direction));
        base.insert("ethertype".into(), json!(ethertype));
        base.insert("protocol".into(), json!(protocol));
        base.insert("port_range_min".into(), json!(min));
        base.insert("port_range_max".into(), json!(max));
        // As given (Neutron keeps the user's spelling); the masked network
        // is `normalized_cidr`, which duplicates and the firewall use.
        // A bare address becomes a host prefix, as Neutron converts it.
        let prefix = prefix.map(|p| {
            if p.contains('/') {
                p
            } else if p.contains(':') {
                format!("{p}/128")
            } else {
                format!("{p}/32")
            }
        });
        base.insert("remote_ip_prefix".into(), json!(prefix));
        base.insert("normalized_cidr".into(), json!(normalized));
        base.insert("remote_group_id".into(), json!(remote_group));
        base.insert("remote_address_group_id".into(), Value::Null);
        let doc = Value::Object(base);
        let mut tx = store::Tx::begin(&self.db);
        self.limit_quota(&mut tx, Kind::SecurityGroupRule, &project)
            .await?;
        tx.insert(Kind::SecurityGroupRule, &doc);
        tx.commit().await?;
        self.notify(Kind::SecurityGroupRule, "create", &doc).await;
        Ok(doc)
    }

    pub async fn delete_security_group_rule(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let doc = self
            .get_for_delete(ctx, Kind::SecurityGroupRule, id)
            .await?;
        let mut tx = store::Tx::begin(&self.db);
        tx.delete(Kind::SecurityGroupRule, id);
        tx.commit().await?;
        self.notify(Kind::SecurityGroupRule, "delete", &doc).await;
        Ok(())
    }
}
