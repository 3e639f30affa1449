//! `/servers/{id}/migrations`: a server's in-progress live migrations
//! (2.23), forcing one to complete (2.22) and aborting one (2.24). Live
//! migration between hosts is not built yet (it waits for multi-node), so
//! no server is ever migrating: the list is empty, a migration is not
//! found, and force-complete and abort meet Nova's state conflict.

use super::consoles::not_before;
use super::{ApiVersion, Svc};
use crate::service::servers::action_request::NoArguments;
use crate::store::{self, instances::Instance};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// Statuses of a live migration still under way.
const IN_PROGRESS: &[&str] = &["queued", "preparing", "running", "post-migrating"];

async fn server(svc: &Svc, ctx: &AuthContext, id: &str, op: &str) -> Result<Instance> {
    let rule = format!("os_compute_api:servers:migrations:{op}");
    svc.authorized_instance(ctx, id, &rule).await
}

/// Nova checks that the server is live-migrating before anything else.
fn not_migrating(action: &str, i: &Instance) -> Error {
    let state = i
        .task_state
        .map(|t| t.to_string())
        .unwrap_or_else(|| "None".into());
    Error::Conflict(format!(
        "Cannot '{action}' instance {} while it is in task_state {state}",
        i.id
    ))
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    not_before(version, (2, 23))?;
    let i = server(&svc, &ctx, &id, "index").await?;
    let running: Vec<_> = store::migrations::list_migrations(&svc.db)
        .await?
        .into_iter()
        .filter(|m| m.instance_uuid == i.id && m.migration_type == "live-migration")
        .filter(|m| IN_PROGRESS.contains(&m.status.as_str()))
        .map(|m| {
            let mut v = json!({"id": m.id, "server_uuid": m.instance_uuid, "status": m.status});
            if version >= (2, 80) {
                v["user_id"] = json!(m.user_id);
                v["project_id"] = json!(m.project_id);
            }
            v
        })
        .collect();
    Ok(axum::Json(json!({ "migrations": running })).into_response())
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, migration)): Path<(String, String)>,
) -> Result<Response> {
    not_before(version, (2, 23))?;
    let i = server(&svc, &ctx, &id, "show").await?;
    Err(Error::NotFound(format!(
        "In-progress live migration {migration} is not found for server {}.",
        i.id
    )))
}

/// `POST /servers/{id}/migrations/{migration}/action`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationActionBody {
    /// `null`.
    #[allow(dead_code)]
    force_complete: NoArguments,
}

pub async fn action(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, _migration)): Path<(String, String)>,
    Json(_body): Json<MigrationActionBody>,
) -> Result<Response> {
    not_before(version, (2, 22))?;
    let i = server(&svc, &ctx, &id, "force_complete").await?;
    Err(not_migrating("force_complete", &i))
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, _migration)): Path<(String, String)>,
) -> Result<Response> {
    not_before(version, (2, 24))?;
    let i = server(&svc, &ctx, &id, "delete").await?;
    Err(not_migrating("abort live migration", &i))
}
