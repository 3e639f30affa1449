//! Where a console token travels: the `token` query parameter, the `path`
//! query parameter noVNC ≥ 1.1 uses (whose value is itself `…?token=…`), or
//! a `token` cookie (older noVNC). Nova's `new_websocket_client` reads the
//! query, then the cookie; the `path` parameter normally never reaches the
//! proxy (noVNC turns it into the WebSocket's request line), but a client
//! that opens the console page's URL directly sends it, so it is read too.

use axum::http::{header, HeaderMap};

/// Longest token we pass to the authorizer: Nova's are 36-character UUIDs.
const MAX_TOKEN_LEN: usize = 512;

/// Where the token was found, for the log line (never the token itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenSource {
    Query,
    PathParameter,
    Cookie,
}

impl TokenSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenSource::Query => "query",
            TokenSource::PathParameter => "path parameter",
            TokenSource::Cookie => "cookie",
        }
    }
}

/// The token of a WebSocket request, from its query string or cookies.
/// Empty values count as absent (as Python's `parse_qs` drops them).
pub(crate) fn find_token(
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<(String, TokenSource)> {
    if let Some(query) = query {
        if let Some(token) = query_param(query, "token") {
            return usable(token).map(|t| (t, TokenSource::Query));
        }
        if let Some(path) = query_param(query, "path") {
            // `path` holds the WebSocket's path and query: `?token=…` or
            // `novnc?token=…` when the base URL carries a path of its own.
            if let Some((_, inner)) = path.split_once('?') {
                if let Some(token) = query_param(inner, "token") {
                    return usable(token).map(|t| (t, TokenSource::PathParameter));
                }
            }
        }
    }
    cookie_token(headers).and_then(|t| usable(t).map(|t| (t, TokenSource::Cookie)))
}

fn usable(token: String) -> Option<String> {
    (token.len() <= MAX_TOKEN_LEN && !token.chars().any(char::is_control)).then_some(token)
}

/// The last non-empty value of `name` in an `application/x-www-form-urlencoded`
/// query (Nova takes `parse_qs(query)['token'].pop()`, the last one).
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split(['&', ';'])
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (form_decode(key) == name).then(|| form_decode(value))
        })
        .rfind(|value| !value.is_empty())
}

/// The `token` cookie: the last one, as Nova's loop over `SimpleCookie`
/// parts keeps it. Quoted values are unquoted.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|part| {
            let (name, value) = part.trim().split_once('=')?;
            if name.trim() != "token" {
                return None;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (!value.is_empty()).then(|| value.to_owned())
        })
        .next_back()
}

/// Decodes `+` as a space and `%XX` escapes; invalid escapes stay as they are.
fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Decodes `%XX` escapes into bytes, then UTF-8 (lossily).
pub(crate) fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(s)).into_owned()
}

pub(crate) fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cookies(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn token_from_query() {
        let found = find_token(Some("token=abc-123"), &HeaderMap::new());
        assert_eq!(found, Some(("abc-123".into(), TokenSource::Query)));
        let found = find_token(Some("a=1&token=x&token=y"), &HeaderMap::new());
        assert_eq!(found.unwrap().0, "y");
    }

    #[test]
    fn token_from_path_parameter() {
        let found = find_token(Some("path=%3Ftoken%3Dabc-123"), &HeaderMap::new());
        assert_eq!(found, Some(("abc-123".into(), TokenSource::PathParameter)));
        let found = find_token(Some("path=novnc%3Ftoken%3Dxyz"), &HeaderMap::new());
        assert_eq!(found.unwrap().0, "xyz");
        assert_eq!(find_token(Some("path=websockify"), &HeaderMap::new()), None);
    }

    #[test]
    fn token_from_cookie() {
        let headers = cookies("lang=en; token=abc-123; other=1");
        let found = find_token(None, &headers);
        assert_eq!(found, Some(("abc-123".into(), TokenSource::Cookie)));
        assert_eq!(find_token(None, &cookies("token=\"q\"")).unwrap().0, "q");
        // tempest sends the console URL's query as its cookie.
        assert_eq!(find_token(None, &cookies("path=%3Ftoken%3Dabc")), None);
    }

    #[test]
    fn empty_and_absent_tokens() {
        assert_eq!(find_token(Some("token="), &HeaderMap::new()), None);
        assert_eq!(find_token(Some(""), &HeaderMap::new()), None);
        assert_eq!(find_token(None, &cookies("token=")), None);
        let long = format!("token={}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(find_token(Some(&long), &HeaderMap::new()), None);
    }

    #[test]
    fn query_token_wins_over_cookie() {
        let found = find_token(Some("token=q"), &cookies("token=c")).unwrap();
        assert_eq!(found, ("q".into(), TokenSource::Query));
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%2e%2E%zz%"), "a..%zz%");
        assert_eq!(form_decode("a+b%2Bc"), "a b+c");
    }
}
