//! The metadata API (Nova's on 8775) as the network agents' signing proxy
//! reaches it: every request names its instance in `X-Instance-ID` and
//! proves it with `X-Instance-ID-Signature` (see [`crate::signature`]);
//! `X-Tenant-ID`, when sent, must be the instance's project.
//!
//! - Unsigned or mis-signed requests (any header missing, repeated or
//!   malformed) get 403 with a body that names no instance, before anything
//!   is looked up.
//! - A signed request for an instance the source does not know, or whose
//!   project is not `X-Tenant-ID`, gets 404 (Nova answers a project
//!   mismatch with 404 too, so it cannot tell whether the instance exists).
//! - Paths resolve as in [`crate::lookup`]; unknown ones get 404. `GET` (and
//!   `HEAD`) read; `POST` only sets `/openstack/<version>/password` (from
//!   2013-04-04): at most [`MAX_PASSWORD_LEN`] bytes (else 400), once (then
//!   409). Other methods get 405.
//! - A failing source gets 500 with a generic message; the detail is logged.

use crate::lookup::{lookup, ContentType, Resolved};
use crate::{signature, InstanceMetadata};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::net::IpAddr;
use std::sync::Arc;

/// Where the service reads instances and keeps their passwords.
#[async_trait::async_trait]
pub trait MetadataSource: Send + Sync {
    /// The instance's metadata, None when there is no such (live) instance.
    async fn instance(&self, id: &str) -> Result<Option<InstanceMetadata>, String>;
    async fn password(&self, id: &str) -> Result<Option<String>, String>;
    /// Store the password the guest posts; false when one is already set.
    async fn set_password(&self, id: &str, password: &str) -> Result<bool, String>;
}

/// Nova's limit on a posted password: four system-metadata chunks of 255
/// characters. Guests post the password encrypted with their SSH key and
/// base64-encoded (344 bytes for an RSA-2048 key, 684 for RSA-4096).
pub const MAX_PASSWORD_LEN: usize = 4 * 255;

/// The most of a request body ever read (only password posts are read).
pub const MAX_BODY: usize = 1024;

pub const INSTANCE_ID_HEADER: &str = "x-instance-id";
pub const SIGNATURE_HEADER: &str = "x-instance-id-signature";
pub const TENANT_ID_HEADER: &str = "x-tenant-id";

struct Service {
    source: Arc<dyn MetadataSource>,
    secret: String,
}

/// The metadata API. `shared_secret` is the proxies' signing key.
pub fn router(source: Arc<dyn MetadataSource>, shared_secret: String) -> Router {
    if shared_secret.is_empty() {
        tracing::warn!(
            "the metadata proxy shared secret is empty: anyone who can reach the \
             metadata API can sign requests for any instance"
        );
    }
    Router::new().fallback(serve).with_state(Arc::new(Service {
        source,
        secret: shared_secret,
    }))
}

fn plain(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut resp = (status, body.into()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ContentType::Text.header_value()),
    );
    resp
}

fn forbidden() -> Response {
    plain(
        StatusCode::FORBIDDEN,
        "403 Forbidden\n\nInvalid proxy request signature.\n",
    )
}

fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "404 Not Found\n\nThe resource could not be found.\n",
    )
}

fn bad_request(why: &'static str) -> Response {
    plain(
        StatusCode::BAD_REQUEST,
        format!("400 Bad Request\n\n{why}\n"),
    )
}

fn conflict() -> Response {
    plain(
        StatusCode::CONFLICT,
        "409 Conflict\n\nThe password is already set.\n",
    )
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut resp = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "405 Method Not Allowed\n\nThe method is not allowed for this resource.\n",
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn internal_error(what: &str, instance: &str, error: &str) -> Response {
    tracing::error!(%instance, %error, "metadata source failed: {what}");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 Internal Server Error\n\nAn unknown error has occurred. Please try your request again.\n",
    )
}

/// The one value of a header that must appear at most once; `Err` when it
/// is repeated or not text.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    first.to_str().map(Some).map_err(|_| ())
}

/// The instance the request is signed for, or `None`.
fn authenticate<'a>(secret: &str, headers: &'a HeaderMap) -> Option<&'a str> {
    let id = single(headers, INSTANCE_ID_HEADER).ok()??;
    let signature = single(headers, SIGNATURE_HEADER).ok()??;
    if id.is_empty() || !signature::verify(secret, id, signature) {
        if id.len() <= signature::MAX_INSTANCE_ID_LEN {
            tracing::warn!(
                instance = %id,
                from = ?single(headers, "x-forwarded-for").ok().flatten(),
                "metadata request with a bad signature"
            );
        }
        return None;
    }
    Some(id)
}

/// The guest's address as the proxy reports it (first `X-Forwarded-For`
/// entry), when it is an IP address.
fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-forwarded-for")?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    first.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

async fn serve(State(svc): State<Arc<Service>>, req: Request) -> Response {
    let headers = req.headers();
    let Some(instance) = authenticate(&svc.secret, headers) else {
        return forbidden();
    };
    let instance = instance.to_owned();
    let Ok(tenant) = single(headers, TENANT_ID_HEADER) else {
        return forbidden();
    };
    let tenant = tenant.map(str::to_owned);

    let md = match svc.source.instance(&instance).await {
        Ok(Some(md)) => md,
        Ok(None) => {
            tracing::info!(%instance, "metadata request for an unknown instance");
            return not_found();
        }
        Err(e) => return internal_error("instance", &instance, &e),
    };
    if let Some(tenant) = tenant {
        if tenant != md.project_id {
            tracing::warn!(%instance, %tenant, "X-Tenant-ID is not the instance's project");
            return not_found();
        }
    }

    let address = forwarded_for(req.headers());
    let Some(resolved) = lookup(&md, req.uri().path(), address.as_deref()) else {
        return not_found();
    };
    let method = req.method().clone();
    match resolved {
        Resolved::Document { body, content_type } => {
            if method != Method::GET && method != Method::HEAD {
                return method_not_allowed("GET, HEAD");
            }
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type.header_value()),
            );
            resp
        }
        Resolved::Password if method == Method::GET || method == Method::HEAD => {
            match svc.source.password(&instance).await {
                Ok(password) => plain(StatusCode::OK, password.unwrap_or_default()),
                Err(e) => internal_error("password", &instance, &e),
            }
        }
        Resolved::Password if method == Method::POST => post_password(&svc, &instance, req).await,
        Resolved::Password => method_not_allowed("GET, HEAD, POST"),
    }
}

/// Nova's `handle_password` for POST: once set, the password cannot be
/// replaced (409); too large is 400.
async fn post_password(svc: &Service, instance: &str, req: Request) -> Response {
    match svc.source.password(instance).await {
        Ok(Some(p)) if !p.is_empty() => return conflict(),
        Ok(_) => {}
        Err(e) => return internal_error("password", instance, &e),
    }
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(_) => return bad_request("Request is too large."),
    };
    if body.len() > MAX_PASSWORD_LEN {
        return bad_request("Request is too large.");
    }
    let Ok(password) = std::str::from_utf8(&body) else {
        return bad_request("The password is not UTF-8 text.");
    };
    if password.is_empty() {
        // Nova stores nothing for an empty post, so a later one may set it.
        return plain(StatusCode::OK, "");
    }
    match svc.source.set_password(instance, password).await {
        Ok(true) => {
            tracing::info!(%instance, "guest set its password");
            plain(StatusCode::OK, "")
        }
        Ok(false) => conflict(),
        Err(e) => internal_error("set password", instance, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn authentication() {
        let sig = signature::sign("s", "i-1");
        let ok = headers(&[(INSTANCE_ID_HEADER, "i-1"), (SIGNATURE_HEADER, &sig)]);
        assert_eq!(authenticate("s", &ok), Some("i-1"));
        assert_eq!(authenticate("t", &ok), None);
        assert_eq!(
            authenticate("s", &headers(&[(INSTANCE_ID_HEADER, "i-1")])),
            None
        );
        assert_eq!(
            authenticate("s", &headers(&[(SIGNATURE_HEADER, &sig)])),
            None
        );
        let twice = headers(&[
            (INSTANCE_ID_HEADER, "i-1"),
            (INSTANCE_ID_HEADER, "i-2"),
            (SIGNATURE_HEADER, &sig),
        ]);
        assert_eq!(authenticate("s", &twice), None);
        let empty_sig = signature::sign("s", "");
        let empty = headers(&[(INSTANCE_ID_HEADER, ""), (SIGNATURE_HEADER, &empty_sig)]);
        assert_eq!(authenticate("s", &empty), None);
    }

    #[test]
    fn forwarded_address() {
        let h = headers(&[("x-forwarded-for", "10.0.0.7, 192.0.2.1")]);
        assert_eq!(forwarded_for(&h).as_deref(), Some("10.0.0.7"));
        let h = headers(&[("x-forwarded-for", "<script>")]);
        assert_eq!(forwarded_for(&h), None);
    }
}
