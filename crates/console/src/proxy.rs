//! The WebSocket side: decide whether a request may open a console, then
//! bridge the WebSocket to the guest's VNC server.
//!
//! Like Nova's proxy (websockify underneath), the WebSocket handshake is
//! always completed: a refused request gets `101 Switching Protocols` and
//! then an immediate close, never a byte from a guest. Nova raises inside
//! `new_websocket_client`, after the handshake, and websockify drops the
//! connection; tempest's `test_novnc_bad_token` reads frames after the 101
//! and expects no data, so the close frame carries no status code or reason
//! (a payload would be read as data).

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        FromRequestParts,
    },
    http::request::Parts,
    response::{IntoResponse, Response},
};
use ferrostack_hypervisor::ConsoleTarget;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{origin, token, ConsoleConnection, Shared};

/// Bytes read from the guest per WebSocket message.
const CHUNK: usize = 64 * 1024;
/// Largest message or frame accepted from a client (VNC client messages are
/// small; a pasted clipboard is the largest).
const MAX_CLIENT_MESSAGE: usize = 4 * 1024 * 1024;
/// Cap on tungstenite's outgoing buffer (one chunk is in flight at a time).
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// How long connecting to the guest's VNC server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the client's reply to our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a WebSocket request gets no console. Logged; never contains the token.
#[derive(Debug)]
enum Refusal {
    Origin(origin::OriginRefusal),
    NoToken,
    InvalidToken(token::TokenSource),
    TargetNotLoopback { instance_id: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Origin(reason) => write!(f, "{reason}"),
            Refusal::NoToken => {
                f.write_str("no token in the query, the path parameter or a cookie")
            }
            Refusal::InvalidToken(source) => write!(
                f,
                "the token (from the {}) is unknown, expired or used up, or its instance is gone",
                source.as_str()
            ),
            Refusal::TargetNotLoopback { instance_id } => write!(
                f,
                "the VNC server of instance {instance_id} is not on a loopback address"
            ),
        }
    }
}

/// A guest's VNC server, resolved and checked.
#[derive(Debug)]
enum Target {
    Unix(std::path::PathBuf),
    Tcp(SocketAddr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
            Target::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// Handles a request that asks for a WebSocket upgrade, whatever its path.
pub(crate) async fn websocket(shared: Arc<Shared>, mut parts: Parts, peer: String) -> Response {
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            tracing::info!(%peer, reason = %rejection, "console: bad WebSocket handshake");
            return rejection.into_response();
        }
    };
    let decision = decide(&shared, &parts).await;
    // The Origin is no secret and tells an operator which page was refused.
    let origin: String = parts
        .headers
        .get(axum::http::header::ORIGIN)
        .map(|o| {
            String::from_utf8_lossy(o.as_bytes())
                .chars()
                .take(200)
                .collect()
        })
        .unwrap_or_default();
    let failed_peer = peer.clone();
    upgrade
        // websockify's only subprotocol today; `base64` is long obsolete.
        .protocols(["binary"])
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_failed_upgrade(move |error| {
            tracing::warn!(peer = %failed_peer, %error, "console: WebSocket upgrade failed");
        })
        .on_upgrade(move |socket| async move {
            match decision {
                Ok((connection, target)) => bridge(socket, connection, target, peer).await,
                Err(refusal) => {
                    tracing::warn!(%peer, %origin, reason = %refusal, "console connection refused");
                    refuse(socket).await;
                }
            }
        })
}

/// Origin first (so a cross-site attempt does not use up the token), then
/// the token, then the target.
async fn decide(shared: &Shared, parts: &Parts) -> Result<(ConsoleConnection, Target), Refusal> {
    let authority = parts.uri.authority().map(|a| a.as_str());
    origin::check(&parts.headers, authority, &shared.allowed_origins).map_err(Refusal::Origin)?;
    let (token, source) =
        token::find_token(parts.uri.query(), &parts.headers).ok_or(Refusal::NoToken)?;
    let connection = shared
        .authorizer
        .authorize(&token)
        .await
        .ok_or(Refusal::InvalidToken(source))?;
    let target = match &connection.target {
        ConsoleTarget::Unix { path } => Target::Unix(path.clone()),
        ConsoleTarget::Tcp { host, port } => match loopback_addr(host, *port) {
            Some(addr) => Target::Tcp(addr),
            None => {
                return Err(Refusal::TargetNotLoopback {
                    instance_id: connection.instance_id,
                })
            }
        },
    };
    Ok((connection, target))
}

/// `host` as a loopback socket address: an IP literal (IPv6 with or without
/// brackets, IPv4-mapped included) or `localhost`; no name is resolved.
pub(crate) fn loopback_addr(host: &str, port: u16) -> Option<SocketAddr> {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().ok()?
    };
    ip.to_canonical()
        .is_loopback()
        .then_some(SocketAddr::new(ip, port))
}

/// Completes a refused handshake: an empty close frame, a short wait for
/// the client's reply (so unread client bytes do not turn our close into a
/// reset), then the connection is dropped.
async fn refuse(mut socket: WebSocket) {
    if socket.send(Message::Close(None)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn bridge(socket: WebSocket, connection: ConsoleConnection, target: Target, peer: String) {
    let instance_id = connection.instance_id;
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
        match &target {
            Target::Unix(path) => tokio::net::UnixStream::connect(path)
                .await
                .map(Stream::Unix),
            Target::Tcp(addr) => tokio::net::TcpStream::connect(addr).await.map(Stream::Tcp),
        }
    })
    .await
    .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")));
    let stream = match connected {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(
                %instance_id, %peer, %target, %error,
                "console connection refused: the guest's VNC server does not answer"
            );
            refuse(socket).await;
            return;
        }
    };
    tracing::info!(%instance_id, %peer, %target, "console connected");
    let started = Instant::now();
    let summary = match stream {
        Stream::Unix(s) => pump(socket, s).await,
        Stream::Tcp(s) => {
            let _ = s.set_nodelay(true);
            pump(socket, s).await
        }
    };
    tracing::info!(
        %instance_id,
        %peer,
        ended_by = %summary.end,
        bytes_from_client = summary.from_client,
        bytes_to_client = summary.to_client,
        seconds = started.elapsed().as_secs(),
        "console closed"
    );
}

enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

/// How a bridged session ended.
#[derive(Debug)]
enum End {
    ClientClosed,
    ClientError(String),
    TargetClosed,
    TargetError(io::Error),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::ClientClosed => f.write_str("client closed"),
            End::ClientError(e) => write!(f, "client error: {e}"),
            End::TargetClosed => f.write_str("target closed"),
            End::TargetError(e) => write!(f, "target error: {e}"),
        }
    }
}

struct Summary {
    end: End,
    from_client: u64,
    to_client: u64,
}

/// Copies bytes both ways until either side ends, then closes both. Each
/// direction holds at most one message or chunk: a slow reader stalls its
/// writer instead of growing a buffer.
async fn pump<S>(socket: WebSocket, target: S) -> Summary
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (mut target_rx, mut target_tx) = tokio::io::split(target);
    let mut from_client = 0u64;
    let mut to_client = 0u64;

    let end = {
        let upstream = async {
            while let Some(message) = ws_rx.next().await {
                let data: Bytes = match message {
                    Ok(Message::Binary(data)) => data,
                    // Text frames are taken as their bytes (lenient clients).
                    Ok(Message::Text(text)) => Bytes::from(text),
                    Ok(Message::Close(_)) => return End::ClientClosed,
                    Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                    Err(error) => return End::ClientError(error.to_string()),
                };
                if let Err(error) = target_tx.write_all(&data).await {
                    return End::TargetError(error);
                }
                from_client += data.len() as u64;
            }
            End::ClientClosed
        };
        let downstream = async {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match target_rx.read(&mut buf).await {
                    Ok(0) => return End::TargetClosed,
                    Ok(n) => n,
                    Err(error) => return End::TargetError(error),
                };
                let message = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                if let Err(error) = ws_tx.send(message).await {
                    return End::ClientError(error.to_string());
                }
                to_client += n as u64;
            }
        };
        tokio::select! {
            end = upstream => end,
            end = downstream => end,
        }
    };

    // Close both sides; a stuck peer cannot hold the task.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = target_tx.shutdown().await;
        if matches!(end, End::TargetClosed | End::TargetError(_)) {
            // websockify's close when the guest side ends.
            let frame = CloseFrame {
                code: 1000,
                reason: "Target closed".into(),
            };
            let _ = ws_tx.send(Message::Close(Some(frame))).await;
        }
        // Sends our close (or the reply to the client's) and flushes.
        let _ = ws_tx.close().await;
        if matches!(end, End::TargetClosed | End::TargetError(_)) {
            while let Some(Ok(message)) = ws_rx.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        }
    })
    .await;

    Summary {
        end,
        from_client,
        to_client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert_eq!(
            loopback_addr("127.0.0.1", 5900),
            Some("127.0.0.1:5900".parse().unwrap())
        );
        assert_eq!(
            loopback_addr("127.1.2.3", 5901),
            Some("127.1.2.3:5901".parse().unwrap())
        );
        assert_eq!(
            loopback_addr("::1", 5900),
            Some("[::1]:5900".parse().unwrap())
        );
        assert_eq!(
            loopback_addr("[::1]", 5900),
            Some("[::1]:5900".parse().unwrap())
        );
        assert!(loopback_addr("::ffff:127.0.0.1", 5900).is_some());
        assert_eq!(
            loopback_addr("localhost", 5900),
            Some("127.0.0.1:5900".parse().unwrap())
        );
        for host in [
            "10.0.0.5",
            "0.0.0.0",
            "::",
            "192.168.1.1",
            "example.com",
            "",
            "127.0.0.1:22",
        ] {
            assert_eq!(loopback_addr(host, 5900), None, "{host}");
        }
    }
}
