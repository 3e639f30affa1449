//! Glance v2 HTTP API.

mod data;
mod discovery;
mod images;
mod members;
mod metadefs;
mod schemas;
mod tasks;

use crate::service::ImageService;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use ferrostack_core::auth::{auth_layer, SharedValidator};
use ferrostack_core::http::{not_found_fallback, service_layer, ServiceLayer};
use ferrostack_core::openapi::{get, ApiInfo, ApiRouter};
use ferrostack_core::ErrorStyle;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub type Svc = Arc<ImageService>;
pub type Query = axum::extract::Query<Vec<(String, String)>>;

/// What the OpenAPI document says about this API.
pub const INFO: ApiInfo = ApiInfo {
    title: "Ferrostack Image API",
    version: "2.15",
    description: "OpenStack Image (Glance) v2: images and their data, members, tags, \
                  glance-direct import, tasks, metadata definitions and schemas.",
    errors: ErrorStyle::Glance,
};

/// Every route of the image API, documented, without state or layers: the
/// served router ([`router`]) and the document ([`openapi_document`]) are
/// both built from it, so they cannot differ.
pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/", get(discovery::version_choices))
        .route("/versions", get(discovery::list_versions))
        .route("/v2", get(discovery::show_v2_version))
        .route("/v2/", get(discovery::show_v2_version))
        .merge(images::routes())
        .merge(data::routes())
        .merge(members::routes())
        .merge(tasks::routes())
        .merge(schemas::routes())
        .route("/v2/info/import", get(discovery::show_import_info))
        .route("/v2/info/stores", get(discovery::list_stores))
        .route("/v2/info/usage", get(discovery::show_usage))
        .merge(metadefs::routes())
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn openapi_document() -> Value {
    routes().document(&INFO)
}

/// The image API. `validator` checks tokens (in-process identity in the
/// all-in-one, the identity API elsewhere); `auth_uri` is announced on 401.
pub fn router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    // JSON bodies are limited here; the data routes lift the limit on
    // themselves (the innermost `DefaultBodyLimit` wins), as they stream
    // their bodies and enforce their own.
    let json_limit = svc.config.image.max_request_body_size;
    routes()
        .into_router(&INFO)
        .layer(DefaultBodyLimit::max(json_limit))
        .fallback(not_found_fallback)
        .with_state(svc)
        .layer(axum::middleware::from_fn_with_state(
            ferrostack_core::auth::AuthLayer {
                validator,
                service_type: "image",
            },
            auth_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ServiceLayer::new("image", ErrorStyle::Glance, auth_uri),
            service_layer,
        ))
}

/// Query parameters as a multimap (Glance repeats `tag=`).
pub fn params(q: &[(String, String)]) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in q {
        m.entry(k.clone()).or_default().push(v.clone());
    }
    m
}
