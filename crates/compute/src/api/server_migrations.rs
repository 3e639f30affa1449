//! `/servers/{id}/migrations`: a server's live migrations under way
//! (2.23), forcing one to complete (2.22) and aborting one (2.24; 2.65
//! also while queued or preparing). The work is the service's
//! (`service::servers::live_migrate`) and the `live_migrate_server` saga's.

use super::consoles::not_before;
use super::{ApiVersion, Svc};
use crate::service::servers::action_request::NoArguments;
use crate::store::{instances::Instance, migrations::MigrationRow};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::Result;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

async fn server(svc: &Svc, ctx: &AuthContext, id: &str, op: &str) -> Result<Instance> {
    let rule = format!("os_compute_api:servers:migrations:{op}");
    svc.authorized_instance(ctx, id, &rule).await
}

fn naive(ts: Option<&str>) -> Value {
    match ts.and_then(ferrostack_core::time::parse) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::Null,
    }
}

/// A live migration as Nova's `server_migrations` view shows it.
fn view(m: &MigrationRow, version: ApiVersion) -> Value {
    let p = &m.progress;
    let mut v = json!({
        "id": m.id, "server_uuid": m.instance_uuid, "status": m.status,
        "source_compute": m.source_compute, "source_node": m.source_node,
        "dest_compute": m.dest_compute, "dest_node": m.dest_node, "dest_host": m.dest_host,
        "memory_total_bytes": p.memory_total, "memory_processed_bytes": p.memory_processed,
        "memory_remaining_bytes": p.memory_remaining, "disk_total_bytes": p.disk_total,
        "disk_processed_bytes": p.disk_processed, "disk_remaining_bytes": p.disk_remaining,
        "created_at": naive(Some(&m.created_at)),
        "updated_at": naive(m.updated_at.as_deref()),
    });
    if version >= (2, 59) {
        v["uuid"] = json!(m.uuid);
    }
    if version >= (2, 80) {
        v["user_id"] = json!(m.user_id);
        v["project_id"] = json!(m.project_id);
    }
    v
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    not_before(version, (2, 23))?;
    let i = server(&svc, &ctx, &id, "index").await?;
    let running: Vec<Value> = svc
        .live_migrations_of(&i)
        .await?
        .iter()
        .map(|m| view(m, version))
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
    let m = svc.live_migration_of(&i, &migration).await?;
    Ok(axum::Json(json!({ "migration": view(&m, version) })).into_response())
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
    Path((id, migration)): Path<(String, String)>,
    Json(_body): Json<MigrationActionBody>,
) -> Result<Response> {
    not_before(version, (2, 22))?;
    let i = server(&svc, &ctx, &id, "force_complete").await?;
    svc.force_complete_live_migration(&i, &migration).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, migration)): Path<(String, String)>,
) -> Result<Response> {
    not_before(version, (2, 24))?;
    let i = server(&svc, &ctx, &id, "delete").await?;
    svc.abort_live_migration(&i, &migration, version >= (2, 65))
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
