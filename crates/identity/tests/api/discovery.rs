//! Version discovery.

use crate::cloud::*;
use reqwest::StatusCode;
use serde_json::Value;

/// `GET /` lists the versions, v3 first, as Keystone's 300.
pub async fn walk(c: &Cloud) {
    let r = c.http.get(format!("{}/", c.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MULTIPLE_CHOICES);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["versions"]["values"][0]["id"], "v3.14");
}

#[tokio::test]
async fn root_lists_the_versions() {
    walk(&sqlite_cloud("discovery", |_| {}).await).await;
}
