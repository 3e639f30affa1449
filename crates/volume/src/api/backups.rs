//! `/v3/{project_id}/backups`: create, list (summary and detail), show,
//! delete and restore, to the directory driver.

use super::fields::check_text;
use super::listing::{sort_by_params, ListQuery};
use super::microversion::{require, ApiVersion};
use super::volume_data::Flag;
use super::{check_url_project, project_url, Query, Svc};
use crate::backups::NewBackup;
use crate::store::{self, backups::Backup};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use ferrostack_core::Result;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v3/{project_id}/backups",
            get(list_summary).post(create_backup),
        )
        .route("/v3/{project_id}/backups/detail", get(list_detail))
        .route(
            "/v3/{project_id}/backups/{id}",
            get(show_backup).put(update_backup).delete(delete_backup),
        )
        .route(
            "/v3/{project_id}/backups/{id}/restore",
            post(restore_backup),
        )
        .route("/v3/{project_id}/backups/{id}/action", post(backup_action))
        .route(
            "/v3/{project_id}/backups/{id}/export_record",
            get(export_record),
        )
        .route(
            "/v3/{project_id}/backups/import_record",
            post(import_record),
        )
}

/// `POST /backups/{id}/action`: the admin actions.
#[derive(Deserialize, JsonSchema)]
pub enum BackupAction {
    #[serde(rename = "os-reset_status")]
    ResetStatus(BackupStatus),
}

#[derive(Deserialize, JsonSchema)]
pub struct BackupStatus {
    pub status: String,
}

pub async fn backup_action(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(action): Json<BackupAction>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    match action {
        BackupAction::ResetStatus(r) => svc.reset_backup_status(&ctx, &id, &r.status).await?,
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateBackupRequest {
    pub backup: CreateBackup,
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateBackup {
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Accepted; the directory driver keeps every backup in one file.
    #[allow(dead_code)]
    pub container: Option<String>,
    /// Only the blocks changed since the volume's newest backup.
    pub incremental: Option<Flag>,
    /// Needed to back up an `in-use` volume.
    pub force: Option<Flag>,
    pub snapshot_id: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct RestoreRequest {
    pub restore: Restore,
}

#[derive(Deserialize, JsonSchema)]
pub struct Restore {
    /// An `available` volume at least the backup's size; a new one when absent.
    pub volume_id: Option<String>,
    pub name: Option<String>,
}

fn link(svc: &Svc, b: &Backup) -> Value {
    let href = format!("{}/backups/{}", project_url(svc, &b.project_id), b.id);
    json!([{"rel": "self", "href": href}])
}

/// A backup in full; `dependents`: an incremental backup builds on it.
fn backup_view(svc: &Svc, b: &Backup, dependents: bool) -> Value {
    json!({
        "id": b.id,
        "name": b.name,
        "description": b.description,
        "status": b.status,
        "availability_zone": svc.config.volume.storage_availability_zone,
        "volume_id": b.volume_id,
        "size": b.size,
        "object_count": 0,
        "container": null,
        "fail_reason": b.fail_reason,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
        "data_timestamp": b.created_at,
        "has_dependent_backups": dependents,
        "is_incremental": b.parent_id.is_some(),
        "snapshot_id": b.snapshot_id,
        "links": link(svc, b),
    })
}

pub async fn create_backup(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateBackupRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "backup:create", &project_id)?;
    let r = req.backup;
    let flag = |f: &Option<Flag>, n: &str| f.as_ref().map(|f| f.value(n)).transpose();
    let new = NewBackup {
        volume_id: r.volume_id,
        name: r.name,
        description: r.description,
        incremental: flag(&r.incremental, "incremental")?.unwrap_or(false),
        force: flag(&r.force, "force")?.unwrap_or(false),
        snapshot_id: r.snapshot_id,
    };
    let b = svc.create_backup(&ctx, new).await?;
    let body = json!({"backup": {"id": b.id, "name": b.name, "links": link(&svc, &b)}});
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

async fn list(
    svc: Svc,
    ctx: std::sync::Arc<AuthContext>,
    project_id: String,
    q: Vec<(String, String)>,
    detail: bool,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "backup:get_all", &project_id)?;
    let query = ListQuery::new(&q);
    let params = &query.params;
    let all = store::backups::list(&svc.db, query.scope(&svc, &ctx, &project_id)).await?;
    let parents: std::collections::HashSet<String> =
        all.iter().filter_map(|b| b.parent_id.clone()).collect();
    let mut backups = all;
    backups.retain(|b| {
        params.get("status").is_none_or(|s| b.status == *s)
            && params.get("volume_id").is_none_or(|v| b.volume_id == *v)
            && params
                .get("name")
                .is_none_or(|n| b.name.as_deref() == Some(*n))
    });
    sort_by_params(&mut backups, params, SORT_KEYS, |b, k| match k {
        "size" => (b.size, String::new()),
        "id" => (0, b.id.clone()),
        "name" => (0, b.name.clone().unwrap_or_default()),
        "status" => (0, b.status.clone()),
        "updated_at" => (0, b.updated_at.clone()),
        _ => (0, b.created_at.clone()),
    })?;
    let (page, next) = query.page(backups, svc.config.volume.osapi_max_limit, |b| {
        b.id.as_str()
    })?;
    let views: Vec<Value> = page
        .iter()
        .map(|b| {
            if detail {
                backup_view(&svc, b, parents.contains(&b.id))
            } else {
                json!({"id": b.id, "name": b.name, "links": link(&svc, b)})
            }
        })
        .collect();
    let mut body = json!({ "backups": views });
    if let Some(m) = next {
        let path = if detail { "backups/detail" } else { "backups" };
        body["backups_links"] = query.next_link(&svc, &project_id, path, &m);
    }
    Ok(axum::Json(body).into_response())
}

/// The keys a backup list sorts by.
const SORT_KEYS: &[&str] = &["id", "name", "size", "status", "created_at", "updated_at"];

pub async fn list_summary(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    list(svc, ctx, project_id, q, false).await
}

pub async fn list_detail(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    list(svc, ctx, project_id, q, true).await
}

pub async fn show_backup(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let b = svc.visible_backup(&ctx, &id).await?;
    svc.authorize(&ctx, "backup:get", &b.project_id)?;
    let dependents = store::backups::has_dependents(&svc.db, &b.id).await?;
    Ok(axum::Json(json!({"backup": backup_view(&svc, &b, dependents)})).into_response())
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateBackupRequest {
    pub backup: UpdateBackup,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBackup {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// `PUT /backups/{id}` (3.9): name and description.
pub async fn update_backup(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<UpdateBackupRequest>,
) -> Result<Response> {
    require(version, (3, 9))?;
    check_url_project(&ctx, &project_id)?;
    let u = req.backup;
    check_text("name", &u.name, 255)?;
    check_text("description", &u.description, 255)?;
    let b = svc.update_backup(&ctx, &id, u.name, u.description).await?;
    let body = json!({"backup": {"id": b.id, "name": b.name, "links": link(&svc, &b)}});
    Ok(axum::Json(body).into_response())
}

pub async fn delete_backup(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.delete_backup(&ctx, &id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn restore_backup(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<RestoreRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let r = req.restore;
    let v = svc
        .restore_backup(&ctx, &id, r.volume_id.as_deref(), r.name)
        .await?;
    let body = json!({"restore": {"backup_id": id, "volume_id": v.id, "volume_name": v.name}});
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

pub async fn export_record(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let url = svc.export_backup_record(&ctx, &id).await?;
    let body = json!({"backup-record": {
        "backup_service": crate::backups::BACKUP_SERVICE,
        "backup_url": url,
    }});
    Ok(axum::Json(body).into_response())
}

#[derive(Deserialize, JsonSchema)]
pub struct ImportRequest {
    #[serde(rename = "backup-record")]
    pub record: ImportRecord,
}

#[derive(Deserialize, JsonSchema)]
pub struct ImportRecord {
    pub backup_service: String,
    pub backup_url: String,
}

pub async fn import_record(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<ImportRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let r = req.record;
    let b = svc
        .import_backup_record(&ctx, &r.backup_service, &r.backup_url)
        .await?;
    let body = json!({"backup": {"id": b.id, "name": b.name, "links": link(&svc, &b)}});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}
