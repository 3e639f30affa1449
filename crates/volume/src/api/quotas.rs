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
use std::collections::{BTreeMap, HashMap};

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
        .route(
            "/v3/{project_id}/os-quota-class-sets/{class}",
            get(show_quota_class).put(update_quota_class),
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

/// The limits to set (-1 is unlimited): the project-wide resources by
/// name, the per-type ones as `volumes_<type>`, `gigabytes_<type>`,
/// `snapshots_<type>`.
#[derive(Deserialize, JsonSchema)]
pub struct QuotaUpdate {
    pub volumes: Option<i64>,
    pub gigabytes: Option<i64>,
    pub snapshots: Option<i64>,
    pub backups: Option<i64>,
    pub backup_gigabytes: Option<i64>,
    pub groups: Option<i64>,
    pub per_volume_gigabytes: Option<i64>,
    #[serde(flatten)]
    pub per_type: BTreeMap<String, i64>,
}

fn quota_view(target: &str, limits: &[(String, i64)]) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(target));
    for (r, l) in limits {
        m.insert(r.clone(), json!(l));
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
    let limits = svc.project_limits(&target).await?;
    let usage = q
        .iter()
        .any(|(k, v)| k == "usage" && matches!(v.as_str(), "true" | "True" | "1"));
    if !usage {
        return Ok(axum::Json(quota_view(&target, &limits)).into_response());
    }
    let used = store::usage::project(&svc.db, &target).await?;
    let mut m = Map::new();
    m.insert("id".into(), json!(target));
    for (r, l) in &limits {
        let in_use = used.get(r).copied().unwrap_or(0);
        m.insert(
            r.clone(),
            json!({"limit": l, "in_use": in_use, "reserved": 0, "allocated": 0}),
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
    let limits = svc.default_limits().await?;
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
    let mut given: Vec<(String, i64)> = [
        ("volumes", u.volumes),
        ("gigabytes", u.gigabytes),
        ("snapshots", u.snapshots),
        ("backups", u.backups),
        ("backup_gigabytes", u.backup_gigabytes),
        ("groups", u.groups),
        ("per_volume_gigabytes", u.per_volume_gigabytes),
    ]
    .into_iter()
    .filter_map(|(r, v)| v.map(|v| (r.to_owned(), v)))
    .collect();
    let known = svc.quota_resources().await?;
    let bad: Vec<&str> = u
        .per_type
        .keys()
        .filter(|k| !known.contains(k))
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(Error::BadRequest(format!(
            "Bad key(s) in quota set: {}",
            bad.join(",")
        )));
    }
    given.extend(u.per_type);
    if let Some((r, v)) = given.iter().find(|(_, v)| *v < -1) {
        return Err(Error::BadRequest(format!(
            "Invalid input received: Quota limit {v} for {r} must be -1 or greater."
        )));
    }
    for (r, v) in &given {
        store::quotas::set(&svc.db, &target, r, *v).await?;
    }
    let limits = svc.project_limits(&target).await?;
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

/// `{"quota_class_set": {<resource>: <limit>, ...}}`.
#[derive(Deserialize, JsonSchema)]
pub struct QuotaClassRequest {
    pub quota_class_set: Map<String, Value>,
}

pub async fn show_quota_class(
    State(svc): State<Svc>,
    Path((project_id, class)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:quota_classes", &project_id)?;
    let limits = svc.class_limits(&class).await?;
    let mut view = quota_view(&class, &limits);
    view["quota_class_set"] = view["quota_set"].take();
    view.as_object_mut().map(|m| m.remove("quota_set"));
    Ok(axum::Json(view).into_response())
}

/// Set limits of a class: each an integer of -1 or more; keys that name
/// no quota resource are left out, as Cinder does.
pub async fn update_quota_class(
    State(svc): State<Svc>,
    Path((project_id, class)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<QuotaClassRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:quota_classes:update", &project_id)?;
    if class.is_empty() || class.chars().count() > 255 {
        return Err(Error::BadRequest(
            "The quota class name must be 1 to 255 characters long.".into(),
        ));
    }
    let known = svc.quota_resources().await?;
    let mut given = Vec::new();
    for (k, v) in &req.quota_class_set {
        if !known.contains(k) {
            continue;
        }
        let limit = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|l| *l >= -1)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input received: Quota limit {v} for {k} must be an integer of -1 or greater."
                ))
            })?;
        given.push((k.clone(), limit));
    }
    store::quota_classes::set(&svc.db, &class, &given).await?;
    let limits = svc.class_limits(&class).await?;
    let mut m: Map<String, Value> = limits.into_iter().map(|(r, l)| (r, json!(l))).collect();
    m.remove("id");
    Ok(axum::Json(json!({ "quota_class_set": m })).into_response())
}

pub async fn show_limits(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "limits_extension:used_limits", &project_id)?;
    let limits: HashMap<String, i64> = svc.project_limits(&project_id).await?.into_iter().collect();
    let used = store::usage::project(&svc.db, &project_id).await?;
    let used = |r: &str| used.get(r).copied().unwrap_or(0);
    Ok(axum::Json(json!({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": limits["volumes"],
        "maxTotalVolumeGigabytes": limits["gigabytes"],
        "maxTotalSnapshots": limits["snapshots"],
        "maxTotalBackups": limits["backups"],
        "maxTotalBackupGigabytes": limits["backup_gigabytes"],
        "totalVolumesUsed": used("volumes"),
        "totalGigabytesUsed": used("gigabytes"),
        "totalSnapshotsUsed": used("snapshots"),
        "totalBackupsUsed": used("backups"),
        "totalBackupGigabytesUsed": used("backup_gigabytes"),
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
