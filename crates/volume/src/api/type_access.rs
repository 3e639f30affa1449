//! Private volume types: `GET /types/{id}/os-volume-type-access` and the
//! `addProjectAccess` / `removeProjectAccess` actions (admin).

use super::{check_url_project, Svc};
use crate::service::type_not_found;
use crate::store;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v3/{project_id}/types/{id}/os-volume-type-access",
            get(list_access),
        )
        .route("/v3/{project_id}/types/{id}/action", post(type_action))
}

#[derive(Deserialize, JsonSchema)]
pub struct ProjectAccess {
    pub project: String,
}

#[derive(Deserialize, JsonSchema)]
pub enum TypeAction {
    #[serde(rename = "addProjectAccess")]
    Add(ProjectAccess),
    #[serde(rename = "removeProjectAccess")]
    Remove(ProjectAccess),
}

pub async fn list_access(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let rule = "volume_extension:volume_type_access:get_all_for_type";
    svc.authorize(&ctx, rule, &project_id)?;
    let t = store::types::get(&svc.db, &id)
        .await?
        .ok_or_else(|| type_not_found(&id))?;
    if t.is_public {
        return Err(Error::NotFound(
            "Access list not available for public volume types.".into(),
        ));
    }
    let list: Vec<_> = store::type_access::projects(&svc.db, &id)
        .await?
        .into_iter()
        .map(|p| json!({"volume_type_id": id, "project_id": p}))
        .collect();
    Ok(axum::Json(json!({ "volume_type_access": list })).into_response())
}

pub async fn type_action(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(action): Json<TypeAction>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let t = store::types::get(&svc.db, &id)
        .await?
        .ok_or_else(|| type_not_found(&id))?;
    match action {
        TypeAction::Add(a) => {
            let rule = "volume_extension:volume_type_access:addProjectAccess";
            svc.authorize(&ctx, rule, &project_id)?;
            if t.is_public {
                return Err(Error::BadRequest(
                    "Invalid volume type: Type access modification is not applicable to public volume type."
                        .into(),
                ));
            }
            if !store::type_access::add(&svc.db, &id, &a.project).await? {
                return Err(Error::Conflict(format!(
                    "Volume type access for {id} / {} combination already exists.",
                    a.project
                )));
            }
        }
        TypeAction::Remove(a) => {
            let rule = "volume_extension:volume_type_access:removeProjectAccess";
            svc.authorize(&ctx, rule, &project_id)?;
            if !store::type_access::remove(&svc.db, &id, &a.project).await? {
                return Err(Error::NotFound(format!(
                    "Volume type access not found for {id} / {} combination.",
                    a.project
                )));
            }
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}
