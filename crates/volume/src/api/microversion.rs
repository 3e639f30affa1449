//! Microversion negotiation as Cinder does it: `OpenStack-API-Version:
//! volume X.Y` (or `latest`), 400 when malformed, 406 outside
//! `[MIN_VERSION, MAX_VERSION]`, the version served echoed with `Vary`,
//! and handed to handlers as the [`ApiVersion`] extractor so each view and
//! request changes where Cinder's did.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferrostack_core::openapi::{DocInput, Operation};
use ferrostack_core::Error;
use schemars::SchemaGenerator;
use std::cmp::Ordering;
use std::convert::Infallible;
use std::fmt;

/// A volume API microversion, comparable with a pair: `v >= (3, 27)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(pub u32, pub u32);

pub const MIN: ApiVersion = ApiVersion(3, 0);
pub const MAX: ApiVersion = ApiVersion(3, 71);

impl ApiVersion {
    /// `^([1-9]\d*)\.([1-9]\d*|0)$`, as Cinder's `APIVersionRequest`.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.trim().split_once('.')?;
        let number = |p: &str| {
            let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            let canonical = p == "0" || !p.starts_with('0');
            (digits && canonical)
                .then(|| p.parse::<u32>().ok())
                .flatten()
        };
        Some(ApiVersion(
            number(major).filter(|m| *m > 0)?,
            number(minor)?,
        ))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl PartialEq<(u32, u32)> for ApiVersion {
    fn eq(&self, other: &(u32, u32)) -> bool {
        (self.0, self.1) == *other
    }
}

impl PartialOrd<(u32, u32)> for ApiVersion {
    fn partial_cmp(&self, other: &(u32, u32)) -> Option<Ordering> {
        Some((self.0, self.1).cmp(other))
    }
}

/// The negotiated version the middleware put in the request; [`MIN`]
/// where nothing was negotiated.
impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts.extensions.get::<ApiVersion>().copied().unwrap_or(MIN))
    }
}

/// The header is documented on every operation by `api::routes`.
impl DocInput for ApiVersion {
    fn describe(_: &mut Operation, _: &mut SchemaGenerator) {}
}

/// The `volume` entry of `OpenStack-API-Version`, if any.
fn requested(headers: &HeaderMap) -> Option<String> {
    let text = headers
        .get_all("openstack-api-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    text.split(',').find_map(|entry| {
        let mut words = entry.split_whitespace();
        words
            .next()?
            .eq_ignore_ascii_case("volume")
            .then(|| words.next().unwrap_or("").to_owned())
    })
}

/// The version a request gets, or Cinder's error.
pub fn negotiate(headers: &HeaderMap) -> Result<ApiVersion, Error> {
    let Some(asked) = requested(headers) else {
        return Ok(MIN);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let v = ApiVersion::parse(&asked).ok_or_else(|| {
        Error::BadRequest(format!(
            "API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
    })?;
    if v < MIN || v > MAX {
        return Err(Error::NotAcceptable(format!(
            "Version {v} is not supported by the API. Minimum is {MIN} and maximum is {MAX}."
        )));
    }
    Ok(v)
}

/// Negotiate every `/v3/…` request and echo the version served (errors
/// too, as Cinder), with `Vary`.
pub async fn middleware(mut req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v3/") {
        return next.run(req).await;
    }
    let (version, resp) = match negotiate(req.headers()) {
        Ok(v) => {
            req.extensions_mut().insert(v);
            (v, next.run(req).await)
        }
        Err(e) => (MIN, e.into_response()),
    };
    let mut resp = resp;
    let hs = resp.headers_mut();
    if let Ok(h) = HeaderValue::from_str(&format!("volume {version}")) {
        hs.insert("openstack-api-version", h);
    }
    hs.insert("vary", HeaderValue::from_static("OpenStack-API-Version"));
    resp
}

/// 404 for a route that exists only from `since` (Cinder's version-gated
/// methods are not found below their version).
pub fn require(v: ApiVersion, since: (u32, u32)) -> Result<(), Error> {
    if v >= since {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "API version {v} is not supported on this method."
        )))
    }
}
