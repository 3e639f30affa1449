//! `/servers`: create, list (filters, pagination), show, update, delete,
//! actions, addresses, metadata, tags and instance actions.

use super::filters::{AttributeFilters, ChangeWindow, PatternFilter};
use super::{base_url, query_get, views, ApiVersion, Query, Svc};
use crate::service::servers::action_request::ServerActionBody;
use crate::service::servers::actions::LiveMigrateFields;
use crate::service::servers::boot_request::CreateServerBody;
use crate::service::servers::evacuate::EvacuateArgs;
use crate::service::servers::shelve::UnshelveTarget;
use crate::service::servers::{normalized_access_ip, ActionResult, ServerAction};
use crate::store::{self, instances::Instance};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Json(body): Json<CreateServerBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:servers:create")?;
    let mut body = body;
    super::create_schema::check(&mut body, version)?;
    let made = svc.create_servers(&ctx, body).await?;
    if made.return_reservation_id {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"reservation_id": made.reservation_id})),
        )
            .into_response());
    }
    let first = &made.instances[0];
    let location = format!("{}/v2.1/servers/{}", base_url(&svc), first.id);
    let mut body = json!({"server": {
        "id": first.id, "links": views::links(&svc, "servers", &first.id),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": first.security_groups.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
    }});
    if svc.config.compute.enable_instance_password {
        body["server"]["adminPass"] = json!(made.admin_pass);
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response())
}

/// The statuses Nova's `status` filter knows (its state map's values).
const NOVA_STATUSES: &[&str] = &[
    "ACTIVE",
    "BUILD",
    "DELETED",
    "ERROR",
    "HARD_REBOOT",
    "MIGRATING",
    "PASSWORD",
    "PAUSED",
    "REBOOT",
    "REBUILD",
    "RESCUE",
    "RESIZE",
    "REVERT_RESIZE",
    "SHELVED",
    "SHELVED_OFFLOADED",
    "SHUTOFF",
    "SOFT_DELETED",
    "SUSPENDED",
    "VERIFY_RESIZE",
];

/// 2.73's `locked` filter, a strict boolean (ignored before 2.73).
fn locked_filter(q: &[(String, String)], version: ApiVersion) -> Result<Option<bool>> {
    let Some(v) = query_get(q, "locked").filter(|_| version >= (2, 73)) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(Some(true)),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(Some(false)),
        _ => Err(Error::BadRequest(format!(
            "Unrecognized value '{v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        ))),
    }
}

/// The servers a list shows; `view` is `index` or `detail` (the rules'
/// names). Other projects' servers need `get_all_tenants`, the admin
/// filters (`deleted`, `host`) `allow_all_filters`.
async fn filtered(
    svc: &Svc,
    ctx: &AuthContext,
    version: ApiVersion,
    view: &str,
    q: &[(String, String)],
) -> Result<(Vec<Instance>, bool)> {
    svc.authorize(ctx, &format!("os_compute_api:servers:{view}"))?;
    let all_filters = svc.allows(ctx, "os_compute_api:servers:allow_all_filters");
    let all_tenants = svc.allows(
        ctx,
        &format!("os_compute_api:servers:{view}:get_all_tenants"),
    ) && query_get(q, "all_tenants").is_some_and(|v| {
        v.is_empty()
            || !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "f" | "off" | "no"
            )
    });
    let project = if all_tenants {
        query_get(q, "project_id")
            .or_else(|| query_get(q, "tenant_id"))
            .map(str::to_owned)
    } else {
        Some(ctx.project_id.clone().unwrap_or_default())
    };
    let deleted = all_filters
        && query_get(q, "deleted").is_some_and(|v| v == "true" || v == "True" || v == "1");
    let window = ChangeWindow::from_query(q, version, "field/attribute")?;
    if let Some(st) = query_get(q, "status") {
        // Before 2.38 an unknown status just matches nothing.
        if version >= (2, 38) && !NOVA_STATUSES.iter().any(|n| n.eq_ignore_ascii_case(st)) {
            return Err(Error::BadRequest("Invalid status value".into()));
        }
    }
    let locked = locked_filter(q, version)?;
    let attributes = AttributeFilters::from_query(q, version, all_filters);
    let name_filter = query_get(q, "name").map(PatternFilter::new);
    let ip_filter = query_get(q, "ip").map(PatternFilter::new);
    // Before 2.5 Nova drops `ip6` from a non-admin's filters unread.
    let ip6_filter = query_get(q, "ip6")
        .filter(|_| all_filters || version >= (2, 5))
        .map(PatternFilter::new);
    let keep = |i: &Instance| {
        let st = crate::states::status(i.vm_state, i.task_state);
        if let Some(s) = query_get(q, "status") {
            if !st.eq_ignore_ascii_case(s) {
                return false;
            }
        }
        if locked.is_some_and(|l| l != i.locked) {
            return false;
        }
        if let Some(f) = &name_filter {
            if !f.search(&i.name) {
                return false;
            }
        }
        if let Some(img) = query_get(q, "image") {
            if !img.ends_with(&i.image_ref) || i.image_ref.is_empty() {
                return false;
            }
        }
        if let Some(f) = query_get(q, "flavor") {
            if !f.ends_with(&i.flavor.id) {
                return false;
            }
        }
        if let Some(h) = query_get(q, "host") {
            if all_filters && i.host.as_deref() != Some(h) {
                return false;
            }
        }
        if let Some(r) = query_get(q, "reservation_id") {
            if i.reservation_id != r {
                return false;
            }
        }
        if version >= (2, 26) && !matches_tag_filters(i, q) {
            return false;
        }
        if (ip_filter.is_some() || ip6_filter.is_some())
            && !has_matching_fixed_ip(i, ip_filter.as_ref(), ip6_filter.as_ref())
        {
            return false;
        }
        if !attributes.matches(|name| server_attribute(i, name)) {
            return false;
        }
        window.contains(&i.updated_at)
    };
    let limit = query_get(q, "limit")
        .map(|l| {
            l.parse::<usize>().map_err(|_| {
                Error::BadRequest(format!(
                    "Invalid input for field/attribute limit. Value: {l}."
                ))
            })
        })
        .transpose()?;
    // Nova answers at most `max_limit` servers, asked for more or not.
    let max = svc.config.compute.max_limit.max(1);
    let limit = limit.map_or(max, |l| l.min(max));
    let after = match query_get(q, "marker") {
        None => None,
        Some(m) => Some(
            store::instances::position_of(&svc.db, m)
                .await?
                .ok_or_else(|| Error::BadRequest(format!("marker [{m}] not found")))?,
        ),
    };
    // changes-since (and -before) also show what was deleted then.
    let deleted: &[bool] = match (window.is_set(), deleted) {
        (false, d) => {
            if d {
                &[true]
            } else {
                &[false]
            }
        }
        (true, _) => &[false, true],
    };
    let scope = store::instances::ListScope {
        project: project.as_deref(),
        deleted,
        after,
    };
    // The name filter first reads names only; `keep` checks it again.
    let name_ok = |n: &str| name_filter.as_ref().is_none_or(|f| f.search(n));
    store::instances::scan(&svc.db, &scope, name_ok, keep, limit).await
}

/// The value of a server attribute filter (see `AttributeFilters`) as
/// the database holds it.
fn server_attribute(i: &Instance, name: &str) -> Option<String> {
    let status = crate::states::status(i.vm_state, i.task_state);
    match name {
        "availability_zone" => Some(i.availability_zone.clone()),
        "config_drive" => Some(i.config_drive.clone()),
        "key_name" => i.key_name.clone(),
        "created_at" => Some(i.created_at.clone()),
        "launched_at" => i.launched_at.clone(),
        "terminated_at" => i.terminated_at.clone(),
        "power_state" => Some(i.power_state.code().to_string()),
        "task_state" => i.task_state.map(|t| t.to_string()),
        "vm_state" => Some(i.vm_state.to_string()),
        "progress" => views::progress(status).map(|p| p.to_string()),
        "user_id" => Some(i.user_id.clone()),
        "hostname" => Some(i.hostname()),
        _ => None,
    }
}

/// 2.26's tag filters, each a comma-separated list: `tags` (all of them),
/// `tags-any` (one of them), `not-tags` (not all of them), `not-tags-any`
/// (none of them).
fn matches_tag_filters(i: &Instance, q: &[(String, String)]) -> bool {
    let listed = |key: &str| -> Option<Vec<&str>> {
        query_get(q, key).map(|v| v.split(',').filter(|t| !t.is_empty()).collect())
    };
    let has = |t: &&str| i.tags.iter().any(|own| own == t);
    listed("tags").is_none_or(|all| all.iter().all(has))
        && listed("tags-any").is_none_or(|any| any.iter().any(has))
        && listed("not-tags").is_none_or(|all| !all.iter().all(has))
        && listed("not-tags-any").is_none_or(|any| !any.iter().any(has))
}

/// Nova's `ip` / `ip6` filters: some fixed address of the version matches
/// (Python's `re.match`) its pattern.
fn has_matching_fixed_ip(
    i: &Instance,
    ip: Option<&PatternFilter>,
    ip6: Option<&PatternFilter>,
) -> bool {
    i.network_info
        .iter()
        .flat_map(|v| v.ips.iter())
        .any(|(a, version)| {
            let filter = if *version == 6 { ip6 } else { ip };
            filter.is_some_and(|f| f.match_start(a))
        })
}

fn next_link(
    svc: &Svc,
    path: &str,
    q: &[(String, String)],
    last: Option<&Instance>,
    more: bool,
) -> Option<Value> {
    let last = last.filter(|_| more)?;
    let mut params: Vec<String> = q
        .iter()
        .filter(|(k, _)| k != "marker")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    params.push(format!("marker={}", last.id));
    Some(
        json!([{"href": format!("{}/v2.1/{path}?{}", base_url(svc), params.join("&")), "rel": "next"}]),
    )
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    let (items, more) = filtered(&svc, &ctx, version, "index", &q.0).await?;
    let mut body =
        json!({"servers": items.iter().map(|i| views::server_brief(&svc, i)).collect::<Vec<_>>()});
    if let Some(l) = next_link(&svc, "servers", &q.0, items.last(), more) {
        body["servers_links"] = l;
    }
    Ok(ok(body))
}

pub async fn detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    let (items, more) = filtered(&svc, &ctx, version, "detail", &q.0).await?;
    let mut views: Vec<Value> = items
        .iter()
        .map(|i| views::server(&svc, &ctx, version, i))
        .collect();
    if version >= (2, 16) {
        add_host_status(&svc, &ctx, &items, &mut views).await?;
    }
    let mut body = json!({ "servers": views });
    if let Some(l) = next_link(&svc, "servers/detail", &q.0, items.last(), more) {
        body["servers_links"] = l;
    }
    Ok(ok(body))
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:servers:show")
        .await?;
    let mut view = [views::server(&svc, &ctx, version, &i)];
    if version >= (2, 16) {
        add_host_status(&svc, &ctx, std::slice::from_ref(&i), &mut view).await?;
    }
    let [mut view] = view;
    add_server_groups(&svc, version, &i, &mut view).await?;
    Ok(ok(json!({ "server": view })))
}

/// The server as update and rebuild answer it: the common view, from
/// 2.75 the whole show view (host status included).
async fn update_view(
    svc: &Svc,
    ctx: &AuthContext,
    version: ApiVersion,
    i: &Instance,
) -> Result<Value> {
    let mut view = if version >= (2, 75) {
        let mut view = [views::server(svc, ctx, version, i)];
        add_host_status(svc, ctx, std::slice::from_ref(i), &mut view).await?;
        let [view] = view;
        view
    } else {
        views::server_common(svc, ctx, version, i)
    };
    add_server_groups(svc, version, i, &mut view).await?;
    Ok(view)
}

/// 2.71: the ids of the server groups the server belongs to (one at
/// most), in show, update and rebuild.
async fn add_server_groups(
    svc: &Svc,
    version: ApiVersion,
    i: &Instance,
    view: &mut Value,
) -> Result<()> {
    if version >= (2, 71) {
        let group = store::server_groups::of_instance(&svc.db, &i.id).await?;
        view["server_groups"] = json!(group.map(|g| g.id).into_iter().collect::<Vec<_>>());
    }
    Ok(())
}

/// `PUT /servers/{id}`.
#[derive(Deserialize, JsonSchema)]
pub struct UpdateServerBody {
    server: UpdateServer,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateServer {
    #[serde(default)]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"\S"))]
    name: Option<String>,
    #[serde(default, rename = "accessIPv4")]
    access_ip_v4: Option<String>,
    #[serde(default, rename = "accessIPv6")]
    access_ip_v6: Option<String>,
    /// From 2.19; `null` clears it.
    #[serde(default, deserialize_with = "super::body::present")]
    #[schemars(length(max = 255))]
    description: Option<Option<String>>,
    /// Accepted and ignored: every disk here is `MANUAL`.
    #[serde(default, rename = "OS-DCF:diskConfig")]
    _disk_config: Option<String>,
    /// From 2.90 (an FQDN from 2.94).
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    hostname: Option<String>,
}

pub async fn update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<UpdateServerBody>,
) -> Result<Response> {
    svc.authorized_instance(&ctx, &id, "os_compute_api:servers:update")
        .await?;
    let s = body.server;
    if s.name
        .as_ref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > 255)
    {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute name.".into(),
        ));
    }
    let name = s.name;
    if version < (2, 19) {
        refuse_before_2_19(s.description.is_some(), "server")?;
    }
    let description = s
        .description
        .map(super::body::checked_description)
        .transpose()?;
    if let Some(h) = &s.hostname {
        super::create_schema::check_hostname(h, version, "server")?;
    }
    let hostname = s.hostname;
    let v4 = s
        .access_ip_v4
        .map(|a| normalized_access_ip(&a, "accessIPv4", true))
        .transpose()?;
    let v6 = s
        .access_ip_v6
        .map(|a| normalized_access_ip(&a, "accessIPv6", false))
        .transpose()?;
    let i = store::instances::update(&svc.db, &id, |i| {
        if let Some(n) = &name {
            i.name = n.clone();
        }
        if let Some(d) = &description {
            i.description = d.clone();
        }
        if let Some(h) = &hostname {
            i.hostname = Some(h.clone());
        }
        if let Some(v) = &v4 {
            i.access_ip_v4 = v.clone();
        }
        if let Some(v) = &v6 {
            i.access_ip_v6 = v.clone();
        }
        Ok(())
    })
    .await?;
    let view = update_view(&svc, &ctx, version, &i).await?;
    Ok(ok(json!({ "server": view })))
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.delete_server(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn action(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<ServerActionBody>,
) -> Result<Response> {
    let mut action = ServerAction::try_from(body)?;
    check_action_version(&mut action, version)?;
    if let ServerAction::Evacuate(args) = &mut action {
        args.stop_at_destination = version >= (2, 95);
    }
    let evacuate = matches!(action, ServerAction::Evacuate(_));
    Ok(match svc.server_action(&ctx, &id, action).await? {
        ActionResult::Empty(code) => StatusCode::from_u16(code).expect("status").into_response(),
        // From 2.14 evacuate answers no password (os-server-password has it).
        ActionResult::Json(code, _) if evacuate && version >= (2, 14) => {
            StatusCode::from_u16(code).expect("status").into_response()
        }
        ActionResult::Json(code, v) => {
            (StatusCode::from_u16(code).expect("status"), axum::Json(v)).into_response()
        }
        ActionResult::Rebuilt(i, pass) => {
            let mut v = update_view(&svc, &ctx, version, &i).await?;
            if version >= (2, 54) {
                v["key_name"] = json!(i.key_name);
            }
            if version >= (2, 57) {
                // Rebuild shows it as `user_data`, not as the extended
                // attribute the 2.75 full view would otherwise carry.
                v["user_data"] = json!(i.user_data);
                if let Some(o) = v.as_object_mut() {
                    o.remove("OS-EXT-SRV-ATTR:user_data");
                }
            }
            if svc.config.compute.enable_instance_password {
                v["adminPass"] = json!(pass);
            }
            (StatusCode::ACCEPTED, axum::Json(json!({"server": v}))).into_response()
        }
        // From 2.45 the image id is in the body, and there is no Location.
        ActionResult::Image(image_id) if version >= (2, 45) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "image_id": image_id })),
        )
            .into_response(),
        ActionResult::Image(image_id) => {
            let location = format!("{}/images/{image_id}", svc.image.base);
            (StatusCode::ACCEPTED, [(header::LOCATION, location)]).into_response()
        }
    })
}

/// The rebuild fields by version: `description` from 2.19, `key_name`
/// from 2.54, `user_data` from 2.57, when `personality` went.
fn check_rebuild_schema(
    args: &crate::service::servers::actions::RebuildArgs,
    version: ApiVersion,
) -> Result<()> {
    let unexpected = |field: &str| {
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute rebuild. Additional properties are not allowed ('{field}' was unexpected)"
        )))
    };
    if version < (2, 19) && args.description.is_some() {
        return unexpected("description");
    }
    if version < (2, 54) && args.key_name.is_some() {
        return unexpected("key_name");
    }
    if version < (2, 57) && args.user_data.is_some() {
        return unexpected("user_data");
    }
    if version >= (2, 57) && args.personality {
        return unexpected("personality");
    }
    if let Some(h) = &args.hostname {
        super::create_schema::check_hostname(h, version, "rebuild")?;
    }
    if let Some(certs) = &args.trusted_image_certificates {
        if version < (2, 63) {
            return unexpected("trusted_image_certificates");
        }
        if let Some(certs) = certs {
            super::create_schema::check_trusted_certificates(certs)?;
        }
    }
    Ok(())
}

/// Which actions (and which of their fields) the version has, as Nova's
/// per-version action schemas; and what the version changes in how one
/// runs (2.34's live-migration checks after the answer).
fn check_action_version(action: &mut ServerAction, version: ApiVersion) -> Result<()> {
    use super::consoles::{not_after, not_before};
    match action {
        // 2.6 replaced the action with `remote-consoles`.
        ServerAction::VncConsole { .. } => not_after(version, (2, 5)),
        ServerAction::Rebuild(args) => {
            args.reimage_allowed = version >= (2, 93);
            check_rebuild_schema(args, version)
        }
        ServerAction::Migrate {
            live_fields: Some(fields),
            ..
        } => {
            fields.background_checks = version >= (2, 34);
            fields.skip_scheduler = version < (2, 30) || fields.force_value;
            check_live_migrate_schema(fields, version)
        }
        ServerAction::TriggerCrashDump => not_before(version, (2, 17)),
        ServerAction::Lock(args) if version >= (2, 73) => {
            args.reason = locked_reason(args.given.take())?;
            Ok(())
        }
        // Before 2.56 Nova's migrate has no body schema: a host is ignored.
        ServerAction::Migrate {
            live: false, host, ..
        } if version < (2, 56) => {
            *host = None;
            Ok(())
        }
        ServerAction::Evacuate(args) => check_evacuate_schema(args, version),
        ServerAction::Rescue(args) => {
            args.volume_backed_allowed = version >= (2, 87);
            Ok(())
        }
        ServerAction::Unshelve { target, given } if version >= (2, 77) => {
            *target = unshelve_target(given.take(), version)?;
            Ok(())
        }
        // 2.44 removed the nova-network era floating IP actions.
        ServerAction::AddFloatingIp { .. } | ServerAction::RemoveFloatingIp { .. } => {
            not_after(version, (2, 43))
        }
        _ => Ok(()),
    }
}

/// 2.16's `host_status` of each server the
/// `os_compute_api:servers:show:host_status` rule lets the caller see it
/// on: its compute service's state (`UP`, `DOWN` when forced down,
/// `MAINTENANCE` when disabled, `UNKNOWN` when silent), `""` with no host.
async fn add_host_status(
    svc: &Svc,
    ctx: &AuthContext,
    items: &[Instance],
    views: &mut [Value],
) -> Result<()> {
    let services = store::hosts::list_services(&svc.db).await?;
    for (i, view) in items.iter().zip(views) {
        let target = crate::policy::project_target(&i.project_id);
        if !svc
            .policy
            .check("os_compute_api:servers:show:host_status", ctx, &target)
        {
            continue;
        }
        let host = i.host.as_deref().filter(|h| !h.is_empty());
        let service = host.and_then(|h| {
            services
                .iter()
                .find(|s| s.host == h && s.binary == "nova-compute")
        });
        view["host_status"] = json!(match service {
            None => "",
            Some(s) if s.forced_down => "DOWN",
            Some(s) if s.disabled => "MAINTENANCE",
            Some(s) if svc.is_up(s) => "UP",
            Some(_) => "UNKNOWN",
        });
    }
    Ok(())
}

/// 2.73's `lock` schema: `null`, or an object whose only property is an
/// optional `locked_reason` of at most 255 characters.
fn locked_reason(given: Option<Value>) -> Result<Option<String>> {
    let invalid = |why: &str| {
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute lock. {why}"
        )))
    };
    let mut body = match given {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return invalid(&format!(
                "Value: {other}. {other} is not of type 'object', 'null'"
            ))
        }
    };
    let reason = match body.remove("locked_reason") {
        None => None,
        Some(Value::String(r)) if r.chars().count() <= 255 => Some(r),
        Some(Value::String(r)) => return invalid(&format!("Value: {r}. '{r}' is too long")),
        Some(other) => return invalid(&format!("Value: {other}. {other} is not of type 'string'")),
    };
    if let Some(field) = body.keys().next() {
        return invalid(&format!(
            "Additional properties are not allowed ('{field}' was unexpected)"
        ));
    }
    Ok(reason)
}

/// The `unshelve` schemas: from 2.77 `null` or an object whose only
/// property is an optional `availability_zone` (Nova's `name`: 1 to 255
/// characters, no leading or trailing whitespace); from 2.91 the zone may
/// be `null` (unpin) and a `host` (Nova's `fqdn`) may be given.
fn unshelve_target(given: Option<Value>, version: ApiVersion) -> Result<UnshelveTarget> {
    let invalid = |why: &str| {
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute unshelve. {why}"
        )))
    };
    let mut body = match given {
        None | Some(Value::Null) => return Ok(UnshelveTarget::default()),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return invalid(&format!(
                "Value: {other}. {other} is not of type 'object', 'null'"
            ))
        }
    };
    let since_2_91 = version >= (2, 91);
    let zone = match body.remove("availability_zone") {
        None => None,
        Some(Value::Null) if since_2_91 => Some(None),
        Some(Value::String(z))
            if !z.is_empty() && z.chars().count() <= 255 && z.trim() == z =>
        {
            Some(Some(z))
        }
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute availability_zone. Value: {other}. {other} is not a valid name"
            )))
        }
    };
    let host = match body.remove("host") {
        Some(Value::String(h)) if since_2_91 => Some(h),
        Some(other) if since_2_91 => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute host. Value: {other}. {other} is not of type 'string'"
            )))
        }
        Some(_) => {
            return invalid("Additional properties are not allowed ('host' was unexpected)")
        }
        None => None,
    };
    if let Some(field) = body.keys().next() {
        return invalid(&format!(
            "Additional properties are not allowed ('{field}' was unexpected)"
        ));
    }
    Ok(UnshelveTarget { zone, host })
}

/// Forcing a host past the scheduler (`force` in evacuate and
/// `os-migrateLive`) exists from `since` until 2.68 removed it.
fn force_allowed(version: ApiVersion, since: (u32, u32)) -> bool {
    version >= since && version < (2, 68)
}

/// Nova's `os-migrateLive` schemas: `block_migration` and `host` (which
/// may be null) always required; before 2.25 `disk_over_commit` required
/// too and `block_migration` a boolean; from 2.25 `block_migration` may be
/// `auto` and `disk_over_commit` is refused; `force` from 2.30 to 2.67.
fn check_live_migrate_schema(fields: &LiveMigrateFields, version: ApiVersion) -> Result<()> {
    let invalid = |why: String| {
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute os-migrateLive. {why}"
        )))
    };
    let since_2_25 = version >= (2, 25);
    let mut required = vec![
        ("block_migration", fields.block_migration.is_some()),
        ("host", fields.host),
    ];
    if !since_2_25 {
        required.push(("disk_over_commit", fields.disk_over_commit));
    }
    if let Some((field, _)) = required.iter().find(|(_, given)| !given) {
        return invalid(format!("'{field}' is a required property"));
    }
    if fields.force && !force_allowed(version, (2, 30)) {
        return invalid("Additional properties are not allowed ('force' was unexpected)".into());
    }
    if since_2_25 && fields.disk_over_commit {
        return invalid(
            "Additional properties are not allowed ('disk_over_commit' was unexpected)".into(),
        );
    }
    let booleans = [
        "true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n",
    ];
    let value = fields.block_migration.as_deref().unwrap_or_default();
    let boolean = booleans.contains(&value.to_ascii_lowercase().as_str());
    if !(boolean || since_2_25 && value == "auto") {
        return invalid(format!(
            "block_migration {value} is not a boolean{}",
            if since_2_25 { " or 'auto'" } else { "" }
        ));
    }
    Ok(())
}

/// Before 2.19 Nova's schemas have no `description`.
fn refuse_before_2_19(given: bool, object: &str) -> Result<()> {
    if given {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {object}. Additional properties are not allowed ('description' was unexpected)"
        )));
    }
    Ok(())
}

/// Nova's evacuate schemas: `onSharedStorage` required before 2.14 and
/// refused from 2.14; `force` from 2.29 to 2.67.
fn check_evacuate_schema(args: &EvacuateArgs, version: ApiVersion) -> Result<()> {
    if args.force.is_some() && !force_allowed(version, (2, 29)) {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute evacuate. Additional properties are not allowed ('force' was unexpected)".into(),
        ));
    }
    match (args.on_shared_storage.is_some(), version >= (2, 14)) {
        (false, false) => Err(Error::BadRequest(
            "Invalid input for field/attribute evacuate. 'onSharedStorage' is a required property"
                .into(),
        )),
        (true, true) => Err(Error::BadRequest(
            "Invalid input for field/attribute evacuate. Additional properties are not allowed ('onSharedStorage' was unexpected)".into(),
        )),
        _ => Ok(()),
    }
}

pub async fn ips(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:ips:index")
        .await?;
    Ok(ok(json!({"addresses": views::addresses(&i, false)})))
}

pub async fn ips_network(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, network)): Path<(String, String)>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:ips:show")
        .await?;
    let all = views::addresses(&i, false);
    let list = all
        .get(&network)
        .cloned()
        .ok_or_else(|| Error::NotFound("Instance is not a member of specified network".into()))?;
    Ok(ok(json!({ network: list })))
}

// ----- metadata -----

/// `PUT` / `POST /servers/{id}/metadata`: free-form keys, string values.
#[derive(Deserialize, JsonSchema)]
pub struct MetadataBody {
    #[schemars(schema_with = "super::body::metadata")]
    metadata: BTreeMap<String, String>,
}

/// `PUT /servers/{id}/metadata/{key}`: one item.
#[derive(Deserialize, JsonSchema)]
pub struct MetaItemBody {
    #[schemars(schema_with = "super::body::metadata_item")]
    meta: BTreeMap<String, String>,
}

/// Nova's bounds on metadata keys and values.
fn checked_metadata(m: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    if m.iter()
        .any(|(k, v)| k.is_empty() || k.len() > 255 || v.len() > 255)
    {
        return Err(Error::BadRequest("Invalid input for field/attribute metadata. Keys must be 1 to 255 and values at most 255 characters.".into()));
    }
    Ok(m)
}

/// Change a server's metadata once `server-metadata:<op>` allows it.
async fn set_metadata(
    svc: &Svc,
    ctx: &AuthContext,
    id: &str,
    op: &str,
    change: impl Fn(&mut BTreeMap<String, String>),
) -> Result<BTreeMap<String, String>> {
    let rule = format!("os_compute_api:server-metadata:{op}");
    let i = svc.authorized_instance(ctx, id, &rule).await?;
    svc.check_lock(ctx, &i)?;
    let limit = svc.quotas(&i.project_id).await?["metadata_items"];
    let mut probe = i.metadata.clone();
    change(&mut probe);
    if limit >= 0 && probe.len() as i64 > limit {
        return Err(Error::Forbidden(
            "Quota exceeded for metadata_items: too many metadata items.".into(),
        ));
    }
    let i = store::instances::update(&svc.db, id, |i| {
        change(&mut i.metadata);
        Ok(())
    })
    .await?;
    Ok(i.metadata)
}

pub async fn metadata_list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:server-metadata:index")
        .await?;
    Ok(ok(json!({"metadata": i.metadata})))
}

pub async fn metadata_replace(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<MetadataBody>,
) -> Result<Response> {
    let new = checked_metadata(body.metadata)?;
    let m = set_metadata(&svc, &ctx, &id, "update_all", |m| *m = new.clone()).await?;
    Ok(ok(json!({"metadata": m})))
}

pub async fn metadata_merge(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<MetadataBody>,
) -> Result<Response> {
    let new = checked_metadata(body.metadata)?;
    let m = set_metadata(&svc, &ctx, &id, "create", |m| m.extend(new.clone())).await?;
    Ok(ok(json!({"metadata": m})))
}

pub async fn metadata_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:server-metadata:show")
        .await?;
    let v = i
        .metadata
        .get(&key)
        .ok_or_else(|| Error::NotFound("Metadata item was not found".into()))?;
    Ok(ok(json!({"meta": { key: v }})))
}

pub async fn metadata_set(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
    Json(body): Json<MetaItemBody>,
) -> Result<Response> {
    let meta = checked_metadata(body.meta)?;
    if meta.len() != 1 {
        return Err(Error::BadRequest(
            "Request body contains too many items".into(),
        ));
    }
    let v = meta
        .get(&key)
        .cloned()
        .ok_or_else(|| Error::BadRequest("Request body and URI mismatch".into()))?;
    set_metadata(&svc, &ctx, &id, "update", |m| {
        m.insert(key.clone(), v.clone());
    })
    .await?;
    Ok(ok(json!({"meta": { key: v }})))
}

pub async fn metadata_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:server-metadata:delete")
        .await?;
    if !i.metadata.contains_key(&key) {
        return Err(Error::NotFound("Metadata item was not found".into()));
    }
    set_metadata(&svc, &ctx, &id, "delete", |m| {
        m.remove(&key);
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- tags -----

fn check_tag(t: &str) -> Result<()> {
    if t.is_empty() || t.len() > 60 || t.contains('/') || t.contains(',') {
        return Err(Error::BadRequest(format!("Invalid tag: '{t}'")));
    }
    Ok(())
}

pub async fn tags_list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    // Server tags exist from 2.26.
    super::consoles::not_before(version, (2, 26))?;
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-tags:index")
        .await?;
    Ok(ok(json!({"tags": i.tags})))
}

/// `PUT /servers/{id}/tags`.
#[derive(Deserialize, JsonSchema)]
pub struct TagsBody {
    /// At most 50, each 1 to 60 characters without `/` or `,`.
    #[schemars(
        length(max = 50),
        inner(length(min = 1, max = 60), regex(pattern = r"^[^/,]*$"))
    )]
    tags: Vec<String>,
}

pub async fn tags_replace(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<TagsBody>,
) -> Result<Response> {
    // Server tags exist from 2.26.
    super::consoles::not_before(version, (2, 26))?;
    svc.authorized_instance(&ctx, &id, "os_compute_api:os-server-tags:update_all")
        .await?;
    let tags = body.tags;
    for t in &tags {
        check_tag(t)?;
    }
    if tags.len() > 50 {
        return Err(Error::BadRequest(
            "The number of tags exceeded the per-server limit 50".into(),
        ));
    }
    let i = store::instances::update(&svc.db, &id, |i| {
        let mut t = tags.clone();
        t.sort();
        t.dedup();
        i.tags = t;
        Ok(())
    })
    .await?;
    Ok(ok(json!({"tags": i.tags})))
}

pub async fn tags_clear(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    // Server tags exist from 2.26.
    super::consoles::not_before(version, (2, 26))?;
    svc.authorized_instance(&ctx, &id, "os_compute_api:os-server-tags:delete_all")
        .await?;
    store::instances::update(&svc.db, &id, |i| {
        i.tags.clear();
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn tag_check(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    // Server tags exist from 2.26.
    super::consoles::not_before(version, (2, 26))?;
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-tags:show")
        .await?;
    if !i.tags.contains(&tag) {
        return Err(Error::NotFound(format!("Tag '{tag}' could not be found.")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn tag_add(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    // Server tags exist from 2.26.
    super::consoles::not_before(version, (2, 26))?;
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-tags:update")
        .await?;
    check_tag(&tag)?;
    if i.tags.contains(&tag) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if i.tags.len() >= 50 {
        return Err(Error::BadRequest(
            "The number of tags exceeded the per-server limit 50".into(),
        ));
    }
    store::instances::update(&svc.db, &id, |i| {
        if !i.tags.contains(&tag) {
            i.tags.push(tag.clone());
            i.tags.sort();
        }
        Ok(())
    })
    .await?;
    let location = format!("{}/v2.1/servers/{id}/tags/{tag}", base_url(&svc));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

pub async fn tag_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    // Server tags exist from 2.26.
    super::consoles::not_before(version, (2, 26))?;
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-tags:delete")
        .await?;
    if !i.tags.contains(&tag) {
        return Err(Error::NotFound(format!("Tag '{tag}' could not be found.")));
    }
    store::instances::update(&svc.db, &id, |i| {
        i.tags.retain(|t| t != &tag);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- instance actions -----

/// The server whose actions are asked for: from 2.21 a deleted one too
/// (in the caller's project, or any for an admin).
async fn instance_of_actions(
    svc: &Svc,
    ctx: &AuthContext,
    version: ApiVersion,
    id: &str,
    rule: &str,
) -> Result<Instance> {
    if version < (2, 21) {
        return svc.authorized_instance(ctx, id, rule).await;
    }
    let i = store::instances::get(&svc.db, id)
        .await?
        .filter(|i| svc.is_admin(ctx) || ctx.project_id.as_deref() == Some(&i.project_id))
        .ok_or_else(|| Error::NotFound(format!("Instance {id} could not be found.")))?;
    svc.authorize_project(ctx, rule, &i.project_id)?;
    Ok(i)
}

pub async fn actions(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let rule = "os_compute_api:os-instance-actions:list";
    let i = instance_of_actions(&svc, &ctx, version, &id, rule).await?;
    let mut all = store::instances::actions(&svc.db, &i.id).await?;
    let mut limit = None;
    if version >= (2, 58) {
        let window = ChangeWindow::from_query(&q.0, version, "query parameters")?;
        all.retain(|a| window.contains(a["updated_at"].as_str().unwrap_or_default()));
        (all, limit) = super::page_of(all, |a| a["request_id"].as_str().unwrap_or(""), &q.0)
            .map_err(|e| match e {
                Error::BadRequest(m) if m.starts_with("marker") => Error::BadRequest(format!(
                    "Marker {} could not be found.",
                    query_get(&q.0, "marker").unwrap_or("")
                )),
                other => other,
            })?;
    }
    let last = all
        .last()
        .and_then(|a| a["request_id"].as_str())
        .map(str::to_owned);
    let count = all.len();
    let list: Vec<Value> = all.into_iter().map(|a| action_view(a, version)).collect();
    let mut body = json!({ "instanceActions": list });
    let path = format!("servers/{id}/os-instance-actions");
    if let Some(l) = super::next_page_link(&svc, &path, &q.0, limit, count, last) {
        body["links"] = l;
    }
    Ok(ok(body))
}

/// An instance action as the version shows it: no internal id, and
/// `updated_at` from 2.58.
fn action_view(mut a: Value, version: ApiVersion) -> Value {
    let o = a.as_object_mut().expect("object");
    o.remove("id");
    if version < (2, 58) {
        o.remove("updated_at");
    }
    a
}

pub async fn action_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, req)): Path<(String, String)>,
) -> Result<Response> {
    let rule = "os_compute_api:os-instance-actions:show";
    let i = instance_of_actions(&svc, &ctx, version, &id, rule).await?;
    let mut a = store::instances::actions(&svc.db, &i.id)
        .await?
        .into_iter()
        .find(|a| a["request_id"] == req.as_str())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "Action for request_id {req} on instance {id} not found"
            ))
        })?;
    let action_id = a["id"].as_str().unwrap_or_default().to_owned();
    a = action_view(a, version);
    // The events rule shows events with tracebacks; from 2.51 everyone
    // sees the events, without them.
    let full = svc.allows(&ctx, "os_compute_api:os-instance-actions:events");
    // 2.84: why a failed event failed (the fault's message; null for the
    // others), to those the details rule allows.
    let details =
        version >= (2, 84) && svc.allows(&ctx, "os_compute_api:os-instance-actions:events:details");
    if full || version >= (2, 51) {
        let mut events = store::instances::action_events(&svc.db, &action_id).await?;
        for e in events.iter_mut().filter_map(Value::as_object_mut) {
            if details {
                let failed = e.get("result").and_then(Value::as_str) == Some("Error");
                let why = e.get("traceback").cloned().filter(|_| failed);
                e.insert("details".into(), why.unwrap_or(Value::Null));
            }
            if !full {
                e.remove("traceback");
            }
            // 2.62: where each event ran (the server's host: one host
            // runs all of a server's steps here), as a name to those the
            // events rule allows, hashed for everyone.
            if version >= (2, 62) {
                e.insert("hostId".into(), json!(views::host_id(&i)));
                if full {
                    e.insert("host".into(), json!(i.host.clone().unwrap_or_default()));
                }
            }
        }
        a["events"] = json!(events);
    }
    Ok(ok(json!({"instanceAction": a})))
}

// ----- password and diagnostics -----

/// `os-server-password`: no guest agent posts an encrypted password here,
/// so it is always empty (as Nova's when the metadata service got none).
pub async fn password(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    // What the guest posted to the metadata service (encrypted with the
    // user's key by the guest).
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-password:show")
        .await?;
    Ok(ok(
        json!({"password": i.guest_password.unwrap_or_default()}),
    ))
}

pub async fn password_clear(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-password:clear")
        .await?;
    store::instances::update(&svc.db, &i.id, |x| {
        x.guest_password = None;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// 2.78's `GET /servers/{id}/topology`: the guest's NUMA topology. No
/// driver here gives a guest NUMA nodes (Nova's `numa_topology` is then
/// unset), so it is Nova's answer for such an instance: no nodes, no
/// page size. The host part (`host_node`, `cpu_pinning`) would follow
/// `compute:server:topology:host:index`.
pub async fn topology(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    super::consoles::not_before(version, (2, 78))?;
    svc.authorized_instance(&ctx, &id, "compute:server:topology:index")
        .await?;
    Ok(ok(json!({"nodes": [], "pagesize_kb": null})))
}

/// `diagnostics` (admin): the v2.1 free-form document, from the flavor and
/// the power state the driver last reported.
pub async fn diagnostics(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-diagnostics")
        .await?;
    if i.host.is_none() {
        return Err(Error::Conflict(format!(
            "Cannot 'get_diagnostics' instance {id} while it is in vm_state {}",
            i.vm_state
        )));
    }
    if version >= (2, 48) {
        return Ok(ok(views::diagnostics(&svc, &i)));
    }
    let mut d = json!({"memory": i.flavor.ram * 1024, "power_state": i.power_state.code()});
    for cpu in 0..i.flavor.vcpus {
        d[format!("cpu{cpu}_time")] = json!(0);
    }
    for (n, v) in i.network_info.iter().enumerate() {
        d[format!("tap{n}_rx")] = json!(0);
        d[format!("tap{n}_tx")] = json!(0);
        d[format!("tap{n}_mac")] = json!(v.mac_address);
    }
    Ok(ok(d))
}
