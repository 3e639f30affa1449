//! Nova's deprecated proxies to the block storage API, `os-volumes` and
//! `os-snapshots` (served up to microversion 2.35, 404 from 2.36): each
//! call goes to Cinder as the caller, with the caller's token and
//! project, and Cinder's view is translated to Nova's camelCase one.

use super::{query_get, ApiVersion, Query, Svc};
use crate::clients::UserToken;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use reqwest::Method;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// `POST /os-volumes`: Nova's names, mapped to Cinder's.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeFields {
    /// GiB: an integer or a string of digits, at least 1.
    pub size: Option<Value>,
    #[serde(default)]
    pub volume_type: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub display_description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeBody {
    pub volume: VolumeFields,
}

/// `POST /os-snapshots`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotFields {
    pub volume_id: String,
    /// A boolean or one of Nova's boolean strings.
    #[serde(default)]
    pub force: Option<Value>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub display_description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotBody {
    pub snapshot: SnapshotFields,
}

/// The proxies end at 2.36 (Nova answers 404 from there).
fn served(version: ApiVersion) -> Result<()> {
    if version >= (2, 36) {
        return Err(Error::NotFound("The resource could not be found.".into()));
    }
    Ok(())
}

fn caller(ctx: &AuthContext) -> UserToken {
    UserToken {
        token: ctx.token.clone(),
        project_id: ctx.project_id.clone().unwrap_or_default(),
    }
}

fn size_of(size: Option<&Value>) -> Result<u64> {
    let bad = |v: &Value| {
        Error::BadRequest(format!(
            "Invalid input for field/attribute size. Value: {v}. {v} is not valid under any of the given schemas"
        ))
    };
    match size {
        None => Err(Error::BadRequest(
            "Invalid input for field/attribute volume. Value: {...}. 'size' is a required property"
                .into(),
        )),
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    s.parse().ok()
                }
                _ => None,
            };
            n.filter(|n| *n >= 1).ok_or_else(|| bad(v))
        }
    }
}

fn boolean(field: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
            _ => Err(Error::BadRequest(format!(
                "Invalid input for field/attribute {field}. Value: {s}. '{s}' is not one of the allowed boolean values"
            ))),
        },
        _ => Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {v}."
        ))),
    }
}

/// Nova's `common.limited`: `offset` then `limit` (at most 1000).
fn limited(items: Vec<Value>, q: &[(String, String)]) -> Result<Vec<Value>> {
    let param = |name: &str| -> Result<Option<usize>> {
        query_get(q, name)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| Error::BadRequest(format!("{name} param must be an integer")))
            })
            .transpose()
    };
    let offset = param("offset")?.unwrap_or(0);
    let limit = param("limit")?.unwrap_or(1000).min(1000);
    Ok(items.into_iter().skip(offset).take(limit).collect())
}

/// Nova's volume view: the first attachment (or `[{}]` when detached),
/// the type's name, the metadata.
fn volume_view(v: &Value) -> Value {
    let attachments = match v["attachments"].as_array().and_then(|a| a.first()) {
        Some(a) => {
            let mut at = json!({"id": v["id"], "volumeId": v["id"], "serverId": a["server_id"]});
            if let Some(d) = a["device"].as_str().filter(|d| !d.is_empty()) {
                at["device"] = json!(d);
            }
            json!([at])
        }
        None => json!([{}]),
    };
    json!({
        "id": v["id"],
        "status": v["status"],
        "size": v["size"],
        "availabilityZone": v["availability_zone"],
        "createdAt": v["created_at"],
        "attachments": attachments,
        "displayName": v["name"],
        "displayDescription": v["description"],
        "volumeType": v["volume_type"],
        "snapshotId": v["snapshot_id"],
        "metadata": if v["metadata"].is_object() { v["metadata"].clone() } else { json!({}) },
    })
}

/// Nova's snapshot view: `size` is the snapshot's (the volume's) size.
fn snapshot_view(s: &Value) -> Value {
    json!({
        "id": s["id"],
        "volumeId": s["volume_id"],
        "status": s["status"],
        "size": s["size"],
        "createdAt": s["created_at"],
        "displayName": s["name"],
        "displayDescription": s["description"],
    })
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn volume_not_found(id: &str) -> Error {
    Error::NotFound(format!("Volume {id} could not be found."))
}

fn snapshot_not_found(id: &str) -> Error {
    Error::NotFound(format!("Snapshot {id} could not be found."))
}

/// Cinder's list of `kind` ("volumes"/"snapshots"), detailed.
async fn cinder_list(svc: &Svc, ctx: &AuthContext, kind: &str) -> Result<Vec<Value>> {
    let body = svc
        .volume
        .call_as(
            &caller(ctx),
            Method::GET,
            &format!("{kind}/detail"),
            &[],
            None,
        )
        .await?
        .unwrap_or_default();
    Ok(body[kind].as_array().cloned().unwrap_or_default())
}

async fn volumes_listed(
    svc: &Svc,
    ctx: &AuthContext,
    version: ApiVersion,
    q: &[(String, String)],
    rule: &str,
) -> Result<Response> {
    served(version)?;
    svc.authorize(ctx, rule)?;
    let vols = cinder_list(svc, ctx, "volumes").await?;
    let views = limited(vols.iter().map(volume_view).collect(), q)?;
    Ok(ok(json!({ "volumes": views })))
}

pub async fn volumes(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    volumes_listed(&svc, &ctx, version, &q.0, "os_compute_api:os-volumes:list").await
}

pub async fn volumes_detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    volumes_listed(
        &svc,
        &ctx,
        version,
        &q.0,
        "os_compute_api:os-volumes:detail",
    )
    .await
}

pub async fn volume_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    served(version)?;
    svc.authorize(&ctx, "os_compute_api:os-volumes:show")?;
    let v = svc
        .volume
        .call_as(
            &caller(&ctx),
            Method::GET,
            &format!("volumes/{id}"),
            &[],
            None,
        )
        .await?
        .ok_or_else(|| volume_not_found(&id))?;
    Ok(ok(json!({ "volume": volume_view(&v["volume"]) })))
}

pub async fn volume_create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Json(body): Json<VolumeBody>,
) -> Result<Response> {
    served(version)?;
    let f = body.volume;
    let size = size_of(f.size.as_ref())?;
    svc.authorize(&ctx, "os_compute_api:os-volumes:create")?;
    let mut vol = json!({
        "size": size,
        "name": f.display_name,
        "description": f.display_description,
        "metadata": f.metadata.unwrap_or_default(),
    });
    for (key, value) in [
        ("volume_type", f.volume_type),
        ("snapshot_id", f.snapshot_id),
        ("availability_zone", f.availability_zone),
    ] {
        if let Some(value) = value {
            vol[key] = json!(value);
        }
    }
    let created = svc
        .volume
        .call_as(
            &caller(&ctx),
            Method::POST,
            "volumes",
            &[],
            Some(json!({ "volume": vol })),
        )
        .await?
        .ok_or_else(|| Error::NotFound("The volume's source could not be found.".into()))?;
    Ok(ok(json!({ "volume": volume_view(&created["volume"]) })))
}

pub async fn volume_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    served(version)?;
    svc.authorize(&ctx, "os_compute_api:os-volumes:delete")?;
    svc.volume
        .call_as(
            &caller(&ctx),
            Method::DELETE,
            &format!("volumes/{id}"),
            &[],
            None,
        )
        .await?
        .ok_or_else(|| volume_not_found(&id))?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn snapshots_listed(
    svc: &Svc,
    ctx: &AuthContext,
    version: ApiVersion,
    q: &[(String, String)],
    rule: &str,
) -> Result<Response> {
    served(version)?;
    svc.authorize(ctx, rule)?;
    let snaps = cinder_list(svc, ctx, "snapshots").await?;
    let views = limited(snaps.iter().map(snapshot_view).collect(), q)?;
    Ok(ok(json!({ "snapshots": views })))
}

pub async fn snapshots(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    snapshots_listed(
        &svc,
        &ctx,
        version,
        &q.0,
        "os_compute_api:os-volumes:snapshots:list",
    )
    .await
}

pub async fn snapshots_detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    snapshots_listed(
        &svc,
        &ctx,
        version,
        &q.0,
        "os_compute_api:os-volumes:snapshots:detail",
    )
    .await
}

pub async fn snapshot_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    served(version)?;
    svc.authorize(&ctx, "os_compute_api:os-volumes:snapshots:show")?;
    let s = svc
        .volume
        .call_as(
            &caller(&ctx),
            Method::GET,
            &format!("snapshots/{id}"),
            &[],
            None,
        )
        .await?
        .ok_or_else(|| snapshot_not_found(&id))?;
    Ok(ok(json!({ "snapshot": snapshot_view(&s["snapshot"]) })))
}

pub async fn snapshot_create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Json(body): Json<SnapshotBody>,
) -> Result<Response> {
    served(version)?;
    let f = body.snapshot;
    let force = f.force.as_ref().map(|v| boolean("force", v)).transpose()?;
    svc.authorize(&ctx, "os_compute_api:os-volumes:snapshots:create")?;
    let snap = json!({
        "volume_id": f.volume_id,
        "force": force.unwrap_or(false),
        "name": f.display_name,
        "description": f.display_description,
    });
    let created = svc
        .volume
        .call_as(
            &caller(&ctx),
            Method::POST,
            "snapshots",
            &[],
            Some(json!({ "snapshot": snap })),
        )
        .await?
        .ok_or_else(|| volume_not_found(&f.volume_id))?;
    Ok(ok(
        json!({ "snapshot": snapshot_view(&created["snapshot"]) }),
    ))
}

pub async fn snapshot_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    served(version)?;
    svc.authorize(&ctx, "os_compute_api:os-volumes:snapshots:delete")?;
    svc.volume
        .call_as(
            &caller(&ctx),
            Method::DELETE,
            &format!("snapshots/{id}"),
            &[],
            None,
        )
        .await?
        .ok_or_else(|| snapshot_not_found(&id))?;
    Ok(StatusCode::ACCEPTED.into_response())
}
