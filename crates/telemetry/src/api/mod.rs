//! The HTTP APIs: Ceilometer v2 (`metering`, 8777) and Gnocchi v1
//! (`metric`, 8041, with the Prometheus exposition at `/metrics`).

pub mod aodh;
pub mod ceilometer;
pub mod gnocchi;
mod gnocchi_aggregates;
mod gnocchi_filter;
mod gnocchi_resources;
pub mod prometheus;

use crate::service::TelemetryService;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_core::auth::{auth_layer, SharedValidator};
use ferrostack_core::http::{not_found_fallback, service_layer, ServiceLayer};
use ferrostack_core::openapi::{ApiInfo, ApiRouter};
use ferrostack_core::ErrorStyle;
use std::sync::Arc;

pub type Svc = Arc<TelemetryService>;
pub type Query = axum::extract::Query<Vec<(String, String)>>;

pub const CEILOMETER_INFO: ApiInfo = ApiInfo {
    title: "Ferrostack Telemetry (Ceilometer v2) API",
    version: "2",
    description: "Meters, samples, statistics and resources with Ceilometer's query syntax.",
    errors: ErrorStyle::Ceilometer,
};

pub const GNOCCHI_INFO: ApiInfo = ApiInfo {
    title: "Ferrostack Metric (Gnocchi v1) API",
    version: "1",
    description: "Archive policies and rules, metrics and measures, resource types and \
                  resources with history, search, aggregates, batch measures; Prometheus \
                  exposition at /metrics.",
    errors: ErrorStyle::Gnocchi,
};

/// The OpenAPI documents of the three APIs (`docs/openapi/metering.json`,
/// `metric.json`, `alarming.json`).
pub fn openapi_documents() -> [(&'static str, serde_json::Value); 3] {
    [
        ("metering", ceilometer::routes().document(&CEILOMETER_INFO)),
        (
            "metric",
            gnocchi_routes()
                .merge(prometheus::routes())
                .document(&GNOCCHI_INFO),
        ),
        ("alarming", aodh::routes().document(&AODH_INFO)),
    ]
}

/// Gnocchi's routes: metrics and policies, resources, aggregates (the
/// modules use each other's helpers one way only).
fn gnocchi_routes() -> ApiRouter<Svc> {
    gnocchi::routes()
        .merge(gnocchi_resources::routes())
        .merge(gnocchi_aggregates::routes())
}

fn finish(
    routes: ApiRouter<Svc>,
    info: &ApiInfo,
    svc: Svc,
    validator: SharedValidator,
    auth_uri: &str,
    (name, service_type, style): (&'static str, &'static str, ErrorStyle),
) -> Router {
    let limit = svc.config.telemetry.max_request_body_size;
    let mut router = routes
        .into_router(info)
        .fallback(not_found_fallback)
        .with_state(svc);
    if style == ErrorStyle::Gnocchi {
        router = router.layer(axum::middleware::from_fn(require_json));
    }
    router
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            ferrostack_core::auth::AuthLayer {
                validator,
                service_type,
            },
            auth_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ServiceLayer::new(name, style, auth_uri),
            service_layer,
        ))
}

/// The Ceilometer v2 API on its port.
pub fn ceilometer_router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    finish(
        ceilometer::routes(),
        &CEILOMETER_INFO,
        svc,
        validator,
        auth_uri,
        ("metering", "metering", ErrorStyle::Ceilometer),
    )
}

pub const AODH_INFO: ApiInfo = ApiInfo {
    title: "Ferrostack Alarming (Aodh v2) API",
    version: "2",
    description: "Alarms with gnocchi_resources_threshold rules, their state and history.",
    errors: ErrorStyle::Ceilometer,
};

/// The Aodh v2 API on its port.
pub fn aodh_router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    finish(
        aodh::routes(),
        &AODH_INFO,
        svc,
        validator,
        auth_uri,
        ("alarming", "alarming", ErrorStyle::Ceilometer),
    )
}

/// The Gnocchi v1 API (and `/metrics`) on its port. gnocchiclient asks
/// for collections with a trailing slash (`/v1/archive_policy/`), which
/// Gnocchi's pecan routes accept: the slash is dropped before routing.
pub fn gnocchi_router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    let inner = finish(
        gnocchi_routes().merge(prometheus::routes()),
        &GNOCCHI_INFO,
        svc,
        validator,
        auth_uri,
        ("metric", "metric", ErrorStyle::Gnocchi),
    );
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::map_request(drop_trailing_slash))
        .layer(axum::middleware::map_response(python_separators))
        .layer(axum::middleware::from_fn(require_json_accepted))
}

/// Gnocchi answers JSON only: an `Accept` header that allows no JSON is
/// 406, in webob's plain-text form (`/metrics`, Prometheus' text, aside).
async fn require_json_accepted(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let accept = req
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if req.uri().path() != "/metrics" && accept.is_some_and(|a| !accepts_json(a)) {
        let body = "406 Not Acceptable\n\nThe resource could not be generated that was acceptable to your browser (content of type application/json).\n\n";
        return (
            axum::http::StatusCode::NOT_ACCEPTABLE,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=UTF-8",
            )],
            body,
        )
            .into_response();
    }
    next.run(req).await
}

/// Whether an `Accept` header allows `application/json`: a range
/// (`application/json`, `application/*`, `*/*`) without `q=0`.
fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused
            && matches!(
                mime.as_str(),
                "application/json" | "application/*" | "*/*" | ""
            )
    })
}

/// Gnocchi refuses a request body of another media type than JSON with
/// 415 (after authentication, before reading the body).
async fn require_json(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::{header::CONTENT_TYPE, Method};
    if matches!(*req.method(), Method::POST | Method::PATCH | Method::PUT) {
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let mime = ct.to_str().unwrap_or_default();
            let mime = mime.split(';').next().unwrap_or_default().trim();
            let json = mime.eq_ignore_ascii_case("application/json")
                || mime.eq_ignore_ascii_case("application/json-patch+json");
            if !json {
                return ferrostack_core::Error::UnsupportedMediaType(format!(
                    "The server could not comply with the request since it is either malformed or otherwise incorrect. Content-Type {mime} is not supported."
                ))
                .into_response();
            }
        }
    }
    next.run(req).await
}

/// Python's `json.dumps` separators (`", "`, `": "`), as Gnocchi's bodies
/// have them: clients (gabbi's `response_strings`) match on that text.
async fn python_separators(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    if serde::Serialize::serialize(&doc, &mut ser).is_err() {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(out))
}

/// serde_json's compact output with a space after `,` and `:`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.begin_array_value(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

async fn drop_trailing_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_is_acceptable_unless_excluded() {
        assert!(super::accepts_json("application/json"));
        assert!(super::accepts_json("text/plain, application/json; q=0.8"));
        assert!(super::accepts_json("*/*"));
        assert!(!super::accepts_json("text/plain"));
        assert!(!super::accepts_json("application/json; q=0"));
    }
}
