//! Tokens: issue, validate, check, revoke; every shape of auth document.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A token carries the seed's catalog and the implied roles; a wrong
/// password is 401; validate, revoke and check a token; the revocation
/// holds after a reload from the database (another controller's view).
pub async fn walk(c: &Cloud) {
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
    assert_eq!(
        c.token("admin", "nope", Some("admin")).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (_, subject, _) = c.token("demo", "admin_pass", Some("demo")).await;
    let subject = subject.unwrap();
    let about_subject = |method: Method| {
        c.http
            .request(method, format!("{}/v3/auth/tokens", c.base))
            .header("x-auth-token", &admin)
            .header("x-subject-token", &subject)
            .send()
    };
    assert_eq!(
        about_subject(Method::GET).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        about_subject(Method::DELETE).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        about_subject(Method::HEAD).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.call(Method::GET, "/v3/auth/projects", &subject, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    c.svc.reload_revocations().await.unwrap();
    assert_eq!(
        c.call(Method::GET, "/v3/auth/projects", &subject, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn issue_validate_check_revoke() {
    walk(&sqlite_cloud("tokens", |_| {}).await).await;
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
