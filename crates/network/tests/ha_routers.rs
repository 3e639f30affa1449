//! HA routers through the API and the agents' RPC: `ha: true` (admin only)
//! schedules a router to two L3 agents with a hidden port each on the
//! project's HA network, the agents learn their VRRP id and port from
//! `l3_state`, their `update_ha_states` reports show as `ha_state` in
//! `GET /routers/{id}/l3-agents`, and `ha` changes only on a router that is
//! down. Runs on a one-connection SQLite pool, as the API walks do.

mod common;

use common::{error_type, serve_network, Cloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn rpc(c: &Cloud, method: &str, args: Value) -> Value {
    c.kit
        .bus
        .call(
            ferrostack_network::PLUGIN_TOPIC,
            ferrostack_bus::RpcMessage {
                method: method.into(),
                args,
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap()
}

/// An L3 agent of `host`, registered as its first heartbeat does.
async fn l3_agent(c: &Cloud, host: &str) -> String {
    let state = json!({"agent_state": {"agent_type": "L3 agent", "binary": "neutron-l3-agent",
        "host": host, "topic": "l3_agent", "configurations": {}, "start_flag": true}});
    rpc(c, "report_state", state)
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// `(host, ha_state)` of the agents hosting a router, by host.
async fn hosting(c: &Cloud, tok: &str, rid: &str) -> Vec<(String, Value)> {
    let v = c
        .ok(Method::GET, &format!("/routers/{rid}/l3-agents"), tok, None)
        .await;
    let mut out: Vec<(String, Value)> = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["host"].as_str().unwrap().to_owned(),
                a["ha_state"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn ha_ports(c: &Cloud, tok: &str) -> Vec<Value> {
    c.ok(
        Method::GET,
        "/ports?device_owner=network:router_ha_interface",
        tok,
        None,
    )
    .await["ports"]
        .as_array()
        .unwrap()
        .clone()
}

async fn ha_networks(c: &Cloud, tok: &str, project: &str) -> Vec<Value> {
    let name = format!("HA network tenant {project}").replace(' ', "%20");
    c.ok(Method::GET, &format!("/networks?name={name}"), tok, None)
        .await["networks"]
        .as_array()
        .unwrap()
        .clone()
}

async fn start(name: &str) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("network-{name}"), |_| {}).await;
    let db = common::one_connection_db(&kit.dir).await;
    serve_network(kit, db).await
}

#[tokio::test]
async fn ha_routers_are_scheduled_to_two_agents_and_report_their_state() {
    let c = start("ha-routers").await;
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let ext = c.ok(Method::GET, "/extensions/l3-ha", &admin, None).await;
    assert_eq!(ext["extension"]["name"], "HA Router extension");
    let a1 = l3_agent(&c, "network1").await;
    let a2 = l3_agent(&c, "network2").await;

    // Only an admin makes an HA router (Neutron's create_router:ha).
    let (st, v) = c
        .call(
            Method::POST,
            "/routers",
            &demo,
            Some(json!({"router": {"name": "r", "ha": true}})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let r = c
        .ok(
            Method::POST,
            "/routers",
            &admin,
            Some(json!({"router": {"name": "ha1", "ha": true}})),
        )
        .await["router"]
        .clone();
    assert_eq!(r["ha"], true, "{r}");
    let rid = r["id"].as_str().unwrap().to_owned();
    let project = r["project_id"].as_str().unwrap().to_owned();
    assert_eq!(
        hosting(&c, &admin, &rid).await,
        [
            ("network1".into(), json!("standby")),
            ("network2".into(), json!("standby"))
        ]
    );

    // The project's HA network: hidden (no project), its subnet Neutron's,
    // and a port per agent bound to the agent's host.
    let nets = ha_networks(&c, &admin, &project).await;
    assert_eq!(nets.len(), 1, "{nets:?}");
    assert_eq!(nets[0]["project_id"], "");
    let sid = nets[0]["subnets"][0].as_str().unwrap();
    let subnet = c
        .ok(Method::GET, &format!("/subnets/{sid}"), &admin, None)
        .await;
    assert_eq!(subnet["subnet"]["cidr"], "169.254.192.0/18");
    assert_eq!(subnet["subnet"]["enable_dhcp"], false);
    let ports = ha_ports(&c, &admin).await;
    let mut hosts: Vec<&str> = ports
        .iter()
        .map(|p| p["binding:host_id"].as_str().unwrap())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["network1", "network2"]);
    assert!(ports
        .iter()
        .all(|p| p["device_id"] == rid.as_str() && p["project_id"] == ""));
    assert!(
        ha_networks(&c, &demo, &project).await.is_empty(),
        "hidden from members"
    );

    // Each agent builds the router with its own HA port and the VRRP id.
    for host in ["network1", "network2"] {
        let state = rpc(&c, "l3_state", json!({"host": host})).await;
        let view = &state["routers"][0];
        assert_eq!(
            (view["id"].as_str(), &view["ha"]),
            (Some(rid.as_str()), &json!(true))
        );
        assert_eq!(view["ha_vr_id"], 1);
        let port = ports.iter().find(|p| p["binding:host_id"] == host).unwrap();
        assert_eq!(view["ha_port"]["id"], port["id"]);
        let cidr = view["ha_port"]["fixed_ips"][0]["cidr"].as_str().unwrap();
        assert!(
            cidr.starts_with("169.254.") && cidr.ends_with("/18"),
            "{cidr}"
        );
    }

    // VRRP states as the agents report them.
    rpc(
        &c,
        "update_ha_states",
        json!({"host": "network1", "states": {&rid: "standby"}}),
    )
    .await;
    rpc(
        &c,
        "update_ha_states",
        json!({"host": "network2", "states": {&rid: "active"}}),
    )
    .await;
    assert_eq!(
        hosting(&c, &admin, &rid).await,
        [
            ("network1".into(), json!("standby")),
            ("network2".into(), json!("active"))
        ]
    );
    let agent_ids = [a1.as_str(), a2.as_str()];
    let on_agents = c
        .ok(
            Method::GET,
            &format!("/agents/{a2}/l3-routers"),
            &admin,
            None,
        )
        .await;
    assert_eq!(on_agents["routers"][0]["id"], rid.as_str(), "{agent_ids:?}");

    // A second HA router of the project has the next VRRP id and the same
    // HA network; deleting it leaves the network to the first.
    let r2 = c
        .ok(
            Method::POST,
            "/routers",
            &admin,
            Some(json!({"router": {"name": "ha2", "ha": true}})),
        )
        .await["router"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let state = rpc(&c, "l3_state", json!({"host": "network1"})).await;
    let mut vr_ids: Vec<i64> = state["routers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ha_vr_id"].as_i64().unwrap())
        .collect();
    vr_ids.sort();
    assert_eq!(vr_ids, [1, 2]);
    assert_eq!(ha_ports(&c, &admin).await.len(), 4);
    c.ok(Method::DELETE, &format!("/routers/{r2}"), &admin, None)
        .await;
    assert_eq!(ha_ports(&c, &admin).await.len(), 2);
    assert_eq!(ha_networks(&c, &admin, &project).await.len(), 1);

    // `ha` changes only while the router is down (Neutron's 400).
    let (st, v) = c
        .call(
            Method::PUT,
            &format!("/routers/{rid}"),
            &admin,
            Some(json!({"router": {"ha": false}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(error_type(&v), "BadRequest");
    assert!(v["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("Cannot change HA attribute of active routers"));
    let down = json!({"router": {"admin_state_up": false, "ha": false}});
    let r = c
        .ok(Method::PUT, &format!("/routers/{rid}"), &admin, Some(down))
        .await;
    assert_eq!(r["router"]["ha"], false);
    let legacy = hosting(&c, &admin, &rid).await;
    assert_eq!(legacy.len(), 1);
    assert_eq!(
        legacy[0].1,
        Value::Null,
        "a legacy router's ha_state is null"
    );
    assert!(ha_ports(&c, &admin).await.is_empty());
    assert!(
        ha_networks(&c, &admin, &project).await.is_empty(),
        "gone with the last HA router"
    );
}

#[tokio::test]
async fn a_legacy_router_keeps_one_agent_and_refuses_a_second() {
    let c = start("ha-legacy").await;
    let admin = c.token("admin", "admin").await;
    l3_agent(&c, "network1").await;
    let a2 = l3_agent(&c, "network2").await;
    let r = c
        .ok(
            Method::POST,
            "/routers",
            &admin,
            Some(json!({"router": {"name": "legacy"}})),
        )
        .await["router"]
        .clone();
    assert_eq!(r["ha"], false);
    let rid = r["id"].as_str().unwrap();
    let hosts = hosting(&c, &admin, rid).await;
    assert_eq!(hosts.len(), 1);
    let other = if hosts[0].0 == "network1" {
        a2
    } else {
        l3_agent(&c, "network1").await
    };
    let (st, v) = c
        .call(
            Method::POST,
            &format!("/agents/{other}/l3-routers"),
            &admin,
            Some(json!({"router_id": rid})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(error_type(&v), "RouterHostedByL3Agent");
    assert!(ha_ports(&c, &admin).await.is_empty());
}
