//! `/v3/{project_id}/group_types` (3.11+): group types and their group
//! specs. Readers list and show the public ones; admins manage them and
//! see their specs.

use super::listing::{sort_by_params, ListQuery};
use super::microversion::{require, ApiVersion};
use super::{check_url_project, Query, Svc};
use crate::groups::spec_of;
use crate::store::groups::GroupType;
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
        .route(
            "/v3/{project_id}/group_types",
            get(list_group_types).post(create_group_type),
        )
        .route(
            "/v3/{project_id}/group_types/{id}",
            get(show_group_type)
                .put(update_group_type)
                .delete(delete_group_type),
        )
        .route(
            "/v3/{project_id}/group_types/{id}/group_specs",
            get(list_specs).post(set_specs),
        )
        .route(
            "/v3/{project_id}/group_types/{id}/group_specs/{key}",
            get(show_spec).put(update_spec).delete(delete_spec),
        )
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateGroupTypeRequest {
    pub group_type: CreateGroupType,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupType {
    pub name: String,
    pub description: Option<String>,
    pub is_public: Option<bool>,
    pub group_specs: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateGroupTypeRequest {
    pub group_type: UpdateGroupType,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroupType {
    pub name: Option<String>,
    pub description: Option<String>,
    pub is_public: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
pub struct GroupSpecsBody {
    pub group_specs: BTreeMap<String, String>,
}

fn view(t: &GroupType, admin: bool) -> Value {
    let mut v = json!({"id": t.id, "name": t.name, "description": t.description,
                       "is_public": t.is_public});
    if admin {
        v["group_specs"] = Value::Object(t.group_specs.clone());
    }
    v
}

fn check_name(name: &str) -> Result<&str> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 255 {
        return Err(Error::BadRequest(
            "Invalid input received: Group type name must be 1 to 255 characters long.".into(),
        ));
    }
    Ok(n)
}

fn to_map(specs: BTreeMap<String, String>) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for (k, v) in specs {
        if k.is_empty() || k.chars().count() > 255 || v.chars().count() > 255 {
            return Err(Error::BadRequest(
                "Invalid input received: group specs keys and values must be 1 to 255 characters long.".into(),
            ));
        }
        m.insert(k, Value::String(v));
    }
    Ok(m)
}

/// The type at `id` for an admin-only `rule`, after the URL and version.
async fn managed(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    version: ApiVersion,
    rule: &str,
    id: &str,
) -> Result<GroupType> {
    require(version, (3, 11))?;
    check_url_project(ctx, project_id)?;
    svc.authorize(ctx, rule, project_id)?;
    svc.find_group_type(id).await
}

pub async fn list_group_types(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 11))?;
    check_url_project(&ctx, &project_id)?;
    let admin = svc.is_admin(&ctx);
    let query = ListQuery::new(&q);
    // Cinder's `is_public`: public ones by default, `None` for all (an
    // admin's choice; others see the public ones only).
    let wanted = match query
        .get("is_public")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("none") if admin => None,
        Some("false" | "0" | "f" | "no") if admin => Some(false),
        _ => Some(true),
    };
    let mut types = crate::store::groups::list_types(&svc.db).await?;
    types.retain(|t| wanted.is_none_or(|p| t.is_public == p));
    sort_by_params(&mut types, &query.params, &["id", "name"], |t, k| match k {
        "name" => (0, t.name.clone()),
        _ => (0, t.id.clone()),
    })?;
    let views: Vec<Value> = types.iter().map(|t| view(t, admin)).collect();
    Ok(axum::Json(json!({ "group_types": views })).into_response())
}

pub async fn show_group_type(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    require(version, (3, 11))?;
    check_url_project(&ctx, &project_id)?;
    if id == "default" {
        return Err(Error::NotFound(
            "Default group type could not be found.".into(),
        ));
    }
    let t = svc.visible_group_type(&ctx, &id).await?;
    let body = json!({"group_type": view(&t, svc.is_admin(&ctx))});
    Ok(axum::Json(body).into_response())
}

pub async fn create_group_type(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateGroupTypeRequest>,
) -> Result<Response> {
    require(version, (3, 11))?;
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "group:group_types:create", &project_id)?;
    let r = req.group_type;
    let t = GroupType {
        id: uuid::Uuid::new_v4().to_string(),
        name: check_name(&r.name)?.to_owned(),
        description: r.description,
        is_public: r.is_public.unwrap_or(true),
        group_specs: to_map(r.group_specs.unwrap_or_default())?,
    };
    let t = svc.create_group_type(t).await?;
    let body = json!({"group_type": view(&t, true)});
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

pub async fn update_group_type(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<UpdateGroupTypeRequest>,
) -> Result<Response> {
    let rule = "group:group_types:update";
    let mut t = managed(&svc, &ctx, &project_id, version, rule, &id).await?;
    let u = req.group_type;
    if u.name.is_none() && u.description.is_none() && u.is_public.is_none() {
        return Err(Error::BadRequest(
            "Specify group type name, description or a combination thereof.".into(),
        ));
    }
    if let Some(n) = &u.name {
        t.name = check_name(n)?.to_owned();
    }
    if let Some(d) = u.description {
        t.description = Some(d);
    }
    if let Some(p) = u.is_public {
        t.is_public = p;
    }
    svc.update_group_type(&t).await?;
    Ok(axum::Json(json!({"group_type": view(&t, true)})).into_response())
}

pub async fn delete_group_type(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let rule = "group:group_types:delete";
    let t = managed(&svc, &ctx, &project_id, version, rule, &id).await?;
    svc.delete_group_type(&t.id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn list_specs(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let rule = "group:group_types_specs:get_all";
    let t = managed(&svc, &ctx, &project_id, version, rule, &id).await?;
    Ok(axum::Json(json!({"group_specs": t.group_specs})).into_response())
}

/// `POST …/group_specs`: set the keys given (others kept); the answer is
/// what was set, as Cinder's.
pub async fn set_specs(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(body): Json<GroupSpecsBody>,
) -> Result<Response> {
    let rule = "group:group_types_specs:create";
    let mut t = managed(&svc, &ctx, &project_id, version, rule, &id).await?;
    let set = to_map(body.group_specs)?;
    t.group_specs.extend(set.clone());
    svc.update_group_type(&t).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "group_specs": set })),
    )
        .into_response())
}

pub async fn show_spec(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let rule = "group:group_types_specs:get";
    let t = managed(&svc, &ctx, &project_id, version, rule, &id).await?;
    let value = spec_of(&t, &key)?;
    Ok(axum::Json(json!({ key: value })).into_response())
}

/// `PUT …/group_specs/{key}`: the body names that key only.
pub async fn update_spec(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(body): Json<BTreeMap<String, String>>,
) -> Result<Response> {
    let rule = "group:group_types_specs:update";
    let mut t = managed(&svc, &ctx, &project_id, version, rule, &id).await?;
    if body.len() != 1 || !body.contains_key(&key) {
        return Err(Error::BadRequest(
            "Malformed request body: the body must name the key of the URL, and only it.".into(),
        ));
    }
    let set = to_map(body)?;
    t.group_specs.extend(set.clone());
    svc.update_group_type(&t).await?;
    Ok(axum::Json(Value::Object(set)).into_response())
}

pub async fn delete_spec(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let rule = "group:group_types_specs:delete";
    let mut t = managed(&svc, &ctx, &project_id, version, rule, &id).await?;
    spec_of(&t, &key)?;
    t.group_specs.remove(&key);
    svc.update_group_type(&t).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
