//! Identity HTTP API: routes and request/response shapes. Handlers are thin:
//! extract → authenticate → policy → service/store → view.

mod app_creds;
mod assignments;
mod auth;
mod catalog;
mod credentials;
mod discovery;
mod domain_config;
mod endpoint_groups;
mod groups;
mod policies;
mod projects;
mod roles;
mod users;
mod v2;
mod views;

use crate::service::IdentityService;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use ferrostack_core::auth::{auth_layer, AuthContext, SharedValidator};
use ferrostack_core::http::{not_found_fallback, service_layer, ServiceLayer};
use ferrostack_core::openapi::{get, ApiInfo, ApiRouter};
use ferrostack_core::{Error, ErrorStyle, Result};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub type Svc = Arc<IdentityService>;
pub type Query = axum::extract::Query<HashMap<String, String>>;

/// What the OpenAPI document says about this service.
fn api_info() -> ApiInfo {
    ApiInfo {
        title: "Ferrostack Identity (Keystone v3)",
        version: "3.14",
        description: "Keystone-compatible identity: v3, the v2.0 calls legacy clients make, and version discovery.",
        errors: ErrorStyle::Keystone,
    }
}

/// Every operation of the identity API (v3, v2.0 and discovery), without
/// state or layers: the served router and the OpenAPI document are both
/// built from it, so neither can miss a route of the other.
pub fn routes() -> ApiRouter<Svc> {
    let v3 = ApiRouter::new()
        .route("/", get(discovery::show_v3))
        .merge(auth::routes())
        .merge(users::routes())
        .merge(projects::routes())
        .merge(roles::routes())
        .merge(assignments::routes())
        .merge(groups::routes())
        .merge(catalog::routes())
        .merge(app_creds::routes())
        .merge(credentials::routes())
        .merge(policies::routes())
        .merge(domain_config::routes())
        .merge(endpoint_groups::routes());
    ApiRouter::new()
        .route("/", get(discovery::list_versions))
        .route("/v3/", get(discovery::show_v3))
        .nest("/v3", v3)
        .route("/v2.0", get(discovery::show_v2))
        .route("/v2.0/", get(discovery::show_v2))
        .merge(v2::routes())
}

/// The OpenAPI 3.1 document of [`routes`], as `GET /openapi.json` serves it.
pub fn openapi_document() -> Value {
    routes().document(&api_info())
}

/// The identity API router with its state and the shared layers; it also
/// answers `GET /openapi.json` (without a token).
pub fn router(svc: Svc) -> Router {
    let validator: SharedValidator = Arc::new(crate::service::LocalValidator(svc.clone()));
    let limit = svc.config.identity.max_request_body_size;
    let auth_uri = base_url(&svc);
    routes()
        .into_router(&api_info())
        .fallback(not_found_fallback)
        .with_state(svc)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            ferrostack_core::auth::AuthLayer {
                validator,
                service_type: "identity",
            },
            auth_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ServiceLayer::new("identity", ErrorStyle::Keystone, &auth_uri),
            service_layer,
        ))
}

// ----- small shared helpers for the handlers -----

pub fn base_url(svc: &IdentityService) -> String {
    format!(
        "{}/v3",
        svc.config.public_url(svc.config.identity.public_port)
    )
}

pub fn links(svc: &IdentityService, path: &str) -> Value {
    json!({"self": format!("{}/{}", base_url(svc), path)})
}

pub fn list_links(svc: &IdentityService, path: &str) -> Value {
    json!({"self": format!("{}/{}", base_url(svc), path), "previous": null, "next": null})
}

/// Policy check with a JSON target (`{"target": …}` is added here).
pub fn enforce(
    svc: &IdentityService,
    ctx: &AuthContext,
    action: &str,
    target: Value,
) -> Result<()> {
    svc.policy
        .enforce(action, ctx, &json!({ "target": target }))
}

/// For updates: absent → `None`, `null` → `Some(None)`, a value →
/// `Some(Some(v))`, so "leave as is" and "clear" stay apart
/// (`#[serde(default, deserialize_with = "nullable")]`). schemars does not
/// see `deserialize_with`: such a field states its schema as what it
/// accepts, `#[schemars(with = "Option<T>")]` (absent, `null` or a `T`).
pub fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// A required attribute of a request's entity (`entity.field`).
pub fn required<T>(value: Option<T>, entity: &str, field: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid input for field '{entity}.{field}': '{field}' is a required property."
        ))
    })
}

/// A name as Keystone's schema wants it: 1 to `max` characters, not blank.
pub fn checked_name(name: String, entity: &str, max: usize) -> Result<String> {
    if name.trim().is_empty() || name.chars().count() > max {
        return Err(Error::BadRequest(format!(
            "Invalid input for field '{entity}.name': the name must be 1 to {max} characters and not blank."
        )));
    }
    Ok(name)
}

/// The attributes not in `known`, kept and echoed back as Keystone does.
pub fn extra_of(obj: &Map<String, Value>, known: &[&str], mut base: Value) -> Value {
    if !base.is_object() {
        base = json!({});
    }
    let m = base.as_object_mut().expect("object");
    for (k, v) in obj {
        if !known.contains(&k.as_str()) && k != "links" && k != "id" {
            m.insert(k.clone(), v.clone());
        }
    }
    base
}

/// `?enabled=false` style filters.
pub fn query_bool(q: &HashMap<String, String>, key: &str) -> Option<bool> {
    q.get(key).map(|v| {
        !matches!(
            v.to_ascii_lowercase().as_str(),
            "0" | "false" | "no" | "off"
        )
    })
}

/// Add free-form attributes to a view without overriding real ones.
pub fn with_extra(mut v: Value, extra: &Value) -> Value {
    crate::store::merge_extra(&mut v, extra);
    v
}

pub fn no_content() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::http::StatusCode::NO_CONTENT.into_response()
}

pub fn created(v: Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::CREATED, axum::Json(v)).into_response()
}

pub fn ok(v: Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(v).into_response()
}

/// A domain id from a request, defaulting to the caller's domain and then `default`.
pub fn default_domain(ctx: &AuthContext) -> String {
    ctx.domain_id
        .clone()
        .or_else(|| ctx.project_domain_id.clone())
        .unwrap_or_else(|| "default".into())
}
