//! `/v2/images/{id}/members`.

use super::Svc;
use crate::service::ImageService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /v2/images/{id}/members`: the project to share the image with.
#[derive(Deserialize)]
pub struct AddMemberRequest {
    member: String,
}

/// `PUT /v2/images/{id}/members/{member}`: the member's answer.
#[derive(Deserialize)]
pub struct MemberStatusRequest {
    status: String,
}

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
    Json(req): Json<AddMemberRequest>,
) -> Result<Response> {
    if req.member.is_empty() || req.member.chars().count() > 255 {
        return Err(Error::BadRequest("Member to be added not specified".into()));
    }
    let m = svc.add_member(&ctx, &id, &req.member).await?;
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
    Json(req): Json<MemberStatusRequest>,
) -> Result<Response> {
    let m = svc.update_member(&ctx, &id, &member, &req.status).await?;
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
