//! The single-page app's files, compiled into the binary: no build step,
//! no directory to install, and the page always matches the server.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferrostack_core::error::Error;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const FILES: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/app.js"),
    },
    Asset {
        name: "panels.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/panels.js"),
    },
    Asset {
        name: "core.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/core.js"),
    },
    Asset {
        name: "usage.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/usage.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/app.css"),
    },
];

/// The page's security headers: scripts and styles only from this origin
/// (no inline script can run, so injected markup stays inert), frames only
/// from the console proxy, and the page never framed by others.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-src http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `GET /`
pub async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/index.html"),
    )
        .into_response()
}

/// `GET /static/{file}`
pub async fn file(Path(name): Path<String>) -> Result<Response, Error> {
    let asset = FILES
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| Error::NotFound(format!("No file '{name}' here.")))?;
    Ok((
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset.body,
    )
        .into_response())
}
