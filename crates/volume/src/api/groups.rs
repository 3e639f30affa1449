//! `/v3/{project_id}/groups` (3.13+) and `/group_snapshots` (3.14+):
//! generic volume groups, their actions (delete, reset status 3.20,
//! create from a source 3.14) and group snapshots (reset status 3.19).

use super::listing::ListQuery;
use super::microversion::{require, ApiVersion};
use super::{check_url_project, Query, Svc};
use crate::groups::{GroupSource, NewGroup};
use crate::store::groups::{Group, GroupSnapshot};
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

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v3/{project_id}/groups",
            get(list_summary).post(create_group),
        )
        .route("/v3/{project_id}/groups/detail", get(list_detail))
        .route(
            "/v3/{project_id}/groups/action",
            post(group_collection_action),
        )
        .route(
            "/v3/{project_id}/groups/{id}",
            get(show_group).put(update_group),
        )
        .route("/v3/{project_id}/groups/{id}/action", post(group_action))
        .route(
            "/v3/{project_id}/group_snapshots",
            get(list_snapshots_summary).post(create_group_snapshot),
        )
        .route(
            "/v3/{project_id}/group_snapshots/detail",
            get(list_snapshots_detail),
        )
        .route(
            "/v3/{project_id}/group_snapshots/{id}",
            get(show_group_snapshot).delete(delete_group_snapshot),
        )
        .route(
            "/v3/{project_id}/group_snapshots/{id}/action",
            post(group_snapshot_action),
        )
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateGroupRequest {
    pub group: CreateGroup,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub name: Option<String>,
    pub description: Option<String>,
    pub group_type: String,
    pub volume_types: Vec<String>,
    pub availability_zone: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateGroupRequest {
    pub group: UpdateGroup,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Volume ids, comma-separated.
    pub add_volumes: Option<String>,
    pub remove_volumes: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFromSource {
    pub name: Option<String>,
    pub description: Option<String>,
    pub group_snapshot_id: Option<String>,
    pub source_group_id: Option<String>,
}

/// `POST /groups/action`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCollectionAction {
    #[serde(rename = "create-from-src")]
    pub create_from_src: CreateFromSource,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteGroup {
    #[serde(rename = "delete-volumes")]
    pub delete_volumes: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetStatus {
    pub status: String,
}

/// `POST /groups/{id}/action`: one action a request.
#[derive(Deserialize, JsonSchema)]
pub enum GroupAction {
    #[serde(rename = "delete")]
    Delete(DeleteGroup),
    #[serde(rename = "reset_status")]
    ResetStatus(ResetStatus),
}

#[derive(Deserialize, JsonSchema)]
pub enum GroupSnapshotAction {
    #[serde(rename = "reset_status")]
    ResetStatus(ResetStatus),
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateGroupSnapshotRequest {
    pub group_snapshot: CreateGroupSnapshot,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupSnapshot {
    pub group_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

fn group_view(g: &Group, version: ApiVersion, volumes: Option<Vec<String>>) -> Value {
    let mut v = json!({
        "id": g.id, "name": g.name, "description": g.description, "status": g.status,
        "availability_zone": g.availability_zone, "created_at": g.created_at,
        "group_type": g.group_type_id, "volume_types": g.volume_type_ids,
        "group_snapshot_id": g.group_snapshot_id, "source_group_id": g.source_group_id,
    });
    if let Some(vols) = volumes.filter(|_| version >= (3, 25)) {
        v["volumes"] = json!(vols);
    }
    if version >= (3, 38) {
        v["replication_status"] = json!("disabled");
    }
    if version >= (3, 58) {
        v["project_id"] = json!(g.project_id);
    }
    v
}

fn snapshot_view(s: &GroupSnapshot, version: ApiVersion) -> Value {
    let mut v = json!({"id": s.id, "name": s.name, "description": s.description,
        "status": s.status, "created_at": s.created_at, "group_id": s.group_id,
        "group_type_id": s.group_type_id});
    if version >= (3, 58) {
        v["project_id"] = json!(s.project_id);
    }
    v
}

fn ids(csv: Option<String>) -> Vec<String> {
    csv.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Groups the caller may list (`all_tenants` for admins), settled,
/// filtered and paged.
async fn listed(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    q: &[(String, String)],
) -> Result<Vec<Group>> {
    check_url_project(ctx, project_id)?;
    svc.authorize(ctx, "group:get_all", project_id)?;
    let query = ListQuery::new(q);
    let mut groups = Vec::new();
    for g in crate::store::groups::list_groups(&svc.db, query.scope(svc, ctx, project_id)).await? {
        groups.push(svc.settle_group(g).await?);
    }
    groups.retain(|g| {
        query
            .get("name")
            .is_none_or(|n| g.name.as_deref() == Some(n))
            && query.get("status").is_none_or(|s| g.status == s)
    });
    let (page, _) = query.page(groups, svc.config.volume.osapi_max_limit, |g| g.id.as_str())?;
    Ok(page)
}

pub async fn list_summary(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 13))?;
    let groups = listed(&svc, &ctx, &project_id, &q).await?;
    let views: Vec<Value> = groups
        .iter()
        .map(|g| json!({"id": g.id, "name": g.name}))
        .collect();
    Ok(axum::Json(json!({ "groups": views })).into_response())
}

pub async fn list_detail(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 13))?;
    let with_volumes = wants_volumes(&q);
    let mut views = Vec::new();
    for g in listed(&svc, &ctx, &project_id, &q).await? {
        let vols = volume_ids(&svc, &g, with_volumes).await?;
        views.push(group_view(&g, version, vols));
    }
    Ok(axum::Json(json!({ "groups": views })).into_response())
}

/// Cinder's `list_volume=True` (3.25+): the group's volume ids in its view.
fn wants_volumes(q: &[(String, String)]) -> bool {
    ListQuery::new(q)
        .get("list_volume")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

async fn volume_ids(svc: &Svc, g: &Group, wanted: bool) -> Result<Option<Vec<String>>> {
    if !wanted {
        return Ok(None);
    }
    let vols = svc.group_volumes(&g.id).await?;
    Ok(Some(vols.into_iter().map(|v| v.id).collect()))
}

pub async fn show_group(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 13))?;
    check_url_project(&ctx, &project_id)?;
    let g = svc.visible_group(&ctx, &id).await?;
    svc.authorize(&ctx, "group:get", &g.project_id)?;
    let vols = volume_ids(&svc, &g, wants_volumes(&q)).await?;
    Ok(axum::Json(json!({"group": group_view(&g, version, vols)})).into_response())
}

pub async fn create_group(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateGroupRequest>,
) -> Result<Response> {
    require(version, (3, 13))?;
    check_url_project(&ctx, &project_id)?;
    let r = req.group;
    let new = NewGroup {
        name: r.name,
        description: r.description,
        group_type: r.group_type,
        volume_types: r.volume_types,
        availability_zone: r.availability_zone,
    };
    let g = svc.create_group(&ctx, new).await?;
    let body = json!({"group": {"id": g.id, "name": g.name}});
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

pub async fn update_group(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<UpdateGroupRequest>,
) -> Result<Response> {
    require(version, (3, 13))?;
    check_url_project(&ctx, &project_id)?;
    let u = req.group;
    if u.name.is_none()
        && u.description.is_none()
        && u.add_volumes.is_none()
        && u.remove_volumes.is_none()
    {
        return Err(Error::BadRequest(
            "Invalid input received: Name, description, add_volumes, and remove_volumes can not be all empty in the request body.".into(),
        ));
    }
    let (add, remove) = (ids(u.add_volumes), ids(u.remove_volumes));
    if let Some(both) = add.iter().find(|a| remove.contains(a)) {
        return Err(Error::BadRequest(format!(
            "Invalid input received: Volume {both} cannot be both added to and removed from a group."
        )));
    }
    let (name, description) = (u.name.map(Some), u.description.map(Some));
    svc.update_group(&ctx, &id, name, description, &add, &remove)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn group_action(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(action): Json<GroupAction>,
) -> Result<Response> {
    require(version, (3, 13))?;
    check_url_project(&ctx, &project_id)?;
    match action {
        GroupAction::Delete(d) => {
            svc.delete_group(&ctx, &id, d.delete_volumes.unwrap_or(false))
                .await?
        }
        GroupAction::ResetStatus(r) => {
            require(version, (3, 20))?;
            svc.reset_group_status(&ctx, &id, &r.status).await?
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn group_collection_action(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(action): Json<GroupCollectionAction>,
) -> Result<Response> {
    require(version, (3, 14))?;
    check_url_project(&ctx, &project_id)?;
    let r = action.create_from_src;
    let source = match (r.group_snapshot_id, r.source_group_id) {
        (Some(s), None) => GroupSource::Snapshot(s),
        (None, Some(g)) => GroupSource::Group(g),
        _ => {
            return Err(Error::BadRequest(
                "Invalid input received: Either 'group_snapshot_id' or 'source_group_id' must be provided, not both.".into(),
            ))
        }
    };
    let g = svc
        .create_group_from_source(&ctx, source, r.name, r.description)
        .await?;
    let body = json!({"group": {"id": g.id, "name": g.name}});
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// Group snapshots the caller may list, settled and paged.
async fn snapshots_listed(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    q: &[(String, String)],
) -> Result<Vec<GroupSnapshot>> {
    check_url_project(ctx, project_id)?;
    svc.authorize(ctx, "group:get_all_group_snapshots", project_id)?;
    let query = ListQuery::new(q);
    let scope = query.scope(svc, ctx, project_id);
    let mut all = Vec::new();
    for s in crate::store::groups::list_snapshots(&svc.db, scope).await? {
        all.extend(svc.settle_group_snapshot(s).await?);
    }
    all.retain(|s| query.get("group_id").is_none_or(|g| s.group_id == g));
    let (page, _) = query.page(all, svc.config.volume.osapi_max_limit, |s| s.id.as_str())?;
    Ok(page)
}

pub async fn list_snapshots_summary(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 14))?;
    let views: Vec<Value> = snapshots_listed(&svc, &ctx, &project_id, &q)
        .await?
        .iter()
        .map(|s| json!({"id": s.id, "name": s.name}))
        .collect();
    Ok(axum::Json(json!({ "group_snapshots": views })).into_response())
}

pub async fn list_snapshots_detail(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 14))?;
    let views: Vec<Value> = snapshots_listed(&svc, &ctx, &project_id, &q)
        .await?
        .iter()
        .map(|s| snapshot_view(s, version))
        .collect();
    Ok(axum::Json(json!({ "group_snapshots": views })).into_response())
}

pub async fn show_group_snapshot(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    require(version, (3, 14))?;
    check_url_project(&ctx, &project_id)?;
    let s = svc.visible_group_snapshot(&ctx, &id).await?;
    svc.authorize(&ctx, "group:get_group_snapshot", &s.project_id)?;
    Ok(axum::Json(json!({"group_snapshot": snapshot_view(&s, version)})).into_response())
}

pub async fn create_group_snapshot(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateGroupSnapshotRequest>,
) -> Result<Response> {
    require(version, (3, 14))?;
    check_url_project(&ctx, &project_id)?;
    let r = req.group_snapshot;
    let s = svc
        .create_group_snapshot(&ctx, &r.group_id, r.name, r.description)
        .await?;
    let body = json!({"group_snapshot": {"id": s.id, "name": s.name,
                                         "group_type_id": s.group_type_id}});
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

pub async fn delete_group_snapshot(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    require(version, (3, 14))?;
    check_url_project(&ctx, &project_id)?;
    svc.delete_group_snapshot(&ctx, &id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn group_snapshot_action(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(action): Json<GroupSnapshotAction>,
) -> Result<Response> {
    require(version, (3, 19))?;
    check_url_project(&ctx, &project_id)?;
    let GroupSnapshotAction::ResetStatus(r) = action;
    svc.reset_group_snapshot_status(&ctx, &id, &r.status)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
