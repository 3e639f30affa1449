//! The Origin check of Nova's `NovaProxyRequestHandler.new_websocket_client`:
//! a browser page may open the console only if it was served from this
//! host (the `Host` header's hostname) or from one of
//! `[console] allowed_origins`, over the scheme the proxy is reached by. A
//! request without `Origin` comes from a non-browser client (tempest, a
//! script) and passes: the token is what guards the console.

use std::fmt;

use axum::http::{header, HeaderMap};

/// Why an Origin was refused; the texts are Nova's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OriginRefusal {
    Invalid,
    HostMismatch,
    SchemeMismatch,
}

impl fmt::Display for OriginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OriginRefusal::Invalid => "Origin header not valid",
            OriginRefusal::HostMismatch => "Origin header does not match this host",
            OriginRefusal::SchemeMismatch => "Origin header protocol does not match this host",
        })
    }
}

/// Hostnames of `[console] allowed_origins`, normalised once: lowercase,
/// without port or brackets. An entry written as a URL counts by its host.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    pub(crate) fn new(entries: &[String]) -> Self {
        let hosts = entries
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .filter_map(|entry| match parse_origin(entry) {
                Some((_, host)) => Some(host),
                None => hostname(entry),
            })
            .collect();
        AllowedOrigins(hosts)
    }
}

/// Checks the request's `Origin` against its `Host` (or the request URI's
/// authority) and the allowed origins. The scheme must be the one the proxy
/// is reached by: `http` (this router does not terminate TLS), or what a
/// TLS-terminating front end says in `X-Forwarded-Proto`.
pub(crate) fn check(
    headers: &HeaderMap,
    uri_authority: Option<&str>,
    allowed: &AllowedOrigins,
) -> Result<(), OriginRefusal> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| OriginRefusal::Invalid)?;
    let (scheme, host) = parse_origin(origin).ok_or(OriginRefusal::Invalid)?;

    let request_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(uri_authority)
        .and_then(hostname);
    let host_ok = request_host.as_deref() == Some(host.as_str()) || allowed.0.contains(&host);
    if !host_ok {
        return Err(OriginRefusal::HostMismatch);
    }

    let expected_scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "http".to_owned());
    if scheme != expected_scheme {
        return Err(OriginRefusal::SchemeMismatch);
    }
    Ok(())
}

/// `scheme://host[:port]` (an Origin, RFC 6454) → lowercase scheme and
/// hostname. Anything after the authority is ignored, as `urlparse` does;
/// `null` and other opaque origins give `None`.
fn parse_origin(origin: &str) -> Option<(String, String)> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    Some((scheme.to_ascii_lowercase(), hostname(authority)?))
}

/// The hostname of `host[:port]` or `[v6][:port]`, lowercase, without
/// brackets; `None` when empty.
fn hostname(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split_once(']')?.0
    } else if authority.matches(':').count() > 1 {
        // A bare IPv6 address.
        authority
    } else {
        authority.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn allowed(entries: &[&str]) -> AllowedOrigins {
        AllowedOrigins::new(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn missing_origin_passes() {
        let h = headers(&[("host", "console.example:6080")]);
        assert_eq!(check(&h, None, &allowed(&[])), Ok(()));
    }

    #[test]
    fn origin_must_match_host() {
        let none = allowed(&[]);
        let ok = headers(&[
            ("host", "Console.Example:6080"),
            ("origin", "http://console.example:6080"),
        ]);
        assert_eq!(check(&ok, None, &none), Ok(()));
        // Nova compares hostnames only, not ports.
        let other_port = headers(&[
            ("host", "console.example:6080"),
            ("origin", "http://console.example"),
        ]);
        assert_eq!(check(&other_port, None, &none), Ok(()));
        let evil = headers(&[
            ("host", "console.example:6080"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(check(&evil, None, &none), Err(OriginRefusal::HostMismatch));
        let suffix = headers(&[("host", "example"), ("origin", "http://evil.example")]);
        assert_eq!(
            check(&suffix, None, &none),
            Err(OriginRefusal::HostMismatch)
        );
        let v6 = headers(&[("host", "[::1]:6080"), ("origin", "http://[::1]:6080")]);
        assert_eq!(check(&v6, None, &none), Ok(()));
        let no_host = headers(&[("origin", "http://console.example")]);
        assert_eq!(
            check(&no_host, None, &none),
            Err(OriginRefusal::HostMismatch)
        );
        assert_eq!(check(&no_host, Some("console.example:6080"), &none), Ok(()));
    }

    #[test]
    fn allowed_origins() {
        let list = allowed(&[
            "dashboard.example",
            "HTTPS://Other.Example:8443",
            "third.example:80",
        ]);
        for origin in [
            "http://dashboard.example",
            "http://other.example",
            "http://third.example",
        ] {
            let h = headers(&[("host", "console.example:6080"), ("origin", origin)]);
            assert_eq!(check(&h, None, &list), Ok(()), "{origin}");
        }
    }

    #[test]
    fn invalid_origins() {
        let none = allowed(&[]);
        for origin in [
            "null",
            "",
            "http://",
            "://host",
            "http:host",
            "1http://host",
        ] {
            let h = headers(&[("host", "host"), ("origin", origin)]);
            assert_eq!(
                check(&h, None, &none),
                Err(OriginRefusal::Invalid),
                "{origin:?}"
            );
        }
    }

    #[test]
    fn scheme_must_match_the_proxy() {
        let none = allowed(&[]);
        let https = headers(&[
            ("host", "console.example"),
            ("origin", "https://console.example"),
        ]);
        assert_eq!(
            check(&https, None, &none),
            Err(OriginRefusal::SchemeMismatch)
        );
        let forwarded = headers(&[
            ("host", "console.example"),
            ("origin", "https://console.example"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(check(&forwarded, None, &none), Ok(()));
        let downgraded = headers(&[
            ("host", "console.example"),
            ("origin", "http://console.example"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            check(&downgraded, None, &none),
            Err(OriginRefusal::SchemeMismatch)
        );
    }
}
