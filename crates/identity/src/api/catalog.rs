//! `/v3/regions`, `/v3/services` and `/v3/endpoints`.

use super::*;
use crate::store::catalog::{Endpoint, Region, Service};
use crate::store::{self, new_id};
use axum::extract::{Path, State};
use axum::response::Response;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use schemars::JsonSchema;
use serde::Deserialize;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/regions", get(list_regions).post(create_region))
        .route(
            "/regions/{id}",
            get(show_region)
                .patch(update_region)
                .delete(delete_region)
                .put(put_region),
        )
        .route("/services", get(list_services).post(create_service))
        .route(
            "/services/{id}",
            get(show_service)
                .patch(update_service)
                .delete(delete_service),
        )
        .route("/endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/endpoints/{id}",
            get(show_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
}

// ----- regions -----

/// `POST /v3/regions`, `PUT /v3/regions/{id}`, `PATCH /v3/regions/{id}`.
#[derive(Deserialize, JsonSchema)]
struct RegionRequest {
    region: RegionFields,
}

#[derive(Deserialize, JsonSchema)]
struct RegionFields {
    /// A new region's id (`POST` only; `PUT` names it in the path).
    id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    parent_region_id: Option<Option<String>>,
    /// Attributes Keystone keeps as given.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `POST /v3/services`, `PATCH /v3/services/{id}`.
#[derive(Deserialize, JsonSchema)]
struct ServiceRequest {
    service: ServiceFields,
}

#[derive(Deserialize, JsonSchema)]
struct ServiceFields {
    #[serde(rename = "type")]
    service_type: Option<String>,
    enabled: Option<bool>,
    /// `name`, `description` and anything else, kept as given.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `POST /v3/endpoints`, `PATCH /v3/endpoints/{id}`.
#[derive(Deserialize, JsonSchema)]
struct EndpointRequest {
    endpoint: EndpointFields,
}

#[derive(Deserialize, JsonSchema)]
struct EndpointFields {
    service_id: Option<String>,
    interface: Option<String>,
    url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    region_id: Option<Option<String>>,
    /// The pre-v3.2 spelling of `region_id`.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    region: Option<Option<String>>,
    enabled: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn region_view(svc: &IdentityService, r: &Region) -> Value {
    with_extra(
        json!({"id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
               "links": links(svc, &format!("regions/{}", r.id))}),
        &r.extra,
    )
}

async fn get_region(svc: &IdentityService, id: &str) -> Result<Region> {
    store::catalog::get_region(&svc.db, id)
        .await?
        .ok_or_else(|| Error::not_found("region", id))
}

async fn list_regions(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_regions", json!({}))?;
    let views: Vec<Value> = store::catalog::list_regions(&svc.db)
        .await?
        .iter()
        .filter(|r| {
            q.get("parent_region_id")
                .is_none_or(|p| r.parent_region_id.as_ref() == Some(p))
        })
        .map(|r| region_view(&svc, r))
        .collect();
    Ok(ok(
        json!({"regions": views, "links": list_links(&svc, "regions")}),
    ))
}

async fn new_region(svc: &Svc, id: Option<String>, new: RegionFields) -> Result<Region> {
    let id = match id {
        Some(i) => i,
        None => new.id.unwrap_or_else(new_id),
    };
    if id.is_empty() || id.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field 'region.id': 1 to 255 characters.".into(),
        ));
    }
    let parent = new.parent_region_id.flatten();
    if let Some(p) = &parent {
        get_region(svc, p).await.map_err(|_| {
            Error::BadRequest(format!(
                "Invalid input for field 'region.parent_region_id': region {p} does not exist."
            ))
        })?;
    }
    if store::catalog::get_region(&svc.db, &id).await?.is_some() {
        return Err(Error::Conflict(format!(
            "Conflict occurred attempting to store region - Duplicate ID, {id}."
        )));
    }
    let r = Region {
        id,
        description: new.description.flatten().unwrap_or_default(),
        parent_region_id: parent,
        extra: extra_of(&new.extra, &[], json!({})),
    };
    store::catalog::insert_region(&svc.db, &r).await?;
    Ok(r)
}

async fn create_region(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(RegionRequest { region: new }): Json<RegionRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_region", json!({}))?;
    let r = new_region(&svc, None, new).await?;
    Ok(created(json!({"region": region_view(&svc, &r)})))
}

async fn put_region(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(RegionRequest { region: new }): Json<RegionRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_region", json!({}))?;
    let r = new_region(&svc, Some(id), new).await?;
    Ok(created(json!({"region": region_view(&svc, &r)})))
}

async fn show_region(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_region", json!({}))?;
    let r = get_region(&svc, &id).await?;
    Ok(ok(json!({"region": region_view(&svc, &r)})))
}

async fn update_region(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(RegionRequest { region: changes }): Json<RegionRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_region", json!({}))?;
    let mut r = get_region(&svc, &id).await?;
    if let Some(description) = changes.description {
        r.description = description.unwrap_or_default();
    }
    if let Some(parent) = changes.parent_region_id {
        if let Some(p) = &parent {
            if p == &id {
                return Err(Error::BadRequest(
                    "A region cannot be its own parent.".into(),
                ));
            }
            get_region(&svc, p).await.map_err(|_| {
                Error::BadRequest(format!(
                    "Invalid input for field 'region.parent_region_id': region {p} does not exist."
                ))
            })?;
        }
        r.parent_region_id = parent;
    }
    r.extra = extra_of(&changes.extra, &[], r.extra.clone());
    store::catalog::update_region(&svc.db, &r).await?;
    svc.invalidate_catalog();
    Ok(ok(json!({"region": region_view(&svc, &r)})))
}

async fn delete_region(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_region", json!({}))?;
    get_region(&svc, &id).await?;
    if store::catalog::list_regions(&svc.db)
        .await?
        .iter()
        .any(|r| r.parent_region_id.as_deref() == Some(&id))
    {
        return Err(Error::Forbidden(format!(
            "Cannot delete region {id}: it has child regions."
        )));
    }
    if store::catalog::list_endpoints(&svc.db)
        .await?
        .iter()
        .any(|e| e.region_id.as_deref() == Some(&id))
    {
        return Err(Error::Forbidden(format!(
            "Cannot delete region {id}: endpoints refer to it."
        )));
    }
    store::catalog::delete_region(&svc.db, &id).await?;
    svc.invalidate_catalog();
    Ok(no_content())
}

// ----- services -----

fn service_view(svc: &IdentityService, s: &Service) -> Value {
    with_extra(
        json!({"id": s.id, "type": s.service_type, "enabled": s.enabled,
               "links": links(svc, &format!("services/{}", s.id))}),
        &s.extra,
    )
}

async fn get_service(svc: &IdentityService, id: &str) -> Result<Service> {
    store::catalog::list_services(&svc.db)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::not_found("service", id))
}

async fn list_services(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_services", json!({}))?;
    let views: Vec<Value> = store::catalog::list_services(&svc.db)
        .await?
        .iter()
        .filter(|s| q.get("type").is_none_or(|t| &s.service_type == t))
        .filter(|s| q.get("name").is_none_or(|n| s.name() == n))
        .map(|s| service_view(&svc, s))
        .collect();
    Ok(ok(
        json!({"services": views, "links": list_links(&svc, "services")}),
    ))
}

async fn create_service(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(ServiceRequest { service: new }): Json<ServiceRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_service", json!({}))?;
    let service_type = required(new.service_type, "service", "type")?;
    if service_type.is_empty() || service_type.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field 'service.type': 1 to 255 characters.".into(),
        ));
    }
    let s = Service {
        id: new_id(),
        service_type,
        enabled: new.enabled.unwrap_or(true),
        extra: extra_of(&new.extra, &[], json!({})),
    };
    store::catalog::insert_service(&svc.db, &s).await?;
    svc.invalidate_catalog();
    Ok(created(json!({"service": service_view(&svc, &s)})))
}

async fn show_service(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_service", json!({}))?;
    let s = get_service(&svc, &id).await?;
    Ok(ok(json!({"service": service_view(&svc, &s)})))
}

async fn update_service(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(ServiceRequest { service: changes }): Json<ServiceRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_service", json!({}))?;
    let mut s = get_service(&svc, &id).await?;
    if let Some(t) = changes.service_type {
        s.service_type = t;
    }
    if let Some(e) = changes.enabled {
        s.enabled = e;
    }
    s.extra = extra_of(&changes.extra, &[], s.extra.clone());
    store::catalog::update_service(&svc.db, &s).await?;
    svc.invalidate_catalog();
    Ok(ok(json!({"service": service_view(&svc, &s)})))
}

async fn delete_service(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_service", json!({}))?;
    get_service(&svc, &id).await?;
    store::catalog::delete_service(&svc.db, &id).await?;
    svc.invalidate_catalog();
    Ok(no_content())
}

// ----- endpoints -----

fn endpoint_view(svc: &IdentityService, e: &Endpoint) -> Value {
    with_extra(
        json!({"id": e.id, "interface": e.interface, "region": e.region_id, "region_id": e.region_id,
               "service_id": e.service_id, "url": e.url, "enabled": e.enabled,
               "links": links(svc, &format!("endpoints/{}", e.id))}),
        &e.extra,
    )
}

fn checked_interface(i: String) -> Result<String> {
    if !matches!(i.as_str(), "public" | "internal" | "admin") {
        return Err(Error::BadRequest(format!(
            "Invalid input for field 'endpoint.interface': '{i}' is not one of 'public', 'internal', 'admin'."
        )));
    }
    Ok(i)
}

fn checked_url(u: String) -> Result<String> {
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 8 {
        return Err(Error::BadRequest(format!(
            "Invalid input for field 'endpoint.url': '{u}' is not a valid URL."
        )));
    }
    Ok(u)
}

/// The region an endpoint request names (`region_id`, or the older
/// `region`): `None` when it names none, `Some(None)` when it clears it.
async fn endpoint_region(svc: &Svc, fields: &EndpointFields) -> Result<Option<Option<String>>> {
    let region = fields
        .region_id
        .clone()
        .flatten()
        .or_else(|| fields.region.clone().flatten());
    match region {
        None if fields.region_id.is_some() || fields.region.is_some() => Ok(Some(None)),
        None => Ok(None),
        Some(r) => {
            // As Keystone: an endpoint naming an unknown region creates it.
            if store::catalog::get_region(&svc.db, &r).await?.is_none() {
                store::catalog::insert_region(
                    &svc.db,
                    &Region {
                        id: r.clone(),
                        description: String::new(),
                        parent_region_id: None,
                        extra: json!({}),
                    },
                )
                .await?;
            }
            Ok(Some(Some(r)))
        }
    }
}

async fn list_endpoints(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_endpoints", json!({}))?;
    let views: Vec<Value> = store::catalog::list_endpoints(&svc.db)
        .await?
        .iter()
        .filter(|e| q.get("interface").is_none_or(|i| &e.interface == i))
        .filter(|e| q.get("service_id").is_none_or(|s| &e.service_id == s))
        .filter(|e| {
            q.get("region_id")
                .is_none_or(|r| e.region_id.as_ref() == Some(r))
        })
        .map(|e| endpoint_view(&svc, e))
        .collect();
    Ok(ok(
        json!({"endpoints": views, "links": list_links(&svc, "endpoints")}),
    ))
}

async fn create_endpoint(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(EndpointRequest { endpoint: new }): Json<EndpointRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_endpoint", json!({}))?;
    let service_id = required(new.service_id.clone(), "endpoint", "service_id")?;
    get_service(&svc, &service_id).await.map_err(|_| {
        Error::BadRequest(format!(
            "Invalid input for field 'endpoint.service_id': service {service_id} does not exist."
        ))
    })?;
    let e = Endpoint {
        id: new_id(),
        service_id,
        interface: checked_interface(required(new.interface.clone(), "endpoint", "interface")?)?,
        url: checked_url(required(new.url.clone(), "endpoint", "url")?)?,
        region_id: endpoint_region(&svc, &new).await?.flatten(),
        enabled: new.enabled.unwrap_or(true),
        extra: extra_of(&new.extra, &[], json!({})),
    };
    store::catalog::insert_endpoint(&svc.db, &e).await?;
    svc.invalidate_catalog();
    Ok(created(json!({"endpoint": endpoint_view(&svc, &e)})))
}

async fn get_endpoint(svc: &IdentityService, id: &str) -> Result<Endpoint> {
    store::catalog::list_endpoints(&svc.db)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| Error::not_found("endpoint", id))
}

async fn show_endpoint(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_endpoint", json!({}))?;
    let e = get_endpoint(&svc, &id).await?;
    Ok(ok(json!({"endpoint": endpoint_view(&svc, &e)})))
}

async fn update_endpoint(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(EndpointRequest { endpoint: changes }): Json<EndpointRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_endpoint", json!({}))?;
    let mut e = get_endpoint(&svc, &id).await?;
    if let Some(s) = changes.service_id.clone() {
        get_service(&svc, &s).await.map_err(|_| {
            Error::BadRequest(format!(
                "Invalid input for field 'endpoint.service_id': service {s} does not exist."
            ))
        })?;
        e.service_id = s;
    }
    if let Some(i) = changes.interface.clone() {
        e.interface = checked_interface(i)?;
    }
    if let Some(u) = changes.url.clone() {
        e.url = checked_url(u)?;
    }
    if let Some(r) = endpoint_region(&svc, &changes).await? {
        e.region_id = r;
    }
    if let Some(en) = changes.enabled {
        e.enabled = en;
    }
    e.extra = extra_of(&changes.extra, &[], e.extra.clone());
    store::catalog::update_endpoint(&svc.db, &e).await?;
    svc.invalidate_catalog();
    Ok(ok(json!({"endpoint": endpoint_view(&svc, &e)})))
}

async fn delete_endpoint(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_endpoint", json!({}))?;
    get_endpoint(&svc, &id).await?;
    store::catalog::delete_endpoint(&svc.db, &id).await?;
    svc.invalidate_catalog();
    Ok(no_content())
}
