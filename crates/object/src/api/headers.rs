//! Request headers in, response headers out: the metadata each kind of
//! resource keeps, Swift's limits on it, and Swift's time formats.

use crate::store::Meta;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ferrostack_core::{Error, Result};

/// Swift's default constraints (`/info` announces them).
pub const MAX_META_NAME: usize = 128;
pub const MAX_META_VALUE: usize = 256;
pub const MAX_META_COUNT: usize = 90;
pub const MAX_META_OVERALL: usize = 4096;
pub const MAX_OBJECT_NAME: usize = 1024;
pub const MAX_CONTAINER_NAME: usize = 256;

/// Which resource the metadata belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Account,
    Container,
    Object,
}

impl Scope {
    fn word(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Container => "container",
            Scope::Object => "object",
        }
    }

    /// Headers besides `x-<scope>-meta-*` the resource keeps.
    fn kept(self) -> &'static [&'static str] {
        match self {
            Scope::Account => &["x-account-quota-bytes", "x-account-quota-count"],
            Scope::Container => &[
                "x-container-read",
                "x-container-write",
                "x-versions-location",
                "x-history-location",
            ],
            Scope::Object => &[
                "content-disposition",
                "content-encoding",
                "content-language",
                "cache-control",
                "expires",
                "x-robots-tag",
                "x-object-manifest",
            ],
        }
    }
}

pub fn text(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

pub fn get(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(text)
}

/// The metadata changes a request asks for: `Some(value)` sets, `None`
/// removes (an empty value or `X-Remove-…`).
pub fn updates(h: &HeaderMap, scope: Scope) -> Vec<(String, Option<String>)> {
    let meta_prefix = format!("x-{}-meta-", scope.word());
    let remove_prefix = format!("x-remove-{}-", scope.word());
    let mut out = Vec::new();
    for (name, value) in h {
        let n = name.as_str();
        if n.starts_with(&meta_prefix) || scope.kept().contains(&n) {
            let v = text(value);
            let v = v.trim().to_owned();
            // An object keeps an empty value; elsewhere it removes the item.
            let keep = !v.is_empty() || scope == Scope::Object;
            out.push((n.to_owned(), keep.then_some(v)));
        } else if let Some(rest) = n.strip_prefix(&remove_prefix) {
            let target = format!("x-{}-{rest}", scope.word());
            if target.starts_with(&meta_prefix) || scope.kept().contains(&target.as_str()) {
                out.push((target, None));
            }
        } else if scope == Scope::Container && n == "x-remove-versions-location" {
            out.push(("x-versions-location".into(), None));
        } else if scope == Scope::Container && n == "x-remove-history-location" {
            out.push(("x-history-location".into(), None));
        }
    }
    out
}

pub fn apply(meta: &mut Meta, updates: Vec<(String, Option<String>)>) {
    for (k, v) in updates {
        match v {
            Some(v) => {
                meta.insert(k, v);
            }
            None => {
                meta.remove(&k);
            }
        }
    }
}

/// Swift's limits on user metadata: 400 naming what is wrong.
pub fn check(meta: &Meta, scope: Scope) -> Result<()> {
    let prefix = format!("x-{}-meta-", scope.word());
    let (mut count, mut size) = (0, 0);
    for (k, v) in meta {
        let Some(name) = k.strip_prefix(&prefix) else {
            continue;
        };
        if name.is_empty() {
            return Err(Error::BadRequest("Metadata name cannot be empty".into()));
        }
        if name.len() > MAX_META_NAME {
            return Err(Error::BadRequest(format!("Metadata name too long: {k}")));
        }
        if v.len() > MAX_META_VALUE {
            return Err(Error::BadRequest(format!(
                "Metadata value longer than {MAX_META_VALUE}: {k}"
            )));
        }
        count += 1;
        size += name.len() + v.len();
    }
    if count > MAX_META_COUNT {
        return Err(Error::BadRequest(format!(
            "Too many metadata items; max {MAX_META_COUNT}"
        )));
    }
    if size > MAX_META_OVERALL {
        return Err(Error::BadRequest(format!(
            "Total metadata too large; max {MAX_META_OVERALL}"
        )));
    }
    Ok(())
}

/// Set a response header, skipping values a header cannot carry.
pub fn put(h: &mut HeaderMap, name: &str, value: impl AsRef<str>) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value.as_ref().as_bytes()),
    ) {
        h.insert(n, v);
    }
}

pub fn put_meta(h: &mut HeaderMap, meta: &Meta, hide_private: bool) {
    for (k, v) in meta {
        let private = matches!(k.as_str(), "x-container-read" | "x-container-write")
            || k.ends_with("temp-url-key")
            || k.ends_with("temp-url-key-2");
        if hide_private && private {
            continue;
        }
        put(h, k, v);
    }
}

/// `Last-Modified`: the HTTP date of the second after (Swift rounds up).
pub fn http_date(us: i64) -> String {
    let secs = (us + 999_999).div_euclid(1_000_000).max(0) as u64;
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Unix seconds of an HTTP date.
pub fn parse_http_date(s: &str) -> Option<i64> {
    httpdate::parse_http_date(s.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

/// `X-Delete-At` (or `X-Delete-After` seconds from now): 400 when not a
/// number or in the past.
pub fn delete_at(h: &HeaderMap, now_s: i64) -> Result<Option<Option<i64>>> {
    if let Some(after) = get(h, "x-delete-after") {
        let n: i64 = after
            .trim()
            .parse()
            .map_err(|_| Error::BadRequest("Non-integer X-Delete-After".into()))?;
        if n < 0 {
            return Err(Error::BadRequest("X-Delete-After in past".into()));
        }
        return Ok(Some(Some(now_s + n)));
    }
    match get(h, "x-delete-at") {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(Some(None)),
        Some(v) => {
            let t: f64 = v
                .trim()
                .parse()
                .map_err(|_| Error::BadRequest("Non-integer X-Delete-At".into()))?;
            let t = t as i64;
            if t <= now_s {
                return Err(Error::BadRequest("X-Delete-At in past".into()));
            }
            Ok(Some(Some(t)))
        }
    }
}
