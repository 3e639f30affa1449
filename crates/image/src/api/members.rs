//! `/v2/images/{id}/members`.

use super::Svc;
use crate::service::ImageService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let ms = svc.list_members(&ctx, &id).await?;
    let views: Vec<Value> = ms.iter().map(ImageService::member_view).collect();
    Ok(axum::Json(json!({"members": views, "schema": "/v2/schemas/members"})).into_response())
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let member = body
        .get("member")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && m.chars().count() <= 255)
        .ok_or_else(|| Error::BadRequest("Member to be added not specified".into()))?;
    let m = svc.add_member(&ctx, &id, member).await?;
    Ok(axum::Json(ImageService::member_view(&m)).into_response())
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response> {
    let m = svc.get_member(&ctx, &id, &member).await?;
    Ok(axum::Json(ImageService::member_view(&m)).into_response())
}

pub async fn update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, member)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadRequest("Status not specified".into()))?;
    let m = svc.update_member(&ctx, &id, &member, status).await?;
    Ok(axum::Json(ImageService::member_view(&m)).into_response())
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response> {
    svc.delete_member(&ctx, &id, &member).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
