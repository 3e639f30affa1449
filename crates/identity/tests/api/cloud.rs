//! A bootstrapped identity service on an ephemeral port, and the calls the
//! tests make to it.

use ferrostack_core::config::Config;
use ferrostack_db::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct Cloud {
    pub base: String,
    pub http: reqwest::Client,
    pub svc: Arc<ferrostack_identity::IdentityService>,
}

/// A cloud on `db` with the tests' configuration.
pub async fn start(db: Db, name: &str) -> Cloud {
    start_with(db, name, |_| {}).await
}

/// A cloud on SQLite only, for tests about one resource or behaviour.
pub async fn sqlite_cloud(name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    let dir = std::env::temp_dir().join(format!(
        "ferrostack-identity-db-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = Db::connect(&format!(
        "sqlite://{}/identity.sqlite?mode=rwc",
        dir.display()
    ))
    .await
    .unwrap();
    start_with(db, name, tune).await
}

async fn start_with(db: Db, name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    let dir = std::env::temp_dir().join(format!(
        "ferrostack-identity-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = Config::default();
    cfg.common.data_dir = dir;
    cfg.identity.bcrypt_cost = 4;
    cfg.identity.max_request_body_size = 16 * 1024;
    tune(&mut cfg);
    db.migrate(ferrostack_identity::store::MIGRATIONS)
        .await
        .unwrap();
    let bus = ferrostack_bus::open("memory://").unwrap();
    let svc = ferrostack_identity::IdentityService::new(db, cfg, bus)
        .await
        .unwrap();
    let first = ferrostack_identity::bootstrap::run(&svc).await.unwrap();
    assert!(
        first.created.len() > 20,
        "bootstrap creates the seed's objects"
    );
    let second = ferrostack_identity::bootstrap::run(&svc).await.unwrap();
    assert!(
        second.created.is_empty(),
        "bootstrap is idempotent: {:?}",
        second.created
    );
    // The shared harness's listener: the same bounded server the all-in-one runs.
    let base = ferrostack_testkit::serve(ferrostack_identity::api::router(svc.clone())).await;
    Cloud {
        base,
        http: reqwest::Client::new(),
        svc,
    }
}

impl Cloud {
    /// A password token of a user of the default domain, scoped to
    /// `project` if given: the status, the token and the token's body.
    pub async fn token(
        &self,
        user: &str,
        password: &str,
        project: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] = json!({"project": {"name": p, "domain": {"name": "Default"}}});
        }
        let r = self
            .http
            .post(format!("{}/v3/auth/tokens", self.base))
            .json(&json!({"auth": auth}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let tok = r
            .headers()
            .get("x-subject-token")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, tok, r.json().await.unwrap_or(Value::Null))
    }

    /// The bootstrap admin's token on the admin project.
    pub async fn admin(&self) -> String {
        self.token("admin", "admin_pass", Some("admin"))
            .await
            .1
            .unwrap()
    }

    /// `method path` with a token and an optional JSON body: the status and
    /// the JSON answer (`Null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert!(
            r.headers().contains_key("x-openstack-request-id"),
            "every response carries a request id"
        );
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The id of the first `collection` entry `GET path` lists
    /// (`/v3/roles?name=member`, "roles").
    pub async fn first_id(&self, token: &str, path: &str, collection: &str) -> String {
        let (st, v) = self.call(Method::GET, path, token, None).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        v[collection][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no {collection} in {v}"))
            .to_owned()
    }

    /// A token from an application credential's id and secret.
    pub async fn app_cred_token(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v3/auth/tokens", self.base))
            .json(
                &json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret}}}}),
            )
            .send()
            .await
            .unwrap()
    }
}

/// Create a user in the default domain; returns its id.
pub async fn create_user(c: &Cloud, admin: &str, name: &str, password: &str) -> String {
    let (st, v) = c
        .call(
            Method::POST,
            "/v3/users",
            admin,
            Some(json!({"user": {"name": name, "password": password, "domain_id": "default"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["user"]["id"].as_str().unwrap().to_owned()
}

/// A user of the default domain as the store has it.
pub async fn store_user(c: &Cloud, name: &str) -> ferrostack_identity::store::users::User {
    ferrostack_identity::store::users::get_by_name(&c.svc.db, "default", name)
        .await
        .unwrap()
        .unwrap()
}

/// The names in `v[collection]`, sorted.
pub fn sorted_names(v: &Value, collection: &str) -> Vec<String> {
    let mut names: Vec<String> = v[collection]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}
