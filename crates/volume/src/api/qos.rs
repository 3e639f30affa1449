//! `/v3/{project_id}/qos-specs`: QoS specs CRUD, their keys, and their
//! association with volume types (admin only). Cinder's associate and
//! disassociate actions are `GET`s with `vol_type_id` in the query.

use super::{check_url_project, project_url, Query, Svc};
use crate::store::qos::QosSpecs;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, put, ApiRouter};
use ferrostack_core::Result;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub fn routes() -> ApiRouter<Svc> {
    let base = "/v3/{project_id}/qos-specs";
    ApiRouter::new()
        .route(base, get(list_qos).post(create_qos))
        .route(
            &format!("{base}/{{id}}"),
            get(show_qos).put(update_qos).delete(delete_qos),
        )
        .route(&format!("{base}/{{id}}/delete_keys"), put(unset_keys))
        .route(&format!("{base}/{{id}}/associations"), get(associations))
        .route(&format!("{base}/{{id}}/associate"), get(associate))
        .route(&format!("{base}/{{id}}/disassociate"), get(disassociate))
        .route(
            &format!("{base}/{{id}}/disassociate_all"),
            get(disassociate_all),
        )
}

/// `{"qos_specs": {name, consumer, <spec>: <value>, ...}}` on create,
/// `{"qos_specs": {<spec>: <value>, ...}}` on update.
#[derive(Deserialize, JsonSchema)]
pub struct QosBody {
    pub qos_specs: Map<String, Value>,
}

#[derive(Deserialize, JsonSchema)]
pub struct UnsetKeys {
    pub keys: Vec<String>,
}

fn view(q: &QosSpecs) -> Value {
    json!({
        "id": q.id,
        "name": q.name,
        "consumer": q.consumer.as_str(),
        "specs": q.specs,
    })
}

fn with_links(svc: &Svc, project_id: &str, q: &QosSpecs) -> Value {
    let href = format!("{}/qos-specs/{}", project_url(svc, project_id), q.id);
    json!({
        "qos_specs": view(q),
        "links": [{"rel": "self", "href": href}],
    })
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn check(svc: &Svc, ctx: &AuthContext, project_id: &str, action: &str) -> Result<()> {
    check_url_project(ctx, project_id)?;
    svc.authorize(
        ctx,
        &format!("volume_extension:qos_specs_manage:{action}"),
        project_id,
    )
}

pub async fn list_qos(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "get_all")?;
    let all: Vec<Value> = crate::store::qos::list(&svc.db)
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(axum::Json(json!({ "qos_specs": all })).into_response())
}

pub async fn create_qos(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<QosBody>,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "create")?;
    let q = svc.create_qos(req.qos_specs).await?;
    Ok(axum::Json(with_links(&svc, &project_id, &q)).into_response())
}

pub async fn show_qos(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "get")?;
    let q = svc.qos_specs(&id).await?;
    Ok(axum::Json(with_links(&svc, &project_id, &q)).into_response())
}

/// Answers the keys it set, as Cinder does.
pub async fn update_qos(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<QosBody>,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "update")?;
    svc.update_qos(&id, req.qos_specs.clone()).await?;
    Ok(axum::Json(json!({ "qos_specs": req.qos_specs })).into_response())
}

pub async fn delete_qos(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "delete")?;
    let force = param(&q, "force")
        .is_some_and(|f| matches!(f.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"));
    svc.delete_qos(&id, force).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn unset_keys(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<UnsetKeys>,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "update")?;
    svc.unset_qos_keys(&id, &req.keys).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn associations(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "get")?;
    svc.qos_specs(&id).await?;
    let list: Vec<Value> = crate::store::qos::associations(&svc.db, &id)
        .await?
        .into_iter()
        .map(|(id, name)| json!({"association_type": "volume_type", "id": id, "name": name}))
        .collect();
    Ok(axum::Json(json!({ "qos_associations": list })).into_response())
}

pub async fn associate(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "update")?;
    svc.associate_qos(&id, param(&q, "vol_type_id")).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn disassociate(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "update")?;
    svc.disassociate_qos(&id, param(&q, "vol_type_id")).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn disassociate_all(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "update")?;
    svc.disassociate_all_qos(&id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
