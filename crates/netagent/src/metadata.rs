//! The metadata proxy: instances ask `http://169.254.169.254/…`; inside
//! their router's (or, for isolated networks, their DHCP) namespace this
//! proxy answers, finds which instance asks from the source address, and
//! forwards to the compute metadata API with the instance id signed by the
//! shared secret (`X-Instance-ID-Signature`, HMAC-SHA256), as Neutron's
//! metadata agent does. The listener is a socket opened inside the
//! namespace and served by this process, so nothing outlives the agent.

use crate::Plugin;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub const METADATA_ADDRESS: &str = "169.254.169.254";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Router(String),
    Network(String),
}

struct ProxyContext {
    target: Target,
    plugin: Plugin,
    upstream: String,
    secret: String,
    client: reqwest::Client,
}

/// Neutron's signature: hex HMAC-SHA256 of the instance id.
pub fn sign(secret: &str, instance_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(instance_id.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Open a TCP listener inside a named namespace: a short-lived thread
/// enters the namespace, binds, and the socket stays in that namespace.
pub fn listen_in(ns: &str, addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let target = std::fs::File::open(&path)?;
        // SAFETY: setns on this thread only; the thread ends right after.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })
    .join()
    .map_err(|_| std::io::Error::other("namespace thread panicked"))?
}

async fn forward(
    State(ctx): State<Arc<ProxyContext>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let ip = peer.ip().to_string();
    let mut args = json!({ "ip": ip });
    match &ctx.target {
        Target::Router(r) => args["router_id"] = json!(r),
        Target::Network(n) => args["network_id"] = json!(n),
    }
    let who = match ctx.plugin.call("metadata_lookup", args).await {
        Ok(w) => w,
        Err(e) => {
            tracing::info!(%ip, error = %e, "metadata request from an unknown address");
            return (StatusCode::NOT_FOUND, "404 Not Found\n").into_response();
        }
    };
    let instance = who["instance_id"].as_str().unwrap_or_default().to_owned();
    let project = who["project_id"].as_str().unwrap_or_default().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let method = req.method().clone();
    let mut headers = HeaderMap::new();
    for (k, v) in req.headers() {
        if matches!(k.as_str(), "accept" | "content-type" | "user-agent") {
            headers.insert(k.clone(), v.clone());
        }
    }
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request too large\n").into_response(),
    };
    let mut set = |k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(k, v);
        }
    };
    set("x-forwarded-for", &ip);
    set("x-instance-id", &instance);
    set("x-tenant-id", &project);
    set("x-instance-id-signature", &sign(&ctx.secret, &instance));
    match &ctx.target {
        Target::Router(r) => set("x-neutron-router-id", r),
        Target::Network(n) => set("x-neutron-network-id", n),
    }
    let upstream = ctx
        .client
        .request(method, format!("{}{path}", ctx.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match upstream {
        Ok(resp) => {
            let status = resp.status();
            let ctype = resp.headers().get("content-type").cloned();
            let bytes = resp.bytes().await.unwrap_or_default();
            let mut out = Response::new(Body::from(bytes));
            *out.status_mut() = status;
            if let Some(c) = ctype {
                out.headers_mut().insert("content-type", c);
            }
            out
        }
        Err(e) => {
            tracing::warn!(error = %e, "metadata upstream unreachable");
            (StatusCode::BAD_GATEWAY, "metadata service unavailable\n").into_response()
        }
    }
}

/// The proxies this agent runs, by namespace.
pub struct Proxies {
    plugin: Plugin,
    upstream: String,
    secret: String,
    running: HashMap<String, (Target, tokio::task::JoinHandle<()>)>,
}

impl Proxies {
    pub fn new(plugin: Plugin, upstream: &str, secret: &str) -> Proxies {
        Proxies {
            plugin,
            upstream: upstream.to_owned(),
            secret: secret.to_owned(),
            running: HashMap::new(),
        }
    }

    /// Serve 169.254.169.254:80 in `ns` (the address must be on a device
    /// there already).
    pub async fn ensure(&mut self, ns: &str, target: Target) -> Result<(), String> {
        if let Some((t, task)) = self.running.get(ns) {
            if *t == target && !task.is_finished() {
                return Ok(());
            }
        }
        self.remove(ns);
        let addr: SocketAddr = format!("{METADATA_ADDRESS}:80").parse().expect("address");
        let ns_owned = ns.to_owned();
        let listener = tokio::task::spawn_blocking(move || listen_in(&ns_owned, addr))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("metadata proxy in {ns}: {e}"))?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let ctx = Arc::new(ProxyContext {
            target: target.clone(),
            plugin: self.plugin.clone(),
            upstream: self.upstream.clone(),
            secret: self.secret.clone(),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?,
        });
        let app = axum::Router::new().fallback(forward).with_state(ctx);
        let task = tokio::spawn(async move {
            // Guests are clients too: bounded like every API port.
            let _ = ferrostack_core::server::serve(
                listener,
                app,
                ferrostack_core::server::Limits::default(),
                std::future::pending(),
            )
            .await;
        });
        self.running.insert(ns.to_owned(), (target, task));
        Ok(())
    }

    pub fn remove(&mut self, ns: &str) {
        if let Some((_, task)) = self.running.remove(ns) {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
