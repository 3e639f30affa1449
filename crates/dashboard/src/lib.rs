//! The dashboard: a single-page app embedded in the binary (see
//! `docs/adr/0008-dashboard-spa-and-proxy.md`) and the three things it needs
//! from a server — a login that keeps the Keystone token server-side
//! ([`session`]), a same-origin proxy to the service APIs ([`proxy`]) and
//! the static files ([`assets`]).
//!
//! The browser only ever holds an opaque session id in an `HttpOnly`,
//! `SameSite=Strict` cookie, and a CSRF token it must echo in the
//! `X-CSRF-Token` header of every request that changes something.

pub mod assets;
pub mod auth_api;
pub mod files;
pub mod keystone;
pub mod proxy;
pub mod session;
pub mod session_disk;
mod session_record;

use axum::routing::{any, get, post};
use axum::Router;
use ferrostack_core::error::ErrorStyle;
use ferrostack_core::http::{service_layer, ServiceLayer};
use std::sync::Arc;
use std::time::Duration;

/// What the dashboard needs to know about the deployment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The identity API users log in at, e.g. `http://127.0.0.1:5000/v3`.
    pub auth_url: String,
    /// Longest a session lives (the token's expiry ends it sooner).
    pub session_ttl: Duration,
    /// Add `Secure` to the session cookie (behind a TLS proxy).
    pub secure_cookie: bool,
    /// The region written into downloaded `openrc`/`clouds.yaml`.
    pub region: String,
    /// Where sessions are kept so they survive a restart (`None`: memory
    /// only): `<data_dir>/dashboard/sessions`.
    pub session_dir: Option<std::path::PathBuf>,
}

impl Settings {
    pub fn from_config(cfg: &ferrostack_core::config::Config) -> Settings {
        Settings {
            auth_url: cfg.service_auth_url(),
            session_ttl: Duration::from_secs(cfg.dashboard.session_ttl),
            secure_cookie: cfg.dashboard.secure_cookie,
            region: "RegionOne".into(),
            session_dir: Some(cfg.common.data_dir.join("dashboard").join("sessions")),
        }
    }
}

/// Shared state of every handler.
pub struct Dashboard {
    pub settings: Settings,
    pub sessions: session::Store,
    pub keystone: keystone::Keystone,
    /// Forwards proxied calls; no overall timeout, as an image upload may
    /// take minutes (the service's own read timeouts bound a stalled one).
    pub http: reqwest::Client,
}

pub type State = Arc<Dashboard>;

/// The dashboard's HTTP application.
pub fn router(settings: Settings) -> Router {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client");
    let state: State = Arc::new(Dashboard {
        keystone: keystone::Keystone::new(settings.auth_url.clone(), http.clone()),
        sessions: match &settings.session_dir {
            Some(dir) => session::Store::persistent(settings.session_ttl, dir.clone()),
            None => session::Store::new(settings.session_ttl),
        },
        settings,
        http,
    });
    Router::new()
        .route("/", get(assets::index))
        .route("/static/{file}", get(assets::file))
        .route("/auth/login", post(auth_api::login))
        .route("/auth/session", get(auth_api::current))
        .route("/auth/project", post(auth_api::switch_project))
        .route("/auth/logout", post(auth_api::logout))
        .route("/auth/openrc", get(files::openrc))
        .route("/auth/clouds.yaml", get(files::clouds_yaml))
        .route("/api/{service}/{*rest}", any(proxy::forward))
        .fallback(ferrostack_core::http::not_found_fallback)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            ServiceLayer::new("dashboard", ErrorStyle::Keystone, ""),
            service_layer,
        ))
        .layer(axum::middleware::map_response(
            proxy::restore_upstream_request_id,
        ))
}
