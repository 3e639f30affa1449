//! `/v3/{project_id}/snapshots`: create, list (summary and detail), show,
//! update, delete, metadata, and the admin actions `os-reset_status` and
//! `os-force_delete`.

use super::listing::{sort_by_params, ListQuery};
use super::microversion::ApiVersion;
use super::volume_data::Flag;
use super::volumes::{check_metadata, check_text};
use super::{check_url_project, Query, Svc};
use crate::snapshots::NewSnapshot;
use crate::store::{self, snapshots::Snapshot};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The keys a snapshot listing sorts by.
/// (`display_name` is the column's name in Cinder, which accepts both.)
const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "display_name",
    "size",
    "status",
    "created_at",
    "updated_at",
];

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v3/{project_id}/snapshots",
            get(list_summary).post(create_snapshot),
        )
        .route("/v3/{project_id}/snapshots/detail", get(list_detail))
        .route(
            "/v3/{project_id}/snapshots/{id}",
            get(show_snapshot)
                .put(update_snapshot)
                .delete(delete_snapshot),
        )
        .route(
            "/v3/{project_id}/snapshots/{id}/action",
            post(snapshot_action),
        )
        .merge(super::metadata::routes::<Snapshot>(
            "/v3/{project_id}/snapshots/{id}",
        ))
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateSnapshotRequest {
    pub snapshot: CreateSnapshot,
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateSnapshot {
    /// Cinder accepts a null here and answers that no such volume exists.
    pub volume_id: Option<String>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub display_description: Option<String>,
    /// Needed to snapshot an `in-use` volume.
    pub force: Option<Flag>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateSnapshotRequest {
    pub snapshot: UpdateSnapshot,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateSnapshot {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub display_description: Option<String>,
}

/// `POST /snapshots/{id}/action`: the admin actions.
#[derive(Deserialize, JsonSchema)]
pub enum SnapshotAction {
    #[serde(rename = "os-reset_status")]
    ResetStatus(SnapshotStatus),
    #[serde(rename = "os-force_delete")]
    ForceDelete(Option<super::volumes::NoArguments>),
    #[serde(rename = "os-update_snapshot_status")]
    UpdateStatus(SnapshotProgress),
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotProgress {
    pub status: String,
    pub progress: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct SnapshotStatus {
    pub status: String,
}

/// A snapshot as Cinder 3.0 shows it; the extended attributes (project,
/// progress) only in show and detail (Cinder's extension decorates just
/// those two), for callers their rule allows.
fn snapshot_view(svc: &Svc, ctx: &AuthContext, s: &Snapshot, extended: bool) -> Value {
    let mut view = json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "status": s.status,
        "size": s.size,
        "metadata": s.metadata,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    });
    let rule = "volume_extension:extended_snapshot_attributes";
    if extended
        && svc
            .policy
            .check(rule, ctx, &crate::policy::target(&s.project_id))
    {
        view["os-extended-snapshot-attributes:project_id"] = json!(s.project_id);
        let derived = if s.status == "creating" { "0%" } else { "100%" };
        let progress = s.progress.as_deref().unwrap_or(derived);
        view["os-extended-snapshot-attributes:progress"] = json!(progress);
    }
    view
}

pub async fn create_snapshot(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateSnapshotRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume:create_snapshot", &project_id)?;
    let r = req.snapshot;
    let name = r.name.or(r.display_name);
    let description = r.description.or(r.display_description);
    check_text("name", &name, 255)?;
    check_text("description", &description, 255)?;
    let force = match &r.force {
        None => None,
        Some(f) => Some(f.value("force").map_err(|_| {
            Error::BadRequest("Invalid value for 'force' given: must be a boolean.".into())
        })?),
    };
    // From 3.66 an in-use volume needs no `force`; a `false` is refused
    // there and a `true` kept only for older clients, as Cinder does.
    let force = if version >= (3, 66) {
        if force == Some(false) {
            return Err(Error::BadRequest(
                "Invalid value for 'force' given: the 'force' flag is not supported \
                 from microversion 3.66 unless its value is true."
                    .into(),
            ));
        }
        true
    } else {
        force.unwrap_or(false)
    };
    let volume_id = r
        .volume_id
        .ok_or_else(|| Error::NotFound("Volume None could not be found.".into()))?;
    let new = NewSnapshot {
        volume_id,
        name,
        description,
        metadata: check_metadata(&r.metadata.unwrap_or_default())?,
        force,
    };
    let s = svc.create_snapshot(&ctx, new).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"snapshot": snapshot_view(&svc, &ctx, &s, false)})),
    )
        .into_response())
}

/// Filter and page the caller's snapshots (newest first).
async fn listed(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    q: &[(String, String)],
) -> Result<(Vec<Snapshot>, Option<String>)> {
    check_url_project(ctx, project_id)?;
    svc.authorize(ctx, "volume:get_all_snapshots", project_id)?;
    let query = ListQuery::new(q);
    let params = &query.params;
    let mut snaps = store::snapshots::list(&svc.db, query.scope(svc, ctx, project_id)).await?;
    snaps.retain(|s| {
        params
            .get("name")
            .is_none_or(|n| s.name.as_deref() == Some(*n))
            && params.get("status").is_none_or(|st| s.status == *st)
            && params.get("volume_id").is_none_or(|v| s.volume_id == *v)
    });
    sort_by_params(&mut snaps, params, SORT_KEYS, |s, k| match k {
        "size" => (s.size, String::new()),
        "id" => (0, s.id.clone()),
        "name" | "display_name" => (0, s.name.clone().unwrap_or_default()),
        "status" => (0, s.status.clone()),
        "updated_at" => (0, s.updated_at.clone()),
        _ => (0, s.created_at.clone()),
    })?;
    query.page(snaps, svc.config.volume.osapi_max_limit, |s| s.id.as_str())
}

async fn list(
    svc: Svc,
    ctx: std::sync::Arc<AuthContext>,
    project_id: String,
    q: Vec<(String, String)>,
    detail: bool,
) -> Result<Response> {
    let (page, next) = listed(&svc, &ctx, &project_id, &q).await?;
    let views: Vec<Value> = page
        .iter()
        .map(|s| snapshot_view(&svc, &ctx, s, detail))
        .collect();
    let mut body = json!({ "snapshots": views });
    if let Some(m) = next {
        let path = if detail {
            "snapshots/detail"
        } else {
            "snapshots"
        };
        body["snapshots_links"] = ListQuery::new(&q).next_link(&svc, &project_id, path, &m);
    }
    Ok(axum::Json(body).into_response())
}

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

/// The snapshot of a request on one snapshot, after the URL and rule checks.
async fn snapshot_for(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    id: &str,
    action: &str,
) -> Result<Snapshot> {
    check_url_project(ctx, project_id)?;
    let s = svc.visible_snapshot(ctx, id).await?;
    svc.authorize(ctx, action, &s.project_id)?;
    Ok(s)
}

pub async fn show_snapshot(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let s = snapshot_for(&svc, &ctx, &project_id, &id, "volume:get_snapshot").await?;
    Ok(axum::Json(json!({"snapshot": snapshot_view(&svc, &ctx, &s, true)})).into_response())
}

pub async fn update_snapshot(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<UpdateSnapshotRequest>,
) -> Result<Response> {
    let mut s = snapshot_for(&svc, &ctx, &project_id, &id, "volume:update_snapshot").await?;
    let u = req.snapshot;
    if let Some(n) = u.name.or(u.display_name) {
        check_text("name", &Some(n.clone()), 255)?;
        s.name = Some(n);
    }
    if let Some(d) = u.description.or(u.display_description) {
        check_text("description", &Some(d.clone()), 255)?;
        s.description = Some(d);
    }
    store::snapshots::update(&svc.db, &s).await?;
    let s = svc.visible_snapshot(&ctx, &id).await?;
    Ok(axum::Json(json!({"snapshot": snapshot_view(&svc, &ctx, &s, false)})).into_response())
}

pub async fn delete_snapshot(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.delete_snapshot(&ctx, &id, false).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn snapshot_action(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(action): Json<SnapshotAction>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    match action {
        SnapshotAction::ResetStatus(r) => svc.reset_snapshot_status(&ctx, &id, &r.status).await?,
        SnapshotAction::ForceDelete(None | Some(super::volumes::NoArguments {})) => {
            svc.delete_snapshot(&ctx, &id, true).await?
        }
        SnapshotAction::UpdateStatus(u) => {
            check_text("progress", &u.progress, 255)?;
            svc.update_snapshot_status(&ctx, &id, &u.status, u.progress.as_deref())
                .await?
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}
