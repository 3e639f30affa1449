//! `/v3/{project_id}/volumes`: create, list (filters, sort, pagination),
//! detail, show, update, delete, and the volume's metadata.

use super::{check_url_project, project_url, Query, Svc};
use crate::service::{NewVolume, VolumeService};
use crate::store::{self, volumes::Volume};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiMethodRouter, ApiRouter};
use ferrostack_core::pagination::paginate;
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
        .route(
            "/v3/{project_id}/volumes/{id}/metadata",
            get(show_metadata)
                .post(merge_metadata)
                .put(replace_metadata),
        )
        .route(
            "/v3/{project_id}/volumes/{id}/metadata/{key}",
            get(show_metadata_item)
                .put(set_metadata_item)
                .delete(delete_metadata_item),
        )
}

/// A size as Cinder takes it: a whole number, or its digits as a string.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Size {
    Number(i64),
    Digits(String),
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateVolumeRequest {
    pub volume: CreateVolume,
}

/// What `POST /volumes` takes. The sources a volume may be made from
/// (image, snapshot, volume, backup) are accepted as `null` only, as the
/// clients send them; this service does not make volumes from them yet.
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
}

#[derive(Deserialize, JsonSchema)]
pub struct ResetStatus {
    pub status: String,
    /// Accepted as `detached` only: nothing is attached yet.
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

#[derive(Deserialize, JsonSchema)]
pub struct MetadataBody {
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct MetaItemBody {
    pub meta: BTreeMap<String, String>,
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

/// Metadata keys and values as Cinder limits them (1–255, ≤255 chars).
fn check_metadata(m: &BTreeMap<String, String>) -> Result<Map<String, Value>> {
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > 255 || v.chars().count() > 255 {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Metadata property key {k} or its value is empty or longer than 255 characters."
            )));
        }
    }
    Ok(m.iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect())
}

fn check_text(field: &str, v: &Option<String>, max: usize) -> Result<()> {
    match v {
        Some(s) if s.chars().count() > max => Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value is longer than {max} characters."
        ))),
        _ => Ok(()),
    }
}

/// The detailed view of a volume, as Cinder 3.0 shows it; the tenant and
/// host attributes only for callers their rules allow.
pub fn volume_view(
    svc: &VolumeService,
    ctx: &AuthContext,
    v: &Volume,
    types: &HashMap<String, String>,
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
        "snapshot_id": null,
        "source_volid": null,
        "consistencygroup_id": null,
        "replication_status": null,
        "migration_status": null,
        "links": [{"rel": "self", "href": link}],
    });
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
    view
}

fn summary_view(svc: &VolumeService, v: &Volume) -> Value {
    let link = format!("{}/volumes/{}", project_url(svc, &v.project_id), v.id);
    json!({"id": v.id, "name": v.name, "links": [{"rel": "self", "href": link}]})
}

pub async fn create_volume(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateVolumeRequest>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume:create", &project_id)?;
    let r = req.volume;
    let sources = [
        ("imageRef", &r.image_ref),
        ("snapshot_id", &r.snapshot_id),
        ("source_volid", &r.source_volid),
        ("backup_id", &r.backup_id),
        ("consistencygroup_id", &r.consistencygroup_id),
        ("group_id", &r.group_id),
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
    let name = r.name.or(r.display_name);
    let description = r.description.or(r.display_description);
    check_text("name", &name, 255)?;
    check_text("description", &description, 255)?;
    let new = NewVolume {
        size: parse_size(r.size)?,
        name,
        description,
        metadata: check_metadata(&r.metadata.unwrap_or_default())?,
        volume_type: r.volume_type,
        availability_zone: r.availability_zone,
    };
    let v = svc.create_volume(&ctx, new).await?;
    let types = svc.type_names().await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"volume": volume_view(&svc, &ctx, &v, &types)})),
    )
        .into_response())
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
    let params: HashMap<&str, &str> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let all_tenants = params
        .get("all_tenants")
        .is_some_and(|v| !matches!(*v, "0" | "false" | "False"))
        && svc.is_admin(ctx);
    let scope = if all_tenants {
        params.get("project_id").copied()
    } else {
        Some(project_id)
    };
    let mut vols = store::volumes::list(&svc.db, scope).await?;
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
    sort_volumes(&mut vols, &params)?;
    if let Some(off) = params.get("offset") {
        let n: usize = off
            .parse()
            .map_err(|_| Error::BadRequest(format!("Invalid offset value: {off}")))?;
        vols = vols.into_iter().skip(n).collect();
    }
    let max = svc.config.volume.osapi_max_limit;
    let limit = match params.get("limit") {
        None => max,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n >= 0 => (n as usize).min(max),
            _ => return Err(Error::BadRequest(format!("Invalid limit value: {l}"))),
        },
    };
    let (page, more) = paginate(
        vols,
        |v| v.id.as_str(),
        params.get("marker").copied(),
        Some(limit),
    )
    .map_err(|m| Error::BadRequest(format!("Marker {} could not be found.", m.0)))?;
    let next = (more && !page.is_empty()).then(|| page[page.len() - 1].id.clone());
    Ok((page, next))
}

/// `metadata={"k": "v"}` (JSON, or the Python dict text the clients send).
fn parse_metadata_filter(m: &str) -> Result<Map<String, Value>> {
    let text = m.replace('\'', "\"");
    serde_json::from_str::<Map<String, Value>>(&text)
        .map_err(|_| Error::BadRequest(format!("Invalid metadata filter: {m}")))
}

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "size",
    "status",
    "created_at",
    "updated_at",
    "availability_zone",
];

/// `sort=key[:dir],…` or `sort_key`/`sort_dir`; Cinder's default is
/// newest first, then by id.
fn sort_volumes(vols: &mut [Volume], params: &HashMap<&str, &str>) -> Result<()> {
    let mut keys: Vec<(String, bool)> = Vec::new();
    if let Some(sort) = params.get("sort") {
        for part in sort.split(',') {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            keys.push((k.trim().to_owned(), d.trim() != "asc"));
        }
    } else if let Some(k) = params.get("sort_key") {
        keys.push((
            k.to_string(),
            params.get("sort_dir").copied() != Some("asc"),
        ));
    }
    for (k, _) in &keys {
        if !SORT_KEYS.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid sort key {k}"
            )));
        }
    }
    if let Some(d) = params.get("sort_dir") {
        if !matches!(*d, "asc" | "desc") {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid sort dir {d}"
            )));
        }
    }
    keys.push(("created_at".into(), true));
    keys.push(("id".into(), true));
    let field = |v: &Volume, k: &str| -> (i64, String) {
        match k {
            "size" => (v.size, String::new()),
            "id" => (0, v.id.clone()),
            "name" => (0, v.name.clone().unwrap_or_default()),
            "status" => (0, v.status.clone()),
            "updated_at" => (0, v.updated_at.clone()),
            "availability_zone" => (0, v.availability_zone.clone()),
            _ => (0, v.created_at.clone()),
        }
    };
    vols.sort_by(|a, b| {
        for (k, desc) in &keys {
            let o = field(a, k).cmp(&field(b, k));
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(())
}

fn next_link(
    svc: &Svc,
    project_id: &str,
    path: &str,
    q: &[(String, String)],
    marker: &str,
) -> Value {
    let mut query: Vec<String> = q
        .iter()
        .filter(|(k, _)| k != "marker")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    query.push(format!("marker={marker}"));
    json!([{"rel": "next", "href": format!("{}/{path}?{}", project_url(svc, project_id), query.join("&"))}])
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
        body["volumes_links"] = next_link(&svc, &project_id, "volumes", &q, &m);
    }
    Ok(axum::Json(body).into_response())
}

pub async fn list_detail(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    let (page, next) = listed(&svc, &ctx, &project_id, &q).await?;
    let types = svc.type_names().await?;
    let mut body = json!({"volumes": page.iter().map(|v| volume_view(&svc, &ctx, v, &types)).collect::<Vec<_>>()});
    if let Some(m) = next {
        body["volumes_links"] = next_link(&svc, &project_id, "volumes/detail", &q, &m);
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
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let v = volume_for(&svc, &ctx, &project_id, &id, "volume:get").await?;
    let types = svc.type_names().await?;
    Ok(axum::Json(json!({"volume": volume_view(&svc, &ctx, &v, &types)})).into_response())
}

pub async fn update_volume(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
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
    Ok(axum::Json(json!({"volume": volume_view(&svc, &ctx, &v, &types)})).into_response())
}

pub async fn delete_volume(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.delete_volume(&ctx, &id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn volume_action(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(action): Json<VolumeAction>,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    match action {
        VolumeAction::Extend(e) => {
            let new_size = parse_size_field("new_size", Some(e.new_size))?;
            svc.extend_volume(&ctx, &id, new_size).await?;
        }
        VolumeAction::ResetStatus(r) => {
            if r.attach_status.as_deref().is_some_and(|a| a != "detached") {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: attach_status {} is not supported: no volume is attached here yet.",
                    r.attach_status.unwrap_or_default()
                )));
            }
            svc.reset_status(&ctx, &id, &r.status).await?;
        }
        VolumeAction::ForceDelete(None | Some(NoArguments {})) => {
            svc.force_delete_volume(&ctx, &id).await?
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn show_metadata(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let v = volume_for(&svc, &ctx, &project_id, &id, "volume:get_volume_metadata").await?;
    Ok(axum::Json(json!({"metadata": v.metadata})).into_response())
}

/// Write a volume's metadata; `replace` drops the keys not given.
async fn write_metadata(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    id: &str,
    given: &BTreeMap<String, String>,
    replace: bool,
) -> Result<Map<String, Value>> {
    let action = if replace {
        "volume:update_volume_metadata"
    } else {
        "volume:create_volume_metadata"
    };
    let mut v = volume_for(svc, ctx, project_id, id, action).await?;
    let given = check_metadata(given)?;
    if replace {
        v.metadata = given;
    } else {
        v.metadata.extend(given);
    }
    store::volumes::update(&svc.db, &v).await?;
    Ok(v.metadata)
}

pub async fn merge_metadata(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<MetadataBody>,
) -> Result<Response> {
    let m = write_metadata(&svc, &ctx, &project_id, &id, &req.metadata, false).await?;
    Ok(axum::Json(json!({"metadata": m})).into_response())
}

pub async fn replace_metadata(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<MetadataBody>,
) -> Result<Response> {
    let m = write_metadata(&svc, &ctx, &project_id, &id, &req.metadata, true).await?;
    Ok(axum::Json(json!({"metadata": m})).into_response())
}

fn metadata_not_found(id: &str, key: &str) -> Error {
    Error::NotFound(format!("Volume {id} has no metadata with key {key}."))
}

pub async fn show_metadata_item(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let v = volume_for(&svc, &ctx, &project_id, &id, "volume:get_volume_metadata").await?;
    let value = v
        .metadata
        .get(&key)
        .ok_or_else(|| metadata_not_found(&id, &key))?;
    Ok(axum::Json(json!({"meta": {key: value}})).into_response())
}

pub async fn set_metadata_item(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<MetaItemBody>,
) -> Result<Response> {
    if req.meta.len() != 1 {
        return Err(Error::BadRequest(
            "Request body contains too many items.".into(),
        ));
    }
    if !req.meta.contains_key(&key) {
        return Err(Error::BadRequest("Request body and URI mismatch".into()));
    }
    write_metadata(&svc, &ctx, &project_id, &id, &req.meta, false).await?;
    Ok(axum::Json(json!({"meta": req.meta})).into_response())
}

pub async fn delete_metadata_item(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let mut v = volume_for(
        &svc,
        &ctx,
        &project_id,
        &id,
        "volume:delete_volume_metadata",
    )
    .await?;
    if v.metadata.remove(&key).is_none() {
        return Err(metadata_not_found(&id, &key));
    }
    store::volumes::update(&svc.db, &v).await?;
    Ok(StatusCode::OK.into_response())
}
