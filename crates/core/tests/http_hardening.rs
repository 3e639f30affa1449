//! The HTTP edge every service shares, tried the way a hostile client
//! would: trailing garbage after JSON, broken paths, huge URIs and headers,
//! bodies that never arrive, floods of idle connections, panicking
//! handlers and internal errors. Each answer must be the service's error
//! body with the right status — never a hang, never a leak of internals.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use ferrostack_core::error::{Error, ErrorStyle};
use ferrostack_core::http::{service_layer, Json, ServiceLayer};
use ferrostack_core::server::{serve, Limits};
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Thing {
    #[allow(dead_code)]
    name: String,
}

async fn create(Json(_): Json<Thing>) -> &'static str {
    "created"
}

async fn by_name(axum::extract::Path(name): axum::extract::Path<String>) -> String {
    name
}

async fn boom() -> &'static str {
    panic!("secret detail in a panic")
}

async fn db_failure() -> Result<&'static str, Error> {
    Err(Error::internal(
        "error returned from database: (code: 5) database is locked; SELECT * FROM instances",
    ))
}

async fn start(limits: Limits) -> (String, std::net::SocketAddr) {
    let layer = ServiceLayer::new("test", ErrorStyle::Nova, "http://127.0.0.1:5000/v3");
    let app = Router::new()
        .route("/things", post(create))
        .route("/things/{name}", get(by_name))
        .route("/boom", get(boom))
        .route("/db", get(db_failure))
        .layer(DefaultBodyLimit::max(1024))
        .layer(axum::middleware::from_fn_with_state(layer, service_layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    (format!("http://{addr}"), addr)
}

fn quick() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(2),
        max_connections: 64,
    }
}

/// Send raw bytes, read the whole answer (the server closes or we stop
/// after `wait`).
async fn raw(addr: std::net::SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn json_body(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

/// PostgreSQL refuses NUL in text: a NUL in a body string or an encoded
/// one in the URI is a 400 at the edge, never a 500 from the database
/// (schemathesis generates both). An escaped backslash before `u0000` is
/// ordinary text.
#[tokio::test]
async fn nul_characters_are_refused_at_the_edge() {
    let (url, _) = start(quick()).await;
    let http = reqwest::Client::new();
    let post = |body: &'static str| http.post(format!("{url}/things")).body(body).send();
    let r = post(r#"{"name": "a\u0000b"}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["badRequest"]["message"].as_str().unwrap().contains("NUL"),
        "{v}"
    );
    assert_eq!(
        post(r#"{"name": "a\\u0000b"}"#).await.unwrap().status(),
        200
    );
    for path in ["/things/a%00b", "/things/a?filter=%00"] {
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["badRequest"]["message"].as_str().unwrap().contains("NUL"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn trailing_garbage_after_json_is_refused() {
    let (url, _) = start(quick()).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/things"))
        .header("content-type", "application/json")
        .body(r#"{"name": "a"} xyz"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let ok = http
        .post(format!("{url}/things"))
        .body("{\"name\": \"a\"}\n  ")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "trailing whitespace is fine");
}

#[tokio::test]
async fn framework_rejections_are_the_services_error_body() {
    let (_, addr) = start(quick()).await;
    // %FF is not UTF-8: axum's Path rejection, rendered as Nova's body.
    let a = raw(
        addr,
        b"GET /things/%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(a.starts_with("HTTP/1.1 400"), "{a}");
    assert!(
        a.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{a}"
    );
    assert_eq!(json_body(&a)["badRequest"]["code"], 400);
}

#[tokio::test]
async fn long_uris_and_headers_get_414_and_431_with_a_body() {
    let (_, addr) = start(quick()).await;
    let long = "a".repeat(10_000);
    let a = raw(
        addr,
        format!("GET /things/{long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(a.starts_with("HTTP/1.1 414"), "{}", &a[..a.len().min(200)]);
    assert!(json_body(&a)["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("8192"));

    let big = "b".repeat(20_000);
    let a = raw(
        addr,
        format!("GET /things/x HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(a.starts_with("HTTP/1.1 431"), "{}", &a[..a.len().min(200)]);
    assert!(json_body(&a)["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("x-big"));
}

#[tokio::test]
async fn an_oversized_body_closes_the_connection_and_says_so() {
    let (_, addr) = start(quick()).await;
    let body = format!("{{\"name\": \"{}\"}}", "x".repeat(5000));
    let a = raw(
        addr,
        format!(
            "POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(a.starts_with("HTTP/1.1 413"), "{a}");
    assert!(a.to_ascii_lowercase().contains("connection: close"), "{a}");
    assert_eq!(json_body(&a)["overLimit"]["code"], 413);
}

#[tokio::test]
async fn internal_errors_and_panics_tell_the_client_only_the_request_id() {
    let (url, _) = start(quick()).await;
    let http = reqwest::Client::new();
    for path in ["/db", "/boom"] {
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 500, "{path}");
        let id = r.headers()["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = r.text().await.unwrap();
        assert!(!text.contains("database"), "{path}: {text}");
        assert!(!text.contains("secret"), "{path}: {text}");
        assert!(!text.contains("SELECT"), "{path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["computeFault"]["message"].as_str().unwrap().contains(&id),
            "{text}"
        );
    }
    // The process still serves after a panic.
    let r = http.get(format!("{url}/things/ok")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408() {
    let (_, addr) = start(quick()).await;
    let started = Instant::now();
    let a = raw(
        addr,
        b"POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{",
        Duration::from_secs(10),
    )
    .await;
    // Over the 1 KiB limit by its announced length: refused at once.
    assert!(a.starts_with("HTTP/1.1 413"), "{a}");
    assert!(started.elapsed() < Duration::from_secs(2));

    let started = Instant::now();
    let a = raw(
        addr,
        b"POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"na",
        Duration::from_secs(10),
    )
    .await;
    assert!(a.starts_with("HTTP/1.1 408"), "{a}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
}

#[tokio::test]
async fn headers_that_never_finish_are_cut_off() {
    let (_, addr) = start(quick()).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /things/x HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes a connection whose headers never finish")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let (_, addr) = start(quick()).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes a connection that sends nothing")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn a_flood_of_idle_connections_does_not_lock_clients_out() {
    let (url, addr) = start(Limits {
        header_read_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_secs(60),
        max_connections: 50,
    })
    .await;
    // Twice the limit, each idle or stuck half-way through its headers.
    let mut idle = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /things/x HTTP/1.1\r\n").await.unwrap();
        }
        idle.push(s);
    }
    // The listener closed the oldest ones to stay within its limit.
    let mut closed = 0;
    for s in &idle {
        let mut buf = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(20), s.peek(&mut buf)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 50,
        "only {closed} of 100 idle connections closed at a limit of 50"
    );
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            http.get(format!("{url}/things/alive")).send(),
        )
        .await
        .expect("answered while flooded")
        .unwrap();
        assert_eq!(r.text().await.unwrap(), "alive");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
