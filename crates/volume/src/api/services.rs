//! Admin views of the service: `os-services` (the scheduler and the
//! volume backend of this host, up or down by their heartbeat) and
//! `scheduler-stats/get_pools` (the backend pool's capacity); enabling,
//! disabling, freezing and thawing them.

use super::microversion::ApiVersion;
use super::{check_url_project, Query, Svc};
use crate::store;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, put, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v3/{project_id}/os-services", get(list_services))
        .route("/v3/{project_id}/os-services/{action}", put(update_service))
        .route("/v3/{project_id}/scheduler-stats/get_pools", get(get_pools))
}

/// Up when the last heartbeat is within `service_down_time`.
pub(super) fn is_up(svc: &Svc, updated_at: &str) -> bool {
    ferrostack_core::time::parse(updated_at).is_some_and(|t| {
        let age = chrono::Utc::now().signed_duration_since(t).num_seconds();
        age <= svc.config.volume.service_down_time as i64
    })
}

/// Cinder's host filter: `host` also matches its backends (`host@backend`)
/// and `host@backend` its pools (`host@backend#pool`).
fn host_matches(service_host: &str, wanted: &str) -> bool {
    if service_host == wanted || wanted.contains('#') {
        return service_host == wanted;
    }
    let rest = match service_host.strip_prefix(wanted) {
        Some(r) => r,
        None => return false,
    };
    rest.starts_with('#') || (!wanted.contains('@') && rest.starts_with('@'))
}

pub async fn list_services(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:services:index", &project_id)?;
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let rows = store::services::list(&svc.db).await?;
    let services: Vec<Value> = rows
        .iter()
        .filter(|r| param("host").is_none_or(|h| host_matches(&r.host, h)))
        .filter(|r| param("binary").is_none_or(|b| r.binary == b))
        .map(|r| {
            let up = is_up(&svc, &r.updated_at);
            let mut s = json!({
                "binary": r.binary,
                "host": r.host,
                "zone": r.zone,
                "status": if r.disabled { "disabled" } else { "enabled" },
                "state": if up { "up" } else { "down" },
                "updated_at": r.updated_at,
                "disabled_reason": r.disabled_reason,
            });
            if version >= (3, 7) {
                s["cluster"] = Value::Null;
            }
            if r.binary == "cinder-volume" {
                s["replication_status"] = json!("disabled");
                s["active_backend_id"] = Value::Null;
                s["frozen"] = json!(r.frozen);
            }
            if version >= (3, 49) && r.binary == "cinder-volume" {
                s["backend_state"] = json!(if up { "up" } else { "down" });
            }
            s
        })
        .collect();
    Ok(axum::Json(json!({ "services": services })).into_response())
}

pub async fn get_pools(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(
        &ctx,
        "scheduler_extension:scheduler_stats:get_pools",
        &project_id,
    )?;
    let backend = svc.backend.name().to_owned();
    let name = format!("{}@{backend}#{backend}", svc.config.common.host);
    let detail = q
        .iter()
        .any(|(k, v)| k == "detail" && matches!(v.as_str(), "true" | "True" | "1"));
    let mut pool = json!({ "name": name });
    if detail {
        let allocated: i64 = store::volumes::list(&svc.db, None)
            .await?
            .iter()
            .map(|v| v.size)
            .sum();
        let mut caps = crate::scheduler::capabilities(&svc);
        let total = svc.config.volume.capacity_gb;
        for (k, v) in [
            ("total_capacity_gb", json!(total)),
            ("free_capacity_gb", json!((total - allocated).max(0))),
            ("allocated_capacity_gb", json!(allocated)),
            ("provisioned_capacity_gb", json!(allocated)),
            (
                "timestamp",
                json!(ferrostack_core::time::iso_micros(chrono::Utc::now())),
            ),
        ] {
            caps.insert(k.into(), v);
        }
        pool["capabilities"] = Value::Object(caps);
    }
    Ok(axum::Json(json!({ "pools": [pool] })).into_response())
}

/// The body of `PUT os-services/{action}`.
#[derive(Deserialize, JsonSchema)]
pub struct ServiceAction {
    pub host: Option<String>,
    pub binary: Option<String>,
    /// `disable-log-reason` only.
    pub disabled_reason: Option<String>,
    /// `failover_host` only: the replication target to fail over to.
    pub backend_id: Option<String>,
}

/// What `PUT os-services/{action}` does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Enable,
    Disable,
    DisableLogReason,
    Freeze,
    Thaw,
    Failover,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "enable" => Action::Enable,
            "disable" => Action::Disable,
            "disable-log-reason" => Action::DisableLogReason,
            "freeze" => Action::Freeze,
            "thaw" => Action::Thaw,
            "failover_host" | "failover" => Action::Failover,
            _ => return None,
        })
    }
}

fn required<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str> {
    v.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::BadRequest(format!(
            "Missing required element '{name}' in request body."
        ))
    })
}

/// `PUT os-services/{enable|disable|disable-log-reason|freeze|thaw|failover_host}`.
pub async fn update_service(
    State(svc): State<Svc>,
    Path((project_id, action)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<ServiceAction>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:services:update", &project_id)?;
    let action = Action::parse(&action)
        .ok_or_else(|| Error::NotFound(format!("Unknown action '{action}'")))?;
    let host = required(&req.host, "host")?;
    match action {
        Action::Freeze | Action::Thaw => {
            svc.freeze_host(host, action == Action::Freeze).await?;
            Ok(StatusCode::OK.into_response())
        }
        Action::Failover => {
            svc.failover_host(host, req.backend_id.as_deref()).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        _ => {
            let binary = required(&req.binary, "binary")?;
            let reason = match action {
                Action::DisableLogReason => Some(check_reason(&req.disabled_reason)?),
                _ => None,
            };
            let disabled = action != Action::Enable;
            svc.set_service_disabled(host, binary, disabled, reason)
                .await?;
            let mut body = json!({
                "host": host,
                "service": binary,
                "binary": binary,
                "disabled": disabled,
                "status": if disabled { "disabled" } else { "enabled" },
            });
            if action != Action::Disable {
                body["disabled_reason"] = json!(reason);
            }
            Ok(axum::Json(body).into_response())
        }
    }
}

/// Cinder's rule for a disabled reason: 1 to 255 printable characters.
fn check_reason(reason: &Option<String>) -> Result<&str> {
    match reason.as_deref().map(str::trim) {
        Some(r)
            if !r.is_empty() && r.chars().count() <= 255 && !r.chars().any(char::is_control) =>
        {
            Ok(r)
        }
        _ => Err(Error::BadRequest(
            "Disabled reason contains invalid characters or is too long".into(),
        )),
    }
}
