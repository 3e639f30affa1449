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
use axum::routing::{get, post, put};
use axum::Router;
use ferrostack_core::auth::{auth_layer, SharedValidator};
use ferrostack_core::http::{not_found_fallback, service_layer, ServiceLayer};
use ferrostack_core::ErrorStyle;
use std::collections::HashMap;
use std::sync::Arc;

pub type Svc = Arc<ImageService>;
pub type Query = axum::extract::Query<Vec<(String, String)>>;

/// The image API. `validator` checks tokens (in-process identity in the
/// all-in-one, the identity API elsewhere); `auth_uri` is announced on 401.
pub fn router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    let json_limit = svc.config.image.max_request_body_size;
    // Data routes stream their bodies and enforce their own limits.
    let data = Router::new()
        .route(
            "/v2/images/{id}/file",
            put(data::upload).get(data::download),
        )
        .route("/v2/images/{id}/stage", put(data::stage))
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/", get(discovery::root))
        .route("/versions", get(discovery::versions))
        .route("/v2", get(discovery::v2))
        .route("/v2/", get(discovery::v2))
        .route("/v2/images", get(images::list).post(images::create))
        .route(
            "/v2/images/{id}",
            get(images::show)
                .patch(images::update)
                .delete(images::delete),
        )
        .route("/v2/images/{id}/import", post(data::import))
        .route(
            "/v2/images/{id}/actions/deactivate",
            post(images::deactivate),
        )
        .route(
            "/v2/images/{id}/actions/reactivate",
            post(images::reactivate),
        )
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(images::add_tag).delete(images::delete_tag),
        )
        .route(
            "/v2/images/{id}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/v2/images/{id}/members/{member}",
            get(members::show)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/v2/images/{id}/tasks", get(tasks::image_tasks))
        .route("/v2/tasks", get(tasks::list).post(tasks::create))
        .route("/v2/tasks/{id}", get(tasks::show))
        .route("/v2/schemas/image", get(schemas::image))
        .route("/v2/schemas/metadefs/{name}", get(schemas::metadefs))
        .route("/v2/schemas/images", get(schemas::images))
        .route("/v2/schemas/member", get(schemas::member))
        .route("/v2/schemas/members", get(schemas::members))
        .route("/v2/info/import", get(discovery::import_info))
        .route("/v2/info/stores", get(discovery::stores_info))
        .route("/v2/info/usage", get(discovery::usage))
        .merge(metadefs::routes())
        .layer(DefaultBodyLimit::max(json_limit))
        .merge(data)
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
