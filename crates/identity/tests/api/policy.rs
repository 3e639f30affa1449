//! An operator's policy file over the default rules.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// `[identity] policy_file` replaces defaults; a file that does not parse
/// stops the service from starting.
#[tokio::test]
async fn operator_policy_file_applies_over_defaults() {
    let dir =
        std::env::temp_dir().join(format!("ferrostack-identity-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(
        &file,
        "# operators' overrides\n\"identity:list_users\": \"!\"\n\"identity:create_project\": \"rule:admin_required or role:manager\"\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let c = sqlite_cloud("policy", |cfg| cfg.identity.policy_file = path.clone()).await;
    let admin = c
        .token("admin", "admin_pass", Some("admin"))
        .await
        .1
        .unwrap();
    let (st, v) = c.call(Method::GET, "/v3/users", &admin, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // Rules the file does not name keep their defaults.
    assert_eq!(
        c.call(Method::GET, "/v3/projects", &admin, None).await.0,
        StatusCode::OK
    );

    // A project manager may now create projects; a member still may not.
    let manager = create_user(&c, &admin, "mgr", "mgr_pass").await;
    let (_, v) = c
        .call(Method::GET, "/v3/projects?name=demo", &admin, None)
        .await;
    let demo = v["projects"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) = c
        .call(Method::GET, "/v3/roles?name=manager", &admin, None)
        .await;
    let role = v["roles"][0]["id"].as_str().unwrap().to_owned();
    let grant = format!("/v3/projects/{demo}/users/{manager}/roles/{role}");
    assert_eq!(
        c.call(Method::PUT, &grant, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    let mgr = c.token("mgr", "mgr_pass", Some("demo")).await.1.unwrap();
    let project = json!({"project": {"name": "managed", "domain_id": "default"}});
    let (st, v) = c
        .call(Method::POST, "/v3/projects", &mgr, Some(project.clone()))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let member = c.token("demo", "admin_pass", Some("demo")).await.1.unwrap();
    assert_eq!(
        c.call(Method::POST, "/v3/projects", &member, Some(project))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // A file that does not parse refuses start.
    std::fs::write(&file, "\"identity:list_users\": \"role:admin or (\"\n").unwrap();
    let mut cfg = c.svc.config.clone();
    cfg.identity.policy_file = file.display().to_string();
    let bus = ferrostack_bus::open("memory://").unwrap();
    let err = match ferrostack_identity::IdentityService::new(c.svc.db.clone(), cfg, bus).await {
        Ok(_) => panic!("a broken policy file must refuse start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("identity:list_users"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
