//! `/os-assisted-volume-snapshots` (admin; what a remotefs Cinder driver
//! calls): create answers `{"snapshot": {"id", "volumeId"}}`, delete takes
//! `delete_info={"volume_id": …}` in its query and answers 204. The work
//! is `service/servers/assisted_snapshots.rs`.

use super::{query_get, Query, Svc};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

/// The only snapshot type Nova's schema knows.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotType {
    Qcow2,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInfo {
    pub snapshot_id: String,
    #[serde(rename = "type")]
    pub kind: SnapshotType,
    pub new_file: String,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotFields {
    pub volume_id: String,
    pub create_info: CreateInfo,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub snapshot: SnapshotFields,
}

/// Nova's `minLength: 1` on each string.
fn non_empty(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: . '' is too short"
        )));
    }
    Ok(())
}

/// `POST`: 200 with the snapshot's id — `create_info.id` when given (as
/// Nova), else the Cinder snapshot's id, so the caller can delete it.
pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<CreateBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-assisted-volume-snapshots:create")?;
    let s = body.snapshot;
    let info = &s.create_info;
    // qcow2 is the only type (the schema's enum); no host here takes it.
    let SnapshotType::Qcow2 = info.kind;
    non_empty("volume_id", &s.volume_id)?;
    non_empty("snapshot_id", &info.snapshot_id)?;
    non_empty("new_file", &info.new_file)?;
    if let Some(id) = &info.id {
        non_empty("id", id)?;
    }
    svc.assisted_snapshot_create(&s.volume_id, &info.snapshot_id)
        .await?;
    let id = info.id.clone().unwrap_or_else(|| info.snapshot_id.clone());
    let view = json!({"snapshot": {"id": id, "volumeId": s.volume_id}});
    Ok((StatusCode::OK, axum::Json(view)).into_response())
}

/// `DELETE /{snapshot_id}?delete_info=<json with volume_id>`: 204.
pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-assisted-volume-snapshots:delete")?;
    let raw =
        query_get(&q.0, "delete_info").ok_or_else(|| Error::BadRequest("'delete_info'".into()))?;
    let info: Value = serde_json::from_str(raw).map_err(|e| Error::BadRequest(e.to_string()))?;
    let volume_id = info["volume_id"]
        .as_str()
        .ok_or_else(|| Error::BadRequest("'volume_id'".into()))?;
    svc.assisted_snapshot_delete(volume_id, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
