//! `/v3/{project_id}/types`: volume types (list and show for readers,
//! create and delete for admins) and their extra specs.

use super::{check_url_project, Svc};
use crate::service::type_not_found;
use crate::store::{self, types::VolumeType};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v3/{project_id}/types", get(list_types).post(create_type))
        .route(
            "/v3/{project_id}/types/{id}",
            get(show_type).delete(delete_type),
        )
        .route(
            "/v3/{project_id}/types/{id}/extra_specs",
            get(list_extra_specs).post(set_extra_specs),
        )
        .route(
            "/v3/{project_id}/types/{id}/extra_specs/{key}",
            get(show_extra_spec).delete(delete_extra_spec),
        )
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateTypeRequest {
    pub volume_type: CreateType,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateType {
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "os-volume-type-access:is_public")]
    pub is_public: Option<bool>,
    pub extra_specs: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, JsonSchema)]
pub struct ExtraSpecsBody {
    pub extra_specs: BTreeMap<String, String>,
}

fn type_view(t: &VolumeType) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "os-volume-type-access:is_public": t.is_public,
        "extra_specs": t.extra_specs,
    })
}

/// A type by id, after the URL and rule checks.
async fn type_for(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    id: &str,
    action: &str,
) -> Result<VolumeType> {
    check_url_project(ctx, project_id)?;
    svc.authorize(ctx, action, project_id)?;
    let t = store::types::get(&svc.db, id)
        .await?
        .ok_or_else(|| type_not_found(id))?;
    if !t.is_public && !svc.is_admin(ctx) {
        return Err(type_not_found(id));
    }
    Ok(t)
}

pub async fn list_types(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:type_get_all", &project_id)?;
    let admin = svc.is_admin(&ctx);
    let types: Vec<Value> = store::types::list(&svc.db)
        .await?
        .iter()
        .filter(|t| t.is_public || admin)
        .map(type_view)
        .collect();
    Ok(axum::Json(json!({"volume_types": types})).into_response())
}

pub async fn show_type(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let t = type_for(&svc, &ctx, &project_id, &id, "volume_extension:type_get").await?;
    Ok(axum::Json(json!({"volume_type": type_view(&t)})).into_response())
}

pub async fn create_type(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateTypeRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:types_manage", &project_id)?;
    let r = req.volume_type;
    let name = r.name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute name. Name must be 1 to 255 characters long.".into(),
        ));
    }
    if store::types::get_by_name(&svc.db, name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "Volume Type {name} already exists."
        )));
    }
    let t = VolumeType {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        description: r.description,
        is_public: r.is_public.unwrap_or(true),
        extra_specs: to_map(&r.extra_specs.unwrap_or_default()),
    };
    store::types::insert(&svc.db, &t).await?;
    Ok(axum::Json(json!({"volume_type": type_view(&t)})).into_response())
}

pub async fn delete_type(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let t = type_for(
        &svc,
        &ctx,
        &project_id,
        &id,
        "volume_extension:types_manage",
    )
    .await?;
    if t.id == store::DEFAULT_TYPE_ID {
        return Err(Error::BadRequest(
            "Invalid volume type: Default volume type can not be deleted.".into(),
        ));
    }
    if store::volumes::count_of_type(&svc.db, &t.id).await? > 0 {
        return Err(Error::BadRequest(format!(
            "Invalid volume type: Target volume type {} is still in use.",
            t.id
        )));
    }
    store::types::delete(&svc.db, &t.id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn to_map(m: &BTreeMap<String, String>) -> Map<String, Value> {
    m.iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

pub async fn list_extra_specs(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let t = type_for(
        &svc,
        &ctx,
        &project_id,
        &id,
        "volume_extension:types_extra_specs:index",
    )
    .await?;
    Ok(axum::Json(json!({"extra_specs": t.extra_specs})).into_response())
}

pub async fn set_extra_specs(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<ExtraSpecsBody>,
) -> Result<Response> {
    let mut t = type_for(
        &svc,
        &ctx,
        &project_id,
        &id,
        "volume_extension:types_extra_specs:create",
    )
    .await?;
    if req
        .extra_specs
        .keys()
        .any(|k| k.is_empty() || k.len() > 255)
    {
        return Err(Error::BadRequest(
            "Invalid input received: extra spec keys must be 1 to 255 characters long.".into(),
        ));
    }
    t.extra_specs.extend(to_map(&req.extra_specs));
    store::types::set_extra_specs(&svc.db, &t.id, &t.extra_specs).await?;
    Ok(axum::Json(json!({"extra_specs": req.extra_specs})).into_response())
}

pub async fn show_extra_spec(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let t = type_for(
        &svc,
        &ctx,
        &project_id,
        &id,
        "volume_extension:types_extra_specs:show",
    )
    .await?;
    let v = t.extra_specs.get(&key).ok_or_else(|| {
        Error::NotFound(format!(
            "Volume Type {id} has no extra specs with key {key}."
        ))
    })?;
    Ok(axum::Json(json!({key: v})).into_response())
}

pub async fn delete_extra_spec(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let mut t = type_for(
        &svc,
        &ctx,
        &project_id,
        &id,
        "volume_extension:types_extra_specs:delete",
    )
    .await?;
    if t.extra_specs.remove(&key).is_none() {
        return Err(Error::NotFound(format!(
            "Volume Type {id} has no extra specs with key {key}."
        )));
    }
    store::types::set_extra_specs(&svc.db, &t.id, &t.extra_specs).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
