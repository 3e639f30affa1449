//! The networking API end to end, in-process with identity: the seed's
//! section 5, Neutron's error answers, isolation between projects, agents
//! over the bus, quotas, listing, tags, discovery.
//!
//! Each walk covers one resource or concern and starts from a fresh cloud,
//! so it sets up what it needs. Its named test runs it on SQLite with a
//! pool of one connection: any code path that holds a connection while
//! asking the pool for another fails there at once (2 s) instead of
//! deadlocking only under load. `every_walk_on_every_database` runs every
//! walk on each reachable engine (SQLite, MariaDB, PostgreSQL).

mod common;
#[path = "api/lists.rs"]
mod lists;

use common::{error_type, serve_network, Cloud};

use ferrostack_core::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;

/// One walk through the API, on a cloud of its own.
type Walk = for<'a> fn(&'a Cloud) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Every walk, by the name its test and its databases carry.
const WALKS: &[(&str, Walk)] = &[
    ("networks_and_subnets", |c| {
        Box::pin(networks_and_subnets(c))
    }),
    ("ports", |c| Box::pin(ports(c))),
    ("routers", |c| Box::pin(routers(c))),
    ("floating_ips", |c| Box::pin(floating_ips(c))),
    ("project_isolation", |c| Box::pin(project_isolation(c))),
    ("security_groups", |c| Box::pin(security_groups(c))),
    ("quotas", |c| Box::pin(quotas(c))),
    ("listing", |c| Box::pin(listing(c))),
    ("agents", |c| Box::pin(agents(c))),
    ("tags", |c| Box::pin(tags(c))),
    ("discovery", |c| Box::pin(discovery(c))),
    ("paged_lists", |c| Box::pin(lists::paged_lists(c))),
];

/// The network service on `db` with a network quota of 5.
async fn start(db: ferrostack_db::Db, name: &str) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("network-{name}"), |cfg: &mut Config| {
        cfg.network.quota_network = 5
    })
    .await;
    serve_network(kit, db).await
}

/// `walk` on a fresh cloud whose network database is a one-connection
/// SQLite pool.
async fn on_one_connection(name: &str) {
    let (_, walk) = WALKS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a known walk");
    let dir = std::env::temp_dir().join(format!(
        "ferrostack-test-{}-net1conn-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = common::one_connection_db(&dir).await;
    let c = start(db, &format!("{name}-1conn")).await;
    walk(&c).await;
}

#[tokio::test]
async fn every_walk_on_every_database() {
    for (name, walk) in WALKS {
        for (i, db) in ferrostack_db::testing::test_databases(&format!("network_{name}"))
            .await
            .into_iter()
            .enumerate()
        {
            eprintln!("network API {name} against {:?}", db.backend);
            let c = start(db, &format!("{name}-db{i}")).await;
            walk(&c).await;
        }
    }
}

#[tokio::test]
async fn networks_and_subnets_api() {
    on_one_connection("networks_and_subnets").await;
}

#[tokio::test]
async fn ports_api() {
    on_one_connection("ports").await;
}

#[tokio::test]
async fn routers_api() {
    on_one_connection("routers").await;
}

#[tokio::test]
async fn floating_ips_api() {
    on_one_connection("floating_ips").await;
}

#[tokio::test]
async fn project_isolation_api() {
    on_one_connection("project_isolation").await;
}

#[tokio::test]
async fn security_groups_api() {
    on_one_connection("security_groups").await;
}

#[tokio::test]
async fn quotas_api() {
    on_one_connection("quotas").await;
}

#[tokio::test]
async fn listing_api() {
    on_one_connection("listing").await;
}

#[tokio::test]
async fn agents_api() {
    on_one_connection("agents").await;
}

#[tokio::test]
async fn tags_api() {
    on_one_connection("tags").await;
}

#[tokio::test]
async fn discovery_api() {
    on_one_connection("discovery").await;
}

#[tokio::test]
async fn paged_lists_api() {
    on_one_connection("paged_lists").await;
}

/// Admin's `net_admin` with the seed's 50.50.1.0/24 subnet, as created.
struct AdminNetwork {
    admin: String,
    net: Value,
    net_id: String,
    sub: Value,
}

async fn admin_network(c: &Cloud) -> AdminNetwork {
    let admin = c.token("admin", "admin").await;
    let net = c
        .ok(
            Method::POST,
            "/networks",
            &admin,
            Some(json!({"network": {"name": "net_admin"}})),
        )
        .await["network"]
        .clone();
    let net_id = net["id"].as_str().unwrap().to_owned();
    let sub = c
        .ok(
            Method::POST,
            "/subnets",
            &admin,
            Some(
                json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "50.50.1.0/24"}}),
            ),
        )
        .await["subnet"]
        .clone();
    AdminNetwork {
        admin,
        net,
        net_id,
        sub,
    }
}

/// Section 5 of the seed: `net_admin` behind `router_admin`, whose gateway
/// is on the shared flat external network `net_external` (pool .110-.130).
struct Topology {
    net: AdminNetwork,
    rid: String,
    /// The answer to `add_router_interface`.
    iface: Value,
    ext_id: String,
    /// The router as setting its gateway answered it.
    gateway: Value,
}

async fn topology(c: &Cloud) -> Topology {
    let net = admin_network(c).await;
    let admin = &net.admin;
    let router = c
        .ok(
            Method::POST,
            "/routers",
            admin,
            Some(json!({"router": {"name": "router_admin"}})),
        )
        .await["router"]
        .clone();
    let rid = router["id"].as_str().unwrap().to_owned();
    let iface = c
        .ok(
            Method::PUT,
            &format!("/routers/{rid}/add_router_interface"),
            admin,
            Some(json!({"subnet_id": net.sub["id"]})),
        )
        .await;
    let ext = c
        .ok(
            Method::POST,
            "/networks",
            admin,
            Some(
                json!({"network": {"name": "net_external", "router:external": true, "shared": true,
            "provider:network_type": "flat", "provider:physical_network": "physnet1"}}),
            ),
        )
        .await["network"]
        .clone();
    let ext_id = ext["id"].as_str().unwrap().to_owned();
    c.ok(
        Method::POST,
        "/subnets",
        admin,
        Some(
            json!({"subnet": {"network_id": ext_id, "ip_version": 4, "cidr": "192.168.100.0/24",
            "enable_dhcp": false, "gateway_ip": "192.168.100.1",
            "allocation_pools": [{"start": "192.168.100.110", "end": "192.168.100.130"}]}}),
        ),
    )
    .await;
    let gateway = c
        .ok(
            Method::PUT,
            &format!("/routers/{rid}"),
            admin,
            Some(json!({"router": {"external_gateway_info": {"network_id": ext_id}}})),
        )
        .await;
    Topology {
        net,
        rid,
        iface,
        ext_id,
        gateway,
    }
}

/// An admin port on `network`, as created.
async fn port_on(c: &Cloud, admin: &str, network: &str) -> Value {
    c.ok(
        Method::POST,
        "/ports",
        admin,
        Some(json!({"port": {"network_id": network}})),
    )
    .await["port"]
        .clone()
}

/// Tenant networks take tunnel ids from 1:1000, and a subnet's gateway and
/// pool default as Neutron's; bad subnets are refused in Neutron's words; a
/// network in use is not deleted, and a deleted one's segment is reused.
async fn networks_and_subnets(c: &Cloud) {
    let t = topology(c).await;
    let AdminNetwork {
        admin,
        net,
        net_id,
        sub,
        ..
    } = &t.net;
    assert_eq!(
        net["provider:segmentation_id"], 1,
        "first tunnel id of 1:1000"
    );
    assert_eq!(sub["gateway_ip"], "50.50.1.1");
    assert_eq!(
        sub["allocation_pools"],
        json!([{"start": "50.50.1.2", "end": "50.50.1.254"}])
    );

    let (st, v) = c.call(Method::POST, "/subnets", admin, Some(json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "50.50.1.128/25"}}))).await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::BAD_REQUEST, "InvalidInput"),
        "{v}"
    );
    assert!(v["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("overlaps with another subnet"));
    let (st, v) = c
        .call(
            Method::POST,
            "/subnets",
            admin,
            Some(
                json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "60.0.0.0/24",
            "allocation_pools": [{"start": "60.0.1.1", "end": "60.0.1.9"}]}}),
            ),
        )
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::BAD_REQUEST, "OutOfBoundsAllocationPool"),
        "{v}"
    );

    // The router's interface port keeps the network in use.
    let (st, v) = c
        .call(Method::DELETE, &format!("/networks/{net_id}"), admin, None)
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::CONFLICT, "NetworkInUse"),
        "{v}"
    );
    c.ok(
        Method::PUT,
        &format!("/routers/{}/remove_router_interface", t.rid),
        admin,
        Some(json!({"subnet_id": sub["id"]})),
    )
    .await;
    assert_eq!(
        c.call(Method::DELETE, &format!("/networks/{net_id}"), admin, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let again = c
        .ok(
            Method::POST,
            "/networks",
            admin,
            Some(json!({"network": {"name": "again"}})),
        )
        .await;
    assert_eq!(
        again["network"]["provider:segmentation_id"], 1,
        "released tunnel id is reused"
    );
}

/// A port takes the first free address, a fa:16:3e MAC and the default
/// security group; a taken address and an exhausted pool are refused.
async fn ports(c: &Cloud) {
    let AdminNetwork { admin, net_id, .. } = admin_network(c).await;
    let port = port_on(c, &admin, &net_id).await;
    assert_eq!(port["fixed_ips"][0]["ip_address"], "50.50.1.2");
    assert!(port["mac_address"]
        .as_str()
        .unwrap()
        .starts_with("fa:16:3e:"));
    assert_eq!(
        port["security_groups"].as_array().unwrap().len(),
        1,
        "the default group"
    );
    let (st, v) = c
        .call(
            Method::POST,
            "/ports",
            &admin,
            Some(
                json!({"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "50.50.1.2"}]}}),
            ),
        )
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::CONFLICT, "IpAddressAlreadyAllocated"),
        "{v}"
    );

    // Exhausting a small pool.
    let tiny = c
        .ok(
            Method::POST,
            "/networks",
            &admin,
            Some(json!({"network": {"name": "tiny"}})),
        )
        .await["network"]["id"]
        .clone();
    c.ok(
        Method::POST,
        "/subnets",
        &admin,
        Some(json!({"subnet": {"network_id": tiny, "ip_version": 4, "cidr": "10.9.9.0/30"}})),
    )
    .await;
    port_on(c, &admin, tiny.as_str().unwrap()).await;
    let (st, v) = c
        .call(
            Method::POST,
            "/ports",
            &admin,
            Some(json!({"port": {"network_id": tiny}})),
        )
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::CONFLICT, "IpAddressGenerationFailure"),
        "{v}"
    );

    c.ok(
        Method::DELETE,
        &format!("/ports/{}", port["id"].as_str().unwrap()),
        &admin,
        None,
    )
    .await;
}

/// A router's interface and gateway take their subnets' addresses; a
/// router with interfaces is in use until they are removed.
async fn routers(c: &Cloud) {
    let t = topology(c).await;
    let admin = &t.net.admin;
    assert_eq!(t.iface["subnet_id"], t.net.sub["id"]);
    assert_eq!(
        t.gateway["router"]["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
        "192.168.100.110"
    );
    let (st, v) = c
        .call(Method::DELETE, &format!("/routers/{}", t.rid), admin, None)
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::CONFLICT, "RouterInUse"),
        "{v}"
    );
    c.ok(
        Method::PUT,
        &format!("/routers/{}/remove_router_interface", t.rid),
        admin,
        Some(json!({"subnet_id": t.net.sub["id"]})),
    )
    .await;
    assert_eq!(
        c.call(Method::DELETE, &format!("/routers/{}", t.rid), admin, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

/// Floating IPs take the external pool's addresses in order (another
/// project's too, on the shared network), associate with a port through
/// the router, and a released address is handed out again.
async fn floating_ips(c: &Cloud) {
    let t = topology(c).await;
    let (admin, ext_id) = (&t.net.admin, &t.ext_id);
    let demo = c.token("demo", "demo").await;
    let fip_on_external = json!({"floatingip": {"floating_network_id": ext_id}});
    let f1 = c
        .ok(
            Method::POST,
            "/floatingips",
            admin,
            Some(fip_on_external.clone()),
        )
        .await;
    let f2 = c
        .ok(
            Method::POST,
            "/floatingips",
            admin,
            Some(fip_on_external.clone()),
        )
        .await;
    assert_eq!(f1["floatingip"]["floating_ip_address"], "192.168.100.111");
    assert_eq!(f2["floatingip"]["floating_ip_address"], "192.168.100.112");

    // A port, then its floating IP association through the router.
    let port = port_on(c, admin, &t.net.net_id).await;
    let fid = f1["floatingip"]["id"].as_str().unwrap();
    let f = c
        .ok(
            Method::PUT,
            &format!("/floatingips/{fid}"),
            admin,
            Some(json!({"floatingip": {"port_id": port["id"]}})),
        )
        .await;
    assert_eq!(f["floatingip"]["router_id"], t.rid.as_str());
    assert_eq!(f["floatingip"]["fixed_ip_address"], "50.50.1.2");

    let (st, v) = c
        .call(
            Method::POST,
            "/floatingips",
            &demo,
            Some(fip_on_external.clone()),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "demo uses the shared external network: {v}"
    );
    assert_eq!(v["floatingip"]["floating_ip_address"], "192.168.100.113");

    c.ok(
        Method::PUT,
        &format!("/floatingips/{fid}"),
        admin,
        Some(json!({"floatingip": {"port_id": null}})),
    )
    .await;
    // A released address is handed out again (first free, as the seed shows).
    let f3 = c
        .ok(
            Method::POST,
            "/floatingips",
            admin,
            Some(fip_on_external.clone()),
        )
        .await;
    let f3_ip = f3["floatingip"]["floating_ip_address"].clone();
    c.ok(
        Method::DELETE,
        &format!("/floatingips/{}", f3["floatingip"]["id"].as_str().unwrap()),
        admin,
        None,
    )
    .await;
    let f4 = c
        .ok(Method::POST, "/floatingips", admin, Some(fip_on_external))
        .await;
    assert_eq!(f4["floatingip"]["floating_ip_address"], f3_ip);
}

/// A member sees the shared external network and not admin's, no provider
/// attributes and no other project's port, and may not pick a network type.
async fn project_isolation(c: &Cloud) {
    let t = topology(c).await;
    let admin = &t.net.admin;
    let demo = c.token("demo", "demo").await;
    let port = port_on(c, admin, &t.net.net_id).await;
    let (_, v) = c.call(Method::GET, "/networks", &demo, None).await;
    let names: Vec<&str> = v["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"net_external") && !names.contains(&"net_admin"),
        "{names:?}"
    );
    assert!(
        v["networks"][0].get("provider:network_type").is_none(),
        "provider attributes are admin-only"
    );
    let (st, _) = c
        .call(
            Method::GET,
            &format!("/ports/{}", port["id"].as_str().unwrap()),
            &demo,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = c
        .call(
            Method::POST,
            "/networks",
            &demo,
            Some(json!({"network": {"name": "x", "provider:network_type": "vlan"}})),
        )
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::FORBIDDEN, "PolicyNotAuthorized"),
        "{v}"
    );
}

/// The default group's four rules; a duplicate rule is refused.
async fn security_groups(c: &Cloud) {
    let demo = c.token("demo", "demo").await;
    let (_, v) = c
        .call(Method::GET, "/security-groups?name=default", &demo, None)
        .await;
    let sg = &v["security_groups"][0];
    assert_eq!(sg["security_group_rules"].as_array().unwrap().len(), 4);
    let rule = json!({"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress", "protocol": "icmp"}});
    assert_eq!(
        c.call(
            Method::POST,
            "/security-group-rules",
            &demo,
            Some(rule.clone())
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (st, v) = c
        .call(Method::POST, "/security-group-rules", &demo, Some(rule))
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::CONFLICT, "SecurityGroupRuleExists")
    );
}

/// Demo's sixth network is over the quota of 5.
async fn quotas(c: &Cloud) {
    let demo = c.token("demo", "demo").await;
    for i in 0..5 {
        c.ok(
            Method::POST,
            "/networks",
            &demo,
            Some(json!({"network": {"name": format!("d{i}")}})),
        )
        .await;
    }
    let (st, v) = c
        .call(
            Method::POST,
            "/networks",
            &demo,
            Some(json!({"network": {"name": "d6"}})),
        )
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::CONFLICT, "OverQuota"),
        "{v}"
    );
}

/// Fields, filters, sorting and pagination of a list.
async fn listing(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    for name in ["net_admin", "net_b", "net_c"] {
        c.ok(
            Method::POST,
            "/networks",
            &admin,
            Some(json!({"network": {"name": name}})),
        )
        .await;
    }
    let (_, v) = c
        .call(
            Method::GET,
            "/networks?fields=id&fields=name&name=net_admin",
            &admin,
            None,
        )
        .await;
    assert_eq!(v["networks"].as_array().unwrap().len(), 1);
    assert_eq!(v["networks"][0].as_object().unwrap().len(), 2);
    let (_, v) = c
        .call(
            Method::GET,
            "/networks?limit=2&sort_key=name&sort_dir=asc",
            &admin,
            None,
        )
        .await;
    assert_eq!(v["networks"].as_array().unwrap().len(), 2);
    assert!(v["networks_links"][0]["href"]
        .as_str()
        .unwrap()
        .contains("marker="));
}

/// An agent's first `report_state` over the bus registers it; its id.
async fn register_agent(c: &Cloud, agent_type: &str, binary: &str, topic: &str) -> Value {
    let state = json!({"agent_state": {"agent_type": agent_type, "binary": binary, "host": "network1",
        "topic": topic, "configurations": {}, "start_flag": true}});
    c.kit
        .bus
        .call(
            ferrostack_network::PLUGIN_TOPIC,
            ferrostack_bus::RpcMessage {
                method: "report_state".into(),
                args: state,
            },
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap()
}

/// Agents register over the bus and show alive; L3 scheduling by hand, DHCP
/// scheduling of new networks; members see no agents.
async fn agents(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let rid = c
        .ok(
            Method::POST,
            "/routers",
            &admin,
            Some(json!({"router": {"name": "router_admin"}})),
        )
        .await["router"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = register_agent(c, "L3 agent", "ferrostack-l3-agent", "l3_agent").await;
    let (_, v) = c.call(Method::GET, "/agents", &admin, None).await;
    assert_eq!(v["agents"][0]["alive"], true);
    assert_eq!(v["agents"][0]["host"], "network1");
    let aid = id.as_str().unwrap();
    let (st, _) = c
        .call(
            Method::POST,
            &format!("/agents/{aid}/l3-routers"),
            &admin,
            Some(json!({"router_id": rid})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, v) = c
        .call(
            Method::GET,
            &format!("/routers/{rid}/l3-agents"),
            &admin,
            None,
        )
        .await;
    assert_eq!(v["agents"][0]["id"], aid);

    // A DHCP agent gets new DHCP-enabled networks automatically.
    let dhcp_id = register_agent(c, "DHCP agent", "ferrostack-dhcp-agent", "dhcp_agent").await;
    let dn = c
        .ok(
            Method::POST,
            "/networks",
            &admin,
            Some(json!({"network": {"name": "with-dhcp"}})),
        )
        .await["network"]["id"]
        .clone();
    c.ok(
        Method::POST,
        "/subnets",
        &admin,
        Some(json!({"subnet": {"network_id": dn, "ip_version": 4, "cidr": "10.77.0.0/24"}})),
    )
    .await;
    let (_, v) = c
        .call(
            Method::GET,
            &format!("/networks/{}/dhcp-agents", dn.as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(v["agents"][0]["id"], dhcp_id);
    let (_, v) = c.call(Method::GET, "/agents", &demo, None).await;
    assert_eq!(v["agents"], json!([]), "members see no agents");
}

/// A resource's tags: replaced as a set (sorted, without duplicates), added
/// and removed one by one, checked, cleared.
async fn tags(c: &Cloud) {
    let demo = c.token("demo", "demo").await;
    let net = c
        .ok(
            Method::POST,
            "/networks",
            &demo,
            Some(json!({"network": {"name": "tagged"}})),
        )
        .await["network"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tags = format!("/networks/{net}/tags");
    let v = c
        .ok(
            Method::PUT,
            &tags,
            &demo,
            Some(json!({"tags": ["b", "a", "b"]})),
        )
        .await;
    assert_eq!(v["tags"], json!(["a", "b"]));
    let (st, _) = c.call(Method::PUT, &format!("{tags}/c"), &demo, None).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        c.call(Method::GET, &format!("{tags}/c"), &demo, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("{tags}/a"), &demo, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::GET, &format!("{tags}/a"), &demo, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let v = c.ok(Method::GET, &tags, &demo, None).await;
    assert_eq!(v["tags"], json!(["b", "c"]));
    let (_, v) = c
        .call(Method::GET, &format!("/networks/{net}"), &demo, None)
        .await;
    assert_eq!(v["network"]["tags"], json!(["b", "c"]));
    let (st, v) = c
        .call(Method::PUT, &tags, &demo, Some(json!({"tags": ["a,b"]})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        c.call(Method::DELETE, &tags, &demo, None).await.0,
        StatusCode::NO_CONTENT
    );
    let v = c.ok(Method::GET, &tags, &demo, None).await;
    assert_eq!(v["tags"], json!([]));
}

/// Versions (public), resources and the extensions this deployment has.
async fn discovery(c: &Cloud) {
    let demo = c.token("demo", "demo").await;
    let v: Value = c
        .http
        .get(format!("{}/", c.net))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["versions"][0]["id"], "v2.0");
    let v = c.ok(Method::GET, "/", &demo, None).await;
    let collections: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["collection"].as_str().unwrap())
        .collect();
    assert!(
        collections.contains(&"security_group_rules"),
        "{collections:?}"
    );
    let v = c.ok(Method::GET, "/extensions", &demo, None).await;
    let aliases: Vec<&str> = v["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    assert!(
        aliases.contains(&"router") && aliases.contains(&"tag"),
        "{aliases:?}"
    );
    let v = c.ok(Method::GET, "/extensions/quotas", &demo, None).await;
    assert_eq!(v["extension"]["alias"], "quotas");
    let (st, v) = c.call(Method::GET, "/extensions/lbaas", &demo, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
}

/// Two writers of one document: the second, working from a stale read, is
/// refused instead of silently undoing the first.
#[tokio::test]
async fn stale_updates_are_refused() {
    use ferrostack_network::store::{self, Kind, Tx};
    for db in ferrostack_db::testing::test_databases("network_rev").await {
        db.migrate(store::MIGRATIONS).await.unwrap();
        let mut tx = Tx::begin(&db);
        tx.insert(
            Kind::Port,
            &json!({"id": "p1", "project_id": "x", "status": "DOWN"}),
        );
        tx.commit().await.unwrap();
        let mut first = store::get(&db, Kind::Port, "p1").await.unwrap().unwrap();
        let mut second = store::get(&db, Kind::Port, "p1").await.unwrap().unwrap();
        first["status"] = json!("ACTIVE");
        let mut tx = Tx::begin(&db);
        tx.update(Kind::Port, &first);
        tx.commit().await.unwrap();
        second["name"] = json!("renamed");
        let mut tx = Tx::begin(&db);
        tx.update(Kind::Port, &second);
        let err = tx.commit().await.unwrap_err();
        assert_eq!(err.status(), StatusCode::CONFLICT);
        let now = store::get(&db, Kind::Port, "p1").await.unwrap().unwrap();
        assert_eq!(now["status"], "ACTIVE");
        assert!(now.get("name").is_none());
    }
}
