//! Creating servers: validate a boot request (flavor, image, networks,
//! key pair, metadata, zone, quotas), record the instances and start one
//! create saga each.

use super::boot_request::{CreateServerBody, Networks, ServerCreate};
use super::boot_volumes::{rows_for, volume_mappings};
use super::{bad, random_password, request_id, Created};
use crate::api::body::{BoolOrString, IntOrString};
use crate::clients::UserToken;
use crate::saga;
use crate::service::quotas::{allowed_instances, Usage};
use crate::service::ComputeService;
use crate::states::{TaskState, VmState};
use crate::store::bdms::{Bdm, SourceType};
use crate::store::{
    self,
    boot::BootRecord,
    catalog::Flavor,
    instances::{Instance, RequestedNetwork},
    sagas::SagaRow,
    server_groups::ServerGroup,
};
use base64::Engine;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The last path segment of a reference that may be a URL (`flavorRef`, `imageRef`).
pub(crate) fn ref_id(s: &str, field: &str) -> Result<String> {
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

/// Nova's bounds on metadata keys and values.
pub(crate) fn checked_metadata(
    m: BTreeMap<String, String>,
    field: &str,
) -> Result<BTreeMap<String, String>> {
    if m.iter()
        .any(|(k, v)| k.is_empty() || k.len() > 255 || v.len() > 255)
    {
        return Err(bad(
            field,
            "Keys must be 1 to 255 and values at most 255 characters.",
        ));
    }
    Ok(m)
}

/// `min_count` or `max_count`: at least 1.
fn count(v: &IntOrString, field: &str) -> Result<i64> {
    v.int(field, 1).map_err(|_| {
        bad(
            field,
            &format!("Value: {}. It must be an integer of at least 1.", v.text()),
        )
    })
}

/// `min_count` and `max_count` (each 1 when absent; `max_count` defaults to `min_count`).
fn boot_counts(s: &ServerCreate) -> Result<(i64, i64)> {
    let min_count = s
        .min_count
        .as_ref()
        .map_or(Ok(1), |v| count(v, "min_count"))?;
    let max_count = s
        .max_count
        .as_ref()
        .map_or(Ok(min_count), |v| count(v, "max_count"))?;
    if min_count > max_count {
        return Err(Error::BadRequest("min_count must be <= max_count".into()));
    }
    Ok((min_count, max_count))
}

/// An access address as Nova stores it: checked and normalized (`::1`).
pub fn access_ip(v: Option<&Value>, field: &str, v4: bool) -> Result<Option<String>> {
    let Some(v) = v else {
        return Ok(None);
    };
    let s = v
        .as_str()
        .ok_or_else(|| bad(field, "Value must be a string."))?;
    normalized_access_ip(s, field, v4).map(Some)
}

/// [`access_ip`] of a string (an empty one clears the address).
pub fn normalized_access_ip(s: &str, field: &str, v4: bool) -> Result<String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    let parsed = if v4 {
        s.parse::<std::net::Ipv4Addr>().map(|a| a.to_string()).ok()
    } else {
        s.parse::<std::net::Ipv6Addr>().map(|a| a.to_string()).ok()
    };
    parsed.ok_or_else(|| {
        bad(
            field,
            &format!(
                "Value: {s}. '{s}' is not a '{}'",
                if v4 { "ipv4" } else { "ipv6" }
            ),
        )
    })
}

/// Clients send the image as a local block device too (volume mappings
/// are `boot_volumes`'). Returns the image a local mapping names, if any.
fn local_image_from_bdms(s: &ServerCreate) -> Result<Option<String>> {
    let volumes =
        || Error::BadRequest("Booting from volume is not supported by this deployment yet.".into());
    if s.block_device_mapping.is_some() {
        return Err(volumes());
    }
    let mut image = None;
    for b in s.block_device_mapping_v2.iter().flatten() {
        let dest = b.destination_type.as_deref().unwrap_or("local");
        let source = b.source_type.as_deref().unwrap_or("");
        if dest == "volume" {
            continue;
        }
        if dest != "local" || !matches!(source, "image" | "blank") {
            return Err(volumes());
        }
        if source == "image" {
            image = b.uuid.clone();
        }
    }
    Ok(image)
}

/// Instances one request may boot, whatever the quota allows: each is a
/// row written in the request's transaction, so an unlimited quota must
/// not let a `max_count` of 10^9 decide that work.
pub const MAX_INSTANCES_PER_BOOT: i64 = 1000;

/// A boot request, validated: what each of its instances is made from.
struct BootRequest {
    name: String,
    flavor: Flavor,
    image_id: String,
    image: Value,
    metadata: BTreeMap<String, String>,
    requested_networks: Option<Vec<RequestedNetwork>>,
    key_name: Option<String>,
    key_data: Option<String>,
    user_data: Option<String>,
    security_groups: Vec<String>,
    availability_zone: Option<String>,
    /// 2.74: the host and node asked for.
    destination: (Option<String>, Option<String>),
    group: Option<ServerGroup>,
    min_count: i64,
    max_count: i64,
    config_drive: String,
    access_ip_v4: String,
    access_ip_v6: String,
    description: Option<String>,
    /// 2.52: the server tags given at create.
    tags: Vec<String>,
    /// 2.63: the certificates trusted to have signed the image.
    trusted_image_certificates: Option<Vec<String>>,
    admin_pass: String,
    reservation_id: String,
    return_reservation_id: bool,
    /// Volume mappings (boot from volume), as templates.
    volumes: Vec<Bdm>,
    /// 2.90: the host name asked for (one instance only).
    hostname: Option<String>,
    /// Every scheduler hint, kept for 2.100's view.
    scheduler_hints: BTreeMap<String, Value>,
}

impl ComputeService {
    /// Validate a boot request, record as many instances as the quota
    /// allows with their create sagas (one transaction), and start them.
    pub async fn create_servers(
        self: &Arc<Self>,
        ctx: &AuthContext,
        body: CreateServerBody,
    ) -> Result<Created> {
        let project = ctx
            .project_id
            .clone()
            .ok_or_else(|| Error::Forbidden("A project-scoped token is required.".into()))?;
        let req = self.validate_boot(ctx, &project, body).await?;
        let records = self.record_boot(ctx, &project, &req).await?;
        let mut instances = Vec::with_capacity(records.len());
        for r in records {
            saga::spawn(
                self,
                SagaRow {
                    id: r.saga_id,
                    kind: r.saga_kind.into(),
                    instance_id: r.instance.id.clone(),
                    state: "running".into(),
                    params: r.saga_params,
                },
            );
            instances.push(r.instance);
        }
        Ok(Created {
            instances,
            admin_pass: req.admin_pass,
            reservation_id: req.reservation_id,
            return_reservation_id: req.return_reservation_id,
        })
    }

    /// Check everything a boot names before anything is written.
    async fn validate_boot(
        &self,
        ctx: &AuthContext,
        project: &str,
        body: CreateServerBody,
    ) -> Result<BootRequest> {
        let s = body.server;
        if s.name.trim().is_empty() || s.name.len() > 255 {
            return Err(bad(
                "name",
                "Value must be a non-empty string of at most 255 characters.",
            ));
        }
        let flavor = self.boot_flavor(ctx, &s).await?;
        let volumes = volume_mappings(&s)?;
        let (image_id, image) = match volumes.iter().find(|b| b.boot_index == Some(0)) {
            Some(root) => (String::new(), self.boot_volume_image(ctx, root).await?),
            None => self.boot_image(ctx, &s, &flavor).await?,
        };
        let metadata = checked_metadata(s.metadata.clone().unwrap_or_default(), "metadata")?;
        let meta_limit = self.quotas(project).await?["metadata_items"];
        if meta_limit >= 0 && metadata.len() as i64 > meta_limit {
            return Err(Error::Forbidden(
                "Quota exceeded for metadata_items: too many metadata items.".into(),
            ));
        }
        if matches!(s.networks, Some(Networks::List(_))) {
            self.authorize(ctx, "os_compute_api:servers:create:attach_network")?;
        }
        let requested_networks = self
            .parse_networks(
                ctx,
                project,
                s.networks.as_ref(),
                s.resource_request_allowed,
            )
            .await?;
        let key_data = match &s.key_name {
            Some(k) => Some(
                store::catalog::get_keypair(&self.db, &ctx.user_id, k)
                    .await?
                    .ok_or_else(|| Error::BadRequest("Invalid key_name provided.".into()))?
                    .public_key,
            ),
            None => None,
        };
        let (min_count, max_count) = boot_counts(&s)?;
        self.check_boot_volumes(ctx, &volumes, max_count, s.multiattach_allowed)
            .await?;
        if s.hostname.is_some() && max_count > 1 {
            return Err(Error::BadRequest(
                "Unable to allocate a single hostname to multiple instances".into(),
            ));
        }
        let hints = body.scheduler_hints;
        let scheduler_hints = hints.as_ref().map(|h| h.as_lists()).unwrap_or_default();
        let group = match hints.and_then(|h| h.group) {
            Some(g) => Some(self.boot_group(ctx, project, &g).await?),
            None => None,
        };
        Ok(BootRequest {
            flavor,
            image_id,
            image,
            metadata,
            requested_networks,
            key_data,
            user_data: user_data_of(s.user_data.as_deref())?,
            security_groups: self.boot_security_groups(&s, project).await?,
            availability_zone: self.boot_zone(ctx, s.availability_zone.as_deref()).await?,
            destination: self.boot_destination(ctx, &s).await?,
            group,
            min_count,
            max_count,
            config_drive: match &s.config_drive {
                Some(BoolOrString::Bool(true)) => "True".to_owned(),
                Some(BoolOrString::Text(v)) => v.clone(),
                _ => String::new(),
            },
            description: crate::api::body::checked_description(s.description.clone().flatten())?,
            tags: s.tags.clone().unwrap_or_default(),
            trusted_image_certificates: s.trusted_image_certificates.clone(),
            access_ip_v4: s
                .access_ip_v4
                .as_deref()
                .map(|a| normalized_access_ip(a, "accessIPv4", true))
                .transpose()?
                .unwrap_or_default(),
            access_ip_v6: s
                .access_ip_v6
                .as_deref()
                .map(|a| normalized_access_ip(a, "accessIPv6", false))
                .transpose()?
                .unwrap_or_default(),
            admin_pass: s.admin_pass.clone().unwrap_or_else(random_password),
            reservation_id: format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            return_reservation_id: s
                .return_reservation_id
                .as_ref()
                .is_some_and(BoolOrString::truth),
            key_name: s.key_name,
            name: s.name,
            volumes,
            hostname: s.hostname,
            scheduler_hints,
        })
    }

    /// Under the project's quota lock: how many instances the headroom
    /// allows (one read of the project's usage), then those instances and
    /// their create sagas, written together. Other projects never wait.
    async fn record_boot(
        &self,
        ctx: &AuthContext,
        project: &str,
        req: &BootRequest,
    ) -> Result<Vec<BootRecord>> {
        let limits = self.quotas(project).await?;
        let request_id = request_id();
        let group = req.group.as_ref().map(|g| g.id.as_str());
        let interrupt = self.failpoint("record_boot");
        store::boot::record(&self.db, project, group, interrupt, |used, members| {
            let used = Usage::from(used);
            let count = allowed_instances(
                &limits,
                used,
                req.flavor.vcpus,
                req.flavor.ram,
                req.min_count,
                req.max_count,
            )?;
            let count = if count <= MAX_INSTANCES_PER_BOOT {
                count
            } else if req.min_count <= MAX_INSTANCES_PER_BOOT {
                MAX_INSTANCES_PER_BOOT
            } else {
                return Err(Error::BadRequest(format!(
                    "A request boots at most {MAX_INSTANCES_PER_BOOT} instances; min_count is {}.",
                    req.min_count
                )));
            };
            if req.group.is_some() {
                let limit = limits.get("server_group_members").copied().unwrap_or(-1);
                if limit >= 0 && members.len() as i64 + count > limit {
                    return Err(Error::Forbidden(
                        "Quota exceeded, too many servers in group".into(),
                    ));
                }
            }
            Ok((0..count)
                .map(|n| {
                    let instance = self.instance_of(ctx, project, req, n, count);
                    BootRecord {
                        action_id: uuid::Uuid::new_v4().to_string(),
                        request_id: request_id.clone(),
                        saga_id: uuid::Uuid::new_v4().to_string(),
                        saga_kind: saga::create_server::KIND,
                        saga_params: Value::Null,
                        instance,
                    }
                })
                .map(|mut r| {
                    r.saga_params = json!({
                        "action_id": r.action_id,
                        "admin_pass": self.admin_pass_for_guest(&r.instance, &req.admin_pass),
                    });
                    if !req.volumes.is_empty() {
                        r.saga_params["block_devices"] =
                            json!(rows_for(&r.instance.id, &req.volumes));
                        r.saga_params["user_token"] = json!(UserToken {
                            token: ctx.token.clone(),
                            project_id: project.to_owned(),
                        });
                    }
                    r
                })
                .collect())
        })
        .await
    }

    /// Instance `n` of `count` of a boot, as it is first recorded.
    fn instance_of(
        &self,
        ctx: &AuthContext,
        project: &str,
        req: &BootRequest,
        n: i64,
        count: i64,
    ) -> Instance {
        let id = uuid::Uuid::new_v4().to_string();
        let now = store::now();
        let name = if count > 1 {
            format!("{}-{}", req.name, n + 1)
        } else {
            req.name.clone()
        };
        Instance {
            hostname: Some(
                req.hostname
                    .clone()
                    .unwrap_or_else(|| store::instances::sanitize_hostname(&name, &id)),
            ),
            scheduler_hints: req.scheduler_hints.clone(),
            instance_name: format!("instance-{}", &id[..8]),
            id,
            project_id: project.to_owned(),
            user_id: ctx.user_id.clone(),
            name,
            vm_state: VmState::Building,
            task_state: Some(TaskState::Scheduling),
            created_at: now.clone(),
            updated_at: now,
            image_ref: req.image_id.clone(),
            image_properties: req.image.clone(),
            flavor: req.flavor.clone(),
            metadata: req.metadata.clone(),
            key_name: req.key_name.clone(),
            key_data: req.key_data.clone(),
            user_data: req.user_data.clone(),
            availability_zone: req
                .availability_zone
                .as_deref()
                .and_then(|z| z.split(':').next())
                .filter(|z| !z.is_empty())
                .unwrap_or(&self.config.compute.default_availability_zone)
                .to_owned(),
            requested_availability_zone: req.availability_zone.clone(),
            requested_host: req.destination.0.clone(),
            requested_node: req.destination.1.clone(),
            security_groups: req.security_groups.clone(),
            requested_networks: req.requested_networks.clone(),
            reservation_id: req.reservation_id.clone(),
            launch_index: n,
            config_drive: req.config_drive.clone(),
            access_ip_v4: req.access_ip_v4.clone(),
            access_ip_v6: req.access_ip_v6.clone(),
            description: req.description.clone(),
            tags: req.tags.clone(),
            trusted_image_certificates: req.trusted_image_certificates.clone(),
            ..Default::default()
        }
    }

    /// The flavor a boot names, usable by the caller and enabled.
    async fn boot_flavor(&self, ctx: &AuthContext, s: &ServerCreate) -> Result<Flavor> {
        let flavor_id = ref_id(&s.flavor_ref.text(), "flavorRef")?;
        let flavor = self
            .visible_flavor(ctx, &flavor_id)
            .await
            .map_err(|_| Error::BadRequest("Invalid flavorRef provided.".into()))?;
        if flavor.disabled {
            return Err(Error::BadRequest("Flavor is disabled.".into()));
        }
        Ok(flavor)
    }

    /// The image a boot names (`imageRef` or a local block device), active
    /// and fitting the flavor.
    async fn boot_image(
        &self,
        ctx: &AuthContext,
        s: &ServerCreate,
        flavor: &Flavor,
    ) -> Result<(String, Value)> {
        let bdm_image = local_image_from_bdms(s)?;
        let image_ref = s
            .image_ref
            .as_ref()
            .map(IntOrString::text)
            .filter(|r| !r.is_empty())
            .or(bdm_image)
            .ok_or_else(|| Error::BadRequest("Missing imageRef attribute".into()))?;
        let image_id = ref_id(&image_ref, "imageRef")?;
        let image = self.image_as(ctx, &image_id).await?;
        if image["status"] != "active" {
            return Err(Error::BadRequest(format!(
                "Image {image_id} is not active."
            )));
        }
        let gb = 1024 * 1024 * 1024;
        // The disk the guest sees is the image's virtual size (qcow2), not its file size.
        let image_bytes = image["size"]
            .as_i64()
            .unwrap_or(0)
            .max(image["virtual_size"].as_i64().unwrap_or(0));
        if flavor.disk > 0
            && (image_bytes > flavor.disk * gb
                || image["min_disk"].as_i64().unwrap_or(0) > flavor.disk)
        {
            return Err(Error::BadRequest(
                "Flavor's disk is too small for requested image.".into(),
            ));
        }
        if image["min_ram"].as_i64().unwrap_or(0) > flavor.ram {
            return Err(Error::BadRequest(
                "Flavor's memory is too small for requested image.".into(),
            ));
        }
        Ok((image_id, image))
    }

    /// The image properties of a server booted from a volume: the source
    /// image's when the volume is made from one (the caller must see it).
    async fn boot_volume_image(&self, ctx: &AuthContext, root: &Bdm) -> Result<Value> {
        match (&root.source_type, &root.source_id) {
            (SourceType::Image, Some(id)) => {
                let image = self.image_as(ctx, id).await?;
                if image["status"] != "active" {
                    return Err(Error::BadRequest(format!("Image {id} is not active.")));
                }
                Ok(image)
            }
            _ => Ok(json!({})),
        }
    }

    /// The server group a boot's scheduler hints name, the caller's.
    async fn boot_group(&self, ctx: &AuthContext, project: &str, gid: &str) -> Result<ServerGroup> {
        store::server_groups::get(&self.db, gid)
            .await?
            .filter(|g| self.is_admin(ctx) || g.project_id == project)
            .ok_or_else(|| Error::BadRequest(format!("Invalid server group {gid}.")))
    }

    /// The security groups a boot names (`default` when none), each known
    /// in the project.
    async fn boot_security_groups(&self, s: &ServerCreate, project: &str) -> Result<Vec<String>> {
        let security_groups = match &s.security_groups {
            None => vec!["default".to_owned()],
            Some(groups) => groups.iter().map(|g| g.name.clone()).collect(),
        };
        if security_groups.iter().any(|g| g != "default") {
            let known = self
                .network
                .list("security-groups", &[("project_id", project)])
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
        Ok(security_groups)
    }

    /// 2.74's `host` / `hypervisor_hostname` (admin by policy): each must
    /// name a compute host or node (and the node be on the host), and
    /// neither goes with a `zone:host` availability zone.
    async fn boot_destination(
        &self,
        ctx: &AuthContext,
        s: &ServerCreate,
    ) -> Result<(Option<String>, Option<String>)> {
        let (host, node) = (s.host.clone(), s.hypervisor_hostname.clone());
        if host.is_none() && node.is_none() {
            return Ok((None, None));
        }
        self.authorize(ctx, "compute:servers:create:requested_destination")?;
        if s.availability_zone
            .as_deref()
            .is_some_and(|z| z.contains(':'))
        {
            return Err(Error::BadRequest(
                "The host or hypervisor_hostname cannot be specified with the availability zone of the form 'zone:host:node'.".into(),
            ));
        }
        let nodes = store::hosts::list_nodes(&self.db).await?;
        let found = nodes.iter().any(|n| {
            host.as_ref().is_none_or(|h| *h == n.host)
                && node.as_ref().is_none_or(|h| *h == n.hypervisor_hostname)
        });
        if !found {
            let name = host.as_ref().or(node.as_ref()).cloned().unwrap_or_default();
            return Err(Error::BadRequest(format!(
                "Compute host {name} could not be found."
            )));
        }
        Ok((host, node))
    }

    /// The zone (and, where policy allows, `zone:host`) a boot asks for.
    async fn boot_zone(&self, ctx: &AuthContext, az: Option<&str>) -> Result<Option<String>> {
        let Some(z) = az else {
            return Ok(None);
        };
        let zone = z.split(':').next().unwrap_or("");
        if z.contains(':') {
            self.authorize(ctx, "os_compute_api:servers:create:forced_host")?;
        }
        if !zone.is_empty() && !self.zones().await?.iter().any(|(n, _)| n == zone) {
            return Err(Error::BadRequest(
                "The requested availability zone is not available".into(),
            ));
        }
        Ok(Some(z.to_owned()))
    }

    /// An image as the caller sees it (its token), 400 when it cannot.
    pub(crate) async fn image_as(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
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
        v: Option<&Networks>,
        resource_request_allowed: bool,
    ) -> Result<Option<Vec<RequestedNetwork>>> {
        let list = match v {
            None => {
                // Fail early when "auto" cannot decide.
                let nets = crate::guest::usable_networks(self, project).await?;
                if nets.len() > 1 {
                    return Err(Error::Conflict(
                        "Multiple possible networks found, use a Network ID to be more specific."
                            .into(),
                    ));
                }
                return Ok(None);
            }
            Some(Networks::Keyword(s)) if s == "auto" => return Ok(None),
            Some(Networks::Keyword(s)) if s == "none" => return Ok(Some(Vec::new())),
            Some(Networks::List(a)) => a,
            Some(Networks::Keyword(_)) => {
                return Err(bad("networks", "Value must be 'auto', 'none' or a list."))
            }
        };
        let mut out = Vec::new();
        for n in list {
            let (uuid, port, fixed_ip) = (n.uuid.clone(), n.port.clone(), n.fixed_ip.clone());
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
                    .filter(|d| self.is_admin(ctx) || d["project_id"] == project)
                    .ok_or_else(|| Error::NotFound(format!("Port id {p} could not be found.")))?;
                if doc["device_id"].as_str().is_some_and(|d| !d.is_empty()) {
                    return Err(Error::Conflict(format!("Port {p} is still in use.")));
                }
                check_resource_request(&doc, resource_request_allowed)?;
            } else if let Some(u) = &uuid {
                let doc = self.network.get("network", u).await?;
                let ok = doc.is_some_and(|d| {
                    self.is_admin(ctx) || d["project_id"] == project || d["shared"] == true
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
                tag: n.tag.clone(),
            });
        }
        Ok(Some(out))
    }
}

/// Before 2.72 Nova refuses a port that carries a resource request (the
/// placement resources a minimum-bandwidth QoS rule asks for).
fn check_resource_request(port: &Value, allowed: bool) -> Result<()> {
    let requested = match &port["resource_request"] {
        Value::Null => false,
        Value::Object(o) => !o.is_empty(),
        _ => true,
    };
    if requested && !allowed {
        return Err(Error::BadRequest(
            "Creating servers with ports having resource requests, like a port with a QoS minimum bandwidth policy, is not supported until microversion 2.72.".into(),
        ));
    }
    Ok(())
}

/// The boot request's user data: base64, at most 64 KiB.
pub(super) fn user_data_of(u: Option<&str>) -> Result<Option<String>> {
    let Some(u) = u else {
        return Ok(None);
    };
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
    Ok(Some(u.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_with_a_resource_request_from_2_72() {
        let plain = json!({"id": "p", "resource_request": null});
        let empty = json!({"id": "p", "resource_request": {}});
        let bandwidth = json!({"id": "p", "resource_request": {
            "required": ["CUSTOM_PHYSNET_NET0"],
            "resources": {"NET_BW_EGR_KILOBIT_PER_SEC": 1000}}});
        for allowed in [false, true] {
            assert!(check_resource_request(&plain, allowed).is_ok());
            assert!(check_resource_request(&empty, allowed).is_ok());
            assert!(check_resource_request(&json!({"id": "p"}), allowed).is_ok());
        }
        assert!(matches!(
            check_resource_request(&bandwidth, false),
            Err(Error::BadRequest(m)) if m.contains("until microversion 2.72")
        ));
        assert!(check_resource_request(&bandwidth, true).is_ok());
    }
}
