//! Projects: the seed's, and the ones a user may scope to.

use crate::cloud::*;
use reqwest::{Method, StatusCode};

/// The admin lists the four seed projects; demo sees only its own. Runs
/// first among the walks, before any of them could add a project.
pub async fn walk(c: &Cloud) {
    let admin = c.admin().await;
    let (st, v) = c.call(Method::GET, "/v3/projects", &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        sorted_names(&v, "projects"),
        vec!["admin", "demo", "invisible_to_admin", "service"]
    );

    let (_, demo, _) = c.token("demo", "admin_pass", Some("demo")).await;
    let (st, v) = c
        .call(Method::GET, "/v3/auth/projects", &demo.unwrap(), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        sorted_names(&v, "projects"),
        vec!["demo", "invisible_to_admin"]
    );
}

#[tokio::test]
async fn seed_projects_and_a_users_own() {
    walk(&sqlite_cloud("projects", |_| {}).await).await;
}
