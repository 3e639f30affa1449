//! The Swift v1 HTTP API: `/info`, `/v1/<account>[/<container>[/<object>]]`.
//! One entry point parses the path and method into a [`Req`], decides who
//! is calling (token, temporary URL or nobody), and hands it to the
//! account, container or object handlers. Errors are rendered here, as
//! Swift renders them (HTML bodies, Swift's status codes), in one place.

mod account;
mod bulk;
mod container;
mod formpost;
pub mod headers;
mod info;
mod object;
pub mod query;
pub mod range;

use crate::access::Caller;
use crate::service::ObjectService;
use crate::tempurl::TempUrl;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_core::auth::{auth_layer, AuthLayer, Authenticated, SharedValidator};
use ferrostack_core::error::ErrorMarker;
use ferrostack_core::http::{service_layer, RequestId, ServiceLayer};
use ferrostack_core::{Error, ErrorStyle, Result};
use futures::TryStreamExt;
use std::sync::Arc;

pub type Svc = Arc<ObjectService>;

/// The methods Swift answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Copy,
    Options,
}

impl Verb {
    fn parse(m: &Method) -> Result<Verb> {
        Ok(match m.as_str() {
            "GET" => Verb::Get,
            "HEAD" => Verb::Head,
            "PUT" => Verb::Put,
            "POST" => Verb::Post,
            "DELETE" => Verb::Delete,
            "COPY" => Verb::Copy,
            "OPTIONS" => Verb::Options,
            _ => return Err(Error::MethodNotAllowed(String::new())),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Head => "HEAD",
            Verb::Put => "PUT",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
            Verb::Copy => "COPY",
            Verb::Options => "OPTIONS",
        }
    }
}

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Info,
    /// `/healthcheck` (Swift's healthcheck middleware).
    Healthcheck,
    Account(String),
    Container(String, String),
    Object(String, String, String),
}

impl Target {
    /// Parse a decoded path. 412 for a path that is not valid UTF-8
    /// (Swift's answer), 400 for names over Swift's limits.
    fn parse(raw: &str) -> Result<Target> {
        let path = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| {
                Error::Status(
                    StatusCode::PRECONDITION_FAILED,
                    "Invalid UTF8 or contains NULL".into(),
                )
            })?;
        if path == "/info" {
            return Ok(Target::Info);
        }
        if path == "/healthcheck" {
            return Ok(Target::Healthcheck);
        }
        let Some(rest) = path.strip_prefix("/v1/") else {
            return Err(Error::NotFound(String::new()));
        };
        let mut parts = rest.splitn(3, '/');
        let account = parts.next().unwrap_or_default().to_owned();
        if account.is_empty() {
            return Err(Error::NotFound(String::new()));
        }
        let container = parts.next().filter(|c| !c.is_empty());
        let object = parts.next().filter(|o| !o.is_empty());
        match (container, object) {
            (None, _) => Ok(Target::Account(account)),
            (Some(c), _) if c.len() > headers::MAX_CONTAINER_NAME => {
                Err(Error::BadRequest(format!(
                    "Container name length of {} longer than {}",
                    c.len(),
                    headers::MAX_CONTAINER_NAME
                )))
            }
            (Some(c), None) => Ok(Target::Container(account, c.to_owned())),
            (Some(_), Some(o)) if o.len() > headers::MAX_OBJECT_NAME => {
                Err(Error::BadRequest(format!(
                    "Object name length of {} longer than {}",
                    o.len(),
                    headers::MAX_OBJECT_NAME
                )))
            }
            (Some(c), Some(o)) => Ok(Target::Object(account, c.to_owned(), o.to_owned())),
        }
    }
}

/// One parsed request.
pub struct Req {
    pub verb: Verb,
    /// The decoded path (what temp URLs sign).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub caller: Caller,
    /// Taken once by the handler that reads it (a mutex only so that `Req`
    /// may be shared across awaits: a body is not `Sync`).
    pub body: std::sync::Mutex<Option<Body>>,
}

impl Req {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        headers::get(&self.headers, name)
    }

    /// The body as a stream of chunks, read failures turned into errors.
    fn body(&self) -> Body {
        self.body
            .lock()
            .map(|mut b| b.take())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub fn take_body(&mut self) -> crate::service::Body {
        let body = self.body();
        Box::pin(
            body.into_data_stream()
                .map_err(|e| ferrostack_core::http::body_read_error(&e, StatusCode::BAD_REQUEST)),
        )
    }

    /// The whole (small) body, at most `limit` bytes.
    pub async fn small_body(&mut self, limit: usize) -> Result<Vec<u8>> {
        let body = self.body();
        axum::body::to_bytes(body, limit)
            .await
            .map(|b| b.to_vec())
            .map_err(|_| Error::PayloadTooLarge(String::new()))
    }
}

/// The object API. `validator` checks tokens; `auth_uri` is announced on 401.
pub fn router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(svc)
        .layer(axum::middleware::from_fn(swift_errors))
        .layer(axum::middleware::from_fn_with_state(
            AuthLayer {
                validator,
                service_type: "object-store",
            },
            auth_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ServiceLayer::new("object", ErrorStyle::Glance, auth_uri),
            service_layer,
        ))
}

async fn handle(State(svc): State<Svc>, req: Request) -> Result<Response> {
    if crate::s3::is_s3(req.headers()) {
        return Ok(crate::s3::handle(&svc, req).await);
    }
    let (mut parts, body) = req.into_parts();
    let verb = Verb::parse(&parts.method)?;
    let target = Target::parse(parts.uri.path())?;
    let query = query::parse_query(parts.uri.query());
    if target == Target::Info {
        return info::show(&svc, verb, &query);
    }
    if target == Target::Healthcheck {
        return Ok(([("content-type", "text/plain")], "OK").into_response());
    }
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let form = verb == Verb::Post
        && headers::get(&parts.headers, "content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    let caller = if form {
        Caller::TempUrl
    } else {
        caller(&svc, &mut parts, &target, verb, &path, &query).await?
    };
    let mut req = Req {
        verb,
        path,
        query,
        headers: parts.headers,
        caller,
        body: std::sync::Mutex::new(Some(body)),
    };
    if verb == Verb::Options {
        return Ok((
            StatusCode::OK,
            [("allow", "HEAD, GET, PUT, POST, COPY, OPTIONS, DELETE")],
        )
            .into_response());
    }
    if form {
        return match &target {
            Target::Container(a, c) => formpost::handle(&svc, &mut req, a, c, "").await,
            Target::Object(a, c, o) => formpost::handle(&svc, &mut req, a, c, o).await,
            _ => Err(Error::BadRequest(
                "FormPost: a container or object path is required".into(),
            )),
        };
    }
    if verb == Verb::Put && req.param("extract-archive").is_some() {
        let (account, base) = match &target {
            Target::Account(a) => (a.clone(), String::new()),
            Target::Container(a, c) => (a.clone(), c.clone()),
            Target::Object(a, c, o) => (a.clone(), format!("{c}/{o}")),
            Target::Info | Target::Healthcheck => unreachable!("answered above"),
        };
        crate::access::authorize(
            &svc.policy,
            &req.caller,
            &account,
            crate::access::Op::Manage,
            None,
        )?;
        return bulk::extract(&svc, &mut req, &account, &base).await;
    }
    match target {
        Target::Info | Target::Healthcheck => unreachable!("answered above"),
        Target::Account(a) => account::handle(&svc, &mut req, &a).await,
        Target::Container(a, c) => container::handle(&svc, &mut req, &a, &c).await,
        Target::Object(a, c, o) => object::handle(&svc, &mut req, &a, &c, &o).await,
    }
}

/// Who is calling: a temporary URL when the query carries a signature,
/// else the token's user, else nobody.
async fn caller(
    svc: &ObjectService,
    parts: &mut axum::http::request::Parts,
    target: &Target,
    verb: Verb,
    path: &str,
    query: &[(String, String)],
) -> Result<Caller> {
    if let (Some(t), Target::Object(a, c, _)) = (TempUrl::from_query(query), target) {
        let keys = temp_url_keys(svc, a, c).await?;
        crate::tempurl::verify(&t, verb.as_str(), path, &keys, crate::service::now_s())?;
        return Ok(Caller::TempUrl);
    }
    if parts.headers.contains_key("x-auth-token") {
        let Authenticated(ctx) = Authenticated::from_request_parts(parts, &()).await?;
        return Ok(Caller::User(ctx));
    }
    Ok(Caller::Anonymous {
        referrer: headers::get(&parts.headers, "referer"),
    })
}

async fn temp_url_keys(svc: &ObjectService, account: &str, container: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    if let Some(a) = crate::store::accounts::get(&svc.db, account).await? {
        for k in [
            "x-account-meta-temp-url-key",
            "x-account-meta-temp-url-key-2",
        ] {
            keys.extend(a.meta.get(k).cloned());
        }
    }
    if let Some(c) = crate::store::containers::get(&svc.db, account, container).await? {
        for k in [
            "x-container-meta-temp-url-key",
            "x-container-meta-temp-url-key-2",
        ] {
            keys.extend(c.meta.get(k).cloned());
        }
    }
    Ok(keys)
}

/// Swift's words for its error statuses.
fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad Request",
        401 => "This server could not verify that you are authorized to access the document you requested.",
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        405 => "The method is not allowed for this resource.",
        409 => "There was a conflict when trying to complete your request.",
        411 => "Length Required",
        412 => "A precondition for this request was not met.",
        413 => "The body of your request was too large for this server.",
        416 => "The Range requested is not available.",
        422 => "Unable to process the contained instructions",
        499 => "The client disconnected during request.",
        _ => "An error occurred",
    }
}

/// Swift's transaction id: `tx` and 21 hex digits (here: of the request
/// id), `-`, and the time in 10 hex digits.
fn trans_id(request_id: &str) -> String {
    let hex: String = request_id
        .trim_start_matches("req-")
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(21)
        .collect();
    format!("tx{hex:0<21}-{:010x}", crate::service::now_s())
}

/// Render every error of the object API as Swift does: an HTML body with
/// the status title and message (none for HEAD). Every response gets
/// `X-Trans-Id` and a `Content-Type`, as Swift's do.
async fn swift_errors(req: Request, next: Next) -> Response {
    let head = req.method() == Method::HEAD;
    let trans_id = trans_id(
        &req.extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
    );
    let mut resp = next.run(req).await;
    if let Some(ErrorMarker(err)) = resp.extensions_mut().remove::<ErrorMarker>() {
        let status = err.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %err, "object API error");
            "An error occurred".to_owned()
        } else if err.message().is_empty() {
            default_message(status).to_owned()
        } else {
            err.message().to_owned()
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = if head {
            String::new()
        } else {
            format!("<html><h1>{title}</h1><p>{message}</p></html>")
        };
        let mut out = (status, body).into_response();
        let keep = std::mem::take(resp.headers_mut());
        for (k, v) in keep.iter() {
            if k != "content-length" && k != "content-type" {
                out.headers_mut().insert(k.clone(), v.clone());
            }
        }
        headers::put(
            out.headers_mut(),
            "content-type",
            "text/html; charset=UTF-8",
        );
        resp = out;
    }
    headers::put(resp.headers_mut(), "x-trans-id", &trans_id);
    if !resp.headers().contains_key("content-type") {
        headers::put(
            resp.headers_mut(),
            "content-type",
            "text/html; charset=UTF-8",
        );
    }
    resp
}
