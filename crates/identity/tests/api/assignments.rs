//! Role grants and the role assignments they make.

use crate::cloud::*;
use reqwest::{Method, StatusCode};

/// A grant of member on demo lets the user scope there with the implied
/// reader role; the effective assignments show both; deleting the grant
/// revokes the token it allowed.
pub async fn walk(c: &Cloud) {
    let admin = c.admin().await;
    let grantee = create_user(c, &admin, "grantee", "pw1").await;
    let member = c.first_id(&admin, "/v3/roles?name=member", "roles").await;
    let demo_project = c
        .first_id(&admin, "/v3/projects?name=demo", "projects")
        .await;
    let grant = format!("/v3/projects/{demo_project}/users/{grantee}/roles/{member}");
    assert_eq!(
        c.call(Method::PUT, &grant, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::HEAD, &grant, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (st, grantee_tok, body) = c.token("grantee", "pw1", Some("demo")).await;
    assert_eq!(st, StatusCode::CREATED);
    let grantee_tok = grantee_tok.unwrap();
    let roles: Vec<&str> = body["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["member", "reader"]);
    let (st, v) = c
        .call(
            Method::GET,
            &format!("/v3/role_assignments?user.id={grantee}&effective&include_names"),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let got: Vec<&str> = v["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["role"]["name"].as_str().unwrap())
        .collect();
    assert!(got.contains(&"member") && got.contains(&"reader"), "{v}");
    assert_eq!(v["role_assignments"][0]["scope"]["project"]["name"], "demo");
    assert_eq!(
        c.call(Method::DELETE, &grant, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::GET, "/v3/auth/projects", &grantee_tok, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_grant_scopes_tokens_and_its_removal_revokes_them() {
    walk(&sqlite_cloud("assignments", |_| {}).await).await;
}
