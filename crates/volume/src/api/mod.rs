//! Cinder v3 HTTP API: version discovery, microversion negotiation, and
//! the resources under `/v3/{project_id}`.

mod discovery;
mod quotas;
mod types;
mod volumes;

use crate::service::VolumeService;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_core::auth::{auth_layer, AuthContext, SharedValidator};
use ferrostack_core::http::{not_found_fallback, service_layer, ServiceLayer};
use ferrostack_core::openapi::{get, ApiInfo, ApiRouter, HeaderParam};
use ferrostack_core::{Error, ErrorStyle, Result};
use std::sync::Arc;

pub type Svc = Arc<VolumeService>;
pub type Query = axum::extract::Query<Vec<(String, String)>>;

/// The oldest and newest microversions this API honours. Only 3.0 is
/// advertised: no later microversion's change is implemented yet.
pub const MIN_VERSION: &str = "3.0";
pub const MAX_VERSION: &str = "3.0";

/// What the OpenAPI document says about this API.
pub const INFO: ApiInfo = ApiInfo {
    title: "Ferrostack Block Storage API",
    version: MAX_VERSION,
    description: "OpenStack Block Storage (Cinder) v3: volumes and their metadata, volume \
                  types and extra specs, quota sets, limits and availability zones.",
    errors: ErrorStyle::Nova,
};

/// Every route of the volume API, documented, without state or layers.
pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v3/{project_id}/volumes", volumes::collection())
        .route("/v3/{project_id}/volumes/detail", get(volumes::list_detail))
        .merge(volumes::routes())
        .merge(types::routes())
        .merge(quotas::routes())
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
        .layer(axum::middleware::from_fn(microversion))
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

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Negotiate the microversion of a `/v3` request from
/// `OpenStack-API-Version: volume X.Y`: 400 when malformed, 406 outside
/// `[MIN_VERSION, MAX_VERSION]` (as Cinder), and echo the version served.
async fn microversion(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v3/") {
        return next.run(req).await;
    }
    let requested = req
        .headers()
        .get("openstack-api-version")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|part| {
                let mut it = part.split_whitespace();
                (it.next()? == "volume").then(|| it.next().unwrap_or("").to_owned())
            })
        });
    if let Some(refused) = requested.and_then(|v| refuse_version(&v)) {
        return with_version_headers(refused.into_response());
    }
    with_version_headers(next.run(req).await)
}

/// Why a requested version is not served, if it is not.
fn refuse_version(v: &str) -> Option<Error> {
    if v.eq_ignore_ascii_case("latest") {
        return None;
    }
    let Some(ver) = parse_version(v) else {
        return Some(Error::BadRequest(format!(
            "API Version String {v} is of invalid format. Must be of format MajorNum.MinorNum."
        )));
    };
    let min = parse_version(MIN_VERSION).expect("valid");
    let max = parse_version(MAX_VERSION).expect("valid");
    (ver < min || ver > max).then(|| {
        Error::NotAcceptable(format!(
            "Version {v} is not supported by the API. Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}."
        ))
    })
}

/// The version served, on every `/v3` response (errors too, as Cinder).
fn with_version_headers(mut resp: Response) -> Response {
    let hs = resp.headers_mut();
    hs.insert(
        "openstack-api-version",
        HeaderValue::from_static("volume 3.0"),
    );
    hs.insert("vary", HeaderValue::from_static("OpenStack-API-Version"));
    resp
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
