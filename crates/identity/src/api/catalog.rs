//! `/v3/regions`, `/v3/services` and `/v3/endpoints`.

use super::*;
use crate::store::catalog::{Endpoint, Region, Service};
use crate::store::{self, new_id};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;

pub fn routes() -> Router<Svc> {
    Router::new()
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

async fn new_region(svc: &Svc, id: Option<String>, body: &Value) -> Result<Region> {
    let obj = entity(body, "region")?;
    let id = match id {
        Some(i) => i,
        None => opt_str(obj, "id", "region")?.unwrap_or_else(new_id),
    };
    if id.is_empty() || id.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field 'region.id': 1 to 255 characters.".into(),
        ));
    }
    let parent = opt_str(obj, "parent_region_id", "region")?;
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
        description: opt_str(obj, "description", "region")?.unwrap_or_default(),
        parent_region_id: parent,
        extra: extra_of(obj, &["description", "parent_region_id"], json!({})),
    };
    store::catalog::insert_region(&svc.db, &r).await?;
    Ok(r)
}

async fn create_region(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_region", json!({}))?;
    let r = new_region(&svc, None, &body).await?;
    Ok(created(json!({"region": region_view(&svc, &r)})))
}

async fn put_region(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_region", json!({}))?;
    let r = new_region(&svc, Some(id), &body).await?;
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
    Json(body): Json<Value>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_region", json!({}))?;
    let obj = entity(&body, "region")?;
    let mut r = get_region(&svc, &id).await?;
    if obj.contains_key("description") {
        r.description = opt_str(obj, "description", "region")?.unwrap_or_default();
    }
    if obj.contains_key("parent_region_id") {
        let parent = opt_str(obj, "parent_region_id", "region")?;
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
    r.extra = extra_of(obj, &["description", "parent_region_id"], r.extra.clone());
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
    Json(body): Json<Value>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_service", json!({}))?;
    let obj = entity(&body, "service")?;
    let service_type = req_str(obj, "type", "service")?;
    if service_type.is_empty() || service_type.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field 'service.type': 1 to 255 characters.".into(),
        ));
    }
    let s = Service {
        id: new_id(),
        service_type,
        enabled: opt_bool(obj, "enabled", "service")?.unwrap_or(true),
        extra: extra_of(obj, &["type", "enabled"], json!({})),
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
    Json(body): Json<Value>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_service", json!({}))?;
    let obj = entity(&body, "service")?;
    let mut s = get_service(&svc, &id).await?;
    if let Some(t) = opt_str(obj, "type", "service")? {
        s.service_type = t;
    }
    if let Some(e) = opt_bool(obj, "enabled", "service")? {
        s.enabled = e;
    }
    let mut extra = s.extra.clone();
    if let Some(m) = extra.as_object_mut() {
        for (k, v) in obj {
            if k != "type" && k != "enabled" && k != "id" && k != "links" {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    s.extra = extra;
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

const ENDPOINT_KNOWN: &[&str] = &[
    "interface",
    "region",
    "region_id",
    "service_id",
    "url",
    "enabled",
];

fn interface_field(obj: &Map<String, Value>, required: bool) -> Result<Option<String>> {
    let i = if required {
        Some(req_str(obj, "interface", "endpoint")?)
    } else {
        opt_str(obj, "interface", "endpoint")?
    };
    if let Some(i) = &i {
        if !matches!(i.as_str(), "public" | "internal" | "admin") {
            return Err(Error::BadRequest(format!(
                "Invalid input for field 'endpoint.interface': '{i}' is not one of 'public', 'internal', 'admin'."
            )));
        }
    }
    Ok(i)
}

fn url_field(obj: &Map<String, Value>, required: bool) -> Result<Option<String>> {
    let u = if required {
        Some(req_str(obj, "url", "endpoint")?)
    } else {
        opt_str(obj, "url", "endpoint")?
    };
    if let Some(u) = &u {
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 8 {
            return Err(Error::BadRequest(format!(
                "Invalid input for field 'endpoint.url': '{u}' is not a valid URL."
            )));
        }
    }
    Ok(u)
}

async fn endpoint_region(svc: &Svc, obj: &Map<String, Value>) -> Result<Option<Option<String>>> {
    let region = match (
        opt_str(obj, "region_id", "endpoint")?,
        opt_str(obj, "region", "endpoint")?,
    ) {
        (Some(r), _) | (None, Some(r)) => Some(r),
        (None, None) => None,
    };
    match region {
        None if obj.contains_key("region_id") || obj.contains_key("region") => Ok(Some(None)),
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
    Json(body): Json<Value>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_endpoint", json!({}))?;
    let obj = entity(&body, "endpoint")?;
    let service_id = req_str(obj, "service_id", "endpoint")?;
    get_service(&svc, &service_id).await.map_err(|_| {
        Error::BadRequest(format!(
            "Invalid input for field 'endpoint.service_id': service {service_id} does not exist."
        ))
    })?;
    let e = Endpoint {
        id: new_id(),
        service_id,
        interface: interface_field(obj, true)?.expect("required"),
        url: url_field(obj, true)?.expect("required"),
        region_id: endpoint_region(&svc, obj).await?.flatten(),
        enabled: opt_bool(obj, "enabled", "endpoint")?.unwrap_or(true),
        extra: extra_of(obj, ENDPOINT_KNOWN, json!({})),
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
    Json(body): Json<Value>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_endpoint", json!({}))?;
    let obj = entity(&body, "endpoint")?;
    let mut e = get_endpoint(&svc, &id).await?;
    if let Some(s) = opt_str(obj, "service_id", "endpoint")? {
        get_service(&svc, &s).await.map_err(|_| {
            Error::BadRequest(format!(
                "Invalid input for field 'endpoint.service_id': service {s} does not exist."
            ))
        })?;
        e.service_id = s;
    }
    if let Some(i) = interface_field(obj, false)? {
        e.interface = i;
    }
    if let Some(u) = url_field(obj, false)? {
        e.url = u;
    }
    if let Some(r) = endpoint_region(&svc, obj).await? {
        e.region_id = r;
    }
    if let Some(en) = opt_bool(obj, "enabled", "endpoint")? {
        e.enabled = en;
    }
    e.extra = extra_of(obj, ENDPOINT_KNOWN, e.extra.clone());
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
