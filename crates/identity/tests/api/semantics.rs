//! Typed request bodies keep Keystone's semantics.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The typed bodies keep Keystone's semantics: extra attributes are kept,
/// `null` clears, what a PATCH leaves out stays.
#[tokio::test]
async fn typed_bodies_keep_keystone_semantics() {
    let c = sqlite_cloud("semantics", |_| {}).await;
    let admin = c
        .token("admin", "admin_pass", Some("admin"))
        .await
        .1
        .unwrap();
    let call = |m: Method, path: String, body: Value| {
        let admin = admin.clone();
        let c = &c;
        async move { c.call(m, &path, &admin, Some(body)).await }
    };
    let admin_id = store_user(&c, "admin").await.id;

    // Regions.
    let (st, v) = call(
        Method::POST,
        "/v3/regions".into(),
        json!({"region": {"id": "R2", "description": "d", "zone": "z"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["region"]["id"].as_str(), v["region"]["zone"].as_str()),
        (Some("R2"), Some("z"))
    );
    let (st, v) = call(
        Method::PATCH,
        "/v3/regions/R2".into(),
        json!({"region": {"description": null}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["region"]["description"], "");
    assert_eq!(
        call(Method::PUT, "/v3/regions/R3".into(), json!({"region": {}}))
            .await
            .0,
        StatusCode::CREATED
    );

    // Services and endpoints.
    let (st, v) = call(
        Method::POST,
        "/v3/services".into(),
        json!({"service": {"type": "volumev9", "name": "c", "description": "x"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let sid = v["service"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/services/{sid}"),
        json!({"service": {"enabled": false, "name": "d"}}),
    )
    .await;
    assert_eq!(
        (
            v["service"]["type"].as_str(),
            v["service"]["name"].as_str(),
            v["service"]["description"].as_str()
        ),
        (Some("volumev9"), Some("d"), Some("x"))
    );
    assert_eq!(v["service"]["enabled"], false);
    let (st, v) = call(Method::POST, "/v3/endpoints".into(), json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://h:1/", "region": "R9", "colour": "blue"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["endpoint"]["region_id"].as_str(),
            v["endpoint"]["colour"].as_str()
        ),
        (Some("R9"), Some("blue"))
    );
    let eid = v["endpoint"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/endpoints/{eid}"),
        json!({"endpoint": {"region_id": null}}),
    )
    .await;
    assert!(v["endpoint"]["region_id"].is_null(), "{v}");
    assert_eq!(v["endpoint"]["url"], "http://h:1/");
    assert_eq!(
        call(
            Method::PATCH,
            format!("/v3/endpoints/{eid}"),
            json!({"endpoint": {"interface": "sideways"}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );

    // Endpoint groups.
    let (st, v) = call(
        Method::POST,
        "/v3/OS-EP-FILTER/endpoint_groups".into(),
        json!({"endpoint_group": {"name": "g", "filters": {"interface": "public"}}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["endpoint_group"]["filters"],
        json!({"interface": "public"})
    );
    let gid = v["endpoint_group"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}"),
        json!({"endpoint_group": {"description": "d", "tier": 1}}),
    )
    .await;
    assert_eq!(
        (
            v["endpoint_group"]["description"].as_str(),
            v["endpoint_group"]["tier"].as_i64()
        ),
        (Some("d"), Some(1))
    );
    assert_eq!(
        v["endpoint_group"]["filters"],
        json!({"interface": "public"})
    );

    // Credentials, EC2 credentials, policies, consumers.
    let (st, v) = call(
        Method::POST,
        "/v3/credentials".into(),
        json!({"credential": {"user_id": admin_id, "type": "cert", "blob": "b"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let cid = v["credential"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/credentials/{cid}"),
        json!({"credential": {"blob": "c"}}),
    )
    .await;
    assert_eq!(
        (
            v["credential"]["blob"].as_str(),
            v["credential"]["type"].as_str()
        ),
        (Some("c"), Some("cert"))
    );
    let (_, v) = c
        .call(Method::GET, "/v3/projects?name=admin", &admin, None)
        .await;
    let admin_project = v["projects"][0]["id"].as_str().unwrap().to_owned();
    let (st, v) = call(
        Method::POST,
        format!("/v3/users/{admin_id}/credentials/OS-EC2"),
        json!({"tenant_id": admin_project}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = call(
        Method::POST,
        "/v3/policies".into(),
        json!({"policy": {"blob": "{}", "type": "application/json"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let pid = v["policy"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/policies/{pid}"),
        json!({"policy": {"blob": "{\"a\": 1}"}}),
    )
    .await;
    assert_eq!(
        (v["policy"]["blob"].as_str(), v["policy"]["type"].as_str()),
        (Some("{\"a\": 1}"), Some("application/json"))
    );
    let (st, v) = call(
        Method::POST,
        "/v3/OS-OAUTH1/consumers".into(),
        json!({"consumer": {"description": "c"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["consumer"]["secret"].is_string());
    let kid = v["consumer"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            Method::PATCH,
            format!("/v3/OS-OAUTH1/consumers/{kid}"),
            json!({"consumer": {"secret": "mine"}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/OS-OAUTH1/consumers/{kid}"),
        json!({"consumer": {"description": null}}),
    )
    .await;
    assert!(v["consumer"]["description"].is_null(), "{v}");

    // Users, projects, domains, groups.
    let (st, v) = call(Method::POST, "/v3/users".into(), json!({"user": {"name": "eve", "email": "eve@example.org", "default_project_id": admin_project, "options": {"ignore_lockout_failure_attempts": true}}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["user"]["email"], "eve@example.org");
    let eve = v["user"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(Method::PATCH, format!("/v3/users/{eve}"), json!({"user": {"default_project_id": null, "options": {"ignore_lockout_failure_attempts": null}}})).await;
    assert!(
        v["user"]
            .get("default_project_id")
            .is_none_or(Value::is_null),
        "{v}"
    );
    assert_eq!(v["user"]["options"], json!({}));
    assert_eq!(v["user"]["email"], "eve@example.org");
    let (st, v) = call(
        Method::POST,
        "/v3/projects".into(),
        json!({"project": {"name": "tagged", "tags": ["b", "a", "a"], "description": "d"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["project"]["tags"], json!(["a", "b"]));
    let tid = v["project"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/projects/{tid}"),
        json!({"project": {"description": null}}),
    )
    .await;
    assert_eq!(
        (
            v["project"]["description"].as_str(),
            v["project"]["name"].as_str()
        ),
        (Some(""), Some("tagged"))
    );
    let (st, v) = call(
        Method::POST,
        "/v3/projects".into(),
        json!({"project": {"name": "dom", "is_domain": true}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["project"]["is_domain"], true);
    let (st, v) = call(
        Method::POST,
        "/v3/groups".into(),
        json!({"group": {"name": "g1", "description": "d"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let g1 = v["group"]["id"].as_str().unwrap().to_owned();
    let (_, v) = call(
        Method::PATCH,
        format!("/v3/groups/{g1}"),
        json!({"group": {"description": null}}),
    )
    .await;
    assert_eq!(
        (
            v["group"]["description"].as_str(),
            v["group"]["name"].as_str()
        ),
        (Some(""), Some("g1"))
    );

    // Application credential with chosen roles and an access rule.
    let (st, v) = call(
        Method::POST,
        format!("/v3/users/{admin_id}/application_credentials"),
        json!({"application_credential": {"name": "ruled", "roles": [{"name": "admin"}],
        "access_rules": [{"service": "identity", "path": "/v3/auth/projects", "method": "GET"}]}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["application_credential"]["roles"][0]["name"], "admin");
    assert_eq!(
        v["application_credential"]["access_rules"][0]["method"],
        "GET"
    );
    let (st, v) = call(
        Method::POST,
        format!("/v3/users/{admin_id}/application_credentials"),
        json!({"application_credential": {"name": "nope", "roles": [{"name": "not-a-role"}]}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}
