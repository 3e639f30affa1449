//! The console proxy end to end on 127.0.0.1: a stub VNC server (writes the
//! RFB version, then echoes; closes on `bye`), a stub authorizer with one
//! valid token, noVNC-like files in a temporary web directory.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use ferrostack_console::{router, ConsoleAuthorizer, ConsoleConnection, ProxyConfig};
use ferrostack_hypervisor::ConsoleTarget;
use futures::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UnixListener},
};
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message},
    MaybeTlsStream, WebSocketStream,
};

const TOKEN: &str = "0b6a8c9e-7f1d-4d8e-9a51-2f3c4b5a6d7e";
const TCP_TOKEN: &str = "tcp-token";
const OUTSIDE_TOKEN: &str = "outside-token";
const RFB: &[u8] = b"RFB 003.008\n";
const WAIT: Duration = Duration::from_secs(10);

/// A directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "fs-console-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the stub VNC server saw.
#[derive(Default)]
struct VncLog {
    connections: AtomicUsize,
    closed: AtomicUsize,
}

async fn serve_vnc<S>(mut stream: S, log: Arc<VncLog>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    log.connections.fetch_add(1, Ordering::SeqCst);
    if stream.write_all(RFB).await.is_ok() {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) if &buf[..n] == b"bye" => break,
                Ok(n) => {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    log.closed.fetch_add(1, Ordering::SeqCst);
}

struct StubAuthorizer {
    unix_socket: PathBuf,
    tcp_port: u16,
    calls: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ConsoleAuthorizer for StubAuthorizer {
    async fn authorize(&self, token: &str) -> Option<ConsoleConnection> {
        self.calls.lock().unwrap().push(token.to_owned());
        let target = match token {
            TOKEN => ConsoleTarget::Unix {
                path: self.unix_socket.clone(),
            },
            TCP_TOKEN => ConsoleTarget::Tcp {
                host: "127.0.0.1".into(),
                port: self.tcp_port,
            },
            OUTSIDE_TOKEN => ConsoleTarget::Tcp {
                host: "192.0.2.10".into(),
                port: self.tcp_port,
            },
            _ => return None,
        };
        Some(ConsoleConnection {
            instance_id: "6f1b2c3d-0000-4000-8000-000000000001".into(),
            target,
        })
    }
}

struct Harness {
    addr: SocketAddr,
    vnc: Arc<VncLog>,
    authorizer: Arc<StubAuthorizer>,
    dir: TempDir,
}

/// The proxy on the bounded listener every service uses (testkit's).
async fn serve(app: axum::Router) -> SocketAddr {
    let url = ferrostack_testkit::serve(app).await;
    url.trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

impl Harness {
    async fn start(allowed_origins: &[&str]) -> Harness {
        let dir = TempDir::new();
        let web_dir = dir.0.join("web");
        write(&web_dir.join("vnc_lite.html"), VNC_LITE);
        write(&web_dir.join("vnc.html"), VNC_LITE);
        write(
            &web_dir.join("core/rfb.js"),
            "export default class RFB {}\n",
        );
        write(
            &web_dir.join("app/styles/base.css"),
            "body { margin: 0; }\n",
        );
        write(
            &web_dir.join("app/images/info.svg"),
            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n",
        );
        write(&web_dir.join("app/locale/de.json"), "{}\n");
        write(&dir.0.join("secret.txt"), "top secret\n");

        let vnc = Arc::new(VncLog::default());
        let unix_socket = dir.0.join("vnc.sock");
        let unix = UnixListener::bind(&unix_socket).unwrap();
        let log = vnc.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = unix.accept().await {
                tokio::spawn(serve_vnc(stream, log.clone()));
            }
        });
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp_port = tcp.local_addr().unwrap().port();
        let log = vnc.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = tcp.accept().await {
                tokio::spawn(serve_vnc(stream, log.clone()));
            }
        });

        let authorizer = Arc::new(StubAuthorizer {
            unix_socket,
            tcp_port,
            calls: Mutex::new(Vec::new()),
        });
        let config = ProxyConfig {
            web_dir,
            allowed_origins: allowed_origins.iter().map(|s| s.to_string()).collect(),
        };
        let app = router(config, authorizer.clone());
        let addr = serve(app).await;
        Harness {
            addr,
            vnc,
            authorizer,
            dir,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.addr, path_and_query)
    }

    fn vnc_connections(&self) -> usize {
        self.vnc.connections.load(Ordering::SeqCst)
    }
}

const VNC_LITE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>noVNC</title>\n\
<script type=\"module\" crossorigin=\"anonymous\">import RFB from './core/rfb.js';</script>\n\
</head><body></body>\n</html>\n";

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(url: &str, headers: &[(&'static str, &str)]) -> Client {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let (client, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake timed out")
        .expect("handshake failed");
    assert_eq!(response.status(), 101);
    client
}

/// Reads binary messages until `n` bytes have arrived.
async fn read_bytes(client: &mut Client, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("read timed out")
            .expect("connection ended")
            .expect("read failed");
        match message {
            Message::Binary(data) => got.extend_from_slice(&data),
            other => panic!("unexpected message {other:?}"),
        }
    }
    got
}

/// A bridged console: the guest's version string, then an echo.
async fn assert_console_works(client: &mut Client) {
    assert_eq!(read_bytes(client, RFB.len()).await, RFB);
    client
        .send(Message::binary(b"RFB 003.008\n".to_vec()))
        .await
        .unwrap();
    assert_eq!(read_bytes(client, RFB.len()).await, RFB);
    client.send(Message::binary(vec![1u8])).await.unwrap();
    assert_eq!(read_bytes(client, 1).await, [1u8]);
}

/// A refused console: no data, only an empty close or the end of the stream.
async fn assert_refused(client: &mut Client) {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no close")
        {
            None | Some(Err(_)) => break,
            Some(Ok(Message::Close(frame))) => {
                assert!(frame.is_none(), "close frame carries data: {frame:?}");
            }
            Some(Ok(other)) => panic!("refused connection sent {other:?}"),
        }
    }
}

#[tokio::test]
async fn token_in_query() {
    let h = Harness::start(&[]).await;
    let mut client = connect(&h.url(&format!("/?token={TOKEN}")), &[]).await;
    assert_console_works(&mut client).await;
    assert_eq!(h.vnc_connections(), 1);
    assert_eq!(*h.authorizer.calls.lock().unwrap(), [TOKEN]);
}

#[tokio::test]
async fn token_in_path_parameter() {
    let h = Harness::start(&[]).await;
    let url = h.url(&format!("/vnc_lite.html?path=%3Ftoken%3D{TOKEN}"));
    let mut client = connect(&url, &[]).await;
    assert_console_works(&mut client).await;
}

#[tokio::test]
async fn token_in_cookie() {
    let h = Harness::start(&[]).await;
    let cookie = format!("lang=en; token={TOKEN}");
    let mut client = connect(&h.url("/websockify"), &[("cookie", &cookie)]).await;
    assert_console_works(&mut client).await;
}

#[tokio::test]
async fn binary_subprotocol_is_selected() {
    let h = Harness::start(&[]).await;
    let mut request = h
        .url(&format!("/?token={TOKEN}"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("binary"));
    let (mut client, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "binary");
    assert_console_works(&mut client).await;
}

#[tokio::test]
async fn made_up_token_is_refused() {
    let h = Harness::start(&[]).await;
    let mut client = connect(&h.url("/?token=made-up"), &[]).await;
    assert_refused(&mut client).await;
    let mut client = connect(&h.url("/websockify"), &[]).await;
    assert_refused(&mut client).await;
    assert_eq!(h.vnc_connections(), 0);
}

#[tokio::test]
async fn foreign_origin_is_refused() {
    let h = Harness::start(&[]).await;
    let url = h.url(&format!("/?token={TOKEN}"));
    let mut client = connect(&url, &[("origin", "http://evil.example")]).await;
    assert_refused(&mut client).await;
    // Same host, other scheme: the proxy is reached over plain http.
    let origin = format!("https://{}", h.addr);
    let mut client = connect(&url, &[("origin", &origin)]).await;
    assert_refused(&mut client).await;
    assert_eq!(h.vnc_connections(), 0);
    // A cross-site attempt does not reach the authorizer (nor use up the token).
    assert!(h.authorizer.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn matching_origin_works() {
    let h = Harness::start(&[]).await;
    let origin = format!("http://127.0.0.1:{}", h.addr.port());
    let url = h.url(&format!("/?token={TOKEN}"));
    let mut client = connect(&url, &[("origin", &origin)]).await;
    assert_console_works(&mut client).await;
}

#[tokio::test]
async fn allowed_origin_works() {
    let h = Harness::start(&["dashboard.example.org"]).await;
    let url = h.url(&format!("/?token={TOKEN}"));
    let mut client = connect(&url, &[("origin", "http://dashboard.example.org")]).await;
    assert_console_works(&mut client).await;
    let mut client = connect(&url, &[("origin", "http://evil.example")]).await;
    assert_refused(&mut client).await;
    assert_eq!(h.vnc_connections(), 1);
}

#[tokio::test]
async fn tcp_target_on_loopback_works_and_others_are_refused() {
    let h = Harness::start(&[]).await;
    let mut client = connect(&h.url(&format!("/?token={TCP_TOKEN}")), &[]).await;
    assert_console_works(&mut client).await;
    let mut client = connect(&h.url(&format!("/?token={OUTSIDE_TOKEN}")), &[]).await;
    assert_refused(&mut client).await;
    assert_eq!(h.vnc_connections(), 1);
}

#[tokio::test]
async fn guest_closing_closes_the_websocket() {
    let h = Harness::start(&[]).await;
    let mut client = connect(&h.url(&format!("/?token={TOKEN}")), &[]).await;
    assert_eq!(read_bytes(&mut client, RFB.len()).await, RFB);
    client.send(Message::binary(b"bye".to_vec())).await.unwrap();
    let message = tokio::time::timeout(WAIT, client.next()).await.unwrap();
    match message {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn client_closing_closes_the_guest_connection() {
    let h = Harness::start(&[]).await;
    let mut client = connect(&h.url(&format!("/?token={TOKEN}")), &[]).await;
    assert_eq!(read_bytes(&mut client, RFB.len()).await, RFB);
    client.close(None).await.unwrap();
    for _ in 0..100 {
        if h.vnc.closed.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the guest connection stayed open");
}

#[tokio::test]
async fn large_transfer_round_trips() {
    let h = Harness::start(&[]).await;
    let client = connect(&h.url(&format!("/?token={TOKEN}")), &[]).await;
    let (mut tx, mut rx) = client.split();
    let total = 4 * 1024 * 1024;
    let sender = tokio::spawn(async move {
        for i in 0..(total / 32768) {
            let chunk = vec![(i % 251) as u8; 32768];
            tx.send(Message::binary(chunk)).await.unwrap();
        }
        tx
    });
    let mut got = 0usize;
    let mut expected_rfb = true;
    while got < total {
        let message = tokio::time::timeout(WAIT, rx.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let mut data = message.into_data().to_vec();
        if expected_rfb {
            assert!(data.starts_with(RFB));
            data.drain(..RFB.len());
            expected_rfb = false;
        }
        for (k, byte) in data.iter().enumerate() {
            assert_eq!(*byte, (((got + k) / 32768) % 251) as u8);
        }
        got += data.len();
    }
    assert_eq!(got, total);
    let _tx = sender.await.unwrap();
}

/// Log lines say who connected to which instance and why a request was
/// refused, and never carry a token.
#[tokio::test]
async fn logs_name_outcomes_not_tokens() {
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded: the server's tasks log here too.
    let _guard = tracing::subscriber::set_default(subscriber);
    // Tests on other threads hit the same log lines with no subscriber, and
    // tracing caches per line whether anyone listens: without a rebuild a
    // line first seen there can stay off here (the refusals went missing
    // once in a loaded CI run).
    tracing::callsite::rebuild_interest_cache();

    let h = Harness::start(&[]).await;
    let mut client = connect(&h.url(&format!("/?token={TOKEN}")), &[]).await;
    assert_console_works(&mut client).await;
    client.close(None).await.unwrap();
    while client.next().await.is_some() {}
    let mut client = connect(&h.url("/?token=made-up-secret"), &[]).await;
    assert_refused(&mut client).await;
    let url = h.url(&format!("/?token={TOKEN}"));
    let mut client = connect(&url, &[("origin", "http://evil.example")]).await;
    assert_refused(&mut client).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("console connected"), "{logs}");
    assert!(logs.contains("console closed"), "{logs}");
    assert!(
        logs.contains("6f1b2c3d-0000-4000-8000-000000000001"),
        "{logs}"
    );
    assert!(logs.contains("127.0.0.1:"), "peer missing: {logs}");
    assert!(logs.contains("unknown, expired or used up"), "{logs}");
    assert!(
        logs.contains("Origin header does not match this host"),
        "{logs}"
    );
    assert!(logs.contains("origin=http://evil.example"), "{logs}");
    assert!(
        !logs.contains(TOKEN) && !logs.contains("made-up-secret"),
        "{logs}"
    );
}

// ---- tempest's client (tempest/common/compute.py, create_websocket) ----

/// Sends the upgrade request tempest's `_WebSocket._upgrade` sends for a
/// console URL and returns the response head and the bytes after it.
async fn tempest_upgrade(
    addr: SocketAddr,
    console_url_query: &str,
) -> (TcpStream, String, Vec<u8>) {
    // `path` holds `?token=…`; tempest requests `GET /<path>`.
    let path = console_url_query
        .strip_prefix("path=")
        .map(|p| p.replace("%3F", "?").replace("%3D", "="))
        .unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nCookie: {console_url_query}\r\n\
         Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n",
        port = addr.port()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed during the handshake");
        response.extend_from_slice(&buf[..n]);
        if let Some(pos) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let rest = response.split_off(end);
    (stream, String::from_utf8(response).unwrap(), rest)
}

/// tempest's `receive_frame`: skips frames of length 0, None at EOF.
async fn tempest_receive_frame(stream: &mut TcpStream, cached: &mut Vec<u8>) -> Option<Vec<u8>> {
    async fn take(stream: &mut TcpStream, cached: &mut Vec<u8>, n: usize) -> Option<Vec<u8>> {
        while cached.len() < n {
            let mut buf = [0u8; 4096];
            let read = tokio::time::timeout(WAIT, stream.read(&mut buf))
                .await
                .unwrap();
            match read {
                Ok(0) | Err(_) => return None,
                Ok(k) => cached.extend_from_slice(&buf[..k]),
            }
        }
        Some(cached.drain(..n).collect())
    }
    loop {
        let header = take(stream, cached, 2).await?;
        let len = (header[1] & 127) as usize;
        if len > 0 {
            return take(stream, cached, len).await;
        }
    }
}

async fn tempest_send_frame(stream: &mut TcpStream, data: &[u8]) {
    let mask = [7u8, 2, 1, 9];
    let mut frame = vec![130u8, data.len() as u8 | 128];
    frame.extend_from_slice(&mask);
    frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.unwrap();
}

#[tokio::test]
async fn tempest_test_novnc() {
    let h = Harness::start(&[]).await;
    // validate_novnc_html: the console URL's page.
    let (status, headers, body) =
        http_get(h.addr, &format!("/vnc_lite.html?path=%3Ftoken%3D{TOKEN}")).await;
    assert_eq!(status, 200);
    assert!(headers
        .to_ascii_lowercase()
        .contains("content-type: text/html"));
    for needle in ["<html", "</html>", "noVNC", "<script"] {
        assert!(body.contains(needle), "{needle}");
    }
    // validate_websocket_upgrade
    let query = format!("path=%3Ftoken%3D{TOKEN}");
    let (mut stream, head, mut cached) = tempest_upgrade(h.addr, &query).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: binary"),
        "{head}"
    );
    // validate_rfb_negotiation, as far as the echoing stub allows.
    let version = tempest_receive_frame(&mut stream, &mut cached)
        .await
        .unwrap();
    assert_eq!(version, RFB);
    tempest_send_frame(&mut stream, &version).await;
    assert_eq!(
        tempest_receive_frame(&mut stream, &mut cached)
            .await
            .unwrap(),
        RFB
    );
    tempest_send_frame(&mut stream, &[1]).await;
    assert_eq!(
        tempest_receive_frame(&mut stream, &mut cached)
            .await
            .unwrap(),
        [1]
    );
}

#[tokio::test]
async fn tempest_test_novnc_bad_token() {
    let h = Harness::start(&[]).await;
    let query = format!("path=%3Ftoken%3Dbad{TOKEN}");
    let (mut stream, head, mut cached) = tempest_upgrade(h.addr, &query).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols"),
        "{head}"
    );
    let data = tempest_receive_frame(&mut stream, &mut cached).await;
    assert!(
        data.as_ref().is_none_or(|d| d.is_empty()),
        "the proxy sent {data:?}"
    );
    assert_eq!(h.vnc_connections(), 0);
}

// ---- static files ----

/// A raw HTTP/1.1 GET, so the path reaches the server exactly as written.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn content_type(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn static_files_with_content_types() {
    let h = Harness::start(&[]).await;
    for (path, expected) in [
        ("/vnc_lite.html", "text/html"),
        ("/vnc.html?autoconnect=true", "text/html"),
        ("/core/rfb.js", "text/javascript"),
        ("/app/styles/base.css", "text/css"),
        ("/app/images/info.svg", "image/svg+xml"),
        ("/app/locale/de.json", "application/json"),
    ] {
        let (status, head, _) = http_get(h.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(content_type(&head).starts_with(expected), "{path}: {head}");
    }
    let (_, _, body) = http_get(h.addr, "/vnc_lite.html").await;
    assert_eq!(body, VNC_LITE);
}

#[tokio::test]
async fn missing_and_escaping_paths_are_404() {
    let h = Harness::start(&[]).await;
    assert!(h.dir.0.join("secret.txt").exists());
    for path in [
        "/missing.html",
        "/",
        "/core",
        "/../etc/passwd",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/core/%2E%2E/%2E%2E/secret.txt",
        "/..%5csecret.txt",
        "//etc/passwd",
        &format!("/{}", h.dir.0.join("secret.txt").display()),
    ] {
        let (status, _, body) = http_get(h.addr, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            !body.contains("secret") && !body.contains("root:"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn other_methods_are_refused() {
    let h = Harness::start(&[]).await;
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let request = format!(
        "POST /vnc_lite.html HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        h.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    assert!(response.starts_with(b"HTTP/1.1 405"));
}

/// Debian's noVNC, where the `novnc` package is installed: the console
/// page tempest loads and the files it pulls in.
#[tokio::test]
async fn serves_debian_novnc_when_installed() {
    let web_dir = Path::new(ferrostack_console::DEFAULT_WEB_DIR);
    if !web_dir.join("vnc_lite.html").exists() {
        eprintln!("skipped: {} has no vnc_lite.html", web_dir.display());
        return;
    }
    let authorizer = Arc::new(StubAuthorizer {
        unix_socket: PathBuf::from("/nonexistent"),
        tcp_port: 1,
        calls: Mutex::new(Vec::new()),
    });
    let app = router(ProxyConfig::default(), authorizer);
    let addr = serve(app).await;
    for page in [
        "/vnc_lite.html?path=%3Ftoken%3Dx",
        "/vnc.html",
        "/vnc_auto.html",
    ] {
        let (status, head, body) = http_get(addr, page).await;
        assert_eq!(status, 200, "{page}");
        assert!(content_type(&head).starts_with("text/html"), "{page}");
        for needle in ["<html", "</html>", "noVNC", "<script"] {
            assert!(body.contains(needle), "{page}: {needle}");
        }
    }
    let (status, head, _) = http_get(addr, "/core/rfb.js").await;
    assert_eq!(status, 200);
    assert!(content_type(&head).starts_with("text/javascript"));
}

/// tempest's whole `validate_rfb_negotiation` through the proxy against a
/// real QEMU VNC server on a unix socket, where QEMU is installed.
#[tokio::test]
async fn tempest_rfb_negotiation_with_qemu() {
    struct Qemu(std::process::Child);
    impl Drop for Qemu {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let h = Harness::start(&[]).await;
    // The stub authorizer's token opens `vnc.sock`: put QEMU there instead.
    let socket = h.dir.0.join("vnc.sock");
    std::fs::remove_file(&socket).unwrap();
    let spawned = std::process::Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-vnc",
        ])
        .arg(format!("unix:{}", socket.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(child) = spawned else {
        eprintln!("skipped: qemu-system-x86_64 is not installed");
        return;
    };
    let _qemu = Qemu(child);
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(socket.exists(), "QEMU did not open its VNC socket");

    let (mut ws, head, mut cached) =
        tempest_upgrade(h.addr, &format!("path=%3Ftoken%3D{TOKEN}")).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols"),
        "{head}"
    );
    let version = tempest_receive_frame(&mut ws, &mut cached).await.unwrap();
    assert_eq!(version, RFB);
    tempest_send_frame(&mut ws, &version).await;
    // RFB 3.8: a list of security types that includes None (1).
    let types = tempest_receive_frame(&mut ws, &mut cached).await.unwrap();
    assert!(
        types.len() >= 2 && types[1..=types[0] as usize].contains(&1),
        "{types:?}"
    );
    tempest_send_frame(&mut ws, &[1]).await;
    let result = tempest_receive_frame(&mut ws, &mut cached).await.unwrap();
    assert_eq!(result, [0, 0, 0, 0]);
    // ClientInit (shared), then ServerInit: 24 bytes and the name.
    tempest_send_frame(&mut ws, &[1]).await;
    let init = tempest_receive_frame(&mut ws, &mut cached).await.unwrap();
    let name_len = u32::from_be_bytes(init[20..24].try_into().unwrap()) as usize;
    assert!(init.len() > 24 && init.len() == name_len + 24, "{init:?}");
    assert_eq!(h.vnc_connections(), 0, "the stub answered, not QEMU");
}
