//! Regressions of the network service's hardening issue: concurrent
//! deletes, quotas under concurrency, policy defaults and overrides, L3
//! agent scheduling, typed bodies. The service runs on a one-connection
//! SQLite pool, so a code path that waits for a second connection while
//! holding one fails at once instead of only under load; the concurrency
//! tests run on the service's own pool as well.

mod common;

use common::{error_type, one_connection_db, serve_network, Cloud};
use ferrostack_core::config::Config;
use ferrostack_db::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The pool a test's network service runs on.
#[derive(Clone, Copy, Debug)]
enum Pool {
    /// One connection: a nested acquire fails at once.
    One,
    /// The service's own pool (`Db::connect`: four SQLite connections), so
    /// writers really run concurrently.
    Service,
}

async fn start(name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    start_on(Pool::One, name, tune).await
}

async fn start_on(pool: Pool, name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("network-hard-{name}-{pool:?}"), tune).await;
    let db = match pool {
        Pool::One => one_connection_db(&kit.dir).await,
        Pool::Service => Db::connect(&format!(
            "sqlite://{}/network.sqlite?mode=rwc",
            kit.dir.display()
        ))
        .await
        .unwrap(),
    };
    serve_network(kit, db).await
}

/// Issue 11.1: fifty ports deleted at once all answer 204 quickly, and an
/// admin's list of networks meanwhile answers promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_port_deletes_neither_deadlock_nor_block_others() {
    for pool in [Pool::One, Pool::Service] {
        deletes_on(pool).await;
    }
}

async fn deletes_on(pool: Pool) {
    let c = std::sync::Arc::new(start_on(pool, "deletes", |_| {}).await);
    let demo = c.kit.token("demo", "demo").await;
    let admin = c.kit.token("admin", "admin").await;
    let net = c.network(&demo, "many-ports").await;
    let mut ports = Vec::new();
    for i in 0..50 {
        let p = c
            .ok(
                Method::POST,
                "/ports",
                &demo,
                Some(json!({"port": {"network_id": net, "name": format!("p{i}")}})),
            )
            .await;
        ports.push(p["port"]["id"].as_str().unwrap().to_owned());
    }
    let started = Instant::now();
    let deletes: Vec<_> = ports
        .into_iter()
        .map(|id| {
            let (c, demo) = (c.clone(), demo.clone());
            tokio::spawn(async move {
                c.call(Method::DELETE, &format!("/ports/{id}"), &demo, None)
                    .await
            })
        })
        .collect();
    let list_started = Instant::now();
    let (st, _) = c.call(Method::GET, "/networks", &admin, None).await;
    let list_took = list_started.elapsed();
    assert_eq!(st, StatusCode::OK);
    for d in deletes {
        let (st, body) = d.await.unwrap();
        assert_eq!(st, StatusCode::NO_CONTENT, "{pool:?}: {body}");
    }
    assert!(
        list_took < Duration::from_secs(5),
        "GET /networks took {list_took:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "50 deletes took {:?}",
        started.elapsed()
    );
    let left = c
        .ok(
            Method::GET,
            &format!("/ports?network_id={net}"),
            &demo,
            None,
        )
        .await;
    let user_ports = left["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["device_owner"] == "")
        .count();
    assert_eq!(user_ports, 0);
}

/// Issue 11.2: for every quota-checked resource, 24 concurrent creators
/// of one project end with exactly the quota; every refused one got
/// Neutron's 409 OverQuota.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_hold_under_concurrent_creates() {
    for pool in [Pool::One, Pool::Service] {
        quotas_on(pool).await;
    }
}

async fn quotas_on(pool: Pool) {
    let c = std::sync::Arc::new(
        start_on(pool, "quota", |cfg: &mut Config| {
            cfg.network.quota_port = 10;
            cfg.network.quota_network = 4;
            cfg.network.quota_subnet = 3;
            cfg.network.quota_security_group = 3;
            cfg.network.quota_security_group_rule = 12;
            cfg.network.quota_router = 3;
            cfg.network.quota_floatingip = 3;
        })
        .await,
    );
    let admin = c.kit.token("admin", "admin").await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.kit.project_of(&demo).await;
    let net = c.network(&demo, "quota-net").await;
    let subnet_net = net.clone();
    let ext = c
        .ok(
            Method::POST,
            "/networks",
            &admin,
            Some(json!({"network": {"name": "ext", "router:external": true}})),
        )
        .await["network"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok(
        Method::POST,
        "/subnets",
        &admin,
        Some(json!({"subnet": {"network_id": ext, "ip_version": 4, "cidr": "172.24.4.0/24"}})),
    )
    .await;
    let sg = c
        .ok(
            Method::POST,
            "/security-groups",
            &demo,
            Some(json!({"security_group": {"name": "rules"}})),
        )
        .await["security_group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // (collection, the i-th create's body, quota): what the project ends with.
    type Body = Box<dyn Fn(usize) -> Value + Send + Sync>;
    let cases: Vec<(&str, &str, Body, i64)> = vec![
        (
            "ports",
            "port",
            Box::new(move |_| json!({"network_id": net})),
            10,
        ),
        (
            "networks",
            "network",
            Box::new(|i| json!({"name": format!("n{i}")})),
            4,
        ),
        (
            "subnets",
            "subnet",
            Box::new(
                move |i| json!({"network_id": subnet_net, "ip_version": 4, "cidr": format!("10.10.{i}.0/24")}),
            ),
            3,
        ),
        (
            "security-groups",
            "security_group",
            Box::new(|i| json!({"name": format!("sg{i}")})),
            3,
        ),
        (
            "security-group-rules",
            "security_group_rule",
            Box::new(move |i| {
                json!({"security_group_id": sg, "direction": "ingress",
                "protocol": "tcp", "port_range_min": 1000 + i, "port_range_max": 1000 + i})
            }),
            12,
        ),
        (
            "routers",
            "router",
            Box::new(|i| json!({"name": format!("r{i}")})),
            3,
        ),
        (
            "floatingips",
            "floatingip",
            Box::new(move |_| json!({"floating_network_id": ext})),
            3,
        ),
    ];
    for (path, singular, body, limit) in cases {
        let body = std::sync::Arc::new(body);
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let (c, demo, body) = (c.clone(), demo.clone(), body.clone());
                tokio::spawn(async move {
                    let body = json!({ singular: body(i) });
                    c.call(Method::POST, &format!("/{path}"), &demo, Some(body))
                        .await
                })
            })
            .collect();
        for t in tasks {
            let (st, v) = t.await.unwrap();
            match st {
                StatusCode::CREATED => {}
                StatusCode::CONFLICT => assert_eq!(error_type(&v), "OverQuota", "{path}: {v}"),
                other => panic!("{path}: {other} {v}"),
            }
        }
        let details = c
            .ok(
                Method::GET,
                &format!("/quotas/{project}/details"),
                &demo,
                None,
            )
            .await;
        let used = details["quota"][singular]["used"].as_i64().unwrap();
        assert_eq!(used, limit, "{pool:?} {path}: {used} of quota {limit}");
    }
}

/// Issue 11.4: the seed's `neutron l3-agent-router-add AGENT router_admin`
/// on a router the agent already hosts succeeds, as in Neutron; another L3
/// agent still cannot take a legacy router that is hosted.
#[tokio::test]
async fn l3_agent_router_add_of_a_hosted_router_succeeds() {
    let c = start("l3add", |_| {}).await;
    let admin = c.kit.token("admin", "admin").await;
    let mut agents = Vec::new();
    for host in ["network1", "network2"] {
        let state = json!({"agent_state": {"agent_type": "L3 agent", "binary": "ferrostack-l3-agent",
            "host": host, "topic": "l3_agent", "configurations": {}, "start_flag": true}});
        let id = c
            .kit
            .bus
            .call(
                ferrostack_network::PLUGIN_TOPIC,
                ferrostack_bus::RpcMessage {
                    method: "report_state".into(),
                    args: state,
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        agents.push(id.as_str().unwrap().to_owned());
    }
    let router = c
        .ok(
            Method::POST,
            "/routers",
            &admin,
            Some(json!({"router": {"name": "router_admin"}})),
        )
        .await;
    let rid = router["router"]["id"].as_str().unwrap().to_owned();
    let hosting = c
        .ok(
            Method::GET,
            &format!("/routers/{rid}/l3-agents"),
            &admin,
            None,
        )
        .await;
    let host_agent = hosting["agents"][0]["id"].as_str().unwrap().to_owned();
    let other = agents.iter().find(|a| **a != host_agent).unwrap();

    let (st, v) = c
        .call(
            Method::POST,
            &format!("/agents/{host_agent}/l3-routers"),
            &admin,
            Some(json!({"router_id": rid})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let hosting = c
        .ok(
            Method::GET,
            &format!("/routers/{rid}/l3-agents"),
            &admin,
            None,
        )
        .await;
    assert_eq!(hosting["agents"].as_array().unwrap().len(), 1);

    let (st, v) = c
        .call(
            Method::POST,
            &format!("/agents/{other}/l3-routers"),
            &admin,
            Some(json!({"router_id": rid})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(error_type(&v), "RouterHostedByL3Agent");
}

impl Cloud {
    /// A user of project `demo` holding only `role` there (password
    /// `admin_pass`, as the testkit's tokens expect); its token.
    async fn user_with_only(&self, name: &str, role: &str) -> String {
        let admin = self.kit.token("admin", "admin").await;
        let identity = &self.kit.identity_url;
        let http = &self.http;
        let user: Value = http
            .post(format!("{identity}/v3/users"))
            .header("x-auth-token", &admin)
            .json(
                &json!({"user": {"name": name, "password": "admin_pass", "domain_id": "default"}}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let roles: Value = http
            .get(format!("{identity}/v3/roles?name={role}"))
            .header("x-auth-token", &admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let demo = self
            .kit
            .project_of(&self.kit.token("demo", "demo").await)
            .await;
        let r = http
            .put(format!(
                "{identity}/v3/projects/{demo}/users/{}/roles/{}",
                user["user"]["id"].as_str().unwrap(),
                roles["roles"][0]["id"].as_str().unwrap()
            ))
            .header("x-auth-token", &admin)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "grant {role}: {}", r.status());
        self.kit.token(name, "demo").await
    }
}

/// Issue 11.3: a project reader reads its project's resources and creates
/// nothing; a member creates.
#[tokio::test]
async fn readers_read_and_members_create() {
    let c = start("policy", |_| {}).await;
    let demo = c.kit.token("demo", "demo").await;
    let reader = c.user_with_only("auditor", "reader").await;
    let net = c.network(&demo, "members-net").await;
    let port = c
        .ok(
            Method::POST,
            "/ports",
            &demo,
            Some(json!({"port": {"network_id": net}})),
        )
        .await["port"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let router = c
        .ok(
            Method::POST,
            "/routers",
            &demo,
            Some(json!({"router": {"name": "r"}})),
        )
        .await["router"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = c
        .ok(
            Method::POST,
            "/security-groups",
            &demo,
            Some(json!({"security_group": {"name": "web"}})),
        )
        .await["security_group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (path, body) in [
        ("/networks", json!({"network": {"name": "nope"}})),
        ("/ports", json!({"port": {"network_id": net}})),
        ("/routers", json!({"router": {"name": "nope"}})),
        (
            "/security-groups",
            json!({"security_group": {"name": "nope"}}),
        ),
        (
            "/subnets",
            json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.77.0.0/24"}}),
        ),
    ] {
        let (st, v) = c.call(Method::POST, path, &reader, Some(body)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "reader POST {path}: {v}");
        assert_eq!(error_type(&v), "PolicyNotAuthorized", "{v}");
    }
    let (st, _) = c
        .call(
            Method::PUT,
            &format!("/networks/{net}"),
            &reader,
            Some(json!({"network": {"name": "renamed"}})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = c
        .call(Method::DELETE, &format!("/ports/{port}"), &reader, None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    for (collection, plural, id) in [
        ("networks", "networks", &net),
        ("ports", "ports", &port),
        ("routers", "routers", &router),
        ("security-groups", "security_groups", &group),
    ] {
        let listed = c
            .ok(Method::GET, &format!("/{collection}"), &reader, None)
            .await;
        assert!(
            listed[plural]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["id"] == id.as_str()),
            "reader lists {collection}: {listed}"
        );
        c.ok(Method::GET, &format!("/{collection}/{id}"), &reader, None)
            .await;
    }
    // Admin-only attributes stay hidden from project users.
    let shown = c
        .ok(Method::GET, &format!("/networks/{net}"), &reader, None)
        .await;
    assert!(shown["network"].get("provider:network_type").is_none());
}

/// Issue 11.3: an operator's policy file, loaded at start, overrides the
/// defaults: here readers may create networks and members may not create
/// routers.
#[tokio::test]
async fn operator_policy_file_overrides_defaults() {
    let dir =
        std::env::temp_dir().join(format!("ferrostack-test-{}-netpolicy", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(
        &file,
        "# operator overrides\n\
         \"create_network\": \"role:reader and project_id:%(project_id)s\"\n\
         \"create_router\": \"rule:admin_only\"\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let c = start("policy-file", move |cfg: &mut Config| {
        cfg.network.policy_file = path.clone()
    })
    .await;
    let demo = c.kit.token("demo", "demo").await;
    let admin = c.kit.token("admin", "admin").await;
    let reader = c.user_with_only("auditor", "reader").await;
    c.ok(
        Method::POST,
        "/networks",
        &reader,
        Some(json!({"network": {"name": "by-reader"}})),
    )
    .await;
    let (st, v) = c
        .call(
            Method::POST,
            "/routers",
            &demo,
            Some(json!({"router": {"name": "r"}})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(v["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("create_router"));
    c.ok(
        Method::POST,
        "/routers",
        &admin,
        Some(json!({"router": {"name": "r"}})),
    )
    .await;
}

/// Issue 11.3: a policy file that does not parse stops the service from
/// starting, with an error naming the file and the rule.
#[tokio::test]
async fn unparsable_policy_file_refuses_to_start() {
    let kit = ferrostack_testkit::start("network-hard-badpolicy", |_| {}).await;
    let file = kit.dir.join("policy.yaml");
    std::fs::write(&file, "\"create_network\": \"role:member and (\"\n").unwrap();
    let mut config = kit.config.clone();
    config.network.policy_file = file.display().to_string();
    let db = one_connection_db(&kit.dir).await;
    db.migrate(ferrostack_network::store::MIGRATIONS)
        .await
        .unwrap();
    let err = ferrostack_network::NetworkService::new(db, config, kit.bus.clone())
        .await
        .err()
        .expect("a broken policy file must stop the service");
    let message = err.to_string();
    assert!(
        message.contains("policy.yaml") && message.contains("create_network"),
        "{message}"
    );
}

/// Issue 11.5: bodies with a fixed shape are typed; a wrong one is a 400
/// naming the field.
#[tokio::test]
async fn typed_bodies_name_the_wrong_field() {
    let c = start("typed", |_| {}).await;
    let admin = c.kit.token("admin", "admin").await;
    let net = c.network(&admin, "typed-net").await;
    let router = c
        .ok(
            Method::POST,
            "/routers",
            &admin,
            Some(json!({"router": {"name": "r"}})),
        )
        .await["router"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let project = c.kit.project_of(&admin).await;
    let agent = json!({"agent_state": {"agent_type": "L3 agent", "binary": "ferrostack-l3-agent",
        "host": "network1", "topic": "l3_agent", "configurations": {}, "start_flag": true}});
    let agent = c
        .kit
        .bus
        .call(
            ferrostack_network::PLUGIN_TOPIC,
            ferrostack_bus::RpcMessage {
                method: "report_state".into(),
                args: agent,
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let agent = agent.as_str().unwrap();
    for (method, path, body, field) in [
        (
            Method::PUT,
            format!("/routers/{router}/add_router_interface"),
            json!({"subnet_id": 7}),
            "subnet_id",
        ),
        (
            Method::PUT,
            format!("/routers/{router}/remove_router_interface"),
            json!({"port_id": []}),
            "port_id",
        ),
        (
            Method::PUT,
            format!("/networks/{net}/tags"),
            json!({"tags": ["a", 1]}),
            "tags[1]",
        ),
        (
            Method::PUT,
            format!("/quotas/{project}"),
            json!({"quota": 5}),
            "quota",
        ),
        (
            Method::POST,
            format!("/agents/{agent}/l3-routers"),
            json!({"router_id": false}),
            "router_id",
        ),
        (
            Method::POST,
            format!("/agents/{agent}/dhcp-networks"),
            json!({"network_id": 1}),
            "network_id",
        ),
    ] {
        let (st, v) = c.call(method.clone(), &path, &admin, Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{method} {path}: {v}");
        let message = v["NeutronError"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("'{field}'")),
            "{method} {path}: {message}"
        );
    }
}

/// Two writers of one port at once (as tempest's update races the L3
/// agent's status report): every update answers 200 — one that lost the
/// race is applied again on the fresh row, not refused with a 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_port_all_succeed() {
    let c = std::sync::Arc::new(start_on(Pool::Service, "racing-updates", |_| {}).await);
    let demo = c.kit.token("demo", "demo").await;
    let admin = c.kit.token("admin", "admin").await;
    let net = c.network(&demo, "racing").await;
    let port = c
        .ok(
            Method::POST,
            "/ports",
            &demo,
            Some(json!({"port": {"network_id": net}})),
        )
        .await["port"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let writers: Vec<_> = (0..40)
        .map(|i| {
            let (c, port) = (c.clone(), port.clone());
            let tok = if i % 2 == 0 {
                demo.clone()
            } else {
                admin.clone()
            };
            tokio::spawn(async move {
                let body =
                    json!({"port": {"name": format!("w{i}"), "description": format!("d{i}")}});
                c.call(Method::PUT, &format!("/ports/{port}"), &tok, Some(body))
                    .await
            })
        })
        .collect();
    for w in writers {
        let (st, v) = w.await.unwrap();
        assert_eq!(st, StatusCode::OK, "{v}");
    }
}
