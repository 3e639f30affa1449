//! noVNC's files, served from `web_dir` as websockify's `SimpleHTTPRequestHandler`
//! does, without its directory listings: a request path names a file under
//! `web_dir` or gets 404. The path is percent-decoded first, and any
//! segment that could leave `web_dir` (`..`, `.`, hidden names, backslashes,
//! NUL) is refused, so neither `/../etc/passwd` nor `/%2e%2e/…` nor
//! `//etc/passwd` reaches the filesystem outside it. Symbolic links inside
//! `web_dir` are followed (Debian's `vnc_auto.html` is one).

use std::path::{Path, PathBuf};

use axum::{
    body::Body,
    http::{header, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use tokio_util::io::ReaderStream;

use crate::token::percent_decode_bytes;

/// Serves `request_path` (the URI's path, query already stripped).
pub(crate) async fn serve(web_dir: &Path, method: &Method, request_path: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let Some(relative) = safe_relative_path(request_path) else {
        tracing::debug!(path = request_path, "console: refused static path");
        return not_found();
    };
    let mut path = web_dir.join(&relative);
    let mut metadata = match tokio::fs::metadata(&path).await {
        Ok(m) => m,
        Err(_) => return not_found(),
    };
    if metadata.is_dir() {
        // No listings; a directory serves its index.html if it has one.
        path.push("index.html");
        metadata = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m,
            _ => return not_found(),
        };
    }
    if !metadata.is_file() {
        return not_found();
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return not_found(),
    };
    let content_type = content_type(&path);
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(ReaderStream::with_capacity(file, 64 * 1024))
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(metadata.len()));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not Found\n",
    )
        .into_response()
}

/// The request path as a path relative to `web_dir`, or `None` when it is
/// not valid UTF-8 after decoding or has a segment that is not a plain name.
pub(crate) fn safe_relative_path(request_path: &str) -> Option<PathBuf> {
    let decoded = String::from_utf8(percent_decode_bytes(request_path)).ok()?;
    let mut relative = PathBuf::new();
    for segment in decoded.split('/') {
        if segment.is_empty() {
            continue;
        }
        let plain = !segment.starts_with('.')
            && !segment.contains(['\\', '\0', ':'])
            && !segment.chars().any(char::is_control);
        if !plain {
            return None;
        }
        relative.push(segment);
    }
    Some(relative)
}

/// The content type of a file by its extension.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("gif") => "image/gif",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("mp3") => "audio/mpeg",
        Some("oga" | "ogg") => "audio/ogg",
        Some("wasm") => "application/wasm",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths() {
        assert_eq!(
            safe_relative_path("/vnc_lite.html"),
            Some("vnc_lite.html".into())
        );
        assert_eq!(safe_relative_path("/app/ui.js"), Some("app/ui.js".into()));
        assert_eq!(safe_relative_path("//app//ui.js"), Some("app/ui.js".into()));
        assert_eq!(safe_relative_path("/app%2Fui.js"), Some("app/ui.js".into()));
        assert_eq!(safe_relative_path("/a%20b.html"), Some("a b.html".into()));
        assert_eq!(safe_relative_path("/"), Some(PathBuf::new()));
    }

    #[test]
    fn traversal_is_refused() {
        for path in [
            "/../etc/passwd",
            "/app/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/..%2fetc/passwd",
            "/./vnc.html",
            "/app/..",
            "/.git/config",
            "/..\\etc\\passwd",
            "/%5c..%5cetc",
            "/vnc.html%00.png",
            "/%ff.html",
            "/C:/Windows",
        ] {
            assert_eq!(safe_relative_path(path), None, "{path}");
        }
    }

    #[test]
    fn absolute_paths_stay_inside() {
        // A doubled slash is an empty segment, never an absolute path.
        let p = safe_relative_path("//etc/passwd").unwrap();
        assert!(p.is_relative());
        assert_eq!(
            Path::new("/srv/novnc").join(p),
            Path::new("/srv/novnc/etc/passwd")
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("vnc.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a/b.JS")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x.css")), "text/css; charset=utf-8");
        assert_eq!(content_type(Path::new("x.svg")), "image/svg+xml");
        assert_eq!(content_type(Path::new("x.png")), "image/png");
        assert_eq!(content_type(Path::new("x.ico")), "image/x-icon");
        assert_eq!(content_type(Path::new("x.json")), "application/json");
        assert_eq!(
            content_type(Path::new("Makefile")),
            "application/octet-stream"
        );
    }
}
