//! Limits, quota sets, availability zones, services, hypervisors, simple
//! tenant usage, and the external events the network service posts.

use super::body::{BoolOrString, IntOrString};
use super::by_uuid::ServiceUpdateBody;
use super::{query_get, ApiVersion, Query, Svc};
use crate::scheduler::COMPUTE_BINARY;
use crate::service::quotas::RESOURCES;
use crate::store::{self, hosts::ServiceRow, instances::Instance};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

/// Nova's naive timestamps with microseconds (`2026-11-25T05:00:00.000000`).
fn naive(ts: Option<&str>) -> Value {
    match ts.and_then(ferrostack_core::time::parse) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::Null,
    }
}

pub async fn limits(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:limits")?;
    let project = match query_get(&q.0, "tenant_id") {
        Some(p) if svc.allows(&ctx, "os_compute_api:limits:other_project") => p.to_owned(),
        _ => ctx.project_id.clone().unwrap_or_default(),
    };
    let l = svc.quotas(&project).await?;
    let u = svc.usage(&project).await?;
    let mut absolute = json!({
        "maxTotalInstances": l["instances"], "maxTotalCores": l["cores"], "maxTotalRAMSize": l["ram"],
        "maxTotalKeypairs": l["key_pairs"], "maxServerMeta": l["metadata_items"],
        "maxPersonality": l["injected_files"], "maxPersonalitySize": l["injected_file_content_bytes"],
        "maxImageMeta": l["metadata_items"],
        "maxSecurityGroups": l["security_groups"], "maxSecurityGroupRules": l["security_group_rules"],
        "maxTotalFloatingIps": l["floating_ips"],
        "maxServerGroups": l["server_groups"], "maxServerGroupMembers": l["server_group_members"],
        "totalInstancesUsed": u.instances, "totalCoresUsed": u.cores, "totalRAMUsed": u.ram,
        "totalSecurityGroupsUsed": 0, "totalFloatingIpsUsed": 0, "totalServerGroupsUsed": 0,
    });
    let mut gone: Vec<&str> = Vec::new();
    if version >= (2, 36) {
        gone.extend(LIMITS_GONE_2_36);
    }
    if version >= (2, 39) {
        gone.push("maxImageMeta");
    }
    if version >= (2, 57) {
        gone.extend(["maxPersonality", "maxPersonalitySize"]);
    }
    let absolute = absolute.as_object_mut().expect("object");
    absolute.retain(|k, _| !gone.contains(&k.as_str()));
    Ok(ok(json!({"limits": {"rate": [], "absolute": absolute}})))
}

/// The nova-network limits 2.36 removed (2.39 then removed `maxImageMeta`,
/// with Nova's own image metadata quota).
const LIMITS_GONE_2_36: &[&str] = &[
    "maxSecurityGroups",
    "maxSecurityGroupRules",
    "maxTotalFloatingIps",
    "totalSecurityGroupsUsed",
    "totalFloatingIpsUsed",
];

/// The nova-network quotas 2.36 removed from quota sets (and 2.50 from
/// quota classes); Neutron's own quotas count these.
const NETWORK_QUOTAS: &[&str] = &[
    "floating_ips",
    "fixed_ips",
    "security_groups",
    "security_group_rules",
    "networks",
];

/// The file injection quotas 2.57 removed with `personality`.
const INJECTION_QUOTAS: &[&str] = &[
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
];

/// The resources a quota set has at `version`.
fn set_resources(version: ApiVersion) -> impl Iterator<Item = &'static str> {
    RESOURCES.iter().copied().filter(move |r| {
        (version < (2, 36) || !NETWORK_QUOTAS.contains(r))
            && (version < (2, 57) || !INJECTION_QUOTAS.contains(r))
    })
}

/// The resources a quota class has at `version`: the server group quotas
/// came to quota classes at 2.50, when the network ones left.
fn class_resources(version: ApiVersion) -> impl Iterator<Item = &'static str> {
    RESOURCES.iter().copied().filter(move |r| {
        let injection = version >= (2, 57) && INJECTION_QUOTAS.contains(r);
        let shown = if version >= (2, 50) {
            !NETWORK_QUOTAS.contains(r)
        } else {
            !r.starts_with("server_group")
        };
        shown && !injection
    })
}

fn quota_doc(
    q: &BTreeMap<String, i64>,
    resources: impl Iterator<Item = &'static str>,
) -> Map<String, Value> {
    resources
        .map(|r| (r.to_string(), json!(q.get(r).copied().unwrap_or(-1))))
        .collect()
}

/// A change to a resource the version's schema lacks: Nova's 400.
fn refuse_unknown_quotas<'a>(
    object: &str,
    given: impl Iterator<Item = &'a String>,
    known: &[&str],
) -> Result<()> {
    for k in given {
        if k != "force" && !known.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute {object}. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    Ok(())
}

pub async fn quota_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(project): Path<String>,
) -> Result<Response> {
    svc.authorize_project(&ctx, "os_compute_api:os-quota-sets:show", &project)?;
    let mut doc = quota_doc(&svc.quotas(&project).await?, set_resources(version));
    doc.insert("id".into(), json!(project));
    Ok(ok(json!({"quota_set": doc})))
}

pub async fn quota_defaults(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(project): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-quota-sets:defaults")?;
    let mut doc = quota_doc(&svc.class_quotas().await?, set_resources(version));
    doc.insert("id".into(), json!(project));
    Ok(ok(json!({"quota_set": doc})))
}

pub async fn quota_detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(project): Path<String>,
) -> Result<Response> {
    svc.authorize_project(&ctx, "os_compute_api:os-quota-sets:detail", &project)?;
    let q = svc.quotas(&project).await?;
    let u = svc.usage(&project).await?;
    let keypairs = 0;
    let mut doc = Map::new();
    for r in set_resources(version) {
        let used = match r {
            "instances" => u.instances,
            "cores" => u.cores,
            "ram" => u.ram,
            "key_pairs" => keypairs,
            _ => 0,
        };
        doc.insert(
            r.to_string(),
            json!({"limit": q[r], "in_use": used, "reserved": 0}),
        );
    }
    doc.insert("id".into(), json!(project));
    Ok(ok(json!({"quota_set": doc})))
}

/// `PUT /os-quota-sets/{project}`.
#[derive(Deserialize, JsonSchema)]
pub struct QuotaSetBody {
    quota_set: QuotaSetUpdate,
}

#[derive(Deserialize)]
struct QuotaSetUpdate {
    /// Lower a limit below what is in use.
    #[serde(default)]
    force: Option<BoolOrString>,
    /// Resource → new limit (the service refuses unknown resources).
    #[serde(flatten)]
    limits: BTreeMap<String, IntOrString>,
}

/// A limit (-1 for none) for any of [`RESOURCES`] and nothing else: the
/// schema of the resource → limit maps serde reads as free-form, as the
/// service then checks them.
fn quota_limits(gen: &mut SchemaGenerator) -> Schema {
    let mut limit = gen.subschema_for::<IntOrString>().to_value();
    limit["minimum"] = json!(-1);
    let props: Map<String, Value> = RESOURCES
        .iter()
        .map(|r| (r.to_string(), limit.clone()))
        .collect();
    Schema::try_from(json!({"type": "object", "properties": props, "additionalProperties": false}))
        .expect("an object")
}

/// [`quota_limits`] and `force`.
impl JsonSchema for QuotaSetUpdate {
    fn schema_name() -> Cow<'static, str> {
        "QuotaSetUpdate".into()
    }

    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        let mut s = quota_limits(gen).to_value();
        let mut force = gen.subschema_for::<Option<BoolOrString>>().to_value();
        force["description"] = json!("Lower a limit below what is in use.");
        s["properties"]["force"] = force;
        Schema::try_from(s).expect("an object")
    }
}

pub async fn quota_update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(project): Path<String>,
    Json(body): Json<QuotaSetBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-quota-sets:update")?;
    let known: Vec<&str> = set_resources(version).collect();
    refuse_unknown_quotas("quota_set", body.quota_set.limits.keys(), &known)?;
    let force = body.quota_set.force.is_some_and(|f| f.truth());
    let changes = body
        .quota_set
        .limits
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.int(k, i64::MIN)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    svc.update_quotas(&project, &changes, force).await?;
    Ok(ok(
        json!({"quota_set": quota_doc(&svc.quotas(&project).await?, set_resources(version))}),
    ))
}

pub async fn quota_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(project): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-quota-sets:delete")?;
    store::catalog::reset_quotas(&svc.db, &project).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn zones(State(svc): State<Svc>, Authenticated(ctx): Authenticated) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-availability-zone:list")?;
    let list: Vec<Value> = svc
        .zones()
        .await?
        .into_iter()
        .map(|(z, up)| json!({"zoneName": z, "zoneState": {"available": up}, "hosts": null}))
        .collect();
    Ok(ok(json!({"availabilityZoneInfo": list})))
}

pub async fn zones_detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-availability-zone:detail")?;
    let services = store::hosts::list_services(&svc.db).await?;
    let mut out = Vec::new();
    for (z, up) in svc.zones().await? {
        let mut hosts = Map::new();
        for s in services
            .iter()
            .filter(|s| s.zone == z && s.binary == COMPUTE_BINARY)
        {
            let entry = hosts.entry(s.host.clone()).or_insert_with(|| json!({}));
            entry[&s.binary] = json!({"available": svc.is_up(s), "active": !s.disabled, "updated_at": naive(s.updated_at.as_deref())});
        }
        out.push(json!({"zoneName": z, "zoneState": {"available": up}, "hosts": hosts}));
    }
    Ok(ok(json!({"availabilityZoneInfo": out})))
}

/// A service; `forced_down` from 2.11.
/// A service's id in the API: its integer, from 2.53 its UUID.
fn service_id(s: &ServiceRow, version: ApiVersion) -> Value {
    if version >= (2, 53) {
        json!(s.uuid)
    } else {
        json!(s.id)
    }
}

/// A hypervisor's id in the API: its integer, from 2.53 its UUID.
fn hypervisor_id(n: &store::hosts::ComputeNode, version: ApiVersion) -> Value {
    if version >= (2, 53) {
        json!(n.uuid)
    } else {
        json!(n.id)
    }
}

/// The hypervisor a path names: by integer id, from 2.53 by UUID (a
/// malformed one is Nova's 400).
async fn find_hypervisor(
    svc: &Svc,
    id: &str,
    version: ApiVersion,
) -> Result<(store::hosts::ComputeNode, Option<ServiceRow>)> {
    if version >= (2, 53) && uuid::Uuid::try_parse(id).is_err() {
        return Err(Error::BadRequest(format!("Invalid uuid {id}")));
    }
    hypervisor_rows(svc)
        .await?
        .into_iter()
        .find(|(n, _)| hypervisor_id(n, version).to_string().trim_matches('"') == id)
        .ok_or_else(|| Error::NotFound(format!("Hypervisor with ID '{id}' could not be found.")))
}

fn service_view(svc: &Svc, s: &ServiceRow, version: ApiVersion) -> Value {
    let mut v = json!({
        "id": service_id(s, version), "binary": s.binary, "host": s.host, "zone": s.zone,
        "status": if s.disabled { "disabled" } else { "enabled" },
        "state": if svc.is_up(s) { "up" } else { "down" },
        "updated_at": naive(s.updated_at.as_deref()),
        "disabled_reason": s.disabled_reason,
    });
    if version >= (2, 11) {
        v["forced_down"] = json!(s.forced_down);
    }
    v
}

pub async fn services(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-services:list")?;
    let list: Vec<Value> = store::hosts::list_services(&svc.db)
        .await?
        .iter()
        .filter(|s| query_get(&q.0, "host").is_none_or(|h| h == s.host))
        .filter(|s| query_get(&q.0, "binary").is_none_or(|b| b == s.binary))
        .map(|s| service_view(&svc, s, version))
        .collect();
    Ok(ok(json!({"services": list})))
}

/// `PUT /os-services/{enable,disable,disable-log-reason,force-down}` with `{host, binary}`.
pub async fn service_update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(action): Path<String>,
    Json(body): Json<ServiceUpdateBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-services:update")?;
    if version >= (2, 53) {
        let s = super::by_uuid::service(&svc, &action).await?;
        let updated = super::by_uuid::update_service(&svc, s, body).await?;
        return Ok(ok(
            json!({"service": service_view(&svc, &updated, version)}),
        ));
    }
    let (Some(host), Some(binary)) = (body.host.as_deref(), body.binary.as_deref()) else {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute service. 'host' and 'binary' are required properties".into(),
        ));
    };
    let s = store::hosts::get_service(&svc.db, host, binary)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Service {binary} on host {host} not found.")))?;
    let reply = match action.as_str() {
        "enable" => {
            store::hosts::update_service(&svc.db, s.id, Some((false, None)), None).await?;
            json!({"host": host, "binary": binary, "status": "enabled"})
        }
        "disable" => {
            store::hosts::update_service(&svc.db, s.id, Some((true, None)), None).await?;
            json!({"host": host, "binary": binary, "status": "disabled"})
        }
        "disable-log-reason" => {
            let reason = body
                .disabled_reason
                .as_deref()
                .filter(|r| !r.is_empty() && r.len() <= 255)
                .ok_or_else(|| Error::BadRequest("Missing disabled reason field".into()))?;
            store::hosts::update_service(
                &svc.db,
                s.id,
                Some((true, Some(reason.to_owned()))),
                None,
            )
            .await?;
            json!({"host": host, "binary": binary, "status": "disabled", "disabled_reason": reason})
        }
        // `force-down` exists from 2.11.
        "force-down" if version >= (2, 11) => {
            let down = body.forced_down.ok_or_else(|| {
                Error::BadRequest("Invalid input for field/attribute forced_down.".into())
            })?;
            store::hosts::update_service(&svc.db, s.id, None, Some(down)).await?;
            json!({"host": host, "binary": binary, "forced_down": down})
        }
        other => return Err(Error::NotFound(format!("Unknown action {other}"))),
    };
    Ok(ok(json!({"service": reply})))
}

pub async fn service_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-services:delete")?;
    let id: i64 = if version >= (2, 53) {
        super::by_uuid::service(&svc, &id).await?.id
    } else {
        id.parse()
            .map_err(|_| Error::BadRequest(format!("Invalid uuid {id}")))?
    };
    if !store::hosts::delete_service(&svc.db, id).await? {
        return Err(Error::NotFound(format!("Service {id} could not be found.")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn hypervisor_rows(
    svc: &Svc,
) -> Result<Vec<(store::hosts::ComputeNode, Option<ServiceRow>)>> {
    let services = store::hosts::list_services(&svc.db).await?;
    Ok(store::hosts::list_nodes(&svc.db)
        .await?
        .into_iter()
        .map(|n| {
            let s = services
                .iter()
                .find(|s| s.host == n.host && s.binary == COMPUTE_BINARY)
                .cloned();
            (n, s)
        })
        .collect())
}

fn state_status(svc: &Svc, s: &Option<ServiceRow>) -> (&'static str, &'static str) {
    match s {
        Some(s) => (
            if svc.is_up(s) { "up" } else { "down" },
            if s.disabled { "disabled" } else { "enabled" },
        ),
        None => ("down", "disabled"),
    }
}

/// A hypervisor's detail; from 2.28 `cpu_info` is the JSON object it
/// holds (`{}` when empty) rather than its text.
fn hypervisor_view(
    svc: &Svc,
    n: &store::hosts::ComputeNode,
    s: &Option<ServiceRow>,
    version: ApiVersion,
) -> Value {
    let (state, status) = state_status(svc, s);
    let mut v = json!({
        "id": n.id, "hypervisor_hostname": n.hypervisor_hostname, "state": state, "status": status,
        "hypervisor_type": n.hypervisor_type, "hypervisor_version": n.hypervisor_version,
        "host_ip": n.host_ip.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string()), "cpu_info": n.cpu_info,
        "vcpus": n.vcpus, "vcpus_used": n.vcpus_used,
        "memory_mb": n.memory_mb, "memory_mb_used": n.memory_mb_used, "free_ram_mb": n.memory_mb - n.memory_mb_used,
        "local_gb": n.local_gb, "local_gb_used": n.local_gb_used, "free_disk_gb": n.local_gb - n.local_gb_used,
        "disk_available_least": n.local_gb - n.local_gb_used,
        "current_workload": 0, "running_vms": n.running_vms,
        "service": {"host": n.host, "id": s.as_ref().map(|s| service_id(s, version)).unwrap_or(json!(0)),
                    "disabled_reason": s.as_ref().and_then(|s| s.disabled_reason.clone())},
    });
    v["id"] = hypervisor_id(n, version);
    if version >= (2, 28) {
        v["cpu_info"] = serde_json::from_str::<Value>(&n.cpu_info)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
    }
    if version >= (2, 88) {
        // 2.88: the resource figures (placement's to tell) are gone, the
        // uptime of a host that is up is here instead.
        let o = v.as_object_mut().expect("object");
        for field in [
            "vcpus",
            "memory_mb",
            "local_gb",
            "vcpus_used",
            "memory_mb_used",
            "local_gb_used",
            "free_ram_mb",
            "free_disk_gb",
            "current_workload",
            "running_vms",
            "disk_available_least",
            "cpu_info",
        ] {
            o.remove(field);
        }
        o.insert("uptime".into(), json!((state == "up").then(host_uptime)));
    }
    v
}

/// The hypervisors a list shows: from 2.33 one page (`limit`, `marker`
/// the id of the last one seen) and Nova's `hypervisors_links`.
async fn hypervisor_page(
    svc: &Svc,
    version: ApiVersion,
    q: &[(String, String)],
    path: &str,
    view: impl Fn(&store::hosts::ComputeNode, &Option<ServiceRow>) -> Value,
) -> Result<Value> {
    let mut rows = hypervisor_rows(svc).await?;
    let with_servers = version >= (2, 53) && super::by_uuid::with_servers(q)?;
    if version >= (2, 53) {
        super::by_uuid::filter_by_pattern(&mut rows, q)?;
    }
    let ids: Vec<String> = rows
        .iter()
        .map(|(n, _)| {
            hypervisor_id(n, version)
                .to_string()
                .trim_matches('"')
                .to_owned()
        })
        .collect();
    let (rows, limit) = if version >= (2, 33) {
        let numbered: Vec<_> = ids.into_iter().zip(rows).collect();
        let (page, limit) = super::page_of(numbered, |(id, _)| id, q)?;
        (page.into_iter().map(|(_, r)| r).collect(), limit)
    } else {
        (rows, None)
    };
    let last = rows.last().map(|(n, _)| {
        hypervisor_id(n, version)
            .to_string()
            .trim_matches('"')
            .to_owned()
    });
    let mut views = Vec::with_capacity(rows.len());
    for (n, s) in &rows {
        let mut v = view(n, s);
        if with_servers {
            super::by_uuid::add_servers(svc, &mut v, &n.host, version).await?;
        }
        views.push(v);
    }
    let mut body = json!({ "hypervisors": views });
    if let Some(l) = super::next_page_link(svc, path, q, limit, rows.len(), last) {
        body["hypervisors_links"] = l;
    }
    Ok(body)
}

pub async fn hypervisors(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-hypervisors:list")?;
    let body = hypervisor_page(&svc, version, &q.0, "os-hypervisors", |n, s| {
        let (state, status) = state_status(&svc, s);
        json!({"id": hypervisor_id(n, version), "hypervisor_hostname": n.hypervisor_hostname, "state": state, "status": status})
    })
    .await?;
    Ok(ok(body))
}

pub async fn hypervisors_detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-hypervisors:list-detail")?;
    let body = hypervisor_page(&svc, version, &q.0, "os-hypervisors/detail", |n, s| {
        hypervisor_view(&svc, n, s, version)
    })
    .await?;
    Ok(ok(body))
}

pub async fn hypervisor_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-hypervisors:show")?;
    let (n, s) = find_hypervisor(&svc, &id, version).await?;
    let mut view = hypervisor_view(&svc, &n, &s, version);
    if version >= (2, 53) && super::by_uuid::with_servers(&q.0)? {
        super::by_uuid::add_servers(&svc, &mut view, &n.host, version).await?;
    }
    Ok(ok(json!({ "hypervisor": view })))
}

pub async fn hypervisor_statistics(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
) -> Result<Response> {
    // 2.88 removed the summary.
    super::consoles::not_after(version, (2, 87))?;
    svc.authorize(&ctx, "os_compute_api:os-hypervisors:statistics")?;
    let rows = hypervisor_rows(&svc).await?;
    let sum =
        |f: &dyn Fn(&store::hosts::ComputeNode) -> i64| rows.iter().map(|(n, _)| f(n)).sum::<i64>();
    Ok(ok(json!({"hypervisor_statistics": {
        "count": rows.len(), "current_workload": 0,
        "vcpus": sum(&|n| n.vcpus), "vcpus_used": sum(&|n| n.vcpus_used),
        "memory_mb": sum(&|n| n.memory_mb), "memory_mb_used": sum(&|n| n.memory_mb_used),
        "free_ram_mb": sum(&|n| n.memory_mb - n.memory_mb_used),
        "local_gb": sum(&|n| n.local_gb), "local_gb_used": sum(&|n| n.local_gb_used),
        "free_disk_gb": sum(&|n| n.local_gb - n.local_gb_used),
        "disk_available_least": sum(&|n| n.local_gb - n.local_gb_used),
        "running_vms": sum(&|n| n.running_vms),
    }})))
}

// ----- simple tenant usage -----

fn period(q: &[(String, String)]) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let now = Utc::now();
    let parse = |k: &str, default: DateTime<Utc>| match query_get(q, k) {
        None => Ok(default),
        Some(v) => ferrostack_core::time::parse(v).ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid input for field/attribute {k}. Value: {v}."
            ))
        }),
    };
    let start = parse("start", now - chrono::Duration::days(1))?;
    let end = parse("end", now)?;
    if start > end {
        return Err(Error::BadRequest(
            "Invalid start time. The start time cannot occur after the end time.".into(),
        ));
    }
    Ok((start, end))
}

/// Every server, deleted or not, in creation order (of one project, or
/// of all): what a usage report pages over.
async fn usage_instances(svc: &Svc, project: Option<&str>) -> Result<Vec<Instance>> {
    let mut all = store::instances::list(&svc.db, project, false).await?;
    all.extend(store::instances::list(&svc.db, project, true).await?);
    all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(all)
}

/// From 2.40 a usage report is paged by server (`limit`, `marker` the id
/// of the last server seen), as Nova's; before, every server counts.
fn usage_page(
    all: Vec<Instance>,
    version: ApiVersion,
    q: &[(String, String)],
) -> Result<(Vec<Instance>, Option<usize>)> {
    if version < (2, 40) {
        return Ok((all, None));
    }
    super::page_of(all, |i| i.id.as_str(), q)
}

/// A project's usage in [start, end] from `instances` (its servers), with
/// per-server rows when `detailed`; `None` when no server ran then.
fn project_usage(
    instances: &[&Instance],
    project: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    detailed: bool,
) -> Option<Value> {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let (mut hours_total, mut gb, mut mb, mut cpu) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut rows = Vec::new();
    for i in instances {
        let began = ferrostack_core::time::parse(i.launched_at.as_deref().unwrap_or(&i.created_at))
            .unwrap_or(start);
        let ended = i
            .terminated_at
            .as_deref()
            .and_then(ferrostack_core::time::parse);
        let from = began.max(start);
        let to = ended.unwrap_or(end).min(end);
        // Nova counts every server that ran in the period, even for 0 hours.
        if to < from {
            continue;
        }
        let hours = (to - from).num_milliseconds() as f64 / 3_600_000.0;
        let disk = i.flavor.disk + i.flavor.ephemeral;
        hours_total += hours;
        gb += hours * disk as f64;
        mb += hours * i.flavor.ram as f64;
        cpu += hours * i.flavor.vcpus as f64;
        rows.push(json!({
            "instance_id": i.id, "name": i.name, "hours": hours, "memory_mb": i.flavor.ram,
            "local_gb": disk, "vcpus": i.flavor.vcpus, "tenant_id": i.project_id,
            "flavor": i.flavor.name, "started_at": fmt(began),
            "ended_at": ended.map(fmt),
            "state": if i.deleted { "terminated" } else { i.vm_state.as_str() },
            "uptime": (ended.unwrap_or_else(Utc::now) - began).num_seconds(),
        }));
    }
    if rows.is_empty() {
        return None;
    }
    let mut v = json!({
        "tenant_id": project, "start": fmt(start), "stop": fmt(end),
        "total_hours": hours_total, "total_local_gb_usage": gb,
        "total_memory_mb_usage": mb, "total_vcpus_usage": cpu,
    });
    if detailed {
        v["server_usages"] = json!(rows);
    }
    Some(v)
}

pub async fn usage_list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-simple-tenant-usage:list")?;
    let period = period(&q.0)?;
    let detailed =
        query_get(&q.0, "detailed").is_some_and(|d| d == "1" || d.eq_ignore_ascii_case("true"));
    let (page, limit) = usage_page(usage_instances(&svc, None).await?, version, &q.0)?;
    let mut projects: Vec<&str> = page.iter().map(|i| i.project_id.as_str()).collect();
    projects.sort();
    projects.dedup();
    let out: Vec<Value> = projects
        .into_iter()
        .filter_map(|p| {
            let mine: Vec<&Instance> = page.iter().filter(|i| i.project_id == p).collect();
            project_usage(&mine, p, period, detailed)
        })
        .collect();
    let last = page.last().map(|i| i.id.clone());
    let link = super::next_page_link(
        &svc,
        "os-simple-tenant-usage",
        &q.0,
        limit,
        page.len(),
        last,
    );
    let mut body = json!({ "tenant_usages": out });
    if let Some(l) = link {
        body["tenant_usages_links"] = l;
    }
    Ok(ok(body))
}

pub async fn usage_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(project): Path<String>,
    q: Query,
) -> Result<Response> {
    svc.authorize_project(&ctx, "os_compute_api:os-simple-tenant-usage:show", &project)?;
    let period = period(&q.0)?;
    let all = usage_instances(&svc, Some(&project)).await?;
    let (page, limit) = usage_page(all, version, &q.0)?;
    let mine: Vec<&Instance> = page.iter().collect();
    let u = project_usage(&mine, &project, period, true).unwrap_or_else(|| json!({}));
    let last = page.last().map(|i| i.id.clone());
    let path = format!("os-simple-tenant-usage/{project}");
    let mut body = json!({ "tenant_usage": u });
    if let Some(l) = super::next_page_link(&svc, &path, &q.0, limit, page.len(), last) {
        body["tenant_usage_links"] = l;
    }
    Ok(ok(body))
}

// ----- external events -----

const EVENT_NAMES: &[&str] = &[
    "network-changed",
    "network-vif-plugged",
    "network-vif-unplugged",
    "network-vif-deleted",
    "volume-extended",
    "power-update",
    "accelerator-request-bound",
    "volume-reimaged",
];

/// `POST /os-server-external-events`.
#[derive(Deserialize, JsonSchema)]
pub struct ExternalEventsBody {
    #[schemars(length(min = 1))]
    events: Vec<ExternalEvent>,
}

#[derive(Deserialize, JsonSchema)]
struct ExternalEvent {
    #[schemars(schema_with = "event_name")]
    name: String,
    server_uuid: String,
    /// The port of a `network-*` event (at most 255 characters).
    #[serde(default)]
    #[schemars(length(max = 255))]
    tag: Option<String>,
    /// `completed` when absent.
    #[serde(default)]
    #[schemars(extend("enum" = ["failed", "completed", "in-progress", null]))]
    status: Option<String>,
}

/// Whether Nova's events schema at `version` has the event: 2.51 added
/// `volume-extended`, 2.76 `power-update`, 2.82 `accelerator-request-bound`,
/// 2.93 `volume-reimaged` (Cinder's re-image, recorded; a rebuild reads the
/// volume's status itself).
fn event_known(name: &str, version: ApiVersion) -> bool {
    let since = match name {
        "volume-extended" => (2, 51),
        "power-update" => (2, 76),
        "accelerator-request-bound" => (2, 82),
        "volume-reimaged" => (2, 93),
        _ => (2, 1),
    };
    EVENT_NAMES.contains(&name) && version >= since
}

/// 2.76's `power-update` (a power change made outside compute, as Ironic
/// reports): `POWER_OFF` stops an active server, `POWER_ON` starts a
/// stopped one, each recorded as a `stop`/`start` instance action; other
/// states are left as they are. The tag is required (else the event's
/// code is 400).
async fn power_update(svc: &Svc, ctx: &AuthContext, i: &Instance, tag: &str) -> Result<u16> {
    use crate::states::{PowerState, VmState};
    let (from, to, power, action) = match tag {
        "POWER_OFF" => (
            VmState::Active,
            VmState::Stopped,
            PowerState::Shutdown,
            "stop",
        ),
        "POWER_ON" => (
            VmState::Stopped,
            VmState::Active,
            PowerState::Running,
            "start",
        ),
        _ => return Ok(400),
    };
    if i.vm_state != from || i.task_state.is_some() {
        return Ok(200);
    }
    store::instances::update(&svc.db, &i.id, |x| {
        if x.vm_state == from && x.task_state.is_none() {
            x.vm_state = to;
            x.power_state = power;
        }
        Ok(())
    })
    .await?;
    let started = store::now();
    let id = svc.record_action(ctx, i, action).await?;
    store::instances::action_event(&svc.db, &id, "compute_power_update", &started, Ok(())).await?;
    Ok(200)
}

/// One of [`EVENT_NAMES`].
fn event_name(_: &mut SchemaGenerator) -> Schema {
    super::body::one_of(EVENT_NAMES, false)
}

/// `POST /os-server-external-events`: recorded per instance; waiters (the
/// create saga's vif wait) are woken.
pub async fn external_events(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Json(body): Json<ExternalEventsBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-server-external-events:create")?;
    let events = body.events;
    if events.is_empty() {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute events. [] is too short".into(),
        ));
    }
    let mut out = Vec::new();
    let mut any_ok = false;
    for e in events {
        let (name, server) = (e.name.as_str(), e.server_uuid.as_str());
        if !event_known(name, version) || server.is_empty() {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute name. Value: {name}."
            )));
        }
        let tag = e.tag.as_deref().unwrap_or_default();
        if tag.chars().count() > 255 {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute tag. It is longer than 255 characters.".into(),
            ));
        }
        let status = e.status.as_deref().unwrap_or("completed");
        if !["failed", "completed", "in-progress"].contains(&status) {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute status. Value: {status}."
            )));
        }
        let mut doc = json!({"name": name, "server_uuid": server, "status": status});
        if !tag.is_empty() {
            doc["tag"] = json!(tag);
        }
        match store::instances::get(&svc.db, server).await? {
            Some(i) if !i.deleted => {
                store::instances::add_external_event(&svc.db, server, name, tag, status).await?;
                doc["code"] = json!(200);
                any_ok = true;
                if name == "power-update" {
                    let code = power_update(&svc, &ctx, &i, tag).await?;
                    doc["code"] = json!(code);
                    if code != 200 {
                        doc["status"] = json!("failed");
                    }
                }
                if name == "volume-extended" {
                    // The guest is to see the new size (Cinder waits for no answer).
                    // As Nova, an `extend_volume` instance action records it.
                    let action = store::instances::action_start(
                        &svc.db,
                        server,
                        "extend_volume",
                        &crate::service::servers::request_id(),
                        &ctx.user_id,
                        &i.project_id,
                    )
                    .await?;
                    let svc = svc.clone();
                    let (id, volume) = (server.to_owned(), tag.to_owned());
                    tokio::spawn(async move {
                        let started = store::now();
                        let outcome = svc.extend_attached_volume(&id, &volume).await;
                        let recorded = outcome
                            .as_ref()
                            .map(|_| ())
                            .map_err(|e| e.message().to_owned());
                        if let Err(e) = store::instances::action_event(
                            &svc.db,
                            &action,
                            "compute_extend_volume",
                            &started,
                            recorded,
                        )
                        .await
                        {
                            tracing::warn!(instance = %id, error = %e, "extend_volume event not recorded");
                        }
                        if let Err(e) = outcome {
                            tracing::warn!(instance = %id, volume = %volume, error = %e, "volume extend not applied");
                        }
                    });
                }
                if name == "network-changed" {
                    // Refresh the server's addresses, off the caller's request.
                    let svc = svc.clone();
                    let id = server.to_owned();
                    tokio::spawn(async move {
                        if let Err(e) = svc.refresh_network_info(&id).await {
                            tracing::warn!(instance = %id, error = %e, "network info not refreshed");
                        }
                    });
                }
            }
            _ => doc["code"] = json!(404),
        }
        out.push(doc);
    }
    svc.events.notify_waiters();
    if !any_ok {
        return Err(Error::NotFound("No instances found for any event".into()));
    }
    Ok(ok(json!({"events": out})))
}

// ----- quota classes -----

/// `os-quota-class-sets/{class}`: only the `default` class has an effect
/// (it changes every project's defaults); other classes read as defaults.
pub async fn quota_class_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(class): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-quota-class-sets:show")?;
    let mut doc = quota_doc(&svc.class_quotas().await?, class_resources(version));
    doc.insert("id".into(), json!(class));
    Ok(ok(json!({"quota_class_set": doc})))
}

/// `PUT /os-quota-class-sets/{class}`.
#[derive(Deserialize, JsonSchema)]
pub struct QuotaClassBody {
    /// Resource → new limit.
    #[schemars(schema_with = "quota_limits")]
    quota_class_set: BTreeMap<String, IntOrString>,
}

pub async fn quota_class_update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(class): Path<String>,
    Json(body): Json<QuotaClassBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-quota-class-sets:update")?;
    let known: Vec<&str> = class_resources(version).collect();
    refuse_unknown_quotas("quota_class_set", body.quota_class_set.keys(), &known)?;
    let mut changes = Vec::new();
    for (k, v) in &body.quota_class_set {
        if !RESOURCES.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute quota_class_set. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        changes.push((k.clone(), v.int(k, -1)?));
    }
    if class == "default" {
        for (k, n) in changes {
            store::catalog::set_quota(&svc.db, crate::service::quotas::DEFAULT_CLASS, &k, n)
                .await?;
        }
    }
    Ok(ok(
        json!({"quota_class_set": quota_doc(&svc.class_quotas().await?, class_resources(version))}),
    ))
}

// ----- hypervisor uptime and the pre-2.53 search -----

/// `GET /os-hypervisors/{id}/uptime`: the host's `uptime` line (for the
/// fake driver, this machine's).
pub async fn hypervisor_uptime(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    // 2.88 moved the uptime into show and detail.
    super::consoles::not_after(version, (2, 87))?;
    svc.authorize(&ctx, "os_compute_api:os-hypervisors:uptime")?;
    let (n, s) = find_hypervisor(&svc, &id, version).await?;
    let (state, status) = state_status(&svc, &s);
    Ok(ok(
        json!({"hypervisor": {"id": hypervisor_id(&n, version), "hypervisor_hostname": n.hypervisor_hostname,
        "state": state, "status": status, "uptime": host_uptime()}}),
    ))
}

/// The host's `uptime` line (every compute host of this cloud reports
/// the machine's: the fake driver runs here, and so does the QEMU one in
/// the all-in-one).
fn host_uptime() -> String {
    let secs = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| {
            u.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .unwrap_or(0.0) as i64;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let l: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        " {} up {} days, {:2}:{:02},  0 users,  load average: {}",
        Utc::now().format("%H:%M:%S"),
        secs / 86400,
        (secs % 86400) / 3600,
        (secs % 3600) / 60,
        if l.len() == 3 {
            l.join(", ")
        } else {
            "0.00, 0.00, 0.00".into()
        },
    )
}

async fn matching_hypervisors(svc: &Svc, pattern: &str, with_servers: bool) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (n, s) in hypervisor_rows(svc).await? {
        if !n.hypervisor_hostname.contains(pattern) {
            continue;
        }
        let (state, status) = state_status(svc, &s);
        let mut h = json!({"id": n.id, "hypervisor_hostname": n.hypervisor_hostname,
            "state": state, "status": status});
        if with_servers {
            let servers: Vec<Value> = store::instances::on_host(&svc.db, &n.host)
                .await?
                .iter()
                .map(|i| json!({"uuid": i.id, "name": i.instance_name}))
                .collect();
            if !servers.is_empty() {
                h["servers"] = json!(servers);
            }
        }
        out.push(h);
    }
    if out.is_empty() {
        return Err(Error::NotFound(format!(
            "No hypervisor matching '{pattern}' could be found."
        )));
    }
    Ok(out)
}

/// `GET /os-hypervisors/{pattern}/search` (before 2.53).
pub async fn hypervisor_search(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(pattern): Path<String>,
) -> Result<Response> {
    // 2.53 replaced it with the list's `hypervisor_hostname_pattern`.
    super::consoles::not_after(version, (2, 52))?;
    svc.authorize(&ctx, "os_compute_api:os-hypervisors:search")?;
    Ok(ok(
        json!({"hypervisors": matching_hypervisors(&svc, &pattern, false).await?}),
    ))
}

/// `GET /os-hypervisors/{pattern}/servers` (before 2.53).
pub async fn hypervisor_servers(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(pattern): Path<String>,
) -> Result<Response> {
    // 2.53 replaced it with the list's `hypervisor_hostname_pattern`.
    super::consoles::not_after(version, (2, 52))?;
    svc.authorize(&ctx, "os_compute_api:os-hypervisors:servers")?;
    Ok(ok(
        json!({"hypervisors": matching_hypervisors(&svc, &pattern, true).await?}),
    ))
}

// ----- extensions -----

/// The v2.1 API's extension list (Nova still answers it): (name, alias, description).
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("AccessIPs", "os-access-ips", "Access IPs support."),
    (
        "Aggregates",
        "os-aggregates",
        "Admin-only aggregate administration.",
    ),
    (
        "AdminActions",
        "os-admin-actions",
        "Enable admin-only server actions.",
    ),
    (
        "AvailabilityZone",
        "os-availability-zone",
        "1. Add availability_zone to the Create Server API. 2. Add availability zones describing.",
    ),
    (
        "ConsoleOutput",
        "os-console-output",
        "Console log output support, with tailing ability.",
    ),
    ("Consoles", "os-consoles", "Interactive Console support."),
    (
        "CreateBackup",
        "os-create-backup",
        "Create a backup of a server.",
    ),
    ("DiskConfig", "os-disk-config", "Disk Management Extension."),
    (
        "ExtendedAvailabilityZone",
        "OS-EXT-AZ",
        "Extended Availability Zone support.",
    ),
    (
        "ExtendedIps",
        "OS-EXT-IPS",
        "Adds type parameter to the ip list.",
    ),
    (
        "ExtendedIpsMac",
        "OS-EXT-IPS-MAC",
        "Adds mac address parameter to the ip list.",
    ),
    (
        "ExtendedServerAttributes",
        "OS-EXT-SRV-ATTR",
        "Extended Server Attributes support.",
    ),
    ("ExtendedStatus", "OS-EXT-STS", "Extended Status support."),
    (
        "ExtendedVolumes",
        "os-extended-volumes",
        "Extended Volumes support.",
    ),
    ("FlavorAccess", "os-flavor-access", "Flavor access support."),
    (
        "FlavorDisabled",
        "OS-FLV-DISABLED",
        "Support to show the disabled status of a flavor.",
    ),
    (
        "FlavorExtraData",
        "OS-FLV-EXT-DATA",
        "Provide additional data for flavors.",
    ),
    (
        "FlavorExtraSpecs",
        "os-flavor-extra-specs",
        "Flavors extra specs support.",
    ),
    (
        "FlavorManage",
        "os-flavor-manage",
        "Flavor create/delete API support.",
    ),
    (
        "FloatingIpPools",
        "os-floating-ip-pools",
        "Floating IPs support.",
    ),
    ("FloatingIps", "os-floating-ips", "Floating IPs support."),
    ("Flavors", "flavors", "Flavors Extension."),
    ("Hosts", "os-hosts", "Admin-only host administration."),
    (
        "Hypervisors",
        "os-hypervisors",
        "Admin-only hypervisor administration.",
    ),
    (
        "InstanceActions",
        "os-instance-actions",
        "View a log of actions and events taken on an instance.",
    ),
    (
        "OSInstanceUsageAuditLog",
        "os-instance-usage-audit-log",
        "Admin-only Task Log Monitoring.",
    ),
    ("Keypairs", "os-keypairs", "Keypair Support."),
    ("Limits", "limits", "Limits support."),
    (
        "LockServer",
        "os-lock-server",
        "Enable lock/unlock server actions.",
    ),
    ("Migrations", "os-migrations", "Provide data on migrations."),
    (
        "Networks",
        "os-networks",
        "Admin-only Network Management Extension.",
    ),
    (
        "PauseServer",
        "os-pause-server",
        "Enable pause/unpause server actions.",
    ),
    (
        "QuotaClasses",
        "os-quota-class-sets",
        "Quota classes management support.",
    ),
    ("Quotas", "os-quota-sets", "Quotas management support."),
    (
        "SecurityGroups",
        "os-security-groups",
        "Security group support.",
    ),
    (
        "ServerExternalEvents",
        "os-server-external-events",
        "Server External Event Triggers.",
    ),
    (
        "ServerMetadata",
        "server-metadata",
        "Server metadata Support.",
    ),
    (
        "ServerUsage",
        "OS-SRV-USG",
        "Adds launched_at and terminated_at on Servers.",
    ),
    ("Servers", "servers", "Servers."),
    ("Services", "os-services", "Services support."),
    (
        "SimpleTenantUsage",
        "os-simple-tenant-usage",
        "Simple tenant usage extension.",
    ),
    (
        "SuspendServer",
        "os-suspend-server",
        "Enable suspend/resume server actions.",
    ),
    (
        "TenantNetworks",
        "os-tenant-networks",
        "Tenant-based Network Management Extension.",
    ),
    ("Versions", "versions", "API Version information."),
];

fn extension_view(e: &(&str, &str, &str)) -> Value {
    json!({"name": e.0, "alias": e.1, "description": e.2, "links": [],
        "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
        "updated": "2014-12-03T00:00:00Z"})
}

pub async fn extensions(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:extensions")?;
    Ok(ok(
        json!({"extensions": EXTENSIONS.iter().map(extension_view).collect::<Vec<_>>()}),
    ))
}

pub async fn extension(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(alias): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:extensions")?;
    let e = EXTENSIONS
        .iter()
        .find(|e| e.1 == alias)
        .ok_or_else(|| Error::NotFound("Extension not found".into()))?;
    Ok(ok(json!({"extension": extension_view(e)})))
}
