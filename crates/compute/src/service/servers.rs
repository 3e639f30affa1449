//! Servers: validating a boot request (flavor, image, networks, key pair,
//! metadata, zone, quotas), recording the instances and starting their
//! create sagas; delete; and the server actions with Nova's state checks.

use super::ComputeService;
use crate::saga;
use crate::store::{
    self,
    instances::{Instance, RequestedNetwork},
};
use base64::Engine;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the agent needs to build a guest.
pub fn instance_spec(i: &Instance) -> Value {
    json!({
        "id": i.id, "name": i.name, "instance_name": i.instance_name,
        "vcpus": i.flavor.vcpus, "memory_mb": i.flavor.ram,
        "disk_gb": i.flavor.disk + i.flavor.ephemeral,
        "image_id": i.image_ref, "user_data": i.user_data, "key_data": i.key_data,
        "vifs": i.network_info.iter().map(|v| json!({"port_id": v.port_id, "mac_address": v.mac_address,
            "network_id": v.network_id})).collect::<Vec<_>>(),
    })
}

fn conflict_state(action: &str, i: &Instance) -> Error {
    match &i.task_state {
        Some(t) => Error::Conflict(format!(
            "Cannot '{action}' instance {} while it is in task_state {t}",
            i.id
        )),
        None => Error::Conflict(format!(
            "Cannot '{action}' instance {} while it is in vm_state {}",
            i.id, i.vm_state
        )),
    }
}

/// Networks a server of this project may attach to (own or shared, not external).
async fn usable_networks(svc: &ComputeService, project: &str) -> Result<Vec<Value>> {
    Ok(svc
        .network
        .list("networks", &[])
        .await?
        .into_iter()
        .filter(|n| {
            (n["project_id"] == project || n["shared"] == true) && n["router:external"] != true
        })
        .collect())
}

/// The networks to attach: those requested, or for "auto" the one usable
/// network (none when there is none; ambiguous when there are several).
pub async fn resolve_networks(svc: &ComputeService, i: &Instance) -> Result<Vec<RequestedNetwork>> {
    match &i.requested_networks {
        Some(list) => Ok(list.clone()),
        None => {
            let nets = usable_networks(svc, &i.project_id).await?;
            match nets.len() {
                0 => Ok(Vec::new()),
                1 => Ok(vec![RequestedNetwork {
                    network_id: nets[0]["id"].as_str().map(str::to_owned),
                    ..Default::default()
                }]),
                _ => Err(Error::Conflict(
                    "Multiple possible networks found, use a Network ID to be more specific."
                        .into(),
                )),
            }
        }
    }
}

/// Delete the ports compute created for a server and unbind the ones the
/// caller brought (idempotent: works from what the network API reports).
pub async fn deallocate_ports(svc: &ComputeService, i: &Instance) -> Result<()> {
    let user_ports: Vec<String> = i
        .requested_networks
        .iter()
        .flatten()
        .filter_map(|r| r.port_id.clone())
        .collect();
    for p in svc
        .network
        .list("ports", &[("device_id", i.id.as_str())])
        .await?
    {
        let id = p["id"].as_str().unwrap_or_default();
        if user_ports.iter().any(|u| u == id) {
            svc.network
                .update_port(
                    id,
                    json!({"device_id": "", "device_owner": "", "binding:host_id": ""}),
                )
                .await?;
        } else {
            svc.network.delete_port(id).await?;
        }
    }
    Ok(())
}

fn bad(field: &str, msg: &str) -> Error {
    Error::BadRequest(format!("Invalid input for field/attribute {field}. {msg}"))
}

/// The last path segment of a reference that may be a URL (`flavorRef`, `imageRef`).
fn ref_id(v: &Value, field: &str) -> Result<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad(field, "Value must be a string.")),
    };
    let id = s
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_owned();
    if id.is_empty() {
        return Err(bad(field, "Value must not be empty."));
    }
    Ok(id)
}

fn parse_metadata(v: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>> {
    let Some(v) = v else {
        return Ok(BTreeMap::new());
    };
    let obj = v
        .as_object()
        .ok_or_else(|| bad(field, "Value must be an object."))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let s = v
            .as_str()
            .ok_or_else(|| bad(field, &format!("Value of '{k}' must be a string.")))?;
        if k.is_empty() || k.len() > 255 || s.len() > 255 {
            return Err(bad(
                field,
                "Keys must be 1 to 255 and values at most 255 characters.",
            ));
        }
        out.insert(k.clone(), s.to_owned());
    }
    Ok(out)
}

const CREATE_FIELDS: &[&str] = &[
    "name",
    "imageRef",
    "flavorRef",
    "adminPass",
    "metadata",
    "networks",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
    "personality",
    "key_name",
    "user_data",
    "security_groups",
    "availability_zone",
    "config_drive",
    "min_count",
    "max_count",
    "return_reservation_id",
    "block_device_mapping",
    "block_device_mapping_v2",
];

fn count_field(s: &Map<String, Value>, field: &str) -> Result<i64> {
    match s.get(field) {
        None => Ok(1),
        Some(v) => {
            let n = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| bad(field, "Value must be an integer."))?;
            if n < 1 {
                return Err(bad(
                    field,
                    &format!("Value: {n}. {n} is less than the minimum of 1"),
                ));
            }
            Ok(n)
        }
    }
}

/// An access address as Nova stores it: checked and normalized (`::1`).
pub fn access_ip(v: Option<&Value>, field: &str, v4: bool) -> Result<Option<String>> {
    let Some(v) = v else {
        return Ok(None);
    };
    let s = v
        .as_str()
        .ok_or_else(|| bad(field, "Value must be a string."))?;
    if s.is_empty() {
        return Ok(Some(String::new()));
    }
    let parsed = if v4 {
        s.parse::<std::net::Ipv4Addr>().map(|a| a.to_string()).ok()
    } else {
        s.parse::<std::net::Ipv6Addr>().map(|a| a.to_string()).ok()
    };
    parsed.map(Some).ok_or_else(|| {
        bad(
            field,
            &format!(
                "Value: {s}. '{s}' is not a '{}'",
                if v4 { "ipv4" } else { "ipv6" }
            ),
        )
    })
}

/// Clients send the image as a local block device too; volumes are not
/// supported yet. Returns the image a mapping names, if any.
fn local_image_from_bdms(s: &Map<String, Value>) -> Result<Option<String>> {
    if s.get("block_device_mapping").is_some_and(|b| !b.is_null()) {
        return Err(Error::BadRequest(
            "Booting from volume is not supported by this deployment yet.".into(),
        ));
    }
    let Some(list) = s.get("block_device_mapping_v2") else {
        return Ok(None);
    };
    let list = list
        .as_array()
        .ok_or_else(|| bad("block_device_mapping_v2", "Value must be an array."))?;
    let mut image = None;
    for b in list {
        let dest = b["destination_type"].as_str().unwrap_or("local");
        let source = b["source_type"].as_str().unwrap_or("");
        if dest != "local" || !matches!(source, "image" | "blank") {
            return Err(Error::BadRequest(
                "Booting from volume is not supported by this deployment yet.".into(),
            ));
        }
        if source == "image" {
            image = b["uuid"].as_str().map(str::to_owned);
        }
    }
    Ok(image)
}

pub struct Created {
    pub instances: Vec<Instance>,
    pub admin_pass: String,
    pub reservation_id: String,
    pub return_reservation_id: bool,
}

impl ComputeService {
    /// Validate a boot request and start one create saga per instance.
    pub async fn create_servers(
        self: &Arc<Self>,
        ctx: &AuthContext,
        body: &Value,
    ) -> Result<Created> {
        let s = body
            .get("server")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                Error::BadRequest(
                    "Invalid input for field/attribute server. 'server' is a required property"
                        .into(),
                )
            })?;
        if let Some(k) = s.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute server. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let project = ctx
            .project_id
            .clone()
            .ok_or_else(|| Error::Forbidden("A project-scoped token is required.".into()))?;
        let name = match s.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() && n.len() <= 255 => n.clone(),
            Some(_) => {
                return Err(bad(
                    "name",
                    "Value must be a non-empty string of at most 255 characters.",
                ))
            }
            None => return Err(bad("server", "'name' is a required property")),
        };
        let flavor_id = ref_id(
            s.get("flavorRef")
                .ok_or_else(|| bad("server", "'flavorRef' is a required property"))?,
            "flavorRef",
        )?;
        let flavor = self
            .visible_flavor(ctx, &flavor_id)
            .await
            .map_err(|_| Error::BadRequest("Invalid flavorRef provided.".into()))?;
        if flavor.disabled {
            return Err(Error::BadRequest("Flavor is disabled.".into()));
        }
        let bdm_image = local_image_from_bdms(s)?;
        let image_ref = s
            .get("imageRef")
            .filter(|v| v.as_str() != Some(""))
            .cloned()
            .or(bdm_image.map(Value::String))
            .ok_or_else(|| Error::BadRequest("Missing imageRef attribute".into()))?;
        let image_id = ref_id(&image_ref, "imageRef")?;
        let image = self.image_as(ctx, &image_id).await?;
        if image["status"] != "active" {
            return Err(Error::BadRequest(format!(
                "Image {image_id} is not active."
            )));
        }
        let gb = 1024 * 1024 * 1024;
        if flavor.disk > 0 && image["size"].as_i64().unwrap_or(0) > flavor.disk * gb {
            return Err(Error::BadRequest(
                "Flavor's disk is too small for requested image.".into(),
            ));
        }
        if flavor.disk > 0 && image["min_disk"].as_i64().unwrap_or(0) > flavor.disk {
            return Err(Error::BadRequest(
                "Flavor's disk is too small for requested image.".into(),
            ));
        }
        if image["min_ram"].as_i64().unwrap_or(0) > flavor.ram {
            return Err(Error::BadRequest(
                "Flavor's memory is too small for requested image.".into(),
            ));
        }
        let metadata = parse_metadata(s.get("metadata"), "metadata")?;
        let meta_limit = self.quotas(&project).await?["metadata_items"];
        if meta_limit >= 0 && metadata.len() as i64 > meta_limit {
            return Err(Error::Forbidden(
                "Quota exceeded for metadata_items: too many metadata items.".into(),
            ));
        }
        let requested_networks = self
            .parse_networks(ctx, &project, s.get("networks"))
            .await?;
        let key_name = match s.get("key_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(bad("key_name", "Value must be a string.")),
        };
        let key_data = match &key_name {
            Some(k) => Some(
                store::catalog::get_keypair(&self.db, &ctx.user_id, k)
                    .await?
                    .ok_or_else(|| Error::BadRequest("Invalid key_name provided.".into()))?
                    .public_key,
            ),
            None => None,
        };
        let user_data = match s.get("user_data") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) => {
                if u.len() > 65535
                    || base64::engine::general_purpose::STANDARD
                        .decode(u.trim())
                        .is_err()
                {
                    return Err(bad(
                        "user_data",
                        "Value must be base64 encoded, at most 65535 bytes.",
                    ));
                }
                Some(u.clone())
            }
            Some(_) => return Err(bad("user_data", "Value must be a string.")),
        };
        let security_groups = match s.get("security_groups") {
            None => vec!["default".to_owned()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|g| {
                    g["name"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("security_groups", "Each group needs a 'name'."))
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(bad("security_groups", "Value must be an array.")),
        };
        if security_groups.iter().any(|g| g != "default") {
            let known = self
                .network
                .list("security-groups", &[("project_id", project.as_str())])
                .await?;
            for g in &security_groups {
                if g != "default"
                    && !known
                        .iter()
                        .any(|k| k["name"] == g.as_str() || k["id"] == g.as_str())
                {
                    return Err(Error::BadRequest(format!(
                        "Security group {g} not found for project {project}."
                    )));
                }
            }
        }
        let az = match s.get("availability_zone") {
            None | Some(Value::Null) => None,
            Some(Value::String(z)) => {
                let zone = z.split(':').next().unwrap_or("");
                if z.contains(':') && !ctx.is_admin() {
                    return Err(Error::Forbidden(
                        "Only administrators may choose a host.".into(),
                    ));
                }
                if !zone.is_empty() && !self.zones().await?.iter().any(|(n, _)| n == zone) {
                    return Err(Error::BadRequest(
                        "The requested availability zone is not available".into(),
                    ));
                }
                Some(z.clone())
            }
            Some(_) => return Err(bad("availability_zone", "Value must be a string.")),
        };
        let group = match body.get("os:scheduler_hints").and_then(|h| h.get("group")) {
            None | Some(Value::Null) => None,
            Some(g) => {
                let gid = g
                    .as_str()
                    .ok_or_else(|| bad("group", "Value must be a string."))?;
                let found = store::server_groups::get(&self.db, gid)
                    .await?
                    .filter(|g| ctx.is_admin() || g.project_id == project)
                    .ok_or_else(|| Error::BadRequest(format!("Invalid server group {gid}.")))?;
                Some(found)
            }
        };
        let min_count = count_field(s, "min_count")?;
        let max_count = count_field(s, "max_count")?.max(if s.contains_key("max_count") {
            1
        } else {
            min_count
        });
        if min_count > max_count {
            return Err(Error::BadRequest("min_count must be <= max_count".into()));
        }
        let config_drive = match s.get("config_drive") {
            Some(Value::Bool(true)) => "True".to_owned(),
            Some(Value::String(v)) if !v.is_empty() => v.clone(),
            _ => String::new(),
        };
        let access_v4 = access_ip(s.get("accessIPv4"), "accessIPv4", true)?.unwrap_or_default();
        let access_v6 = access_ip(s.get("accessIPv6"), "accessIPv6", false)?.unwrap_or_default();
        let admin_pass = s
            .get("adminPass")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(random_password);
        let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let image_properties = image.clone();

        let _guard = self.create_lock.lock().await;
        // Nova boots as many as the quota allows between min and max.
        let mut count = max_count;
        loop {
            match self
                .check_instance_quota(&project, count, flavor.vcpus, flavor.ram)
                .await
            {
                Ok(()) => break,
                Err(e) if count <= min_count => return Err(e),
                Err(_) => count -= 1,
            }
        }
        let mut made = Vec::new();
        for n in 0..count {
            let id = uuid::Uuid::new_v4().to_string();
            let now = store::now();
            let i = Instance {
                instance_name: format!("instance-{}", &id[..8]),
                id,
                project_id: project.clone(),
                user_id: ctx.user_id.clone(),
                name: if count > 1 {
                    format!("{name}-{}", n + 1)
                } else {
                    name.clone()
                },
                vm_state: "building".into(),
                task_state: Some("scheduling".into()),
                created_at: now.clone(),
                updated_at: now,
                image_ref: image_id.clone(),
                image_properties: image_properties.clone(),
                flavor: flavor.clone(),
                metadata: metadata.clone(),
                key_name: key_name.clone(),
                key_data: key_data.clone(),
                user_data: user_data.clone(),
                availability_zone: az
                    .as_deref()
                    .and_then(|z| z.split(':').next())
                    .filter(|z| !z.is_empty())
                    .unwrap_or(&self.config.compute.default_availability_zone)
                    .to_owned(),
                requested_availability_zone: az.clone(),
                security_groups: security_groups.clone(),
                requested_networks: requested_networks.clone(),
                reservation_id: reservation_id.clone(),
                launch_index: n,
                config_drive: config_drive.clone(),
                access_ip_v4: access_v4.clone(),
                access_ip_v6: access_v6.clone(),
                ..Default::default()
            };
            store::instances::insert(&self.db, &i).await?;
            made.push(i);
        }
        drop(_guard);
        if let Some(g) = &group {
            let limit = self.quotas(&project).await?["server_group_members"];
            if limit >= 0 && (g.members.len() + made.len()) as i64 > limit {
                for i in &made {
                    store::instances::update(&self.db, &i.id, |x| {
                        x.deleted = true;
                        x.vm_state = "deleted".into();
                        Ok(())
                    })
                    .await?;
                }
                return Err(Error::Forbidden(
                    "Quota exceeded, too many servers in group".into(),
                ));
            }
            for i in &made {
                store::server_groups::set_member(&self.db, &g.id, &i.id, true).await?;
            }
        }
        for i in &made {
            let action = store::instances::action_start(
                &self.db,
                &i.id,
                "create",
                &request_id(),
                &ctx.user_id,
                &i.project_id,
            )
            .await?;
            saga::start(
                self,
                saga::create_server::KIND,
                &i.id,
                json!({"action_id": action}),
            )
            .await?;
        }
        Ok(Created {
            instances: made,
            admin_pass,
            reservation_id,
            return_reservation_id: s
                .get("return_reservation_id")
                .is_some_and(|v| v == true || v == "True" || v == "true"),
        })
    }

    /// An image as the caller sees it (its token), 400 when it cannot.
    async fn image_as(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let url = format!("{}/v2/images/{id}", self.image.base);
        let resp = self
            .image
            .client
            .http()
            .get(&url)
            .header("x-auth-token", &ctx.token)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("image service unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(Error::BadRequest(format!("Image {id} could not be found.")));
        }
        resp.json().await.map_err(Error::internal)
    }

    async fn parse_networks(
        &self,
        ctx: &AuthContext,
        project: &str,
        v: Option<&Value>,
    ) -> Result<Option<Vec<RequestedNetwork>>> {
        let list = match v {
            None => {
                // Fail early when "auto" cannot decide.
                let nets = usable_networks(self, project).await?;
                if nets.len() > 1 {
                    return Err(Error::Conflict(
                        "Multiple possible networks found, use a Network ID to be more specific."
                            .into(),
                    ));
                }
                return Ok(None);
            }
            Some(Value::String(s)) if s == "auto" => return Ok(None),
            Some(Value::String(s)) if s == "none" => return Ok(Some(Vec::new())),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(bad("networks", "Value must be 'auto', 'none' or a list.")),
        };
        let mut out = Vec::new();
        for n in list {
            let uuid = n.get("uuid").and_then(Value::as_str).map(str::to_owned);
            let port = n.get("port").and_then(Value::as_str).map(str::to_owned);
            let fixed_ip = n.get("fixed_ip").and_then(Value::as_str).map(str::to_owned);
            if let Some(ip) = &fixed_ip {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(bad(
                        "fixed_ip",
                        &format!("Value: {ip}. '{ip}' is not a valid IP address"),
                    ));
                }
            }
            if let Some(p) = &port {
                let doc = self
                    .network
                    .get("port", p)
                    .await?
                    .filter(|d| ctx.is_admin() || d["project_id"] == project)
                    .ok_or_else(|| Error::NotFound(format!("Port id {p} could not be found.")))?;
                if doc["device_id"].as_str().is_some_and(|d| !d.is_empty()) {
                    return Err(Error::Conflict(format!("Port {p} is still in use.")));
                }
            } else if let Some(u) = &uuid {
                let doc = self.network.get("network", u).await?;
                let ok = doc.is_some_and(|d| {
                    ctx.is_admin() || d["project_id"] == project || d["shared"] == true
                });
                if !ok {
                    return Err(Error::BadRequest(format!(
                        "Network {u} could not be found."
                    )));
                }
            } else {
                return Err(bad("networks", "Each network needs a 'uuid' or a 'port'."));
            }
            out.push(RequestedNetwork {
                network_id: uuid,
                port_id: port,
                fixed_ip,
            });
        }
        Ok(Some(out))
    }

    /// Delete a server: a build in progress is told to stop (its saga
    /// unwinds and marks it deleted); otherwise the delete saga runs.
    pub async fn delete_server(self: &Arc<Self>, ctx: &AuthContext, id: &str) -> Result<()> {
        let i = self.visible_instance(ctx, id).await?;
        self.check_lock(ctx, &i)?;
        // Mark first, then look: a build that ends after the mark sees it
        // and deletes the server itself.
        store::instances::update(&self.db, id, |i| {
            i.task_state = Some("deleting".into());
            Ok(())
        })
        .await?;
        self.record_action(ctx, &i, "delete").await?;
        if self.saga_in_flight(id).await? {
            // The build may have passed its last look at the mark already:
            // once it ends, delete the server unless it did.
            let svc = self.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                if let Err(e) = svc.delete_after_build(&id).await {
                    tracing::warn!(instance = %id, error = %e, "delete after build failed");
                }
            });
        } else {
            saga::start(self, saga::delete_server::KIND, id, json!({})).await?;
        }
        Ok(())
    }

    async fn saga_in_flight(&self, id: &str) -> Result<bool> {
        Ok(store::sagas::for_instance(&self.db, id)
            .await?
            .iter()
            .any(|s| s.state == "running" || s.state == "unwinding"))
    }

    /// Wait for the sagas of an instance being deleted to end, then start
    /// its delete saga if it is still there and none was started.
    async fn delete_after_build(self: &Arc<Self>, id: &str) -> Result<()> {
        while self.saga_in_flight(id).await? {
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(500),
                self.saga_finished.notified(),
            )
            .await;
        }
        let Some(i) = store::instances::get(&self.db, id).await? else {
            return Ok(());
        };
        let deleting = store::sagas::for_instance(&self.db, id)
            .await?
            .iter()
            .any(|s| s.kind == saga::delete_server::KIND);
        if !i.deleted && i.task_state.as_deref() == Some("deleting") && !deleting {
            saga::start(self, saga::delete_server::KIND, id, json!({})).await?;
        }
        Ok(())
    }

    pub fn check_lock(&self, ctx: &AuthContext, i: &Instance) -> Result<()> {
        if i.locked && !ctx.is_admin() && i.locked_by.as_deref() != Some("owner") {
            return Err(Error::Conflict(format!("Instance {} is locked", i.id)));
        }
        if i.locked && !ctx.is_admin() && i.locked_by.as_deref() == Some("owner") {
            return Err(Error::Conflict(format!("Instance {} is locked", i.id)));
        }
        Ok(())
    }

    pub async fn record_action(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        action: &str,
    ) -> Result<String> {
        store::instances::action_start(
            &self.db,
            &i.id,
            action,
            &request_id(),
            &ctx.user_id,
            &i.project_id,
        )
        .await
    }

    /// Start an action on a server: check its state, set the task state,
    /// then let the agent do the work in the background and settle the
    /// final state (or restore the old one on failure).
    #[allow(clippy::too_many_arguments)]
    async fn host_action(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        action: &'static str,
        allowed: &[&str],
        task_state: &'static str,
        method: &'static str,
        args: Value,
        finish: fn(&mut Instance),
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some() || !allowed.contains(&i.vm_state.as_str()) {
            return Err(conflict_state(action, i));
        }
        let host = i.host.clone().ok_or_else(|| conflict_state(action, i))?;
        let expected_vm_state = i.vm_state.clone();
        store::instances::update(&self.db, &i.id, |x| {
            if x.task_state.is_some() || x.vm_state != expected_vm_state {
                return Err(conflict_state(action, x));
            }
            x.task_state = Some(task_state.into());
            Ok(())
        })
        .await?;
        let action_id = self.record_action(ctx, i, action).await?;
        let svc = self.clone();
        let id = i.id.clone();
        tokio::spawn(async move {
            let started = store::now();
            let outcome = svc.agent_call(&host, method, args).await;
            let r = store::instances::update(&svc.db, &id, |x| {
                x.task_state = None;
                if outcome.is_ok() {
                    finish(x);
                }
                Ok(())
            })
            .await;
            if let Err(e) = r {
                tracing::error!(instance = %id, error = %e, "could not record action result");
            }
            let _ = store::instances::action_event(
                &svc.db,
                &action_id,
                &format!("compute_{method}_instance"),
                &started,
                outcome.map(|_| ()).map_err(|e| e.message().to_owned()),
            )
            .await;
        });
        Ok(())
    }

    /// `POST /servers/{id}/action`. Returns an optional body and headers.
    pub async fn server_action(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        body: &Value,
    ) -> Result<ActionResult> {
        let obj = body
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or_else(|| Error::BadRequest("There is no such action".into()))?;
        let (name, args) = obj.iter().next().expect("one key");
        let i = self.visible_instance(ctx, id).await?;
        let id_json = json!({"instance_id": i.id});
        match name.as_str() {
            "reboot" => {
                let kind = args["type"].as_str().unwrap_or("");
                let hard = match kind.to_ascii_uppercase().as_str() {
                    "HARD" => true,
                    "SOFT" => false,
                    _ => return Err(bad("type", &format!("Value: {kind}. '{kind}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"))),
                };
                let (allowed, task): (&[&str], _) = if hard {
                    (
                        &["active", "stopped", "paused", "suspended", "error"],
                        "rebooting_hard",
                    )
                } else {
                    (&["active"], "rebooting")
                };
                self.host_action(
                    ctx,
                    &i,
                    "reboot",
                    allowed,
                    task,
                    "reboot",
                    json!({"instance_id": i.id, "hard": hard}),
                    |x| {
                        x.vm_state = "active".into();
                        x.power_state = 1;
                    },
                )
                .await?;
            }
            "os-stop" => {
                self.host_action(
                    ctx,
                    &i,
                    "stop",
                    &["active", "error"],
                    "powering-off",
                    "power_off",
                    id_json,
                    |x| {
                        x.vm_state = "stopped".into();
                        x.power_state = 4;
                    },
                )
                .await?
            }
            "os-start" => {
                self.host_action(
                    ctx,
                    &i,
                    "start",
                    &["stopped"],
                    "powering-on",
                    "power_on",
                    id_json,
                    |x| {
                        x.vm_state = "active".into();
                        x.power_state = 1;
                    },
                )
                .await?
            }
            "pause" => {
                self.host_action(
                    ctx,
                    &i,
                    "pause",
                    &["active"],
                    "pausing",
                    "pause",
                    id_json,
                    |x| {
                        x.vm_state = "paused".into();
                        x.power_state = 3;
                    },
                )
                .await?
            }
            "unpause" => {
                self.host_action(
                    ctx,
                    &i,
                    "unpause",
                    &["paused"],
                    "unpausing",
                    "unpause",
                    id_json,
                    |x| {
                        x.vm_state = "active".into();
                        x.power_state = 1;
                    },
                )
                .await?
            }
            "suspend" => {
                self.host_action(
                    ctx,
                    &i,
                    "suspend",
                    &["active"],
                    "suspending",
                    "suspend",
                    id_json,
                    |x| {
                        x.vm_state = "suspended".into();
                        x.power_state = 7;
                    },
                )
                .await?
            }
            "resume" => {
                self.host_action(
                    ctx,
                    &i,
                    "resume",
                    &["suspended"],
                    "resuming",
                    "resume",
                    id_json,
                    |x| {
                        x.vm_state = "active".into();
                        x.power_state = 1;
                    },
                )
                .await?
            }
            "lock" => {
                let by = if ctx.project_id.as_deref() == Some(&i.project_id) {
                    "owner"
                } else {
                    "admin"
                };
                store::instances::update(&self.db, id, |x| {
                    x.locked = true;
                    x.locked_by = Some(by.into());
                    Ok(())
                })
                .await?;
                self.record_action(ctx, &i, "lock").await?;
            }
            "unlock" => {
                if i.locked_by.as_deref() == Some("admin") && !ctx.is_admin() {
                    return Err(Error::Forbidden(
                        "Instance was locked by an administrator.".into(),
                    ));
                }
                store::instances::update(&self.db, id, |x| {
                    x.locked = false;
                    x.locked_by = None;
                    Ok(())
                })
                .await?;
                self.record_action(ctx, &i, "unlock").await?;
            }
            "os-resetState" => {
                if !ctx.is_admin() {
                    return Err(Error::Forbidden("Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed.".into()));
                }
                let state = args["state"].as_str().unwrap_or("");
                if state != "active" && state != "error" {
                    return Err(bad(
                        "state",
                        &format!("Value: {state}. '{state}' is not one of ['active', 'error']"),
                    ));
                }
                store::instances::update(&self.db, id, |x| {
                    x.vm_state = state.into();
                    x.task_state = None;
                    Ok(())
                })
                .await?;
                self.record_action(ctx, &i, "resetState").await?;
            }
            "os-getConsoleOutput" => {
                if i.vm_state != "active" && i.vm_state != "stopped" && i.vm_state != "paused" {
                    return Err(conflict_state("get_console_output", &i));
                }
                let host = i
                    .host
                    .clone()
                    .ok_or_else(|| conflict_state("get_console_output", &i))?;
                let out = self
                    .agent_call(&host, "get_console_output", id_json)
                    .await?;
                let mut text = out["output"].as_str().unwrap_or("").to_owned();
                if let Some(n) = args.get("length").filter(|v| !v.is_null()) {
                    let n = n
                        .as_i64()
                        .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
                        .ok_or_else(|| bad("length", "Value must be an integer."))?;
                    if n >= 0 {
                        let lines: Vec<&str> = text.lines().collect();
                        let start = lines.len().saturating_sub(n as usize);
                        text = lines[start..].join("\n");
                    }
                }
                return Ok(ActionResult::Json(200, json!({"output": text})));
            }
            "rebuild" => return self.rebuild(ctx, &i, args).await,
            "createImage" => return self.create_image(ctx, &i, args, None).await,
            "createBackup" => {
                let backup_type = args["backup_type"]
                    .as_str()
                    .ok_or_else(|| bad("createBackup", "'backup_type' is a required property"))?
                    .to_owned();
                let rotation = args["rotation"]
                    .as_i64()
                    .or_else(|| args["rotation"].as_str().and_then(|s| s.parse().ok()))
                    .filter(|r| *r >= 0)
                    .ok_or_else(|| bad("rotation", "Value must be an integer >= 0."))?;
                return self
                    .create_image(ctx, &i, args, Some((backup_type, rotation)))
                    .await;
            }
            // Servers are deleted at once (no reclaim interval), so none is
            // ever soft-deleted: both actions meet the wrong state.
            "restore" | "forceDelete" => return Err(conflict_state(name, &i)),
            // Nova re-sends network info to the hypervisor; the drivers
            // here read it at spawn, so there is nothing to push.
            "injectNetworkInfo" | "resetNetwork" => {
                if !ctx.is_admin() {
                    return Err(Error::Forbidden(format!(
                        "Policy doesn't allow os_compute_api:os-admin-actions:{} to be performed.",
                        if name == "injectNetworkInfo" {
                            "inject_network_info"
                        } else {
                            "reset_network"
                        }
                    )));
                }
                self.record_action(ctx, &i, name).await?;
            }
            "addFloatingIp" | "removeFloatingIp" => {
                let ip_arg = |key: &str| -> Result<Option<String>> {
                    match args.get(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(v) => v
                            .as_str()
                            .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
                            .map(|a| Some(a.to_owned()))
                            .ok_or_else(|| {
                                bad(key, &format!("Value: {v}. {v} is not a valid IP address"))
                            }),
                    }
                };
                let address = ip_arg("address")?
                    .ok_or_else(|| bad("address", "'address' is a required property"))?;
                if name == "addFloatingIp" {
                    let fixed = ip_arg("fixed_address")?;
                    self.add_floating_ip(ctx, &i, &address, fixed.as_deref())
                        .await?;
                } else {
                    self.remove_floating_ip(ctx, &i, &address).await?;
                }
            }
            "addSecurityGroup" | "removeSecurityGroup" => {
                let group = args["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| bad(name, "'name' is a required property"))?;
                self.change_security_group(ctx, &i, group, name == "addSecurityGroup")
                    .await?;
            }
            "resize" => {
                self.check_lock(ctx, &i)?;
                if i.task_state.is_some() || !["active", "stopped"].contains(&i.vm_state.as_str()) {
                    return Err(conflict_state("resize", &i));
                }
                let fid = ref_id(
                    args.get("flavorRef")
                        .ok_or_else(|| bad("resize", "'flavorRef' is a required property"))?,
                    "flavorRef",
                )?;
                let f = self
                    .visible_flavor(ctx, &fid)
                    .await
                    .map_err(|_| Error::BadRequest("Invalid flavorRef provided.".into()))?;
                if f.id == i.flavor.id {
                    return Err(Error::BadRequest(
                        "When resizing, instances must change flavor!".into(),
                    ));
                }
                let extra_cores = (f.vcpus - i.flavor.vcpus).max(0);
                let extra_ram = (f.ram - i.flavor.ram).max(0);
                let q = self.quotas(&i.project_id).await?;
                let u = self.usage(&i.project_id).await?;
                for (res, used, more) in
                    [("cores", u.cores, extra_cores), ("ram", u.ram, extra_ram)]
                {
                    if q[res] >= 0 && more > 0 && used + more > q[res] {
                        return Err(Error::Forbidden(format!("Quota exceeded for {res}: Requested {more}, but already used {used} of {} {res}", q[res])));
                    }
                }
                store::instances::update(&self.db, id, |x| {
                    if x.task_state.is_some() {
                        return Err(conflict_state("resize", x));
                    }
                    x.new_flavor = Some(f.clone());
                    x.old_vm_state = Some(x.vm_state.clone());
                    x.task_state = Some("resize_prep".into());
                    Ok(())
                })
                .await?;
                self.record_action(ctx, &i, "resize").await?;
                store::migrations::add_migration(
                    &self.db,
                    &store::migrations::MigrationRow {
                        instance_uuid: i.id.clone(),
                        source_compute: i.host.clone(),
                        source_node: i.node.clone().or_else(|| i.host.clone()),
                        old_flavor_id: i.flavor.id.clone(),
                        new_flavor_id: f.id.clone(),
                        status: "pre-migrating".into(),
                        migration_type: "resize".into(),
                        ..Default::default()
                    },
                )
                .await?;
                saga::start(self, saga::resize_server::KIND, id, json!({})).await?;
            }
            "confirmResize" => {
                if i.vm_state != "resized" || i.task_state.is_some() {
                    return Err(conflict_state("confirmResize", &i));
                }
                store::hosts::release(&self.db, id, "instance").await?;
                store::hosts::rename_claim(&self.db, id, "resize", "instance").await?;
                store::instances::update(&self.db, id, |x| {
                    x.old_flavor = None;
                    x.vm_state = x.old_vm_state.take().unwrap_or_else(|| "active".into());
                    Ok(())
                })
                .await?;
                self.record_action(ctx, &i, "confirmResize").await?;
                store::migrations::set_migration_status(&self.db, id, "confirmed").await?;
                return Ok(ActionResult::Empty(204));
            }
            "revertResize" => {
                if i.vm_state != "resized" || i.task_state.is_some() {
                    return Err(conflict_state("revertResize", &i));
                }
                let old = i.old_flavor.clone().unwrap_or_else(|| i.flavor.clone());
                let mut reverted = i.clone();
                reverted.flavor = old.clone();
                if let Some(host) = &i.host {
                    self.agent_call(
                        host,
                        "resize",
                        json!({"instance": instance_spec(&reverted)}),
                    )
                    .await?;
                }
                store::hosts::release(&self.db, id, "resize").await?;
                store::instances::update(&self.db, id, |x| {
                    x.flavor = old.clone();
                    x.old_flavor = None;
                    x.vm_state = x.old_vm_state.take().unwrap_or_else(|| "active".into());
                    Ok(())
                })
                .await?;
                self.record_action(ctx, &i, "revertResize").await?;
                store::migrations::set_migration_status(&self.db, id, "reverted").await?;
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "There is no such action: {other}"
                )))
            }
        }
        Ok(ActionResult::Empty(202))
    }

    async fn rebuild(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        args: &Value,
    ) -> Result<ActionResult> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some() || !["active", "stopped", "error"].contains(&i.vm_state.as_str())
        {
            return Err(conflict_state("rebuild", i));
        }
        let image_id = ref_id(
            args.get("imageRef")
                .ok_or_else(|| bad("rebuild", "'imageRef' is a required property"))?,
            "imageRef",
        )?;
        let image = self.image_as(ctx, &image_id).await?;
        if image["status"] != "active" {
            return Err(Error::BadRequest(format!(
                "Image {image_id} is not active."
            )));
        }
        let name = args.get("name").and_then(Value::as_str).map(str::to_owned);
        let metadata = match args.get("metadata") {
            Some(m) => Some(parse_metadata(Some(m), "metadata")?),
            None => None,
        };
        let admin_pass = args
            .get("adminPass")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(random_password);
        let host = i.host.clone().ok_or_else(|| conflict_state("rebuild", i))?;
        let updated = store::instances::update(&self.db, &i.id, |x| {
            if x.task_state.is_some() {
                return Err(conflict_state("rebuild", x));
            }
            x.task_state = Some("rebuilding".into());
            x.image_ref = image_id.clone();
            x.image_properties = image.clone();
            if let Some(n) = &name {
                x.name = n.clone();
            }
            if let Some(m) = &metadata {
                x.metadata = m.clone();
            }
            Ok(())
        })
        .await?;
        let action_id = self.record_action(ctx, i, "rebuild").await?;
        let svc = self.clone();
        let spec = instance_spec(&updated);
        let id = i.id.clone();
        // A stopped server stays stopped after its rebuild, as in Nova.
        let was_stopped = i.vm_state == "stopped";
        tokio::spawn(async move {
            let started = store::now();
            let outcome = async {
                svc.agent_call(&host, "destroy", json!({"instance_id": id}))
                    .await?;
                svc.agent_call(&host, "cache_image", json!({"image_id": spec["image_id"]}))
                    .await?;
                svc.agent_call(&host, "spawn", json!({"instance": spec}))
                    .await?;
                if was_stopped {
                    svc.agent_call(&host, "power_off", json!({"instance_id": id}))
                        .await?;
                }
                Ok::<_, Error>(())
            }
            .await;
            let _ = store::instances::update(&svc.db, &id, |x| {
                x.task_state = None;
                match &outcome {
                    Ok(_) => {
                        if was_stopped {
                            x.vm_state = "stopped".into();
                            x.power_state = 4;
                        } else {
                            x.vm_state = "active".into();
                            x.power_state = 1;
                        }
                        x.launched_at = Some(store::now());
                    }
                    Err(e) => {
                        x.vm_state = "error".into();
                        x.power_state = 0;
                        x.fault = Some(store::instances::Fault {
                            code: 500,
                            message: e.message().to_owned(),
                            created: store::now(),
                        });
                    }
                }
                Ok(())
            })
            .await;
            let _ = store::instances::action_event(
                &svc.db,
                &action_id,
                "compute_rebuild_instance",
                &started,
                outcome.map(|_| ()).map_err(|e| e.message().to_owned()),
            )
            .await;
        });
        Ok(ActionResult::Rebuilt(Box::new(updated), admin_pass))
    }

    /// Add or remove a security group on every port of the server.
    async fn change_security_group(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        group: &str,
        add: bool,
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        let groups = self
            .network
            .list("security-groups", &[("project_id", i.project_id.as_str())])
            .await?;
        let g = groups
            .iter()
            .find(|g| g["name"] == group || g["id"] == group)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "Security group {group} not found for project {}.",
                    i.project_id
                ))
            })?;
        let gid = g["id"].as_str().unwrap_or_default().to_owned();
        let gname = g["name"].as_str().unwrap_or(group).to_owned();
        let has = i.security_groups.iter().any(|n| n == &gname);
        if add && has {
            return Err(Error::BadRequest(format!(
                "Security group {gname} is already associated with the instance {}",
                i.id
            )));
        }
        if !add && !has {
            return Err(Error::BadRequest(format!(
                "Security group {gname} not associated with the instance {}",
                i.id
            )));
        }
        for v in &i.network_info {
            let Some(port) = self.network.get("port", &v.port_id).await? else {
                continue;
            };
            let mut ids: Vec<String> = port["security_groups"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            ids.retain(|x| x != &gid);
            if add {
                ids.push(gid.clone());
            }
            self.network
                .update_port(&v.port_id, json!({ "security_groups": ids }))
                .await?;
        }
        store::instances::update(&self.db, &i.id, |x| {
            x.security_groups.retain(|n| n != &gname);
            if add {
                x.security_groups.push(gname.clone());
            }
            Ok(())
        })
        .await?;
        self.record_action(
            ctx,
            i,
            if add {
                "addSecurityGroup"
            } else {
                "removeSecurityGroup"
            },
        )
        .await?;
        Ok(())
    }

    /// createImage, and createBackup (`backup`: type and rotation: the
    /// oldest backups of that type beyond `rotation` are deleted).
    async fn create_image(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        args: &Value,
        backup: Option<(String, i64)>,
    ) -> Result<ActionResult> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some()
            || !["active", "stopped", "paused", "suspended"].contains(&i.vm_state.as_str())
        {
            return Err(conflict_state("createImage", i));
        }
        let name = args
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| bad("name", "'name' is a required property"))?;
        let metadata = parse_metadata(args.get("metadata"), "metadata")?;
        let host = i
            .host
            .clone()
            .ok_or_else(|| conflict_state("createImage", i))?;
        let base = self.image.get(&i.image_ref).await?.unwrap_or(Value::Null);
        let mut body = json!({
            "name": name,
            "container_format": base["container_format"].as_str().unwrap_or("bare"),
            "disk_format": base["disk_format"].as_str().unwrap_or("qcow2"),
            "instance_uuid": i.id, "image_type": "snapshot", "base_image_ref": i.image_ref,
            "user_id": ctx.user_id,
        });
        for (k, v) in &metadata {
            body[k] = json!(v);
        }
        if let Some((backup_type, _)) = &backup {
            body["image_type"] = json!("backup");
            body["backup_type"] = json!(backup_type);
        }
        let image = self.image.create_as(&ctx.token, &body).await?;
        let image_id = image["id"].as_str().unwrap_or_default().to_owned();
        store::instances::update(&self.db, &i.id, |x| {
            if x.task_state.is_some() {
                return Err(conflict_state("createImage", x));
            }
            x.task_state = Some("image_snapshot".into());
            Ok(())
        })
        .await?;
        let action_id = self.record_action(ctx, i, "createImage").await?;
        let svc = self.clone();
        let id = i.id.clone();
        let snapshot_id = image_id.clone();
        tokio::spawn(async move {
            let started = store::now();
            let outcome = svc
                .agent_call(
                    &host,
                    "snapshot",
                    json!({"instance_id": id, "image_id": snapshot_id}),
                )
                .await;
            if outcome.is_err() {
                let _ = svc.image.delete(&snapshot_id).await;
            } else if let Some((backup_type, rotation)) = &backup {
                svc.rotate_backups(&id, backup_type, *rotation).await;
            }
            let _ = store::instances::update(&svc.db, &id, |x| {
                x.task_state = None;
                Ok(())
            })
            .await;
            let _ = store::instances::action_event(
                &svc.db,
                &action_id,
                "compute_snapshot_instance",
                &started,
                outcome.map(|_| ()).map_err(|e| e.message().to_owned()),
            )
            .await;
        });
        Ok(ActionResult::Image(image_id))
    }

    /// Delete the oldest backups of a server beyond `rotation`.
    async fn rotate_backups(&self, instance_id: &str, backup_type: &str, rotation: i64) {
        let url = format!("{}/v2/images", self.image.base);
        let Ok(resp) = self
            .image
            .client
            .send(|h| h.get(&url).query(&[("limit", "1000")]))
            .await
        else {
            return;
        };
        let Ok(body) = resp.json::<Value>().await else {
            return;
        };
        let mut backups: Vec<&Value> = body["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|img| {
                        img["instance_uuid"] == instance_id
                            && img["image_type"] == "backup"
                            && img["backup_type"] == backup_type
                    })
                    .collect()
            })
            .unwrap_or_default();
        backups.sort_by_key(|img| img["created_at"].as_str().unwrap_or("").to_owned());
        let excess = backups.len().saturating_sub(rotation as usize);
        for img in &backups[..excess] {
            if let Some(id) = img["id"].as_str() {
                let _ = self.image.delete(id).await;
            }
        }
    }

    /// The zones with at least one compute service, and whether any is up.
    pub async fn zones(&self) -> Result<Vec<(String, bool)>> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for s in store::hosts::list_services(&self.db).await? {
            if s.binary != crate::scheduler::COMPUTE_BINARY {
                continue;
            }
            let up = self.is_up(&s) && !s.disabled;
            match out.iter_mut().find(|(z, _)| *z == s.zone) {
                Some(e) => e.1 |= up,
                None => out.push((s.zone.clone(), up)),
            }
        }
        Ok(out)
    }
}

/// What an action answers.
pub enum ActionResult {
    Empty(u16),
    Json(u16, Value),
    /// rebuild: the server as it is now and its admin password.
    Rebuilt(Box<Instance>, String),
    /// createImage: the new image's id (for the `Location` header).
    Image(String),
}

fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// The id of the request being served (as the API layer scoped it), so
/// instance actions carry the `x-openstack-request-id` the caller saw.
fn request_id() -> String {
    super::REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| format!("req-{}", uuid::Uuid::new_v4()))
}
