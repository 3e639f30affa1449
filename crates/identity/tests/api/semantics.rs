//! Typed request bodies keep Keystone's semantics: extra attributes are
//! kept, `null` clears, what a PATCH leaves out stays. One test per resource.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A fresh SQLite cloud with the bootstrap admin's token, user id and project id.
struct Admin {
    c: Cloud,
    token: String,
    id: String,
    project: String,
}

impl Admin {
    async fn on(name: &str) -> Admin {
        let c = sqlite_cloud(name, |_| {}).await;
        let token = c.admin().await;
        let id = store_user(&c, "admin").await.id;
        let project = c
            .first_id(&token, "/v3/projects?name=admin", "projects")
            .await;
        Admin {
            c,
            token,
            id,
            project,
        }
    }

    /// `method path` with a JSON body, as the admin.
    async fn call(&self, method: Method, path: String, body: Value) -> (StatusCode, Value) {
        self.c.call(method, &path, &self.token, Some(body)).await
    }
}

/// Regions: an extra attribute is kept, `null` clears the description,
/// `PUT` names a new one.
#[tokio::test]
async fn regions_keep_extra_attributes_and_null_clears() {
    let a = Admin::on("semantics-regions").await;
    let (st, v) = a
        .call(
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
    let (st, v) = a
        .call(
            Method::PATCH,
            "/v3/regions/R2".into(),
            json!({"region": {"description": null}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["region"]["description"], "");
    assert_eq!(
        a.call(Method::PUT, "/v3/regions/R3".into(), json!({"region": {}}))
            .await
            .0,
        StatusCode::CREATED
    );
}

/// Services and endpoints: a PATCH changes what it names and keeps the
/// rest; `region` is the older `region_id`, and `null` clears it.
#[tokio::test]
async fn services_and_endpoints_change_only_what_is_given() {
    let a = Admin::on("semantics-services").await;
    let (st, v) = a
        .call(
            Method::POST,
            "/v3/services".into(),
            json!({"service": {"type": "volumev9", "name": "c", "description": "x"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let sid = v["service"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .call(
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
    let (st, v) = a.call(Method::POST, "/v3/endpoints".into(), json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://h:1/", "region": "R9", "colour": "blue"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["endpoint"]["region_id"].as_str(),
            v["endpoint"]["colour"].as_str()
        ),
        (Some("R9"), Some("blue"))
    );
    let eid = v["endpoint"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .call(
            Method::PATCH,
            format!("/v3/endpoints/{eid}"),
            json!({"endpoint": {"region_id": null}}),
        )
        .await;
    assert!(v["endpoint"]["region_id"].is_null(), "{v}");
    assert_eq!(v["endpoint"]["url"], "http://h:1/");
    assert_eq!(
        a.call(
            Method::PATCH,
            format!("/v3/endpoints/{eid}"),
            json!({"endpoint": {"interface": "sideways"}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
}

/// Endpoint groups: filters as given, kept by a PATCH that adds attributes.
#[tokio::test]
async fn endpoint_groups_keep_their_filters() {
    let a = Admin::on("semantics-epgroups").await;
    let (st, v) = a
        .call(
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
    let (_, v) = a
        .call(
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
}

/// Credentials: a PATCH of the blob keeps the type; EC2 credentials for a project.
#[tokio::test]
async fn credentials_and_ec2_credentials() {
    let a = Admin::on("semantics-credentials").await;
    let (st, v) = a
        .call(
            Method::POST,
            "/v3/credentials".into(),
            json!({"credential": {"user_id": a.id, "type": "cert", "blob": "b"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let cid = v["credential"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .call(
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
    let (st, v) = a
        .call(
            Method::POST,
            format!("/v3/users/{}/credentials/OS-EC2", a.id),
            json!({"tenant_id": a.project}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// Policies keep their type when the blob changes; a consumer's secret is
/// generated, never set, and `null` clears its description.
#[tokio::test]
async fn policies_and_consumers() {
    let a = Admin::on("semantics-policies").await;
    let (st, v) = a
        .call(
            Method::POST,
            "/v3/policies".into(),
            json!({"policy": {"blob": "{}", "type": "application/json"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let pid = v["policy"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .call(
            Method::PATCH,
            format!("/v3/policies/{pid}"),
            json!({"policy": {"blob": "{\"a\": 1}"}}),
        )
        .await;
    assert_eq!(
        (v["policy"]["blob"].as_str(), v["policy"]["type"].as_str()),
        (Some("{\"a\": 1}"), Some("application/json"))
    );
    let (st, v) = a
        .call(
            Method::POST,
            "/v3/OS-OAUTH1/consumers".into(),
            json!({"consumer": {"description": "c"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["consumer"]["secret"].is_string());
    let kid = v["consumer"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        a.call(
            Method::PATCH,
            format!("/v3/OS-OAUTH1/consumers/{kid}"),
            json!({"consumer": {"secret": "mine"}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let (_, v) = a
        .call(
            Method::PATCH,
            format!("/v3/OS-OAUTH1/consumers/{kid}"),
            json!({"consumer": {"description": null}}),
        )
        .await;
    assert!(v["consumer"]["description"].is_null(), "{v}");
}

/// Users: extra attributes are kept; `null` clears the default project and an option.
#[tokio::test]
async fn users_keep_extra_attributes_and_null_clears() {
    let a = Admin::on("semantics-users").await;
    let (st, v) = a.call(Method::POST, "/v3/users".into(), json!({"user": {"name": "eve", "email": "eve@example.org", "default_project_id": a.project, "options": {"ignore_lockout_failure_attempts": true}}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["user"]["email"], "eve@example.org");
    let eve = v["user"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a.call(Method::PATCH, format!("/v3/users/{eve}"), json!({"user": {"default_project_id": null, "options": {"ignore_lockout_failure_attempts": null}}})).await;
    assert!(
        v["user"]
            .get("default_project_id")
            .is_none_or(Value::is_null),
        "{v}"
    );
    assert_eq!(v["user"]["options"], json!({}));
    assert_eq!(v["user"]["email"], "eve@example.org");
}

/// Projects: tags sorted once each, `null` clears the description, `is_domain` makes a domain.
#[tokio::test]
async fn projects_sort_tags_and_may_be_domains() {
    let a = Admin::on("semantics-projects").await;
    let (st, v) = a
        .call(
            Method::POST,
            "/v3/projects".into(),
            json!({"project": {"name": "tagged", "tags": ["b", "a", "a"], "description": "d"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["project"]["tags"], json!(["a", "b"]));
    let tid = v["project"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .call(
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
    let (st, v) = a
        .call(
            Method::POST,
            "/v3/projects".into(),
            json!({"project": {"name": "dom", "is_domain": true}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["project"]["is_domain"], true);
}

/// Groups: `null` clears the description and keeps the name.
#[tokio::test]
async fn groups_null_clears_the_description() {
    let a = Admin::on("semantics-groups").await;
    let (st, v) = a
        .call(
            Method::POST,
            "/v3/groups".into(),
            json!({"group": {"name": "g1", "description": "d"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let g1 = v["group"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .call(
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
}

/// Application credentials: chosen roles the user holds and an access
/// rule; a role the user lacks is 400.
#[tokio::test]
async fn application_credentials_with_chosen_roles_and_rules() {
    let a = Admin::on("semantics-appcreds").await;
    let (st, v) = a
        .call(
            Method::POST,
            format!("/v3/users/{}/application_credentials", a.id),
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
    let (st, v) = a
        .call(
            Method::POST,
            format!("/v3/users/{}/application_credentials", a.id),
            json!({"application_credential": {"name": "nope", "roles": [{"name": "not-a-role"}]}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}
