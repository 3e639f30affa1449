//! Host aggregates (`os-aggregates`), admin only: CRUD, `add_host`,
//! `remove_host` and `set_metadata`. An aggregate's `availability_zone`
//! metadata becomes the zone of its hosts' compute services.

use super::body::present;
use super::{ApiVersion, Svc};
use crate::scheduler::COMPUTE_BINARY;
use crate::store::aggregates::{self, Aggregate};
use crate::store::hosts;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Nova's naive timestamps with microseconds.
fn naive(ts: Option<&str>) -> Value {
    match ts.and_then(ferrostack_core::time::parse) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::Null,
    }
}

/// An aggregate's fields; from 2.41 its `uuid` too (the id placement
/// knows it by).
fn base_view(a: &Aggregate, version: ApiVersion) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(a.id));
    if version >= (2, 41) {
        m.insert("uuid".into(), json!(a.uuid));
    }
    m.insert("name".into(), json!(a.name));
    m.insert("availability_zone".into(), json!(a.availability_zone()));
    m.insert("created_at".into(), naive(Some(&a.created_at)));
    m.insert("updated_at".into(), naive(a.updated_at.as_deref()));
    m.insert("deleted".into(), json!(false));
    m.insert("deleted_at".into(), Value::Null);
    m
}

fn full_view(a: &Aggregate, version: ApiVersion) -> Value {
    let mut m = base_view(a, version);
    m.insert("hosts".into(), json!(a.hosts));
    m.insert("metadata".into(), json!(a.metadata));
    Value::Object(m)
}

fn one(a: &Aggregate, version: ApiVersion) -> Response {
    axum::Json(json!({"aggregate": full_view(a, version)})).into_response()
}

fn bad(field: &str, why: &str) -> Error {
    Error::BadRequest(format!("Invalid input for field/attribute {field}. {why}"))
}

/// Nova's `parameter_types.name`-like check: 1..=255 characters, no
/// leading or trailing whitespace.
fn check_name(field: &str, s: &str) -> Result<String> {
    if s.is_empty() || s.chars().count() > 255 {
        return Err(bad(
            field,
            &format!("Value: {s}. The length must be between 1 and 255."),
        ));
    }
    if s.trim() != s {
        return Err(bad(
            field,
            &format!("Value: {s}. Leading or trailing whitespace is not allowed."),
        ));
    }
    Ok(s.to_owned())
}

/// A zone a request sets (`Some(Some)`), clears (`Some(None)`) or leaves.
fn zone_of(v: Option<Option<&str>>) -> Result<Option<Option<String>>> {
    match v {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(z)) => {
            let z = check_name("availability_zone", z)?;
            if z.contains(':') {
                return Err(bad(
                    "availability_zone",
                    "Value contains ':', which is not allowed.",
                ));
            }
            Ok(Some(Some(z)))
        }
    }
}

fn aggregate_id(id: &str) -> Result<i64> {
    id.parse()
        .map_err(|_| Error::NotFound(format!("Aggregate {id} could not be found.")))
}

async fn load(svc: &Svc, id: &str) -> Result<Aggregate> {
    aggregates::get(&svc.db, aggregate_id(id)?)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Aggregate {id} could not be found.")))
}

/// `POST /os-aggregates` and `PUT /os-aggregates/{id}`.
#[derive(Deserialize, JsonSchema)]
pub struct AggregateBody {
    aggregate: AggregateFields,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AggregateFields {
    /// 1 to 255 characters, no leading or trailing whitespace.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^\S(.*\S)?$"))]
    name: Option<String>,
    /// `null` clears the zone; a zone is named as an aggregate is, without `:`.
    #[serde(default, deserialize_with = "present")]
    #[schemars(
        with = "Option<String>",
        length(min = 1, max = 255),
        regex(pattern = r"^[^\s:]([^:\n]*[^\s:])?$")
    )]
    availability_zone: Option<Option<String>>,
}

impl AggregateFields {
    fn zone(&self) -> Result<Option<Option<String>>> {
        zone_of(self.availability_zone.as_ref().map(Option::as_deref))
    }
}

/// `POST /os-aggregates/{id}/action`.
#[derive(Deserialize, JsonSchema)]
pub enum AggregateAction {
    #[serde(rename = "add_host")]
    AddHost { host: String },
    #[serde(rename = "remove_host")]
    RemoveHost { host: String },
    /// Free-form keys; a null value removes the key.
    #[serde(rename = "set_metadata")]
    SetMetadata {
        metadata: BTreeMap<String, Option<String>>,
    },
}

/// Keep the zone of every compute service in step with the aggregates.
async fn sync_zones(svc: &Svc, hosts: &[String]) -> Result<()> {
    for h in hosts {
        aggregates::sync_zone(&svc.db, h, &svc.config.compute.default_availability_zone).await?;
    }
    Ok(())
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-aggregates:index")?;
    let list: Vec<Value> = aggregates::list(&svc.db)
        .await?
        .iter()
        .map(|a| full_view(a, version))
        .collect();
    Ok(axum::Json(json!({ "aggregates": list })).into_response())
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Json(body): Json<AggregateBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-aggregates:create")?;
    let a = body.aggregate;
    let name = check_name(
        "name",
        a.name
            .as_deref()
            .ok_or_else(|| bad("name", "'name' is a required property"))?,
    )?;
    let mut metadata = BTreeMap::new();
    if let Some(Some(z)) = a.zone()? {
        metadata.insert("availability_zone".to_owned(), z);
    }
    let created = aggregates::create(&svc.db, &name, &metadata).await?;
    Ok(
        axum::Json(json!({"aggregate": Value::Object(base_view(&created, version))}))
            .into_response(),
    )
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-aggregates:show")?;
    Ok(one(&load(&svc, &id).await?, version))
}

pub async fn update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<AggregateBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-aggregates:update")?;
    let u = body.aggregate;
    if u.name.is_none() && u.availability_zone.is_none() {
        return Err(bad("aggregate", "{} does not have enough properties"));
    }
    let mut a = load(&svc, &id).await?;
    if let Some(n) = &u.name {
        a.name = check_name("name", n)?;
    }
    match u.zone()? {
        Some(Some(z)) => {
            a.metadata.insert("availability_zone".into(), z);
        }
        Some(None) => {
            a.metadata.remove("availability_zone");
        }
        None => {}
    }
    let saved = aggregates::save(&svc.db, &a).await?;
    sync_zones(&svc, &saved.hosts).await?;
    Ok(one(&saved, version))
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-aggregates:delete")?;
    let a = load(&svc, &id).await?;
    if !a.hosts.is_empty() {
        return Err(Error::BadRequest(format!(
            "Invalid aggregate action delete for aggregate {}. Reason: Host aggregate is not empty.",
            a.id
        )));
    }
    aggregates::delete(&svc.db, a.id).await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `POST /os-aggregates/{id}/action`: `add_host`, `remove_host`, `set_metadata`.
pub async fn action(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(action): Json<AggregateAction>,
) -> Result<Response> {
    let saved = match action {
        AggregateAction::AddHost { host } => {
            svc.authorize(&ctx, "os_compute_api:os-aggregates:add_host")?;
            add_host(&svc, &id, &host).await?
        }
        AggregateAction::RemoveHost { host } => {
            svc.authorize(&ctx, "os_compute_api:os-aggregates:remove_host")?;
            remove_host(&svc, &id, &host).await?
        }
        AggregateAction::SetMetadata { metadata } => {
            svc.authorize(&ctx, "os_compute_api:os-aggregates:set_metadata")?;
            set_metadata(&svc, &id, metadata).await?
        }
    };
    Ok(one(&saved, version))
}

/// Put a compute host in the aggregate (a host is in one zone at most).
async fn add_host(svc: &Svc, id: &str, host: &str) -> Result<Aggregate> {
    let host = check_name("host", host)?;
    let mut a = load(svc, id).await?;
    if hosts::get_service(&svc.db, &host, COMPUTE_BINARY)
        .await?
        .is_none()
    {
        return Err(Error::NotFound(format!(
            "Compute host {host} could not be found."
        )));
    }
    if a.hosts.contains(&host) {
        return Err(Error::Conflict(format!(
            "Aggregate {} already has host {host}.",
            a.id
        )));
    }
    // A host may be in several aggregates, but not in two zones.
    if let (Some(z), Some(cur)) = (
        a.availability_zone(),
        aggregates::zone_of(&svc.db, &host).await?,
    ) {
        if z != cur {
            return Err(Error::Conflict(format!(
                "Cannot add host to aggregate {}. Reason: One or more hosts already in availability zone(s) ['{cur}'].",
                a.id
            )));
        }
    }
    a.hosts.push(host.clone());
    let saved = aggregates::save(&svc.db, &a).await?;
    sync_zones(svc, &[host]).await?;
    Ok(saved)
}

async fn remove_host(svc: &Svc, id: &str, host: &str) -> Result<Aggregate> {
    let host = check_name("host", host)?;
    let mut a = load(svc, id).await?;
    if !a.hosts.contains(&host) {
        return Err(Error::NotFound(format!(
            "Cannot remove host {host} in aggregate {}",
            a.id
        )));
    }
    a.hosts.retain(|h| *h != host);
    let saved = aggregates::save(&svc.db, &a).await?;
    sync_zones(svc, &[host]).await?;
    Ok(saved)
}

/// Merge metadata into the aggregate's; a null value removes its key.
async fn set_metadata(
    svc: &Svc,
    id: &str,
    metadata: BTreeMap<String, Option<String>>,
) -> Result<Aggregate> {
    let mut a = load(svc, id).await?;
    for (k, v) in metadata {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(bad("metadata", &format!("Invalid key {k}.")));
        }
        match v {
            None => {
                a.metadata.remove(&k);
            }
            Some(s) if s.chars().count() <= 255 => {
                if k == "availability_zone" {
                    zone_of(Some(Some(&s)))?;
                }
                a.metadata.insert(k, s);
            }
            Some(s) => {
                return Err(bad(
                    "metadata",
                    &format!("Value: {s}. Must be a string of at most 255 characters or null."),
                ))
            }
        }
    }
    let saved = aggregates::save(&svc.db, &a).await?;
    sync_zones(svc, &saved.hosts).await?;
    Ok(saved)
}

/// 2.81's `POST /os-aggregates/{id}/images`: the images to have in the
/// image cache of every host of the aggregate.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheImagesBody {
    #[schemars(length(min = 1))]
    cache: Vec<CachedImageRef>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CachedImageRef {
    #[schemars(extend("format" = "uuid"))]
    id: String,
}

/// Checks the request as Nova's API does (the ids well formed and
/// distinct, the aggregate there) and answers 202 at once; each host's
/// agent then fetches the images into its cache, one host after the
/// other, and an `aggregate.cache_images.progress` notification per host
/// says which images it cached and which failed (Nova's conductor and
/// computes do the same; whether an image exists is learnt there too).
pub async fn cache_images(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<CacheImagesBody>,
) -> Result<Response> {
    super::consoles::not_before(version, (2, 81))?;
    svc.authorize(&ctx, "compute:aggregates:images")?;
    let aggregate: i64 = id.parse().map_err(|_| {
        Error::BadRequest(format!(
            "Invalid input for field/attribute id. Value: {id}. '{id}' is not an integer"
        ))
    })?;
    if body.cache.is_empty() {
        return Err(bad("cache", "[] is too short"));
    }
    let mut images = Vec::with_capacity(body.cache.len());
    for image in body.cache {
        if uuid::Uuid::parse_str(&image.id).is_err() {
            let v = &image.id;
            return Err(bad("id", &format!("Value: {v}. '{v}' is not a 'uuid'")));
        }
        images.push(image.id);
    }
    let mut distinct = images.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != images.len() {
        return Err(Error::BadRequest("Duplicate images in request".into()));
    }
    let a = aggregates::get(&svc.db, aggregate)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Aggregate {id} could not be found.")))?;
    tokio::spawn(precache(svc.clone(), a, images));
    Ok(axum::http::StatusCode::ACCEPTED.into_response())
}

/// Ask each host's agent for each image, then report the host's outcome.
async fn precache(svc: Svc, a: Aggregate, images: Vec<String>) {
    use ferrostack_compute_agent::protocol::AgentRequest;
    let publisher = format!("nova-conductor:{}", svc.config.common.host);
    let about = json!({"id": a.id, "uuid": a.uuid, "name": a.name});
    let notify = |event: &'static str, payload: Value| {
        let (svc, publisher) = (svc.clone(), publisher.clone());
        async move {
            if let Err(e) = svc.bus.notify(&publisher, event, payload).await {
                tracing::warn!(event, error = %e, "notification not sent");
            }
        }
    };
    notify("aggregate.cache_images.start", json!({"aggregate": about})).await;
    let total = a.hosts.len();
    for (index, host) in a.hosts.iter().enumerate() {
        let (mut cached, mut failed) = (Vec::new(), Vec::new());
        for image in &images {
            let request = AgentRequest::CacheImage {
                image_id: image.clone(),
            };
            match svc.agent(host, request).await {
                Ok(_) => cached.push(image.clone()),
                Err(e) => {
                    tracing::warn!(%host, %image, error = %e, "image not pre-cached");
                    failed.push(image.clone());
                }
            }
        }
        let progress = json!({"aggregate": about, "host": host, "index": index + 1,
            "total": total, "images_cached": cached, "images_failed": failed});
        notify("aggregate.cache_images.progress", progress).await;
    }
    notify("aggregate.cache_images.end", json!({"aggregate": about})).await;
}
