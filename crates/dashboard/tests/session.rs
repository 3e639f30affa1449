//! The dashboard's server side against a real, in-process identity
//! service: login (and its refusals), the session cookie's flags, CSRF
//! refusal, the project switcher, logout revoking the token, and the proxy
//! passing an API's own error (status, message, request id) through.

use ferrostack_testkit::{Browser, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Identity in-process, its public catalog endpoint pointed at where it
/// really listens (the proxy forwards by the catalog), and the dashboard.
async fn start(name: &str) -> (TestCloud, String) {
    let kit = cloud(name).await;
    let url = ferrostack_testkit::serve(ferrostack_dashboard::router(settings(&kit, None))).await;
    (kit, url)
}

fn settings(
    kit: &TestCloud,
    session_dir: Option<std::path::PathBuf>,
) -> ferrostack_dashboard::Settings {
    ferrostack_dashboard::Settings {
        auth_url: kit.auth_uri(),
        session_ttl: Duration::from_secs(600),
        secure_cookie: false,
        region: "RegionOne".into(),
        session_dir,
    }
}

async fn cloud(name: &str) -> TestCloud {
    let kit = ferrostack_testkit::start(&format!("dashboard-{name}"), |_| {}).await;
    let admin = kit.token("admin", "admin").await;
    let api = ferrostack_testkit::Api::new(format!("{}/v3", kit.identity_url));
    let endpoints = api
        .ok(Method::GET, "/endpoints?interface=public", &admin, None)
        .await;
    let services = api
        .ok(Method::GET, "/services?type=identity", &admin, None)
        .await;
    let identity_id = services["services"][0]["id"].as_str().unwrap().to_owned();
    for e in endpoints["endpoints"].as_array().unwrap() {
        if e["service_id"] == identity_id.as_str() {
            let path = format!("/endpoints/{}", e["id"].as_str().unwrap());
            let url = format!("{}/v3", kit.identity_url);
            api.ok(
                Method::PATCH,
                &path,
                &admin,
                Some(json!({"endpoint": {"url": url}})),
            )
            .await;
        }
    }
    kit
}

fn password(user: &str) -> Value {
    json!({"domain": "Default", "username": user, "password": "admin_pass"})
}

async fn login(b: &Browser, user: &str) -> Value {
    let page = b
        .send(Method::POST, "/auth/login", None, Some(password(user)))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.body
}

#[tokio::test]
async fn login_sets_a_locked_down_cookie_and_never_reveals_the_token() {
    let (_kit, url) = start("login").await;
    let b = Browser::new(&url);
    let page = b
        .send(Method::POST, "/auth/login", None, Some(password("admin")))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let cookie = page.headers["set-cookie"].to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(flag), "cookie {cookie} lacks {flag}");
    }
    assert!(!page.headers.contains_key("x-subject-token"));
    let body = &page.body;
    assert_eq!(body["user_name"], "admin");
    assert_eq!(body["project"]["name"], "admin");
    assert_eq!(body["is_admin"], true);
    assert_eq!(body["csrf_token"].as_str().unwrap().len(), 64);
    assert!(body["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "identity"));
    // Nothing in the answer looks like a Fernet token.
    assert!(!page.text.contains("gAAAA"), "{}", page.text);
    let session = b.send(Method::GET, "/auth/session", None, None).await;
    assert_eq!(session.status, StatusCode::OK);
    assert_eq!(session.body["user_id"], body["user_id"]);
    // The demo user has member roles only: no admin panels.
    let demo = Browser::new(&url);
    let d = login(&demo, "demo").await;
    assert_eq!(d["is_admin"], false);
    assert_eq!(d["project"]["name"], "demo");
}

#[tokio::test]
async fn bad_logins_get_clear_messages() {
    let (_kit, url) = start("badlogin").await;
    let b = Browser::new(&url);
    let wrong = json!({"domain": "Default", "username": "admin", "password": "nope"});
    let page = b.send(Method::POST, "/auth/login", None, Some(wrong)).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let msg = page.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("user name or password is wrong"), "{msg}");
    assert!(!page.headers.contains_key("set-cookie"));

    let empty = json!({"username": "", "password": ""});
    let page = b.send(Method::POST, "/auth/login", None, Some(empty)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text.contains("Enter a user name and a password"));

    let mut other = password("demo");
    other["project"] = json!("admin");
    let page = b.send(Method::POST, "/auth/login", None, Some(other)).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        page.text.contains("no role on the project 'admin'"),
        "{}",
        page.text
    );

    // A cross-site form can post text/plain, never JSON without a preflight.
    let r = b
        .http
        .post(format!("{url}/auth/login"))
        .header("content-type", "text/plain")
        .body(password("admin").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = b
        .http
        .post(format!("{url}/auth/login"))
        .header("origin", "http://evil.example")
        .json(&password("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn changes_without_the_csrf_token_are_refused() {
    let (_kit, url) = start("csrf").await;
    let b = Browser::new(&url);
    let s = login(&b, "admin").await;
    let csrf = s["csrf_token"].as_str().unwrap();
    let body = json!({"project": {"name": "csrf-made", "domain_id": "default"}});
    for token in [None, Some("0000")] {
        let page = b
            .send(
                Method::POST,
                "/api/identity/v3/projects",
                token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
        assert!(page.text.contains("CSRF"), "{}", page.text);
    }
    // Nothing was created; with the token it is.
    let list = b
        .send(
            Method::GET,
            "/api/identity/v3/projects?name=csrf-made",
            None,
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["projects"].as_array().unwrap().len(), 0);
    let page = b
        .send(
            Method::POST,
            "/api/identity/v3/projects",
            Some(csrf),
            Some(body),
        )
        .await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.text);
    assert_eq!(page.body["project"]["name"], "csrf-made");
    // Logout is a change too.
    let page = b.send(Method::POST, "/auth/logout", None, None).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_proxy_passes_api_errors_through_with_their_request_id() {
    let (_kit, url) = start("proxy").await;
    let b = Browser::new(&url);
    login(&b, "demo").await;
    let page = b
        .send(Method::GET, "/api/identity/v3/users", None, None)
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
    let id = page.headers["x-openstack-request-id"].to_str().unwrap();
    assert!(id.starts_with("req-"), "{id}");
    // Keystone's own error document, not the dashboard's.
    assert_eq!(page.body["error"]["code"], 403);
    assert!(page.body["error"]["message"].as_str().unwrap().len() > 10);
    // An unknown service type is a clear 404, not a 500.
    let page = b.send(Method::GET, "/api/no-such/thing", None, None).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.text.contains("no 'no-such' service"), "{}", page.text);
    // Without a session the proxy forwards nothing.
    let anon = Browser::new(&url);
    let page = anon
        .send(Method::GET, "/api/identity/v3/users", None, None)
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn polling_an_unchanged_list_costs_a_304() {
    let (_kit, url) = start("etag").await;
    let b = Browser::new(&url);
    login(&b, "admin").await;
    let first = b
        .send(Method::GET, "/api/identity/v3/projects", None, None)
        .await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let cookie = b.cookie.lock().unwrap().clone().unwrap();
    let r = b
        .http
        .get(format!("{url}/api/identity/v3/projects"))
        .header("cookie", cookie)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn switching_project_and_logging_out() {
    let (kit, url) = start("switch").await;
    let b = Browser::new(&url);
    let s = login(&b, "admin").await;
    let csrf = s["csrf_token"].as_str().unwrap().to_owned();
    let demo = s["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "demo")
        .expect("admin may scope to demo")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = b
        .send(
            Method::POST,
            "/auth/project",
            Some(&csrf),
            Some(json!({"project_id": demo})),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["project"]["name"], "demo");
    assert_eq!(page.body["csrf_token"], csrf.as_str());
    let page = b
        .send(
            Method::POST,
            "/auth/project",
            Some(&csrf),
            Some(json!({"project_id": "not-mine"})),
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    let rc = b.send(Method::GET, "/auth/openrc", None, None).await;
    assert!(
        rc.text.contains("export OS_PROJECT_NAME='demo'"),
        "{}",
        rc.text
    );
    assert!(!rc.text.contains("admin_pass"));

    let cookie = b.cookie.lock().unwrap().clone().unwrap();
    let page = b
        .send(Method::POST, "/auth/logout", Some(&csrf), None)
        .await;
    assert_eq!(page.status, StatusCode::NO_CONTENT);
    assert!(page.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The old cookie no longer opens anything.
    let r = b
        .http
        .get(format!("{url}/api/identity/v3/projects"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    drop(kit);
}

#[tokio::test]
async fn an_application_credential_logs_in_to_its_own_project_only() {
    let (kit, url) = start("appcred").await;
    let token = kit.token("demo", "demo").await;
    let api = ferrostack_testkit::Api::new(format!("{}/v3", kit.identity_url));
    let user_id = {
        let r = kit
            .http
            .get(format!("{}/v3/auth/tokens", kit.identity_url))
            .header("x-auth-token", &token)
            .header("x-subject-token", &token)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["token"]["user"]["id"].as_str().unwrap().to_owned()
    };
    let path = format!("/users/{user_id}/application_credentials");
    let created = api
        .ok(
            Method::POST,
            &path,
            &token,
            Some(json!({"application_credential": {"name": "dash"}})),
        )
        .await;
    let cred = &created["application_credential"];
    let b = Browser::new(&url);
    let body = json!({"application_credential_id": cred["id"], "application_credential_secret": cred["secret"]});
    let page = b.send(Method::POST, "/auth/login", None, Some(body)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["method"], "application_credential");
    assert_eq!(page.body["project"]["name"], "demo");
    assert_eq!(page.body["projects"].as_array().unwrap().len(), 1);
    let wrong =
        json!({"application_credential_id": cred["id"], "application_credential_secret": "nope"});
    let page = Browser::new(&url)
        .send(Method::POST, "/auth/login", None, Some(wrong))
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_survive_a_restart_and_end_with_logout() {
    let kit = cloud("restart").await;
    let dir = kit.dir.join("dashboard-sessions");
    let first = ferrostack_testkit::serve(ferrostack_dashboard::router(settings(
        &kit,
        Some(dir.clone()),
    )))
    .await;
    let b = Browser::new(&first);
    let s = login(&b, "demo").await;
    let csrf = s["csrf_token"].as_str().unwrap().to_owned();
    // The session file is written by its own thread: wait for it.
    let files = || std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    for _ in 0..100 {
        if files() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(files(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let f = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }
    // A new dashboard process on the same data directory: the browser's
    // cookie still opens its session, and the CSRF token still holds.
    let second = ferrostack_testkit::serve(ferrostack_dashboard::router(settings(
        &kit,
        Some(dir.clone()),
    )))
    .await;
    let b2 = Browser::new(&second);
    *b2.cookie.lock().unwrap() = b.cookie.lock().unwrap().clone();
    let page = b2.send(Method::GET, "/auth/session", None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["user_name"], "demo");
    let page = b2
        .send(Method::GET, "/api/identity/v3/auth/projects", None, None)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let page = b2
        .send(Method::POST, "/auth/logout", Some(&csrf), None)
        .await;
    assert_eq!(page.status, StatusCode::NO_CONTENT);
    // Removed off the request path: allow a loaded machine ten seconds.
    for _ in 0..500 {
        if files() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(files(), 0, "logout removes the stored session");
    let third =
        ferrostack_testkit::serve(ferrostack_dashboard::router(settings(&kit, Some(dir)))).await;
    let b3 = Browser::new(&third);
    *b3.cookie.lock().unwrap() = b.cookie.lock().unwrap().clone();
    let page = b3.send(Method::GET, "/auth/session", None, None).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
}
