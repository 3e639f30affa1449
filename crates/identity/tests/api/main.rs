//! The identity API end to end, in-process, on every database engine that is
//! reachable (SQLite always; MariaDB and PostgreSQL on machines that run them).

use ferrostack_core::config::Config;
use ferrostack_db::Db;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

struct Cloud {
    base: String,
    http: reqwest::Client,
    svc: Arc<ferrostack_identity::IdentityService>,
}

async fn start(db: Db, name: &str) -> Cloud {
    start_with(db, name, |_| {}).await
}

/// A cloud on SQLite only, for tests about one behaviour.
async fn sqlite_cloud(name: &str, tune: impl Fn(&mut Config)) -> Cloud {
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
    async fn token(
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

    async fn call(
        &self,
        method: reqwest::Method,
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
}

use reqwest::Method;

async fn exercise(c: &Cloud) {
    // Discovery.
    let r = c.http.get(format!("{}/", c.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MULTIPLE_CHOICES);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["versions"]["values"][0]["id"], "v3.14");

    // Admin token with the seed's catalog.
    let (st, admin, body) = c.token("admin", "admin_pass", Some("admin")).await;
    assert_eq!(st, StatusCode::CREATED);
    let admin = admin.unwrap();
    let types: Vec<&str> = body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    for t in ["identity", "compute", "image", "network"] {
        assert!(types.contains(&t), "catalog has {t}: {types:?}");
    }
    let roles: Vec<&str> = body["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"admin") && roles.contains(&"member") && roles.contains(&"reader"),
        "implied roles: {roles:?}"
    );

    // The four tenants.
    let (st, v) = c.call(Method::GET, "/v3/projects", &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    let mut names: Vec<&str> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["admin", "demo", "invisible_to_admin", "service"]
    );

    // Wrong password, malformed JSON, unknown id, oversized body.
    assert_eq!(
        c.token("admin", "nope", Some("admin")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let r = c
        .http
        .post(format!("{}/v3/auth/tokens", c.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON"));
    let (st, v) = c
        .call(Method::GET, "/v3/users/does-not-exist", &admin, None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["title"], "Not Found");
    let big = json!({"user": {"name": "x".repeat(20_000)}});
    assert_eq!(
        c.call(Method::POST, "/v3/users", &admin, Some(big)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (st, v) = c
        .call(
            Method::POST,
            "/v3/users",
            &admin,
            Some(json!({"user": {"name": 5}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("user.name"),
        "{v}"
    );

    // User life cycle; duplicate names conflict.
    let (st, v) = c
        .call(
            Method::POST,
            "/v3/users",
            &admin,
            Some(json!({"user": {"name": "alice", "password": "pw1", "email": "a@x"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["user"]["email"], "a@x");
    let alice = v["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.call(
            Method::POST,
            "/v3/users",
            &admin,
            Some(json!({"user": {"name": "alice"}}))
        )
        .await
        .0,
        StatusCode::CONFLICT
    );

    // Demo is refused admin listings but sees its own projects.
    let (_, demo, _) = c.token("demo", "admin_pass", Some("demo")).await;
    let demo = demo.unwrap();
    let (st, v) = c.call(Method::GET, "/v3/users", &demo, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("identity:list_users"));
    let (st, v) = c.call(Method::GET, "/v3/auth/projects", &demo, None).await;
    assert_eq!(st, StatusCode::OK);
    let mut names: Vec<&str> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["demo", "invisible_to_admin"]);

    // Grant alice member on demo; she can scope to it; revoking the grant revokes her token.
    let (_, v) = c
        .call(Method::GET, "/v3/roles?name=member", &admin, None)
        .await;
    let member = v["roles"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) = c
        .call(Method::GET, "/v3/projects?name=demo", &admin, None)
        .await;
    let demo_project = v["projects"][0]["id"].as_str().unwrap().to_owned();
    let grant = format!("/v3/projects/{demo_project}/users/{alice}/roles/{member}");
    assert_eq!(
        c.call(Method::PUT, &grant, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::HEAD, &grant, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (st, alice_tok, body) = c.token("alice", "pw1", Some("demo")).await;
    assert_eq!(st, StatusCode::CREATED);
    let alice_tok = alice_tok.unwrap();
    let alice_roles: Vec<&str> = body["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(alice_roles, vec!["member", "reader"]);
    let (st, v) = c
        .call(
            Method::GET,
            &format!("/v3/role_assignments?user.id={alice}&effective&include_names"),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let got: Vec<&str> = v["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["role"]["name"].as_str().unwrap())
        .collect();
    assert!(got.contains(&"member") && got.contains(&"reader"), "{v}");
    assert_eq!(v["role_assignments"][0]["scope"]["project"]["name"], "demo");
    assert_eq!(
        c.call(Method::DELETE, &grant, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::GET, "/v3/auth/projects", &alice_tok, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // Validate, check, revoke.
    let (_, t2, _) = c.token("demo", "admin_pass", Some("demo")).await;
    let t2 = t2.unwrap();
    let r = c
        .http
        .get(format!("{}/v3/auth/tokens", c.base))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &t2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .http
        .delete(format!("{}/v3/auth/tokens", c.base))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &t2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c
        .http
        .head(format!("{}/v3/auth/tokens", c.base))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &t2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        c.call(Method::GET, "/v3/auth/projects", &t2, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Self-service password change revokes the old tokens.
    let (_, a1, _) = c.token("alice", "pw1", None).await;
    let a1 = a1.unwrap();
    let (st, _) = c
        .call(
            Method::POST,
            &format!("/v3/users/{alice}/password"),
            &a1,
            Some(json!({"user": {"original_password": "bad", "password": "pw2"}})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = c
        .call(
            Method::POST,
            &format!("/v3/users/{alice}/password"),
            &a1,
            Some(json!({"user": {"original_password": "pw1", "password": "pw2"}})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        c.call(Method::GET, &format!("/v3/users/{alice}"), &a1, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(c.token("alice", "pw2", None).await.0, StatusCode::CREATED);

    // Application credential: create with a project token, authenticate with it, delete revokes.
    let (_, v) = c
        .call(Method::GET, "/v3/users?name=admin", &admin, None)
        .await;
    let admin_id = v["users"][0]["id"].as_str().unwrap().to_owned();
    let (st, v) = c
        .call(
            Method::POST,
            &format!("/v3/users/{admin_id}/application_credentials"),
            &admin,
            Some(json!({"application_credential": {"name": "ci"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (cid, secret) = (
        v["application_credential"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        v["application_credential"]["secret"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let r = c
        .http
        .post(format!("{}/v3/auth/tokens", c.base))
        .json(&json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": cid, "secret": secret}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let ac_tok = r.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token"]["project"]["name"], "admin");
    assert_eq!(v["token"]["application_credential"]["id"], cid.as_str());
    assert_eq!(
        c.call(
            Method::DELETE,
            &format!("/v3/users/{admin_id}/application_credentials/{cid}"),
            &admin,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::GET, "/v3/auth/projects", &ac_tok, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // Access rules: a credential limited to one call gets nothing else.
    let (st, v) = c
        .call(
            Method::POST,
            &format!("/v3/users/{admin_id}/application_credentials"),
            &admin,
            Some(json!({"application_credential": {"name": "narrow",
                "access_rules": [{"service": "identity", "path": "/v3/auth/projects", "method": "GET"}]}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (nid, nsecret) = (
        v["application_credential"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        v["application_credential"]["secret"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let r = c
        .http
        .post(format!("{}/v3/auth/tokens", c.base))
        .json(&json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": nid, "secret": nsecret}}}}))
        .send()
        .await
        .unwrap();
    let narrow = r.headers()["x-subject-token"].to_str().unwrap().to_owned();
    assert_eq!(
        c.call(Method::GET, "/v3/auth/projects", &narrow, None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        c.call(Method::GET, "/v3/users", &narrow, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // v2.0 like `keystone token-get`.
    let r = c
        .http
        .post(format!("{}/v2.0/tokens", c.base))
        .json(&json!({"auth": {"passwordCredentials": {"username": "admin", "password": "admin_pass"}, "tenantName": "admin"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert!(v["access"]["token"]["id"].as_str().unwrap().len() > 100);
    assert_eq!(v["access"]["token"]["tenant"]["name"], "admin");
    let compute = v["access"]["serviceCatalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "compute")
        .unwrap();
    assert!(compute["endpoints"][0]["publicURL"]
        .as_str()
        .unwrap()
        .ends_with(":8774/v2.1"));
    assert!(
        compute["endpoints"][0]["adminURL"].is_string()
            && compute["endpoints"][0]["internalURL"].is_string()
    );

    // Revocations survive a reload from the database (another controller's view).
    c.svc.reload_revocations().await.unwrap();
    assert_eq!(
        c.call(Method::GET, "/v3/auth/projects", &t2, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Service-to-service: nova's service token validates a user's token
    // through the API, as another service's auth middleware does.
    let client = ferrostack_core::service_client::ServiceClient::new(
        ferrostack_core::service_client::ServiceCredentials {
            auth_url: format!("{}/v3", c.base),
            username: "nova".into(),
            password: "service_pass".into(),
            project_name: "service".into(),
            user_domain_id: "default".into(),
            project_domain_id: "default".into(),
        },
    );
    let remote = ferrostack_core::service_client::RemoteTokenValidator::new(
        client,
        std::time::Duration::from_secs(60),
    );
    use ferrostack_core::auth::TokenValidator;
    let (_, demo2, _) = c.token("demo", "admin_pass", Some("demo")).await;
    let ctx = remote.validate(demo2.as_deref().unwrap()).await.unwrap();
    assert_eq!(ctx.user_name, "demo");
    assert_eq!(ctx.project_name.as_deref(), Some("demo"));
    assert!(ctx.has_role("member"));
    assert_eq!(
        remote.validate("not-a-token").await.unwrap_err().status(),
        401
    );

    // Deleting the user removes it; its id is then 404.
    assert_eq!(
        c.call(Method::DELETE, &format!("/v3/users/{alice}"), &admin, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::GET, &format!("/v3/users/{alice}"), &admin, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn identity_api_on_every_database() {
    for (i, db) in ferrostack_db::testing::test_databases("identity")
        .await
        .into_iter()
        .enumerate()
    {
        let backend = db.backend;
        let cloud = start(db, &format!("db{i}")).await;
        eprintln!("identity API against {backend:?}");
        exercise(&cloud).await;
    }
}

/// Create a user in the default domain; returns its id.
async fn create_user(c: &Cloud, admin: &str, name: &str, password: &str) -> String {
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

/// bcrypt reads 72 bytes: a password that differs only after them must not
/// log in, for users and for application credentials with a chosen secret.
#[tokio::test]
async fn passwords_count_beyond_72_bytes() {
    let c = sqlite_cloud("pw72", |_| {}).await;
    let admin = c
        .token("admin", "admin_pass", Some("admin"))
        .await
        .1
        .unwrap();
    let prefix = "P".repeat(72);
    let (right, wrong) = (format!("{prefix}one"), format!("{prefix}two"));
    create_user(&c, &admin, "longpw", &right).await;
    assert_eq!(
        c.token("longpw", &wrong, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.token("longpw", &prefix, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(c.token("longpw", &right, None).await.0, StatusCode::CREATED);
    let long = "L".repeat(4000);
    create_user(&c, &admin, "verylong", &long).await;
    assert_eq!(
        c.token("verylong", &long, None).await.0,
        StatusCode::CREATED
    );

    // New hashes are Keystone's bcrypt_sha256.
    let user = store_user(&c, "longpw").await;
    assert!(user.password_hash.unwrap().starts_with("$bcrypt-sha256$"));

    // Application credential with a secret the user chose.
    let (_, v) = c
        .call(Method::GET, "/v3/users?name=admin", &admin, None)
        .await;
    let admin_id = v["users"][0]["id"].as_str().unwrap().to_owned();
    let (st, v) = c
        .call(
            Method::POST,
            &format!("/v3/users/{admin_id}/application_credentials"),
            &admin,
            Some(json!({"application_credential": {"name": "long", "secret": right}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let cid = v["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (secret, want) in [
        (&wrong, StatusCode::UNAUTHORIZED),
        (&right, StatusCode::CREATED),
    ] {
        let r = c
            .http
            .post(format!("{}/v3/auth/tokens", c.base))
            .json(
                &json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": cid, "secret": secret}}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
    }

    // A user whose hash predates this (plain bcrypt) still logs in.
    let mut legacy = store_user(&c, "demo").await;
    legacy.password_hash = Some(bcrypt::hash("legacy_pass", 4).unwrap());
    ferrostack_identity::store::users::update(&c.svc.db, &legacy)
        .await
        .unwrap();
    assert_eq!(
        c.token("demo", "legacy_pass", None).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        c.token("demo", "legacy_pas", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn store_user(c: &Cloud, name: &str) -> ferrostack_identity::store::users::User {
    ferrostack_identity::store::users::get_by_name(&c.svc.db, "default", name)
        .await
        .unwrap()
        .unwrap()
}

/// `[identity] policy_file` replaces defaults; a file that does not parse
/// stops the service from starting.
#[tokio::test]
async fn operator_policy_file_applies_over_defaults() {
    let dir =
        std::env::temp_dir().join(format!("ferrostack-identity-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(
        &file,
        "# operators' overrides\n\"identity:list_users\": \"!\"\n\"identity:create_project\": \"rule:admin_required or role:manager\"\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let c = sqlite_cloud("policy", |cfg| cfg.identity.policy_file = path.clone()).await;
    let admin = c
        .token("admin", "admin_pass", Some("admin"))
        .await
        .1
        .unwrap();
    let (st, v) = c.call(Method::GET, "/v3/users", &admin, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // Rules the file does not name keep their defaults.
    assert_eq!(
        c.call(Method::GET, "/v3/projects", &admin, None).await.0,
        StatusCode::OK
    );

    // A project manager may now create projects; a member still may not.
    let manager = create_user(&c, &admin, "mgr", "mgr_pass").await;
    let (_, v) = c
        .call(Method::GET, "/v3/projects?name=demo", &admin, None)
        .await;
    let demo = v["projects"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) = c
        .call(Method::GET, "/v3/roles?name=manager", &admin, None)
        .await;
    let role = v["roles"][0]["id"].as_str().unwrap().to_owned();
    let grant = format!("/v3/projects/{demo}/users/{manager}/roles/{role}");
    assert_eq!(
        c.call(Method::PUT, &grant, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    let mgr = c.token("mgr", "mgr_pass", Some("demo")).await.1.unwrap();
    let project = json!({"project": {"name": "managed", "domain_id": "default"}});
    let (st, v) = c
        .call(Method::POST, "/v3/projects", &mgr, Some(project.clone()))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let member = c.token("demo", "admin_pass", Some("demo")).await.1.unwrap();
    assert_eq!(
        c.call(Method::POST, "/v3/projects", &member, Some(project))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // A file that does not parse refuses start.
    std::fs::write(&file, "\"identity:list_users\": \"role:admin or (\"\n").unwrap();
    let mut cfg = c.svc.config.clone();
    cfg.identity.policy_file = file.display().to_string();
    let bus = ferrostack_bus::open("memory://").unwrap();
    let err = match ferrostack_identity::IdentityService::new(c.svc.db.clone(), cfg, bus).await {
        Ok(_) => panic!("a broken policy file must refuse start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("identity:list_users"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The catalog lists only services this deployment serves; entries an
/// earlier bootstrap made for the others are removed by the next one.
#[tokio::test]
async fn catalog_lists_only_served_services() {
    use ferrostack_identity::store::catalog::{self, Endpoint, Service};
    let c = sqlite_cloud("catalog", |_| {}).await;
    let types = |services: &[Service]| -> Vec<String> {
        let mut t: Vec<String> = services.iter().map(|s| s.service_type.clone()).collect();
        t.sort();
        t
    };
    let unserved = ["volume", "metering", "object-store", "ec2"];
    let listed = types(&catalog::list_services(&c.svc.db).await.unwrap());
    assert_eq!(listed, ["compute", "identity", "image", "network"]);

    // An old bootstrap's entries (as it wrote them), and an operator's own
    // object store, which is not bootstrap's to remove.
    for (stype, name) in [
        ("volume", "cinder"),
        ("object-store", "swift"),
        ("ec2", "ec2"),
        ("metering", "ceilometer"),
    ] {
        let s = Service {
            id: ferrostack_identity::store::new_id(),
            service_type: stype.into(),
            enabled: true,
            extra: json!({"name": name, "description": format!("OpenStack {stype} service")}),
        };
        catalog::insert_service(&c.svc.db, &s).await.unwrap();
        catalog::insert_endpoint(
            &c.svc.db,
            &Endpoint {
                id: ferrostack_identity::store::new_id(),
                service_id: s.id.clone(),
                interface: "public".into(),
                url: "http://127.0.0.1:8776/v3/$(project_id)s".into(),
                region_id: Some("RegionOne".into()),
                enabled: true,
                extra: json!({}),
            },
        )
        .await
        .unwrap();
    }
    let operators = Service {
        id: ferrostack_identity::store::new_id(),
        service_type: "object-store".into(),
        enabled: true,
        extra: json!({"name": "swift", "description": "the storage cluster in rack 4"}),
    };
    catalog::insert_service(&c.svc.db, &operators)
        .await
        .unwrap();
    c.svc.invalidate_catalog();

    for run in 0..2 {
        let report = ferrostack_identity::bootstrap::run(&c.svc).await.unwrap();
        assert!(report.created.is_empty(), "{:?}", report.created);
        assert_eq!(
            report.removed.len(),
            if run == 0 { 4 } else { 0 },
            "{:?}",
            report.removed
        );
    }
    let services = catalog::list_services(&c.svc.db).await.unwrap();
    let listed = types(&services);
    assert_eq!(
        listed,
        ["compute", "identity", "image", "network", "object-store"]
    );
    assert!(services.iter().any(|s| s.id == operators.id));
    let endpoints = catalog::list_endpoints(&c.svc.db).await.unwrap();
    assert!(endpoints
        .iter()
        .all(|e| services.iter().any(|s| s.id == e.service_id)));

    // What a token's catalog shows.
    let (_, _, body) = c.token("admin", "admin_pass", Some("admin")).await;
    let in_token: Vec<&str> = body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    for t in unserved {
        if t != "object-store" {
            assert!(!in_token.contains(&t), "{t} in {in_token:?}");
        }
    }
    assert!(in_token.contains(&"image") && in_token.contains(&"network"));
}

/// Request bodies are typed per operation: a wrong one is a 400 whose
/// message names the field.
#[tokio::test]
async fn malformed_bodies_answer_400_naming_the_field() {
    let c = sqlite_cloud("bodies", |_| {}).await;
    let admin = c
        .token("admin", "admin_pass", Some("admin"))
        .await
        .1
        .unwrap();
    let (_, v) = c
        .call(Method::GET, "/v3/users?name=demo", &admin, None)
        .await;
    let demo = v["users"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) = c
        .call(Method::GET, "/v3/roles?name=reader", &admin, None)
        .await;
    let reader = v["roles"][0]["id"].as_str().unwrap().to_owned();
    let cases = [
        (
            Method::POST,
            "/v3/users".to_owned(),
            json!({"user": {"name": 5}}),
            "user.name",
        ),
        (
            Method::POST,
            "/v3/users".to_owned(),
            json!({"user": {"name": "x", "enabled": "yes"}}),
            "user.enabled",
        ),
        (
            Method::PATCH,
            format!("/v3/users/{demo}"),
            json!({"user": {"options": "all"}}),
            "user.options",
        ),
        (
            Method::POST,
            format!("/v3/users/{demo}/password"),
            json!({"user": {"password": "p"}}),
            "original_password",
        ),
        (
            Method::POST,
            "/v3/groups".to_owned(),
            json!({"group": {"description": "no name"}}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/v3/roles/{reader}"),
            json!({"role": {"description": 7}}),
            "role.description",
        ),
        (
            Method::POST,
            "/v3/projects".to_owned(),
            json!({"project": {"name": "p", "tags": "one"}}),
            "project.tags",
        ),
        (
            Method::POST,
            "/v3/domains".to_owned(),
            json!({"domain": {"name": "d", "enabled": 1}}),
            "domain.enabled",
        ),
        (
            Method::PUT,
            "/v3/projects/x/tags".to_owned(),
            json!({"tags": [1]}),
            "tags",
        ),
        (
            Method::POST,
            "/v3/services".to_owned(),
            json!({"service": {"name": "no type"}}),
            "service.type",
        ),
        (
            Method::POST,
            "/v3/endpoints".to_owned(),
            json!({"endpoint": {"service_id": "s", "interface": "public", "url": 8080}}),
            "endpoint.url",
        ),
        (
            Method::POST,
            "/v3/regions".to_owned(),
            json!({"region": {"parent_region_id": ["r"]}}),
            "region.parent_region_id",
        ),
        (
            Method::POST,
            format!("/v3/users/{demo}/application_credentials"),
            json!({"application_credential": {"name": "a", "roles": "admin"}}),
            "application_credential.roles",
        ),
        (
            Method::POST,
            "/v3/OS-EP-FILTER/endpoint_groups".to_owned(),
            json!({"endpoint_group": {"name": "g", "filters": {"colour": "red"}}}),
            "endpoint_group.filters",
        ),
        (
            Method::POST,
            "/v3/credentials".to_owned(),
            json!({"credential": {"user_id": demo, "type": "cert", "blob": {"not": "a string"}}}),
            "credential.blob",
        ),
        (
            Method::POST,
            format!("/v3/users/{demo}/credentials/OS-EC2"),
            json!({"tenant": "x"}),
            "tenant_id",
        ),
        (
            Method::POST,
            "/v3/policies".to_owned(),
            json!({"policy": {"blob": "{}"}}),
            "policy.type",
        ),
        (
            Method::POST,
            "/v3/OS-OAUTH1/consumers".to_owned(),
            json!({"consumer": {"description": false}}),
            "consumer.description",
        ),
        (
            Method::POST,
            "/v3/auth/tokens".to_owned(),
            json!({"auth": {"identity": {"methods": "password"}}}),
            "auth.identity.methods",
        ),
        (
            Method::POST,
            "/v3/auth/tokens".to_owned(),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": 1}}}}}),
            "auth.identity.password.user.password",
        ),
        (
            Method::POST,
            "/v2.0/tokens".to_owned(),
            json!({"auth": {"passwordCredentials": {"username": 5}}}),
            "auth.passwordCredentials.username",
        ),
    ];
    for (method, path, body, field) in cases {
        let (st, v) = c.call(method, &path, &admin, Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{path}: {message}");
    }
}

/// The typed bodies keep Keystone's semantics: extra attributes are kept,
/// `null` clears, what a PATCH leaves out stays.
#[tokio::test]
async fn typed_bodies_keep_keystone_semantics() {
    let c = sqlite_cloud("semantics", |_| {}).await;
    let admin = c
        .token("admin", "admin_pass", Some("admin"))
        .await
        .1
        .unwrap();
    let call = |m: Method, path: String, body: Value| {
        let admin = admin.clone();
        let c = &c;
        async move { c.call(m, &path, &admin, Some(body)).await }
    };
    let admin_id = store_user(&c, "admin").await.id;

    // Regions.
    let (st, v) = call(
        Method::POST,
        "/v3/regions".into(),
        json!({"region": {"id": "R2", "description": "d", "zone": "z"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["region"]["id"].as_str(), v["region"]["zone"].as_str()),
        (Some("R2"), Some("z"))
    );
    let (st, v) = call(
        Method::PATCH,
        "/v3/regions/R2".into(),
        json!({"region": {"description": null}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["region"]["description"], "");
    assert_eq!(
        call(Method::PUT, "/v3/regions/R3".into(), json!({"region": {}}))
            .await
            .0,
        StatusCode::CREATED
    );

    // Services and endpoints.
    let (st, v) = call(
        Method::POST,
        "/v3/services".into(),
        json!({"service": {"type": "volumev9", "name": "c", "description": "x"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let sid = v["service"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/services/{sid}"),
        json!({"service": {"enabled": false, "name": "d"}}),
    )
    .await;
    assert_eq!(
        (
            v["service"]["type"].as_str(),
            v["service"]["name"].as_str(),
            v["service"]["description"].as_str()
        ),
        (Some("volumev9"), Some("d"), Some("x"))
    );
    assert_eq!(v["service"]["enabled"], false);
    let (st, v) = call(Method::POST, "/v3/endpoints".into(), json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://h:1/", "region": "R9", "colour": "blue"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["endpoint"]["region_id"].as_str(),
            v["endpoint"]["colour"].as_str()
        ),
        (Some("R9"), Some("blue"))
    );
    let eid = v["endpoint"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/endpoints/{eid}"),
        json!({"endpoint": {"region_id": null}}),
    )
    .await;
    assert!(v["endpoint"]["region_id"].is_null(), "{v}");
    assert_eq!(v["endpoint"]["url"], "http://h:1/");
    assert_eq!(
        call(
            Method::PATCH,
            format!("/v3/endpoints/{eid}"),
            json!({"endpoint": {"interface": "sideways"}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );

    // Endpoint groups.
    let (st, v) = call(
        Method::POST,
        "/v3/OS-EP-FILTER/endpoint_groups".into(),
        json!({"endpoint_group": {"name": "g", "filters": {"interface": "public"}}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["endpoint_group"]["filters"],
        json!({"interface": "public"})
    );
    let gid = v["endpoint_group"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}"),
        json!({"endpoint_group": {"description": "d", "tier": 1}}),
    )
    .await;
    assert_eq!(
        (
            v["endpoint_group"]["description"].as_str(),
            v["endpoint_group"]["tier"].as_i64()
        ),
        (Some("d"), Some(1))
    );
    assert_eq!(
        v["endpoint_group"]["filters"],
        json!({"interface": "public"})
    );

    // Credentials, EC2 credentials, policies, consumers.
    let (st, v) = call(
        Method::POST,
        "/v3/credentials".into(),
        json!({"credential": {"user_id": admin_id, "type": "cert", "blob": "b"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let cid = v["credential"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/credentials/{cid}"),
        json!({"credential": {"blob": "c"}}),
    )
    .await;
    assert_eq!(
        (
            v["credential"]["blob"].as_str(),
            v["credential"]["type"].as_str()
        ),
        (Some("c"), Some("cert"))
    );
    let (_, v) = c
        .call(Method::GET, "/v3/projects?name=admin", &admin, None)
        .await;
    let admin_project = v["projects"][0]["id"].as_str().unwrap().to_owned();
    let (st, v) = call(
        Method::POST,
        format!("/v3/users/{admin_id}/credentials/OS-EC2"),
        json!({"tenant_id": admin_project}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = call(
        Method::POST,
        "/v3/policies".into(),
        json!({"policy": {"blob": "{}", "type": "application/json"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let pid = v["policy"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/policies/{pid}"),
        json!({"policy": {"blob": "{\"a\": 1}"}}),
    )
    .await;
    assert_eq!(
        (v["policy"]["blob"].as_str(), v["policy"]["type"].as_str()),
        (Some("{\"a\": 1}"), Some("application/json"))
    );
    let (st, v) = call(
        Method::POST,
        "/v3/OS-OAUTH1/consumers".into(),
        json!({"consumer": {"description": "c"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["consumer"]["secret"].is_string());
    let kid = v["consumer"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            Method::PATCH,
            format!("/v3/OS-OAUTH1/consumers/{kid}"),
            json!({"consumer": {"secret": "mine"}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/OS-OAUTH1/consumers/{kid}"),
        json!({"consumer": {"description": null}}),
    )
    .await;
    assert!(v["consumer"]["description"].is_null(), "{v}");

    // Users, projects, domains, groups.
    let (st, v) = call(Method::POST, "/v3/users".into(), json!({"user": {"name": "eve", "email": "eve@example.org", "default_project_id": admin_project, "options": {"ignore_lockout_failure_attempts": true}}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["user"]["email"], "eve@example.org");
    let eve = v["user"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(Method::PATCH, format!("/v3/users/{eve}"), json!({"user": {"default_project_id": null, "options": {"ignore_lockout_failure_attempts": null}}})).await;
    assert!(
        v["user"]
            .get("default_project_id")
            .is_none_or(Value::is_null),
        "{v}"
    );
    assert_eq!(v["user"]["options"], json!({}));
    assert_eq!(v["user"]["email"], "eve@example.org");
    let (st, v) = call(
        Method::POST,
        "/v3/projects".into(),
        json!({"project": {"name": "tagged", "tags": ["b", "a", "a"], "description": "d"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["project"]["tags"], json!(["a", "b"]));
    let tid = v["project"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/projects/{tid}"),
        json!({"project": {"description": null}}),
    )
    .await;
    assert_eq!(
        (
            v["project"]["description"].as_str(),
            v["project"]["name"].as_str()
        ),
        (Some(""), Some("tagged"))
    );
    let (st, v) = call(
        Method::POST,
        "/v3/projects".into(),
        json!({"project": {"name": "dom", "is_domain": true}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["project"]["is_domain"], true);
    let (st, v) = call(
        Method::POST,
        "/v3/groups".into(),
        json!({"group": {"name": "g1", "description": "d"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let g1 = v["group"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/groups/{g1}"),
        json!({"group": {"description": null}}),
    )
    .await;
    assert_eq!(
        (
            v["group"]["description"].as_str(),
            v["group"]["name"].as_str()
        ),
        (Some(""), Some("g1"))
    );

    // Application credential with chosen roles and an access rule.
    let (st, v) = call(
        Method::POST,
        format!("/v3/users/{admin_id}/application_credentials"),
        json!({"application_credential": {"name": "ruled", "roles": [{"name": "admin"}],
        "access_rules": [{"service": "identity", "path": "/v3/auth/projects", "method": "GET"}]}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["application_credential"]["roles"][0]["name"], "admin");
    assert_eq!(
        v["application_credential"]["access_rules"][0]["method"],
        "GET"
    );
    let (st, v) = call(
        Method::POST,
        format!("/v3/users/{admin_id}/application_credentials"),
        json!({"application_credential": {"name": "nope", "roles": [{"name": "not-a-role"}]}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

/// Every shape of auth document the typed request accepts, authenticating
/// as it did when the service read the JSON itself.
#[tokio::test]
async fn auth_documents_of_every_shape() {
    let c = sqlite_cloud("authshapes", |_| {}).await;
    let issue = |auth: Value| {
        let c = &c;
        async move {
            let r = c
                .http
                .post(format!("{}/v3/auth/tokens", c.base))
                .json(&json!({ "auth": auth }))
                .send()
                .await
                .unwrap();
            let st = r.status();
            let tok = r
                .headers()
                .get("x-subject-token")
                .map(|v| v.to_str().unwrap().to_owned());
            (st, tok, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let password = json!({"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "admin_pass"}}});

    let (st, tok, v) = issue(json!({"identity": password, "scope": "unscoped"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["token"].get("project").is_none());
    let (st, _, v) = issue(json!({"identity": password, "scope": {"system": {"all": true}}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["token"]["system"], json!({"all": true}));
    // Rescoping the unscoped token to a project by name, domain by name.
    let (st, _, v) = issue(
        json!({"identity": {"methods": ["token"], "token": {"id": tok.unwrap()}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["token"]["project"]["name"], "demo");
    assert_eq!(v["token"]["methods"], json!(["token", "password"]));
    let (st, _, _) =
        issue(json!({"identity": password, "scope": {"OS-TRUST:trust": {"id": "t"}}})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = issue(json!({"identity": password, "scope": "everything"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = issue(json!({"identity": {"methods": ["password"]}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = issue(json!({"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "admin_pass"}}}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a user by name needs a domain");

    // An application credential by name and its owner.
    let admin = c
        .token("admin", "admin_pass", Some("admin"))
        .await
        .1
        .unwrap();
    let admin_id = store_user(&c, "admin").await.id;
    let (st, v) = c
        .call(
            Method::POST,
            &format!("/v3/users/{admin_id}/application_credentials"),
            &admin,
            Some(json!({"application_credential": {"name": "byname", "secret": "s3cret"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, _, v) = issue(json!({"identity": {"methods": ["application_credential"], "application_credential": {
        "name": "byname", "secret": "s3cret", "user": {"name": "admin", "domain": {"name": "Default"}}}}}))
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["token"]["project"]["name"], "admin");

    // v2.0: tenant by name, then a token for another tenant by id.
    let v2 = |auth: Value| {
        let c = &c;
        async move {
            let r = c
                .http
                .post(format!("{}/v2.0/tokens", c.base))
                .json(&json!({ "auth": auth }))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, v) = v2(json!({"passwordCredentials": {"username": "admin", "password": "admin_pass"}, "tenantName": "admin"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let first = v["access"]["token"]["id"].as_str().unwrap().to_owned();
    let (_, p) = c
        .call(Method::GET, "/v3/projects?name=demo", &admin, None)
        .await;
    let demo = p["projects"][0]["id"].as_str().unwrap().to_owned();
    let (st, v) = v2(json!({"token": {"id": first}, "tenantId": demo})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["access"]["token"]["tenant"]["id"], demo.as_str());
    let (st, _) = v2(json!({"passwordCredentials": {"password": "admin_pass"}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// The document the code generates is the one committed under docs/openapi.
#[test]
fn openapi_document_is_committed() {
    ferrostack_testkit::assert_openapi_committed(
        "identity",
        &ferrostack_identity::openapi_document(),
    );
}

/// How many operations the identity API serves; a route added or removed
/// changes it (and the committed document).
const OPERATIONS: usize = 148;

/// `GET /openapi.json` needs no token and serves the document of every
/// operation the router routes: each one answers (a 401 without a token
/// when the document says it needs one), none is the router's 404 or 405.
#[tokio::test]
async fn openapi_document_is_served_and_true_to_the_router() {
    let c = sqlite_cloud("openapi", |_| {}).await;
    let r = c
        .http
        .get(format!("{}/openapi.json", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, ferrostack_identity::openapi_document());
    let create_user = &doc["paths"]["/v3/users"]["post"];
    assert_eq!(
        create_user["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateUserRequest"
    );
    assert_eq!(create_user["security"], json!([{"token": []}]));
    assert!(doc["components"]["schemas"]["CreateUserRequest"].is_object());

    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = template
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let r = c
                .http
                .request(method.clone(), format!("{}{path}", c.base))
                .send()
                .await
                .unwrap();
            let status = r.status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {status}"
            );
            if op.get("security").is_some() {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            }
        }
    }
    assert_eq!(operations, OPERATIONS);
}
