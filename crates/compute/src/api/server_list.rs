//! `GET /servers` and `/servers/detail`: the query's filters parsed once
//! ([`ListRequest`]), then the page read from the database. The brief
//! list with no filter beyond `name` reads only the id and name columns;
//! every other list reads the page's bodies.

use super::filters::{AttributeFilters, ChangeWindow, PatternFilter};
use super::servers::add_host_status;
use super::{base_url, query_get, views, ApiVersion, Query, Svc};
use crate::store::{self, instances::Instance};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    let req = ListRequest::parse(&svc, &ctx, version, "index", &q.0)?;
    let (servers, last, more) = if req.reads_bodies() {
        let (items, more) = req.instances(&svc).await?;
        let views: Vec<Value> = items.iter().map(|i| views::server_brief(&svc, i)).collect();
        (views, items.last().map(|i| i.id.clone()), more)
    } else {
        let scope = req.scope(&svc).await?;
        let (rows, more) =
            store::instances::scan_names(&svc.db, &scope, |n| req.name_ok(n), req.limit).await?;
        let views: Vec<Value> = rows
            .iter()
            .map(|r| views::brief(&svc, &r.id, r.name.as_deref().unwrap_or_default()))
            .collect();
        (views, rows.last().map(|r| r.id.clone()), more)
    };
    let mut body = json!({ "servers": servers });
    if let Some(l) = next_link(&svc, "servers", &q.0, last.as_deref(), more) {
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
    let req = ListRequest::parse(&svc, &ctx, version, "detail", &q.0)?;
    let (items, more) = req.instances(&svc).await?;
    let mut views: Vec<Value> = items
        .iter()
        .map(|i| views::server(&svc, &ctx, version, i))
        .collect();
    if version >= (2, 16) {
        add_host_status(&svc, &ctx, &items, &mut views).await?;
    }
    let mut body = json!({ "servers": views });
    let last = items.last().map(|i| i.id.as_str());
    if let Some(l) = next_link(&svc, "servers/detail", &q.0, last, more) {
        body["servers_links"] = l;
    }
    Ok(ok(body))
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

/// 2.26's tag filters.
const TAG_FILTERS: &[&str] = &["tags", "tags-any", "not-tags", "not-tags-any"];

/// One server list request: what the caller may see and which servers
/// pass its filters. Other projects' servers need `get_all_tenants`, the
/// admin filters (`deleted`, `host`) `allow_all_filters`.
struct ListRequest<'q> {
    q: &'q [(String, String)],
    version: ApiVersion,
    all_filters: bool,
    project: Option<String>,
    deleted: bool,
    window: ChangeWindow,
    status: Option<&'q str>,
    locked: Option<bool>,
    attributes: AttributeFilters,
    name: Option<PatternFilter>,
    /// What every name `name` accepts contains one of (read by the database).
    name_contains: Option<Vec<String>>,
    ip: Option<PatternFilter>,
    ip6: Option<PatternFilter>,
    /// At most `[compute] max_limit`, asked for more or not (as Nova).
    limit: usize,
}

impl<'q> ListRequest<'q> {
    /// Authorizes the list (`view` is `index` or `detail`, the rules'
    /// names) and checks the query as Nova does.
    fn parse(
        svc: &Svc,
        ctx: &AuthContext,
        version: ApiVersion,
        view: &str,
        q: &'q [(String, String)],
    ) -> Result<Self> {
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
        let status = query_get(q, "status");
        if let Some(st) = status {
            // Before 2.38 an unknown status just matches nothing.
            if version >= (2, 38) && !NOVA_STATUSES.iter().any(|n| n.eq_ignore_ascii_case(st)) {
                return Err(Error::BadRequest("Invalid status value".into()));
            }
        }
        let limit = query_get(q, "limit")
            .map(|l| {
                l.parse::<usize>().map_err(|_| {
                    Error::BadRequest(format!(
                        "Invalid input for field/attribute limit. Value: {l}."
                    ))
                })
            })
            .transpose()?;
        let max = svc.config.compute.max_limit.max(1);
        let name = query_get(q, "name").map(PatternFilter::new);
        Ok(ListRequest {
            q,
            version,
            all_filters,
            project,
            deleted,
            window: ChangeWindow::from_query(q, version, "field/attribute")?,
            status,
            locked: locked_filter(q, version)?,
            attributes: AttributeFilters::from_query(q, version, all_filters),
            name_contains: name.as_ref().and_then(PatternFilter::required_substrings),
            name,
            ip: query_get(q, "ip").map(PatternFilter::new),
            // Before 2.5 Nova drops `ip6` from a non-admin's filters unread.
            ip6: query_get(q, "ip6")
                .filter(|_| all_filters || version >= (2, 5))
                .map(PatternFilter::new),
            limit: limit.map_or(max, |l| l.min(max)),
        })
    }

    /// Which rows to read: the project's (or all), deleted or not, after
    /// the marker.
    async fn scope(&self, svc: &Svc) -> Result<store::instances::ListScope<'_>> {
        let after = match query_get(self.q, "marker") {
            None => None,
            Some(m) => Some(
                store::instances::position_of(&svc.db, m)
                    .await?
                    .ok_or_else(|| Error::BadRequest(format!("marker [{m}] not found")))?,
            ),
        };
        // changes-since (and -before) also show what was deleted then.
        let deleted: &[bool] = match (self.window.is_set(), self.deleted) {
            (true, _) => &[false, true],
            (false, true) => &[true],
            (false, false) => &[false],
        };
        Ok(store::instances::ListScope {
            project: self.project.as_deref(),
            deleted,
            after,
            name_contains: self.name_contains.as_deref(),
        })
    }

    /// The page: the instances that pass every filter, and whether more
    /// would follow.
    async fn instances(&self, svc: &Svc) -> Result<(Vec<Instance>, bool)> {
        let scope = self.scope(svc).await?;
        store::instances::scan(
            &svc.db,
            &scope,
            |n| self.name_ok(n),
            |i| self.keep(i),
            self.limit,
        )
        .await
    }

    /// The `name` filter on the name column alone, before any body is read.
    fn name_ok(&self, name: &str) -> bool {
        self.name.as_ref().is_none_or(|f| f.search(name))
    }

    /// Whether some filter needs more of a server than its name.
    fn reads_bodies(&self) -> bool {
        let given = |key: &str| query_get(self.q, key).is_some();
        self.status.is_some()
            || self.locked.is_some()
            || given("image")
            || given("flavor")
            || (self.all_filters && given("host"))
            || given("reservation_id")
            || (self.version >= (2, 26) && TAG_FILTERS.iter().any(|k| given(k)))
            || self.ip.is_some()
            || self.ip6.is_some()
            || !self.attributes.is_empty()
            || self.window.is_set()
    }

    /// Whether the server passes every filter.
    fn keep(&self, i: &Instance) -> bool {
        let q = self.q;
        if let Some(s) = self.status {
            if !crate::states::status(i.vm_state, i.task_state).eq_ignore_ascii_case(s) {
                return false;
            }
        }
        if self.locked.is_some_and(|l| l != i.locked) || !self.name_ok(&i.name) {
            return false;
        }
        if query_get(q, "image")
            .is_some_and(|img| !img.ends_with(&i.image_ref) || i.image_ref.is_empty())
        {
            return false;
        }
        if query_get(q, "flavor").is_some_and(|f| !f.ends_with(&i.flavor.id)) {
            return false;
        }
        if self.all_filters && query_get(q, "host").is_some_and(|h| i.host.as_deref() != Some(h)) {
            return false;
        }
        if query_get(q, "reservation_id").is_some_and(|r| i.reservation_id != r) {
            return false;
        }
        if self.version >= (2, 26) && !matches_tag_filters(i, q) {
            return false;
        }
        if (self.ip.is_some() || self.ip6.is_some())
            && !has_matching_fixed_ip(i, self.ip.as_ref(), self.ip6.as_ref())
        {
            return false;
        }
        self.attributes.matches(|name| server_attribute(i, name))
            && self.window.contains(&i.updated_at)
    }
}

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
    last: Option<&str>,
    more: bool,
) -> Option<Value> {
    let last = last.filter(|_| more)?;
    let mut params: Vec<String> = q
        .iter()
        .filter(|(k, _)| k != "marker")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    params.push(format!("marker={last}"));
    Some(
        json!([{"href": format!("{}/v2.1/{path}?{}", base_url(svc), params.join("&")), "rel": "next"}]),
    )
}
