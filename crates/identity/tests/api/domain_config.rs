//! Domain-specific configuration.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Defaults are readable; a domain's config is created, patched by group
/// and by option, and deleted; groups and options outside the defaults
/// are refused.
pub async fn walk(c: &Cloud) {
    let admin = c.admin().await;
    let call = |method: Method, path: &str, body: Option<Value>| {
        let path = format!("/v3/domains/{path}");
        let admin = admin.clone();
        async move { c.call(method, &path, &admin, body).await }
    };
    let (st, v) = call(Method::GET, "config/default", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["config"]["ldap"]["url"], "ldap://localhost");
    assert_eq!(
        call(Method::GET, "default/config", None).await.0,
        StatusCode::NOT_FOUND
    );

    let config = json!({"config": {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://a"}}});
    let (st, v) = call(Method::PUT, "default/config", Some(config.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, config);
    assert_eq!(
        call(Method::PUT, "default/config", Some(config)).await.0,
        StatusCode::OK
    );
    let (st, v) = call(
        Method::PUT,
        "default/config",
        Some(json!({"config": {"colour": {}}})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = call(Method::PUT, "default/config", Some(json!({"config": {}}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    let (st, v) = call(
        Method::PATCH,
        "default/config/ldap",
        Some(json!({"config": {"ldap": {"user_tree_dn": "ou=users"}}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["config"]["ldap"]["user_tree_dn"], "ou=users");
    assert_eq!(v["config"]["ldap"]["url"], "ldap://a");
    let (st, v) = call(
        Method::PATCH,
        "default/config/ldap/url",
        Some(json!({"config": {"url": "ldap://b"}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["config"]["ldap"]["url"], "ldap://b");
    let (st, v) = call(
        Method::PATCH,
        "default/config/ldap/url",
        Some(json!({"config": {"user": "x"}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = call(Method::GET, "default/config/ldap/url", None).await;
    assert_eq!(
        (st, v),
        (StatusCode::OK, json!({"config": {"url": "ldap://b"}}))
    );

    assert_eq!(
        call(Method::DELETE, "default/config/ldap/url", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::GET, "default/config/ldap/url", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(Method::DELETE, "default/config", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::GET, "default/config", None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn domain_config_life_cycle() {
    walk(&sqlite_cloud("domainconfig", |_| {}).await).await;
}
