//! `/api/<service-type>/<path>`: the same-origin proxy the page reaches
//! every API through. It adds the session's token, forwards to the public
//! endpoint the catalog names for that type, and streams both bodies (an
//! image upload goes straight through to the image service).
//!
//! The API's answer passes through unchanged — a 403 stays a 403 with the
//! service's own message and request id — except for three things: the
//! headers are filtered both ways (no token or cookie crosses), a 401
//! ends the session, and small JSON answers to a GET get an `ETag` so the
//! page's polling costs a 304 when nothing changed.

use crate::State;
use axum::body::Body;
use axum::extract::{Path, Request, State as Ext};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use ferrostack_core::error::Error;
use ferrostack_core::http::REQUEST_ID_HEADER;
use futures::TryStreamExt;
use sha2::Digest;

/// The upstream's request id travels in this header through the service
/// layer (which stamps the dashboard's own id) and is put back by
/// [`restore_upstream_request_id`], so the page shows the id the API logged.
const UPSTREAM_ID: &str = "x-upstream-request-id";
/// How long a request without a body may wait for the service's answer.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// JSON answers up to this size are hashed into an `ETag`.
const ETAG_MAX_BYTES: u64 = 4 << 20;

const REQUEST_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "content-length",
    "openstack-api-version",
    "x-openstack-nova-api-version",
    "if-match",
];
const RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-disposition",
    "location",
    "etag",
    "openstack-api-version",
    "x-openstack-nova-api-version",
];

/// `ANY /api/{service}/{*rest}`
pub async fn forward(
    Ext(state): Ext<State>,
    Path((service, _rest)): Path<(String, String)>,
    req: Request,
) -> Result<Response, Error> {
    let session = state.sessions.authorize(req.method(), req.headers())?;
    let base = session.catalog.get(&service).ok_or_else(|| {
        Error::NotFound(format!(
            "The cloud has no '{service}' service in your project's catalog."
        ))
    })?;
    // The catalog names one identity version (the seed's v2.0); the page
    // says which it means (`/api/identity/v3/...`).
    let base = if service == "identity" {
        origin_of(base)
    } else {
        base
    };
    let url = upstream_url(base, &service, req.uri())?;
    let method = req.method().clone();
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let mut out = state.http.request(method.clone(), url);
    for name in REQUEST_HEADERS {
        if let Some(v) = req.headers().get(*name) {
            out = out.header(*name, v);
        }
    }
    out = out.header("x-auth-token", &session.token);
    if matches!(method, Method::GET | Method::HEAD | Method::DELETE) {
        // No body to wait for: a service that does not answer in this
        // time gets the page an error instead of a spinner forever.
        out = out.timeout(ANSWER_TIMEOUT);
    } else {
        // An upload may take minutes; the service's own body-read timeout
        // bounds a stalled one.
        let stream = req.into_body().into_data_stream();
        out = out.body(reqwest::Body::wrap_stream(stream));
    }
    let resp = out
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("The '{service}' service is unreachable: {e}")))?;
    if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
        // The token was revoked or expired: this session is over.
        state.sessions.remove(&session.id);
    }
    respond(resp, method, if_none_match).await
}

/// The upstream URL: the endpoint, then the request's own path after
/// `/api/<service>` (still percent-encoded, as the browser sent it) and query.
fn upstream_url(base: &str, service: &str, uri: &axum::http::Uri) -> Result<String, Error> {
    let prefix = format!("/api/{service}");
    let rest = uri.path().strip_prefix(&prefix).unwrap_or("");
    // Dots may come percent-encoded (`%2e`, `.%2E`): compare them decoded.
    let dotted = rest.replace("%2e", ".").replace("%2E", ".");
    if dotted.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(Error::BadRequest(
            "A path with '.' or '..' segments is not proxied.".into(),
        ));
    }
    Ok(match uri.query() {
        Some(q) => format!("{base}{rest}?{q}"),
        None => format!("{base}{rest}"),
    })
}

/// `scheme://host:port` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

async fn respond(
    resp: reqwest::Response,
    method: Method,
    if_none_match: Option<HeaderValue>,
) -> Result<Response, Error> {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        if let Some(v) = resp.headers().get(*name) {
            headers.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let upstream_id = resp
        .headers()
        .get(REQUEST_ID_HEADER)
        .or_else(|| resp.headers().get("x-compute-request-id"))
        .cloned();
    if let Some(id) = upstream_id {
        headers.insert(HeaderName::from_static(UPSTREAM_ID), id);
    }
    let hashable = method == Method::GET
        && status == StatusCode::OK
        && !headers.contains_key(header::ETAG)
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"))
        && resp.content_length().is_some_and(|n| n <= ETAG_MAX_BYTES);
    let body = if hashable {
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(format!("The service's answer broke off: {e}")))?;
        let etag = etag_of(bytes.clone()).await?;
        let unchanged = if_none_match.as_ref().is_some_and(|v| v == etag.as_str());
        headers.insert(
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(Error::internal)?,
        );
        if unchanged {
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::CONTENT_TYPE);
            return Ok(build(StatusCode::NOT_MODIFIED, headers, Body::empty()));
        }
        Body::from(bytes)
    } else {
        Body::from_stream(resp.bytes_stream().map_err(std::io::Error::other))
    };
    Ok(build(status, headers, body))
}

/// A weak ETag from the body's SHA-256, computed off the async runtime.
async fn etag_of(bytes: axum::body::Bytes) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let digest = sha2::Sha256::digest(&bytes);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("W/\"{hex}\"")
    })
    .await
    .map_err(Error::internal)
}

fn build(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Outermost layer: the request id the API gave replaces the dashboard's.
pub async fn restore_upstream_request_id(mut resp: Response) -> Response {
    if let Some(id) = resp.headers_mut().remove(UPSTREAM_ID) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_url_keeps_the_path_encoded_and_refuses_dot_segments() {
        let uri: axum::http::Uri = "/api/compute/servers/a%20b?limit=5".parse().unwrap();
        assert_eq!(
            upstream_url("http://h:8774/v2.1", "compute", &uri).unwrap(),
            "http://h:8774/v2.1/servers/a%20b?limit=5"
        );
        for bad in [
            "/api/image/../x",
            "/api/image/%2e%2E/x",
            "/api/image/.%2e/x",
            "/api/image/./x",
        ] {
            let uri: axum::http::Uri = bad.parse().unwrap();
            assert!(
                upstream_url("http://h:9292", "image", &uri).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_identity_origin_drops_the_version() {
        assert_eq!(
            origin_of("http://127.0.0.1:5000/v2.0"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            origin_of("https://keystone.example"),
            "https://keystone.example"
        );
    }
}
