//! `os-hosts` (list, show, enable/disable; maintenance mode and power
//! actions answer 501 as Nova does for drivers without them),
//! `os-migrations` and `os-instance_usage_audit_log`, all admin only.

use super::filters::ChangeWindow;
use super::{query_get, ApiVersion, Query, Svc};
use crate::scheduler::COMPUTE_BINARY;
use crate::store::{self, migrations::MigrationRow};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDateTime, Utc};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn naive(ts: Option<&str>) -> Value {
    match ts.and_then(ferrostack_core::time::parse) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::Null,
    }
}

/// Nova's host list: every service, named by its topic (`compute`), plus
/// this controller's conductor and scheduler, which live in the API here.
async fn host_list(svc: &Svc) -> Result<Vec<Value>> {
    let mut out: Vec<Value> = store::hosts::list_services(&svc.db)
        .await?
        .iter()
        .map(|s| {
            let service = s.binary.strip_prefix("nova-").unwrap_or(&s.binary);
            json!({"host_name": s.host, "service": service, "zone": s.zone})
        })
        .collect();
    let me = &svc.config.common.host;
    for service in ["conductor", "scheduler"] {
        out.push(json!({"host_name": me, "service": service, "zone": "internal"}));
    }
    Ok(out)
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-hosts:list")?;
    let zone = query_get(&q.0, "zone").filter(|z| !z.is_empty());
    let hosts: Vec<Value> = host_list(&svc)
        .await?
        .into_iter()
        .filter(|h| zone.is_none_or(|z| h["zone"] == z))
        .collect();
    Ok(ok(json!({ "hosts": hosts })))
}

async fn compute_host(svc: &Svc, host: &str) -> Result<store::hosts::ServiceRow> {
    store::hosts::get_service(&svc.db, host, COMPUTE_BINARY)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Compute host {host} could not be found.")))
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(host): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-hosts:show")?;
    compute_host(&svc, &host).await?;
    let node = store::hosts::get_node(&svc.db, &host)
        .await?
        .unwrap_or_default();
    let res = |project: &str, cpu: i64, mem: i64, disk: i64| json!({"resource": {"host": host, "project": project, "cpu": cpu, "memory_mb": mem, "disk_gb": disk}});
    let mut out = vec![
        res("(total)", node.vcpus, node.memory_mb, node.local_gb),
        res(
            "(used_now)",
            node.vcpus_used,
            node.memory_mb_used,
            node.local_gb_used,
        ),
    ];
    let mut per_project: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for i in store::instances::on_host(&svc.db, &host).await? {
        let e = per_project.entry(i.project_id.clone()).or_default();
        e.0 += i.flavor.vcpus;
        e.1 += i.flavor.ram;
        e.2 += i.flavor.disk + i.flavor.ephemeral;
    }
    let (c, m, d) = per_project
        .values()
        .fold((0, 0, 0), |a, v| (a.0 + v.0, a.1 + v.1, a.2 + v.2));
    out.push(res("(used_max)", c, m, d));
    for (p, (c, m, d)) in &per_project {
        out.push(res(p, *c, *m, *d));
    }
    Ok(ok(json!({ "host": out })))
}

/// `PUT /os-hosts/{host}`: `enable` or `disable` each.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostUpdateBody {
    /// Required: `maintenance_mode` is not supported.
    // No `serde(default)`: serde reads an absent `Option` as `None` anyway,
    // and the schema would make the field optional.
    #[schemars(required, schema_with = "enable_or_disable")]
    status: Option<String>,
    /// Not supported here (any value is answered 501, as by Nova's drivers
    /// without maintenance mode).
    #[serde(default)]
    #[schemars(with = "()")]
    maintenance_mode: Option<String>,
}

/// What [`update`] accepts (in any case; Nova's schema lists these).
fn enable_or_disable(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::body::one_of(
        &[
            "enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE",
        ],
        false,
    )
}

/// `PUT /os-hosts/{host}` with `status` and/or `maintenance_mode`
/// (`enable`/`disable`).
pub async fn update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(host): Path<String>,
    Json(body): Json<HostUpdateBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-hosts:update")?;
    let pick = |key: &str, v: &Option<String>| -> Result<Option<bool>> {
        match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("enable") => Ok(Some(true)),
            Some("disable") => Ok(Some(false)),
            Some(other) => Err(Error::BadRequest(format!(
                "Invalid input for field/attribute {key}. Value: {other}. '{other}' is not one of ['enable', 'disable']"
            ))),
        }
    };
    let status = pick("status", &body.status)?;
    let maintenance = pick("maintenance_mode", &body.maintenance_mode)?;
    if status.is_none() && maintenance.is_none() {
        return Err(Error::BadRequest(
            "'status' or 'maintenance_mode' needed for host update".into(),
        ));
    }
    let s = compute_host(&svc, &host).await?;
    if maintenance.is_some() {
        return Err(Error::NotImplemented(
            "Virt driver does not implement host maintenance mode.".into(),
        ));
    }
    let enable = status.expect("status");
    store::hosts::update_service(&svc.db, s.id, Some((!enable, None)), None).await?;
    Ok(ok(json!({
        "host": host,
        "status": if enable { "enabled" } else { "disabled" },
    })))
}

/// `GET /os-hosts/{host}/{startup,shutdown,reboot}`: the drivers here do
/// not power hosts, which Nova answers with 501.
pub async fn power(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((host, action)): Path<(String, String)>,
) -> Result<Response> {
    // Nova's rule for `startup` is named `start`.
    let rule = match action.as_str() {
        "startup" => "os_compute_api:os-hosts:start",
        "shutdown" => "os_compute_api:os-hosts:shutdown",
        "reboot" => "os_compute_api:os-hosts:reboot",
        _ => return Err(Error::NotFound("The resource could not be found.".into())),
    };
    svc.authorize(&ctx, rule)?;
    compute_host(&svc, &host).await?;
    Err(Error::NotImplemented(
        "Virt driver does not implement host power management.".into(),
    ))
}

/// A migration; `migration_type` from 2.23, and then `links` to a live
/// migration under way (`/servers/{id}/migrations/{id}`).
fn migration_view(svc: &Svc, m: &MigrationRow, version: ApiVersion) -> Value {
    let mut v = json!({
        "id": m.id, "status": m.status, "instance_uuid": m.instance_uuid,
        "source_node": m.source_node, "source_compute": m.source_compute,
        "dest_node": m.dest_node, "dest_compute": m.dest_compute, "dest_host": m.dest_host,
        "old_instance_type_id": m.old_flavor_id.parse::<i64>().ok(),
        "new_instance_type_id": m.new_flavor_id.parse::<i64>().ok(),
        "created_at": naive(Some(&m.created_at)),
        "updated_at": naive(m.updated_at.as_deref()),
    });
    if version >= (2, 23) {
        v["migration_type"] = json!(m.migration_type);
        let live = crate::service::servers::live_migrate::IN_PROGRESS;
        if m.migration_type == "live-migration" && live.contains(&m.status.as_str()) {
            let path = format!("servers/{}/migrations", m.instance_uuid);
            v["links"] = super::views::links(svc, &path, &m.id.to_string());
        }
    }
    if version >= (2, 59) {
        v["uuid"] = json!(m.uuid);
    }
    if version >= (2, 80) {
        v["user_id"] = json!(m.user_id);
        v["project_id"] = json!(m.project_id);
    }
    v
}

/// 2.59: newest first, `changes-since` (2.66 `changes-before` too, on
/// the last update), one page
/// (`limit`, `marker` a migration uuid).
fn migration_page(
    mut list: Vec<MigrationRow>,
    q: &[(String, String)],
    version: ApiVersion,
) -> Result<(Vec<MigrationRow>, Option<usize>)> {
    list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let window = ChangeWindow::from_query(q, version, "query parameters")?;
    list.retain(|m| window.contains(m.updated_at.as_deref().unwrap_or(&m.created_at)));
    super::page_of(list, |m| m.uuid.as_str(), q).map_err(|e| match e {
        Error::BadRequest(_) => Error::BadRequest(format!(
            "Marker {} could not be found.",
            query_get(q, "marker").unwrap_or("")
        )),
        other => other,
    })
}

/// `GET /os-migrations` with Nova's filters (`host`, `status`,
/// `instance_uuid`, `migration_type`; from 2.80 `user_id`, `project_id`).
pub async fn migrations(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-migrations:index")?;
    let host = query_get(&q.0, "host");
    let status = query_get(&q.0, "status");
    let instance = query_get(&q.0, "instance_uuid");
    let kind = query_get(&q.0, "migration_type");
    // 2.80: who asked for the migration.
    let owner = |key| query_get(&q.0, key).filter(|_| version >= (2, 80));
    let (user, project) = (owner("user_id"), owner("project_id"));
    let mut rows: Vec<MigrationRow> = store::migrations::list_migrations(&svc.db)
        .await?
        .into_iter()
        .filter(|m| {
            host.is_none_or(|h| {
                m.source_compute.as_deref() == Some(h) || m.dest_compute.as_deref() == Some(h)
            })
        })
        .filter(|m| status.is_none_or(|s| m.status == s))
        .filter(|m| instance.is_none_or(|i| m.instance_uuid == i))
        .filter(|m| kind.is_none_or(|k| m.migration_type == k))
        .filter(|m| user.is_none_or(|u| m.user_id.as_deref() == Some(u)))
        .filter(|m| project.is_none_or(|p| m.project_id.as_deref() == Some(p)))
        .collect();
    let mut limit = None;
    if version >= (2, 59) {
        (rows, limit) = migration_page(rows, &q.0, version)?;
    }
    let last = rows.last().map(|m| m.uuid.clone());
    let list: Vec<Value> = rows
        .iter()
        .map(|m| migration_view(&svc, m, version))
        .collect();
    let mut body = json!({ "migrations": list });
    if let Some(l) = super::next_page_link(&svc, "os-migrations", &q.0, limit, rows.len(), last) {
        body["migrations_links"] = l;
    }
    Ok(ok(body))
}

/// The monthly audit period that ended last before `before`.
fn audit_period(before: NaiveDateTime) -> (NaiveDateTime, NaiveDateTime) {
    let d = before.date();
    let end = chrono::NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("first day");
    let begin = if d.month() == 1 {
        chrono::NaiveDate::from_ymd_opt(d.year() - 1, 12, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(d.year(), d.month() - 1, 1)
    }
    .expect("first day");
    (
        begin.and_hms_opt(0, 0, 0).expect("midnight"),
        end.and_hms_opt(0, 0, 0).expect("midnight"),
    )
}

/// No audit task runs here: every compute host is reported as not run.
async fn audit_log(svc: &Svc, before: NaiveDateTime) -> Result<Value> {
    let (begin, end) = audit_period(before);
    let hosts: Vec<String> = store::hosts::list_services(&svc.db)
        .await?
        .into_iter()
        .filter(|s| s.binary == COMPUTE_BINARY)
        .map(|s| s.host)
        .collect();
    let fmt = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    Ok(json!({
        "hosts_not_run": hosts, "log": {},
        "num_hosts": hosts.len(), "num_hosts_done": 0,
        "num_hosts_not_run": hosts.len(), "num_hosts_running": 0,
        "overall_status": format!("0 of {} hosts done. 0 errors.", hosts.len()),
        "period_beginning": fmt(begin), "period_ending": fmt(end),
        "total_errors": 0, "total_instances": 0,
    }))
}

pub async fn audit_logs(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-instance-usage-audit-log:list")?;
    let now = Utc::now().naive_utc();
    Ok(ok(
        json!({"instance_usage_audit_logs": audit_log(&svc, now).await?}),
    ))
}

pub async fn audit_log_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(before): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-instance-usage-audit-log:show")?;
    let t = NaiveDateTime::parse_from_str(&before, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(&before, "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| Error::BadRequest(format!("Invalid timestamp for date {before}")))?;
    Ok(ok(
        json!({"instance_usage_audit_log": audit_log(&svc, t).await?}),
    ))
}
