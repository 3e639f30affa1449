//! The networking API end to end, in-process with identity, on every
//! reachable database engine: the seed's section 5, Neutron's error answers,
//! isolation between projects, agents over the bus, quotas.

mod common;

use common::{error_type, serve_network, Cloud};

use ferrostack_core::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn start(db: ferrostack_db::Db, name: &str) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("network-{name}"), |cfg: &mut Config| {
        cfg.network.quota_network = 5
    })
    .await;
    serve_network(kit, db).await
}

async fn exercise(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;

    // Section 5 of the seed.
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
    assert_eq!(
        net["provider:segmentation_id"], 1,
        "first tunnel id of 1:1000"
    );
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
    assert_eq!(sub["gateway_ip"], "50.50.1.1");
    assert_eq!(
        sub["allocation_pools"],
        json!([{"start": "50.50.1.2", "end": "50.50.1.254"}])
    );
    let router = c
        .ok(
            Method::POST,
            "/routers",
            &admin,
            Some(json!({"router": {"name": "router_admin"}})),
        )
        .await["router"]
        .clone();
    let rid = router["id"].as_str().unwrap().to_owned();
    let iface = c
        .ok(
            Method::PUT,
            &format!("/routers/{rid}/add_router_interface"),
            &admin,
            Some(json!({"subnet_id": sub["id"]})),
        )
        .await;
    assert_eq!(iface["subnet_id"], sub["id"]);
    let ext = c
        .ok(
            Method::POST,
            "/networks",
            &admin,
            Some(
                json!({"network": {"name": "net_external", "router:external": true, "shared": true,
            "provider:network_type": "flat", "provider:physical_network": "physnet1"}}),
            ),
        )
        .await["network"]
        .clone();
    let ext_id = ext["id"].as_str().unwrap().to_owned();
    let ext_sub = c
        .ok(
            Method::POST,
            "/subnets",
            &admin,
            Some(
                json!({"subnet": {"network_id": ext_id, "ip_version": 4, "cidr": "192.168.100.0/24",
            "enable_dhcp": false, "gateway_ip": "192.168.100.1",
            "allocation_pools": [{"start": "192.168.100.110", "end": "192.168.100.130"}]}}),
            ),
        )
        .await["subnet"]
        .clone();
    let r = c
        .ok(
            Method::PUT,
            &format!("/routers/{rid}"),
            &admin,
            Some(json!({"router": {"external_gateway_info": {"network_id": ext_id}}})),
        )
        .await;
    assert_eq!(
        r["router"]["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
        "192.168.100.110"
    );
    let f1 = c
        .ok(
            Method::POST,
            "/floatingips",
            &admin,
            Some(json!({"floatingip": {"floating_network_id": ext_id}})),
        )
        .await;
    let f2 = c
        .ok(
            Method::POST,
            "/floatingips",
            &admin,
            Some(json!({"floatingip": {"floating_network_id": ext_id}})),
        )
        .await;
    assert_eq!(f1["floatingip"]["floating_ip_address"], "192.168.100.111");
    assert_eq!(f2["floatingip"]["floating_ip_address"], "192.168.100.112");

    // A port, then its floating IP association through the router.
    let port = c
        .ok(
            Method::POST,
            "/ports",
            &admin,
            Some(json!({"port": {"network_id": net_id}})),
        )
        .await["port"]
        .clone();
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
    let fid = f1["floatingip"]["id"].as_str().unwrap();
    let f = c
        .ok(
            Method::PUT,
            &format!("/floatingips/{fid}"),
            &admin,
            Some(json!({"floatingip": {"port_id": port["id"]}})),
        )
        .await;
    assert_eq!(f["floatingip"]["router_id"], rid.as_str());
    assert_eq!(f["floatingip"]["fixed_ip_address"], "50.50.1.2");

    // Neutron's answers to bad input.
    let (st, v) = c.call(Method::POST, "/subnets", &admin, Some(json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "50.50.1.128/25"}}))).await;
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
            &admin,
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
    let (st, v) = c
        .call(Method::DELETE, &format!("/networks/{net_id}"), &admin, None)
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::CONFLICT, "NetworkInUse"),
        "{v}"
    );
    let (st, v) = c
        .call(Method::DELETE, &format!("/routers/{rid}"), &admin, None)
        .await;
    assert_eq!(
        (st, error_type(&v)),
        (StatusCode::CONFLICT, "RouterInUse"),
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
    c.ok(
        Method::POST,
        "/ports",
        &admin,
        Some(json!({"port": {"network_id": tiny}})),
    )
    .await;
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

    // Isolation: demo sees the shared external network, not admin's.
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
    let (st, v) = c
        .call(
            Method::POST,
            "/floatingips",
            &demo,
            Some(json!({"floatingip": {"floating_network_id": ext_id}})),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "demo uses the shared external network: {v}"
    );
    assert_eq!(v["floatingip"]["floating_ip_address"], "192.168.100.113");

    // Security groups: the default group's four rules; duplicates refused.
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

    // Quotas: demo's sixth network is over the quota of 5.
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

    // Fields, filters, pagination.
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

    // Agents register over the bus and show alive; L3 scheduling.
    let agent = json!({"agent_state": {"agent_type": "L3 agent", "binary": "ferrostack-l3-agent", "host": "network1",
        "topic": "l3_agent", "configurations": {}, "start_flag": true}});
    let id = c
        .kit
        .bus
        .call(
            ferrostack_network::PLUGIN_TOPIC,
            ferrostack_bus::RpcMessage {
                method: "report_state".into(),
                args: agent,
            },
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
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
    let dhcp = json!({"agent_state": {"agent_type": "DHCP agent", "binary": "ferrostack-dhcp-agent", "host": "network1",
        "topic": "dhcp_agent", "configurations": {}, "start_flag": true}});
    let dhcp_id = c
        .kit
        .bus
        .call(
            ferrostack_network::PLUGIN_TOPIC,
            ferrostack_bus::RpcMessage {
                method: "report_state".into(),
                args: dhcp,
            },
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
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

    // Tear down in Neutron's order; the segment goes back to the pool.
    c.ok(
        Method::PUT,
        &format!("/floatingips/{fid}"),
        &admin,
        Some(json!({"floatingip": {"port_id": null}})),
    )
    .await;
    c.ok(
        Method::PUT,
        &format!("/routers/{rid}/remove_router_interface"),
        &admin,
        Some(json!({"subnet_id": sub["id"]})),
    )
    .await;
    c.ok(
        Method::DELETE,
        &format!("/ports/{}", port["id"].as_str().unwrap()),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        c.call(Method::DELETE, &format!("/routers/{rid}"), &admin, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("/networks/{net_id}"), &admin, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let again = c
        .ok(
            Method::POST,
            "/networks",
            &admin,
            Some(json!({"network": {"name": "again"}})),
        )
        .await;
    assert_eq!(
        again["network"]["provider:segmentation_id"], 1,
        "released tunnel id is reused"
    );
    // A released address is handed out again (first free, as the seed shows).
    let f3 = c
        .ok(
            Method::POST,
            "/floatingips",
            &admin,
            Some(json!({"floatingip": {"floating_network_id": ext_id}})),
        )
        .await;
    let f3_ip = f3["floatingip"]["floating_ip_address"].clone();
    c.ok(
        Method::DELETE,
        &format!("/floatingips/{}", f3["floatingip"]["id"].as_str().unwrap()),
        &admin,
        None,
    )
    .await;
    let f4 = c
        .ok(
            Method::POST,
            "/floatingips",
            &admin,
            Some(json!({"floatingip": {"floating_network_id": ext_id}})),
        )
        .await;
    assert_eq!(f4["floatingip"]["floating_ip_address"], f3_ip);
    let _ = ext_sub;
}

#[tokio::test]
async fn network_api_on_every_database() {
    for (i, db) in ferrostack_db::testing::test_databases("network")
        .await
        .into_iter()
        .enumerate()
    {
        eprintln!("network API against {:?}", db.backend);
        let c = start(db, &format!("db{i}")).await;
        exercise(&c).await;
    }
}

/// The same walk on a pool of one connection: any code path that holds a
/// connection while asking the pool for another fails here at once.
#[tokio::test]
async fn network_api_never_holds_two_connections() {
    let dir = std::env::temp_dir().join(format!("ferrostack-test-{}-net1conn", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = common::one_connection_db(&dir).await;
    let c = start(db, "one-connection").await;
    exercise(&c).await;
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
