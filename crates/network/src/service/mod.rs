//! The networking service layer: Neutron's resource rules, IPAM, quotas,
//! ownership and sharing, and the messages to agents. One module per
//! resource family; the API layer dispatches here by resource kind.

mod agent_rpc;
mod agents;
pub mod attributes;
mod authorize;
mod ha;
mod networks;
mod ports;
mod quotas;
mod routers;
mod security_groups;
mod subnets;

pub use agent_rpc::DHCP_OWNER;
pub use ha::{HaState, HA_PORT_OWNER};
pub use quotas::QUOTA_RESOURCES;
pub use subnets::pools_of as subnet_pools;
pub use touch as touch_doc;

use crate::policy::NetworkPolicy;
use crate::store::{self, Kind};
// For the attribute tables of the resource modules (`use super::*`).
use attributes::{AttrType::*, Attribute};
use ferrostack_bus::SharedBus;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::config::Config;
use ferrostack_core::{Error, Result};
use ferrostack_db::Db;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub struct NetworkService {
    pub db: Db,
    /// Every authorization decision (Neutron's rules, `crate::policy`).
    pub policy: NetworkPolicy,
    pub config: Config,
    pub bus: SharedBus,
    /// Serialises allocations that pick "the first free" value (IPs,
    /// segmentation ids), so concurrent creates pick different ones; the
    /// database's unique keys are the final guard.
    pub alloc_lock: tokio::sync::Mutex<()>,
    /// Per subnet, an address below which every address is allocated.
    pub ip_hints: std::sync::Mutex<std::collections::HashMap<String, u128>>,
    /// Serialises the creation of projects' `default` security groups.
    pub default_sg_lock: tokio::sync::Mutex<()>,
    /// Serialises the creation of projects' HA networks.
    pub ha_lock: tokio::sync::Mutex<()>,
    /// Port up/down events for the compute service.
    pub nova: Option<Arc<crate::nova::NovaNotifier>>,
}

pub fn now() -> String {
    ferrostack_core::time::iso_seconds(chrono::Utc::now())
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn not_found(kind: Kind, id: &str) -> Error {
    let (what, typ) = match kind {
        Kind::Network => ("Network", "NetworkNotFound"),
        Kind::Subnet => ("Subnet", "SubnetNotFound"),
        Kind::Port => ("Port", "PortNotFound"),
        Kind::Router => ("Router", "RouterNotFound"),
        Kind::FloatingIp => ("Floating IP", "FloatingIPNotFound"),
        Kind::SecurityGroup => {
            return Error::NotFound(format!("Security group {id} does not exist"))
                .typed("SecurityGroupNotFound")
        }
        Kind::SecurityGroupRule => ("Security group rule", "SecurityGroupRuleNotFound"),
        Kind::Agent => ("Agent", "AgentNotFound"),
        Kind::Quota => ("Quota", "NotFound"),
    };
    Error::NotFound(format!("{what} {id} could not be found.")).typed(typ)
}

/// Documents related to the ones being shown: networks of subnets and
/// ports, subnet ids of networks, rules of security groups, owners of
/// rules' security groups.
#[derive(Default)]
pub struct Related {
    networks: std::collections::HashMap<String, Value>,
    subnet_ids: std::collections::HashMap<String, Vec<Value>>,
    rules: std::collections::HashMap<String, Vec<Value>>,
    group_projects: std::collections::HashMap<String, Value>,
}

impl NetworkService {
    /// Fails when the operator's policy file cannot be read or parsed.
    pub async fn new(db: Db, config: Config, bus: SharedBus) -> Result<Arc<Self>> {
        let policy = NetworkPolicy::load(&config.network.policy_file).map_err(Error::Internal)?;
        Ok(Arc::new(NetworkService {
            db,
            policy,
            bus,
            alloc_lock: tokio::sync::Mutex::new(()),
            ip_hints: Default::default(),
            default_sg_lock: tokio::sync::Mutex::new(()),
            ha_lock: tokio::sync::Mutex::new(()),
            nova: crate::nova::NovaNotifier::from_config(&config),
            config,
        }))
    }

    /// Publish a change for agents and metering (`port.create.end`, …).
    pub async fn notify(&self, kind: Kind, action: &str, doc: &Value) {
        let event = format!("{}.{action}.end", kind.as_str());
        let _ = self
            .bus
            .notify(
                &format!("network.{}", self.config.common.host),
                &event,
                json!({ kind.as_str(): doc }),
            )
            .await;
    }

    /// A user's update of one resource. One that lost a race with another
    /// writer of the same row (an agent reporting a port's status, a
    /// concurrent update) is read and applied again, as Neutron retries a
    /// stale revision; after ten tries the 409 stands.
    pub async fn update_resource(
        &self,
        ctx: &AuthContext,
        kind: Kind,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        let mut attempt = 0u32;
        loop {
            let outcome = match kind {
                Kind::Network => self.update_network(ctx, id, body).await,
                Kind::Subnet => self.update_subnet(ctx, id, body).await,
                Kind::Port => self.update_port(ctx, id, body).await,
                Kind::Router => self.update_router(ctx, id, body).await,
                Kind::FloatingIp => self.update_floatingip(ctx, id, body).await,
                Kind::SecurityGroup => self.update_security_group(ctx, id, body).await,
                Kind::Agent => self.update_agent(ctx, id, body).await,
                Kind::SecurityGroupRule | Kind::Quota => Err(Error::MethodNotAllowed(
                    "Security group rules cannot be updated; delete and re-create.".into(),
                )),
            };
            match outcome {
                Err(Error::Typed("ConcurrentModification", _)) if attempt < 10 => {
                    attempt += 1;
                    // Jittered, as oslo.db's retries: writers that collided
                    // do not collide again in lockstep.
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20;
                    let ms = 5 * u64::from(attempt) + jitter;
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                other => return other,
            }
        }
    }

    /// Read-modify-write for internal writers (agents), which race users'
    /// updates: a stale revision is re-read and retried. `change` returns
    /// false when nothing needs writing. Returns the document as written.
    pub async fn update_with_retry(
        &self,
        kind: Kind,
        id: &str,
        mut change: impl FnMut(&mut Value) -> bool,
    ) -> Result<Option<Value>> {
        for _ in 0..5 {
            let mut doc = self.get_doc(kind, id).await?;
            if !change(&mut doc) {
                return Ok(None);
            }
            let mut tx = store::Tx::begin(&self.db);
            tx.update(kind, &doc);
            match tx.commit().await {
                Ok(()) => {
                    self.notify(kind, "update", &doc).await;
                    return Ok(Some(doc));
                }
                Err(e) if e.status() == axum::http::StatusCode::CONFLICT => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!(
            "The {} {id} kept changing; the change was not recorded.",
            kind.as_str()
        ))
        .typed("ConcurrentModification"))
    }

    pub async fn get_doc(&self, kind: Kind, id: &str) -> Result<Value> {
        store::get(&self.db, kind, id)
            .await?
            .ok_or_else(|| not_found(kind, id))
    }

    /// The documents a visibility decision or a view needs besides the
    /// resource itself, read once for a whole list.
    pub async fn related(&self, kind: Kind, docs: &[Value]) -> Result<Related> {
        let mut r = Related::default();
        match kind {
            Kind::Subnet | Kind::Port => {
                let ids = distinct(docs, "network_id");
                for n in store::get_many(&self.db, Kind::Network, &ids).await? {
                    let id = n["id"].as_str().unwrap_or_default().to_owned();
                    r.networks.insert(id, n);
                }
            }
            Kind::Network => {
                let ids = distinct(docs, "id");
                for s in store::children_of(&self.db, Kind::Subnet, &ids).await? {
                    let net = s["network_id"].as_str().unwrap_or_default().to_owned();
                    r.subnet_ids.entry(net).or_default().push(s["id"].clone());
                }
            }
            Kind::SecurityGroupRule => {
                let ids = distinct(docs, "security_group_id");
                for g in store::get_many(&self.db, Kind::SecurityGroup, &ids).await? {
                    let id = g["id"].as_str().unwrap_or_default().to_owned();
                    r.group_projects.insert(id, g["project_id"].clone());
                }
            }
            Kind::SecurityGroup => {
                let ids = distinct(docs, "id");
                for rule in store::children_of(&self.db, Kind::SecurityGroupRule, &ids).await? {
                    let sg = rule["security_group_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    r.rules.entry(sg).or_default().push(rule);
                }
            }
            _ => {}
        }
        Ok(r)
    }

    /// The public view: computed attributes added, internal and admin-only ones removed.
    pub async fn view(&self, ctx: &AuthContext, kind: Kind, doc: Value) -> Result<Value> {
        let related = self.related(kind, std::slice::from_ref(&doc)).await?;
        Ok(self.view_with(ctx, kind, doc, &related))
    }

    pub fn view_with(
        &self,
        ctx: &AuthContext,
        kind: Kind,
        mut doc: Value,
        related: &Related,
    ) -> Value {
        let id = doc["id"].as_str().unwrap_or_default().to_owned();
        match kind {
            Kind::Network => {
                doc["subnets"] =
                    Value::Array(related.subnet_ids.get(&id).cloned().unwrap_or_default());
            }
            Kind::SecurityGroup => {
                doc["security_group_rules"] =
                    Value::Array(related.rules.get(&id).cloned().unwrap_or_default());
            }
            Kind::Agent => doc["alive"] = json!(self.is_alive(&doc)),
            _ => {}
        }
        // Attributes with a `get_<kind>:<attribute>` rule (provider:*,
        // binding:*) only for callers it allows.
        let target = self.policy_target(kind, &doc, related);
        if let Some(o) = doc.as_object_mut() {
            o.retain(|k, _| {
                // Internal bookkeeping never leaves the service.
                !k.starts_with('_')
                    && self
                        .policy
                        .attribute_visible(kind.as_str(), k, ctx, &target)
            });
        }
        doc
    }

    /// Start a new document with Neutron's standard attributes.
    pub fn base_doc(
        &self,
        ctx: &AuthContext,
        body: &Map<String, Value>,
        kind: &str,
    ) -> Result<Map<String, Value>> {
        let project = match (body.get("project_id"), body.get("tenant_id")) {
            (Some(Value::String(p)), _) | (None, Some(Value::String(p))) => {
                if !self.policy.is_admin(ctx) && Some(p.as_str()) != ctx.project_id.as_deref() {
                    return Err(Error::Forbidden(format!(
                        "(rule:create_{kind}:tenant_id) is disallowed by policy: only an admin creates resources for another project"
                    )).typed("PolicyNotAuthorized"));
                }
                p.clone()
            }
            (Some(_), _) | (_, Some(_)) => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for tenant_id of {kind}: must be a string."
                )))
            }
            (None, None) => ctx
                .project_id
                .clone()
                .ok_or_else(|| Error::Forbidden("A project-scoped token is required.".into()))?,
        };
        let t = now();
        let mut m = Map::new();
        m.insert("id".into(), json!(new_id()));
        m.insert(
            "name".into(),
            json!(opt_string(body, "name", kind, 255)?.unwrap_or_default()),
        );
        m.insert(
            "description".into(),
            json!(opt_string(body, "description", kind, 255)?.unwrap_or_default()),
        );
        m.insert("tenant_id".into(), json!(project));
        m.insert("project_id".into(), json!(project));
        m.insert("tags".into(), json!([]));
        m.insert("created_at".into(), json!(t));
        m.insert("updated_at".into(), json!(t));
        m.insert("revision_number".into(), json!(0));
        Ok(m)
    }

    /// The create in `tx` must leave `project` within its `kind` quota;
    /// checked atomically with the insert when `tx` commits (409 OverQuota).
    pub async fn limit_quota(
        &self,
        tx: &mut store::Tx<'_>,
        kind: Kind,
        project: &str,
    ) -> Result<()> {
        tx.within_quota(kind, project, self.quota_limit(project, kind).await?);
        Ok(())
    }
}

/// Reject attributes the resource does not have (Neutron: 400 "Unrecognized
/// attribute(s)"): those not in its table ([`attributes::attributes`]).
pub fn check_known(body: &Map<String, Value>, kind: Kind) -> Result<()> {
    let bad: Vec<&String> = body
        .keys()
        .filter(|k| !attributes::attributes(kind).any(|a| a.name == k.as_str()))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Unrecognized attribute(s) '{}' for {}",
            bad.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            kind.as_str()
        ))
        .typed("HTTPBadRequest"))
    }
}

pub fn opt_string(
    body: &Map<String, Value>,
    k: &str,
    kind: &str,
    max: usize,
) -> Result<Option<String>> {
    match body.get(k) {
        None => Ok(None),
        Some(Value::Null) if k == "description" || k == "name" => Ok(Some(String::new())),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(Error::BadRequest(format!(
            "Invalid input for {k}. Reason: '{k}' exceeds maximum length of {max}."
        ))),
        Some(v) => Err(Error::BadRequest(format!(
            "Invalid input for {k}. Reason: '{v}' is not a valid string for {kind}."
        ))),
    }
}

pub fn opt_bool(body: &Map<String, Value>, k: &str) -> Result<Option<bool>> {
    match body.get(k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if matches!(s.to_ascii_lowercase().as_str(), "true" | "false") => {
            Ok(Some(s.eq_ignore_ascii_case("true")))
        }
        Some(v) => Err(Error::BadRequest(format!(
            "Invalid input for {k}. Reason: '{v}' cannot be converted to boolean."
        ))),
    }
}

/// Apply the common updatable attributes (name, description) of a PUT.
pub fn update_common(doc: &mut Value, body: &Map<String, Value>, kind: &str) -> Result<()> {
    for k in ["name", "description"] {
        if let Some(v) = opt_string(body, k, kind, 255)? {
            doc[k] = json!(v);
        }
    }
    for k in ["tenant_id", "project_id"] {
        if let Some(v) = body.get(k) {
            if v != &doc[k] {
                return Err(Error::BadRequest(format!(
                    "Cannot update read-only attribute {k}"
                )));
            }
        }
    }
    Ok(())
}

/// Mark a document changed: `updated_at` and `revision_number`.
pub fn touch(doc: &mut Value) {
    doc["updated_at"] = json!(now());
    let r = doc["revision_number"].as_i64().unwrap_or(0);
    doc["revision_number"] = json!(r + 1);
}

/// Agents act with the service's own authority (Neutron's admin context).
fn agent_context() -> AuthContext {
    AuthContext {
        user_id: "neutron-agent".into(),
        roles: vec![ferrostack_core::auth::NamedRef {
            id: "admin".into(),
            name: "admin".into(),
        }],
        ..Default::default()
    }
}

/// The distinct string values of one attribute across documents.
fn distinct<'a>(docs: &'a [Value], key: &str) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    docs.iter()
        .filter_map(|d| d[key].as_str())
        .filter(|v| seen.insert(*v))
        .collect()
}
