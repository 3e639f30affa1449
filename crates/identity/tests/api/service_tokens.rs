//! Another service validating a user's token through the API.

use crate::cloud::*;
use ferrostack_core::auth::TokenValidator;
use ferrostack_core::service_client::{RemoteTokenValidator, ServiceClient, ServiceCredentials};

/// Nova's service user validates a user's token as another service's auth
/// middleware does; a token that is none is 401.
pub async fn walk(c: &Cloud) {
    let client = ServiceClient::new(ServiceCredentials {
        auth_url: format!("{}/v3", c.base),
        username: "nova".into(),
        password: "service_pass".into(),
        project_name: "service".into(),
        user_domain_id: "default".into(),
        project_domain_id: "default".into(),
    });
    let remote = RemoteTokenValidator::new(client, std::time::Duration::from_secs(60));
    let (_, demo, _) = c.token("demo", "admin_pass", Some("demo")).await;
    let ctx = remote.validate(demo.as_deref().unwrap()).await.unwrap();
    assert_eq!(ctx.user_name, "demo");
    assert_eq!(ctx.project_name.as_deref(), Some("demo"));
    assert!(ctx.has_role("member"));
    assert_eq!(
        remote.validate("not-a-token").await.unwrap_err().status(),
        401
    );
}

#[tokio::test]
async fn a_service_validates_a_users_token() {
    walk(&sqlite_cloud("servicetokens", |_| {}).await).await;
}
