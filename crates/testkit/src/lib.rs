//! The in-process control plane for tests: a bootstrapped identity service
//! on an ephemeral port, a token validator for the service under test, and
//! helpers to serve a router and get tokens. Every service's API tests start
//! from here, so they exercise the same wiring the all-in-one uses.

use ferrostack_core::auth::SharedValidator;
use ferrostack_core::config::Config;
use std::path::PathBuf;
use std::sync::Arc;

pub struct TestCloud {
    pub config: Config,
    pub bus: ferrostack_bus::SharedBus,
    pub identity: Arc<ferrostack_identity::IdentityService>,
    /// `http://127.0.0.1:PORT` of the identity API.
    pub identity_url: String,
    /// Validates tokens the way the all-in-one's services do.
    pub validator: SharedValidator,
    pub dir: PathBuf,
    pub http: reqwest::Client,
}

/// The bus of a test cloud: in-process, or RabbitMQ when
/// `FERROSTACK_TEST_BUS_URL` names a broker (`amqp://…`), each test cloud
/// in its own namespace there so that parallel tests never share a topic.
pub async fn test_bus() -> ferrostack_bus::SharedBus {
    match std::env::var("FERROSTACK_TEST_BUS_URL") {
        Ok(url) if url.starts_with("amqp://") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            let ns = uuid::Uuid::new_v4().simple();
            let url = format!("{url}{sep}namespace=test-{ns}");
            ferrostack_bus::connect(&url, std::time::Duration::from_secs(15))
                .await
                .expect("FERROSTACK_TEST_BUS_URL: the broker is unreachable")
        }
        _ => ferrostack_bus::open("memory://").expect("bus"),
    }
}

/// A fresh data directory, a bootstrapped identity service (bcrypt cost 4)
/// and its API on an ephemeral port. `tune` adjusts the configuration.
pub async fn start(name: &str, tune: impl Fn(&mut Config)) -> TestCloud {
    let dir = std::env::temp_dir().join(format!("ferrostack-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    let mut config = Config::default();
    config.common.data_dir = dir.clone();
    config.identity.bcrypt_cost = 4;
    tune(&mut config);
    if config.volume.export_state_dir.is_empty() {
        config.volume.export_state_dir = short_export_dir().display().to_string();
    }
    let bus = test_bus().await;
    let db = ferrostack_db::Db::connect(&format!(
        "sqlite://{}/identity.sqlite?mode=rwc",
        dir.display()
    ))
    .await
    .expect("identity db");
    db.migrate(ferrostack_identity::store::MIGRATIONS)
        .await
        .expect("migrations");
    let identity = ferrostack_identity::IdentityService::new(db, config.clone(), bus.clone())
        .await
        .expect("identity");
    ferrostack_identity::bootstrap::run(&identity)
        .await
        .expect("bootstrap");
    let validator: SharedValidator = Arc::new(ferrostack_identity::service::LocalValidator(
        identity.clone(),
    ));
    let identity_url = serve(ferrostack_identity::api::router(identity.clone())).await;
    TestCloud {
        config,
        bus,
        identity,
        identity_url,
        validator,
        dir,
        http: reqwest::Client::new(),
    }
}

/// Volume exports keep unix sockets under their state directory, and a
/// socket path has at most 107 bytes: a test cloud's data directory (which
/// carries the test's name) can be too long for them, so each test cloud
/// gets a short one of its own.
fn short_export_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fsx-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Serve a router on an ephemeral loopback port, on the same bounded
/// listener the services use (`core::server`); returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    serve_with(router, ferrostack_core::server::Limits::default()).await
}

/// [`serve`] with chosen timeouts and connection limit.
pub async fn serve_with(router: axum::Router, limits: ferrostack_core::server::Limits) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        ferrostack_core::server::serve(listener, router, limits, std::future::pending())
            .await
            .expect("serve")
    });
    url
}

/// A JSON client of one API (`base` such as `http://127.0.0.1:PORT/v2.0`):
/// the request helper every service's API tests call through.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: impl Into<String>) -> Self {
        Api {
            base: base.into(),
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with a token and an optional JSON body: the status and
    /// the JSON answer (`Null` when the body is empty or not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// [`Api::call`] that must succeed; its JSON answer.
    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let (status, v) = self.call(method.clone(), path, token, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }
}

impl TestCloud {
    pub fn auth_uri(&self) -> String {
        format!("{}/v3", self.identity_url)
    }

    /// A project-scoped token for a bootstrap user (password `admin_pass`).
    pub async fn token(&self, user: &str, project: &str) -> String {
        let body = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": "admin_pass"}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = self
            .http
            .post(format!("{}/v3/auth/tokens", self.identity_url))
            .json(&body)
            .send()
            .await
            .expect("token");
        assert_eq!(
            r.status(),
            reqwest::StatusCode::CREATED,
            "token for {user}@{project}"
        );
        r.headers()["x-subject-token"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    /// The project id a token is scoped to.
    pub async fn project_of(&self, token: &str) -> String {
        let admin = self.token("admin", "admin").await;
        let r = self
            .http
            .get(format!("{}/v3/auth/tokens", self.identity_url))
            .header("x-auth-token", admin)
            .header("x-subject-token", token)
            .send()
            .await
            .expect("validate");
        let v: serde_json::Value = r.json().await.expect("json");
        v["token"]["project"]["id"]
            .as_str()
            .expect("project")
            .to_owned()
    }
}

/// The OpenAPI document a service generates must be the one committed
/// under `docs/openapi/<service>.json`, so that a change to a route or a
/// request type shows in review. `FERROSTACK_BLESS=1` writes it instead.
pub fn assert_openapi_committed(service: &str, doc: &serde_json::Value) {
    // The crate under test's directory, read when the test runs (cargo sets
    // it): testkit's own compile-time one may be another checkout's.
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let path = PathBuf::from(crate_dir)
        .join("../../docs/openapi")
        .join(format!("{service}.json"));
    let text = serde_json::to_string_pretty(doc).expect("a document serializes") + "\n";
    if std::env::var_os("FERROSTACK_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("docs/openapi")).expect("docs/openapi");
        std::fs::write(&path, text).expect("write the document");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is not what the code generates; run the test with FERROSTACK_BLESS=1 and commit it",
        path.display()
    );
}

/// The service at `base` serves `expected` at a public `GET /openapi.json`,
/// and that document is true to the router: each documented path answers
/// `TRACE` with 405 and an `Allow` list of exactly its documented methods
/// (so no route goes undocumented, none documented is missing); each
/// documented operation answers without a token without a 5xx, and one the
/// document marks as needing a token answers 401. Returns the served document
/// and its number of operations.
pub async fn assert_openapi_served(
    base: &str,
    expected: &serde_json::Value,
) -> (serde_json::Value, usize) {
    use reqwest::{Method, StatusCode};
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.expect("a JSON document");
    assert_eq!(doc["openapi"], "3.1.0");
    // Compared after one round trip through text, as the client's copy was
    // (a float's last bit may differ from the in-memory literal).
    let expected: serde_json::Value =
        serde_json::from_str(&expected.to_string()).expect("a document reparses");
    assert!(
        doc == expected,
        "the served document is not the generated one"
    );
    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let path: String = template
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let item = item.as_object().expect("a path item");
        let mut documented: Vec<String> = item
            .keys()
            .map(|m| m.to_uppercase())
            .filter(|m| m != "HEAD")
            .collect();
        documented.sort();
        let r = http
            .request(Method::TRACE, format!("{base}{path}"))
            .send()
            .await
            .expect("TRACE");
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "TRACE {template}"
        );
        let allow = r.headers()["allow"].to_str().expect("Allow").to_owned();
        let mut routed: Vec<String> = allow
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| m != "HEAD")
            .collect();
        routed.sort();
        assert_eq!(routed, documented, "{template}: Allow {allow}");
        for (method, op) in item {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let r = http
                .request(method.clone(), format!("{base}{path}"))
                .send()
                .await
                .expect("a documented operation");
            // The TRACE above proved the route; a 404 here is the
            // handler's (no such schema name, say), never a 5xx.
            let status = r.status();
            assert!(
                !status.is_server_error(),
                "{method} {template} answers {status}"
            );
            if op.get("security").is_some() {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {template} without a token"
                );
            }
        }
    }
    (doc, operations)
}

/// A browser's view of a web app (the dashboard): it keeps the cookie a
/// response sets and sends it back, as a browser does, and can add a
/// CSRF header; every answer comes back whole for the test to inspect.
pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
    pub cookie: std::sync::Mutex<Option<String>>,
}

/// One answer as a test sees it.
pub struct Page {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
    pub text: String,
}

impl Browser {
    pub fn new(base: impl Into<String>) -> Self {
        Browser {
            base: base.into(),
            http: reqwest::Client::new(),
            cookie: std::sync::Mutex::new(None),
        }
    }

    /// `method path` with the kept cookie, an optional CSRF token and JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        csrf: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Page {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = self.cookie.lock().expect("cookie").clone() {
            req = req.header("cookie", c);
        }
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        if let Some(set) = r.headers().get("set-cookie") {
            let pair = set.to_str().expect("ascii").split(';').next().unwrap_or("");
            let kept = if pair.ends_with('=') {
                None
            } else {
                Some(pair.to_owned())
            };
            *self.cookie.lock().expect("cookie") = kept;
        }
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Page {
            status,
            headers,
            body,
            text,
        }
    }
}
