//! Microversion negotiation as Nova does it: the version a request asks
//! for (`OpenStack-API-Version: compute X.Y`, else the legacy
//! `X-OpenStack-Nova-API-Version: X.Y`, either `latest`), refused with 406
//! outside `[MIN_VERSION, MAX_VERSION]`, echoed in both headers with
//! `Vary`, and handed to handlers as the [`ApiVersion`] extractor so each
//! request schema and view changes exactly where Nova's did.

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

/// A compute API microversion, `major.minor`, ordered as Nova orders them
/// and comparable with a pair: `v >= (2, 19)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(pub u32, pub u32);

/// The oldest microversion served (a request without a version gets it).
pub const MIN_VERSION: ApiVersion = ApiVersion(2, 1);
/// The newest microversion whose every change is implemented and tested.
pub const MAX_VERSION: ApiVersion = ApiVersion(2, 100);
/// [`MAX_VERSION`] as the OpenAPI document's `info.version` (a test keeps
/// the two equal).
pub const MAX_VERSION_TEXT: &str = "2.100";

impl ApiVersion {
    /// Nova's format: `^([1-9]\d*)\.([1-9]\d*|0)$` (no leading zeros).
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.split_once('.')?;
        let number = |p: &str| {
            let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            let canonical = p == "0" || !p.starts_with('0');
            (digits && canonical)
                .then(|| p.parse::<u32>().ok())
                .flatten()
        };
        let major = number(major).filter(|m| *m > 0)?;
        Some(ApiVersion(major, number(minor)?))
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

/// The negotiated version, which the `microversion` middleware put in the
/// request; [`MIN_VERSION`] outside `/v2.1` (where nothing is negotiated).
impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(MIN_VERSION))
    }
}

/// The two headers it comes from are documented on every operation by
/// `api::routes` (`header_on_every_operation`), so nothing is added here.
impl DocInput for ApiVersion {
    fn describe(_: &mut Operation, _: &mut SchemaGenerator) {}
}

/// The version string a request asks for, if any: the `compute` entry of
/// `OpenStack-API-Version` wins over the legacy header (as
/// `microversion_parse` does).
fn requested(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let modern = text("openstack-api-version");
    let compute = modern.split(',').find_map(|entry| {
        let mut words = entry.split_whitespace();
        let service = words.next()?;
        service
            .eq_ignore_ascii_case("compute")
            .then(|| words.next().unwrap_or("").to_owned())
    });
    compute.or_else(|| {
        let legacy = text("x-openstack-nova-api-version");
        (!legacy.is_empty()).then(|| legacy.trim().to_owned())
    })
}

/// The version a request gets, or Nova's error: 400 for a malformed
/// string, 406 outside the served range.
pub fn negotiate(headers: &HeaderMap) -> Result<ApiVersion, Error> {
    let Some(asked) = requested(headers) else {
        return Ok(MIN_VERSION);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX_VERSION);
    }
    let version = ApiVersion::parse(&asked).ok_or_else(|| {
        Error::BadRequest(format!(
            "API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
    })?;
    if version < MIN_VERSION || version > MAX_VERSION {
        return Err(Error::NotAcceptable(format!(
            "Version {version} is not supported by the API. Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}."
        )));
    }
    Ok(version)
}

/// Cinder posts `volume-extended` at 2.51 (and Neutron its events at
/// whatever it knows): the events API is the same document at every
/// version served, so a newer version asked of it is served at the newest.
fn above_max_for_events(req: &Request) -> bool {
    req.uri().path().trim_end_matches('/') == "/v2.1/os-server-external-events"
        && requested(req.headers())
            .and_then(|v| ApiVersion::parse(&v))
            .is_some_and(|v| v > MAX_VERSION && v.0 == 2)
}

/// APIs Nova stopped serving at a version, each with the first version
/// that answers 404: 2.36 removed the proxies to the image, network and
/// volume services, 2.43 `os-hosts`. The table sits before routing, so a
/// removed family is gone whole (every method and sub-path) and no handler
/// needs to repeat the check.
const REMOVED: &[(&str, ApiVersion)] = &[
    ("/v2.1/images", ApiVersion(2, 36)),
    ("/v2.1/os-networks", ApiVersion(2, 36)),
    ("/v2.1/os-tenant-networks", ApiVersion(2, 36)),
    ("/v2.1/os-floating-ips", ApiVersion(2, 36)),
    ("/v2.1/os-floating-ip-pools", ApiVersion(2, 36)),
    ("/v2.1/os-security-groups", ApiVersion(2, 36)),
    ("/v2.1/os-security-group-rules", ApiVersion(2, 36)),
    ("/v2.1/os-volumes", ApiVersion(2, 36)),
    ("/v2.1/os-snapshots", ApiVersion(2, 36)),
    ("/v2.1/os-hosts", ApiVersion(2, 43)),
];

/// Whether `path` belongs to an API removed at or before `version`
/// (matched on whole path segments: `/os-floating-ips` is not
/// `/os-floating-ip-pools`).
pub fn removed(path: &str, version: ApiVersion) -> bool {
    let path = path.trim_end_matches('/');
    REMOVED.iter().any(|(prefix, since)| {
        version >= *since
            && path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// What Nova's server list query schema knows (its `index_query` through
/// 2.73, with the joined-table names it refuses later and paging).
const SERVER_QUERY: &[&str] = &[
    "user_id",
    "project_id",
    "tenant_id",
    "launch_index",
    "image_ref",
    "image",
    "kernel_id",
    "ramdisk_id",
    "hostname",
    "key_name",
    "power_state",
    "vm_state",
    "task_state",
    "host",
    "node",
    "flavor",
    "reservation_id",
    "launched_at",
    "terminated_at",
    "availability_zone",
    "name",
    "display_name",
    "description",
    "display_description",
    "locked_by",
    "uuid",
    "root_device_name",
    "config_drive",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "progress",
    "sort_key",
    "sort_dir",
    "all_tenants",
    "soft_deleted",
    "deleted",
    "status",
    "changes-since",
    "ip",
    "ip6",
    "created_at",
    "block_device_mapping",
    "services",
    "metadata",
    "system_metadata",
    "info_cache",
    "security_groups",
    "pci_devices",
    "limit",
    "marker",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "changes-before",
    "locked",
];

/// (method, path pattern, known parameters, the version that closed it).
type StrictQuery = (
    &'static str,
    &'static str,
    &'static [&'static str],
    (u32, u32),
);

/// The queries Nova closed (an unknown parameter is a 400 from then on):
/// the method, the path (`*` one segment), the parameters known and the
/// version that closed it — 2.75 most, 2.97 the new shares API, 2.99
/// console auth tokens.
const STRICT_QUERIES: &[StrictQuery] = &[
    ("GET", "/v2.1/servers", SERVER_QUERY, (2, 75)),
    ("GET", "/v2.1/servers/detail", SERVER_QUERY, (2, 75)),
    ("GET", "/v2.1/flavors", FLAVOR_QUERY, (2, 75)),
    ("GET", "/v2.1/flavors/detail", FLAVOR_QUERY, (2, 75)),
    (
        "GET",
        "/v2.1/os-keypairs",
        &["user_id", "limit", "marker"],
        (2, 75),
    ),
    ("GET", "/v2.1/os-keypairs/*", &["user_id"], (2, 75)),
    ("DELETE", "/v2.1/os-keypairs/*", &["user_id"], (2, 75)),
    ("GET", "/v2.1/limits", &["tenant_id"], (2, 75)),
    ("GET", "/v2.1/os-quota-sets/*", &["user_id"], (2, 75)),
    ("PUT", "/v2.1/os-quota-sets/*", &["user_id"], (2, 75)),
    ("DELETE", "/v2.1/os-quota-sets/*", &["user_id"], (2, 75)),
    ("GET", "/v2.1/os-quota-sets/*/detail", &["user_id"], (2, 75)),
    (
        "DELETE",
        "/v2.1/os-assisted-volume-snapshots/*",
        &["delete_info"],
        (2, 75),
    ),
    ("GET", "/v2.1/servers/*/shares", &[], (2, 97)),
    ("GET", "/v2.1/servers/*/shares/*", &[], (2, 97)),
    ("GET", "/v2.1/os-console-auth-tokens/*", &[], (2, 99)),
];

const FLAVOR_QUERY: &[&str] = &[
    "limit",
    "marker",
    "is_public",
    "minRam",
    "minDisk",
    "sort_key",
    "sort_dir",
];

/// Whether `path` has the shape of `pattern` (`*` matches one segment).
fn same_shape(pattern: &str, path: &str) -> bool {
    let (mut want, mut got) = (pattern.split('/'), path.trim_end_matches('/').split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// From the version that closed it (2.75 for most) a parameter the
/// operation's query schema lacks is a 400 (before, Nova dropped it); the
/// server list lets `_`-prefixed keys through as its schema's
/// `patternProperties` does.
fn check_query(req: &Request, version: ApiVersion) -> Result<(), Error> {
    let (method, path) = (req.method().as_str(), req.uri().path());
    let Some((_, _, known, _)) = STRICT_QUERIES
        .iter()
        .find(|(m, p, _, since)| *m == method && version >= *since && same_shape(p, path))
    else {
        return Ok(());
    };
    let query = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let servers = known.len() == SERVER_QUERY.len();
    match query
        .iter()
        .find(|(k, _)| !(known.contains(&k.as_str()) || servers && k.starts_with('_')))
    {
        Some((k, _)) => Err(Error::BadRequest(format!(
            "Invalid input for query parameters {k}. Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// Negotiate every `/v2.1` request, run it with its version and the
/// request id in scope, and answer with the version headers (and Nova's
/// older request id header, which tempest reads).
pub async fn middleware(mut req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v2.1") {
        return next.run(req).await;
    }
    let version = match negotiate(req.headers()) {
        Ok(v) => v,
        Err(Error::NotAcceptable(_)) if above_max_for_events(&req) => MAX_VERSION,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(version);
    let gone = removed(req.uri().path(), version);
    let refused = check_query(&req, version).err();
    let request_id = req
        .extensions()
        .get::<ferrostack_core::http::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let mut resp = if gone {
        Error::NotFound("The resource could not be found.".into()).into_response()
    } else if let Some(e) = refused {
        e.into_response()
    } else {
        crate::service::REQUEST_ID
            .scope(request_id.clone(), next.run(req))
            .await
    };
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-compute-request-id", v);
    }
    let modern = HeaderValue::from_str(&format!("compute {version}")).expect("ascii");
    let legacy = HeaderValue::from_str(&version.to_string()).expect("ascii");
    headers.insert("openstack-api-version", modern);
    headers.insert("x-openstack-nova-api-version", legacy);
    headers.insert(
        "vary",
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_nova_does() {
        assert_eq!(ApiVersion::parse("2.1"), Some(ApiVersion(2, 1)));
        assert_eq!(ApiVersion::parse("2.10"), Some(ApiVersion(2, 10)));
        assert_eq!(ApiVersion::parse("3.0"), Some(ApiVersion(3, 0)));
        for bad in [
            "2.01", "02.1", "0.1", "2", "2.", ".1", "2.1.1", "a.b", " 2.1", "2.-1",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
        assert!(ApiVersion(2, 10) > (2, 9));
        assert!(ApiVersion(2, 19) >= (2, 19));
        assert!(ApiVersion(3, 0) > (2, 100));
        assert_eq!(MAX_VERSION.to_string(), MAX_VERSION_TEXT);
    }

    #[test]
    fn removed_apis_match_whole_segments() {
        let v = |m| ApiVersion(2, m);
        assert!(!removed("/v2.1/images", v(35)));
        assert!(removed("/v2.1/images/abc/metadata", v(36)));
        assert!(removed("/v2.1/os-floating-ips/", v(36)));
        assert!(removed("/v2.1/os-floating-ip-pools", v(36)));
        assert!(!removed("/v2.1/servers/x/os-security-groups", v(90)));
        assert!(!removed("/v2.1/os-hostsx", v(43)));
        assert!(!removed("/v2.1/os-hosts", v(42)));
        assert!(removed("/v2.1/os-hosts/h/reboot", v(43)));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn negotiates_from_either_header() {
        assert_eq!(negotiate(&HeaderMap::new()).unwrap(), MIN_VERSION);
        let latest = headers(&[("openstack-api-version", "compute latest")]);
        assert_eq!(negotiate(&latest).unwrap(), MAX_VERSION);
        let legacy = headers(&[("x-openstack-nova-api-version", "latest")]);
        assert_eq!(negotiate(&legacy).unwrap(), MAX_VERSION);
        // Another service's entry is not this one's; the legacy header then counts.
        let other = headers(&[
            ("openstack-api-version", "volume 3.0"),
            ("x-openstack-nova-api-version", "2.1"),
        ]);
        assert_eq!(negotiate(&other).unwrap(), ApiVersion(2, 1));
        let both = headers(&[
            ("openstack-api-version", "volume 3.0, compute 2.1"),
            ("x-openstack-nova-api-version", "9.9"),
        ]);
        assert_eq!(negotiate(&both).unwrap(), ApiVersion(2, 1));
        let bad = headers(&[("openstack-api-version", "compute 2.01")]);
        assert!(matches!(negotiate(&bad), Err(Error::BadRequest(_))));
        let above = headers(&[("openstack-api-version", "compute 9.9")]);
        assert!(matches!(negotiate(&above), Err(Error::NotAcceptable(m))
            if m == format!("Version 9.9 is not supported by the API. Minimum is 2.1 and maximum is {MAX_VERSION}.")));
        let below = headers(&[("x-openstack-nova-api-version", "1.1")]);
        assert!(matches!(negotiate(&below), Err(Error::NotAcceptable(_))));
    }
}
