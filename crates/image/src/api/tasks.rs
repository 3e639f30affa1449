//! `/v2/tasks` and `/v2/images/{id}/tasks`.

use super::Svc;
use crate::service::ImageService;
use crate::store;
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
        .route("/v2/images/{id}/tasks", get(list_image_tasks))
        .route("/v2/tasks", get(list_tasks).post(create_task))
        .route("/v2/tasks/{id}", get(show_task))
}

/// `POST /v2/tasks`. Its `input` is never read: no task type is carried
/// out here (a URL import is refused; glance-direct is the image import).
#[derive(Deserialize, JsonSchema)]
pub struct CreateTaskRequest {
    #[serde(rename = "type")]
    task_type: String,
}

pub async fn list_image_tasks(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.get_authorized(&ctx, &id, "get_image").await?;
    let tasks: Vec<Value> = store::tasks::list(&svc.db, Some(&id))
        .await?
        .iter()
        .map(ImageService::task_view)
        .collect();
    Ok(axum::Json(json!({"tasks": tasks})).into_response())
}

pub async fn list_tasks(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "tasks_api_access", &json!({}))?;
    svc.authorize(&ctx, "get_tasks", &json!({}))?;
    let admin = svc.is_admin(&ctx);
    let tasks: Vec<Value> = store::tasks::list(&svc.db, None)
        .await?
        .iter()
        .filter(|t| admin || t.owner == ctx.project_id)
        .map(ImageService::task_view)
        .collect();
    Ok(
        axum::Json(json!({"tasks": tasks, "first": "/v2/tasks", "schema": "/v2/schemas/tasks"}))
            .into_response(),
    )
}

pub async fn show_task(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "tasks_api_access", &json!({}))?;
    svc.authorize(&ctx, "get_task", &json!({}))?;
    let t = store::tasks::get(&svc.db, &id)
        .await?
        .filter(|t| svc.is_admin(&ctx) || t.owner == ctx.project_id)
        .ok_or_else(|| Error::NotFound(format!("Task with the given ID {id} not found")))?;
    Ok(axum::Json(ImageService::task_view(&t)).into_response())
}

/// The legacy task-based import fetches from a URL; this deployment only
/// imports staged data (`glance-direct`), so such tasks are refused up front.
pub async fn create_task(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateTaskRequest>,
) -> Result<Response> {
    svc.authorize(&ctx, "tasks_api_access", &json!({}))?;
    svc.authorize(&ctx, "add_task", &json!({}))?;
    match req.task_type.as_str() {
        "import" => Err(Error::BadRequest(
            "Task import from a URI is not supported: use the glance-direct image import.".into(),
        )),
        other => Err(Error::BadRequest(format!("Invalid task type: {other}"))),
    }
}
