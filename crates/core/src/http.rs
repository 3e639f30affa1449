//! The HTTP layer every service reuses: request ids and request logging,
//! error rendering in the service's dialect, JSON bodies that answer 400
//! naming the bad field, and 413 for oversized bodies.

use crate::error::{Error, ErrorMarker, ErrorStyle};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// The id of the request being served, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Per-service settings of [`service_layer`].
#[derive(Clone, Debug)]
pub struct ServiceLayer {
    pub service: &'static str,
    pub style: ErrorStyle,
    /// Sent as `WWW-Authenticate: Keystone uri="…"` with every 401, so a
    /// client learns where to authenticate (keystonemiddleware does the same).
    pub www_authenticate: Option<HeaderValue>,
}

impl ServiceLayer {
    pub fn new(service: &'static str, style: ErrorStyle, auth_uri: &str) -> Self {
        ServiceLayer {
            service,
            style,
            www_authenticate: HeaderValue::from_str(&format!("Keystone uri=\"{auth_uri}\"")).ok(),
        }
    }
}

/// Wraps every request of a service: assigns `x-openstack-request-id`, runs the
/// handler inside a tracing span carrying that id, logs one line per request,
/// and renders any [`Error`] in the service's style. This is the only place an
/// error becomes a body.
pub async fn service_layer(
    axum::extract::State(cfg): axum::extract::State<ServiceLayer>,
    mut req: Request,
    next: Next,
) -> Response {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", service = cfg.service, request_id = %request_id);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;

    if let Some(ErrorMarker(err)) = resp.extensions_mut().remove::<ErrorMarker>() {
        resp = render_error(&cfg, &err, resp);
    } else if resp.status() == StatusCode::METHOD_NOT_ALLOWED && is_empty(&resp) {
        let err = Error::MethodNotAllowed(format!(
            "The method {method} is not supported for this resource."
        ));
        resp = render_error(&cfg, &err, resp);
    }
    resp.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(&request_id).expect("uuid is a valid header"),
    );
    let _enter = span.enter();
    tracing::info!(
        "{} {} status: {} time: {:.4}",
        method,
        path,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64()
    );
    resp
}

fn is_empty(resp: &Response) -> bool {
    use axum::body::HttpBody;
    resp.body().size_hint().exact() == Some(0)
}

fn render_error(cfg: &ServiceLayer, err: &Error, mut resp: Response) -> Response {
    let (content_type, body) = cfg.style.render(err);
    let status = err.status();
    let headers = std::mem::take(resp.headers_mut());
    let mut out = (status, body).into_response();
    for (k, v) in headers.iter() {
        if k != header::CONTENT_LENGTH && k != header::CONTENT_TYPE {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    if let Some(ct) = content_type {
        out.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if status == StatusCode::UNAUTHORIZED {
        if let Some(v) = &cfg.www_authenticate {
            out.headers_mut()
                .insert(header::WWW_AUTHENTICATE, v.clone());
        }
    }
    out
}

/// Router fallback: an unknown path is a 404 in the service's style.
pub async fn not_found_fallback() -> Error {
    Error::NotFound("The resource could not be found.".into())
}

/// A JSON request body. Malformed JSON, a wrong type or a missing field is a
/// 400 whose message names the field; a body over the service's limit is 413.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge("Request is too large.".into())
            } else {
                Error::BadRequest(format!("Could not read the request body: {e}"))
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parse a JSON document into `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::BadRequest(
            "Malformed request body: the request body is empty; a JSON document is required."
                .into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(Error::BadRequest(format!(
                    "Malformed request body: the body is not valid JSON ({inner})."
                )))
            } else if path == "." || path.is_empty() {
                Err(Error::BadRequest(format!(
                    "Invalid input for the request body: {inner}"
                )))
            } else {
                Err(Error::BadRequest(format!(
                    "Invalid input for field '{path}': {inner}"
                )))
            }
        }
    }
}
