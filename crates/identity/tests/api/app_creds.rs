//! Application credentials and their access rules.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The id and secret of an application credential the response created.
fn id_and_secret(v: &Value) -> (String, String) {
    let cred = &v["application_credential"];
    (
        cred["id"].as_str().unwrap().to_owned(),
        cred["secret"].as_str().unwrap().to_owned(),
    )
}

/// A credential made with a project token authenticates on that project;
/// deleting it revokes its tokens. One limited by an access rule gets only
/// the call the rule allows.
pub async fn walk(c: &Cloud) {
    let admin = c.admin().await;
    let admin_id = c.first_id(&admin, "/v3/users?name=admin", "users").await;
    let creds = format!("/v3/users/{admin_id}/application_credentials");
    let (st, v) = c
        .call(
            Method::POST,
            &creds,
            &admin,
            Some(json!({"application_credential": {"name": "ci"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (cid, secret) = id_and_secret(&v);
    let r = c.app_cred_token(&cid, &secret).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let ac_tok = r.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token"]["project"]["name"], "admin");
    assert_eq!(v["token"]["application_credential"]["id"], cid.as_str());
    assert_eq!(
        c.call(Method::DELETE, &format!("{creds}/{cid}"), &admin, None)
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

    let (st, v) = c
        .call(
            Method::POST,
            &creds,
            &admin,
            Some(json!({"application_credential": {"name": "narrow",
                "access_rules": [{"service": "identity", "path": "/v3/auth/projects", "method": "GET"}]}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (nid, nsecret) = id_and_secret(&v);
    let r = c.app_cred_token(&nid, &nsecret).await;
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
}

#[tokio::test]
async fn application_credentials_and_access_rules() {
    walk(&sqlite_cloud("appcreds", |_| {}).await).await;
}
