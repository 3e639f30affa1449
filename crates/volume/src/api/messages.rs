//! `/v3/{project_id}/messages` (3.3+): list, show and delete user messages.

use super::microversion::{require, ApiVersion};
use super::{check_url_project, project_url, Query, Svc};
use crate::store::{self, messages::Message};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::Result;
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v3/{project_id}/messages", get(list_messages))
        .route(
            "/v3/{project_id}/messages/{id}",
            get(show_message).delete(delete_message),
        )
}

fn view(svc: &Svc, m: &Message) -> Value {
    let href = format!("{}/messages/{}", project_url(svc, &m.project_id), m.id);
    json!({
        "id": m.id,
        "request_id": m.request_id,
        "resource_type": m.resource_type,
        "resource_uuid": m.resource_uuid,
        "event_id": m.event_id,
        "message_level": m.message_level,
        "user_message": m.user_message,
        "created_at": m.created_at,
        "guaranteed_until": m.expires_at,
        "links": [{"rel": "self", "href": href}],
    })
}

/// Filters by `resource_type`, `resource_uuid`, `event_id`,
/// `message_level` and `request_id`, as Cinder's list does.
pub async fn list_messages(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 3))?;
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "message:get_all", &project_id)?;
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let all = get("all_tenants").is_some_and(|v| !matches!(v, "0" | "false" | "False"));
    let list: Vec<Value> = svc
        .list_messages(&ctx, all)
        .await?
        .iter()
        .filter(|m| get("resource_type").is_none_or(|t| m.resource_type == t))
        .filter(|m| get("resource_uuid").is_none_or(|u| m.resource_uuid.as_deref() == Some(u)))
        .filter(|m| get("event_id").is_none_or(|e| m.event_id == e))
        .filter(|m| get("message_level").is_none_or(|l| m.message_level == l))
        .filter(|m| get("request_id").is_none_or(|r| m.request_id == r))
        .map(|m| view(&svc, m))
        .collect();
    Ok(axum::Json(json!({ "messages": list })).into_response())
}

pub async fn show_message(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    require(version, (3, 3))?;
    check_url_project(&ctx, &project_id)?;
    let m = svc.visible_message(&ctx, &id).await?;
    svc.authorize(&ctx, "message:get", &m.project_id)?;
    Ok(axum::Json(json!({ "message": view(&svc, &m) })).into_response())
}

pub async fn delete_message(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    require(version, (3, 3))?;
    check_url_project(&ctx, &project_id)?;
    let m = svc.visible_message(&ctx, &id).await?;
    svc.authorize(&ctx, "message:delete", &m.project_id)?;
    store::messages::delete(&svc.db, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
