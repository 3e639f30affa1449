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
            get(show_type).put(update_type).delete(delete_type),
        )
        .route(
            "/v3/{project_id}/types/{id}/extra_specs",
            get(list_extra_specs).post(set_extra_specs),
        )
        .route(
            "/v3/{project_id}/types/{id}/extra_specs/{key}",
            get(show_extra_spec)
                .put(update_extra_spec)
                .delete(delete_extra_spec),
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
pub struct UpdateTypeRequest {
    pub volume_type: UpdateType,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateType {
    pub name: Option<String>,
    pub description: Option<String>,
    pub is_public: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
pub struct ExtraSpecsBody {
    pub extra_specs: BTreeMap<String, String>,
}

/// A type as show, list and create answer it; `qos_specs_id` only for
/// admins (Cinder's `volume_extension:access_types_qos_specs_id`) in show
/// and list (a new type has none; Cinder's create answer omits it).
fn type_view(t: &VolumeType, admin: bool) -> Value {
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "os-volume-type-access:is_public": t.is_public,
        "extra_specs": t.extra_specs,
    });
    if admin {
        v["qos_specs_id"] = json!(t.qos_specs_id);
    }
    v
}

/// A type as Cinder's update answers it: without the type-access
/// attribute, which Cinder's extension adds to show, list and create only.
fn updated_view(t: &VolumeType) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "extra_specs": t.extra_specs,
    })
}

/// Cinder's rule for a type name: 1 to 255 characters once trimmed.
fn check_type_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute name. Name must be 1 to 255 characters long.".into(),
        ));
    }
    Ok(name)
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
    svc.check_type_access(ctx, &t).await?;
    Ok(t)
}

pub async fn list_types(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume_extension:type_get_all", &project_id)?;
    let granted = match ctx.project_id.as_deref() {
        Some(p) => store::type_access::types_of(&svc.db, p).await?,
        None => Vec::new(),
    };
    let admin = svc.is_admin(&ctx);
    let types: Vec<Value> = store::types::list(&svc.db)
        .await?
        .iter()
        .filter(|t| t.is_public || admin || granted.contains(&t.id))
        .map(|t| type_view(t, admin))
        .collect();
    Ok(axum::Json(json!({"volume_types": types})).into_response())
}

pub async fn show_type(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let t = type_for(&svc, &ctx, &project_id, &id, "volume_extension:type_get").await?;
    Ok(axum::Json(json!({"volume_type": type_view(&t, svc.is_admin(&ctx))})).into_response())
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
    let name = check_type_name(&r.name)?;
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
        qos_specs_id: None,
    };
    store::types::insert(&svc.db, &t).await?;
    Ok(axum::Json(json!({"volume_type": type_view(&t, false)})).into_response())
}

/// `PUT /types/{id}`: rename, describe, or change the visibility.
pub async fn update_type(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<UpdateTypeRequest>,
) -> Result<Response> {
    let rule = "volume_extension:types_manage";
    let mut t = type_for(&svc, &ctx, &project_id, &id, rule).await?;
    let u = req.volume_type;
    if u.name.is_none() && u.description.is_none() && u.is_public.is_none() {
        return Err(Error::BadRequest(
            "Specify volume type name, description, is_public or a combination thereof.".into(),
        ));
    }
    if let Some(n) = &u.name {
        let name = check_type_name(n)?;
        if name != t.name {
            if store::types::get_by_name(&svc.db, name).await?.is_some() {
                return Err(Error::Conflict(format!(
                    "Volume Type {name} already exists."
                )));
            }
            t.name = name.to_owned();
        }
    }
    if let Some(d) = u.description {
        t.description = Some(d);
    }
    if let Some(p) = u.is_public {
        t.is_public = p;
    }
    store::types::update(&svc.db, &t).await?;
    Ok(axum::Json(json!({"volume_type": updated_view(&t)})).into_response())
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

/// `PUT /types/{id}/extra_specs/{key}` with `{key: value}`: set one spec.
pub async fn update_extra_spec(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Option<BTreeMap<String, String>>>,
) -> Result<Response> {
    let rule = "volume_extension:types_extra_specs:update";
    let mut t = type_for(&svc, &ctx, &project_id, &id, rule).await?;
    let body = body.ok_or_else(|| Error::BadRequest("Missing request body.".into()))?;
    let value = body
        .get(&key)
        .ok_or_else(|| Error::BadRequest("Request body and URI mismatch".into()))?;
    if body.len() > 1 {
        return Err(Error::BadRequest(
            "Request body contains too many items".into(),
        ));
    }
    if key.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input received: extra spec keys must be 1 to 255 characters long.".into(),
        ));
    }
    t.extra_specs
        .insert(key.clone(), Value::String(value.clone()));
    store::types::set_extra_specs(&svc.db, &t.id, &t.extra_specs).await?;
    Ok(axum::Json(json!({ key: value })).into_response())
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
