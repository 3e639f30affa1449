//! `/v2/images/{id}/members`.

use super::Svc;
use crate::service::ImageService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v2/images/{id}/members",
            get(list_members).post(add_member),
        )
        .route(
            "/v2/images/{id}/members/{member}",
            get(show_member).put(update_member).delete(delete_member),
        )
}

/// `POST /v2/images/{id}/members`: the project to share the image with.
#[derive(Deserialize, JsonSchema)]
pub struct AddMemberRequest {
    /// The project's id.
    #[schemars(length(min = 1, max = 255))]
    member: String,
}

/// `PUT /v2/images/{id}/members/{member}`: the member's answer.
#[derive(Deserialize, JsonSchema)]
pub struct MemberStatusRequest {
    #[schemars(extend("enum" = ["pending", "accepted", "rejected"]))]
    status: String,
}

pub async fn list_members(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let ms = svc.list_members(&ctx, &id).await?;
    let views: Vec<Value> = ms.iter().map(ImageService::member_view).collect();
    Ok(axum::Json(json!({"members": views, "schema": "/v2/schemas/members"})).into_response())
}

pub async fn add_member(
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

pub async fn show_member(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response> {
    let m = svc.get_member(&ctx, &id, &member).await?;
    Ok(axum::Json(ImageService::member_view(&m)).into_response())
}

pub async fn update_member(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, member)): Path<(String, String)>,
    Json(req): Json<MemberStatusRequest>,
) -> Result<Response> {
    let m = svc.update_member(&ctx, &id, &member, &req.status).await?;
    Ok(axum::Json(ImageService::member_view(&m)).into_response())
}

pub async fn delete_member(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response> {
    svc.delete_member(&ctx, &id, &member).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
