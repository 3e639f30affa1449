//! Passwords: self-service change, and hashes that count every byte.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A user changes their own password: the wrong original is 401, the
/// change revokes their tokens, the new password logs in.
pub async fn walk(c: &Cloud) {
    let admin = c.admin().await;
    let user = create_user(c, &admin, "pwchanger", "pw1").await;
    let (_, old, _) = c.token("pwchanger", "pw1", None).await;
    let old = old.unwrap();
    let (st, _) = c
        .call(
            Method::POST,
            &format!("/v3/users/{user}/password"),
            &old,
            Some(json!({"user": {"original_password": "bad", "password": "pw2"}})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = c
        .call(
            Method::POST,
            &format!("/v3/users/{user}/password"),
            &old,
            Some(json!({"user": {"original_password": "pw1", "password": "pw2"}})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        c.call(Method::GET, &format!("/v3/users/{user}"), &old, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.token("pwchanger", "pw2", None).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn self_service_change_revokes_tokens() {
    walk(&sqlite_cloud("pwchange", |_| {}).await).await;
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
