//! Nova's proxies to the networking API: `os-floating-ips`,
//! `os-floating-ip-pools`, `os-networks` and `os-tenant-networks`.

use super::Svc;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::openapi::Body;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

pub async fn floating_ips(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-floating-ips:list")?;
    Ok(ok(json!({"floating_ips": svc.floating_ips(&ctx).await?})))
}

pub async fn floating_ip_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-floating-ips:show")?;
    Ok(ok(
        json!({"floating_ip": svc.floating_ip(&ctx, &id).await?}),
    ))
}

/// The body of `POST /os-floating-ips` for the document: the handler reads
/// bytes, since an empty body (the default pool) is no JSON document.
pub fn floating_ip_create_body() -> Body {
    Body::json(json!({
        "description": "Optional: an empty body allocates from the default pool.",
        "type": "object",
        "properties": {"pool": {"type": ["string", "null"], "description": "The external network's name or id."}},
    }))
}

/// `POST /os-floating-ips` with an optional `{"pool": name}` (the body may
/// be empty).
pub async fn floating_ip_create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    // Bytes, not `Json`: the body may be empty.
    body: axum::body::Bytes,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-floating-ips:create")?;
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| Error::BadRequest("Malformed request body".into()))?
    };
    let pool = match body.get("pool") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute pool. Value: {other}. {other} is not of type 'string'"
            )))
        }
    };
    let f = svc.allocate_floating_ip(&ctx, pool.as_deref()).await?;
    Ok(ok(json!({ "floating_ip": f })))
}

pub async fn floating_ip_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-floating-ips:delete")?;
    svc.release_floating_ip(&ctx, &id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn floating_ip_pools(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-floating-ip-pools")?;
    let pools: Vec<Value> = svc
        .floating_pools()
        .await?
        .iter()
        .map(|n| json!({"name": n["name"]}))
        .collect();
    Ok(ok(json!({ "floating_ip_pools": pools })))
}

fn network_view(n: &Value) -> Value {
    json!({"id": n["id"], "label": n["label"], "cidr": n["cidr"]})
}

pub async fn networks(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-networks:list")?;
    let list: Vec<Value> = svc
        .nova_networks(&ctx)
        .await?
        .iter()
        .map(network_view)
        .collect();
    Ok(ok(json!({ "networks": list })))
}

pub async fn network_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-networks:show")?;
    let n = svc
        .nova_networks(&ctx)
        .await?
        .into_iter()
        .find(|n| n["id"] == id.as_str())
        .ok_or_else(|| Error::NotFound(format!("Network {id} could not be found.")))?;
    Ok(ok(json!({"network": network_view(&n)})))
}
