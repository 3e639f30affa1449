//! `os-quota-sets` (show, defaults, update, reset), `limits` and
//! `os-availability-zone`.

use super::{check_url_project, Svc};
use crate::store;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v3/{project_id}/os-quota-sets/{target}",
            get(show_quotas).put(update_quotas).delete(reset_quotas),
        )
        .route(
            "/v3/{project_id}/os-quota-sets/{target}/defaults",
            get(show_defaults),
        )
        .route("/v3/{project_id}/limits", get(show_limits))
        .route(
            "/v3/{project_id}/os-availability-zone",
            get(list_availability_zones),
        )
}

#[derive(Deserialize, JsonSchema)]
pub struct QuotaSetRequest {
    pub quota_set: QuotaUpdate,
}

/// The limits this service counts; -1 is unlimited.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdate {
    pub volumes: Option<i64>,
    pub gigabytes: Option<i64>,
    pub snapshots: Option<i64>,
}

fn quota_view(target: &str, limits: &[(&str, i64)]) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(target));
    for (r, l) in limits {
        m.insert((*r).into(), json!(l));
    }
    json!({"quota_set": m})
}

pub async fn show_quotas(
    State(svc): State<Svc>,
    Path((project_id, target)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): super::Query,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:quotas:show", &target)?;
    let limits = svc.limits(&target).await?;
    let usage = q
        .iter()
        .any(|(k, v)| k == "usage" && matches!(v.as_str(), "true" | "True" | "1"));
    if !usage {
        return Ok(axum::Json(quota_view(&target, &limits)).into_response());
    }
    let (count, gb) = store::volumes::usage(&svc.db, &target).await?;
    let used: HashMap<&str, i64> = [("volumes", count), ("gigabytes", gb), ("snapshots", 0)].into();
    let mut m = Map::new();
    m.insert("id".into(), json!(target));
    for (r, l) in &limits {
        m.insert(
            (*r).into(),
            json!({"limit": l, "in_use": used[r], "reserved": 0, "allocated": 0}),
        );
    }
    Ok(axum::Json(json!({"quota_set": m})).into_response())
}

pub async fn show_defaults(
    State(svc): State<Svc>,
    Path((project_id, target)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:quotas:show", &target)?;
    let limits = svc.limits_with(&HashMap::new());
    Ok(axum::Json(quota_view(&target, &limits)).into_response())
}

pub async fn update_quotas(
    State(svc): State<Svc>,
    Path((project_id, target)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<QuotaSetRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:quotas:update", &target)?;
    let u = req.quota_set;
    let given = [
        ("volumes", u.volumes),
        ("gigabytes", u.gigabytes),
        ("snapshots", u.snapshots),
    ];
    for (r, v) in given {
        if let Some(v) = v {
            if v < -1 {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Quota limit {v} for {r} must be -1 or greater."
                )));
            }
        }
    }
    for (r, v) in given {
        if let Some(v) = v {
            store::quotas::set(&svc.db, &target, r, v).await?;
        }
    }
    let limits = svc.limits(&target).await?;
    let mut view = quota_view(&target, &limits);
    view["quota_set"].as_object_mut().map(|m| m.remove("id"));
    Ok(axum::Json(view).into_response())
}

pub async fn reset_quotas(
    State(svc): State<Svc>,
    Path((project_id, target)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:quotas:delete", &target)?;
    store::quotas::reset(&svc.db, &target).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn show_limits(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "limits_extension:used_limits", &project_id)?;
    let limits: HashMap<&str, i64> = svc.limits(&project_id).await?.into_iter().collect();
    let (count, gb) = store::volumes::usage(&svc.db, &project_id).await?;
    Ok(axum::Json(json!({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": limits["volumes"],
        "maxTotalVolumeGigabytes": limits["gigabytes"],
        "maxTotalSnapshots": limits["snapshots"],
        "maxTotalBackups": 0,
        "maxTotalBackupGigabytes": 0,
        "totalVolumesUsed": count,
        "totalGigabytesUsed": gb,
        "totalSnapshotsUsed": 0,
        "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0,
    }}}))
    .into_response())
}

pub async fn list_availability_zones(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let zone = &svc.config.volume.storage_availability_zone;
    Ok(axum::Json(json!({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": true}}
    ]}))
    .into_response())
}
