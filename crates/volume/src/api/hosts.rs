//! Admin views of hosts: `os-hosts` (each service with its liveness, and
//! a volume host's usage per project) and `capabilities/{host}` (what a
//! backend reports, as `scheduler-stats/get_pools` does).

use super::{check_url_project, Svc};
use crate::store;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v3/{project_id}/os-hosts", get(list_hosts))
        .route("/v3/{project_id}/os-hosts/{host}", get(show_host))
        .route(
            "/v3/{project_id}/capabilities/{host}",
            get(show_capabilities),
        )
}

fn check(svc: &Svc, ctx: &AuthContext, project_id: &str, rule: &str) -> Result<()> {
    check_url_project(ctx, project_id)?;
    svc.authorize(ctx, rule, project_id)
}

pub async fn list_hosts(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "volume_extension:hosts")?;
    let hosts: Vec<Value> = store::services::list(&svc.db)
        .await?
        .iter()
        .map(|r| {
            json!({
                "host_name": r.host,
                "service": r.binary,
                "zone": r.zone,
                "service-status": if super::services::is_up(&svc, &r.updated_at) { "available" } else { "unavailable" },
                "service-state": if r.disabled { "disabled" } else { "enabled" },
                "last-update": r.updated_at,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "hosts": hosts })).into_response())
}

/// Counts and GiB of volumes and snapshots on one volume host: the
/// `(total)` row first, then one per project with volumes there. Counts
/// are strings, as Cinder answers them.
pub async fn show_host(
    State(svc): State<Svc>,
    Path((project_id, host)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "volume_extension:hosts")?;
    let known = store::services::list(&svc.db)
        .await?
        .iter()
        .any(|r| r.binary == "cinder-volume" && r.host == host);
    if !known {
        return Err(Error::NotFound("Host not found".into()));
    }
    // One backend per host here: every volume is on it.
    let mut per_project: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for v in store::volumes::list(&svc.db, None).await? {
        let e = per_project.entry(v.project_id).or_default();
        e[0] += 1;
        e[1] += v.size;
    }
    for s in store::snapshots::list(&svc.db, None).await? {
        if let Some(e) = per_project.get_mut(&s.project_id) {
            e[2] += 1;
            e[3] += s.size;
        }
    }
    let row = |project: &str, c: &[i64; 4]| {
        json!({"resource": {
            "host": host,
            "project": project,
            "volume_count": c[0].to_string(),
            "total_volume_gb": c[1].to_string(),
            "snapshot_count": c[2].to_string(),
            "total_snapshot_gb": c[3].to_string(),
        }})
    };
    let mut total = [0i64; 4];
    for c in per_project.values() {
        for (t, x) in total.iter_mut().zip(c) {
            *t += x;
        }
    }
    let mut rows = vec![row("(total)", &total)];
    rows.extend(per_project.iter().map(|(p, c)| row(p, c)));
    Ok(axum::Json(json!({ "host": rows })).into_response())
}

/// The backend's capabilities: `host@backend`, or a pool of it
/// (`host@backend#pool`, the names `get_pools` lists).
pub async fn show_capabilities(
    State(svc): State<Svc>,
    Path((project_id, host)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "volume_extension:capabilities")?;
    let backend = svc.backend.name().to_owned();
    let backend_host = format!("{}@{backend}", svc.config.common.host);
    let wanted = host.split('#').next().unwrap_or_default();
    let pool_ok = host.split_once('#').is_none_or(|(_, pool)| pool == backend);
    if wanted != backend_host || !pool_ok {
        return Err(Error::NotFound(format!(
            "Service {host} could not be found."
        )));
    }
    let prop = |title: &str, description: &str| json!({"title": title, "description": description, "type": "boolean"});
    Ok(axum::Json(json!({
        "namespace": format!("OS::Storage::Capabilities::{backend_host}"),
        "vendor_name": crate::scheduler::VENDOR,
        "volume_backend_name": backend,
        "pool_name": Value::Null,
        "driver_version": env!("CARGO_PKG_VERSION"),
        "storage_protocol": svc.exporter.protocol(),
        "display_name": Value::Null,
        "description": Value::Null,
        "visibility": Value::Null,
        "replication_targets": [],
        "properties": {
            "thin_provisioning": prop("Thin Provisioning", "Sets thin provisioning."),
            "multiattach": prop("Multiattach", "Allows a volume to attach to more than one server."),
        },
    }))
    .into_response())
}
