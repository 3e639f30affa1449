//! `/v3/{project_id}/os-volume-transfer` (and `/volume-transfers`, its
//! 3.55 name): offer a volume, list, show, withdraw, accept with the key.

use super::listing::{sort_by_params, ListQuery};
use super::{check_url_project, project_url, Query, Svc};
use crate::store::{self, transfers::Transfer};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use ferrostack_core::Result;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    let mut r = ApiRouter::new();
    for base in ["os-volume-transfer", "volume-transfers"] {
        r = r
            .route(
                &format!("/v3/{{project_id}}/{base}"),
                get(list_summary).post(create_transfer),
            )
            .route(
                &format!("/v3/{{project_id}}/{base}/detail"),
                get(list_detail),
            )
            .route(
                &format!("/v3/{{project_id}}/{base}/{{id}}"),
                get(show_transfer).delete(delete_transfer),
            )
            .route(
                &format!("/v3/{{project_id}}/{base}/{{id}}/accept"),
                post(accept_transfer),
            );
    }
    r
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateTransferRequest {
    pub transfer: CreateTransfer,
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateTransfer {
    pub volume_id: String,
    pub name: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct AcceptRequest {
    pub accept: Accept,
}

#[derive(Deserialize, JsonSchema)]
pub struct Accept {
    pub auth_key: String,
}

fn links(svc: &Svc, t: &Transfer) -> Value {
    let href = format!(
        "{}/os-volume-transfer/{}",
        project_url(svc, &t.project_id),
        t.id
    );
    json!([{"rel": "self", "href": href}])
}

fn summary(svc: &Svc, t: &Transfer) -> Value {
    json!({"id": t.id, "name": t.name, "volume_id": t.volume_id, "links": links(svc, t)})
}

fn detail(svc: &Svc, t: &Transfer) -> Value {
    let mut v = summary(svc, t);
    v["created_at"] = json!(t.created_at);
    v
}

pub async fn create_transfer(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateTransferRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let r = req.transfer;
    super::volumes::check_text("name", &r.name, 255)?;
    let (t, key) = svc.create_transfer(&ctx, &r.volume_id, r.name).await?;
    let mut view = detail(&svc, &t);
    view["auth_key"] = json!(key);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "transfer": view })),
    )
        .into_response())
}

async fn list(
    svc: Svc,
    ctx: std::sync::Arc<AuthContext>,
    project_id: String,
    q: Vec<(String, String)>,
    full: bool,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume:get_all_transfers", &project_id)?;
    let query = ListQuery::new(&q);
    let params = &query.params;
    let mut transfers =
        store::transfers::list(&svc.db, query.scope(&svc, &ctx, &project_id)).await?;
    transfers.retain(|t| {
        params
            .get("name")
            .is_none_or(|n| t.name.as_deref() == Some(*n))
            && params.get("volume_id").is_none_or(|v| t.volume_id == *v)
    });
    sort_by_params(&mut transfers, params, SORT_KEYS, |t, k| match k {
        "id" => (0, t.id.clone()),
        "name" => (0, t.name.clone().unwrap_or_default()),
        _ => (0, t.created_at.clone()),
    })?;
    let (page, next) = query.page(transfers, svc.config.volume.osapi_max_limit, |t| {
        t.id.as_str()
    })?;
    let views: Vec<Value> = page
        .iter()
        .map(|t| {
            if full {
                detail(&svc, t)
            } else {
                summary(&svc, t)
            }
        })
        .collect();
    let mut body = json!({ "transfers": views });
    if let Some(m) = next {
        let path = if full {
            "volume-transfers/detail"
        } else {
            "volume-transfers"
        };
        body["transfers_links"] = query.next_link(&svc, &project_id, path, &m);
    }
    Ok(axum::Json(body).into_response())
}

/// The keys a transfer list sorts by.
const SORT_KEYS: &[&str] = &["id", "name", "created_at"];

pub async fn list_summary(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    list(svc, ctx, project_id, q, false).await
}

pub async fn list_detail(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    list(svc, ctx, project_id, q, true).await
}

pub async fn show_transfer(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let t = svc.visible_transfer(&ctx, &id).await?;
    svc.authorize(&ctx, "volume:get_transfer", &t.project_id)?;
    Ok(axum::Json(json!({"transfer": detail(&svc, &t)})).into_response())
}

pub async fn delete_transfer(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.delete_transfer(&ctx, &id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn accept_transfer(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<AcceptRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let t = svc.accept_transfer(&ctx, &id, &req.accept.auth_key).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"transfer": summary(&svc, &t)})),
    )
        .into_response())
}
