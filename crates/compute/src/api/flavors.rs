//! `/flavors`: list, detail, show, create and delete (admin), extra specs,
//! and access to private flavors.

use super::{query_get, views, Query, Svc};
use crate::service::flavors::flavor_not_found;
use crate::store::{self, catalog::Flavor};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

async fn listed(svc: &Svc, ctx: &AuthContext, q: &[(String, String)]) -> Result<Vec<Flavor>> {
    let is_public = match query_get(q, "is_public")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("true") | Some("t") | Some("1") | Some("yes") => Some(true),
        Some("none") => None,
        Some(_) => Some(false),
    };
    let mut out = svc.list_flavors(ctx, is_public).await?;
    if let Some(r) = query_get(q, "minRam") {
        let r: i64 = r
            .parse()
            .map_err(|_| Error::BadRequest(format!("Invalid minRam filter [{r}]")))?;
        out.retain(|f| f.ram >= r);
    }
    if let Some(d) = query_get(q, "minDisk") {
        let d: i64 = d
            .parse()
            .map_err(|_| Error::BadRequest(format!("Invalid minDisk filter [{d}]")))?;
        out.retain(|f| f.disk >= d);
    }
    let limit = query_get(q, "limit")
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| Error::BadRequest("Invalid limit".into()))
        })
        .transpose()?;
    let (page, _) = ferrostack_core::pagination::paginate(
        out,
        |f| f.id.as_str(),
        query_get(q, "marker"),
        limit,
    )
    .map_err(|m| Error::BadRequest(format!("marker [{}] not found", m.0)))?;
    Ok(page)
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    let fs = listed(&svc, &ctx, &q.0).await?;
    Ok(ok(
        json!({"flavors": fs.iter().map(|f| views::flavor_brief(&svc, f)).collect::<Vec<_>>()}),
    ))
}

pub async fn detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    let fs = listed(&svc, &ctx, &q.0).await?;
    Ok(ok(
        json!({"flavors": fs.iter().map(|f| views::flavor(&svc, f)).collect::<Vec<_>>()}),
    ))
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let f = svc.visible_flavor(&ctx, &id).await?;
    Ok(ok(json!({"flavor": views::flavor(&svc, &f)})))
}

fn int_field(f: &serde_json::Map<String, Value>, k: &str, required: bool, min: i64) -> Result<i64> {
    match f.get(k) {
        None if !required => Ok(0),
        None => Err(Error::BadRequest(format!(
            "Invalid input for field/attribute flavor. '{k}' is a required property"
        ))),
        Some(v) => {
            let n = v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| Error::BadRequest(format!("Invalid input for field/attribute {k}. Value: {v}. {v} is not of type 'integer', 'string'")))?;
            if n < min {
                return Err(Error::BadRequest(format!("Invalid input for field/attribute {k}. Value: {n}. {n} is less than the minimum of {min}")));
            }
            Ok(n)
        }
    }
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-manage:create")?;
    let f = body
        .get("flavor")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field/attribute flavor. 'flavor' is a required property".into(),
            )
        })?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= 255)
        .ok_or_else(|| Error::BadRequest("Invalid input for field/attribute name.".into()))?;
    let id = match f.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute id.".into(),
            ))
        }
    };
    let rxtx = match f.get("rxtx_factor") {
        None => 1.0,
        Some(v) => v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|x| *x > 0.0)
            .ok_or_else(|| {
                Error::BadRequest("Invalid input for field/attribute rxtx_factor.".into())
            })?,
    };
    let is_public = match f.get("os-flavor-access:is_public") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "t" | "1" | "yes" | "on"
        ),
        Some(_) => {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute os-flavor-access:is_public.".into(),
            ))
        }
    };
    let flavor = Flavor {
        id,
        name: name.to_owned(),
        ram: int_field(f, "ram", true, 1)?,
        vcpus: int_field(f, "vcpus", true, 1)?,
        disk: int_field(f, "disk", true, 0)?,
        ephemeral: int_field(f, "OS-FLV-EXT-DATA:ephemeral", false, 0)?,
        swap: int_field(f, "swap", false, 0)?,
        rxtx_factor: rxtx,
        is_public,
        disabled: false,
        description: None,
        extra_specs: Default::default(),
    };
    let made = svc.create_flavor(flavor).await?;
    Ok(ok(json!({"flavor": views::flavor(&svc, &made)})))
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-manage:delete")?;
    if !store::catalog::delete_flavor(&svc.db, &id).await? {
        return Err(flavor_not_found(&id));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn access(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-access")?;
    let f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
    if f.is_public {
        return Err(Error::NotFound(
            "Access list not available for public flavors.".into(),
        ));
    }
    let list: Vec<Value> = store::catalog::flavor_projects(&svc.db, &id)
        .await?
        .into_iter()
        .map(|p| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    Ok(ok(json!({"flavor_access": list})))
}

/// `addTenantAccess` / `removeTenantAccess`.
pub async fn action(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let rule = if body.get("removeTenantAccess").is_some() {
        "os_compute_api:os-flavor-access:remove_tenant_access"
    } else {
        "os_compute_api:os-flavor-access:add_tenant_access"
    };
    svc.authorize(&ctx, rule)?;
    let f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
    let tenant = |k: &str| {
        body[k]["tenant"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for field/attribute {k}. 'tenant' is a required property"
                ))
            })
    };
    if body.get("addTenantAccess").is_some() {
        let p = tenant("addTenantAccess")?;
        if f.is_public {
            return Err(Error::Conflict(
                "Can not add access to a public flavor.".into(),
            ));
        }
        if store::catalog::flavor_projects(&svc.db, &id)
            .await?
            .contains(&p)
        {
            return Err(Error::Conflict(format!(
                "Flavor access already exists for flavor {id} and project {p} combination."
            )));
        }
        store::catalog::add_flavor_project(&svc.db, &id, &p).await?;
    } else if body.get("removeTenantAccess").is_some() {
        let p = tenant("removeTenantAccess")?;
        if !store::catalog::remove_flavor_project(&svc.db, &id, &p).await? {
            return Err(Error::NotFound(format!(
                "Flavor access not found for {id} / {p} combination."
            )));
        }
    } else {
        return Err(Error::BadRequest("There is no such action".into()));
    }
    let list: Vec<Value> = store::catalog::flavor_projects(&svc.db, &id)
        .await?
        .into_iter()
        .map(|p| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    Ok(ok(json!({"flavor_access": list})))
}

pub async fn specs(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-extra-specs:index")?;
    let f = svc.visible_flavor(&ctx, &id).await?;
    Ok(ok(json!({"extra_specs": f.extra_specs})))
}

fn spec_map(body: &Value, key: &str) -> Result<Vec<(String, String)>> {
    let obj = body.get(key).and_then(Value::as_object).ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid input for field/attribute {key}. '{key}' is a required property"
        ))
    })?;
    obj.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for field/attribute {k}. Value must be a string."
                    )))
                }
            };
            if k.is_empty() || k.len() > 255 || s.len() > 255 {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {k}."
                )));
            }
            Ok((k.clone(), s))
        })
        .collect()
}

pub async fn specs_merge(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-extra-specs:create")?;
    let mut f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
    f.extra_specs.extend(spec_map(&body, "extra_specs")?);
    store::catalog::set_extra_specs(&svc.db, &id, &f.extra_specs).await?;
    Ok(ok(json!({"extra_specs": f.extra_specs})))
}

pub async fn spec_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-extra-specs:show")?;
    let f = svc.visible_flavor(&ctx, &id).await?;
    let v = f.extra_specs.get(&key).ok_or_else(|| {
        Error::NotFound(format!("Flavor {id} has no extra specs with key {key}."))
    })?;
    Ok(ok(json!({ key: v })))
}

pub async fn spec_set(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-extra-specs:update")?;
    let mut f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
    let wrapped = json!({ "spec": body });
    let pairs = spec_map(&wrapped, "spec")?;
    if pairs.len() != 1 {
        return Err(Error::BadRequest(
            "Request body contains too many items.".into(),
        ));
    }
    if pairs[0].0 != key {
        return Err(Error::BadRequest("Request body and URI mismatch".into()));
    }
    f.extra_specs.insert(key.clone(), pairs[0].1.clone());
    store::catalog::set_extra_specs(&svc.db, &id, &f.extra_specs).await?;
    Ok(ok(json!({ key: pairs[0].1 })))
}

pub async fn spec_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-extra-specs:delete")?;
    let mut f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
    if f.extra_specs.remove(&key).is_none() {
        return Err(Error::NotFound(format!(
            "Flavor {id} has no extra specs with key {key}."
        )));
    }
    store::catalog::set_extra_specs(&svc.db, &id, &f.extra_specs).await?;
    Ok(StatusCode::OK.into_response())
}
