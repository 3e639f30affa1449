//! The HTTP layer every service reuses: request ids and request logging,
//! error rendering in the service's dialect, JSON bodies that answer 400
//! naming the bad field, and 413 for oversized bodies.

use crate::error::{Error, ErrorMarker, ErrorStyle};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
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

/// Longest request target accepted, as eventlet's `MAX_REQUEST_LINE`
/// under Nova and Neutron (414 above it).
pub const MAX_URI_BYTES: usize = 8192;
/// Longest single header value accepted, as oslo.service's
/// `max_header_line` (431 above it).
pub const MAX_HEADER_BYTES: usize = 16_384;
/// Most headers accepted in one request (431 above it).
pub const MAX_HEADERS: usize = 100;

/// Wraps every request of a service: assigns `x-openstack-request-id`, runs the
/// handler inside a tracing span carrying that id, logs one line per request,
/// and renders any [`Error`] in the service's style. This is the only place an
/// error becomes a body: framework rejections (a bad percent-encoding in a
/// path, a wrong method) are rendered in the same style, a panic in a
/// handler becomes a 500 instead of a dropped connection, and a 500 tells
/// the client only the request id while the log gets the detail.
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
    let mut resp = match oversized_request(&req) {
        Some(err) => err.into_response(),
        None => {
            let handled = std::panic::AssertUnwindSafe(next.run(req).instrument(span.clone()));
            match handled.catch_unwind().await {
                Ok(resp) => resp,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "non-string panic".into());
                    Error::Internal(format!("handler panicked: {what}")).into_response()
                }
            }
        }
    };

    if let Some(ErrorMarker(err)) = resp.extensions_mut().remove::<ErrorMarker>() {
        if let Error::Internal(detail) = err.base() {
            let _enter = span.enter();
            tracing::error!(error = %detail, "internal error");
        }
        resp = render_error(&cfg, &err, &request_id, resp);
    } else if resp.status() == StatusCode::METHOD_NOT_ALLOWED && is_empty(&resp) {
        let err = Error::MethodNotAllowed(format!(
            "The method {method} is not supported for this resource."
        ));
        resp = render_error(&cfg, &err, &request_id, resp);
    } else if let Some(err) = framework_rejection(&mut resp).await {
        resp = render_error(&cfg, &err, &request_id, resp);
    }
    resp.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(&request_id).expect("uuid is a valid header"),
    );
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of an oversized body is never read, so the connection
        // cannot carry another request: say so, or the client's next request
        // on it fails.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
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

/// 414 for a request target longer than [`MAX_URI_BYTES`], 431 for too many
/// or too large headers: answered before any handler or authentication runs.
fn oversized_request(req: &Request) -> Option<Error> {
    let uri = req.uri().path_and_query().map_or("", |p| p.as_str());
    // A NUL decoded from the path or query would reach the database, which
    // PostgreSQL refuses (a 500); no OpenStack identifier or filter has one.
    if uri.contains("%00") {
        return Some(Error::BadRequest(
            "The request URI contains an encoded NUL character (%00), which is not accepted."
                .into(),
        ));
    }
    let uri_len = uri.len();
    if uri_len > MAX_URI_BYTES {
        return Some(Error::Status(
            StatusCode::URI_TOO_LONG,
            format!(
                "The request URI is {uri_len} bytes long; at most {MAX_URI_BYTES} are accepted."
            ),
        ));
    }
    let headers = req.headers();
    if headers.len() > MAX_HEADERS {
        return Some(Error::Status(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "The request has {} headers; at most {MAX_HEADERS} are accepted.",
                headers.len()
            ),
        ));
    }
    if let Some((name, _)) = headers
        .iter()
        .find(|(n, v)| n.as_str().len() + v.len() > MAX_HEADER_BYTES)
    {
        return Some(Error::Status(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("The request header '{name}' is longer than {MAX_HEADER_BYTES} bytes."),
        ));
    }
    None
}

/// An error response the framework produced itself (axum's rejections
/// answer `text/plain`), turned into the service's error so every error
/// body of a service has the same shape.
async fn framework_rejection(resp: &mut Response) -> Option<Error> {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !plain {
        return None;
    }
    let body = std::mem::take(resp.body_mut());
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text
    };
    Some(match status {
        StatusCode::BAD_REQUEST => Error::BadRequest(message),
        StatusCode::NOT_FOUND => Error::NotFound(message),
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge(message),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType(message),
        s if s.is_server_error() => Error::Internal(message),
        s => Error::Status(s, message),
    })
}

fn is_empty(resp: &Response) -> bool {
    use axum::body::HttpBody;
    resp.body().size_hint().exact() == Some(0)
}

fn render_error(cfg: &ServiceLayer, err: &Error, request_id: &str, mut resp: Response) -> Response {
    let generic;
    let err = if err.status().is_server_error()
        && !matches!(err.base(), Error::Unavailable(_) | Error::NotImplemented(_))
    {
        // The detail (SQL, a driver's text) is in the log under this id.
        generic = Error::Internal(format!(
            "An unexpected error occurred. Please report request id {request_id} to the cloud operator."
        ));
        &generic
    } else {
        err
    };
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
        let _ = state;
        let bytes = read_body(req).await?;
        parse_json(&bytes).map(Json)
    }
}

/// The whole request body within the route's `DefaultBodyLimit`: 413 at
/// once when `Content-Length` announces more than the limit (without
/// waiting for a body that may never come), 413 when more arrives, 408 when
/// it stops arriving, 400 when the connection breaks.
pub async fn read_body(req: Request<Body>) -> Result<Bytes, Error> {
    use axum::body::HttpBody;
    use axum::RequestExt;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = req.into_limited_body();
    if let (Some(declared), Some(limit)) = (declared, body.size_hint().upper()) {
        if declared > limit {
            return Err(Error::PayloadTooLarge("Request is too large.".into()));
        }
    }
    match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(body_read_error(&e, StatusCode::BAD_REQUEST)),
    }
}

/// What a failed body read answers: 413 over the limit, 408 when the client
/// stopped sending ([`BodyReadTimeout`]), else 400.
pub fn body_read_error(e: &(dyn std::error::Error + 'static), status: StatusCode) -> Error {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return Error::PayloadTooLarge("Request is too large.".into());
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return Error::PayloadTooLarge("Request is too large.".into());
        }
        if err.is::<BodyReadTimeout>() {
            return Error::Status(StatusCode::REQUEST_TIMEOUT, err.to_string());
        }
        cur = err.source();
    }
    Error::BadRequest(format!("Could not read the request body: {e}"))
}

/// Parse a JSON document into `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::BadRequest(
            "Malformed request body: the request body is empty; a JSON document is required."
                .into(),
        ));
    }
    if has_escaped_nul(bytes) {
        return Err(Error::BadRequest(
            "Invalid input: a string in the request body contains the NUL character (\\u0000), which is not accepted.".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(Error::BadRequest(format!(
                "Malformed request body: the body is not valid JSON ({e})."
            ))),
        },
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

/// Whether a JSON text holds `\u0000` in a string (the only way JSON can
/// carry a NUL; a backslash occurs only inside strings). PostgreSQL refuses
/// NUL in text, and no OpenStack attribute needs one.
fn has_escaped_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// The client stopped sending a request body for longer than the
/// listener's `body_read_timeout` (raised by
/// [`crate::server`], answered 408 here).
#[derive(Debug)]
pub struct BodyReadTimeout(pub std::time::Duration);

impl std::fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "The request body stopped arriving for {} s; the request was abandoned.",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyReadTimeout {}
