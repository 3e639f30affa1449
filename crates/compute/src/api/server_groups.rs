//! `/os-server-groups`: placement policies (affinity, anti-affinity, and
//! from 2.15 their soft forms, which the scheduler does not enforce) and
//! members; from 2.13 the view names the group's project and user.

use super::{query_get, ApiVersion, Query, Svc};
use crate::store::server_groups::{self, ServerGroup};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

pub const POLICIES: &[&str] = &[
    "affinity",
    "anti-affinity",
    "soft-affinity",
    "soft-anti-affinity",
];

fn view(g: &ServerGroup, version: ApiVersion) -> Value {
    let mut v = json!({"id": g.id, "name": g.name, "policies": [g.policy], "members": g.members, "metadata": {}});
    if version >= (2, 13) {
        v["project_id"] = json!(g.project_id);
        v["user_id"] = json!(g.user_id);
    }
    v
}

/// A group the caller may see; others are 404.
pub async fn visible(svc: &Svc, ctx: &AuthContext, id: &str) -> Result<ServerGroup> {
    server_groups::get(&svc.db, id)
        .await?
        .filter(|g| svc.is_admin(ctx) || ctx.project_id.as_deref() == Some(&g.project_id))
        .ok_or_else(|| Error::NotFound(format!("Instance group {id} could not be found.")))
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-server-groups:index")?;
    let all = svc.allows(&ctx, "os_compute_api:os-server-groups:index:all_projects")
        && query_get(&q.0, "all_projects")
            .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no"));
    let project = if all { None } else { ctx.project_id.clone() };
    let groups = server_groups::list(
        &svc.db,
        Some(project.as_deref().unwrap_or_default()).filter(|_| !all),
    )
    .await?;
    Ok(axum::Json(
        json!({"server_groups": groups.iter().map(|g| view(g, version)).collect::<Vec<_>>()}),
    )
    .into_response())
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    let g = visible(&svc, &ctx, &id).await?;
    svc.authorize_project(&ctx, "os_compute_api:os-server-groups:show", &g.project_id)?;
    Ok(axum::Json(json!({"server_group": view(&g, version)})).into_response())
}

/// `POST /os-server-groups`.
#[derive(Deserialize, JsonSchema)]
pub struct CreateServerGroupBody {
    server_group: CreateServerGroup,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateServerGroup {
    #[schemars(length(min = 1, max = 255), regex(pattern = r"\S"))]
    name: String,
    /// Exactly one policy (the v2.1 list form).
    #[schemars(schema_with = "one_policy")]
    policies: Vec<String>,
}

/// A list of one of [`POLICIES`].
fn one_policy(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = super::body::one_of(POLICIES, false).to_value();
    s = json!({"type": "array", "items": s, "minItems": 1, "maxItems": 1});
    schemars::Schema::try_from(s).expect("an object")
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Json(body): Json<CreateServerGroupBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-server-groups:create")?;
    let CreateServerGroup { name, policies } = body.server_group;
    if name.trim().is_empty() || name.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute name.".into(),
        ));
    }
    // The soft policies exist from 2.15.
    let allowed = if version >= (2, 15) {
        POLICIES
    } else {
        &POLICIES[..2]
    };
    let policy = match policies.as_slice() {
        [p] if allowed.contains(&p.as_str()) => p.clone(),
        _ => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute policies. Value: {policies:?}. It must be one of {allowed:?}."
            )))
        }
    };
    let project = ctx.project_id.clone().unwrap_or_default();
    let limit = svc.quotas(&project).await?["server_groups"];
    let g = ServerGroup {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        project_id: project,
        user_id: ctx.user_id.clone(),
        policy,
        members: Vec::new(),
    };
    if !server_groups::insert_within_quota(&svc.db, &g, limit).await? {
        return Err(Error::Forbidden(
            "Quota exceeded, too many server groups.".into(),
        ));
    }
    Ok(axum::Json(json!({"server_group": view(&g, version)})).into_response())
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let g = visible(&svc, &ctx, &id).await?;
    svc.authorize_project(
        &ctx,
        "os_compute_api:os-server-groups:delete",
        &g.project_id,
    )?;
    server_groups::delete(&svc.db, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
