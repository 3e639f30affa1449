//! `Range` and the conditional headers of a GET or HEAD.

use super::headers;
use axum::http::{HeaderMap, StatusCode};
use ferrostack_core::{Error, Result};

/// What part of an object of some size a request wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ranges {
    /// The whole object (no `Range`, or one Swift ignores).
    Full,
    /// `(start, length)` of each satisfiable range, in request order.
    Parts(Vec<(u64, u64)>),
    /// Nothing of it: 416.
    Unsatisfiable,
}

/// Parse `Range: bytes=a-b,c-,-n` against `size`; a malformed header is
/// ignored, as Swift ignores it.
pub fn parse(header: Option<&str>, size: u64) -> Ranges {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranges::Full;
    };
    let mut parts = Vec::new();
    for item in spec.split(',').map(str::trim) {
        let Some((a, b)) = item.split_once('-') else {
            return Ranges::Full;
        };
        let (a, b) = (a.trim(), b.trim());
        let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
            (None, Some(n)) if a.is_empty() => {
                if n == 0 {
                    None
                } else {
                    let n = n.min(size);
                    Some((size - n, n))
                }
            }
            (Some(s), None) if b.is_empty() => (s < size).then(|| (s, size - s)),
            (Some(s), Some(e)) if s <= e => (s < size).then(|| (s, e.min(size - 1) - s + 1)),
            _ => return Ranges::Full,
        };
        parts.extend(range.filter(|(_, len)| *len > 0));
    }
    if parts.is_empty() {
        Ranges::Unsatisfiable
    } else {
        Ranges::Parts(parts)
    }
}

fn etags_match(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|e| e.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|e| e == "*" || e == etag)
}

/// `Some(304)` when the client's copy is current, 412 when a
/// precondition fails, else `None` (serve the object).
pub fn conditional(h: &HeaderMap, etag: &str, modified_us: i64) -> Result<Option<StatusCode>> {
    let etag = etag.trim_matches('"');
    let modified_s = (modified_us + 999_999).div_euclid(1_000_000);
    let failed = || Error::Status(StatusCode::PRECONDITION_FAILED, String::new());
    if let Some(m) = headers::get(h, "if-match") {
        if !etags_match(&m, etag) {
            return Err(failed());
        }
    }
    if let Some(m) = headers::get(h, "if-none-match") {
        if etags_match(&m, etag) {
            return Ok(Some(StatusCode::NOT_MODIFIED));
        }
    }
    if let Some(t) =
        headers::get(h, "if-unmodified-since").and_then(|s| headers::parse_http_date(&s))
    {
        if modified_s > t {
            return Err(failed());
        }
    }
    if let Some(t) = headers::get(h, "if-modified-since").and_then(|s| headers::parse_http_date(&s))
    {
        if modified_s <= t && !h.contains_key("if-none-match") {
            return Ok(Some(StatusCode::NOT_MODIFIED));
        }
    }
    Ok(None)
}

/// The one range of a `Range` header that asks for one satisfiable range.
pub fn range_of(h: &HeaderMap, size: u64) -> Option<(u64, u64)> {
    match parse(headers::get(h, "range").as_deref(), size) {
        Ranges::Parts(p) if p.len() == 1 => Some(p[0]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 10), Ranges::Full);
        assert_eq!(parse(Some("bytes=0-3"), 10), Ranges::Parts(vec![(0, 4)]));
        assert_eq!(parse(Some("bytes=-3"), 10), Ranges::Parts(vec![(7, 3)]));
        assert_eq!(parse(Some("bytes=8-"), 10), Ranges::Parts(vec![(8, 2)]));
        assert_eq!(parse(Some("bytes=8-100"), 10), Ranges::Parts(vec![(8, 2)]));
        assert_eq!(
            parse(Some("bytes=0-0,5-6"), 10),
            Ranges::Parts(vec![(0, 1), (5, 2)])
        );
        assert_eq!(parse(Some("bytes=10-"), 10), Ranges::Unsatisfiable);
        assert_eq!(parse(Some("bytes=5-2"), 10), Ranges::Full);
        assert_eq!(parse(Some("items=1-2"), 10), Ranges::Full);
    }
}
