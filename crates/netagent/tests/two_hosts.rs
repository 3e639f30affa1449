//! Two hosts on one machine: each "host" is a network namespace with its own
//! L2 agent and tunnel address on a shared data network (the seed's
//! 10.20.20.x). One tenant network spans both over VXLAN; stand-in
//! instances (a namespace with a veth plugged like a VM's tap, with the
//! port's MAC) get their addresses from the DHCP agent on host A and ping
//! each other. Then the agents are killed, the network deleted through the
//! service, the agents restarted: nothing of the network is left.
//!
//! Needs root, `ip`, `bridge`, `nft`, `dnsmasq` and `udhcpc`
//! (scripts/setup-host.sh installs them).

use ferrostack_core::auth::{AuthContext, NamedRef};
use ferrostack_core::config::Config;
use ferrostack_netagent::{host, Settings};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn try_sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Namespaces this test made, removed whatever happens.
struct Cleanup(Vec<String>, PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The agents' own namespaces, from their ledgers, if a failure
        // stopped the test before they cleaned up.
        let mut all = self.0.clone();
        for host in std::fs::read_dir(&self.1).into_iter().flatten().flatten() {
            for ledger in ["dhcp-namespaces.json", "l3-namespaces.json"] {
                if let Ok(text) = std::fs::read_to_string(host.path().join(ledger)) {
                    all.extend(serde_json::from_str::<Vec<String>>(&text).unwrap_or_default());
                }
            }
        }
        for ns in &all {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        // dnsmasq of the test's networks, if a failure left one.
        let dir = self.1.display().to_string();
        let _ = Command::new("pkill").args(["-f", &dir]).output();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn admin() -> AuthContext {
    AuthContext {
        user_id: "admin".into(),
        project_id: Some("p-two-hosts".into()),
        roles: vec![NamedRef {
            id: "admin".into(),
            name: "admin".into(),
        }],
        ..Default::default()
    }
}

fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn settings(cfg: &Config, host: &str, ns: &str, ip: &str, agents: &str, dir: &Path) -> Settings {
    let mut c = cfg.clone();
    c.network_agent.host = host.into();
    c.network_agent.host_netns = ns.into();
    c.network_agent.local_ip = ip.into();
    c.network_agent.agents = agents.into();
    c.network_agent.physical_interface_mappings = "physnet1:data1".into();
    c.network_agent.report_interval = 1;
    c.network_agent.resync_interval = 2;
    c.network_agent.state_dir = dir.join(host).display().to_string();
    Settings::from_config(&c).expect("settings")
}

/// A stand-in instance on `host_ns`: its veth's host end is named like the
/// port's tap, its inner end has the port's MAC.
fn stand_in(name: &str, host_ns: &str, port: &Value) {
    let id = port["id"].as_str().unwrap();
    let tap = host::device_name("tap", id);
    let mac = port["mac_address"].as_str().unwrap();
    sh(&["ip", "netns", "add", name]);
    sh(&[
        "ip", "-n", host_ns, "link", "add", &tap, "type", "veth", "peer", "name", "eth0", "netns",
        name,
    ]);
    sh(&[
        "ip", "-n", name, "link", "set", "eth0", "address", mac, "up",
    ]);
    sh(&["ip", "-n", name, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", host_ns, "link", "set", &tap, "up"]);
}

fn dhcp(name: &str) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/dataplane/udhcpc-script.sh"
    );
    sh(&[
        "ip",
        "netns",
        "exec",
        name,
        "udhcpc",
        "-i",
        "eth0",
        "-n",
        "-q",
        "-t",
        "20",
        "-T",
        "1",
        "-O",
        "staticroutes",
        "-O",
        "mtu",
        "-s",
        script,
    ]);
    let addrs = host_addrs(name);
    addrs.into_iter().next().expect("an address from DHCP")
}

fn host_addrs(ns: &str) -> Vec<String> {
    let out = sh(&["ip", "-n", ns, "-j", "-4", "addr", "show", "dev", "eth0"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["local"].as_str().map(str::to_owned))
        .collect()
}

async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vxlan_carries_one_network_across_two_hosts_and_restart_cleans_up() {
    assert_eq!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() },
        0,
        "this test drives the host's networking and must run as root"
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ferrostack=info,warn")
        .with_test_writer()
        .try_init();
    let tag = format!("{:06x}", std::process::id() & 0xffffff);
    let (ha, hb) = (format!("fsh-a-{tag}"), format!("fsh-b-{tag}"));
    let (sa, sb) = (format!("fsi-a-{tag}"), format!("fsi-b-{tag}"));
    let dir = std::env::temp_dir().join(format!("ferrostack-two-hosts-{tag}"));
    let mut cleanup = Cleanup(
        vec![sa.clone(), sb.clone(), ha.clone(), hb.clone()],
        dir.clone(),
    );

    // The two hosts and their data network.
    sh(&["ip", "netns", "add", &ha]);
    sh(&["ip", "netns", "add", &hb]);
    sh(&[
        "ip", "-n", &ha, "link", "add", "data0", "type", "veth", "peer", "name", "data0", "netns",
        &hb,
    ]);
    sh(&[
        "ip", "-n", &ha, "link", "add", "data1", "type", "veth", "peer", "name", "data1", "netns",
        &hb,
    ]);
    for ns in [&ha, &hb] {
        sh(&["ip", "-n", ns, "link", "set", "data1", "up"]);
    }
    for (ns, ip) in [(&ha, "10.20.20.1/24"), (&hb, "10.20.20.2/24")] {
        sh(&["ip", "-n", ns, "addr", "add", ip, "dev", "data0"]);
        sh(&["ip", "-n", ns, "link", "set", "data0", "up"]);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }

    let mut cfg = Config::default();
    cfg.common.data_dir = dir.clone();
    std::fs::create_dir_all(&dir).unwrap();
    // Over RabbitMQ too, when FERROSTACK_TEST_BUS_URL names one.
    let bus = ferrostack_testkit::test_bus().await;
    let svc = ferrostack_network::open(&cfg, bus.clone()).await.unwrap();
    let host_a = format!("host-a-{tag}");
    let host_b = format!("host-b-{tag}");
    let agents_a = ferrostack_netagent::start(
        settings(&cfg, &host_a, &ha, "10.20.20.1", "l2,dhcp", &dir),
        bus.clone(),
    )
    .await
    .unwrap();
    let agents_b = ferrostack_netagent::start(
        settings(&cfg, &host_b, &hb, "10.20.20.2", "l2", &dir),
        bus.clone(),
    )
    .await
    .unwrap();

    let ctx = admin();
    let net = svc
        .create_network(&ctx, &body(json!({"name": "spanning"})))
        .await
        .unwrap();
    let net_id = net["id"].as_str().unwrap().to_owned();
    let vni = net["provider:segmentation_id"].as_i64().unwrap();
    svc.create_subnet(
        &ctx,
        &body(json!({"network_id": net_id, "cidr": "10.60.0.0/24", "ip_version": 4})),
    )
    .await
    .unwrap();
    let mut ports = Vec::new();
    for host in [&host_a, &host_b] {
        ports.push(
            svc.create_port(
                &ctx,
                &body(json!({"network_id": net_id, "binding:host_id": host,
                             "device_owner": "compute:nova", "device_id": format!("vm-{host}")})),
            )
            .await
            .unwrap(),
        );
    }
    stand_in(&sa, &ha, &ports[0]);
    stand_in(&sb, &hb, &ports[1]);
    for p in &ports {
        let id = p["id"].as_str().unwrap().to_owned();
        let svc = svc.clone();
        wait_for("ports ACTIVE", 30, || {
            let (svc, id) = (svc.clone(), id.clone());
            async move {
                svc.get_doc(ferrostack_network::store::Kind::Port, &id)
                    .await
                    .unwrap()["status"]
                    == "ACTIVE"
            }
        })
        .await;
    }
    // Each host floods to the other's tunnel address.
    for (ns, peer) in [
        (ha.clone(), "dst 10.20.20.2"),
        (hb.clone(), "dst 10.20.20.1"),
    ] {
        let dev = format!("vxlan-{vni}");
        wait_for("the flood entry to the other host", 30, || {
            let (ns, dev) = (ns.clone(), dev.clone());
            async move { sh(&["bridge", "-n", &ns, "fdb", "show", "dev", &dev]).contains(peer) }
        })
        .await;
    }

    let ip_a = dhcp(&sa);
    let ip_b = dhcp(&sb);
    let fixed = |p: &Value| p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_owned();
    assert_eq!(ip_a, fixed(&ports[0]));
    assert_eq!(ip_b, fixed(&ports[1]));
    assert!(
        try_sh(&["ip", "netns", "exec", &sa, "ping", "-c", "2", "-W", "2", &ip_b]),
        "host A's stand-in cannot reach host B's over VXLAN"
    );

    // A flat provider network on the hosts' second wire (`data1`, mapped
    // to physnet1): the interface itself joins the network's bridge. (VLAN
    // networks use `data1.<vid>` the same way; this kernel has no 802.1Q.)
    let flat = svc
        .create_network(
            &ctx,
            &body(json!({"name": "flat", "provider:network_type": "flat",
                         "provider:physical_network": "physnet1"})),
        )
        .await
        .unwrap();
    let flat_id = flat["id"].as_str().unwrap().to_owned();
    svc.create_subnet(
        &ctx,
        &body(json!({"network_id": flat_id, "cidr": "10.61.0.0/24", "ip_version": 4})),
    )
    .await
    .unwrap();
    let (va, vb) = (format!("fsv-a-{tag}"), format!("fsv-b-{tag}"));
    cleanup.0.extend([va.clone(), vb.clone()]);
    let mut flat_ports = Vec::new();
    for (host, host_ns, standin) in [(&host_a, &ha, &va), (&host_b, &hb, &vb)] {
        let p = svc
            .create_port(
                &ctx,
                &body(json!({"network_id": flat_id, "binding:host_id": host,
                             "device_owner": "compute:nova", "device_id": format!("flat-{host}")})),
            )
            .await
            .unwrap();
        stand_in(standin, host_ns, &p);
        flat_ports.push(p);
    }
    let vip_a = dhcp(&va);
    let vip_b = dhcp(&vb);
    assert_eq!(vip_a, fixed(&flat_ports[0]));
    assert_eq!(vip_b, fixed(&flat_ports[1]));
    let uplink = sh(&["ip", "-n", &hb, "link", "show", "data1"]);
    assert!(uplink.contains("master brq"), "{uplink}");
    assert!(
        try_sh(&["ip", "netns", "exec", &va, "ping", "-c", "2", "-W", "2", &vip_b]),
        "the flat network does not carry traffic between the hosts"
    );
    for p in &flat_ports {
        svc.delete_port(&ctx, p["id"].as_str().unwrap())
            .await
            .unwrap();
    }
    svc.delete_network(&ctx, &flat_id).await.unwrap();
    for s in [&va, &vb] {
        sh(&["ip", "netns", "del", s]);
    }

    // Kill the agents, delete the network, restart: nothing remains.
    agents_a.stop();
    agents_b.stop();
    let bridge = ferrostack_netagent::l2::bridge_name(&net_id);
    assert!(host::namespaces().contains(&format!("qdhcp-{net_id}")));
    for p in &ports {
        svc.delete_port(&ctx, p["id"].as_str().unwrap())
            .await
            .unwrap();
    }
    svc.delete_network(&ctx, &net_id).await.unwrap();
    // The stand-ins go away as their VMs would.
    for s in [&sa, &sb] {
        sh(&["ip", "netns", "del", s]);
    }
    cleanup.0.retain(|n| n != &sa && n != &sb);
    let agents_a = ferrostack_netagent::start(
        settings(&cfg, &host_a, &ha, "10.20.20.1", "l2,dhcp", &dir),
        bus.clone(),
    )
    .await
    .unwrap();
    let agents_b = ferrostack_netagent::start(
        settings(&cfg, &host_b, &hb, "10.20.20.2", "l2", &dir),
        bus.clone(),
    )
    .await
    .unwrap();
    let (ha2, hb2, qdhcp) = (ha.clone(), hb.clone(), format!("qdhcp-{net_id}"));
    wait_for("the network's traces to go", 30, || {
        let (ha, hb, qdhcp, bridge) = (ha2.clone(), hb2.clone(), qdhcp.clone(), bridge.clone());
        async move {
            let gone_ns = !host::namespaces().contains(&qdhcp);
            let links_a = sh(&["ip", "-n", &ha, "link", "show"]);
            let links_b = sh(&["ip", "-n", &hb, "link", "show"]);
            gone_ns
                && !links_a.contains(&bridge)
                && !links_b.contains(&bridge)
                && !links_a.contains("vxlan-")
                && !links_b.contains("vxlan-")
        }
    })
    .await;
    let ps = sh(&["ps", "-eo", "args"]);
    assert!(
        !ps.lines()
            .any(|l| l.contains("dnsmasq") && l.contains(&net_id)),
        "dnsmasq left running"
    );
    agents_a.stop();
    agents_b.stop();
}
