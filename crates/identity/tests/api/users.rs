//! Users: life cycle, and who may list them.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Create (extra attributes kept), a duplicate name conflicts, a member is
/// refused the listing, delete makes the id 404.
pub async fn walk(c: &Cloud) {
    let admin = c.admin().await;
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

    let (_, demo, _) = c.token("demo", "admin_pass", Some("demo")).await;
    let (st, v) = c.call(Method::GET, "/v3/users", &demo.unwrap(), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("identity:list_users"));

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
async fn user_life_cycle() {
    walk(&sqlite_cloud("users", |_| {}).await).await;
}
