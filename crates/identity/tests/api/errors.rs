//! Errors in Keystone's style, and 400s that name the field.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Malformed JSON, an unknown id, an oversized body and a field of the
/// wrong type, each answered in Keystone's error style.
pub async fn walk(c: &Cloud) {
    let admin = c.admin().await;
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
}

#[tokio::test]
async fn errors_in_keystone_style() {
    walk(&sqlite_cloud("errors", |_| {}).await).await;
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
