//! `/flavors`: list, detail, show, create and delete (admin), extra specs,
//! and access to private flavors.

use super::body::{BoolOrString, FloatOrString, IntOrString};
use super::{query_get, views, ApiVersion, Query, Svc};
use crate::service::flavors::flavor_not_found;
use crate::store::{self, catalog::Flavor};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

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
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    let fs = listed(&svc, &ctx, &q.0).await?;
    Ok(ok(
        json!({"flavors": fs.iter().map(|f| views::flavor_brief(&svc, f, version)).collect::<Vec<_>>()}),
    ))
}

pub async fn detail(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    let fs = listed(&svc, &ctx, &q.0).await?;
    let list: Vec<Value> = fs
        .iter()
        .map(|f| with_extra_specs(&svc, &ctx, version, f, views::flavor(&svc, f, version)))
        .collect();
    Ok(ok(json!({ "flavors": list })))
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    let f = svc.visible_flavor(&ctx, &id).await?;
    let v = views::flavor(&svc, &f, version);
    Ok(ok(
        json!({"flavor": with_extra_specs(&svc, &ctx, version, &f, v)}),
    ))
}

/// 2.61: a flavor's detail carries its extra specs, to those the extra
/// specs rule lets list them.
fn with_extra_specs(
    svc: &Svc,
    ctx: &AuthContext,
    version: ApiVersion,
    f: &Flavor,
    mut v: Value,
) -> Value {
    if version >= (2, 61) && svc.allows(ctx, "os_compute_api:os-flavor-extra-specs:index") {
        v["extra_specs"] = json!(f.extra_specs);
    }
    v
}

/// Nova's flavor description: at most 65535 printable characters.
fn checked_flavor_description(d: Option<String>) -> Result<Option<String>> {
    if let Some(text) = &d {
        if text.chars().count() > 65535 || text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute description.".into(),
            ));
        }
    }
    Ok(d)
}

/// `PUT /flavors/{id}` (from 2.55).
#[derive(Deserialize, JsonSchema)]
pub struct UpdateFlavorBody {
    flavor: UpdateFlavor,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateFlavor {
    /// The only thing of a flavor that changes; `null` clears it.
    #[schemars(length(max = 65535))]
    description: Option<String>,
}

/// 2.55: a flavor's description is the one thing that may change.
pub async fn update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<UpdateFlavorBody>,
) -> Result<Response> {
    super::consoles::not_before(version, (2, 55))?;
    svc.authorize(&ctx, "os_compute_api:os-flavor-manage:update")?;
    let description = checked_flavor_description(body.flavor.description)?;
    let f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
    store::catalog::set_flavor_description(&svc.db, &f.id, description.as_deref()).await?;
    let f = Flavor { description, ..f };
    let v = views::flavor(&svc, &f, version);
    Ok(ok(
        json!({"flavor": with_extra_specs(&svc, &ctx, version, &f, v)}),
    ))
}

/// Nova's bound on a flavor's sizes (its database's largest integer).
const MAX_INT: i64 = 2_147_483_647;

/// Nova's bound on `rxtx_factor` (the largest single-precision float).
const MAX_RXTX_FACTOR: f64 = 3.40282e38;

/// `POST /flavors`.
#[derive(Deserialize, JsonSchema)]
pub struct CreateFlavorBody {
    flavor: CreateFlavor,
}

#[derive(Deserialize, JsonSchema)]
struct CreateFlavor {
    #[schemars(length(min = 1, max = 255), regex(pattern = r"\S"))]
    name: String,
    /// Chosen (a UUID) when absent.
    #[serde(default)]
    id: Option<IntOrString>,
    /// MiB.
    #[schemars(extend("minimum" = 1, "maximum" = MAX_INT))]
    ram: IntOrString,
    #[schemars(extend("minimum" = 1, "maximum" = MAX_INT))]
    vcpus: IntOrString,
    /// GiB.
    #[schemars(extend("minimum" = 0, "maximum" = MAX_INT))]
    disk: IntOrString,
    #[serde(default, rename = "OS-FLV-EXT-DATA:ephemeral")]
    #[schemars(extend("minimum" = 0, "maximum" = MAX_INT))]
    ephemeral: Option<IntOrString>,
    #[serde(default)]
    #[schemars(extend("minimum" = 0, "maximum" = MAX_INT))]
    swap: Option<IntOrString>,
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = MAX_RXTX_FACTOR))]
    rxtx_factor: Option<FloatOrString>,
    #[serde(default, rename = "os-flavor-access:is_public")]
    is_public: Option<BoolOrString>,
    /// From 2.55.
    #[serde(default)]
    #[schemars(length(max = 65535))]
    description: Option<String>,
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Json(body): Json<CreateFlavorBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-manage:create")?;
    let f = body.flavor;
    if f.description.is_some() && version < (2, 55) {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute flavor. Additional properties are not allowed ('description' was unexpected)".into(),
        ));
    }
    let name = f.name.trim();
    if name.is_empty() || name.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute name.".into(),
        ));
    }
    let id = match &f.id {
        None => uuid::Uuid::new_v4().to_string(),
        Some(id) => id.text(),
    };
    if id.is_empty() || id.len() > 255 {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute id.".into(),
        ));
    }
    let rxtx = match &f.rxtx_factor {
        None => 1.0,
        Some(v) => v
            .float()
            .filter(|x| *x > 0.0 && *x <= MAX_RXTX_FACTOR)
            .ok_or_else(|| {
                Error::BadRequest("Invalid input for field/attribute rxtx_factor.".into())
            })?,
    };
    let optional = |v: &Option<IntOrString>, field: &str| match v {
        None => Ok(0),
        Some(v) => v.int_within(field, 0, MAX_INT),
    };
    let flavor = Flavor {
        id,
        name: name.to_owned(),
        ram: f.ram.int_within("ram", 1, MAX_INT)?,
        vcpus: f.vcpus.int_within("vcpus", 1, MAX_INT)?,
        disk: f.disk.int_within("disk", 0, MAX_INT)?,
        ephemeral: optional(&f.ephemeral, "OS-FLV-EXT-DATA:ephemeral")?,
        swap: optional(&f.swap, "swap")?,
        rxtx_factor: rxtx,
        is_public: f.is_public.as_ref().is_none_or(BoolOrString::truth),
        disabled: false,
        description: checked_flavor_description(f.description)?,
        extra_specs: Default::default(),
    };
    let made = svc.create_flavor(flavor).await?;
    let v = views::flavor(&svc, &made, version);
    Ok(ok(
        json!({"flavor": with_extra_specs(&svc, &ctx, version, &made, v)}),
    ))
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

/// `POST /flavors/{id}/action`: grant or revoke a project's access.
#[derive(Deserialize, JsonSchema)]
pub enum FlavorAccessAction {
    #[serde(rename = "addTenantAccess")]
    Add(TenantArg),
    #[serde(rename = "removeTenantAccess")]
    Remove(TenantArg),
}

#[derive(Deserialize, JsonSchema)]
pub struct TenantArg {
    tenant: String,
}

pub async fn action(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(action): Json<FlavorAccessAction>,
) -> Result<Response> {
    let rule = match &action {
        FlavorAccessAction::Add(_) => "os_compute_api:os-flavor-access:add_tenant_access",
        FlavorAccessAction::Remove(_) => "os_compute_api:os-flavor-access:remove_tenant_access",
    };
    svc.authorize(&ctx, rule)?;
    let f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
    match action {
        FlavorAccessAction::Add(TenantArg { tenant: p }) => {
            // From 2.7; before, Nova records the access on a public
            // flavor too (where it changes nothing).
            if f.is_public && version >= (2, 7) {
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
        }
        FlavorAccessAction::Remove(TenantArg { tenant: p }) => {
            if !store::catalog::remove_flavor_project(&svc.db, &id, &p).await? {
                return Err(Error::NotFound(format!(
                    "Flavor access not found for {id} / {p} combination."
                )));
            }
        }
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

/// An extra spec's value: Nova's schema takes a string, a number or a boolean.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SpecValue {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

/// `POST /flavors/{id}/os-extra_specs`: free-form keys.
#[derive(Deserialize, JsonSchema)]
pub struct ExtraSpecsBody {
    extra_specs: BTreeMap<String, SpecValue>,
}

/// Extra specs as stored (strings), each key and value 1 to 255 characters.
fn spec_map(specs: BTreeMap<String, SpecValue>) -> Result<Vec<(String, String)>> {
    specs
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                SpecValue::Text(s) => s,
                SpecValue::Number(n) => n.to_string(),
                SpecValue::Bool(b) => b.to_string(),
            };
            if k.is_empty() || k.len() > 255 || s.len() > 255 {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {k}."
                )));
            }
            Ok((k, s))
        })
        .collect()
}

/// From 2.86 each spec is validated as Nova does (`api/extra_specs.rs`).
fn validated(pairs: Vec<(String, String)>, version: ApiVersion) -> Result<Vec<(String, String)>> {
    if version >= (2, 86) {
        for (k, v) in &pairs {
            super::extra_specs::validate(k, v)?;
        }
    }
    Ok(pairs)
}

pub async fn specs_merge(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<ExtraSpecsBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-extra-specs:create")?;
    let pairs = validated(spec_map(body.extra_specs)?, version)?;
    let mut f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
    f.extra_specs.extend(pairs);
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
    version: ApiVersion,
    Path((id, key)): Path<(String, String)>,
    // `{"<key>": value}`: the key is the one of the path.
    Json(body): Json<BTreeMap<String, SpecValue>>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-flavor-extra-specs:update")?;
    let pairs = validated(spec_map(body)?, version)?;
    let mut f = store::catalog::get_flavor(&svc.db, &id)
        .await?
        .ok_or_else(|| flavor_not_found(&id))?;
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
