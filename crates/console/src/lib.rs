//! The noVNC console proxy (Nova's `nova-novncproxy`).
//!
//! The compute API answers `os-getVNCConsole` / `remote-consoles` with a URL
//! such as `http://<host>:6080/vnc_lite.html?path=%3Ftoken%3D<token>`. The
//! browser loads noVNC's page from this proxy ([`static_files`]); noVNC then
//! opens a WebSocket back to it (`ws://<host>:6080/?token=<token>`), and the
//! proxy checks the Origin, asks a [`ConsoleAuthorizer`] which guest the
//! token opens and bridges the WebSocket to that guest's VNC server
//! ([`proxy`]). The token store belongs to the compute service; this crate
//! only calls the trait.
//!
//! [`router`] serves both on any path: a request that asks for a WebSocket
//! upgrade is a console connection (websockify accepts any path), any other
//! `GET`/`HEAD` is a file of `web_dir`. To log peers, serve it with
//! `into_make_service_with_connect_info::<SocketAddr>()`. Do not wrap it in
//! a layer that logs request URIs with their query: the token is there.

mod origin;
mod proxy;
mod static_files;
mod token;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderMap},
    response::Response,
    Router,
};
use ferrostack_hypervisor::ConsoleTarget;

/// Where Debian's `novnc` package installs noVNC.
pub const DEFAULT_WEB_DIR: &str = "/usr/share/novnc";

/// The guest a console token opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleConnection {
    pub instance_id: String,
    pub target: ConsoleTarget,
}

/// Validates console tokens (the compute service keeps them, hashed).
#[async_trait::async_trait]
pub trait ConsoleAuthorizer: Send + Sync {
    /// The guest a token opens; None for an unknown, expired or used-up token or a deleted instance.
    async fn authorize(&self, token: &str) -> Option<ConsoleConnection>;
}

/// How the proxy is set up.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// noVNC's files (Debian's `novnc` package: /usr/share/novnc, installed on this machine).
    pub web_dir: PathBuf,
    /// Extra hosts allowed in the Origin header (Nova's [console] allowed_origins).
    pub allowed_origins: Vec<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            web_dir: PathBuf::from(DEFAULT_WEB_DIR),
            allowed_origins: Vec::new(),
        }
    }
}

pub(crate) struct Shared {
    web_dir: PathBuf,
    allowed_origins: origin::AllowedOrigins,
    authorizer: Arc<dyn ConsoleAuthorizer>,
}

/// The proxy: noVNC's files and the console WebSocket, on every path.
pub fn router(config: ProxyConfig, authorizer: Arc<dyn ConsoleAuthorizer>) -> Router {
    let shared = Arc::new(Shared {
        allowed_origins: origin::AllowedOrigins::new(&config.allowed_origins),
        web_dir: config.web_dir,
        authorizer,
    });
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    if wants_websocket(&parts.headers) {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "unknown".to_owned(),
                |ConnectInfo(addr)| addr.to_string(),
            );
        proxy::websocket(shared, parts, peer).await
    } else {
        static_files::serve(&shared.web_dir, &parts.method, parts.uri.path()).await
    }
}

/// `Upgrade: websocket` (any case, possibly among other protocols).
fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
}
