//! `/v3/{project_id}/volumes`: create, list (filters, sort, pagination),
//! detail, show, update, delete, and the volume's metadata.

use super::attach_actions::{self, decorate, AttachBody, ConnectorBody, DetachBody, Legacy};
use super::listing::{sort_by_params, ListQuery};
use super::microversion::ApiVersion;
use super::{check_url_project, project_url, Query, Svc};
use crate::service::VolumeService;
use crate::store::{self, volumes::Volume};
use crate::volumes::NewVolume;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiMethodRouter, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// `GET` (summary list) and `POST` (create) of the collection.
pub fn collection() -> ApiMethodRouter<Svc> {
    get(list_summary).post(create_volume)
}

/// One volume and its metadata.
pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v3/{project_id}/volumes/{id}",
            get(show_volume).put(update_volume).delete(delete_volume),
        )
        .route("/v3/{project_id}/volumes/{id}/action", post(volume_action))
        .merge(super::metadata::routes::<crate::store::volumes::Volume>(
            "/v3/{project_id}/volumes/{id}",
        ))
}

/// A size as Cinder takes it: a whole number, or its digits as a string.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Size {
    Number(i64),
    Digits(String),
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateVolumeRequest {
    pub volume: CreateVolume,
}

/// What `POST /volumes` takes. A volume is made from an image, a snapshot
/// or another volume; `backup_id` and groups are accepted as `null` only,
/// as the clients send them.
#[derive(Deserialize, JsonSchema)]
pub struct CreateVolume {
    /// GiB, at least 1.
    pub size: Option<Size>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub display_description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// A volume type's name or id; `__DEFAULT__` when absent.
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    #[serde(rename = "imageRef")]
    pub image_ref: Option<String>,
    pub snapshot_id: Option<String>,
    pub source_volid: Option<String>,
    pub backup_id: Option<String>,
    pub consistencygroup_id: Option<String>,
    pub group_id: Option<String>,
    pub multiattach: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateVolumeRequest {
    pub volume: UpdateVolume,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateVolume {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub display_description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/{id}/action`: one action, named by its key, as Cinder
/// takes them. Only the actions implemented are accepted; any other key is
/// a 400 naming it.
#[derive(Deserialize, JsonSchema)]
pub enum VolumeAction {
    #[serde(rename = "os-extend")]
    Extend(ExtendVolume),
    /// Admin: set the status the record shows.
    #[serde(rename = "os-reset_status")]
    ResetStatus(ResetStatus),
    /// Admin: delete also a volume whose delete failed (the clients send `null`).
    #[serde(rename = "os-force_delete")]
    ForceDelete(Option<NoArguments>),
    #[serde(rename = "os-reserve")]
    Reserve(Option<NoArguments>),
    #[serde(rename = "os-unreserve")]
    Unreserve(Option<NoArguments>),
    #[serde(rename = "os-begin_detaching")]
    BeginDetaching(Option<NoArguments>),
    #[serde(rename = "os-roll_detaching")]
    RollDetaching(Option<NoArguments>),
    #[serde(rename = "os-initialize_connection")]
    InitializeConnection(ConnectorBody),
    #[serde(rename = "os-terminate_connection")]
    TerminateConnection(ConnectorBody),
    #[serde(rename = "os-attach")]
    Attach(AttachBody),
    #[serde(rename = "os-detach")]
    Detach(Option<DetachBody>),
    /// Admin: detach whatever the volume's status.
    #[serde(rename = "os-force_detach")]
    ForceDetach(Option<DetachBody>),
    #[serde(rename = "os-set_bootable")]
    SetBootable(crate::api::volume_data::SetBootable),
    #[serde(rename = "os-update_readonly_flag")]
    UpdateReadonly(crate::api::volume_data::UpdateReadonly),
    #[serde(rename = "os-retype")]
    Retype(crate::api::volume_data::Retype),
    #[serde(rename = "os-volume_upload_image")]
    UploadImage(crate::api::volume_data::UploadImage),
    #[serde(rename = "os-set_image_metadata")]
    SetImageMetadata(super::metadata::MetadataBody),
    #[serde(rename = "os-unset_image_metadata")]
    UnsetImageMetadata(ImageMetadataKey),
    #[serde(rename = "os-show_image_metadata")]
    ShowImageMetadata(Option<NoArguments>),
    /// 3.68: write an image over the volume.
    #[serde(rename = "os-reimage")]
    Reimage(Reimage),
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reimage {
    pub image_id: String,
    /// A `reserved` volume (a server's, during its rebuild) too.
    #[serde(default)]
    pub reimage_reserved: bool,
}

#[derive(Deserialize, JsonSchema)]
pub struct ImageMetadataKey {
    pub key: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct ResetStatus {
    pub status: String,
    /// Accepted as `detached` only: the volume's attachments (and export) go.
    pub attach_status: Option<String>,
}

/// An action that takes no arguments.
#[derive(Deserialize, JsonSchema)]
pub struct NoArguments {}

#[derive(Deserialize, JsonSchema)]
pub struct ExtendVolume {
    /// GiB, more than the volume's size.
    pub new_size: Size,
}

fn parse_size(size: Option<Size>) -> Result<i64> {
    parse_size_field("size", size)
}

/// A size field (`size`, `new_size`): a whole number of GiB, at least 1.
fn parse_size_field(field: &str, size: Option<Size>) -> Result<i64> {
    let bad = |s: &str| {
        Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {s}. {field} must be an integer and greater than 0."
        ))
    };
    let n = match size {
        None => return Err(bad("None")),
        Some(Size::Number(n)) => n,
        Some(Size::Digits(s)) => s.trim().parse::<i64>().map_err(|_| bad(&s))?,
    };
    if n < 1 || n > i32::MAX as i64 {
        return Err(bad(&n.to_string()));
    }
    Ok(n)
}

pub(crate) use super::fields::{check_metadata, check_text};

/// The detailed view of a volume, as Cinder 3.0 shows it. `extended`
/// (show and detail, the two views Cinder's extensions decorate) adds the
/// image metadata and, for callers their rules allow, the tenant, host and
/// migration attributes; create and update answer without them.
pub fn volume_view(
    svc: &VolumeService,
    ctx: &AuthContext,
    v: &Volume,
    types: &HashMap<String, String>,
    extended: bool,
) -> Value {
    let link = format!("{}/volumes/{}", project_url(svc, &v.project_id), v.id);
    let mut view = json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "size": v.size,
        "status": v.status,
        "availability_zone": v.availability_zone,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "volume_type": types.get(&v.volume_type_id).cloned().unwrap_or_default(),
        "metadata": v.metadata,
        "bootable": if v.bootable { "true" } else { "false" },
        "encrypted": false,
        "multiattach": false,
        "attachments": [],
        "user_id": v.user_id,
        "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid,
        "consistencygroup_id": null,
        "group_id": v.group_id,
        "replication_status": null,
        "migration_status": null,
        "links": [{"rel": "self", "href": link}],
    });
    if extended {
        extend_view(svc, ctx, v, &mut view);
    }
    view
}

/// The attributes Cinder's extensions add to show and detail.
fn extend_view(svc: &VolumeService, ctx: &AuthContext, v: &Volume, view: &mut Value) {
    if !v.image_metadata.is_empty() {
        view["volume_image_metadata"] = json!(v.image_metadata);
    }
    let target = crate::policy::target(&v.project_id);
    if svc
        .policy
        .check("volume_extension:volume_mig_status_attribute", ctx, &target)
    {
        view["os-vol-mig-status-attr:migstat"] = Value::Null;
        view["os-vol-mig-status-attr:name_id"] = Value::Null;
    }
    if svc.policy.check(
        "volume_extension:volume_tenant_attribute",
        ctx,
        &crate::policy::target(&v.project_id),
    ) {
        view["os-vol-tenant-attr:tenant_id"] = json!(v.project_id);
    }
    if svc.policy.check(
        "volume_extension:volume_host_attribute",
        ctx,
        &crate::policy::target(&v.project_id),
    ) {
        view["os-vol-host-attr:host"] = json!(format!(
            "{}@{}#{}",
            svc.config.common.host,
            svc.backend.name(),
            svc.backend.name()
        ));
    }
}

fn summary_view(svc: &VolumeService, v: &Volume) -> Value {
    let link = format!("{}/volumes/{}", project_url(svc, &v.project_id), v.id);
    json!({"id": v.id, "name": v.name, "links": [{"rel": "self", "href": link}]})
}

pub async fn create_volume(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateVolumeRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume:create", &project_id)?;
    let r = req.volume;
    let sources = [
        ("backup_id", &r.backup_id),
        ("consistencygroup_id", &r.consistencygroup_id),
    ];
    if let Some((field, _)) = sources.iter().find(|(_, v)| v.is_some()) {
        return Err(Error::BadRequest(format!(
            "Invalid input received: creating a volume with {field} is not supported by this deployment yet."
        )));
    }
    if r.multiattach == Some(true) {
        return Err(Error::BadRequest(
            "Invalid input received: multiattach volumes are not supported by this deployment yet."
                .into(),
        ));
    }
    if r.group_id.is_some() && version < (3, 13) {
        return Err(Error::BadRequest(
            "Invalid input received: group_id needs microversion 3.13 or later.".into(),
        ));
    }
    let (source, size) = resolve_source(&svc, &ctx, &r).await?;
    let name = r.name.or(r.display_name);
    let description = r.description.or(r.display_description);
    check_text("name", &name, 255)?;
    check_text("description", &description, 255)?;
    let new = NewVolume {
        size,
        name,
        description,
        metadata: check_metadata(&r.metadata.unwrap_or_default())?,
        volume_type: r.volume_type,
        availability_zone: r.availability_zone,
        source,
        group_id: r.group_id,
    };
    let v = svc.create_volume(&ctx, new).await?;
    let types = svc.type_names().await?;
    let mut view = volume_view(&svc, &ctx, &v, &types, false);
    decorate(&svc, version, &mut [&mut view]).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "volume": view }))).into_response())
}

/// The source of a create (`imageRef`, `snapshot_id`, `source_volid`: one
/// at most) and the volume's size, the source's where none is given.
async fn resolve_source(
    svc: &Svc,
    ctx: &AuthContext,
    r: &CreateVolume,
) -> Result<(Option<crate::sources::Source>, i64)> {
    let given = r
        .size
        .as_ref()
        .map(|s| parse_size(Some(s.clone())))
        .transpose()?;
    let source = match (&r.image_ref, &r.snapshot_id, &r.source_volid) {
        (None, None, None) => return Ok((None, parse_size(r.size.clone())?)),
        (Some(image), None, None) => {
            let (src, size) = svc.image_source(ctx, image, given).await?;
            return Ok((Some(src), size));
        }
        (None, Some(id), None) => svc.snapshot_source(ctx, id).await?,
        (None, None, Some(id)) => svc.volume_source(ctx, id).await?,
        _ => {
            return Err(Error::BadRequest(
                "Invalid input received: only one of imageRef, snapshot_id and source_volid may be given."
                    .into(),
            ))
        }
    };
    let size = VolumeService::size_for(given, &source)?;
    Ok((Some(source), size))
}

/// Filter, sort and page the caller's volumes as Cinder's list does.
async fn listed(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    q: &[(String, String)],
) -> Result<(Vec<Volume>, Option<String>)> {
    check_url_project(ctx, project_id)?;
    svc.authorize(ctx, "volume:get_all", project_id)?;
    let query = ListQuery::new(q);
    let params = &query.params;
    let mut vols = store::volumes::list(&svc.db, query.scope(svc, ctx, project_id)).await?;
    let types = svc.type_names().await?;
    let metadata: Option<Map<String, Value>> = match params.get("metadata") {
        None => None,
        Some(m) => Some(parse_metadata_filter(m)?),
    };
    vols.retain(|v| {
        params
            .get("name")
            .is_none_or(|n| v.name.as_deref() == Some(*n))
            && params.get("status").is_none_or(|s| v.status == *s)
            && params
                .get("availability_zone")
                .is_none_or(|z| v.availability_zone == *z)
            && params
                .get("group_id")
                .is_none_or(|g| v.group_id.as_deref() == Some(*g))
            && params
                .get("bootable")
                .is_none_or(|b| v.bootable == matches!(*b, "true" | "True" | "1"))
            && params.get("volume_type").is_none_or(|t| {
                v.volume_type_id == *t
                    || types.get(&v.volume_type_id).map(String::as_str) == Some(*t)
            })
            && metadata
                .as_ref()
                .is_none_or(|m| m.iter().all(|(k, val)| v.metadata.get(k) == Some(val)))
    });
    sort_volumes(&mut vols, params)?;
    query.page(vols, svc.config.volume.osapi_max_limit, |v| v.id.as_str())
}

/// `metadata={"k": "v"}` (JSON, or the Python dict text the clients send).
pub(crate) fn parse_metadata_filter(m: &str) -> Result<Map<String, Value>> {
    let text = m.replace('\'', "\"");
    serde_json::from_str::<Map<String, Value>>(&text)
        .map_err(|_| Error::BadRequest(format!("Invalid metadata filter: {m}")))
}

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "display_name",
    "size",
    "status",
    "created_at",
    "updated_at",
    "availability_zone",
];

/// `sort=key[:dir],…` or `sort_key`/`sort_dir`; Cinder's default is
/// newest first, then by id.
fn sort_volumes(vols: &mut [Volume], params: &HashMap<&str, &str>) -> Result<()> {
    sort_by_params(vols, params, SORT_KEYS, |v, k| match k {
        "size" => (v.size, String::new()),
        "id" => (0, v.id.clone()),
        "name" | "display_name" => (0, v.name.clone().unwrap_or_default()),
        "status" => (0, v.status.clone()),
        "updated_at" => (0, v.updated_at.clone()),
        "availability_zone" => (0, v.availability_zone.clone()),
        _ => (0, v.created_at.clone()),
    })
}

pub async fn list_summary(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    let (page, next) = listed(&svc, &ctx, &project_id, &q).await?;
    let mut body =
        json!({"volumes": page.iter().map(|v| summary_view(&svc, v)).collect::<Vec<_>>()});
    if let Some(m) = next {
        body["volumes_links"] = ListQuery::new(&q).next_link(&svc, &project_id, "volumes", &m);
    }
    Ok(axum::Json(body).into_response())
}

pub async fn list_detail(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    let (page, next) = listed(&svc, &ctx, &project_id, &q).await?;
    let types = svc.type_names().await?;
    let mut views: Vec<Value> = page
        .iter()
        .map(|v| volume_view(&svc, &ctx, v, &types, true))
        .collect();
    decorate(&svc, version, &mut views.iter_mut().collect::<Vec<_>>()).await?;
    let mut body = json!({ "volumes": views });
    if let Some(m) = next {
        body["volumes_links"] =
            ListQuery::new(&q).next_link(&svc, &project_id, "volumes/detail", &m);
    }
    Ok(axum::Json(body).into_response())
}

/// The volume of a request on one volume, after the URL and read rule checks.
async fn volume_for(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    id: &str,
    action: &str,
) -> Result<Volume> {
    check_url_project(ctx, project_id)?;
    let v = svc.visible_volume(ctx, id).await?;
    svc.authorize(ctx, action, &v.project_id)?;
    Ok(v)
}

pub async fn show_volume(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let v = volume_for(&svc, &ctx, &project_id, &id, "volume:get").await?;
    let types = svc.type_names().await?;
    let mut view = volume_view(&svc, &ctx, &v, &types, true);
    decorate(&svc, version, &mut [&mut view]).await?;
    Ok(axum::Json(json!({ "volume": view })).into_response())
}

pub async fn update_volume(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<UpdateVolumeRequest>,
) -> Result<Response> {
    let mut v = volume_for(&svc, &ctx, &project_id, &id, "volume:update").await?;
    let u = req.volume;
    if let Some(n) = u.name.or(u.display_name) {
        check_text("name", &Some(n.clone()), 255)?;
        v.name = Some(n);
    }
    if let Some(d) = u.description.or(u.display_description) {
        check_text("description", &Some(d.clone()), 255)?;
        v.description = Some(d);
    }
    if let Some(m) = u.metadata {
        v.metadata = check_metadata(&m)?;
    }
    store::volumes::update(&svc.db, &v).await?;
    let v = svc.visible_volume(&ctx, &id).await?;
    let types = svc.type_names().await?;
    let mut view = volume_view(&svc, &ctx, &v, &types, false);
    decorate(&svc, version, &mut [&mut view]).await?;
    Ok(axum::Json(json!({ "volume": view })).into_response())
}

pub async fn delete_volume(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let flag = |name: &str| -> Result<bool> {
        match q.iter().find(|(k, _)| k == name) {
            None => Ok(false),
            Some((_, v)) => bool_param(name, v),
        }
    };
    let cascade = flag("cascade")?;
    // 3.23: `force=true` deletes as `os-force_delete` does (what the SDK
    // and OSC's `volume delete --force` send once they negotiate it).
    let force = version >= (3, 23) && flag("force")?;
    if cascade && force {
        return Err(Error::BadRequest(
            "Invalid input received: cascade and force cannot be used together.".into(),
        ));
    }
    if force {
        svc.force_delete_volume(&ctx, &id).await?;
    } else {
        svc.delete_volume(&ctx, &id, cascade).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A boolean query parameter as Cinder's `get_bool_param` reads it.
fn bool_param(name: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "on" | "y" | "yes" => Ok(true),
        "false" | "f" | "0" | "off" | "n" | "no" => Ok(false),
        _ => Err(Error::BadRequest(format!(
            "Invalid input received: Invalid value '{v}' for parameter {name}: it must be a boolean."
        ))),
    }
}

pub async fn volume_action(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(action): Json<VolumeAction>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    let legacy = match action {
        VolumeAction::Reserve(None | Some(NoArguments {})) => Legacy::Reserve,
        VolumeAction::Unreserve(None | Some(NoArguments {})) => Legacy::Unreserve,
        VolumeAction::BeginDetaching(None | Some(NoArguments {})) => Legacy::BeginDetaching,
        VolumeAction::RollDetaching(None | Some(NoArguments {})) => Legacy::RollDetaching,
        VolumeAction::InitializeConnection(b) => Legacy::InitializeConnection(b),
        VolumeAction::TerminateConnection(b) => Legacy::TerminateConnection(b),
        VolumeAction::Attach(b) => Legacy::Attach(b),
        VolumeAction::Detach(b) => Legacy::Detach(b, false),
        VolumeAction::ForceDetach(b) => Legacy::Detach(b, true),
        other => return volume_action_other(svc, ctx, version, id, other).await,
    };
    attach_actions::run(&svc, &ctx, &id, legacy).await
}

/// The actions on the volume itself (extend, reset status, force delete).
async fn volume_action_other(
    svc: Svc,
    ctx: std::sync::Arc<AuthContext>,
    version: ApiVersion,
    id: String,
    action: VolumeAction,
) -> Result<Response> {
    match action {
        VolumeAction::Extend(e) => {
            let new_size = parse_size_field("new_size", Some(e.new_size))?;
            let v = svc.visible_volume(&ctx, &id).await?;
            if v.status == "in-use" && version >= (3, 42) {
                svc.extend_attached(&ctx, &id, new_size).await?;
            } else {
                svc.extend_volume(&ctx, &id, new_size).await?;
            }
        }
        VolumeAction::ResetStatus(r) => {
            if r.attach_status.as_deref().is_some_and(|a| a != "detached") {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: attach_status {} is not supported: only detached can be set.",
                    r.attach_status.unwrap_or_default()
                )));
            }
            svc.reset_status(&ctx, &id, &r.status).await?;
            if r.attach_status.is_some() {
                // Cinder's reset to `detached` forgets the attachments too.
                svc.clear_attachments(&id).await?;
            }
        }
        VolumeAction::ForceDelete(None | Some(NoArguments {})) => {
            svc.force_delete_volume(&ctx, &id).await?
        }
        VolumeAction::SetBootable(b) => {
            return super::volume_data::set_bootable(&svc, &ctx, &id, b).await
        }
        VolumeAction::UpdateReadonly(r) => {
            return super::volume_data::update_readonly(&svc, &ctx, &id, r).await
        }
        VolumeAction::Retype(r) => return super::volume_data::retype(&svc, &ctx, &id, r).await,
        VolumeAction::UploadImage(u) => {
            return super::volume_data::upload_image(&svc, &ctx, &id, u).await
        }
        // Before 3.68 Cinder has no such action for this version (404).
        VolumeAction::Reimage(_) if version < (3, 68) => {
            return Err(Error::NotFound("The resource could not be found.".into()))
        }
        VolumeAction::Reimage(r) => {
            svc.reimage(&ctx, &id, &r.image_id, r.reimage_reserved)
                .await?
        }
        VolumeAction::SetImageMetadata(_)
        | VolumeAction::UnsetImageMetadata(_)
        | VolumeAction::ShowImageMetadata(None | Some(NoArguments {})) => {
            return image_metadata_action(&svc, &ctx, &id, action).await
        }
        _ => return Err(Error::BadRequest("Unexpected volume action.".into())),
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The `volume_image_metadata` actions: set (merge, answers the whole),
/// unset one key (404 when absent) and show.
async fn image_metadata_action(
    svc: &Svc,
    ctx: &AuthContext,
    id: &str,
    action: VolumeAction,
) -> Result<Response> {
    let rule = match &action {
        VolumeAction::SetImageMetadata(_) => "volume_extension:volume_image_metadata:set",
        VolumeAction::UnsetImageMetadata(_) => "volume_extension:volume_image_metadata:remove",
        _ => "volume_extension:volume_image_metadata:show",
    };
    let mut v = svc.visible_volume(ctx, id).await?;
    svc.authorize(ctx, rule, &v.project_id)?;
    match action {
        VolumeAction::SetImageMetadata(m) => {
            v.image_metadata.extend(check_metadata(&m.metadata)?);
            store::volumes::write_image_metadata(&svc.db, id, &v.image_metadata).await?;
        }
        VolumeAction::UnsetImageMetadata(k) => {
            if v.image_metadata.remove(&k.key).is_none() {
                return Err(Error::NotFound(format!(
                    "Glance metadata for volume {id} with key {} not found.",
                    k.key
                )));
            }
            store::volumes::write_image_metadata(&svc.db, id, &v.image_metadata).await?;
            return Ok(StatusCode::OK.into_response());
        }
        _ => {}
    }
    Ok(axum::Json(json!({"metadata": v.image_metadata})).into_response())
}
