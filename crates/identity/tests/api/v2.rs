//! Identity v2.0, as the seed's legacy clients call it.

use crate::cloud::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// `keystone token-get`: a v2.0 token on a tenant by name, with the
/// catalog's interfaces folded into one endpoint per region.
pub async fn walk(c: &Cloud) {
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
}

#[tokio::test]
async fn v2_token_like_keystone_token_get() {
    walk(&sqlite_cloud("v2", |_| {}).await).await;
}
