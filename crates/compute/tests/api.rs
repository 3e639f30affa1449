//! The compute API end to end, in-process: identity (testkit), the
//! networking and image APIs, the compute API and a compute agent with the
//! fake driver on the memory bus. Boots reach ACTIVE with an address from
//! the subnet; quotas, validation and project isolation answer as Nova
//! does; a failure at each step of the create saga leaves ERROR with a
//! fault and nothing leaked; a restart resumes or finishes unwinding.

use ferrostack_compute::states::{PowerState, VmState};
use ferrostack_compute::{ComputeAgent, ComputeService};
use ferrostack_core::config::Config;
use ferrostack_hypervisor::fake::{FakeConfig, FakeDriver};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Cloud {
    kit: ferrostack_testkit::TestCloud,
    config: Config,
    compute: String,
    net: String,
    glance: String,
    svc: Arc<ComputeService>,
    agent: Arc<ComputeAgent>,
    driver: Arc<FakeDriver>,
    db_url: String,
    http: reqwest::Client,
}

async fn start(name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    start_on(name, None, tune).await
}

/// `db`: the compute database (another engine); default a SQLite file.
async fn start_on(name: &str, db: Option<ferrostack_db::Db>, tune: impl Fn(&mut Config)) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("compute-{name}"), |_| {}).await;
    let dir = kit.dir.clone();
    let sqlite = |svc: &str| format!("sqlite://{}/{svc}.sqlite?mode=rwc", dir.display());

    let net_db = ferrostack_db::Db::connect(&sqlite("network"))
        .await
        .unwrap();
    net_db
        .migrate(ferrostack_network::store::MIGRATIONS)
        .await
        .unwrap();
    let network =
        ferrostack_network::NetworkService::new(net_db, kit.config.clone(), kit.bus.clone())
            .await
            .unwrap();
    let net = ferrostack_testkit::serve(ferrostack_network::api::router(
        network,
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;

    let img_db = ferrostack_db::Db::connect(&sqlite("image")).await.unwrap();
    img_db
        .migrate(ferrostack_image::store::MIGRATIONS)
        .await
        .unwrap();
    let image = ferrostack_image::ImageService::new(img_db, kit.config.clone(), kit.bus.clone())
        .await
        .unwrap();
    let glance = ferrostack_testkit::serve(ferrostack_image::api::router(
        image,
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;

    let mut config = kit.config.clone();
    config.service_auth.auth_url = kit.auth_uri();
    config.compute.network_url = net.clone();
    config.compute.image_url = glance.clone();
    config.compute.rpc_timeout = 5;
    config.compute.report_interval = 1;
    config.compute.sync_power_state_interval = 3600;
    config.common.host = "compute1".into();
    config.compute.driver = "fake".into();
    config.compute.instances_path = dir.join("instances").display().to_string();
    tune(&mut config);

    let db_url = sqlite("compute");
    let cdb = match db {
        Some(d) => d,
        None => ferrostack_db::Db::connect(&db_url).await.unwrap(),
    };
    cdb.migrate(ferrostack_compute::store::MIGRATIONS)
        .await
        .unwrap();
    let svc = ComputeService::new(cdb, config.clone(), kit.bus.clone())
        .await
        .unwrap();
    ferrostack_compute::start(&svc).await.unwrap();
    let compute = ferrostack_testkit::serve(ferrostack_compute::api::router(
        svc.clone(),
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    let driver = Arc::new(FakeDriver::new(&FakeConfig {
        host: config.common.host.clone(),
        vcpus: config.compute.fake_vcpus,
        memory_mb: config.compute.fake_memory_mb,
        local_gb: config.compute.fake_local_gb,
    }));
    let agent = ComputeAgent::start(&config, kit.bus.clone(), driver.clone())
        .await
        .unwrap();
    Cloud {
        kit,
        config,
        compute,
        net,
        glance,
        svc,
        agent,
        driver,
        db_url,
        http: reqwest::Client::new(),
    }
}

impl Cloud {
    async fn token(&self, user: &str, project: &str) -> String {
        self.kit.token(user, project).await
    }

    async fn req(
        &self,
        m: Method,
        url: String,
        tok: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut r = self.http.request(m, url).header("x-auth-token", tok);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let st = resp.status();
        let headers = resp.headers().clone();
        (st, headers, resp.json().await.unwrap_or(Value::Null))
    }

    async fn nova(
        &self,
        m: Method,
        path: &str,
        tok: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (s, _, v) = self
            .req(m, format!("{}/v2.1{path}", self.compute), tok, body)
            .await;
        (s, v)
    }

    /// A request at microversion `version` (`OpenStack-API-Version`).
    async fn nova_at(
        &self,
        version: &str,
        m: Method,
        path: &str,
        tok: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}/v2.1{path}", self.compute);
        let mut r = self
            .http
            .request(m, url)
            .header("x-auth-token", tok)
            .header("openstack-api-version", format!("compute {version}"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let st = resp.status();
        (st, resp.json().await.unwrap_or(Value::Null))
    }

    /// [`Cloud::nova_at`] that must succeed.
    async fn ok_at(
        &self,
        version: &str,
        m: Method,
        path: &str,
        tok: &str,
        body: Option<Value>,
    ) -> Value {
        let (s, v) = self.nova_at(version, m.clone(), path, tok, body).await;
        assert!(s.is_success(), "{m} {path} at {version}: {s} {v}");
        v
    }

    async fn ok(&self, m: Method, path: &str, tok: &str, body: Option<Value>) -> Value {
        let (s, v) = self.nova(m.clone(), path, tok, body).await;
        assert!(s.is_success(), "{m} {path}: {s} {v}");
        v
    }

    async fn neutron(&self, m: Method, path: &str, tok: &str, body: Option<Value>) -> Value {
        let (s, _, v) = self
            .req(m.clone(), format!("{}/v2.0{path}", self.net), tok, body)
            .await;
        assert!(s.is_success(), "{m} {path}: {s} {v}");
        v
    }

    /// A public raw image with a few bytes of data.
    async fn image(&self, admin: &str) -> String {
        let (s, _, v) = self
            .req(
                Method::POST,
                format!("{}/v2/images", self.glance),
                admin,
                Some(json!({"name": "cirros", "disk_format": "raw", "container_format": "bare", "visibility": "public"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let r = self
            .http
            .put(format!("{}/v2/images/{id}/file", self.glance))
            .header("x-auth-token", admin)
            .header("content-type", "application/octet-stream")
            .body(vec![7u8; 4096])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        id
    }

    /// A shared network with a 10.20.0.0/24 subnet.
    async fn network(&self, admin: &str) -> String {
        let n = self
            .neutron(
                Method::POST,
                "/networks",
                admin,
                Some(json!({"network": {"name": "private", "shared": true}})),
            )
            .await;
        let id = n["network"]["id"].as_str().unwrap().to_owned();
        self.neutron(
            Method::POST,
            "/subnets",
            admin,
            Some(json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": "10.20.0.0/24"}})),
        )
        .await;
        id
    }

    async fn boot(&self, tok: &str, name: &str, image: &str, net: &str) -> String {
        let v = self
            .ok(
                Method::POST,
                "/servers",
                tok,
                Some(
                    json!({"server": {"name": name, "imageRef": image, "flavorRef": "1",
                    "networks": [{"uuid": net}]}}),
                ),
            )
            .await;
        v["server"]["id"].as_str().unwrap().to_owned()
    }

    /// `POST /servers` with `body`: the server's id, its admin password
    /// and the request's id.
    async fn create_server(&self, tok: &str, body: Value) -> (String, String, String) {
        let (s, headers, v) = self
            .req(
                Method::POST,
                format!("{}/v2.1/servers", self.compute),
                tok,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let request = headers["x-openstack-request-id"].to_str().unwrap();
        (
            v["server"]["id"].as_str().unwrap().to_owned(),
            v["server"]["adminPass"].as_str().unwrap().to_owned(),
            request.to_owned(),
        )
    }

    /// `POST /servers/{id}/action` with `body`.
    async fn action(&self, tok: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.nova(
            Method::POST,
            &format!("/servers/{id}/action"),
            tok,
            Some(body),
        )
        .await
    }

    async fn wait_status(&self, tok: &str, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, v) = self
                .nova(Method::GET, &format!("/servers/{id}"), tok, None)
                .await;
            if want == "GONE" && s == StatusCode::NOT_FOUND {
                return Value::Null;
            }
            if s.is_success() && v["server"]["status"] == want {
                return v["server"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "server {id} never reached {want}: {s} {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ports_of(&self, admin: &str, id: &str) -> Vec<Value> {
        self.neutron(Method::GET, &format!("/ports?device_id={id}"), admin, None)
            .await["ports"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn claims_of(&self, id: &str) -> usize {
        ferrostack_compute::store::hosts::list_claims(&self.svc.db)
            .await
            .unwrap()
            .iter()
            .filter(|c| c.0 == id)
            .count()
    }
}

/// Keys a v2.1 server detail may carry (tempest's `server_detail`).
const DETAIL_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "image",
    "flavor",
    "fault",
    "user_id",
    "tenant_id",
    "created",
    "updated",
    "progress",
    "metadata",
    "links",
    "addresses",
    "hostId",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
    "key_name",
    "security_groups",
    "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at",
    "OS-EXT-AZ:availability_zone",
    "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state",
    "OS-EXT-SRV-ATTR:host",
    "OS-EXT-SRV-ATTR:instance_name",
    "OS-EXT-SRV-ATTR:hypervisor_hostname",
    "os-extended-volumes:volumes_attached",
    "config_drive",
];

fn assert_detail_schema(s: &Value) {
    for k in s.as_object().unwrap().keys() {
        assert!(
            DETAIL_KEYS.contains(&k.as_str()),
            "unexpected key {k} in server"
        );
    }
    for k in [
        "id",
        "name",
        "status",
        "image",
        "flavor",
        "user_id",
        "tenant_id",
        "created",
        "updated",
        "metadata",
        "links",
        "addresses",
        "hostId",
    ] {
        assert!(s.get(k).is_some(), "missing {k}");
    }
}

#[tokio::test]
async fn discovery_and_microversions() {
    let c = start("discovery", |_| {}).await;
    let r = c.http.get(format!("{}/", c.compute)).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    // Nova lists the legacy v2.0 first (tempest checks it).
    assert_eq!(v["versions"][0]["id"], "v2.0");
    assert_eq!(v["versions"][1]["id"], "v2.1");
    assert_eq!(v["versions"][1]["status"], "CURRENT");
    let max = ferrostack_compute::api::MAX_VERSION.to_string();
    assert_eq!(v["versions"][1]["version"], max);
    assert_eq!(v["versions"][1]["min_version"], "2.1");
    let r = c
        .http
        .get(format!("{}/v2.1", c.compute))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["openstack-api-version"], "compute 2.1");
    assert_eq!(r.headers()["x-openstack-nova-api-version"], "2.1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"]["media-types"][0]["base"], "application/json");
    let admin = c.token("admin", "admin").await;
    let r = c
        .http
        .get(format!("{}/v2.1/flavors", c.compute))
        .header("x-auth-token", &admin)
        .header("openstack-api-version", "compute 2.101")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    let v: Value = r.json().await.unwrap();
    let max = ferrostack_compute::api::MAX_VERSION;
    assert_eq!(
        v["computeFault"]["message"]
            .as_str()
            .or(v["notAcceptable"]["message"].as_str()),
        Some(
            format!(
                "Version 2.101 is not supported by the API. Minimum is 2.1 and maximum is {max}."
            )
            .as_str()
        ),
        "{v}"
    );
    let r = c
        .http
        .get(format!("{}/v2.1/flavors", c.compute))
        .header("x-auth-token", &admin)
        .header("openstack-api-version", "compute 2.01")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "Nova's format has no leading zeros"
    );
    let r = c
        .http
        .get(format!("{}/v2.1/flavors", c.compute))
        .header("x-auth-token", &admin)
        .header("openstack-api-version", "compute latest")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["openstack-api-version"],
        format!("compute {max}")
    );
    assert_eq!(
        r.headers()["vary"],
        "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
    );
    let r = c
        .http
        .get(format!("{}/v2.1/flavors", c.compute))
        .header("x-auth-token", &admin)
        .header("x-openstack-nova-api-version", "latest")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-openstack-nova-api-version"], max.to_string());
    let (s, v) = c.nova(Method::GET, "/servers/nope", &admin, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["itemNotFound"]["code"], 404);
    let (s, _) = c
        .nova_at("2.1", Method::GET, "/flavors", &admin, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    c.ok_at("latest", Method::GET, "/flavors", &admin, None)
        .await;
}

/// The operations `api::routes` documents (`docs/openapi/compute.json`).
const DOCUMENTED_OPERATIONS: usize = 150;

/// The service serves its OpenAPI document to anyone, and it is true to
/// the router (testkit's checks).
#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    let c = start("openapi", |_| {}).await;
    let (doc, operations) = ferrostack_testkit::assert_openapi_served(
        &c.compute,
        &ferrostack_compute::openapi_document(),
    )
    .await;
    assert_eq!(
        doc["info"]["version"],
        ferrostack_compute::api::MAX_VERSION.to_string()
    );
    let create = &doc["paths"]["/v2.1/servers"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateServerBody"
    );
    assert_eq!(create["security"], json!([{"token": []}]));
    let action = &doc["paths"]["/v2.1/servers/{id}/action"]["post"];
    assert_eq!(
        action["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ServerActionBody"
    );
    assert!(doc["components"]["schemas"]["ServerActionBody"]["oneOf"].is_array());
    assert_eq!(operations, DOCUMENTED_OPERATIONS);
    c.agent.stop();
}

/// `$runner` with the walk `walk::$name` and its name (for its cloud and
/// database).
macro_rules! run {
    ($runner:ident, $name:ident) => {
        $runner(stringify!($name), walk::$name).await
    };
}

/// Run a walk on a cloud of its own (SQLite).
async fn on_sqlite(name: &str, walk: impl AsyncFn(&Cloud)) {
    let c = start(name, |_| {}).await;
    walk(&c).await;
    c.agent.stop();
}

/// Run a walk on a cloud of its own for each database engine other than
/// SQLite that this machine has (`test_databases`; a database per walk,
/// its name within the engines' 63 characters).
async fn on_other_engines(name: &str, walk: impl AsyncFn(&Cloud)) {
    let database = format!("cw_{}", &name[..name.len().min(40)]);
    for db in ferrostack_db::testing::test_databases(&database).await {
        let backend = db.backend;
        if backend == ferrostack_db::Backend::Sqlite {
            continue;
        }
        let c = start_on(&format!("{name}-{backend:?}"), Some(db), |_| {}).await;
        walk(&c).await;
        c.agent.stop();
        // The service's background tasks keep it (and its pool) alive after
        // the walk: close the pool, or twenty walks' idle connections reach
        // PostgreSQL's max_connections (100) and a later walk's saga times
        // out waiting for one.
        c.svc.db.pool.close().await;
    }
}

#[tokio::test]
async fn flavors_private_access_and_extra_specs() {
    run!(on_sqlite, flavors_private_access_and_extra_specs);
}

#[tokio::test]
async fn key_pairs_generated_and_imported() {
    run!(on_sqlite, key_pairs_generated_and_imported);
}

#[tokio::test]
async fn services_disabled_and_forced_down() {
    run!(on_sqlite, services_disabled_and_forced_down);
}

#[tokio::test]
async fn hypervisors_and_availability_zones() {
    run!(on_sqlite, hypervisors_and_availability_zones);
}

#[tokio::test]
async fn limits_and_quota_sets() {
    run!(on_sqlite, limits_and_quota_sets);
}

#[tokio::test]
async fn server_create_list_show_and_update() {
    run!(on_sqlite, server_create_list_show_and_update);
}

#[tokio::test]
async fn server_power_actions_and_console_output() {
    run!(on_sqlite, server_power_actions_and_console_output);
}

#[tokio::test]
async fn server_metadata_and_tags() {
    run!(on_sqlite, server_metadata_and_tags);
}

#[tokio::test]
async fn server_security_groups_and_the_proxy() {
    run!(on_sqlite, server_security_groups_and_the_proxy);
}

#[tokio::test]
async fn server_snapshot_into_the_image_service() {
    run!(on_sqlite, server_snapshot_into_the_image_service);
}

#[tokio::test]
async fn server_rebuild_gets_a_new_password() {
    run!(on_sqlite, server_rebuild_gets_a_new_password);
}

#[tokio::test]
async fn server_resize_confirmed_and_reverted() {
    run!(on_sqlite, server_resize_confirmed_and_reverted);
}

#[tokio::test]
async fn server_lock_power_sync_and_reset_state() {
    run!(on_sqlite, server_lock_power_sync_and_reset_state);
}

#[tokio::test]
async fn server_instance_actions_and_usage() {
    run!(on_sqlite, server_instance_actions_and_usage);
}

#[tokio::test]
async fn server_delete_releases_everything() {
    run!(on_sqlite, server_delete_releases_everything);
}

#[tokio::test]
async fn aggregates_hosts_zones_and_metadata() {
    run!(on_sqlite, aggregates_hosts_zones_and_metadata);
}

#[tokio::test]
async fn os_hosts_list_show_update_and_power() {
    run!(on_sqlite, os_hosts_list_show_update_and_power);
}

#[tokio::test]
async fn migrations_follow_a_resize() {
    run!(on_sqlite, migrations_follow_a_resize);
}

#[tokio::test]
async fn usage_audit_log_of_the_month_before() {
    run!(on_sqlite, usage_audit_log_of_the_month_before);
}

#[tokio::test]
async fn server_views_by_microversion() {
    run!(on_sqlite, server_views_by_microversion);
}

#[path = "api/later_microversions.rs"]
mod later_microversions;

#[tokio::test]
async fn later_microversions() {
    on_sqlite("later_microversions", later_microversions::walk).await;
}

#[path = "api/server_operations.rs"]
mod server_operations;

#[tokio::test]
async fn change_password_without_a_guest_agent() {
    on_sqlite(
        "change_password",
        server_operations::change_password_without_a_guest_agent,
    )
    .await;
}

#[path = "api/shelve.rs"]
mod shelve;

#[tokio::test]
async fn shelve_offload_and_unshelve() {
    on_sqlite("shelve", shelve::walk).await;
}

#[tokio::test]
async fn server_topology_from_2_78() {
    on_sqlite("topology", shelve::topology_from_2_78).await;
}

#[tokio::test]
async fn migrations_by_owner_from_2_80() {
    on_sqlite("migration_owners", shelve::migrations_by_owner_from_2_80).await;
}

#[path = "api/migration.rs"]
mod migration;

#[tokio::test]
async fn cold_migration_resize_and_evacuate_between_two_hosts() {
    on_sqlite("migration", migration::cold_migration_resize_and_evacuate).await;
}

#[tokio::test]
async fn group_members_of_one_request_follow_the_policy() {
    on_sqlite(
        "group_placement",
        migration::group_members_of_one_request_follow_the_policy,
    )
    .await;
}

#[tokio::test]
async fn every_move_step_runs_twice_and_undoes_twice() {
    on_sqlite("move_steps", migration::every_move_step_twice_and_failed).await;
}

#[tokio::test]
async fn live_migration_between_two_hosts() {
    on_sqlite("live_migration", migration::live_migration).await;
}

#[tokio::test]
async fn live_migration_resumes_after_a_restart_at_each_step() {
    on_sqlite(
        "live_restarts",
        migration::live_migration_resumes_after_a_restart,
    )
    .await;
}

#[path = "api/rescue.rs"]
mod rescue;

#[tokio::test]
async fn rescue_and_unrescue() {
    on_sqlite("rescue", rescue::rescue_and_unrescue).await;
}

#[tokio::test]
async fn rescue_refusals_failures_and_policy() {
    on_sqlite("rescue_refusals", rescue::rescue_refusals).await;
}

#[path = "api/rocky_to_train.rs"]
mod rocky_to_train;

#[path = "api/ussuri_to_flamingo.rs"]
mod ussuri_to_flamingo;

#[tokio::test]
async fn microversions_from_2_81() {
    on_sqlite("ussuri_to_flamingo", ussuri_to_flamingo::walk).await;
}

/// Two controllers on one database.
#[path = "api/saga_takeover.rs"]
mod saga_takeover;

/// Server lists in pages of `max_limit`, read page by page.
#[path = "api/server_lists.rs"]
mod server_lists;

#[tokio::test]
async fn microversions_from_2_65() {
    on_sqlite("rocky_to_train", rocky_to_train::walk).await;
}

/// Every walk of `mod walk` in turn, each on a cloud of its own whose
/// compute database is MariaDB, then PostgreSQL (the tests above run them
/// on SQLite).
#[tokio::test]
async fn every_walk_on_mariadb_and_postgresql() {
    run!(on_other_engines, flavors_private_access_and_extra_specs);
    run!(on_other_engines, key_pairs_generated_and_imported);
    run!(on_other_engines, services_disabled_and_forced_down);
    run!(on_other_engines, hypervisors_and_availability_zones);
    run!(on_other_engines, limits_and_quota_sets);
    run!(on_other_engines, server_create_list_show_and_update);
    run!(on_other_engines, server_power_actions_and_console_output);
    run!(on_other_engines, server_metadata_and_tags);
    run!(on_other_engines, server_security_groups_and_the_proxy);
    run!(on_other_engines, server_snapshot_into_the_image_service);
    run!(on_other_engines, server_rebuild_gets_a_new_password);
    run!(on_other_engines, server_resize_confirmed_and_reverted);
    run!(on_other_engines, server_lock_power_sync_and_reset_state);
    run!(on_other_engines, server_instance_actions_and_usage);
    run!(on_other_engines, server_delete_releases_everything);
    run!(on_other_engines, aggregates_hosts_zones_and_metadata);
    run!(on_other_engines, os_hosts_list_show_update_and_power);
    run!(on_other_engines, migrations_follow_a_resize);
    run!(on_other_engines, usage_audit_log_of_the_month_before);
    run!(on_other_engines, server_views_by_microversion);
}

/// The walks: one resource or one concern each, from a fresh cloud (so
/// any one runs alone), run by the named tests on SQLite and by
/// [`every_walk_on_mariadb_and_postgresql`] on the other engines.
mod walk {
    use super::*;

    /// The default flavors; a private flavor (admin only until access is
    /// granted), its extra specs, its deletion.
    pub(super) async fn flavors_private_access_and_extra_specs(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        let v = c.ok(Method::GET, "/flavors", &demo, None).await;
        let names: Vec<&str> = v["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"]
        );
        assert_eq!(v["flavors"][0].as_object().unwrap().len(), 3);
        let f = c.ok(Method::GET, "/flavors/1", &demo, None).await["flavor"].clone();
        assert_eq!(
            (
                f["ram"].clone(),
                f["vcpus"].clone(),
                f["disk"].clone(),
                f["swap"].clone()
            ),
            (json!(512), json!(1), json!(1), json!(""))
        );

        // A private flavor: admin only until access is granted.
        let demo_project = c.kit.project_of(&demo).await;
        c.ok(Method::POST, "/flavors", &admin, Some(json!({"flavor": {"name": "private1", "id": "p1", "ram": 256, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": false}}))).await;
        let (s, _) = c.nova(Method::GET, "/flavors/p1", &demo, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = c
            .nova(
                Method::POST,
                "/flavors",
                &demo,
                Some(json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1}})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = c
            .nova(
                Method::POST,
                "/flavors",
                &admin,
                Some(json!({"flavor": {"name": "private1", "ram": 1, "vcpus": 1, "disk": 1}})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        c.ok(
            Method::POST,
            "/flavors/p1/action",
            &admin,
            Some(json!({"addTenantAccess": {"tenant": demo_project}})),
        )
        .await;
        c.ok(Method::GET, "/flavors/p1", &demo, None).await;
        let acc = c
            .ok(Method::GET, "/flavors/p1/os-flavor-access", &admin, None)
            .await;
        assert!(acc["flavor_access"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["tenant_id"] == demo_project.as_str()));
        c.ok(
            Method::POST,
            "/flavors/p1/os-extra_specs",
            &admin,
            Some(json!({"extra_specs": {"hw:cpu_policy": "shared"}})),
        )
        .await;
        let specs = c
            .ok(Method::GET, "/flavors/p1/os-extra_specs", &demo, None)
            .await;
        assert_eq!(specs["extra_specs"]["hw:cpu_policy"], "shared");
        let (s, _) = c.nova(Method::DELETE, "/flavors/p1", &admin, None).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }

    /// Key pairs: generated and imported, one name per user, theirs alone.
    pub(super) async fn key_pairs_generated_and_imported(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        let k = c
            .ok(
                Method::POST,
                "/os-keypairs",
                &demo,
                Some(json!({"keypair": {"name": "gen"}})),
            )
            .await["keypair"]
            .clone();
        assert!(k["private_key"].as_str().unwrap().contains("PRIVATE KEY"));
        assert!(k["public_key"].as_str().unwrap().starts_with("ssh-rsa "));
        let public = k["public_key"].as_str().unwrap().to_owned();
        let k2 = c
            .ok(
                Method::POST,
                "/os-keypairs",
                &demo,
                Some(json!({"keypair": {"name": "imp", "public_key": public}})),
            )
            .await["keypair"]
            .clone();
        assert!(k2.get("private_key").is_none());
        assert_eq!(k2["fingerprint"], k["fingerprint"]);
        let (s, _) = c
            .nova(
                Method::POST,
                "/os-keypairs",
                &demo,
                Some(json!({"keypair": {"name": "imp", "public_key": public}})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = c
            .nova(
                Method::POST,
                "/os-keypairs",
                &demo,
                Some(json!({"keypair": {"name": "bad", "public_key": "ssh-rsa nope"}})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let list = c.ok(Method::GET, "/os-keypairs", &demo, None).await;
        assert_eq!(list["keypairs"].as_array().unwrap().len(), 2);
        let show = c.ok(Method::GET, "/os-keypairs/gen", &demo, None).await;
        assert!(show["keypair"]["id"].is_i64());
        assert_eq!(show["keypair"]["deleted"], false);
        let (s, _) = c.nova(Method::GET, "/os-keypairs/gen", &admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "key pairs belong to their user");
        let (s, _) = c
            .nova(Method::DELETE, "/os-keypairs/gen", &demo, None)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        key_pair_types_from_2_2(c, &demo).await;
        key_pairs_of_other_users_from_2_10(c, &admin, &demo).await;
    }

    /// 2.10: an admin lists, shows, deletes and creates another user's key
    /// pairs by `user_id`; before, `user_id` is ignored (query) or refused
    /// (body); a user may not name another.
    async fn key_pairs_of_other_users_from_2_10(c: &Cloud, admin: &str, demo: &str) {
        let demo_user = c.ok(Method::GET, "/os-keypairs/imp", demo, None).await["keypair"]
            ["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let theirs = format!("/os-keypairs?user_id={demo_user}");
        let mine = c.ok_at("2.9", Method::GET, &theirs, admin, None).await;
        let theirs_now = c.ok_at("2.10", Method::GET, &theirs, admin, None).await;
        let names = |v: &Value| -> Vec<String> {
            v["keypairs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["keypair"]["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert!(!names(&mine).contains(&"imp".to_owned()), "ignored at 2.9");
        assert!(
            names(&theirs_now).contains(&"imp".to_owned()),
            "{theirs_now}"
        );
        let body = json!({"keypair": {"name": "for-demo", "user_id": demo_user}});
        let (s, _) = c
            .nova_at(
                "2.9",
                Method::POST,
                "/os-keypairs",
                admin,
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::BAD_REQUEST,
            "no user_id in the body before 2.10"
        );
        let made = c
            .ok_at("2.10", Method::POST, "/os-keypairs", admin, Some(body))
            .await;
        assert_eq!(made["keypair"]["user_id"], demo_user.as_str());
        c.ok(Method::GET, "/os-keypairs/for-demo", demo, None).await;
        let shown = format!("/os-keypairs/for-demo?user_id={demo_user}");
        let (s, _) = c.nova_at("2.9", Method::GET, &shown, admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "the admin's own at 2.9");
        c.ok_at("2.10", Method::GET, &shown, admin, None).await;
        let (s, _) = c.nova_at("2.10", Method::DELETE, &shown, admin, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let body = json!({"keypair": {"name": "for-admin", "user_id": "someone-else"}});
        let (s, _) = c
            .nova_at("2.10", Method::POST, "/os-keypairs", demo, Some(body))
            .await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "a user may not create for another"
        );
    }

    /// 2.2: `type` is refused at 2.1 and accepted after; every view has
    /// it; create answers 201 and delete 204; x509 pairs are certificates.
    async fn key_pair_types_from_2_2(c: &Cloud, demo: &str) {
        let x509 = json!({"keypair": {"name": "win", "type": "x509"}});
        let (s, _) = c
            .nova_at(
                "2.1",
                Method::POST,
                "/os-keypairs",
                demo,
                Some(x509.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "no type before 2.2");
        let list = c
            .ok_at("2.1", Method::GET, "/os-keypairs", demo, None)
            .await;
        assert!(list["keypairs"][0]["keypair"].get("type").is_none());
        let (s, made) = c
            .nova_at("2.2", Method::POST, "/os-keypairs", demo, Some(x509))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let made = &made["keypair"];
        assert_eq!(made["type"], "x509");
        let pem = made["public_key"].as_str().unwrap().to_owned();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert!(made["private_key"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY"));
        assert_eq!(made["fingerprint"].as_str().unwrap().len(), 59, "SHA-1");
        let imported = json!({"keypair": {"name": "win2", "type": "x509", "public_key": pem}});
        let (s, again) = c
            .nova_at("2.2", Method::POST, "/os-keypairs", demo, Some(imported))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(again["keypair"]["fingerprint"], made["fingerprint"]);
        assert!(again["keypair"].get("private_key").is_none());
        let bad = json!({"keypair": {"name": "w3", "type": "x509", "public_key": "ssh-rsa AAAA"}});
        let (s, _) = c
            .nova_at("2.2", Method::POST, "/os-keypairs", demo, Some(bad))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let ssh = c
            .ok_at(
                "2.2",
                Method::POST,
                "/os-keypairs",
                demo,
                Some(json!({"keypair": {"name": "plain"}})),
            )
            .await;
        assert_eq!(ssh["keypair"]["type"], "ssh");
        let show = c
            .ok_at("2.2", Method::GET, "/os-keypairs/win", demo, None)
            .await;
        assert_eq!(show["keypair"]["type"], "x509");
        let show = c
            .ok_at("2.1", Method::GET, "/os-keypairs/win", demo, None)
            .await;
        assert!(show["keypair"].get("type").is_none());
        let list = c
            .ok_at("2.2", Method::GET, "/os-keypairs", demo, None)
            .await;
        assert!(list["keypairs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["keypair"]["type"].is_string()));
        let (s, _) = c
            .nova_at("2.2", Method::DELETE, "/os-keypairs/win", demo, None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        for name in ["win2", "plain"] {
            let (s, _) = c
                .nova_at(
                    "2.1",
                    Method::DELETE,
                    &format!("/os-keypairs/{name}"),
                    demo,
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED);
        }
    }

    /// The agent's heartbeat registered nova-compute; an admin disables it
    /// with a reason, enables it, forces it down and up.
    pub(super) async fn services_disabled_and_forced_down(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        wait_compute_host(c, &admin).await;
        let svcs = c.ok(Method::GET, "/os-services", &admin, None).await;
        let s0 = &svcs["services"][0];
        assert_eq!(
            (
                s0["binary"].as_str(),
                s0["host"].as_str(),
                s0["state"].as_str(),
                s0["status"].as_str()
            ),
            (
                Some("nova-compute"),
                Some("compute1"),
                Some("up"),
                Some("enabled")
            )
        );
        assert!(s0["updated_at"].is_string());
        let (s, _) = c.nova(Method::GET, "/os-services", &demo, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let d = c.ok(Method::PUT, "/os-services/disable-log-reason", &admin, Some(json!({"host": "compute1", "binary": "nova-compute", "disabled_reason": "maintenance"}))).await;
        assert_eq!(d["service"]["status"], "disabled");
        let svcs = c.ok(Method::GET, "/os-services", &admin, None).await;
        assert_eq!(svcs["services"][0]["disabled_reason"], "maintenance");
        c.ok(
            Method::PUT,
            "/os-services/enable",
            &admin,
            Some(json!({"host": "compute1", "binary": "nova-compute"})),
        )
        .await;
        // 2.11: force-down, and `forced_down` in the view.
        let down = json!({"host": "compute1", "binary": "nova-compute", "forced_down": true});
        let (s, _) = c
            .nova_at(
                "2.10",
                Method::PUT,
                "/os-services/force-down",
                &admin,
                Some(down.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "no force-down before 2.11");
        c.ok_at(
            "2.11",
            Method::PUT,
            "/os-services/force-down",
            &admin,
            Some(down),
        )
        .await;
        let svcs = c.ok(Method::GET, "/os-services", &admin, None).await;
        assert_eq!(svcs["services"][0]["state"], "down");
        assert!(svcs["services"][0].get("forced_down").is_none());
        let svcs = c
            .ok_at("2.11", Method::GET, "/os-services", &admin, None)
            .await;
        assert_eq!(svcs["services"][0]["forced_down"], true);
        c.ok_at(
            "2.11",
            Method::PUT,
            "/os-services/force-down",
            &admin,
            Some(json!({"host": "compute1", "binary": "nova-compute", "forced_down": false})),
        )
        .await;
    }

    /// The agent's hypervisor (detail, statistics, show) and the zone of its
    /// host.
    pub(super) async fn hypervisors_and_availability_zones(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        wait_compute_host(c, &admin).await;
        let h = c
            .ok(Method::GET, "/os-hypervisors/detail", &admin, None)
            .await;
        let h0 = &h["hypervisors"][0];
        assert_eq!(h0["hypervisor_type"], "fake");
        assert_eq!(h0["vcpus"], c.config.compute.fake_vcpus);
        assert_eq!(h0["state"], "up");
        let st = c
            .ok(Method::GET, "/os-hypervisors/statistics", &admin, None)
            .await;
        assert_eq!(st["hypervisor_statistics"]["count"], 1);
        let one = c
            .ok(
                Method::GET,
                &format!("/os-hypervisors/{}", h0["id"]),
                &admin,
                None,
            )
            .await;
        assert_eq!(
            one["hypervisor"]["hypervisor_hostname"],
            h0["hypervisor_hostname"]
        );
        // 2.28: cpu_info is an object, not its JSON text.
        assert!(one["hypervisor"]["cpu_info"].is_string());
        let path = format!("/os-hypervisors/{}", h0["id"]);
        let typed = c.ok_at("2.28", Method::GET, &path, &admin, None).await;
        assert!(typed["hypervisor"]["cpu_info"].is_object(), "{typed}");
        let detail = c
            .ok_at("2.28", Method::GET, "/os-hypervisors/detail", &admin, None)
            .await;
        assert!(detail["hypervisors"][0]["cpu_info"].is_object());

        let az = c
            .ok(Method::GET, "/os-availability-zone", &demo, None)
            .await;
        assert_eq!(az["availabilityZoneInfo"][0]["zoneName"], "nova");
        assert_eq!(
            az["availabilityZoneInfo"][0]["zoneState"]["available"],
            true
        );
        let azd = c
            .ok(Method::GET, "/os-availability-zone/detail", &admin, None)
            .await;
        assert_eq!(
            azd["availabilityZoneInfo"][0]["hosts"]["compute1"]["nova-compute"]["available"],
            true
        );
    }

    /// A project's limits and quota set: shown to it, changed and reset by
    /// an admin only.
    pub(super) async fn limits_and_quota_sets(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        let demo_project = c.kit.project_of(&demo).await;
        let l = c.ok(Method::GET, "/limits", &demo, None).await;
        assert_eq!(l["limits"]["absolute"]["maxTotalInstances"], 10);
        assert_eq!(l["limits"]["absolute"]["totalInstancesUsed"], 0);
        assert_eq!(l["limits"]["rate"], json!([]));
        let q = c
            .ok(
                Method::GET,
                &format!("/os-quota-sets/{demo_project}"),
                &demo,
                None,
            )
            .await;
        assert_eq!(q["quota_set"]["id"], demo_project.as_str());
        assert_eq!(q["quota_set"]["cores"], 20);
        let (s, _) = c
            .nova(
                Method::PUT,
                &format!("/os-quota-sets/{demo_project}"),
                &demo,
                Some(json!({"quota_set": {"instances": 50}})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let u = c
            .ok(
                Method::PUT,
                &format!("/os-quota-sets/{demo_project}"),
                &admin,
                Some(json!({"quota_set": {"instances": 50}})),
            )
            .await;
        assert_eq!(u["quota_set"]["instances"], 50);
        assert!(u["quota_set"].get("id").is_none());
        let (s, _) = c
            .nova(
                Method::DELETE,
                &format!("/os-quota-sets/{demo_project}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let q = c
            .ok(
                Method::GET,
                &format!("/os-quota-sets/{demo_project}"),
                &demo,
                None,
            )
            .await;
        assert_eq!(q["quota_set"]["instances"], 10);
    }

    /// A boot with every option (key pair, metadata, user data, security
    /// group, zone, config drive) reaches ACTIVE with its port, claim and
    /// guest; lists with filters, addresses and a rename show it.
    pub(super) async fn server_create_list_show_and_update(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        c.ok(
            Method::POST,
            "/os-keypairs",
            &admin,
            Some(json!({"keypair": {"name": "k1"}})),
        )
        .await;

        let (s, headers, v) = c
            .req(
                Method::POST,
                format!("{}/v2.1/servers", c.compute),
                &admin,
                Some(json!({"server": {"name": "vm1", "imageRef": image, "flavorRef": "1", "key_name": "k1",
                    "networks": [{"uuid": net}], "metadata": {"role": "web"}, "user_data": "ZWNobyBoaQ==",
                    "security_groups": [{"name": "default"}], "availability_zone": "nova", "config_drive": true}})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert!(headers["location"]
            .to_str()
            .unwrap()
            .ends_with(v["server"]["id"].as_str().unwrap()));
        // enable_instance_password (on, as in Nova): a generated password.
        let pass = v["server"]["adminPass"].as_str().unwrap().to_owned();
        assert!(pass.len() >= 12, "{v}");
        let id = v["server"]["id"].as_str().unwrap().to_owned();

        let s = c.wait_status(&admin, &id, "ACTIVE").await;
        assert_detail_schema(&s);
        assert_eq!(s["OS-EXT-STS:vm_state"], "active");
        assert_eq!(s["OS-EXT-STS:power_state"], 1);
        assert_eq!(s["OS-EXT-STS:task_state"], Value::Null);
        assert_eq!(s["OS-EXT-SRV-ATTR:host"], "compute1");
        assert_eq!(s["key_name"], "k1");
        assert_eq!(s["metadata"]["role"], "web");
        assert_eq!(s["config_drive"], "True");
        assert!(!s["hostId"].as_str().unwrap().is_empty());
        let addr = s["addresses"]["private"][0]["addr"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(addr.starts_with("10.20.0."), "{addr}");
        assert_eq!(s["addresses"]["private"][0]["OS-EXT-IPS:type"], "fixed");
        let ports = c.ports_of(&admin, &id).await;
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0]["device_owner"], "compute:nova");
        assert_eq!(ports[0]["binding:host_id"], "compute1");
        assert_eq!(ports[0]["fixed_ips"][0]["ip_address"], addr.as_str());
        assert!(c.driver.guest(&id).is_some());
        assert_eq!(c.claims_of(&id).await, 1);

        let list = c.ok(Method::GET, "/servers", &admin, None).await;
        assert_eq!(list["servers"][0]["id"], id.as_str());
        assert_eq!(list["servers"][0].as_object().unwrap().len(), 3);
        let detail = c
            .ok(
                Method::GET,
                "/servers/detail?status=ACTIVE&name=vm",
                &admin,
                None,
            )
            .await;
        assert_eq!(detail["servers"].as_array().unwrap().len(), 1);
        let none = c
            .ok(Method::GET, "/servers/detail?status=SHUTOFF", &admin, None)
            .await;
        assert!(none["servers"].as_array().unwrap().is_empty());
        let ips = c
            .ok(Method::GET, &format!("/servers/{id}/ips"), &admin, None)
            .await;
        assert_eq!(ips["addresses"]["private"][0]["addr"], addr.as_str());
        let upd = c
            .ok(
                Method::PUT,
                &format!("/servers/{id}"),
                &admin,
                Some(json!({"server": {"name": "vm1-renamed"}})),
            )
            .await;
        assert_eq!(upd["server"]["name"], "vm1-renamed");
    }

    /// A demo server seen at each microversion that changed the server
    /// views or list filters: what appears, and from which version.
    pub(super) async fn server_views_by_microversion(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let body = json!({"server": {"name": "Web Server 1", "imageRef": image, "flavorRef": "1",
            "networks": [{"uuid": net}], "user_data": "ZWNobyBoaQ=="}});
        let (id, _, _) = c.create_server(&demo, body).await;
        c.wait_status(&demo, &id, "ACTIVE").await;
        let path = format!("/servers/{id}");

        // 2.3: the extended attributes for the standalone EC2 API, to
        // those the extended-attributes policy lets see them (admins).
        const EC2_ATTRIBUTES: [&str; 7] = [
            "OS-EXT-SRV-ATTR:reservation_id",
            "OS-EXT-SRV-ATTR:launch_index",
            "OS-EXT-SRV-ATTR:kernel_id",
            "OS-EXT-SRV-ATTR:ramdisk_id",
            "OS-EXT-SRV-ATTR:hostname",
            "OS-EXT-SRV-ATTR:root_device_name",
            "OS-EXT-SRV-ATTR:user_data",
        ];
        let old = c.ok_at("2.2", Method::GET, &path, &admin, None).await;
        let new = c.ok_at("2.3", Method::GET, &path, &admin, None).await;
        let mine = c.ok_at("2.3", Method::GET, &path, &demo, None).await;
        for key in EC2_ATTRIBUTES {
            assert!(old["server"].get(key).is_none(), "{key} before 2.3");
            assert!(new["server"].get(key).is_some(), "{key} at 2.3");
            assert!(mine["server"].get(key).is_none(), "{key} is admin's");
        }
        let s = &new["server"];
        assert!(s["OS-EXT-SRV-ATTR:reservation_id"]
            .as_str()
            .unwrap()
            .starts_with("r-"));
        assert_eq!(s["OS-EXT-SRV-ATTR:launch_index"], 0);
        assert_eq!(s["OS-EXT-SRV-ATTR:hostname"], "web-server-1");
        assert_eq!(s["OS-EXT-SRV-ATTR:root_device_name"], "/dev/vda");
        assert_eq!(s["OS-EXT-SRV-ATTR:user_data"], "ZWNobyBoaQ==");
        assert_eq!(s["OS-EXT-SRV-ATTR:kernel_id"], "");
        let all = c
            .ok_at(
                "2.3",
                Method::GET,
                "/servers/detail?all_tenants=1",
                &admin,
                None,
            )
            .await;
        assert!(all["servers"][0].get("OS-EXT-SRV-ATTR:hostname").is_some());

        // 2.5: a non-admin's `ip6` filter, dropped before, applies from 2.5.
        let ip6 = "/servers?ip6=fd00%3A%3A99";
        let before = c.ok_at("2.4", Method::GET, ip6, &demo, None).await;
        assert_eq!(
            before["servers"].as_array().unwrap().len(),
            1,
            "ip6 ignored"
        );
        let after = c.ok_at("2.5", Method::GET, ip6, &demo, None).await;
        assert!(
            after["servers"].as_array().unwrap().is_empty(),
            "ip6 applied"
        );

        remote_consoles_from_2_6(c, &demo, &id).await;
        console_auth_tokens_from_2_31(c, &admin, &demo, &id).await;
        flavor_access_conflicts_from_2_7(c, &admin).await;
        server_groups_from_2_13(c, &demo).await;

        // 2.9: `locked` in the detail view, update and rebuild.
        let before = c.ok_at("2.8", Method::GET, &path, &demo, None).await;
        assert!(before["server"].get("locked").is_none());
        let lock = Some(json!({"lock": null}));
        let (s, _) = c
            .nova_at("2.9", Method::POST, &format!("{path}/action"), &demo, lock)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let shown = c.ok_at("2.9", Method::GET, &path, &demo, None).await;
        assert_eq!(shown["server"]["locked"], true);
        let listed = c
            .ok_at("2.9", Method::GET, "/servers/detail", &demo, None)
            .await;
        assert_eq!(listed["servers"][0]["locked"], true);
        let rename = Some(json!({"server": {"name": "Web Server 1"}}));
        let updated = c
            .ok_at("2.9", Method::PUT, &path, &admin, rename.clone())
            .await;
        assert_eq!(updated["server"]["locked"], true);
        let updated = c.ok_at("2.8", Method::PUT, &path, &admin, rename).await;
        assert!(updated["server"].get("locked").is_none());
        let rebuild = Some(json!({"rebuild": {"imageRef": image}}));
        let (s, rebuilt) = c
            .nova_at(
                "2.9",
                Method::POST,
                &format!("{path}/action"),
                &admin,
                rebuild,
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{rebuilt}");
        assert_eq!(rebuilt["server"]["locked"], true);
        c.wait_status(&admin, &id, "ACTIVE").await;
        host_status_from_2_16(c, &admin, &demo, &id).await;
        trigger_crash_dump_from_2_17(c, &admin, &id).await;
        let described = description_from_2_19(c, &admin, &demo, &id, &image, &net).await;
        actions_of_deleted_servers_from_2_21(c, &demo, &described).await;
        server_migrations_from_2_22(c, &admin, &demo, &id).await;
        evacuate_from_2_14(c, &admin, &id).await;
    }

    /// 2.22–2.24: a server's live migrations (list, show), force-complete
    /// and abort. No server here is ever live-migrating: an empty list, a
    /// migration not found, Nova's state conflict.
    async fn server_migrations_from_2_22(c: &Cloud, admin: &str, demo: &str, id: &str) {
        let list = format!("/servers/{id}/migrations");
        let one = format!("{list}/1");
        let force = format!("{one}/action");
        let body = Some(json!({"force_complete": null}));
        let (s, _) = c
            .nova_at("2.21", Method::POST, &force, admin, body.clone())
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "force-complete from 2.22");
        let (s, v) = c.nova_at("2.22", Method::POST, &force, admin, body).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert!(v["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("task_state None"));
        let (s, _) = c.nova_at("2.22", Method::GET, &list, admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "the list from 2.23");
        let v = c.ok_at("2.23", Method::GET, &list, admin, None).await;
        assert_eq!(v, json!({"migrations": []}));
        let (s, _) = c.nova_at("2.23", Method::GET, &list, demo, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "admin's by default");
        let (s, _) = c.nova_at("2.23", Method::GET, &one, admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = c.nova_at("2.23", Method::DELETE, &one, admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "abort from 2.24");
        let (s, _) = c.nova_at("2.24", Method::DELETE, &one, admin, None).await;
        assert_eq!(s, StatusCode::CONFLICT);
    }

    /// 2.21: a deleted server's instance actions are still there; before,
    /// the server is not found.
    async fn actions_of_deleted_servers_from_2_21(c: &Cloud, demo: &str, id: &str) {
        let (s, _) = c
            .nova(Method::DELETE, &format!("/servers/{id}"), demo, None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while c
            .nova(Method::GET, &format!("/servers/{id}"), demo, None)
            .await
            .0
            != StatusCode::NOT_FOUND
        {
            assert!(Instant::now() < deadline, "{id} not deleted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let path = format!("/servers/{id}/os-instance-actions");
        let (s, _) = c.nova_at("2.20", Method::GET, &path, demo, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let list = c.ok_at("2.21", Method::GET, &path, demo, None).await;
        let actions: Vec<&str> = list["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"create") && actions.contains(&"delete"),
            "{list}"
        );
        let request = list["instanceActions"][0]["request_id"].as_str().unwrap();
        c.ok_at(
            "2.21",
            Method::GET,
            &format!("{path}/{request}"),
            demo,
            None,
        )
        .await;
    }

    /// 2.19: a server's description at create, update and rebuild, and in
    /// the views; before 2.19 it is refused, and a create keeps the name as
    /// the description (as Nova does).
    async fn description_from_2_19(
        c: &Cloud,
        admin: &str,
        demo: &str,
        id: &str,
        image: &str,
        net: &str,
    ) -> String {
        let path = format!("/servers/{id}");
        let description = |v: &Value| v["server"].get("description").cloned();
        let before = c.ok_at("2.18", Method::GET, &path, admin, None).await;
        assert_eq!(description(&before), None);
        let shown = c.ok_at("2.19", Method::GET, &path, admin, None).await;
        assert_eq!(description(&shown), Some(json!("Web Server 1")), "the name");
        let create = |d: Value| {
            Some(
                json!({"server": {"name": "described", "imageRef": image, "flavorRef": "1",
                "networks": [{"uuid": net}], "description": d}}),
            )
        };
        let (s, _) = c
            .nova_at("2.18", Method::POST, "/servers", demo, create(json!("x")))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "no description before 2.19");
        let (s, _) = c
            .nova_at(
                "2.19",
                Method::POST,
                "/servers",
                demo,
                create(json!("bell\u{7}")),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "printable characters only");
        let made = c
            .ok_at(
                "2.19",
                Method::POST,
                "/servers",
                demo,
                create(json!("first")),
            )
            .await;
        let other_id = made["server"]["id"].as_str().unwrap().to_owned();
        let other = format!("/servers/{other_id}");
        let shown = c.ok_at("2.19", Method::GET, &other, demo, None).await;
        assert_eq!(description(&shown), Some(json!("first")));
        let update = |d: Value| Some(json!({"server": {"description": d}}));
        let (s, _) = c
            .nova_at("2.18", Method::PUT, &path, admin, update(json!("no")))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let updated = c
            .ok_at("2.19", Method::PUT, &path, admin, update(json!("second")))
            .await;
        assert_eq!(description(&updated), Some(json!("second")));
        let cleared = c
            .ok_at("2.19", Method::PUT, &path, admin, update(Value::Null))
            .await;
        assert_eq!(description(&cleared), Some(Value::Null));
        let action = format!("{path}/action");
        let rebuild = Some(json!({"rebuild": {"imageRef": image, "description": "third"}}));
        let (s, _) = c
            .nova_at("2.18", Method::POST, &action, admin, rebuild.clone())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, rebuilt) = c
            .nova_at("2.19", Method::POST, &action, admin, rebuild)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{rebuilt}");
        assert_eq!(description(&rebuilt), Some(json!("third")));
        c.wait_status(admin, id, "ACTIVE").await;
        c.wait_status(demo, &other_id, "ACTIVE").await;
        other_id
    }

    /// 2.17: `trigger_crash_dump` is accepted (202), recorded, and the
    /// host's driver sends the guest an NMI; the server is as it was. A
    /// guest that is not running is Nova's 409 (InstanceNotReady), and so
    /// is a state Nova refuses (SHUTOFF).
    async fn trigger_crash_dump_from_2_17(c: &Cloud, admin: &str, id: &str) {
        let action = format!("/servers/{id}/action");
        let dump = Some(json!({"trigger_crash_dump": null}));
        let (s, _) = c
            .nova_at("2.16", Method::POST, &action, admin, dump.clone())
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "no such action before 2.17");
        let before = c.driver.guest(id).unwrap().nmis;
        let (s, v) = c
            .nova_at("2.17", Method::POST, &action, admin, dump.clone())
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let event = last_event(c, admin, id, "trigger_crash_dump").await;
        assert_eq!(event["event"], "compute_trigger_crash_dump");
        assert_eq!(event["result"], "Success");
        assert_eq!(c.driver.guest(id).unwrap().nmis, before + 1);
        c.wait_status(admin, id, "ACTIVE").await;

        // Powered off behind the control plane's back: not ready.
        c.driver
            .set_power_state(id, ferrostack_hypervisor::PowerState::Shutdown);
        let sync = c.svc.clone();
        ferrostack_compute::store::instances::update(&sync.db, id, |x| {
            x.power_state = ferrostack_compute::states::PowerState::Shutdown;
            Ok(())
        })
        .await
        .unwrap();
        let (s, v) = c
            .nova_at("2.17", Method::POST, &action, admin, dump.clone())
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert!(v.to_string().contains("is not ready"), "{v}");
        c.driver
            .set_power_state(id, ferrostack_hypervisor::PowerState::Running);
        ferrostack_compute::store::instances::update(&sync.db, id, |x| {
            x.power_state = ferrostack_compute::states::PowerState::Running;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(c.driver.guest(id).unwrap().nmis, before + 1);
    }

    /// 2.16: `host_status` (admins, by default) from the host's service.
    async fn host_status_from_2_16(c: &Cloud, admin: &str, demo: &str, id: &str) {
        let path = format!("/servers/{id}");
        let status = |v: Value| v["server"].get("host_status").cloned();
        let before = c.ok_at("2.15", Method::GET, &path, admin, None).await;
        assert_eq!(status(before), None);
        let up = c.ok_at("2.16", Method::GET, &path, admin, None).await;
        assert_eq!(status(up), Some(json!("UP")));
        let theirs = c.ok_at("2.16", Method::GET, &path, demo, None).await;
        assert_eq!(status(theirs), None, "the policy's default is admin");
        let detail = c
            .ok_at(
                "2.16",
                Method::GET,
                "/servers/detail?all_tenants=1",
                admin,
                None,
            )
            .await;
        assert_eq!(detail["servers"][0]["host_status"], "UP");
        let service = json!({"host": "compute1", "binary": "nova-compute"});
        c.ok(
            Method::PUT,
            "/os-services/disable",
            admin,
            Some(service.clone()),
        )
        .await;
        let disabled = c.ok_at("2.16", Method::GET, &path, admin, None).await;
        assert_eq!(status(disabled), Some(json!("MAINTENANCE")));
        c.ok(Method::PUT, "/os-services/enable", admin, Some(service))
            .await;
        let force = |down: bool| {
            Some(json!({"host": "compute1", "binary": "nova-compute", "forced_down": down}))
        };
        c.ok_at(
            "2.16",
            Method::PUT,
            "/os-services/force-down",
            admin,
            force(true),
        )
        .await;
        let down = c.ok_at("2.16", Method::GET, &path, admin, None).await;
        assert_eq!(status(down), Some(json!("DOWN")));
        c.ok_at(
            "2.16",
            Method::PUT,
            "/os-services/force-down",
            admin,
            force(false),
        )
        .await;
    }

    /// 2.14: evacuate without `onSharedStorage` (required before) and
    /// without the password in its answer. The only host is refused while
    /// its service is up; once forced down, the evacuation meets Nova's
    /// NoValidHost (no second host): migration `error`, server ERROR.
    async fn evacuate_from_2_14(c: &Cloud, admin: &str, id: &str) {
        let action = format!("/servers/{id}/action");
        let evacuate = |body: Value| Some(json!({ "evacuate": body }));
        let (s, v) = c
            .nova_at("2.13", Method::POST, &action, admin, evacuate(json!({})))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "onSharedStorage required: {v}");
        let (s, v) = c
            .nova_at("2.14", Method::POST, &action, admin, evacuate(json!({})))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            v["badRequest"]["message"],
            "Compute service of compute1 is still in use."
        );
        let to_self = evacuate(json!({"host": "compute1"}));
        let (s, v) = c
            .nova_at("2.14", Method::POST, &action, admin, to_self)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            v["badRequest"]["message"],
            "The target host can't be the same one."
        );
        let nowhere = evacuate(json!({"host": "nowhere"}));
        let (s, _) = c
            .nova_at("2.14", Method::POST, &action, admin, nowhere)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let force = |down: bool| {
            Some(json!({"host": "compute1", "binary": "nova-compute", "forced_down": down}))
        };
        c.ok_at(
            "2.14",
            Method::PUT,
            "/os-services/force-down",
            admin,
            force(true),
        )
        .await;
        let shared = evacuate(json!({"onSharedStorage": false}));
        let (s, v) = c
            .nova_at("2.13", Method::POST, &action, admin, shared.clone())
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(
            v["adminPass"].as_str().is_some_and(|p| !p.is_empty()),
            "{v}"
        );
        let server = c
            .ok(Method::GET, &format!("/servers/{id}"), admin, None)
            .await;
        assert_eq!(server["server"]["status"], "ERROR");
        assert!(server["server"]["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("No valid host"));
        // (`migration_type` shows from 2.23.)
        let migrations = c.ok(Method::GET, "/os-migrations", admin, None).await;
        assert!(
            migrations["migrations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| { m["instance_uuid"] == id && m["status"] == "error" }),
            "{migrations}"
        );
        let typed = c
            .ok_at("2.23", Method::GET, "/os-migrations", admin, None)
            .await;
        assert_eq!(typed["migrations"][0]["migration_type"], "evacuation");
        // 2.29: `force`.
        let forced = evacuate(json!({"force": true}));
        let (s, v) = c
            .nova_at("2.28", Method::POST, &action, admin, forced.clone())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "no force before 2.29: {v}");
        let (s, v) = c
            .nova_at("2.29", Method::POST, &action, admin, forced)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // An ERROR server may be evacuated again.
        let (s, _) = c
            .nova_at("2.14", Method::POST, &action, admin, shared)
            .await;
        assert_eq!(
            s,
            StatusCode::BAD_REQUEST,
            "onSharedStorage refused from 2.14"
        );
        let (s, v) = c
            .nova_at("2.14", Method::POST, &action, admin, evacuate(json!({})))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v, Value::Null, "no body from 2.14");
        c.ok_at(
            "2.14",
            Method::PUT,
            "/os-services/force-down",
            admin,
            force(false),
        )
        .await;
    }

    /// 2.6: `remote-consoles` replaces `os-getVNCConsole`; 2.8 adds MKS
    /// to the schema (this cloud has no MKS proxy: unavailable).
    async fn remote_consoles_from_2_6(c: &Cloud, demo: &str, id: &str) {
        let consoles = format!("/servers/{id}/remote-consoles");
        let vnc = json!({"remote_console": {"protocol": "vnc", "type": "novnc"}});
        let (s, _) = c
            .nova_at("2.5", Method::POST, &consoles, demo, Some(vnc.clone()))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "no remote-consoles before 2.6");
        // The fake driver has no graphical console: reaching it (its 501)
        // is what shows the request was accepted at this version.
        let (s, v) = c
            .nova_at("2.6", Method::POST, &consoles, demo, Some(vnc))
            .await;
        assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{v}");
        assert!(v.to_string().contains("fake driver"), "{v}");
        let action = format!("/servers/{id}/action");
        let old = json!({"os-getVNCConsole": {"type": "novnc"}});
        let (s, _) = c
            .nova_at("2.5", Method::POST, &action, demo, Some(old.clone()))
            .await;
        assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "reaches the driver");
        let (s, _) = c
            .nova_at("2.6", Method::POST, &action, demo, Some(old))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "the action is gone from 2.6");
        let spice = json!({"remote_console": {"protocol": "spice", "type": "spice-html5"}});
        let (s, v) = c
            .nova_at("2.6", Method::POST, &consoles, demo, Some(spice))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(v["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("Unavailable"));
        let mks = json!({"remote_console": {"protocol": "mks", "type": "webmks"}});
        let (s, v) = c
            .nova_at("2.7", Method::POST, &consoles, demo, Some(mks.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(v["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("is not one of"));
        let (s, v) = c
            .nova_at("2.8", Method::POST, &consoles, demo, Some(mks))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(v["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("Unavailable"));
    }

    /// 2.13: a group's project and user in every view; 2.15: the soft
    /// policies (refused before).
    async fn server_groups_from_2_13(c: &Cloud, demo: &str) {
        let soft = json!({"server_group": {"name": "soft", "policies": ["soft-affinity"]}});
        let (s, _) = c
            .nova_at("2.13", Method::POST, "/os-server-groups", demo, Some(soft))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "no soft policies before 2.15");
        for policy in ["soft-affinity", "soft-anti-affinity"] {
            let soft = json!({"server_group": {"name": policy, "policies": [policy]}});
            let made = c
                .ok_at("2.15", Method::POST, "/os-server-groups", demo, Some(soft))
                .await;
            assert_eq!(made["server_group"]["policies"], json!([policy]));
        }
        let hard = json!({"server_group": {"name": "hard", "policies": ["affinity"]}});
        let made = c
            .ok_at(
                "2.12",
                Method::POST,
                "/os-server-groups",
                demo,
                Some(hard.clone()),
            )
            .await;
        assert!(made["server_group"].get("project_id").is_none());
        assert!(made["server_group"].get("user_id").is_none());
        let made = c
            .ok_at("2.13", Method::POST, "/os-server-groups", demo, Some(hard))
            .await;
        let group = &made["server_group"];
        assert!(group["project_id"].as_str().is_some_and(|p| !p.is_empty()));
        assert!(group["user_id"].as_str().is_some_and(|u| !u.is_empty()));
        let path = format!("/os-server-groups/{}", group["id"].as_str().unwrap());
        let shown = c.ok_at("2.13", Method::GET, &path, demo, None).await;
        assert_eq!(shown["server_group"]["project_id"], group["project_id"]);
        let listed = c
            .ok_at("2.13", Method::GET, "/os-server-groups", demo, None)
            .await;
        assert!(listed["server_groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["user_id"] == group["user_id"]));
        let shown = c.ok_at("2.12", Method::GET, &path, demo, None).await;
        assert!(shown["server_group"].get("project_id").is_none());
    }

    /// 2.31: what a (noVNC) console token opens, for admins; before 2.31
    /// only RDP tokens are shown. The fake driver has no console, so the
    /// token is written as the console API would.
    async fn console_auth_tokens_from_2_31(c: &Cloud, admin: &str, demo: &str, id: &str) {
        let target = ferrostack_hypervisor::ConsoleTarget::Tcp {
            host: "127.0.0.1".into(),
            port: 5901,
        };
        let token = ferrostack_compute::store::console_tokens::ConsoleToken {
            console_type: "novnc".into(),
            instance_id: id.into(),
            host: "compute1".into(),
            target: serde_json::to_string(&target).unwrap(),
            access_url: "http://proxy/vnc_auto.html?token=t0k3n".into(),
            expires_at: chrono_now() + 600,
        };
        ferrostack_compute::store::console_tokens::insert(&c.svc.db, "t0k3n", &token)
            .await
            .unwrap();
        let path = "/os-console-auth-tokens/t0k3n";
        let (s, _) = c.nova_at("2.30", Method::GET, path, admin, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "only RDP tokens before 2.31");
        let v = c.ok_at("2.31", Method::GET, path, admin, None).await;
        assert_eq!(v["console"]["instance_uuid"], id);
        assert_eq!(v["console"]["port"], 5901);
        assert_eq!(v["console"]["host"], "127.0.0.1");
        let (s, _) = c.nova_at("2.31", Method::GET, path, demo, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v) = c
            .nova_at(
                "2.31",
                Method::GET,
                "/os-console-auth-tokens/nope",
                admin,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    }

    fn chrono_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    /// 2.7: access to a public flavor is a conflict (before, recorded).
    async fn flavor_access_conflicts_from_2_7(c: &Cloud, admin: &str) {
        let add = Some(json!({"addTenantAccess": {"tenant": "p-2-6"}}));
        let (s, _) = c
            .nova_at("2.6", Method::POST, "/flavors/1/action", admin, add)
            .await;
        assert_eq!(s, StatusCode::OK);
        let add = Some(json!({"addTenantAccess": {"tenant": "p-2-7"}}));
        let (s, v) = c
            .nova_at("2.7", Method::POST, "/flavors/1/action", admin, add)
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
    }

    /// Reboots, stop (twice: the second conflicts), start, pause, suspend,
    /// and the console output they leave.
    pub(super) async fn server_power_actions_and_console_output(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let id = c.boot(&admin, "vm1", &image, &net).await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        let action = |body: Value| c.action(&admin, &id, body);
        assert_eq!(
            action(json!({"reboot": {"type": "SOFT"}})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "ACTIVE").await;
        assert_eq!(
            action(json!({"reboot": {"type": "HARD"}})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "ACTIVE").await;
        assert_eq!(
            action(json!({"os-stop": null})).await.0,
            StatusCode::ACCEPTED
        );
        let s = c.wait_status(&admin, &id, "SHUTOFF").await;
        assert_eq!(s["OS-EXT-STS:power_state"], 4);
        assert_eq!(
            c.driver.guest(&id).unwrap().power_state,
            PowerState::Shutdown
        );
        let (st, v) = action(json!({"os-stop": null})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert!(v["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("vm_state stopped"));
        assert_eq!(
            action(json!({"os-start": null})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "ACTIVE").await;
        assert_eq!(action(json!({"pause": null})).await.0, StatusCode::ACCEPTED);
        c.wait_status(&admin, &id, "PAUSED").await;
        assert_eq!(
            action(json!({"unpause": null})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "ACTIVE").await;
        assert_eq!(
            action(json!({"suspend": null})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "SUSPENDED").await;
        assert_eq!(
            action(json!({"resume": null})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "ACTIVE").await;
        let (st, out) = action(json!({"os-getConsoleOutput": {"length": 2}})).await;
        assert_eq!(st, StatusCode::OK);
        // Counted as Nova counts: split at each newline (tempest does so).
        let out = out["output"].as_str().unwrap();
        assert_eq!(out.split('\n').count(), 2, "{out:?}");
        assert!(out.starts_with("resumed"), "{out:?}");
    }

    /// A server's metadata and tags.
    pub(super) async fn server_metadata_and_tags(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let id = c.boot(&admin, "vm1", &image, &net).await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        c.ok(
            Method::POST,
            &format!("/servers/{id}/metadata"),
            &admin,
            Some(json!({"metadata": {"a": "1"}})),
        )
        .await;
        let m = c
            .ok(
                Method::GET,
                &format!("/servers/{id}/metadata/a"),
                &admin,
                None,
            )
            .await;
        assert_eq!(m["meta"]["a"], "1");
        // Server tags are 2.26's.
        let blue = format!("/servers/{id}/tags/blue");
        let (s, _) = c.nova_at("2.25", Method::PUT, &blue, &admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "no tags before 2.26");
        let (s, _) = c.nova_at("2.26", Method::PUT, &blue, &admin, None).await;
        assert_eq!(s, StatusCode::CREATED);
        let tags = format!("/servers/{id}/tags");
        let t = c.ok_at("2.26", Method::GET, &tags, &admin, None).await;
        assert_eq!(t["tags"], json!(["blue"]));
        let (s, _) = c.nova_at("2.25", Method::GET, &tags, &admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let path = format!("/servers/{id}");
        let shown = c.ok_at("2.26", Method::GET, &path, &admin, None).await;
        assert_eq!(shown["server"]["tags"], json!(["blue"]));
        let shown = c.ok_at("2.25", Method::GET, &path, &admin, None).await;
        assert!(shown["server"].get("tags").is_none());
        let count = |q: &'static str, version: &'static str| {
            let admin = admin.clone();
            async move {
                c.ok_at(version, Method::GET, &format!("/servers?{q}"), &admin, None)
                    .await["servers"]
                    .as_array()
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(count("tags=blue", "2.26").await, 1);
        assert_eq!(count("tags=blue,red", "2.26").await, 0);
        assert_eq!(
            count("tags=blue,red", "2.25").await,
            1,
            "ignored before 2.26"
        );
        assert_eq!(count("tags-any=red,blue", "2.26").await, 1);
        assert_eq!(count("not-tags=blue", "2.26").await, 0);
        assert_eq!(count("not-tags=blue,red", "2.26").await, 1);
        assert_eq!(count("not-tags-any=red,blue", "2.26").await, 0);
        assert_eq!(count("not-tags-any=red", "2.26").await, 1);
    }

    /// A server's port gets the project's default group; groups are added
    /// and removed; the v2.1 security group proxy creates groups and rules.
    pub(super) async fn server_security_groups_and_the_proxy(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let id = c.boot(&admin, "vm1", &image, &net).await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        let action = |body: Value| c.action(&admin, &id, body);
        let port_id = c.ports_of(&admin, &id).await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let groups_of_port = |p: &Value| p["security_groups"].as_array().unwrap().len();
        assert_eq!(groups_of_port(&c.ports_of(&admin, &id).await[0]), 1);
        c.neutron(
            Method::POST,
            "/security-groups",
            &admin,
            Some(json!({"security_group": {"name": "web"}})),
        )
        .await;
        let (st, v) = action(json!({"addSecurityGroup": {"name": "web"}})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        assert_eq!(groups_of_port(&c.ports_of(&admin, &id).await[0]), 2);
        let (st, v) = action(json!({"removeSecurityGroup": {"name": "default"}})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let (st, _) = action(json!({"removeSecurityGroup": {"name": "nope"}})).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let port = &c.ports_of(&admin, &id).await[0];
        assert_eq!(port["id"], port_id.as_str());
        assert_eq!(groups_of_port(port), 1);
        let s = c
            .ok(Method::GET, &format!("/servers/{id}"), &admin, None)
            .await;
        assert_eq!(s["server"]["security_groups"], json!([{"name": "web"}]));

        // The v2.1 security group proxy.
        let g = c
            .ok(
                Method::POST,
                "/os-security-groups",
                &admin,
                Some(json!({"security_group": {"name": "ssh", "description": "ssh in"}})),
            )
            .await["security_group"]
            .clone();
        let rule = c
            .ok(Method::POST, "/os-security-group-rules", &admin, Some(json!({"security_group_rule": {
                "parent_group_id": g["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.2.3.124/24"}})))
            .await["security_group_rule"]
            .clone();
        // (as the networking API stores it)
        assert!(rule["ip_range"]["cidr"]
            .as_str()
            .unwrap()
            .starts_with("10.2.3."));
        let (st, _) = c
            .nova(
                Method::POST,
                "/os-security-group-rules",
                &admin,
                Some(json!({"security_group_rule": {
                "parent_group_id": g["id"], "ip_protocol": "tcp", "from_port": 30, "to_port": 20}})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let shown = c
            .ok(
                Method::GET,
                &format!("/os-security-groups/{}", g["id"].as_str().unwrap()),
                &admin,
                None,
            )
            .await;
        assert_eq!(
            shown["security_group"]["rules"].as_array().unwrap().len(),
            1
        );
        let on_server = c
            .ok(
                Method::GET,
                &format!("/servers/{id}/os-security-groups"),
                &admin,
                None,
            )
            .await;
        assert_eq!(on_server["security_groups"][0]["name"], "web");
    }

    /// createImage: an active snapshot of the server, also seen through the
    /// compute API's image proxy.
    pub(super) async fn server_snapshot_into_the_image_service(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let id = c.boot(&admin, "vm1", &image, &net).await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        let (s, headers, _) = c
            .req(
                Method::POST,
                format!("{}/v2.1/servers/{id}/action", c.compute),
                &admin,
                Some(json!({"createImage": {"name": "snap1"}})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let snap_url = headers["location"].to_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, _, img) = c
                .req(
                    Method::GET,
                    snap_url.replace("/images/", "/v2/images/"),
                    &admin,
                    None,
                )
                .await;
            if img["status"] == "active" {
                assert_eq!(img["instance_uuid"], id.as_str());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "snapshot never became active: {img}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.wait_status(&admin, &id, "ACTIVE").await;
        // The same image through the compute API's image proxy.
        let snap_id = snap_url.rsplit('/').next().unwrap().to_owned();
        let img = c
            .ok(Method::GET, &format!("/images/{snap_id}"), &admin, None)
            .await["image"]
            .clone();
        assert_eq!(img["status"], "ACTIVE");
        assert_eq!(img["server"]["id"], id.as_str());
        assert_eq!(img["metadata"]["image_type"], "snapshot");
        let snaps = c
            .ok(
                Method::GET,
                &format!("/images/detail?server={id}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(snaps["images"].as_array().unwrap().len(), 1);
    }

    /// A rebuild renames the server and gives it a new password, which no
    /// saga keeps once it ended.
    pub(super) async fn server_rebuild_gets_a_new_password(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let (id, pass, _) = c
            .create_server(
                &admin,
                json!({"server": {"name": "vm1", "imageRef": image, "flavorRef": "1",
                    "networks": [{"uuid": net}], "config_drive": true}}),
            )
            .await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        let action = |body: Value| c.action(&admin, &id, body);
        let (s, v) = action(json!({"rebuild": {"imageRef": image, "name": "vm1-rebuilt"}})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let rebuilt_pass = v["server"]["adminPass"].as_str().unwrap().to_owned();
        assert_ne!(rebuilt_pass, pass);
        let s = c.wait_status(&admin, &id, "ACTIVE").await;
        assert_eq!(s["name"], "vm1-rebuilt");
        // The password travelled to the config drive in the sagas' parameters
        // and is not kept once they ended.
        let db = &c.svc.db;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sagas = ferrostack_compute::store::sagas::for_instance(db, &id)
                .await
                .unwrap();
            if sagas
                .iter()
                .all(|s| s.state == "done" || s.state == "failed")
            {
                for saga in sagas {
                    assert!(saga.params.get("admin_pass").is_none(), "{saga:?}");
                }
                break;
            }
            assert!(Instant::now() < deadline, "sagas still running: {sagas:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resize on the same host, confirmed (claims and the node follow), then
    /// resized again and reverted.
    pub(super) async fn server_resize_confirmed_and_reverted(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let id = c.boot(&admin, "vm1", &image, &net).await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        let action = |body: Value| c.action(&admin, &id, body);
        assert_eq!(
            action(json!({"resize": {"flavorRef": "2"}})).await.0,
            StatusCode::ACCEPTED
        );
        let s = c.wait_status(&admin, &id, "VERIFY_RESIZE").await;
        assert_eq!(s["flavor"]["id"], "2");
        assert_eq!(c.claims_of(&id).await, 2);
        assert_eq!(
            action(json!({"confirmResize": null})).await.0,
            StatusCode::NO_CONTENT
        );
        let s = c.wait_status(&admin, &id, "ACTIVE").await;
        assert_eq!(s["flavor"]["id"], "2");
        assert_eq!(c.claims_of(&id).await, 1);
        let node = ferrostack_compute::store::hosts::get_node(&c.svc.db, "compute1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(node.memory_mb_used, 2048);
        assert_eq!(
            action(json!({"resize": {"flavorRef": "1"}})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "VERIFY_RESIZE").await;
        assert_eq!(
            action(json!({"revertResize": null})).await.0,
            StatusCode::ACCEPTED
        );
        let s = c.wait_status(&admin, &id, "ACTIVE").await;
        assert_eq!(s["flavor"]["id"], "2");
        let node = ferrostack_compute::store::hosts::get_node(&c.svc.db, "compute1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(node.memory_mb_used, 2048);
    }

    /// Lock and unlock; the power-state sync sees a guest shut down behind
    /// the service's back; an admin resets the state.
    pub(super) async fn server_lock_power_sync_and_reset_state(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let id = c.boot(&admin, "vm1", &image, &net).await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        let action = |body: Value| c.action(&admin, &id, body);
        assert_eq!(action(json!({"lock": null})).await.0, StatusCode::ACCEPTED);
        assert_eq!(
            action(json!({"unlock": null})).await.0,
            StatusCode::ACCEPTED
        );

        // Power-state sync: the guest shut down behind our back.
        c.driver.set_power_state(&id, PowerState::Shutdown);
        c.agent.sync_power_states().await;
        let s = c.wait_status(&admin, &id, "SHUTOFF").await;
        assert_eq!(s["OS-EXT-STS:power_state"], 4);
        // Admin resets the state.
        assert_eq!(
            action(json!({"os-resetState": {"state": "error"}})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "ERROR").await;
        assert_eq!(
            action(json!({"os-resetState": {"state": "active"}}))
                .await
                .0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "ACTIVE").await;
    }

    /// Each request on a server is an instance action (the create's under
    /// its request id); the server is in the tenant usage.
    pub(super) async fn server_instance_actions_and_usage(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let (id, _, create_request) = c
            .create_server(
                &admin,
                json!({"server": {"name": "vm1", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}}),
            )
            .await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        let action = |body: Value| c.action(&admin, &id, body);
        assert_eq!(
            action(json!({"reboot": {"type": "SOFT"}})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "ACTIVE").await;
        assert_eq!(
            action(json!({"os-stop": null})).await.0,
            StatusCode::ACCEPTED
        );
        c.wait_status(&admin, &id, "SHUTOFF").await;
        let acts = c
            .ok(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions"),
                &admin,
                None,
            )
            .await;
        let names: Vec<&str> = acts["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"create") && names.contains(&"reboot") && names.contains(&"stop"),
            "{names:?}"
        );
        let create = acts["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == "create")
            .unwrap();
        assert_eq!(create["request_id"], create_request.as_str());
        let req = acts["instanceActions"][0]["request_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let one = c
            .ok(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions/{req}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(one["instanceAction"]["instance_uuid"], id.as_str());

        let usage = c
            .ok(
                Method::GET,
                "/os-simple-tenant-usage?detailed=1",
                &admin,
                None,
            )
            .await;
        assert_eq!(
            usage["tenant_usages"][0]["server_usages"][0]["instance_id"],
            id.as_str()
        );
    }

    /// A deleted server is gone with its port, claim and guest; the node
    /// holds nothing.
    pub(super) async fn server_delete_releases_everything(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let id = c.boot(&admin, "vm1", &image, &net).await;
        c.wait_status(&admin, &id, "ACTIVE").await;
        let (s, _) = c
            .nova(Method::DELETE, &format!("/servers/{id}"), &admin, None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        c.wait_status(&admin, &id, "GONE").await;
        assert!(c.ports_of(&admin, &id).await.is_empty());
        assert_eq!(c.claims_of(&id).await, 0);
        assert!(c.driver.guest(&id).is_none());
        let node = ferrostack_compute::store::hosts::get_node(&c.svc.db, "compute1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (node.vcpus_used, node.memory_mb_used, node.local_gb_used),
            (0, 0, 0)
        );
    }

    /// Aggregates (admin only): names, hosts (existing compute hosts, once;
    /// the zone follows them, and a server asked into it lands there),
    /// metadata, update, delete.
    pub(super) async fn aggregates_hosts_zones_and_metadata(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        wait_compute_host(c, &admin).await;
        // Create: admin only, names 1..=255 characters and unique.
        let body = json!({"aggregate": {"name": "agg1", "availability_zone": "zone-a"}});
        let (s, _) = c
            .nova(Method::POST, "/os-aggregates", &demo, Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = c.nova(Method::GET, "/os-aggregates", &demo, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let a = c
            .ok(Method::POST, "/os-aggregates", &admin, Some(body.clone()))
            .await["aggregate"]
            .clone();
        let mut keys: Vec<&str> = a.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "availability_zone",
                "created_at",
                "deleted",
                "deleted_at",
                "id",
                "name",
                "updated_at"
            ]
        );
        assert_eq!(a["availability_zone"], "zone-a");
        assert_eq!(a["deleted"], false);
        assert!(a["updated_at"].is_null());
        let id = a["id"].as_i64().expect("integer id");
        let (s, _) = c
            .nova(Method::POST, "/os-aggregates", &admin, Some(body))
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        for bad in [json!(""), json!("a".repeat(256))] {
            let (s, _) = c
                .nova(
                    Method::POST,
                    "/os-aggregates",
                    &admin,
                    Some(json!({"aggregate": {"name": bad}})),
                )
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST);
        }
        let agg = format!("/os-aggregates/{id}");
        let act = format!("{agg}/action");
        let v = c.ok(Method::GET, &agg, &admin, None).await["aggregate"].clone();
        assert_eq!(v["hosts"], json!([]));
        assert_eq!(v["metadata"], json!({"availability_zone": "zone-a"}));
        for missing in ["/os-aggregates/-1", "/os-aggregates/999"] {
            let (s, _) = c.nova(Method::GET, missing, &admin, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND);
            let (s, _) = c.nova(Method::DELETE, missing, &admin, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND);
        }

        // Hosts: existing compute hosts only, once; the zone follows.
        let (s, _) = c
            .nova(
                Method::POST,
                &act,
                &admin,
                Some(json!({"add_host": {"host": "nowhere"}})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = c
            .nova(
                Method::POST,
                &act,
                &demo,
                Some(json!({"add_host": {"host": "compute1"}})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let v = c
            .ok(
                Method::POST,
                &act,
                &admin,
                Some(json!({"add_host": {"host": "compute1"}})),
            )
            .await;
        assert_eq!(v["aggregate"]["hosts"], json!(["compute1"]));
        let (s, _) = c
            .nova(
                Method::POST,
                &act,
                &admin,
                Some(json!({"add_host": {"host": "compute1"}})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let zones = c
            .ok(Method::GET, "/os-availability-zone", &demo, None)
            .await;
        assert!(zones["availabilityZoneInfo"]
            .as_array()
            .unwrap()
            .iter()
            .any(|z| z["zoneName"] == "zone-a"));
        let hosts = c
            .ok(Method::GET, "/os-hosts?zone=zone-a", &admin, None)
            .await;
        assert_eq!(
            hosts["hosts"],
            json!([{"host_name": "compute1", "service": "compute", "zone": "zone-a"}])
        );
        let (s, _) = c.nova(Method::DELETE, &agg, &admin, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "an aggregate with hosts stays");

        // A server asked into the zone lands there.
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let v = c
            .ok(
                Method::POST,
                "/servers",
                &demo,
                Some(
                    json!({"server": {"name": "z", "imageRef": image, "flavorRef": "1",
                    "networks": [{"uuid": net}], "availability_zone": "zone-a"}}),
                ),
            )
            .await;
        let server = v["server"]["id"].as_str().unwrap().to_owned();
        let s1 = c.wait_status(&demo, &server, "ACTIVE").await;
        assert_eq!(s1["OS-EXT-AZ:availability_zone"], "zone-a");

        let (s, _) = c
            .nova(
                Method::POST,
                &act,
                &admin,
                Some(json!({"remove_host": {"host": "nowhere"}})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let v = c
            .ok(
                Method::POST,
                &act,
                &admin,
                Some(json!({"remove_host": {"host": "compute1"}})),
            )
            .await;
        assert_eq!(v["aggregate"]["hosts"], json!([]));
        let hosts = c.ok(Method::GET, "/os-hosts?zone=nova", &admin, None).await;
        assert_eq!(hosts["hosts"][0]["host_name"], "compute1");

        // Metadata: merged, null removes; update stamps updated_at.
        let v = c
            .ok(
                Method::POST,
                &act,
                &admin,
                Some(json!({"set_metadata": {"metadata": {"ssd": "true"}}})),
            )
            .await;
        assert_eq!(
            v["aggregate"]["metadata"],
            json!({"availability_zone": "zone-a", "ssd": "true"})
        );
        let v = c
            .ok(
                Method::POST,
                &act,
                &admin,
                Some(json!({"set_metadata": {"metadata": {"ssd": null}}})),
            )
            .await;
        assert_eq!(
            v["aggregate"]["metadata"],
            json!({"availability_zone": "zone-a"})
        );
        let v = c
            .ok(
                Method::PUT,
                &agg,
                &admin,
                Some(json!({"aggregate": {"name": "agg2", "availability_zone": "zone-b"}})),
            )
            .await["aggregate"]
            .clone();
        assert_eq!(
            (v["name"].clone(), v["availability_zone"].clone()),
            (json!("agg2"), json!("zone-b"))
        );
        assert!(v["updated_at"].is_string());
        let list = c.ok(Method::GET, "/os-aggregates", &admin, None).await;
        assert_eq!(list["aggregates"].as_array().unwrap().len(), 1);
        let (s, _) = c.nova(Method::DELETE, &agg, &admin, None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = c.nova(Method::GET, &agg, &admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    /// os-hosts: the list (by zone), a host's resources, enabling and
    /// disabling it; maintenance and power are not implemented.
    pub(super) async fn os_hosts_list_show_update_and_power(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        wait_compute_host(c, &admin).await;
        let (s, _) = c.nova(Method::GET, "/os-hosts", &demo, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let hosts = c.ok(Method::GET, "/os-hosts", &admin, None).await["hosts"].clone();
        assert!(hosts.as_array().unwrap().len() >= 2, "{hosts}");
        let none = c.ok(Method::GET, "/os-hosts?zone=xxx", &admin, None).await;
        assert_eq!(none["hosts"], json!([]));
        let detail = c.ok(Method::GET, "/os-hosts/compute1", &admin, None).await;
        assert_eq!(detail["host"][0]["resource"]["project"], "(total)");
        assert_eq!(detail["host"][0]["resource"]["host"], "compute1");
        let (s, _) = c.nova(Method::GET, "/os-hosts/nowhere", &admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let v = c
            .ok(
                Method::PUT,
                "/os-hosts/compute1",
                &admin,
                Some(json!({"status": "disable"})),
            )
            .await;
        assert_eq!(v, json!({"host": "compute1", "status": "disabled"}));
        c.ok(
            Method::PUT,
            "/os-hosts/compute1",
            &admin,
            Some(json!({"status": "enable"})),
        )
        .await;
        for (body, want) in [
            (json!({"status": "invalid"}), StatusCode::BAD_REQUEST),
            (json!({}), StatusCode::BAD_REQUEST),
            (
                json!({"maintenance_mode": "enable"}),
                StatusCode::NOT_IMPLEMENTED,
            ),
        ] {
            let (s, _) = c
                .nova(Method::PUT, "/os-hosts/compute1", &admin, Some(body))
                .await;
            assert_eq!(s, want);
        }
        let (s, _) = c
            .nova(
                Method::PUT,
                "/os-hosts/nowhere",
                &admin,
                Some(json!({"status": "enable"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = c
            .nova(Method::GET, "/os-hosts/compute1/reboot", &admin, None)
            .await;
        assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
        let (s, _) = c
            .nova(Method::GET, "/os-hosts/nowhere/startup", &admin, None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = c
            .nova(Method::GET, "/os-hosts/compute1/shutdown", &demo, None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    /// A resize leaves a migration record that follows confirm.
    pub(super) async fn migrations_follow_a_resize(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let server = c.boot(&demo, "z", &image, &net).await;
        c.wait_status(&demo, &server, "ACTIVE").await;
        c.ok(
            Method::POST,
            &format!("/servers/{server}/action"),
            &demo,
            Some(json!({"resize": {"flavorRef": "2"}})),
        )
        .await;
        c.wait_status(&demo, &server, "VERIFY_RESIZE").await;
        let (s, _) = c.nova(Method::GET, "/os-migrations", &demo, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let m = c.ok(Method::GET, "/os-migrations", &admin, None).await["migrations"][0].clone();
        assert_eq!(m["instance_uuid"], server.as_str());
        assert_eq!(m["status"], "finished");
        assert_eq!(
            (
                m["old_instance_type_id"].clone(),
                m["new_instance_type_id"].clone()
            ),
            (json!(1), json!(2))
        );
        assert_eq!(m["source_compute"], "compute1");
        assert_eq!(m["dest_compute"], "compute1");
        assert_eq!(m.as_object().unwrap().len(), 12);
        c.ok(
            Method::POST,
            &format!("/servers/{server}/action"),
            &demo,
            Some(json!({"confirmResize": null})),
        )
        .await;
        let m = c
            .ok(
                Method::GET,
                &format!("/os-migrations?instance_uuid={server}"),
                &admin,
                None,
            )
            .await["migrations"][0]
            .clone();
        assert_eq!(m["status"], "confirmed");
        let none = c
            .ok(Method::GET, "/os-migrations?status=error", &admin, None)
            .await;
        assert_eq!(none["migrations"], json!([]));
    }

    /// The usage audit log: the month before the given time.
    pub(super) async fn usage_audit_log_of_the_month_before(c: &Cloud) {
        let admin = c.token("admin", "admin").await;
        let demo = c.token("demo", "demo").await;
        wait_compute_host(c, &admin).await;
        let (s, _) = c
            .nova(Method::GET, "/os-instance_usage_audit_log", &demo, None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let v = c
            .ok(Method::GET, "/os-instance_usage_audit_log", &admin, None)
            .await;
        assert_eq!(v["instance_usage_audit_logs"]["num_hosts"], 1);
        let v = c
            .ok(
                Method::GET,
                "/os-instance_usage_audit_log/2026-03-15%2010:00:00",
                &admin,
                None,
            )
            .await["instance_usage_audit_log"]
            .clone();
        assert_eq!(v["period_beginning"], "2026-02-01 00:00:00");
        assert_eq!(v["period_ending"], "2026-03-01 00:00:00");
        assert_eq!(v["hosts_not_run"], json!(["compute1"]));
        let (s, _) = c
            .nova(
                Method::GET,
                "/os-instance_usage_audit_log/invalid_time",
                &admin,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn quotas_validation_and_isolation() {
    let c = start("quotas", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let demo_project = c.kit.project_of(&demo).await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;

    // 400s.
    let boot = |flavor: &str, image: &str| json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": [{"uuid": net}]}});
    let (s, v) = c
        .nova(Method::POST, "/servers", &demo, Some(boot("999", &image)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("flavorRef"));
    let (s, v) = c
        .nova(
            Method::POST,
            "/servers",
            &demo,
            Some(boot("1", "00000000-0000-0000-0000-000000000000")),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = c.nova(Method::POST, "/servers", &demo, Some(json!({"server": {"name": "x", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": "11111111-1111-1111-1111-111111111111"}]}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = c.nova(Method::POST, "/servers", &demo, Some(json!({"server": {"name": "x", "imageRef": image, "flavorRef": "1", "key_name": "missing"}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = c
        .nova(
            Method::POST,
            "/servers",
            &demo,
            Some(json!({"server": {"name": "x", "imageRef": image, "flavorRef": "1", "bogus": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = c
        .nova(
            Method::POST,
            "/servers",
            &demo,
            Some(json!({"server": {"imageRef": image, "flavorRef": "1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Quota of 20 instances: 20 boot, the 21st is refused.
    c.ok(
        Method::PUT,
        &format!("/os-quota-sets/{demo_project}"),
        &admin,
        Some(json!({"quota_set": {"instances": 20}})),
    )
    .await;
    let v = c.ok(Method::POST, "/servers", &demo, Some(json!({"server": {"name": "many", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}], "min_count": 20, "max_count": 20, "return_reservation_id": true}}))).await;
    let rid = v["reservation_id"].as_str().unwrap().to_owned();
    let listed = c
        .ok(
            Method::GET,
            &format!("/servers/detail?reservation_id={rid}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(listed["servers"].as_array().unwrap().len(), 20);
    let (s, v) = c
        .nova(Method::POST, "/servers", &demo, Some(boot("1", &image)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let msg = v["forbidden"]["message"].as_str().unwrap();
    // Nova names every resource over quota, sorted: 20 cores are used too.
    assert_eq!(
        msg,
        "Quota exceeded for cores, instances: Requested 1, 1, but already used 20, 20 of 20, 20 cores, instances"
    );
    for srv in listed["servers"].as_array().unwrap() {
        c.wait_status(&demo, srv["id"].as_str().unwrap(), "ACTIVE")
            .await;
    }
    let l = c.ok(Method::GET, "/limits", &demo, None).await;
    assert_eq!(l["limits"]["absolute"]["totalInstancesUsed"], 20);
    let (s, _) = c
        .nova(
            Method::PUT,
            &format!("/os-quota-sets/{demo_project}"),
            &admin,
            Some(json!({"quota_set": {"instances": 5}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "lowering below usage needs force"
    );

    // Isolation: demo cannot see or act on admin's server.
    let admin_vm = c.boot(&admin, "secret", &image, &net).await;
    c.wait_status(&admin, &admin_vm, "ACTIVE").await;
    for (m, path, body) in [
        (Method::GET, format!("/servers/{admin_vm}"), None),
        (Method::DELETE, format!("/servers/{admin_vm}"), None),
        (
            Method::POST,
            format!("/servers/{admin_vm}/action"),
            Some(json!({"os-stop": null})),
        ),
        (Method::GET, format!("/servers/{admin_vm}/ips"), None),
        (
            Method::PUT,
            format!("/servers/{admin_vm}"),
            Some(json!({"server": {"name": "x"}})),
        ),
    ] {
        let (s, v) = c.nova(m.clone(), &path, &demo, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {path}: {v}");
        assert_eq!(v["itemNotFound"]["code"], 404);
    }
    let mine = c.ok(Method::GET, "/servers", &demo, None).await;
    assert!(!mine["servers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == admin_vm.as_str()));
    let all = c
        .ok(Method::GET, "/servers?all_tenants=1", &admin, None)
        .await;
    assert_eq!(all["servers"].as_array().unwrap().len(), 21);
    let (s, _) = c
        .nova(
            Method::POST,
            &format!("/servers/{admin_vm}/action"),
            &demo,
            Some(json!({"os-resetState": {"state": "error"}})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let page = c.ok(Method::GET, "/servers?limit=5", &demo, None).await;
    assert_eq!(page["servers"].as_array().unwrap().len(), 5);
    assert!(page["servers_links"][0]["href"]
        .as_str()
        .unwrap()
        .contains("marker="));
    c.agent.stop();
}

/// Nothing of a failed boot may remain: no port, no claim, no guest.
async fn assert_rolled_back(c: &Cloud, admin: &str, id: &str, fault_part: &str) {
    let s = c.wait_status(admin, id, "ERROR").await;
    assert_detail_schema(&s);
    let fault = &s["fault"];
    assert_eq!(fault["code"], 500);
    assert!(fault["created"].is_string());
    assert!(
        fault["message"].as_str().unwrap().contains(fault_part),
        "{fault}"
    );
    assert_eq!(s["OS-EXT-STS:task_state"], Value::Null);
    assert!(c.ports_of(admin, id).await.is_empty(), "port leaked");
    assert_eq!(c.claims_of(id).await, 0, "claim leaked");
    assert!(c.driver.guest(id).is_none(), "guest leaked");
}

#[tokio::test]
async fn a_failure_at_each_create_step_rolls_back() {
    let c = start("failures", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    // Each case leaves a server in ERROR: more than the default quota.
    let project = c.kit.project_of(&admin).await;
    c.ok(
        Method::PUT,
        &format!("/os-quota-sets/{project}"),
        &admin,
        Some(json!({"quota_set": {"instances": -1, "cores": -1}})),
    )
    .await;
    for step in steps_of("create_server") {
        c.svc.set_failpoint(Some(step));
        let id = c.boot(&admin, &format!("fail-{step}"), &image, &net).await;
        assert_rolled_back(&c, &admin, &id, step).await;
        c.svc.set_failpoint(None);
    }
    // The driver's own failure.
    c.driver.fail_next("spawn");
    let id = c.boot(&admin, "driver-fails", &image, &net).await;
    assert_rolled_back(&c, &admin, &id, "injected spawn failure").await;
    // No valid host: a flavor bigger than the host (and than the default RAM quota).
    let admin_project = c.kit.project_of(&admin).await;
    c.ok(
        Method::PUT,
        &format!("/os-quota-sets/{admin_project}"),
        &admin,
        Some(json!({"quota_set": {"ram": -1}})),
    )
    .await;
    c.ok(Method::POST, "/flavors", &admin, Some(json!({"flavor": {"name": "huge", "id": "huge", "ram": 100_000_000, "vcpus": 1, "disk": 1}}))).await;
    let v = c.ok(Method::POST, "/servers", &admin, Some(json!({"server": {"name": "big", "imageRef": image, "flavorRef": "huge", "networks": [{"uuid": net}]}}))).await;
    let id = v["server"]["id"].as_str().unwrap().to_owned();
    assert_rolled_back(&c, &admin, &id, "No valid host").await;
    // A disabled compute service gets nothing either.
    c.ok(
        Method::PUT,
        "/os-services/disable",
        &admin,
        Some(json!({"host": "compute1", "binary": "nova-compute"})),
    )
    .await;
    let id = c.boot(&admin, "disabled-host", &image, &net).await;
    assert_rolled_back(&c, &admin, &id, "No valid host").await;
    c.ok(
        Method::PUT,
        "/os-services/enable",
        &admin,
        Some(json!({"host": "compute1", "binary": "nova-compute"})),
    )
    .await;
    // Anti-affinity on a single host: the second member finds no host.
    let g = c
        .ok(
            Method::POST,
            "/os-server-groups",
            &admin,
            Some(json!({"server_group": {"name": "spread", "policies": ["anti-affinity"]}})),
        )
        .await["server_group"]
        .clone();
    let gid = g["id"].as_str().unwrap().to_owned();
    let mut members = Vec::new();
    for n in 0..2 {
        let v = c
            .ok(Method::POST, "/servers", &admin, Some(json!({"server": {"name": format!("spread-{n}"), "imageRef": image,
                "flavorRef": "1", "networks": [{"uuid": net}]}, "os:scheduler_hints": {"group": gid}})))
            .await;
        let sid = v["server"]["id"].as_str().unwrap().to_owned();
        if n == 0 {
            c.wait_status(&admin, &sid, "ACTIVE").await;
        }
        members.push(sid);
    }
    assert_rolled_back(&c, &admin, &members[1], "No valid host").await;
    let g = c
        .ok(
            Method::GET,
            &format!("/os-server-groups/{gid}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(g["server_group"]["members"].as_array().unwrap().len(), 2);
    let (s, _) = c
        .nova(
            Method::DELETE,
            &format!("/servers/{}", members[0]),
            &admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&admin, &members[0], "GONE").await;
    let g = c
        .ok(
            Method::GET,
            &format!("/os-server-groups/{gid}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(g["server_group"]["members"], json!([members[1]]));
    let (s, _) = c
        .nova(
            Method::DELETE,
            &format!("/os-server-groups/{gid}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Errored servers can be deleted.
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), &admin, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&admin, &id, "GONE").await;
    let node = ferrostack_compute::store::hosts::get_node(&c.svc.db, "compute1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((node.vcpus_used, node.memory_mb_used), (0, 0));
    c.agent.stop();
}

#[tokio::test]
async fn boots_wait_for_network_vif_plugged() {
    let c = start("vif", |cfg| {
        cfg.compute.fake_skip_vif_wait = false;
        cfg.compute.vif_plugging_timeout = 3;
    })
    .await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;

    let id = c.boot(&admin, "plugged", &image, &net).await;
    // Wait until the port exists, then report it plugged as the network side does.
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = loop {
        if let Some(p) = c.ports_of(&admin, &id).await.first() {
            break p["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ev = c
        .ok(
            Method::POST,
            "/os-server-external-events",
            &admin,
            Some(json!({"events": [
        {"name": "network-vif-plugged", "server_uuid": id, "tag": port, "status": "completed"}]})),
        )
        .await;
    assert_eq!(ev["events"][0]["code"], 200);
    c.wait_status(&admin, &id, "ACTIVE").await;

    // Deleted while waiting for its port: the build unwinds, the server is gone.
    let id = c.boot(&admin, "deleted-in-build", &image, &net).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.ports_of(&admin, &id).await.is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), &admin, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&admin, &id, "GONE").await;
    assert!(c.ports_of(&admin, &id).await.is_empty());
    assert_eq!(c.claims_of(&id).await, 0);
    assert!(c.driver.guest(&id).is_none());

    // Without the event the boot times out and rolls back.
    let id = c.boot(&admin, "never-plugged", &image, &net).await;
    assert_rolled_back(&c, &admin, &id, "network-vif-plugged").await;

    let demo = c.token("demo", "demo").await;
    let (s, _) = c
        .nova(
            Method::POST,
            "/os-server-external-events",
            &demo,
            Some(json!({"events": [
        {"name": "network-vif-plugged", "server_uuid": id}]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    c.agent.stop();
}

#[tokio::test]
async fn a_restart_resumes_or_finishes_unwinding() {
    let c = start("restart", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;

    // "Crash" right after the ports were made, before that was recorded.
    c.svc.set_failpoint(Some("crash_after:allocate_ports"));
    let resumed = c.boot(&admin, "resumed", &image, &net).await;
    let unwound = c.boot(&admin, "unwound", &image, &net).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let db = ferrostack_db::Db::connect(&c.db_url).await.unwrap();
    // The step's last write is the instance's network info: then it "crashes".
    loop {
        let mut done = true;
        for id in [&resumed, &unwound] {
            let i = ferrostack_compute::store::instances::get(&db, id)
                .await
                .unwrap()
                .unwrap();
            done &= !i.network_info.is_empty();
        }
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "allocate_ports never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let i = ferrostack_compute::store::instances::get(&db, &resumed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        i.vm_state,
        VmState::Building,
        "stuck mid-build as after a crash"
    );
    // The second one was failing when the process died.
    let sagas = ferrostack_compute::store::sagas::for_instance(&db, &unwound)
        .await
        .unwrap();
    ferrostack_compute::store::sagas::set_state(
        &db,
        &sagas[0].id,
        "unwinding",
        Some("spawn failed"),
    )
    .await
    .unwrap();

    // Re-open the service on the same database.
    let svc2 = ComputeService::new(db.clone(), c.config.clone(), c.kit.bus.clone())
        .await
        .unwrap();
    ferrostack_compute::start(&svc2).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = ferrostack_compute::store::instances::get(&db, &resumed)
            .await
            .unwrap()
            .unwrap();
        let b = ferrostack_compute::store::instances::get(&db, &unwound)
            .await
            .unwrap()
            .unwrap();
        if a.vm_state != VmState::Building && b.vm_state != VmState::Building {
            assert_eq!(a.vm_state, VmState::Active);
            assert_eq!(b.vm_state, VmState::Error);
            assert!(b.fault.is_some());
            break;
        }
        assert!(Instant::now() < deadline, "still building after restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.ports_of(&admin, &resumed).await.len(),
        1,
        "the port was reused, not made twice"
    );
    assert!(c.ports_of(&admin, &unwound).await.is_empty());
    assert_eq!(c.claims_of(&unwound).await, 0);
    assert_eq!(c.claims_of(&resumed).await, 1);
    assert!(ferrostack_compute::store::sagas::unfinished(&db)
        .await
        .unwrap()
        .is_empty());
    c.agent.stop();
}

#[tokio::test]
async fn concurrent_claims_never_over_commit() {
    use ferrostack_compute::store::hosts::{self, ComputeNode, Resources};
    for db in ferrostack_db::testing::test_databases("compute_claims").await {
        db.migrate(ferrostack_compute::store::MIGRATIONS)
            .await
            .unwrap();
        hosts::report_node(
            &db,
            &ComputeNode {
                host: "h1".into(),
                vcpus: 4,
                memory_mb: 4096,
                local_gb: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let limits = Resources {
            vcpus: 4,
            memory_mb: 4096,
            disk_gb: 100,
        };
        let want = Resources {
            vcpus: 1,
            memory_mb: 512,
            disk_gb: 1,
        };
        let mut tasks = Vec::new();
        for n in 0..12 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                hosts::claim(&db, &format!("i{n}"), "instance", "h1", want, limits)
                    .await
                    .unwrap()
            }));
        }
        let mut granted = 0;
        for t in tasks {
            if t.await.unwrap() {
                granted += 1;
            }
        }
        assert_eq!(granted, 4, "{:?}", db.backend);
        let node = hosts::get_node(&db, "h1").await.unwrap().unwrap();
        assert_eq!((node.vcpus_used, node.memory_mb_used), (4, 2048));
        for n in 0..12 {
            hosts::release(&db, &format!("i{n}"), "instance")
                .await
                .unwrap();
            // Releasing twice changes nothing.
            hosts::release(&db, &format!("i{n}"), "instance")
                .await
                .unwrap();
        }
        let node = hosts::get_node(&db, "h1").await.unwrap().unwrap();
        assert_eq!(
            (node.vcpus_used, node.memory_mb_used, node.local_gb_used),
            (0, 0, 0)
        );
    }
}

#[tokio::test]
async fn boot_stop_start_delete_on_every_database() {
    for (n, db) in ferrostack_db::testing::test_databases("compute_api")
        .await
        .into_iter()
        .enumerate()
    {
        let backend = db.backend;
        let c = start_on(&format!("engines-{n}"), Some(db), |_| {}).await;
        let admin = c.token("admin", "admin").await;
        let image = c.image(&admin).await;
        let net = c.network(&admin).await;
        let id = c.boot(&admin, "engine-vm", &image, &net).await;
        let s = c.wait_status(&admin, &id, "ACTIVE").await;
        assert!(
            !s["addresses"]["private"][0]["addr"].is_null(),
            "{backend:?}"
        );
        let act = |body: Value| {
            let (c, id, admin) = (&c, id.clone(), admin.clone());
            async move {
                c.nova(
                    Method::POST,
                    &format!("/servers/{id}/action"),
                    &admin,
                    Some(body),
                )
                .await
                .0
            }
        };
        assert_eq!(act(json!({"os-stop": null})).await, StatusCode::ACCEPTED);
        c.wait_status(&admin, &id, "SHUTOFF").await;
        assert_eq!(act(json!({"os-start": null})).await, StatusCode::ACCEPTED);
        c.wait_status(&admin, &id, "ACTIVE").await;
        c.svc.set_failpoint(Some("spawn"));
        let failed = c.boot(&admin, "engine-fail", &image, &net).await;
        assert_rolled_back(&c, &admin, &failed, "spawn").await;
        c.svc.set_failpoint(None);
        for sid in [&id, &failed] {
            let (st, _) = c
                .nova(Method::DELETE, &format!("/servers/{sid}"), &admin, None)
                .await;
            assert_eq!(st, StatusCode::NO_CONTENT, "{backend:?}");
            c.wait_status(&admin, sid, "GONE").await;
        }
        let node = ferrostack_compute::store::hosts::get_node(&c.svc.db, "compute1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (node.vcpus_used, node.memory_mb_used),
            (0, 0),
            "{backend:?}"
        );
        c.agent.stop();
    }
}

/// Wait for the compute agent's first heartbeat to register its host.
async fn wait_compute_host(c: &Cloud, admin: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = c.ok(Method::GET, "/os-services", admin, None).await;
        if v["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["host"] == "compute1" && s["binary"] == "nova-compute")
        {
            return;
        }
        assert!(Instant::now() < deadline, "compute1 never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn floating_ips_and_networks_proxy_the_networking_api() {
    let c = start("floating", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let public = c
        .neutron(
            Method::POST,
            "/networks",
            &admin,
            Some(json!({"network": {"name": "public", "router:external": true}})),
        )
        .await["network"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.neutron(
        Method::POST,
        "/subnets",
        &admin,
        Some(json!({"subnet": {"network_id": public, "ip_version": 4, "cidr": "172.24.4.0/24"}})),
    )
    .await;
    let private_subnet = c
        .neutron(
            Method::GET,
            &format!("/subnets?network_id={net}"),
            &admin,
            None,
        )
        .await["subnets"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let router = c
        .neutron(
            Method::POST,
            "/routers",
            &admin,
            Some(
                json!({"router": {"name": "r1", "external_gateway_info": {"network_id": public}}}),
            ),
        )
        .await["router"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.neutron(
        Method::PUT,
        &format!("/routers/{router}/add_router_interface"),
        &admin,
        Some(json!({"subnet_id": private_subnet})),
    )
    .await;
    let server = c.boot(&demo, "fip", &image, &net).await;
    c.wait_status(&demo, &server, "ACTIVE").await;

    let pools = c
        .ok(Method::GET, "/os-floating-ip-pools", &demo, None)
        .await;
    assert_eq!(pools, json!({"floating_ip_pools": [{"name": "public"}]}));
    let (s, _) = c
        .nova(
            Method::POST,
            "/os-floating-ips",
            &demo,
            Some(json!({"pool": "non_exist_pool"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let mut fips = Vec::new();
    for pool in ["public", public.as_str()] {
        let f = c
            .ok(
                Method::POST,
                "/os-floating-ips",
                &demo,
                Some(json!({"pool": pool})),
            )
            .await["floating_ip"]
            .clone();
        let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["fixed_ip", "id", "instance_id", "ip", "pool"]);
        assert_eq!(f["pool"], "public");
        assert!(f["ip"].as_str().unwrap().starts_with("172.24.4."));
        assert!(f["instance_id"].is_null() && f["fixed_ip"].is_null());
        fips.push(f);
    }
    let list = c.ok(Method::GET, "/os-floating-ips", &demo, None).await["floating_ips"].clone();
    for f in &fips {
        assert!(list.as_array().unwrap().contains(f));
    }
    let admin_list = c.ok(Method::GET, "/os-floating-ips", &admin, None).await;
    assert_eq!(admin_list["floating_ips"], json!([]), "another project's");
    let (s, _) = c
        .nova(
            Method::GET,
            &format!("/os-floating-ips/{}", uuid::Uuid::new_v4()),
            &demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let action = format!("/servers/{server}/action");
    let (ip1, ip2) = (
        fips[0]["ip"].as_str().unwrap(),
        fips[1]["ip"].as_str().unwrap(),
    );
    let (s, _) = c
        .nova(
            Method::POST,
            &action,
            &demo,
            Some(json!({"addFloatingIp": {"address": "0.0.0.0"}})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c
        .nova(
            Method::POST,
            &action,
            &demo,
            Some(json!({"addFloatingIp": {"address": ""}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = c
        .nova(
            Method::POST,
            &action,
            &demo,
            Some(json!({"removeFloatingIp": {"address": ip1}})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "not associated yet");
    let (s, v) = c
        .nova(
            Method::POST,
            &action,
            &demo,
            Some(json!({"addFloatingIp": {"address": ip1}})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let f = c
        .ok(
            Method::GET,
            &format!("/os-floating-ips/{}", fips[0]["id"].as_str().unwrap()),
            &demo,
            None,
        )
        .await["floating_ip"]
        .clone();
    assert_eq!(f["instance_id"], server.as_str());
    assert!(f["fixed_ip"].as_str().unwrap().starts_with("10.20.0."));
    let (s, _) = c
        .nova(
            Method::POST,
            &action,
            &demo,
            Some(json!({"addFloatingIp": {"address": ip2}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the port already has one");
    let (s, _) = c
        .nova(
            Method::POST,
            &action,
            &demo,
            Some(json!({"removeFloatingIp": {"address": ip1}})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let f = c
        .ok(
            Method::GET,
            &format!("/os-floating-ips/{}", fips[0]["id"].as_str().unwrap()),
            &demo,
            None,
        )
        .await["floating_ip"]
        .clone();
    assert!(f["instance_id"].is_null());

    for f in &fips {
        let path = format!("/os-floating-ips/{}", f["id"].as_str().unwrap());
        let (s, _) = c.nova(Method::DELETE, &path, &demo, None).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (s, _) = c.nova(Method::GET, &path, &demo, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = c.nova(Method::DELETE, &path, &demo, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    // os-tenant-networks / os-networks.
    let nets = c.ok(Method::GET, "/os-tenant-networks", &demo, None).await["networks"].clone();
    let private = nets
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == net.as_str())
        .expect("the shared network")
        .clone();
    assert_eq!(
        private,
        json!({"id": net, "label": "private", "cidr": "10.20.0.0/24"})
    );
    let v = c
        .ok(Method::GET, &format!("/os-networks/{net}"), &demo, None)
        .await;
    assert_eq!(v["network"], private);
    let (s, _) = c
        .nova(
            Method::GET,
            &format!("/os-networks/{}", uuid::Uuid::new_v4()),
            &demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A server deleted at any point of its build goes away: whether the build
/// is still running, ending, or just ended when the delete arrives.
#[tokio::test]
async fn a_server_deleted_while_building_goes_away() {
    let c = start("delete-in-build", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let mut ids = Vec::new();
    for n in 0..6u64 {
        let id = c.boot(&demo, &format!("b{n}"), &image, &net).await;
        // Spread the deletes over the build's steps.
        tokio::time::sleep(Duration::from_millis(n * 15)).await;
        let (s, _) = c
            .nova(Method::DELETE, &format!("/servers/{id}"), &demo, None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        ids.push(id);
    }
    for id in &ids {
        c.wait_status(&demo, id, "GONE").await;
        assert!(
            c.ports_of(&admin, id).await.is_empty(),
            "ports of {id} left"
        );
        assert_eq!(c.claims_of(id).await, 0, "claims of {id} left");
    }
}

/// The step names of a saga kind, from the saga itself.
fn steps_of(kind: &str) -> Vec<&'static str> {
    ferrostack_compute::saga::saga_of(kind)
        .unwrap()
        .steps()
        .iter()
        .map(|s| s.name())
        .collect()
}

/// The latest event of a server's latest action of a kind.
async fn last_event(c: &Cloud, tok: &str, id: &str, action: &str) -> Value {
    let actions = c
        .ok(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            tok,
            None,
        )
        .await;
    let a = actions["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == action)
        .unwrap_or_else(|| panic!("no {action} action in {actions}"))
        .clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c
            .ok(
                Method::GET,
                &format!(
                    "/servers/{id}/os-instance-actions/{}",
                    a["request_id"].as_str().unwrap()
                ),
                tok,
                None,
            )
            .await;
        if let Some(e) = v["instanceAction"]["events"]
            .as_array()
            .and_then(|e| e.last())
        {
            return e.clone();
        }
        assert!(Instant::now() < deadline, "no event for {action}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each step of the power-action, rebuild and snapshot sagas made to fail
/// in turn: the server never keeps a task state, a failed stop leaves it
/// running, a failed rebuild leaves it in ERROR with the step's reason, a
/// failed snapshot deletes its image — and the action's event says Error.
#[tokio::test]
async fn each_step_of_the_action_sagas_fails_cleanly() {
    let c = start("action-failures", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&admin, "vm", &image, &net).await;
    c.wait_status(&admin, &id, "ACTIVE").await;
    let action = |body: Value| {
        let path = format!("/servers/{id}/action");
        let admin = admin.clone();
        let c = &c;
        async move { c.nova(Method::POST, &path, &admin, Some(body)).await }
    };

    for step in steps_of("power_action") {
        c.svc.set_failpoint(Some(step));
        assert_eq!(
            action(json!({"os-stop": null})).await.0,
            StatusCode::ACCEPTED
        );
        // The task state clears only when the saga ended; the failpoint
        // stays set until then (the saga runs after the 202).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut s = c.wait_status(&admin, &id, "ACTIVE").await;
        while !s["OS-EXT-STS:task_state"].is_null() {
            assert!(Instant::now() < deadline, "task state stuck: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            s = c.wait_status(&admin, &id, "ACTIVE").await;
        }
        c.svc.set_failpoint(None);
        let e = last_event(&c, &admin, &id, "stop").await;
        assert_eq!(e["result"], "Error", "{e}");
        assert_eq!(
            c.driver.guest(&id).unwrap().power_state,
            PowerState::Running
        );
    }
    // A reboot that fails leaves the server in ERROR with the reason.
    c.svc.set_failpoint(Some("on_host"));
    action(json!({"reboot": {"type": "HARD"}})).await;
    let s = c.wait_status(&admin, &id, "ERROR").await;
    assert!(
        s["fault"]["message"].as_str().unwrap().contains("on_host"),
        "{s}"
    );
    c.svc.set_failpoint(None);

    for step in steps_of("rebuild_server") {
        c.svc.set_failpoint(Some(step));
        let (st, v) = action(json!({"rebuild": {"imageRef": image}})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let s = c.wait_status(&admin, &id, "ERROR").await;
        assert!(
            s["fault"]["message"].as_str().unwrap().contains(step),
            "{step}: {s}"
        );
        assert!(s["OS-EXT-STS:task_state"].is_null());
        c.svc.set_failpoint(None);
    }
    // From ERROR a rebuild without failures brings it back.
    action(json!({"rebuild": {"imageRef": image}})).await;
    c.wait_status(&admin, &id, "ACTIVE").await;
    assert!(c.driver.guest(&id).is_some());

    for step in steps_of("snapshot_server") {
        c.svc.set_failpoint(Some(step));
        let (st, _) = action(json!({"createImage": {"name": format!("snap-{step}")}})).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let e = last_event(&c, &admin, &id, "createImage").await;
        assert_eq!(e["result"], "Error", "{e}");
        c.svc.set_failpoint(None);
        let (_, _, imgs) = c
            .req(
                Method::GET,
                format!("{}/v2/images?name=snap-{step}", c.glance),
                &admin,
                None,
            )
            .await;
        assert!(
            imgs["images"].as_array().unwrap().is_empty(),
            "image left: {imgs}"
        );
    }
    let s = c.wait_status(&admin, &id, "ACTIVE").await;
    assert!(s["OS-EXT-STS:task_state"].is_null());
    c.agent.stop();
}

/// A restart right after each step of the power-action and rebuild sagas
/// (before its end was recorded): the new service resumes the saga and the
/// server reaches the action's state with no task left.
#[tokio::test]
async fn action_sagas_resume_after_a_restart_at_each_step() {
    let c = start("action-restarts", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&admin, "vm", &image, &net).await;
    c.wait_status(&admin, &id, "ACTIVE").await;
    let db = ferrostack_db::Db::connect(&c.db_url).await.unwrap();

    let cases: Vec<(&str, Value, &str)> = steps_of("power_action")
        .into_iter()
        .map(|s| ("power_action", json!({"os-stop": null}), s))
        .chain(
            steps_of("rebuild_server")
                .into_iter()
                .map(|s| ("rebuild_server", json!({"rebuild": {"imageRef": image}}), s)),
        )
        .collect();
    for (kind, body, step) in cases {
        // A stopped server is started first, a rebuild starts from ACTIVE.
        let s = c.wait_status(&admin, &id, "ACTIVE").await;
        assert!(s["OS-EXT-STS:task_state"].is_null());
        c.svc.set_failpoint(Some(&format!("crash_after:{step}")));
        let (st, v) = c
            .nova(
                Method::POST,
                &format!("/servers/{id}/action"),
                &admin,
                Some(body),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        // The saga "crashed": still running in the records.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sagas = ferrostack_compute::store::sagas::for_instance(&db, &id)
                .await
                .unwrap();
            let last = sagas.last().unwrap();
            let recorded = ferrostack_compute::store::sagas::steps(&db, &last.id)
                .await
                .unwrap();
            if last.kind == kind
                && recorded
                    .iter()
                    .any(|r| r.step == step && r.state == "started")
            {
                break;
            }
            assert!(Instant::now() < deadline, "{kind}/{step} never ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.svc.set_failpoint(None);
        let svc2 = ComputeService::new(db.clone(), c.config.clone(), c.kit.bus.clone())
            .await
            .unwrap();
        ferrostack_compute::saga::resume_all(&svc2).await.unwrap();
        let want = if kind == "power_action" {
            "SHUTOFF"
        } else {
            "ACTIVE"
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = c.wait_status(&admin, &id, want).await;
            if s["OS-EXT-STS:task_state"].is_null() {
                break;
            }
            assert!(Instant::now() < deadline, "{kind}/{step}: task stuck: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if kind == "power_action" {
            c.ok(
                Method::POST,
                &format!("/servers/{id}/action"),
                &admin,
                Some(json!({"os-start": null})),
            )
            .await;
        }
    }
    c.agent.stop();
}

/// `os-interface`: list and show a server's ports; attach one on a network
/// (plugged on the host), refuse a port in use and malformed requests,
/// leave no port when the host fails, detach (the port goes).
#[tokio::test]
async fn interfaces_attach_and_detach() {
    let c = start("interfaces", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&admin, "vm", &image, &net).await;
    c.wait_status(&admin, &id, "ACTIVE").await;
    let path = format!("/servers/{id}/os-interface");

    let list = c.ok(Method::GET, &path, &admin, None).await;
    let first = list["interfaceAttachments"].as_array().unwrap();
    assert_eq!(first.len(), 1, "{list}");
    let first_port = first[0]["port_id"].as_str().unwrap().to_owned();
    for key in ["port_state", "fixed_ips", "port_id", "net_id", "mac_addr"] {
        assert!(first[0].get(key).is_some(), "{key} in {list}");
    }
    let shown = c
        .ok(Method::GET, &format!("{path}/{first_port}"), &admin, None)
        .await;
    assert_eq!(shown["interfaceAttachment"]["port_id"], first_port.as_str());

    let (s, v) = c
        .nova(
            Method::POST,
            &path,
            &admin,
            Some(json!({"interfaceAttachment": {"net_id": net}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new_port = v["interfaceAttachment"]["port_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(c.driver.guest(&id).unwrap().spec.vifs.len(), 2);
    assert_eq!(c.ports_of(&admin, &id).await.len(), 2);
    let list = c.ok(Method::GET, &path, &admin, None).await;
    assert_eq!(list["interfaceAttachments"].as_array().unwrap().len(), 2);

    // A port bound to this server already is in use.
    let (s, _) = c
        .nova(
            Method::POST,
            &path,
            &admin,
            Some(json!({"interfaceAttachment": {"port_id": new_port}})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    for bad in [
        json!({"interfaceAttachment": {"net_id": net, "port_id": new_port}}),
        json!({"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.20.0.50"}]}}),
        json!({"interfaceAttachment": {"bogus": 1}}),
    ] {
        let (s, v) = c.nova(Method::POST, &path, &admin, Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    }
    // The host fails to plug it: no port is left behind.
    c.driver.fail_next("attach_interface");
    let (s, _) = c
        .nova(
            Method::POST,
            &path,
            &admin,
            Some(json!({"interfaceAttachment": {"net_id": net}})),
        )
        .await;
    assert!(s.is_server_error(), "{s}");
    assert_eq!(c.ports_of(&admin, &id).await.len(), 2, "port leaked");

    let (s, _) = c
        .nova(Method::DELETE, &format!("{path}/{new_port}"), &admin, None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(c.driver.guest(&id).unwrap().spec.vifs.len(), 1);
    assert_eq!(c.ports_of(&admin, &id).await.len(), 1);
    let (s, _) = c
        .nova(Method::DELETE, &format!("{path}/{new_port}"), &admin, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    c.agent.stop();
}

/// The password a guest posts to the metadata service is what
/// `os-server-password` shows (once; a second post is refused), and
/// clearing it lets the guest post again.
#[tokio::test]
async fn server_password_comes_from_the_guest() {
    use ferrostack_metadata::MetadataSource;
    let c = start("password", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&admin, "vm", &image, &net).await;
    c.wait_status(&admin, &id, "ACTIVE").await;
    let path = format!("/servers/{id}/os-server-password");
    assert_eq!(c.ok(Method::GET, &path, &admin, None).await["password"], "");
    let source = ferrostack_compute::service::metadata::ComputeMetadataSource(c.svc.clone());
    assert!(source.set_password(&id, "c2VjcmV0").await.unwrap());
    assert!(!source.set_password(&id, "b3RoZXI=").await.unwrap());
    assert_eq!(
        c.ok(Method::GET, &path, &admin, None).await["password"],
        "c2VjcmV0"
    );
    let md = source.instance(&id).await.unwrap().unwrap();
    assert_eq!(md.uuid, id);
    assert_eq!(md.hostname, "vm");
    let (s, _) = c.nova(Method::DELETE, &path, &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(source.set_password(&id, "b3RoZXI=").await.unwrap());
    c.agent.stop();
}

/// migrate / os-migrateLive: admin only, a missing server is 404, and with
/// one compute host there is nowhere to go (Nova's NoValidHost, 400); the
/// server is untouched.
#[tokio::test]
async fn migration_needs_another_host() {
    let c = start("migrate", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "vm", &image, &net).await;
    c.wait_status(&admin, &id, "ACTIVE").await;
    let act = |tok: &str, server: &str, body: Value| {
        let path = format!("/servers/{server}/action");
        let tok = tok.to_owned();
        let c = &c;
        async move { c.nova(Method::POST, &path, &tok, Some(body)).await }
    };
    let missing = "7b0d4a6c-43a4-4c8e-9d4a-2f1f7c5a0e11";
    let (s, _) = act(&admin, missing, json!({"migrate": null})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = act(&demo, &id, json!({"migrate": null})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = act(&admin, &id, json!({"migrate": null})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("No valid host"), "{v}");
    let path = format!("/servers/{id}/action");
    let live = |body: Value| Some(json!({ "os-migrateLive": body }));
    let to_self = live(json!({"host": "compute1", "block_migration": "auto"}));
    let (s, v) = c
        .nova_at("2.25", Method::POST, &path, &admin, to_self)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("current host"), "{v}");
    let anywhere = live(json!({"host": null, "block_migration": "auto"}));
    let (s, v) = c
        .nova_at("2.25", Method::POST, &path, &admin, anywhere.clone())
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("No valid host"), "{v}");
    // 2.25: `auto`, and no `disk_over_commit` (required before).
    let (s, v) = c
        .nova_at("2.24", Method::POST, &path, &admin, anywhere)
        .await;
    assert!(v.to_string().contains("required property"), "{s} {v}");
    let old = json!({"host": null, "block_migration": false, "disk_over_commit": false});
    let (s, v) = c
        .nova_at("2.24", Method::POST, &path, &admin, live(old.clone()))
        .await;
    assert!(v.to_string().contains("No valid host"), "{s} {v}");
    let (s, v) = c
        .nova_at("2.25", Method::POST, &path, &admin, live(old))
        .await;
    assert!(v.to_string().contains("disk_over_commit"), "{s} {v}");
    let auto_early = json!({"host": null, "block_migration": "auto", "disk_over_commit": false});
    let (s, v) = c
        .nova_at("2.24", Method::POST, &path, &admin, live(auto_early))
        .await;
    assert!(v.to_string().contains("not a boolean"), "{s} {v}");
    let (s, v) = c
        .nova_at(
            "2.25",
            Method::POST,
            &path,
            &admin,
            live(json!({"block_migration": true})),
        )
        .await;
    assert!(v.to_string().contains("'host' is a required"), "{s} {v}");
    // 2.30: `force`.
    let forced = json!({"host": null, "block_migration": "auto", "force": true});
    let (s, v) = c
        .nova_at("2.29", Method::POST, &path, &admin, live(forced.clone()))
        .await;
    assert!(v.to_string().contains("'force' was unexpected"), "{s} {v}");
    let (s, v) = c
        .nova_at("2.30", Method::POST, &path, &admin, live(forced))
        .await;
    assert!(v.to_string().contains("No valid host"), "{s} {v}");
    let s = c.wait_status(&admin, &id, "ACTIVE").await;
    assert!(s["OS-EXT-STS:task_state"].is_null(), "{s}");
    c.agent.stop();
}

/// Name filters are Python's `re.search` in linear time: a pattern that
/// made the old backtracking matcher run for half a minute on an 82-char
/// name answers at once, and correctly; `ip` is `re.match` on fixed IPs.
#[tokio::test]
async fn pathological_name_filters_answer_fast() {
    let c = start("namefilter", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let long = "a".repeat(82);
    let long_id = c.boot(&demo, &long, &image, &net).await;
    let x_id = c
        .boot(&demo, &format!("{}x", "a".repeat(40)), &image, &net)
        .await;
    c.wait_status(&demo, &long_id, "ACTIVE").await;
    c.wait_status(&demo, &x_id, "ACTIVE").await;
    let ids = |v: &Value| -> Vec<String> {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let started = Instant::now();
    let v = c
        .ok(Method::GET, "/servers?name=.*.*.*.*.*.*x", &demo, None)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(ids(&v), [x_id.as_str()]);
    let v = c.ok(Method::GET, "/servers?name=(a*)*b", &demo, None).await;
    assert!(ids(&v).is_empty(), "{v}");
    let v = c
        .ok(Method::GET, "/servers?name=^a{82}$", &demo, None)
        .await;
    assert_eq!(ids(&v), [long_id.as_str()]);
    // A pattern Python would refuse is a substring, not an error.
    let v = c.ok(Method::GET, "/servers?name=ax(", &demo, None).await;
    assert!(ids(&v).is_empty(), "{v}");
    let v = c
        .ok(Method::GET, "/servers?ip=10%5C.20%5C.", &demo, None)
        .await;
    assert_eq!(ids(&v).len(), 2, "{v}");
    let v = c.ok(Method::GET, "/servers?ip=20%5C.0", &demo, None).await;
    assert!(ids(&v).is_empty(), "ip is anchored at the start: {v}");
    c.agent.stop();
}

/// A `max_count` of 10^9 is one quota decision, not a walk down one query
/// per count under a global lock: it answers at once with what the
/// headroom allows (10 instances by default), a `min_count` above it is
/// Nova's quota error, and another project's boot meanwhile is not held up.
#[tokio::test]
async fn huge_max_count_is_one_quota_decision() {
    let c = start("maxcount", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let boot = |min: i64, max: i64| {
        json!({"server": {"name": "many", "imageRef": image, "flavorRef": "1",
            "networks": [{"uuid": net}], "min_count": min, "max_count": max,
            "return_reservation_id": true}})
    };
    let started = Instant::now();
    let (huge, other) = tokio::join!(
        c.nova(
            Method::POST,
            "/servers",
            &demo,
            Some(boot(1, 1_000_000_000))
        ),
        async {
            let began = Instant::now();
            let r = c
                .nova(Method::POST, "/servers", &admin, Some(boot(1, 1)))
                .await;
            (r, began.elapsed())
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    let ((s, v), admin_took) = other;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert!(
        admin_took < Duration::from_secs(1),
        "admin waited {admin_took:?}"
    );
    assert_eq!(huge.0, StatusCode::ACCEPTED, "{}", huge.1);
    let rid = huge.1["reservation_id"].as_str().unwrap();
    let listed = c
        .ok(
            Method::GET,
            &format!("/servers?reservation_id={rid}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(listed["servers"].as_array().unwrap().len(), 10);

    let started = Instant::now();
    let (s, v) = c
        .nova(
            Method::POST,
            "/servers",
            &demo,
            Some(boot(1_000_000_000, 1_000_000_000)),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        v["forbidden"]["message"],
        "Quota exceeded for cores, instances, ram: Requested 1000000000, 1000000000, \
         512000000000, but already used 10, 10, 5120 of 20, 10, 51200 cores, instances, ram"
    );
    let (s, v) = c
        .nova(Method::POST, "/servers", &demo, Some(boot(1, 1)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        v["forbidden"]["message"],
        "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
    );
    c.agent.stop();
}

/// Concurrent boots of one project never pass its instance quota together.
#[tokio::test]
async fn concurrent_boots_never_exceed_the_quota() {
    let c = start("quotarace", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let demo_project = c.kit.project_of(&demo).await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    c.ok(
        Method::PUT,
        &format!("/os-quota-sets/{demo_project}"),
        &admin,
        Some(json!({"quota_set": {"instances": 3}})),
    )
    .await;
    let boot = json!({"server": {"name": "race", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}], "min_count": 1, "max_count": 2}});
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (http, tok, body) = (c.http.clone(), demo.clone(), boot.clone());
        let url = format!("{}/v2.1/servers", c.compute);
        racing.spawn(async move {
            let r = http
                .post(url)
                .header("x-auth-token", tok)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let results = racing.join_all().await;
    for (s, v) in &results {
        assert!(
            *s == StatusCode::ACCEPTED || *s == StatusCode::FORBIDDEN,
            "{s} {v}"
        );
    }
    let listed = c.ok(Method::GET, "/servers", &demo, None).await;
    assert_eq!(listed["servers"].as_array().unwrap().len(), 3);
    c.agent.stop();
}

/// A boot's instances and sagas are written in one transaction: a failure
/// between the two writes leaves neither (nothing building, nothing
/// counted). An instance left building with no saga by an older version
/// is failed at start: ERROR with a fault, no task state.
#[tokio::test]
async fn boots_are_recorded_whole_and_orphans_fail_at_start() {
    use ferrostack_compute::states::TaskState;
    use ferrostack_compute::store::{instances, sagas};
    let c = start("bootatomic", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    c.svc.set_failpoint(Some("record_boot"));
    let boot = json!({"server": {"name": "torn", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}], "min_count": 3}});
    let (s, v) = c
        .nova(Method::POST, "/servers", &demo, Some(boot.clone()))
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    c.svc.set_failpoint(None);
    assert!(instances::list(&c.svc.db, None, false)
        .await
        .unwrap()
        .is_empty());
    assert!(sagas::unfinished(&c.svc.db).await.unwrap().is_empty());
    let l = c.ok(Method::GET, "/limits", &demo, None).await;
    assert_eq!(l["limits"]["absolute"]["totalInstancesUsed"], 0);

    // What a crash between the two writes of an older version left.
    let demo_project = c.kit.project_of(&demo).await;
    let now = ferrostack_compute::store::now();
    let orphan = instances::Instance {
        id: "0e7f3c55-6d0a-4c43-9a43-2f0c8f6e9b11".into(),
        project_id: demo_project,
        user_id: "someone".into(),
        name: "orphan".into(),
        vm_state: VmState::Building,
        task_state: Some(TaskState::Scheduling),
        created_at: now.clone(),
        updated_at: now,
        ..Default::default()
    };
    instances::insert(&c.svc.db, &orphan).await.unwrap();
    let driven = c.boot(&demo, "driven", &image, &net).await;
    c.wait_status(&demo, &driven, "ACTIVE").await;
    let svc2 = ComputeService::new(c.svc.db.clone(), c.config.clone(), c.kit.bus.clone())
        .await
        .unwrap();
    assert_eq!(
        ferrostack_compute::saga::fail_orphaned_builds(&svc2)
            .await
            .unwrap(),
        1
    );
    let s = c.wait_status(&demo, &orphan.id, "ERROR").await;
    assert!(s["OS-EXT-STS:task_state"].is_null(), "{s}");
    assert_eq!(s["fault"]["code"], 500, "{s}");
    let s = c.wait_status(&demo, &driven, "ACTIVE").await;
    assert!(s["fault"].is_null());
    // The orphan can be deleted like any server in ERROR.
    let (st, _) = c
        .nova(
            Method::DELETE,
            &format!("/servers/{}", orphan.id),
            &demo,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    c.wait_status(&demo, &orphan.id, "GONE").await;
    c.agent.stop();
}

/// A user with only `role` on the demo project (password `admin_pass`).
async fn user_with_role(c: &Cloud, name: &str, role: &str) -> String {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let project = c.kit.project_of(&demo).await;
    let ks = |m: Method, path: String, body: Option<Value>| {
        let admin = admin.clone();
        async move {
            let (s, _, v) = c
                .req(m, format!("{}/v3{path}", c.kit.identity_url), &admin, body)
                .await;
            assert!(s.is_success(), "{path}: {s} {v}");
            v
        }
    };
    let u = ks(
        Method::POST,
        "/users".into(),
        Some(json!({"user": {"name": name, "password": "admin_pass", "domain_id": "default"}})),
    )
    .await;
    let uid = u["user"]["id"].as_str().unwrap().to_owned();
    let roles = ks(Method::GET, format!("/roles?name={role}"), None).await;
    let rid = roles["roles"][0]["id"].as_str().unwrap().to_owned();
    ks(
        Method::PUT,
        format!("/projects/{project}/users/{uid}/roles/{rid}"),
        None,
    )
    .await;
    c.token(name, "demo").await
}

/// Authorization is Nova's policy defaults: a reader of the project lists
/// and shows its servers but gets 403 on creating one and on server
/// actions and metadata changes, with Nova's body; a member may.
#[tokio::test]
async fn policy_defaults_reader_reads_member_writes() {
    let c = start("policy", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let reader = user_with_role(&c, "reader1", "reader").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "vm", &image, &net).await;
    c.wait_status(&demo, &id, "ACTIVE").await;

    let listed = c.ok(Method::GET, "/servers", &reader, None).await;
    assert_eq!(listed["servers"][0]["id"], id.as_str());
    c.ok(Method::GET, &format!("/servers/{id}"), &reader, None)
        .await;
    c.ok(
        Method::GET,
        &format!("/servers/{id}/metadata"),
        &reader,
        None,
    )
    .await;
    let boot = json!({"server": {"name": "r", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}]}});
    let denied = [
        (
            Method::POST,
            "/servers".to_owned(),
            Some(boot),
            "os_compute_api:servers:create",
        ),
        (
            Method::POST,
            format!("/servers/{id}/action"),
            Some(json!({"os-stop": null})),
            "os_compute_api:servers:stop",
        ),
        (
            Method::POST,
            format!("/servers/{id}/action"),
            Some(json!({"reboot": {"type": "SOFT"}})),
            "os_compute_api:servers:reboot",
        ),
        (
            Method::POST,
            format!("/servers/{id}/metadata"),
            Some(json!({"metadata": {"a": "b"}})),
            "os_compute_api:server-metadata:create",
        ),
        (
            Method::DELETE,
            format!("/servers/{id}"),
            None,
            "os_compute_api:servers:delete",
        ),
        (
            Method::POST,
            "/os-server-groups".to_owned(),
            Some(json!({"server_group": {"name": "g", "policies": ["affinity"]}})),
            "os_compute_api:os-server-groups:create",
        ),
    ];
    for (m, path, body, rule) in denied {
        let (s, v) = c.nova(m.clone(), &path, &reader, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {path}: {v}");
        assert_eq!(
            v["forbidden"]["message"],
            format!("Policy doesn't allow {rule} to be performed."),
            "{m} {path}"
        );
    }
    // Key pairs are the user's own: Nova's default is admin or that user,
    // whatever the project role; another user's are refused (2.10 names
    // the user; before, `user_id` is ignored).
    let (s, v) = c
        .nova_at(
            "2.10",
            Method::GET,
            "/os-keypairs?user_id=someone-else",
            &reader,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // A member may.
    c.ok(
        Method::POST,
        "/os-keypairs",
        &demo,
        Some(json!({"keypair": {"name": "k"}})),
    )
    .await;
    let (s, v) = c
        .nova(
            Method::POST,
            &format!("/servers/{id}/action"),
            &demo,
            Some(json!({"os-stop": null})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(&demo, &id, "SHUTOFF").await;
    c.agent.stop();
}

/// An operator's policy.yaml, loaded at start, overrides the defaults:
/// here members may create flavors and only members key pairs.
/// A file that does not parse stops the service from starting.
#[tokio::test]
async fn operator_policy_file_overrides_defaults() {
    let dir = std::env::temp_dir().join(format!("compute-policy-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(
        &file,
        "# operator overrides\n\
         \"os_compute_api:os-flavor-manage:create\": \"role:member\"\n\
         \"os_compute_api:os-keypairs:create\": \"role:member\"\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let c = start("policyfile", |cfg| cfg.compute.policy_file = path.clone()).await;
    let demo = c.token("demo", "demo").await;
    let reader = user_with_role(&c, "reader2", "reader").await;
    let (s, v) = c
        .nova(
            Method::POST,
            "/flavors",
            &demo,
            Some(json!({"flavor": {"name": "member-made", "ram": 256, "vcpus": 1, "disk": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = c
        .nova(
            Method::POST,
            "/os-keypairs",
            &reader,
            Some(json!({"keypair": {"name": "k"}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        v["forbidden"]["message"],
        "Policy doesn't allow os_compute_api:os-keypairs:create to be performed."
    );
    c.ok(
        Method::POST,
        "/os-keypairs",
        &demo,
        Some(json!({"keypair": {"name": "k"}})),
    )
    .await;

    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "\"os_compute_api:servers:create\": \"role:member and (\"\n",
    )
    .unwrap();
    let mut config = c.config.clone();
    config.compute.policy_file = bad.display().to_string();
    let refused = ComputeService::new(c.svc.db.clone(), config, c.kit.bus.clone()).await;
    assert!(refused.is_err(), "a broken policy file must stop the start");
    c.agent.stop();
}

/// Request bodies are typed: a wrong type or an unknown field answers 400
/// naming the field, before anything is done.
#[tokio::test]
async fn typed_bodies_name_the_offending_field() {
    let c = start("typedbodies", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "vm", &image, &net).await;
    for (m, path, body, field) in [
        (
            Method::POST,
            "/servers".to_owned(),
            json!({"server": {"name": "x", "imageRef": image, "flavorRef": "1", "bogus": 1}}),
            "server.bogus",
        ),
        (
            Method::POST,
            "/servers".to_owned(),
            json!({"server": {"name": "x", "imageRef": image, "flavorRef": "1", "networks": 7}}),
            "server.networks",
        ),
        (
            Method::POST,
            "/os-keypairs".to_owned(),
            json!({"keypair": {"name": 5}}),
            "keypair.name",
        ),
        (
            Method::PUT,
            format!("/servers/{id}"),
            json!({"server": {"name": ["x"]}}),
            "server.name",
        ),
        (
            Method::PUT,
            format!("/servers/{id}/metadata"),
            json!({"metadata": {"a": 1}}),
            "metadata.a",
        ),
        (
            Method::POST,
            "/os-server-groups".to_owned(),
            json!({"server_group": {"name": "g"}}),
            "server_group",
        ),
        (
            Method::POST,
            "/flavors".to_owned(),
            json!({"flavor": {"name": "f", "ram": [1], "vcpus": 1, "disk": 1}}),
            "flavor.ram",
        ),
        (
            Method::POST,
            format!("/servers/{id}/action"),
            json!({"reboot": {"type": 5}}),
            "reboot.type",
        ),
        (
            Method::POST,
            format!("/servers/{id}/action"),
            json!({"os-getConsoleOutput": {"length": [1]}}),
            "os-getConsoleOutput.length",
        ),
    ] {
        let tok = if path == "/flavors" { &admin } else { &demo };
        let (s, v) = c.nova(m.clone(), &path, tok, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{m} {path}: {v}");
        let msg = v["badRequest"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(&format!("'{field}'")), "{m} {path}: {msg}");
    }
    c.agent.stop();
}

/// Values the schema bounds as Nova does are refused before the database
/// sees them (a flavor's sizes, an event's tag), and the largest
/// `rxtx_factor` Nova allows is stored whole.
#[tokio::test]
async fn values_beyond_novas_bounds_are_refused() {
    let c = start("bounds", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let flavor = |ram: i64, rxtx: f64| json!({"flavor": {"name": format!("f{ram}"), "ram": ram, "vcpus": 1, "disk": 1, "rxtx_factor": rxtx}});
    let (s, v) = c
        .nova(
            Method::POST,
            "/flavors",
            &admin,
            Some(flavor(2_147_483_648, 1.0)),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("greater than the maximum of 2147483647"));
    let (s, v) = c
        .nova(Method::POST, "/flavors", &admin, Some(flavor(64, 3.4e38)))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let shown = c
        .ok(
            Method::GET,
            &format!("/flavors/{}", v["flavor"]["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(shown["flavor"]["rxtx_factor"], 3.4e38);
    let (s, v) = c
        .nova(Method::POST, "/flavors", &admin, Some(flavor(128, 3.5e38)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = c
        .nova(
            Method::POST,
            "/os-server-external-events",
            &admin,
            Some(json!({"events": [{"name": "network-changed", "server_uuid": "x", "tag": "t".repeat(256)}]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    c.agent.stop();
}

/// Every step of every saga (`saga::KINDS`, each from its own step list)
/// run twice — as after a crash between a step's work and its record —
/// ends as a single run does; and a failure at every step, with each undo
/// run twice, ends as a single unwind does. Each case gets its own server
/// and ends by deleting it: no port, claim or guest may be left.
#[tokio::test]
async fn every_saga_step_runs_twice_and_undoes_twice() {
    let c = start("saga-idempotence", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let mut cases = 0;
    for kind in ferrostack_compute::saga::KINDS {
        for step in steps_of(kind) {
            for failing in [false, true] {
                cases += 1;
                let case = format!("{kind}/{step}/{}", if failing { "fail" } else { "twice" });
                saga_case(&c, &admin, &image, &net, kind, step, failing, &case).await;
            }
        }
    }
    assert!(cases >= 30, "only {cases} cases");
    c.agent.stop();
}

/// One case of [`every_saga_step_runs_twice_and_undoes_twice`].
#[allow(clippy::too_many_arguments)]
async fn saga_case(
    c: &Cloud,
    admin: &str,
    image: &str,
    net: &str,
    kind: &str,
    step: &str,
    failing: bool,
    case: &str,
) {
    let set_points = || {
        if failing {
            c.svc.set_failpoint(Some(step));
            c.svc.set_failpoint(Some("undo_twice"));
        } else {
            c.svc.set_failpoint(Some(&format!("twice:{step}")));
        }
    };
    let action = |id: &str, body: Value| {
        let path = format!("/servers/{id}/action");
        async move {
            let (st, v) = c.nova(Method::POST, &path, admin, Some(body)).await;
            // 202, or 204 for confirmResize as in Nova.
            assert!(st.is_success(), "{case}: {st} {v}");
        }
    };
    let settled = |id: &str, want: &'static str| {
        let id = id.to_owned();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let s = c.wait_status(admin, &id, want).await;
                if s["OS-EXT-STS:task_state"].is_null() {
                    return s;
                }
                assert!(Instant::now() < deadline, "{case}: task stuck: {s}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    if kind == "create_server" {
        set_points();
        let id = c.boot(admin, case, image, net).await;
        if failing {
            assert_rolled_back(c, admin, &id, step).await;
        } else {
            settled(&id, "ACTIVE").await;
            assert_eq!(c.ports_of(admin, &id).await.len(), 1, "{case}: ports");
            assert_eq!(c.claims_of(&id).await, 1, "{case}: claims");
        }
        c.svc.set_failpoint(None);
        delete_and_check(c, admin, &id, case).await;
        return;
    }

    let id = c.boot(admin, case, image, net).await;
    settled(&id, "ACTIVE").await;
    if kind == "revert_resize" {
        action(&id, json!({"resize": {"flavorRef": "2"}})).await;
        settled(&id, "VERIFY_RESIZE").await;
    }
    set_points();
    match kind {
        "delete_server" => {
            let (st, _) = c
                .nova(Method::DELETE, &format!("/servers/{id}"), admin, None)
                .await;
            assert_eq!(st, StatusCode::NO_CONTENT, "{case}");
            if !failing {
                c.wait_status(admin, &id, "GONE").await;
                c.svc.set_failpoint(None);
                assert!(c.ports_of(admin, &id).await.is_empty(), "{case}: ports");
                assert_eq!(c.claims_of(&id).await, 0, "{case}: claims");
                assert!(c.driver.guest(&id).is_none(), "{case}: guest");
                return;
            }
            let s = settled(&id, "ERROR").await;
            assert!(
                s["fault"]["message"].as_str().unwrap().contains(step),
                "{case}: {s}"
            );
        }
        "power_action" => {
            action(&id, json!({"os-stop": null})).await;
            if failing {
                settled(&id, "ACTIVE").await;
                let e = last_event(c, admin, &id, "stop").await;
                assert_eq!(e["result"], "Error", "{case}: {e}");
            } else {
                settled(&id, "SHUTOFF").await;
                assert_eq!(
                    c.driver.guest(&id).unwrap().power_state,
                    PowerState::Shutdown
                );
            }
        }
        "rebuild_server" => {
            action(&id, json!({"rebuild": {"imageRef": image}})).await;
            let s = settled(&id, if failing { "ERROR" } else { "ACTIVE" }).await;
            if failing {
                assert!(
                    s["fault"]["message"].as_str().unwrap().contains(step),
                    "{case}: {s}"
                );
            } else {
                assert!(c.driver.guest(&id).is_some(), "{case}: guest");
            }
        }
        "snapshot_server" => {
            let name = format!("snap-{}", case.replace('/', "-"));
            action(&id, json!({"createImage": {"name": name}})).await;
            let e = last_event(c, admin, &id, "createImage").await;
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut e = e;
            while e["finish_time"].is_null() {
                assert!(
                    Instant::now() < deadline,
                    "{case}: snapshot never ended: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
                e = last_event(c, admin, &id, "createImage").await;
            }
            settled(&id, "ACTIVE").await;
            let (_, _, imgs) = c
                .req(
                    Method::GET,
                    format!("{}/v2/images?name={name}", c.glance),
                    admin,
                    None,
                )
                .await;
            let imgs = imgs["images"].as_array().unwrap();
            if failing {
                assert_eq!(e["result"], "Error", "{case}: {e}");
                assert!(imgs.is_empty(), "{case}: image left: {imgs:?}");
            } else {
                assert_eq!(imgs.len(), 1, "{case}: one image: {imgs:?}");
                assert_eq!(imgs[0]["status"], "active", "{case}");
            }
        }
        "resize_server" => {
            action(&id, json!({"resize": {"flavorRef": "2"}})).await;
            if failing {
                let s = settled(&id, "ACTIVE").await;
                assert_eq!(s["flavor"]["id"], "1", "{case}: old flavor kept: {s}");
            } else {
                settled(&id, "VERIFY_RESIZE").await;
                c.svc.set_failpoint(None);
                action(&id, json!({"confirmResize": null})).await;
                let s = settled(&id, "ACTIVE").await;
                assert_eq!(s["flavor"]["id"], "2", "{case}: {s}");
            }
            assert_eq!(c.claims_of(&id).await, 1, "{case}: one claim");
        }
        "revert_resize" => {
            action(&id, json!({"revertResize": null})).await;
            if failing {
                let s = settled(&id, "ERROR").await;
                assert!(
                    s["fault"]["message"].as_str().unwrap().contains(step),
                    "{case}: {s}"
                );
            } else {
                let s = settled(&id, "ACTIVE").await;
                assert_eq!(s["flavor"]["id"], "1", "{case}: {s}");
                assert_eq!(c.claims_of(&id).await, 1, "{case}: one claim");
            }
        }
        "rescue_server" => {
            action(&id, json!({"rescue": null})).await;
            if failing {
                let s = settled(&id, "ERROR").await;
                assert!(
                    s["fault"]["message"].as_str().unwrap().contains(step),
                    "{case}: {s}"
                );
                assert!(c.driver.guest(&id).unwrap().rescue.is_none(), "{case}");
            } else {
                settled(&id, "RESCUE").await;
                assert!(c.driver.guest(&id).unwrap().rescue.is_some(), "{case}");
            }
        }
        "unrescue_server" => {
            c.svc.set_failpoint(None);
            action(&id, json!({"rescue": null})).await;
            settled(&id, "RESCUE").await;
            set_points();
            action(&id, json!({"unrescue": null})).await;
            let e = last_event(c, admin, &id, "unrescue").await;
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut e = e;
            while e["finish_time"].is_null() {
                assert!(Instant::now() < deadline, "{case}: never ended: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                e = last_event(c, admin, &id, "unrescue").await;
            }
            if failing {
                // RESCUE shows no fault (Nova shows it in ERROR only).
                settled(&id, "RESCUE").await;
                assert_eq!(e["result"], "Error", "{case}: {e}");
            } else {
                settled(&id, "ACTIVE").await;
                assert!(c.driver.guest(&id).unwrap().rescue.is_none(), "{case}");
            }
        }
        "shelve_server" | "shelve_offload" | "unshelve_server" => {
            shelve_case(c, admin, &id, kind, failing, case).await;
        }
        other => panic!("saga kind {other} has no case here: add one"),
    }
    c.svc.set_failpoint(None);
    delete_and_check(c, admin, &id, case).await;
}

/// The images named `name`, as an admin lists them.
async fn images_named(c: &Cloud, admin: &str, name: &str) -> Vec<Value> {
    let (_, _, imgs) = c
        .req(
            Method::GET,
            format!("{}/v2/images?name={name}", c.glance),
            admin,
            None,
        )
        .await;
    imgs["images"].as_array().cloned().unwrap_or_default()
}

/// The shelve sagas' cases of [`saga_case`]: a failed shelve leaves the
/// server running with no image; a failed offload leaves it SHELVED; a
/// failed unshelve leaves it offloaded with no claim and no guest.
async fn shelve_case(c: &Cloud, admin: &str, id: &str, kind: &str, failing: bool, case: &str) {
    let shelved_name = format!("{case}-shelved");
    let act = |body: Value| async move {
        let path = format!("/servers/{id}/action");
        let (st, v) = c.nova(Method::POST, &path, admin, Some(body)).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{case}: {v}");
    };
    let settled = |want: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = c.wait_status(admin, id, want).await;
            if s["OS-EXT-STS:task_state"].is_null() {
                return s;
            }
            assert!(Instant::now() < deadline, "{case}: task stuck: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    act(json!({"shelve": null})).await;
    match (kind, failing) {
        ("shelve_server", true) => {
            settled("ACTIVE").await;
            assert!(
                images_named(c, admin, &shelved_name).await.is_empty(),
                "{case}"
            );
            let e = last_event(c, admin, id, "shelve").await;
            assert_eq!(e["result"], "Error", "{case}: {e}");
            return;
        }
        ("shelve_offload", true) => {
            let s = settled("SHELVED").await;
            assert!(!s["OS-EXT-SRV-ATTR:host"].is_null(), "{case}: {s}");
            return;
        }
        _ => {}
    }
    let s = settled("SHELVED_OFFLOADED").await;
    assert!(s["OS-EXT-SRV-ATTR:host"].is_null(), "{case}: {s}");
    assert_eq!(c.claims_of(id).await, 0, "{case}: claim kept");
    assert!(c.driver.guest(id).is_none(), "{case}: guest kept");
    let imgs = images_named(c, admin, &shelved_name).await;
    assert_eq!(imgs.len(), 1, "{case}: {imgs:?}");
    assert_eq!(imgs[0]["status"], "active", "{case}");
    if kind != "unshelve_server" {
        return;
    }
    act(json!({"unshelve": null})).await;
    if failing {
        settled("SHELVED_OFFLOADED").await;
        assert_eq!(c.claims_of(id).await, 0, "{case}: claim left");
        assert!(c.driver.guest(id).is_none(), "{case}: guest left");
        let e = last_event(c, admin, id, "unshelve").await;
        assert_eq!(e["result"], "Error", "{case}: {e}");
    } else {
        settled("ACTIVE").await;
        assert_eq!(c.claims_of(id).await, 1, "{case}: claims");
        assert!(c.driver.guest(id).is_some(), "{case}: no guest");
        // The shelved image goes once the server is ACTIVE (after it, as
        // Nova deletes it): wait for that, up to ten seconds.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !images_named(c, admin, &shelved_name).await.is_empty() {
            assert!(Instant::now() < deadline, "{case}: image kept");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn delete_and_check(c: &Cloud, admin: &str, id: &str, case: &str) {
    let (st, v) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), admin, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{case}: {v}");
    c.wait_status(admin, id, "GONE").await;
    assert!(
        c.ports_of(admin, id).await.is_empty(),
        "{case}: port leaked"
    );
    assert_eq!(c.claims_of(id).await, 0, "{case}: claim leaked");
    assert!(c.driver.guest(id).is_none(), "{case}: guest leaked");
}

/// Concurrent server-group creates of one project never pass its
/// `server_groups` quota together: the count and the insert are one step
/// under the project's quota lock.
#[tokio::test]
async fn concurrent_server_group_creates_never_exceed_the_quota() {
    let c = start("sg-quotarace", |cfg| cfg.compute.quota_server_groups = 3).await;
    let demo = c.token("demo", "demo").await;
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (http, tok) = (c.http.clone(), demo.clone());
        let url = format!("{}/v2.1/os-server-groups", c.compute);
        racing.spawn(async move {
            let body = json!({"server_group": {"name": format!("g{i}"), "policies": ["affinity"]}});
            let r = http
                .post(url)
                .header("x-auth-token", tok)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let results = racing.join_all().await;
    let created = results.iter().filter(|(s, _)| s.is_success()).count();
    for (s, v) in &results {
        assert!(s.is_success() || *s == StatusCode::FORBIDDEN, "{s} {v}");
    }
    assert_eq!(created, 3, "{results:?}");
    let listed = c.ok(Method::GET, "/os-server-groups", &demo, None).await;
    assert_eq!(listed["server_groups"].as_array().unwrap().len(), 3);
    c.agent.stop();
}

/// Concurrent key pair imports of one user never pass the `key_pairs`
/// quota together.
#[tokio::test]
async fn concurrent_key_pair_imports_never_exceed_the_quota() {
    let c = start("kp-quotarace", |cfg| cfg.compute.quota_key_pairs = 3).await;
    let demo = c.token("demo", "demo").await;
    let first = c
        .ok(
            Method::POST,
            "/os-keypairs",
            &demo,
            Some(json!({"keypair": {"name": "generated"}})),
        )
        .await;
    let public = first["keypair"]["public_key"].as_str().unwrap().to_owned();
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (http, tok, public) = (c.http.clone(), demo.clone(), public.clone());
        let url = format!("{}/v2.1/os-keypairs", c.compute);
        racing.spawn(async move {
            let body = json!({"keypair": {"name": format!("k{i}"), "public_key": public}});
            let r = http
                .post(url)
                .header("x-auth-token", tok)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let results = racing.join_all().await;
    for (s, v) in &results {
        assert!(s.is_success() || *s == StatusCode::FORBIDDEN, "{s} {v}");
    }
    let created = results.iter().filter(|(s, _)| s.is_success()).count();
    assert_eq!(
        created, 2,
        "one of three was taken by the generated key: {results:?}"
    );
    let listed = c.ok(Method::GET, "/os-keypairs", &demo, None).await;
    assert_eq!(listed["keypairs"].as_array().unwrap().len(), 3);
    c.agent.stop();
}

/// Concurrent boots into one server group never pass its member quota
/// together, and every server the group lists exists: the members are
/// written with the instances, in the boot's transaction.
#[tokio::test]
async fn concurrent_boots_into_a_group_never_exceed_its_member_quota() {
    let c = start("group-race", |cfg| {
        cfg.compute.quota_server_group_members = 2
    })
    .await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let group = c
        .ok(
            Method::POST,
            "/os-server-groups",
            &demo,
            Some(json!({"server_group": {"name": "g", "policies": ["anti-affinity"]}})),
        )
        .await;
    let gid = group["server_group"]["id"].as_str().unwrap().to_owned();
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (http, tok) = (c.http.clone(), demo.clone());
        let url = format!("{}/v2.1/servers", c.compute);
        let body = json!({"server": {"name": format!("m{i}"), "imageRef": image, "flavorRef": "1",
            "networks": [{"uuid": net}]}, "os:scheduler_hints": {"group": gid}});
        racing.spawn(async move {
            let r = http
                .post(url)
                .header("x-auth-token", tok)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let results = racing.join_all().await;
    for (s, v) in &results {
        assert!(
            *s == StatusCode::ACCEPTED || *s == StatusCode::FORBIDDEN,
            "{s} {v}"
        );
    }
    let accepted = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 2, "{results:?}");
    let shown = c
        .ok(
            Method::GET,
            &format!("/os-server-groups/{gid}"),
            &demo,
            None,
        )
        .await;
    let members = shown["server_group"]["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 2, "{shown}");
    for m in members {
        let (st, _) = c
            .nova(
                Method::GET,
                &format!("/servers/{}", m.as_str().unwrap()),
                &demo,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    c.agent.stop();
}
