//! `/v2/images`: create, list (filters, sorting, pagination), show, JSON-patch
//! update, delete, tags, deactivate / reactivate.

use super::{params, Query, Svc};
use crate::service::{
    CONTAINER_FORMATS, DISK_FORMATS, MAX_TAGS, READ_ONLY, RESERVED, VISIBILITIES,
};
use crate::store::{self, images::Image};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, put, ApiRouter, Body};
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// `/v2/images` and what acts on one image's record: its tags and
/// (de)activation.
pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v2/images",
            get(list_images)
                .post(create_image)
                .body(Method::POST, create_image_body()),
        )
        .route(
            "/v2/images/{id}",
            get(show_image)
                .patch(update_image)
                .body(Method::PATCH, json_patch_body())
                .delete(delete_image),
        )
        .route("/v2/images/{id}/actions/deactivate", post(deactivate_image))
        .route("/v2/images/{id}/actions/reactivate", post(reactivate_image))
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(add_image_tag).delete(delete_image_tag),
        )
}

/// `POST /v2/images` takes a free-form object (see [`create_image`]); what
/// the service accepts in it, as a schema: Glance's base attributes, and
/// custom properties as strings under names that are neither read-only nor
/// reserved.
fn create_image_body() -> Body {
    let nullable_enum = |values: &[&str]| {
        let mut e = vec![Value::Null];
        e.extend(values.iter().map(|v| json!(v)));
        json!({"enum": e})
    };
    let size = json!({"type": "integer", "minimum": 0, "maximum": i32::MAX});
    let refused: Vec<&str> = READ_ONLY
        .iter()
        .filter(|k| **k != "id")
        .chain(RESERVED)
        .chain(&["locations"])
        .copied()
        .collect();
    Body::json(json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": ["string", "null"], "maxLength": 255},
            "visibility": {"enum": VISIBILITIES},
            "protected": {"type": "boolean"},
            "os_hidden": {"type": "boolean"},
            "min_disk": size,
            "min_ram": size,
            "disk_format": nullable_enum(DISK_FORMATS),
            "container_format": nullable_enum(CONTAINER_FORMATS),
            "tags": {"type": "array", "maxItems": MAX_TAGS,
                     "items": {"type": "string", "maxLength": 255}},
            "owner": {"type": ["string", "null"], "maxLength": 255},
        },
        "propertyNames": {
            "minLength": 1, "maxLength": 255,
            "not": {"anyOf": [{"enum": refused}, {"pattern": "^os_glance"}]},
        },
        "additionalProperties": {"type": "string", "maxLength": 65535},
    }))
}

/// `PATCH /v2/images/{id}` takes a JSON-patch document (read as bytes, see
/// [`update_image`]): RFC 6902's add, replace and remove on one attribute
/// each (`/name`, `/hw_disk_bus`, …). The v2.0 media type is also accepted.
fn json_patch_body() -> Body {
    let path = json!({"type": "string", "pattern": "^/[^/]+$"});
    Body {
        media_type: "application/openstack-images-v2.1-json-patch".into(),
        schema: json!({
            "type": "array",
            "items": {"anyOf": [
                {"type": "object", "required": ["op", "path", "value"],
                 "properties": {"op": {"enum": ["add", "replace"]}, "path": path, "value": {}}},
                {"type": "object", "required": ["op", "path"],
                 "properties": {"op": {"const": "remove"}, "path": path}},
            ]},
        }),
    }
}

fn created(svc: &Svc, img: &Image) -> Response {
    let mut resp = (StatusCode::CREATED, axum::Json(svc.view(img))).into_response();
    let h = resp.headers_mut();
    h.insert(
        "openstack-image-import-methods",
        HeaderValue::from_static("glance-direct"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/images/{}", img.id)) {
        h.insert(header::LOCATION, v);
    }
    resp
}

pub async fn create_image(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    // Free-form: base attributes and any custom properties, each checked
    // by the service as Glance's image schema does.
    Json(attributes): Json<Map<String, Value>>,
) -> Result<Response> {
    let img = svc.create(&ctx, &attributes).await?;
    Ok(created(&svc, &img))
}

pub async fn show_image(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let img = svc.get_authorized(&ctx, &id, "get_image").await?;
    Ok(axum::Json(svc.view(&img)).into_response())
}

pub async fn update_image(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let v20 = ct.starts_with("application/openstack-images-v2.0-json-patch");
    if !(v20 || ct.starts_with("application/openstack-images-v2.1-json-patch")) {
        let mut resp = Error::UnsupportedMediaType(format!(
            "Unsupported Content-Type '{ct}': use application/openstack-images-v2.1-json-patch."
        ))
        .into_response();
        resp.headers_mut().insert(
            "accept-patch",
            HeaderValue::from_static("application/openstack-images-v2.1-json-patch, application/openstack-images-v2.0-json-patch"),
        );
        return Ok(resp);
    }
    // Free-form: a JSON-patch document (v2.0 and v2.1 forms), read op by op
    // by the service with Glance's messages.
    let ops: Value = ferrostack_core::http::parse_json(&body)?;
    let img = svc.patch(&ctx, &id, &ops, v20).await?;
    Ok(axum::Json(svc.view(&img)).into_response())
}

pub async fn delete_image(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.delete(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn deactivate_image(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.set_active_state(&ctx, &id, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn reactivate_image(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.set_active_state(&ctx, &id, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn add_image_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let mut ops = vec![];
    let img = svc.get_authorized(&ctx, &id, "modify_image").await?;
    if !img.tags.contains(&tag) {
        let mut tags = img.tags.clone();
        tags.push(tag);
        ops.push(json!({"op": "replace", "path": "/tags", "value": tags}));
        svc.patch(&ctx, &id, &Value::Array(ops), false).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_image_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let img = svc.get_authorized(&ctx, &id, "modify_image").await?;
    if !img.tags.contains(&tag) {
        return Err(Error::NotFound(format!(
            "Tag {tag} not found for image {id}."
        )));
    }
    let tags: Vec<&String> = img.tags.iter().filter(|t| **t != tag).collect();
    svc.patch(
        &ctx,
        &id,
        &json!([{"op": "replace", "path": "/tags", "value": tags}]),
        false,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- listing -----

/// `gt:2026-01-01T00:00:00Z` style comparisons on timestamps.
fn time_matches(value: &str, filter: &str) -> Result<bool> {
    let (op, t) = filter
        .split_once(':')
        .filter(|(op, _)| matches!(*op, "gt" | "gte" | "lt" | "lte" | "eq" | "neq"))
        .unwrap_or(("eq", filter));
    let want = ferrostack_core::time::parse(t)
        .ok_or_else(|| Error::BadRequest(format!("Invalid timestamp '{t}' in a time filter.")))?;
    let have = ferrostack_core::time::parse(value).unwrap_or_default();
    Ok(match op {
        "gt" => have > want,
        "gte" => have >= want,
        "lt" => have < want,
        "lte" => have <= want,
        "neq" => have != want,
        _ => have == want,
    })
}

/// `in:a,b` or a plain value.
fn in_matches(value: Option<&str>, filter: &str) -> bool {
    match filter.strip_prefix("in:") {
        Some(list) => list.split(',').any(|x| Some(x.trim_matches('"')) == value),
        None => Some(filter) == value,
    }
}

fn parse_size(v: &str, key: &str) -> Result<i64> {
    v.parse::<i64>().map_err(|_| {
        Error::BadRequest(format!("Invalid value for {key}: '{v}' is not an integer."))
    })
}

const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "visibility",
    "owner",
    "min_disk",
    "min_ram",
    "virtual_size",
    "protected",
    "os_hidden",
];

fn sort_value(img: &Value, key: &str) -> Value {
    img.get(key).cloned().unwrap_or(Value::Null)
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.as_str().unwrap_or("").cmp(b.as_str().unwrap_or("")),
    }
}

/// `sort=name:asc,size` or `sort_key=name&sort_dir=asc` (repeatable).
fn sort_spec(p: &HashMap<String, Vec<String>>) -> Result<Vec<(String, bool)>> {
    let mut spec = Vec::new();
    if let Some(sort) = p.get("sort") {
        if p.contains_key("sort_key") || p.contains_key("sort_dir") {
            return Err(Error::BadRequest(
                "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.".into(),
            ));
        }
        for item in sort.iter().flat_map(|s| s.split(',')) {
            let (k, d) = item.split_once(':').unwrap_or((item, "desc"));
            spec.push((k.trim().to_owned(), d.trim().to_owned()));
        }
    } else {
        let keys: Vec<String> = p
            .get("sort_key")
            .cloned()
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s.split(',').map(str::to_owned).collect::<Vec<_>>())
            .collect();
        let dirs: Vec<String> = p
            .get("sort_dir")
            .cloned()
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s.split(',').map(str::to_owned).collect::<Vec<_>>())
            .collect();
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err(Error::BadRequest(
                "Number of sort dirs does not match the number of sort keys".into(),
            ));
        }
        for (i, k) in keys.iter().enumerate() {
            let d = dirs
                .get(i)
                .or(dirs.first())
                .cloned()
                .unwrap_or_else(|| "desc".into());
            spec.push((k.clone(), d));
        }
        if keys.is_empty() {
            let d = dirs.first().cloned().unwrap_or_else(|| "desc".into());
            spec.push(("created_at".into(), d));
        }
    }
    let mut out = Vec::new();
    for (k, d) in spec {
        if !SORT_KEYS.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid sort key: {k}. It must be one of the following: {}.",
                SORT_KEYS.join(", ")
            )));
        }
        let asc = match d.as_str() {
            "asc" => true,
            "desc" => false,
            _ => return Err(Error::BadRequest(format!("Invalid sort direction: {d}"))),
        };
        out.push((k, asc));
    }
    Ok(out)
}

/// Which images a listing shows, before filters: Glance's visibility rules.
async fn candidates(
    svc: &Svc,
    ctx: &AuthContext,
    visibility: Option<&str>,
    member_status: &str,
) -> Result<Vec<Image>> {
    let admin = svc.is_admin(ctx);
    let project = ctx.project_id.clone().unwrap_or_default();
    let memberships: HashMap<String, String> = store::members::list_for_member(&svc.db, &project)
        .await?
        .into_iter()
        .map(|m| (m.image_id, m.status))
        .collect();
    let member_ok = |img: &Image| {
        memberships
            .get(&img.id)
            .is_some_and(|s| member_status == "all" || s == member_status)
    };
    let owned = |img: &Image| img.owner.as_deref() == Some(project.as_str());
    let all = store::images::list(&svc.db).await?;
    Ok(all
        .into_iter()
        .filter(|img| match visibility {
            None => {
                if admin {
                    img.visibility != "community" || owned(img)
                } else {
                    owned(img)
                        || img.visibility == "public"
                        || (img.visibility == "shared" && member_ok(img))
                }
            }
            Some("all") => {
                admin
                    || owned(img)
                    || matches!(img.visibility.as_str(), "public" | "community")
                    || (img.visibility == "shared" && member_ok(img))
            }
            Some("public") => img.visibility == "public",
            Some("community") => img.visibility == "community",
            Some("private") => img.visibility == "private" && (admin || owned(img)),
            Some("shared") => {
                img.visibility == "shared"
                    && (owned(img) || member_ok(img) || (admin && member_status == "all"))
            }
            Some(_) => false,
        })
        .collect())
}

pub async fn list_images(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    let own_project = crate::policy::project_target(ctx.project_id.as_deref());
    svc.authorize(&ctx, "get_images", &own_project)?;
    let p = params(&q.0);
    let one = |k: &str| p.get(k).and_then(|v| v.last()).map(String::as_str);
    let visibility = one("visibility");
    if let Some(v) = visibility {
        if !matches!(v, "public" | "private" | "shared" | "community" | "all") {
            return Err(Error::BadRequest(format!("Invalid visibility value: {v}")));
        }
    }
    let member_status = one("member_status").unwrap_or("accepted");
    if !matches!(member_status, "pending" | "accepted" | "rejected" | "all") {
        return Err(Error::BadRequest(format!(
            "Invalid status value: {member_status}"
        )));
    }
    let limit = match one("limit") {
        None => svc.config.image.limit_param_default,
        Some(l) => {
            let n: i64 = l
                .parse()
                .map_err(|_| Error::BadRequest("limit param must be an integer".into()))?;
            if n < 0 {
                return Err(Error::BadRequest("limit param must be positive".into()));
            }
            (n as usize).min(svc.config.image.api_limit_max)
        }
    };
    let sort = sort_spec(&p)?;
    let size_min = one("size_min")
        .map(|v| parse_size(v, "size_min"))
        .transpose()?;
    let size_max = one("size_max")
        .map(|v| parse_size(v, "size_max"))
        .transpose()?;
    let hidden = match one("os_hidden") {
        None => Some(false),
        Some(v) => Some(match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                return Err(Error::BadRequest(format!(
                    "Invalid value for os_hidden: {v}"
                )))
            }
        }),
    };
    let tags: HashSet<&String> = p.get("tag").map(|t| t.iter().collect()).unwrap_or_default();
    const CONTROL: &[&str] = &[
        "limit",
        "marker",
        "sort",
        "sort_key",
        "sort_dir",
        "visibility",
        "member_status",
        "size_min",
        "size_max",
        "os_hidden",
        "tag",
        "created_at",
        "updated_at",
    ];

    let mut views = Vec::new();
    for img in candidates(&svc, &ctx, visibility, member_status).await? {
        if hidden.is_some_and(|h| img.os_hidden != h) {
            continue;
        }
        if size_min.is_some_and(|m| img.size.unwrap_or(-1) < m)
            || size_max.is_some_and(|m| img.size.is_none_or(|s| s > m))
        {
            continue;
        }
        if !tags.iter().all(|t| img.tags.contains(t)) {
            continue;
        }
        if let Some(f) = one("created_at") {
            if !time_matches(&img.created_at, f)? {
                continue;
            }
        }
        if let Some(f) = one("updated_at") {
            if !time_matches(&img.updated_at, f)? {
                continue;
            }
        }
        let v = svc.view(&img);
        let mut keep = true;
        for (k, vals) in &p {
            if CONTROL.contains(&k.as_str()) {
                continue;
            }
            let f = vals.last().expect("non-empty");
            let have = match v.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                // `protected=True` and `protected=true` both match.
                Some(Value::Bool(b)) if f.eq_ignore_ascii_case(&b.to_string()) => Some(f.clone()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                _ => None,
            };
            if !in_matches(have.as_deref(), f) {
                keep = false;
                break;
            }
        }
        if keep {
            views.push(v);
        }
    }
    views.sort_by(|a, b| {
        for (k, asc) in &sort {
            let o = cmp_values(&sort_value(a, k), &sort_value(b, k));
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        cmp_values(&sort_value(b, "id"), &sort_value(a, "id"))
    });
    let (page, more) = ferrostack_core::pagination::paginate(
        views,
        |v| v["id"].as_str().unwrap_or_default(),
        one("marker"),
        Some(limit),
    )
    .map_err(|m| Error::BadRequest(format!("Invalid marker. Image {} could not be found.", m.0)))?;
    let mut first = String::from("/v2/images");
    let passthrough: Vec<String> =
        q.0.iter()
            .filter(|(k, _)| k != "marker")
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect();
    if !passthrough.is_empty() {
        first.push('?');
        first.push_str(&passthrough.join("&"));
    }
    let mut body = json!({"images": page, "first": first, "schema": "/v2/schemas/images"});
    if limit > 0 && more {
        if let Some(last) = body["images"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|v| v["id"].as_str())
        {
            let sep = if first.contains('?') { '&' } else { '?' };
            body["next"] = json!(format!("{first}{sep}marker={last}"));
        }
    }
    Ok(axum::Json(body).into_response())
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
