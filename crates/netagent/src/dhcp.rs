//! The DHCP agent: for each network it serves, a `qdhcp-<network>`
//! namespace holding the DHCP port's interface and a dnsmasq that answers
//! only the MAC/IP pairs the network service knows (static ranges), with
//! the subnet's gateway, DNS servers, host routes, MTU and — on networks
//! without a router — the route to the metadata proxy it also runs there.
//! Port changes rewrite dnsmasq's host and option files and send it SIGHUP,
//! which keeps its leases; a dnsmasq that died is started again by the
//! next pass (its leases are in its lease file).

use crate::host::{self, device_name, Host};
use crate::ledger::Ledger;
use crate::metadata::{Proxies, Target, METADATA_ADDRESS};
use crate::runner::Reconciler;
use crate::{Plugin, Settings};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub struct DhcpAgent {
    settings: Settings,
    plugin: Plugin,
    host: Host,
    ledger: Ledger,
    proxies: Proxies,
}

pub fn namespace(network_id: &str) -> String {
    format!("qdhcp-{network_id}")
}

fn netmask(prefix: u32) -> String {
    let m: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    std::net::Ipv4Addr::from(m).to_string()
}

fn dashed(ip: &str) -> String {
    ip.replace(['.', ':'], "-")
}

/// A port whose extra DHCP options the option file carries for IPv4 (under
/// its `tag:port-<id>`).
fn has_ipv4_options(port: &Value) -> bool {
    port["extra_dhcp_opts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["ip_version"] != 6)
}

/// dnsmasq's host file: one line per port address on a served subnet.
/// Only a port with options of its own is tagged (`set:port-<id>`):
/// dnsmasq 2.90 (Debian 12's) crashes on SIGHUP once a tagged entry has
/// answered the same client twice, i.e. at the first reload after a renewal.
pub fn hosts_file(net: &Value) -> String {
    let served: HashSet<&str> = net["subnets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    let mut out = String::new();
    for p in net["ports"].as_array().into_iter().flatten() {
        if p["admin_state_up"] == false {
            continue;
        }
        let mac = p["mac_address"].as_str().unwrap_or_default();
        let id = p["id"].as_str().unwrap_or_default();
        for f in p["fixed_ips"].as_array().into_iter().flatten() {
            if !served.contains(f["subnet_id"].as_str().unwrap_or_default()) {
                continue;
            }
            let ip = f["ip_address"].as_str().unwrap_or_default();
            let addr = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_owned()
            };
            let tag = if has_ipv4_options(p) {
                format!("set:port-{id},")
            } else {
                String::new()
            };
            let _ = writeln!(out, "{mac},{tag}{addr},host-{}", dashed(ip));
        }
    }
    out
}

/// The IPv4 leases in dnsmasq's lease file (`expiry mac ip name client-id`)
/// whose (MAC, address) pair the host file no longer has. DHCPv6 leases
/// are left to expire (releasing them needs dnsmasq's server id).
pub fn stale_leases(leases: &str, hosts: &str) -> Vec<(String, String)> {
    let wanted: HashSet<(String, String)> = hosts
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            let mac = f.next()?.to_ascii_lowercase();
            // The address follows the MAC, after the port's tag if it has one.
            let addr = f.find(|x| !x.starts_with("set:"))?.to_owned();
            Some((mac, addr))
        })
        .collect();
    let mut stale: Vec<(String, String)> = leases
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_expiry, mac, ip) = (f.next()?, f.next()?, f.next()?);
            let ok = ip.parse::<std::net::Ipv4Addr>().is_ok();
            ok.then(|| (mac.to_ascii_lowercase(), ip.to_owned()))
        })
        .filter(|pair| !wanted.contains(pair))
        .collect();
    stale.sort();
    stale.dedup();
    stale
}

/// dnsmasq's option file: per subnet the router, DNS servers and
/// classless static routes; per port its extra DHCP options.
pub fn opts_file(net: &Value) -> String {
    let isolated = net["isolated"] == true;
    let dhcp_ips: Vec<&Value> = net["dhcp_port"]["fixed_ips"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut out = String::new();
    for s in net["subnets"].as_array().into_iter().flatten() {
        if s["ip_version"] != 4 {
            continue;
        }
        let tag = format!("tag:subnet-{}", s["id"].as_str().unwrap_or_default());
        let gw = s["gateway_ip"].as_str();
        match gw {
            Some(gw) => {
                let _ = writeln!(out, "{tag},option:router,{gw}");
            }
            None => {
                let _ = writeln!(out, "{tag},option:router");
            }
        }
        let dns: Vec<&str> = s["dns_nameservers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !dns.is_empty() {
            let _ = writeln!(out, "{tag},option:dns-server,{}", dns.join(","));
        }
        let mut routes: Vec<(String, String)> = s["host_routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some((
                    r["destination"].as_str()?.to_owned(),
                    r["nexthop"].as_str()?.to_owned(),
                ))
            })
            .collect();
        if isolated {
            let own = dhcp_ips
                .iter()
                .find(|f| f["subnet_id"] == s["id"])
                .and_then(|f| f["ip_address"].as_str());
            if let Some(own) = own {
                routes.push((format!("{METADATA_ADDRESS}/32"), own.to_owned()));
            }
        }
        if !routes.is_empty() {
            // With classless routes clients ignore the router option, so
            // the default route goes in the list too.
            if let Some(gw) = gw {
                routes.push(("0.0.0.0/0".into(), gw.to_owned()));
            }
            let list: Vec<String> = routes.iter().map(|(d, n)| format!("{d},{n}")).collect();
            let _ = writeln!(
                out,
                "{tag},option:classless-static-route,{}",
                list.join(",")
            );
            let _ = writeln!(out, "{tag},249,{}", list.join(","));
        }
    }
    for p in net["ports"].as_array().into_iter().flatten() {
        let id = p["id"].as_str().unwrap_or_default();
        for o in p["extra_dhcp_opts"].as_array().into_iter().flatten() {
            if o["ip_version"] == 6 {
                continue;
            }
            let (Some(name), Some(value)) = (o["opt_name"].as_str(), o["opt_value"].as_str())
            else {
                continue;
            };
            let name = if name.chars().all(|c| c.is_ascii_digit()) {
                name.to_owned()
            } else {
                format!("option:{name}")
            };
            let _ = writeln!(out, "tag:port-{id},{name},{value}");
        }
    }
    out
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// dnsmasq writes its pid file a moment after it starts; until then a
/// pass would find no dnsmasq and start a second one (which cannot bind
/// and exits, leaving its pid behind), so a start waits for the file to
/// name the running process (a few seconds at most; a dnsmasq that never
/// gets there is restarted by the next pass, as before).
async fn wait_for_pid_file(path: &Path, network_id: &str) {
    for _ in 0..50 {
        if read_pid(path).is_some_and(|pid| running(pid, network_id)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tracing::warn!(network = %network_id, "dnsmasq has not written its pid file after 5 s");
}

/// A live dnsmasq of this network (not a recycled pid).
fn running(pid: i32, network_id: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(network_id))
        .unwrap_or(false)
}

impl DhcpAgent {
    pub fn new(settings: Settings, plugin: Plugin) -> DhcpAgent {
        DhcpAgent {
            host: settings.host(),
            ledger: Ledger::open(settings.state_dir.join("dhcp-namespaces.json")),
            proxies: Proxies::new(
                plugin.clone(),
                &settings.metadata_url,
                &settings.metadata_secret,
            ),
            settings,
            plugin,
        }
    }

    fn dir(&self, network_id: &str) -> PathBuf {
        self.settings.state_dir.join("dhcp").join(network_id)
    }

    /// The paths name the network, so `/proc/<pid>/cmdline` tells a live
    /// dnsmasq of this network from a recycled pid.
    fn dnsmasq_args(&self, net: &Value, dir: &Path, device: &str) -> Vec<String> {
        let d = |f: &str| dir.join(f).display().to_string();
        let mut args = vec![
            "--no-hosts".to_owned(),
            "--no-resolv".into(),
            "--port=0".into(),
            "--conf-file=/dev/null".into(),
            format!("--pid-file={}", d("pid")),
            format!("--dhcp-hostsfile={}", d("host")),
            format!("--dhcp-optsfile={}", d("opts")),
            format!("--dhcp-leasefile={}", d("leases")),
            format!("--interface={device}"),
            "--bind-interfaces".into(),
            "--except-interface=lo".into(),
            "--user=root".into(),
            "--group=root".into(),
            "--domain=openstacklocal".into(),
            "--dhcp-authoritative".into(),
            format!("--dhcp-lease-max={}", 1 << 16),
        ];
        let lease = self.settings.lease_seconds;
        for s in net["subnets"].as_array().into_iter().flatten() {
            let sid = s["id"].as_str().unwrap_or_default();
            let cidr = s["cidr"].as_str().unwrap_or_default();
            let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, "0"));
            if s["ip_version"] == 4 {
                let mask = netmask(prefix.parse().unwrap_or(0));
                args.push(format!(
                    "--dhcp-range=set:subnet-{sid},{addr},static,{mask},{lease}s"
                ));
            } else if s["ipv6_address_mode"] == "dhcpv6-stateful" {
                args.push(format!(
                    "--dhcp-range=set:subnet-{sid},{addr},static,{prefix},{lease}s"
                ));
            }
        }
        if let Some(mtu) = net["mtu"].as_i64() {
            args.push(format!("--dhcp-option-force=option:mtu,{mtu}"));
        }
        args
    }

    async fn ensure_network(&mut self, net: &Value) -> Result<(), String> {
        let id = net["id"].as_str().unwrap_or_default().to_owned();
        let ns = namespace(&id);
        let port = &net["dhcp_port"];
        let port_id = port["id"].as_str().unwrap_or_default();
        let (outer, inner) = (device_name("tap", port_id), device_name("ns-", port_id));
        self.ledger.add(&ns).map_err(|e| e.to_string())?;
        host::ensure_namespace(&self.host, &ns)
            .await
            .map_err(|e| e.to_string())?;
        let mtu = net["mtu"].as_i64().unwrap_or(1500);
        let mac = port["mac_address"].as_str().unwrap_or_default();
        host::ensure_veth(&self.host, &outer, &inner, &ns, mac, mtu)
            .await
            .map_err(|e| e.to_string())?;
        // A DHCP port replaced since the last run leaves its old device.
        for name in self.host.links(Some(&ns)).await.keys() {
            if name.starts_with("ns-") && *name != inner {
                let _ = self.host.ip(Some(&ns), &["link", "del", name]).await;
            }
        }
        // The metadata proxy runs here whether or not the network has a
        // router (Neutron's `force_metadata`): an instance that took its
        // lease before a router was added keeps its route through us.
        let mut addrs: Vec<String> = port["fixed_ips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["cidr"].as_str().map(str::to_owned))
            .collect();
        addrs.push(format!("{METADATA_ADDRESS}/32"));
        host::set_addresses(&self.host, Some(&ns), &inner, &addrs)
            .await
            .map_err(|e| e.to_string())?;
        let dir = self.dir(&id);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut changed = false;
        for (file, text) in [("host", hosts_file(net)), ("opts", opts_file(net))] {
            let path = dir.join(file);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text).map_err(|e| e.to_string())?;
                changed = true;
            }
        }
        // A lease whose port went (or whose address moved to another port)
        // makes dnsmasq refuse that address to its new owner: release every
        // such lease, as Neutron's DHCP agent does. Comparing the lease file
        // with the wanted hosts on each pass also retries a lost release.
        let leases = std::fs::read_to_string(dir.join("leases")).unwrap_or_default();
        for (mac, ip) in stale_leases(&leases, &hosts_file(net)) {
            match self
                .host
                .run_in(&ns, "dhcp_release", &[&inner, &ip, &mac])
                .await
            {
                Ok(_) => tracing::info!(network = %id, %ip, %mac, "stale DHCP lease released"),
                Err(e) => {
                    tracing::warn!(network = %id, %ip, error = %e, "stale DHCP lease not released")
                }
            }
        }
        let args = self.dnsmasq_args(net, &dir, &inner);
        let cmdline = args.join("\n");
        let pid = read_pid(&dir.join("pid")).filter(|p| running(*p, &id));
        let previous = std::fs::read_to_string(dir.join("cmdline")).ok();
        match pid {
            Some(pid) if previous.as_deref() == Some(&cmdline) => {
                if changed {
                    // SAFETY: signalling a process we verified is our dnsmasq.
                    unsafe { libc::kill(pid, libc::SIGHUP) };
                }
            }
            other => {
                // Why, in the log: a restart drops nothing (leases are in
                // the file) but should be rare, and a test checks it is.
                match (other, &previous) {
                    (Some(pid), Some(before)) => tracing::info!(
                        network = %id, pid, before = %before.replace('\n', " "),
                        after = %cmdline.replace('\n', " "),
                        "dnsmasq restarted: its arguments changed"
                    ),
                    (Some(pid), None) => tracing::info!(
                        network = %id, pid,
                        "dnsmasq restarted: its arguments were not recorded"
                    ),
                    (None, _) => tracing::info!(
                        network = %id,
                        pid_file = %std::fs::read_to_string(dir.join("pid")).unwrap_or_default().trim(),
                        "dnsmasq started: none runs for this network"
                    ),
                }
                if let Some(pid) = other {
                    stop_process(pid).await;
                }
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                self.host
                    .start_daemon_in(&ns, &self.settings.dnsmasq, &refs, &dir.join("dnsmasq.log"))
                    .await
                    .map_err(|e| e.to_string())?;
                std::fs::write(dir.join("cmdline"), &cmdline).map_err(|e| e.to_string())?;
                wait_for_pid_file(&dir.join("pid"), &id).await;
            }
        }
        self.proxies.ensure(&ns, Target::Network(id)).await
    }

    async fn teardown(&mut self, ns: &str) -> Result<(), String> {
        let id = ns.trim_start_matches("qdhcp-");
        tracing::info!(network = %id, "DHCP for the network removed from this host");
        self.proxies.remove(ns);
        stop_dnsmasq(&self.settings.state_dir, id).await;
        host::delete_namespace(&self.host, ns)
            .await
            .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(self.dir(id));
        self.ledger.remove(ns).map_err(|e| e.to_string())
    }
}

/// Stop the dnsmasq of a network, if it runs (for `cleanup`).
pub async fn stop_dnsmasq(state_dir: &Path, network_id: &str) {
    let pid_file = state_dir.join("dhcp").join(network_id).join("pid");
    if let Some(pid) = read_pid(&pid_file).filter(|p| running(*p, network_id)) {
        stop_process(pid).await;
    }
}

/// SIGTERM, then SIGKILL if it lingers.
async fn stop_process(pid: i32) {
    // SAFETY: plain signals to a pid we identified as ours.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    for _ in 0..50 {
        if unsafe { libc::kill(pid, 0) } != 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[async_trait::async_trait]
impl Reconciler for DhcpAgent {
    fn identity(&self) -> (&'static str, &'static str, &'static str) {
        ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent")
    }

    fn cares(&self, event: &str) -> bool {
        ["network.", "subnet.", "port.", "agent."]
            .iter()
            .any(|p| event.starts_with(p))
    }

    async fn sync(&mut self) -> Result<Value, String> {
        let state = self.plugin.state("dhcp_state").await?;
        let nets = state["networks"].as_array().cloned().unwrap_or_default();
        let mut errors = Vec::new();
        let mut want = HashSet::new();
        let (mut ports, mut subnets) = (0, 0);
        for net in &nets {
            let id = net["id"].as_str().unwrap_or_default();
            want.insert(namespace(id));
            ports += net["ports"].as_array().map_or(0, Vec::len);
            subnets += net["subnets"].as_array().map_or(0, Vec::len);
            if let Err(e) = self.ensure_network(net).await {
                errors.push(format!("network {id}: {e}"));
            }
        }
        for ns in self.ledger.with_prefix("qdhcp-") {
            if !want.contains(&ns) {
                if let Err(e) = self.teardown(&ns).await {
                    errors.push(format!("{ns}: {e}"));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(json!({
            "networks": nets.len(), "ports": ports, "subnets": subnets,
            "dhcp_driver": "dnsmasq", "dhcp_lease_duration": self.settings.lease_seconds,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(isolated: bool) -> Value {
        json!({
            "id": "n1", "mtu": 1450, "isolated": isolated,
            "subnets": [{"id": "s1", "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
                          "dns_nameservers": ["10.0.0.53"], "host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.9"}]}],
            "dhcp_port": {"id": "d1", "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.2"}]},
            "ports": [
                {"id": "p1", "mac_address": "fa:16:3e:00:00:01", "admin_state_up": true,
                 "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.3"}],
                 "extra_dhcp_opts": [{"opt_name": "bootfile-name", "opt_value": "pxe.0", "ip_version": 4}]},
                {"id": "p2", "mac_address": "fa:16:3e:00:00:02", "admin_state_up": false,
                 "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.4"}]},
            ],
        })
    }

    #[test]
    fn hosts_lists_known_pairs_only() {
        let h = hosts_file(&net(false));
        assert_eq!(h, "fa:16:3e:00:00:01,set:port-p1,10.0.0.3,host-10-0-0-3\n");
        // Without options of its own a port carries no tag (see hosts_file).
        let mut plain = net(false);
        plain["ports"][0]["extra_dhcp_opts"] = json!([]);
        assert_eq!(
            hosts_file(&plain),
            "fa:16:3e:00:00:01,10.0.0.3,host-10-0-0-3\n"
        );
    }

    #[test]
    fn options_carry_gateway_dns_routes_and_metadata() {
        let o = opts_file(&net(true));
        assert!(o.contains("tag:subnet-s1,option:router,10.0.0.1\n"), "{o}");
        assert!(o.contains("tag:subnet-s1,option:dns-server,10.0.0.53\n"));
        assert!(o.contains("option:classless-static-route,192.168.0.0/16,10.0.0.9,169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1\n"));
        assert!(o.contains("tag:port-p1,option:bootfile-name,pxe.0\n"));
        // With a router the metadata route is the router's business.
        assert!(!opts_file(&net(false)).contains("169.254.169.254"));
    }

    #[test]
    fn leases_of_gone_or_moved_addresses_are_released() {
        let leases = "1795873694 fa:16:3e:00:00:01 10.0.0.3 host-10-0-0-3 01:fa:16:3e:00:00:01\n\
                      1795873701 fa:16:3e:00:00:02 10.0.0.4 host-10-0-0-4 01:fa:16:3e:00:00:02\n\
                      1795873701 fa:16:3e:00:00:09 10.0.0.9 host-10-0-0-9 *\n\
                      duid 00:01:00:01:2c:aa:bb:cc\n\
                      1795873701 1234 fd00::5 host-fd00--5 00:02\n";
        let hosts = "fa:16:3e:00:00:03,set:port-c,10.0.0.3,host-10-0-0-3\n\
                     fa:16:3e:00:00:02,10.0.0.4,host-10-0-0-4\n";
        assert_eq!(
            stale_leases(leases, hosts),
            vec![
                ("fa:16:3e:00:00:01".to_owned(), "10.0.0.3".to_owned()),
                ("fa:16:3e:00:00:09".to_owned(), "10.0.0.9".to_owned()),
            ]
        );
        assert!(stale_leases("", hosts).is_empty());
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask(24), "255.255.255.0");
        assert_eq!(netmask(0), "0.0.0.0");
        assert_eq!(netmask(30), "255.255.255.252");
    }
}
