//! `/images`: the v2.1 image proxy (deprecated in Nova at 2.36, still part
//! of 2.1). Every call goes to the image service with the caller's token,
//! so Glance's visibility rules apply; Glance's documents are shown in
//! Nova's shape.

use super::{base_url, query_get, Query, Svc};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Glance's own attributes; everything else is the image's metadata.
const GLANCE_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "min_ram",
    "min_disk",
    "created_at",
    "updated_at",
    "tags",
    "self",
    "file",
    "schema",
    "disk_format",
    "container_format",
    "direct_url",
    "locations",
    "os_hidden",
    "stores",
];

fn not_found() -> Error {
    Error::NotFound("Image not found.".into())
}

async fn glance(
    svc: &Svc,
    ctx: &AuthContext,
    method: reqwest::Method,
    path: &str,
    body: Option<(&str, String)>,
) -> Result<(u16, Value)> {
    let mut req = svc
        .image
        .client
        .http()
        .request(method, format!("{}/v2{path}", svc.image.base))
        .header("x-auth-token", &ctx.token);
    if let Some((content_type, b)) = body {
        req = req.header("content-type", content_type).body(b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("image service unreachable: {e}")))?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn get_image(svc: &Svc, ctx: &AuthContext, id: &str) -> Result<Value> {
    match glance(
        svc,
        ctx,
        reqwest::Method::GET,
        &format!("/images/{id}"),
        None,
    )
    .await?
    {
        (200, v) => Ok(v),
        _ => Err(not_found()),
    }
}

fn status(glance_status: &str) -> &'static str {
    match glance_status {
        "active" => "ACTIVE",
        "queued" | "saving" | "uploading" | "importing" => "SAVING",
        "deleted" | "pending_delete" => "DELETED",
        "killed" => "ERROR",
        _ => "UNKNOWN",
    }
}

fn metadata(img: &Value) -> Map<String, Value> {
    img.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !GLANCE_KEYS.contains(&k.as_str()))
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), json!(s))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn links(svc: &Svc, id: &str) -> Value {
    let base = base_url(svc);
    json!([
        {"href": format!("{base}/v2.1/images/{id}"), "rel": "self"},
        {"href": format!("{base}/images/{id}"), "rel": "bookmark"},
        {"href": format!("{}/images/{id}", svc.image.base), "rel": "alternate",
         "type": "application/vnd.openstack.image"},
    ])
}

fn view(svc: &Svc, img: &Value) -> Value {
    let id = img["id"].as_str().unwrap_or_default();
    let st = status(img["status"].as_str().unwrap_or(""));
    let mut v = json!({
        "id": id, "name": img["name"], "status": st,
        "created": img["created_at"], "updated": img["updated_at"],
        "minDisk": img["min_disk"].as_i64().unwrap_or(0),
        "minRam": img["min_ram"].as_i64().unwrap_or(0),
        "progress": match st { "ACTIVE" => 100, "SAVING" => 50, _ => 0 },
        "metadata": metadata(img),
        "OS-EXT-IMG-SIZE:size": img["size"].as_i64(),
        "links": links(svc, id),
    });
    if let Some(server) = img["instance_uuid"].as_str() {
        let base = base_url(svc);
        v["server"] = json!({"id": server, "links": [
            {"href": format!("{base}/v2.1/servers/{server}"), "rel": "self"},
            {"href": format!("{base}/servers/{server}"), "rel": "bookmark"}]});
    }
    v
}

/// The caller's images after Nova's filters (name, status, server, type,
/// changes-since, minRam, minDisk) and pagination.
async fn listed(svc: &Svc, ctx: &AuthContext, q: &[(String, String)]) -> Result<Vec<Value>> {
    let mut all: Vec<Value> = Vec::new();
    let mut path = "/images?limit=1000".to_owned();
    for _ in 0..100 {
        let (st, page) = glance(svc, ctx, reqwest::Method::GET, &path, None).await?;
        if st != 200 {
            return Err(Error::Internal(format!("image list failed: HTTP {st}")));
        }
        all.extend(page["images"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => path = next.trim_start_matches("/v2").to_owned(),
            None => break,
        }
    }
    let since = query_get(q, "changes-since").and_then(ferrostack_core::time::parse);
    let num = |k: &str| query_get(q, k).and_then(|v| v.parse::<i64>().ok());
    all.retain(|img| {
        let vw_status = status(img["status"].as_str().unwrap_or(""));
        query_get(q, "name").is_none_or(|n| img["name"] == n)
            && query_get(q, "status").is_none_or(|s| vw_status.eq_ignore_ascii_case(s))
            && query_get(q, "server").is_none_or(|s| {
                img["instance_uuid"]
                    .as_str()
                    .is_some_and(|u| s.ends_with(u))
            })
            && query_get(q, "type").is_none_or(|t| {
                img["image_type"].as_str().unwrap_or("image") == t
                    || (t == "snapshot" && img["image_type"] == "snapshot")
            })
            && num("minRam").is_none_or(|r| img["min_ram"].as_i64().unwrap_or(0) >= r)
            && num("minDisk").is_none_or(|d| img["min_disk"].as_i64().unwrap_or(0) >= d)
            && since.is_none_or(|t| {
                img["updated_at"]
                    .as_str()
                    .and_then(ferrostack_core::time::parse)
                    .is_some_and(|u| u >= t)
            })
    });
    let limit = query_get(q, "limit")
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| Error::BadRequest(format!("Invalid limit {l}")))
        })
        .transpose()?;
    let (page, _) = ferrostack_core::pagination::paginate(
        all,
        |i| i["id"].as_str().unwrap_or_default(),
        query_get(q, "marker"),
        limit,
    )
    .map_err(|m| Error::BadRequest(format!("marker [{}] not found", m.0)))?;
    Ok(page)
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    let items: Vec<Value> = listed(&svc, &ctx, &q.0)
        .await?
        .iter()
        .map(|i| {
            let id = i["id"].as_str().unwrap_or_default();
            json!({"id": id, "name": i["name"], "links": links(&svc, id)})
        })
        .collect();
    Ok(axum::Json(json!({ "images": items })).into_response())
}

pub async fn detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    let items: Vec<Value> = listed(&svc, &ctx, &q.0)
        .await?
        .iter()
        .map(|i| view(&svc, i))
        .collect();
    Ok(axum::Json(json!({ "images": items })).into_response())
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let img = get_image(&svc, &ctx, &id).await?;
    Ok(axum::Json(json!({"image": view(&svc, &img)})).into_response())
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    match glance(
        &svc,
        &ctx,
        reqwest::Method::DELETE,
        &format!("/images/{id}"),
        None,
    )
    .await?
    {
        (204, _) | (200, _) => Ok(StatusCode::NO_CONTENT.into_response()),
        (403, _) => Err(Error::Forbidden(
            "You are not allowed to delete the image.".into(),
        )),
        (409, _) => Err(Error::Conflict("The image is protected.".into())),
        _ => Err(not_found()),
    }
}

/// Apply metadata changes as a Glance JSON patch.
async fn patch(
    svc: &Svc,
    ctx: &AuthContext,
    id: &str,
    img: &Value,
    set: &Map<String, Value>,
    remove: &[String],
) -> Result<Value> {
    let mut ops = Vec::new();
    for (k, v) in set {
        if GLANCE_KEYS.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!("Invalid metadata key {k}.")));
        }
        let value = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let op = if img.get(k).is_some() {
            "replace"
        } else {
            "add"
        };
        ops.push(json!({"op": op, "path": format!("/{k}"), "value": value}));
    }
    for k in remove {
        ops.push(json!({"op": "remove", "path": format!("/{k}")}));
    }
    if ops.is_empty() {
        return Ok(img.clone());
    }
    match glance(
        svc,
        ctx,
        reqwest::Method::PATCH,
        &format!("/images/{id}"),
        Some((
            "application/openstack-images-v2.1-json-patch",
            Value::Array(ops).to_string(),
        )),
    )
    .await?
    {
        (200, v) => Ok(v),
        (403, _) => Err(Error::Forbidden(
            "You are not allowed to change this image.".into(),
        )),
        (404, _) => Err(not_found()),
        (st, v) => Err(Error::BadRequest(format!(
            "image update failed ({st}): {v}"
        ))),
    }
}

/// `POST` / `PUT /images/{id}/metadata`. Free-form: keys and values go
/// to the image service as given, which judges them.
#[derive(Deserialize, JsonSchema)]
pub struct ImageMetadataBody {
    metadata: Map<String, Value>,
}

/// `PUT /images/{id}/metadata/{key}`: one free-form item.
#[derive(Deserialize, JsonSchema)]
pub struct ImageMetaItemBody {
    meta: Map<String, Value>,
}

pub async fn metadata_list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let img = get_image(&svc, &ctx, &id).await?;
    Ok(axum::Json(json!({"metadata": metadata(&img)})).into_response())
}

pub async fn metadata_merge(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<ImageMetadataBody>,
) -> Result<Response> {
    let img = get_image(&svc, &ctx, &id).await?;
    let set = body.metadata;
    let img = patch(&svc, &ctx, &id, &img, &set, &[]).await?;
    Ok(axum::Json(json!({"metadata": metadata(&img)})).into_response())
}

pub async fn metadata_replace(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<ImageMetadataBody>,
) -> Result<Response> {
    let img = get_image(&svc, &ctx, &id).await?;
    let set = body.metadata;
    let remove: Vec<String> = metadata(&img)
        .keys()
        .filter(|k| !set.contains_key(*k))
        .cloned()
        .collect();
    let img = patch(&svc, &ctx, &id, &img, &set, &remove).await?;
    Ok(axum::Json(json!({"metadata": metadata(&img)})).into_response())
}

pub async fn metadata_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let img = get_image(&svc, &ctx, &id).await?;
    let m = metadata(&img);
    let v = m
        .get(&key)
        .ok_or_else(|| Error::NotFound("Image metadata item not found.".into()))?;
    Ok(axum::Json(json!({"meta": { key: v }})).into_response())
}

pub async fn metadata_set(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
    Json(body): Json<ImageMetaItemBody>,
) -> Result<Response> {
    let img = get_image(&svc, &ctx, &id).await?;
    let set = body.meta;
    if set.len() != 1 || !set.contains_key(&key) {
        return Err(Error::BadRequest("Request body and URI mismatch".into()));
    }
    let img = patch(&svc, &ctx, &id, &img, &set, &[]).await?;
    Ok(
        axum::Json(json!({"meta": { key.clone(): metadata(&img).get(&key).cloned() }}))
            .into_response(),
    )
}

pub async fn metadata_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let img = get_image(&svc, &ctx, &id).await?;
    if !metadata(&img).contains_key(&key) {
        return Err(Error::NotFound("Image metadata item not found.".into()));
    }
    patch(&svc, &ctx, &id, &img, &Map::new(), &[key]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
