//! Cinder v3 HTTP API: version discovery, microversion negotiation, and
//! the resources under `/v3/{project_id}`.

mod attach_actions;
mod attachments;
mod backups;
mod discovery;
mod encryption;
mod fields;
mod group_types;
mod groups;
mod hosts;
mod listing;
mod messages;
mod metadata;
pub mod microversion;
mod qos;
mod quotas;
mod services;
mod snapshots;
mod transfers;
mod type_access;
mod types;
mod volume_data;
mod volumes;

use crate::service::VolumeService;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use ferrostack_core::auth::{auth_layer, AuthContext, SharedValidator};
use ferrostack_core::http::{not_found_fallback, service_layer, ServiceLayer};
use ferrostack_core::openapi::{get, ApiInfo, ApiRouter, HeaderParam};
use ferrostack_core::{Error, ErrorStyle, Result};
use std::sync::Arc;

pub type Svc = Arc<VolumeService>;
pub type Query = axum::extract::Query<Vec<(String, String)>>;

/// The oldest and newest microversions this API honours
/// (`microversion::MIN`/`MAX`; what each version changes here is in
/// docs/volume-microversions.md).
pub const MIN_VERSION: &str = "3.0";
pub const MAX_VERSION: &str = "3.71";

/// What the OpenAPI document says about this API.
pub const INFO: ApiInfo = ApiInfo {
    title: "Ferrostack Block Storage API",
    version: MAX_VERSION,
    description: "OpenStack Block Storage (Cinder) v3: volumes and their metadata, volume \
                  types and extra specs, quota sets, limits and availability zones, \
                  attachments and the attach actions, services and pools.",
    errors: ErrorStyle::Nova,
};

/// Every route of the volume API, documented, without state or layers.
pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v3/{project_id}/volumes", volumes::collection())
        .route("/v3/{project_id}/volumes/detail", get(volumes::list_detail))
        .route(
            "/v3/{project_id}/volumes/summary",
            get(volume_data::summary),
        )
        .merge(snapshots::routes())
        .merge(backups::routes())
        .merge(transfers::routes())
        .merge(type_access::routes())
        .merge(volumes::routes())
        .merge(types::routes())
        .merge(encryption::routes())
        .merge(quotas::routes())
        .merge(qos::routes())
        .merge(attachments::routes())
        .merge(services::routes())
        .merge(hosts::routes())
        .merge(messages::routes())
        .merge(group_types::routes())
        .merge(groups::routes())
        .route(
            "/v3/{project_id}/extensions",
            get(discovery::list_extensions),
        )
        .header_on_every_operation(HeaderParam {
            name: "OpenStack-API-Version",
            required: false,
            description: "`volume X.Y` or `volume latest`: the microversion asked for",
        })
        .route("/", get(discovery::version_choices))
        .route("/v3", get(discovery::show_v3))
        .route("/v3/", get(discovery::show_v3))
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn openapi_document() -> serde_json::Value {
    routes().document(&INFO)
}

/// The API on its port: [`routes`] with `GET /openapi.json`, the service's
/// 404, state, body limit, microversions, token validation and the common
/// service layer.
pub fn router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    let limit = svc.config.volume.max_request_body_size;
    routes()
        .into_router(&INFO)
        .fallback(not_found_fallback)
        .with_state(svc)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(microversion::middleware))
        .layer(axum::middleware::from_fn_with_state(
            ferrostack_core::auth::AuthLayer {
                validator,
                service_type: "block-storage",
            },
            auth_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ServiceLayer::new("volume", ErrorStyle::Nova, auth_uri),
            service_layer,
        ))
}

/// The project of the URL must be the token's, as Cinder's URL mapper
/// requires (an admin acts on other projects through `all_tenants` or the
/// quota paths, never by rewriting the URL).
pub fn check_url_project(ctx: &AuthContext, project_id: &str) -> Result<()> {
    if ctx.project_id.as_deref() == Some(project_id) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Malformed request url: URL's project_id '{project_id}' doesn't match Context's project_id '{}'",
            ctx.project_id.as_deref().unwrap_or("None")
        )))
    }
}

/// `http://host:8776/v3/{project_id}` for links.
pub fn project_url(svc: &VolumeService, project_id: &str) -> String {
    format!(
        "{}/v3/{project_id}",
        svc.config.public_url(svc.config.volume.port)
    )
}
