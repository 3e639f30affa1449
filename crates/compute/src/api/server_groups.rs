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

/// A group; from 2.64 with its `policy` and `rules` in place of the
/// `policies` list and the (always empty) `metadata`.
fn view(g: &ServerGroup, version: ApiVersion) -> Value {
    let mut v = json!({"id": g.id, "name": g.name, "members": g.members});
    if version >= (2, 64) {
        v["policy"] = json!(g.policy);
        v["rules"] = match g.max_server_per_host {
            Some(n) => json!({ "max_server_per_host": n }),
            None => json!({}),
        };
    } else {
        v["policies"] = json!([g.policy]);
        v["metadata"] = json!({});
    }
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
    /// Exactly one policy (the list form, before 2.64).
    #[serde(default)]
    #[schemars(schema_with = "one_policy")]
    policies: Option<Vec<String>>,
    /// The policy, from 2.64.
    #[serde(default)]
    #[schemars(schema_with = "policy_name")]
    policy: Option<String>,
    /// From 2.64, for `anti-affinity` only: `max_server_per_host` (≥ 1).
    #[serde(default)]
    rules: Option<GroupRules>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GroupRules {
    #[serde(default)]
    #[schemars(range(min = 1))]
    max_server_per_host: Option<super::body::IntOrString>,
}

/// One of [`POLICIES`].
fn policy_name(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::body::one_of(POLICIES, false)
}

fn required(field: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input for field/attribute 'server_group'. '{field}' is a required property"
    ))
}

fn unexpected(field: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input for field/attribute server_group. Additional properties are not allowed ('{field}' was unexpected)"
    ))
}

/// The policy (and anti-affinity's host limit) a create asks for, in the
/// form its version has: `policies: [one]` before 2.64, `policy` and
/// `rules` from it.
fn requested_policy(g: &CreateServerGroup, version: ApiVersion) -> Result<(String, Option<i64>)> {
    // The soft policies exist from 2.15.
    let allowed = if version >= (2, 15) {
        POLICIES
    } else {
        &POLICIES[..2]
    };
    let invalid = |field: &str, given: &dyn std::fmt::Debug| {
        Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {given:?}. It must be one of {allowed:?}."
        ))
    };
    if version < (2, 64) {
        if g.policy.is_some() {
            return Err(unexpected("policy"));
        }
        if g.rules.is_some() {
            return Err(unexpected("rules"));
        }
        return match g.policies.as_deref() {
            None => Err(required("policies")),
            Some([p]) if allowed.contains(&p.as_str()) => Ok((p.clone(), None)),
            Some(other) => Err(invalid("policies", &other)),
        };
    }
    if g.policies.is_some() {
        return Err(unexpected("policies"));
    }
    let policy = match g.policy.as_deref() {
        None => return Err(required("policy")),
        Some(p) if allowed.contains(&p) => p.to_owned(),
        Some(other) => return Err(invalid("policy", &other)),
    };
    let max = match g
        .rules
        .as_ref()
        .and_then(|r| r.max_server_per_host.as_ref())
    {
        None => None,
        Some(_) if policy != "anti-affinity" => {
            return Err(Error::BadRequest(
                "Only anti-affinity policy supports rules.".into(),
            ))
        }
        Some(n) => Some(n.int_within("max_server_per_host", 1, i64::from(i32::MAX))?),
    };
    Ok((policy, max))
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
    let (policy, max_server_per_host) = requested_policy(&body.server_group, version)?;
    let name = body.server_group.name;
    if name.trim().is_empty() || name.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute name.".into(),
        ));
    }
    let project = ctx.project_id.clone().unwrap_or_default();
    let limit = svc.quotas(&project).await?["server_groups"];
    let g = ServerGroup {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        project_id: project,
        user_id: ctx.user_id.clone(),
        policy,
        members: Vec::new(),
        max_server_per_host,
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
