//! The L3 agent: a `qrouter-<router>` namespace per router with a `qr-`
//! interface at each attached subnet's gateway address and a `qg-`
//! interface on the external network carrying the gateway and floating IP
//! addresses; IP forwarding; static routes; nftables NAT (SNAT for the
//! gateway when `enable_snat`, DNAT + SNAT per floating IP); and the
//! metadata proxy on 169.254.169.254:80. Each change touches only what
//! differs, so the other interfaces and flows are left alone. An HA
//! router is built the same on each of its agents, with an `ha-`
//! interface and keepalived (`keepalived.rs`) owning its addresses and
//! routes, and its VRRP state reported to the server.

use crate::host::{self, device_name, Host};
use crate::keepalived;
use crate::ledger::Ledger;
use crate::metadata::{Proxies, Target, METADATA_ADDRESS};
use crate::runner::Reconciler;
use crate::{Plugin, Settings};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

pub fn namespace(router_id: &str) -> String {
    format!("qrouter-{router_id}")
}

fn cidrs(port: &Value) -> Vec<String> {
    port["fixed_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["cidr"].as_str().map(str::to_owned))
        .collect()
}

/// The router's NAT table: floating IPs first (DNAT in, SNAT out), then the
/// gateway's SNAT for everything else leaving by the external interface.
pub fn nat_rules(router: &Value) -> String {
    let mut pre = String::new();
    let mut post = String::new();
    let gw = &router["gateway"];
    if let Some(gw_id) = gw["id"].as_str() {
        let qg = device_name("qg-", gw_id);
        for f in router["floating_ips"].as_array().into_iter().flatten() {
            let (Some(fip), Some(fixed)) = (
                f["floating_ip_address"].as_str(),
                f["fixed_ip_address"].as_str(),
            ) else {
                continue;
            };
            if fip.contains(':') {
                continue;
            }
            let _ = writeln!(pre, "    ip daddr {fip} dnat to {fixed}");
            let _ = writeln!(post, "    oifname \"{qg}\" ip saddr {fixed} snat to {fip}");
        }
        let gw_ip = gw["fixed_ips"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["ip_version"] == 4)
            .and_then(|f| f["ip_address"].as_str());
        if let (true, Some(ip)) = (router["enable_snat"] != false, gw_ip) {
            let _ = writeln!(post, "    oifname \"{qg}\" snat to {ip}");
        }
    }
    format!(
        "table ip ferrostack_nat\ndelete table ip ferrostack_nat\ntable ip ferrostack_nat {{\n\
  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{pre}  }}\n\
  chain output {{\n    type nat hook output priority -100; policy accept;\n{pre}  }}\n\
  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n}}\n"
    )
}

pub struct L3Agent {
    settings: Settings,
    plugin: Plugin,
    host: Host,
    ledger: Ledger,
    proxies: Proxies,
    nat_applied: HashMap<String, String>,
    /// The HA state last reported per HA router.
    reported_ha: HashMap<String, String>,
}

impl L3Agent {
    pub fn new(settings: Settings, plugin: Plugin) -> L3Agent {
        L3Agent {
            host: settings.host(),
            ledger: Ledger::open(settings.state_dir.join("l3-namespaces.json")),
            proxies: Proxies::new(
                plugin.clone(),
                &settings.metadata_url,
                &settings.metadata_secret,
            ),
            nat_applied: HashMap::new(),
            reported_ha: HashMap::new(),
            settings,
            plugin,
        }
    }

    async fn ensure_router(&mut self, r: &Value) -> Result<(), String> {
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        let ns = namespace(&id);
        let ha = r["ha"] == true;
        let e = |e: host::CmdError| e.to_string();
        self.ledger.add(&ns).map_err(|e| e.to_string())?;
        host::ensure_namespace(&self.host, &ns).await.map_err(e)?;
        self.host
            .sysctl(Some(&ns), "net.ipv4.ip_forward", "1")
            .await
            .map_err(e)?;
        if ha {
            // A standby copy must send nothing with the ports' MACs (IPv6
            // link-local addresses would): the tunnels and the external
            // bridge would learn them at the wrong node.
            for key in [
                "net.ipv6.conf.default.disable_ipv6",
                "net.ipv6.conf.all.disable_ipv6",
            ] {
                if let Err(err) = self.host.sysctl(Some(&ns), key, "1").await {
                    tracing::debug!(%ns, error = %err, "IPv6 not switched off");
                }
            }
        }
        let announce = self.wire_devices(&ns, r, ha).await.map_err(e)?;
        if !ha {
            // An HA router's routes are keepalived's virtual routes.
            self.default_route(&ns, &r["gateway"]).await.map_err(e)?;
            self.sync_routes(&ns, r).await.map_err(e)?;
        }
        let nat = nat_rules(r);
        if self.nat_applied.get(&ns) != Some(&nat) {
            self.host.nft(Some(&ns), &nat).await.map_err(e)?;
            self.nat_applied.insert(ns.clone(), nat);
        }
        self.announce(&ns, announce);
        if ha {
            let files = keepalived::RouterFiles::new(&self.settings.state_dir, &id);
            let conf = keepalived::config(r, &files.notify_script());
            keepalived::ensure(&self.host, &ns, &files, &conf)
                .await
                .map_err(e)?;
        }
        self.host
            .ip(
                Some(&ns),
                &[
                    "addr",
                    "replace",
                    &format!("{METADATA_ADDRESS}/32"),
                    "dev",
                    "lo",
                ],
            )
            .await
            .map_err(e)?;
        self.proxies.ensure(&ns, Target::Router(id)).await
    }

    /// The router's `qr-`, `qg-` (and for an HA router `ha-`) interfaces,
    /// stale ones removed. A legacy router's addresses are set here; an HA
    /// router's are keepalived's, only its `ha-` address is ours. Returns
    /// the new addresses to announce.
    async fn wire_devices(
        &self,
        ns: &str,
        r: &Value,
        ha: bool,
    ) -> host::CmdResult<Vec<(String, String)>> {
        let mut announce: Vec<(String, String)> = Vec::new();
        // (device in the namespace, host-side device, port, extra addresses, ours)
        let mut devices: Vec<(String, String, &Value, Vec<String>, bool)> = Vec::new();
        for p in r["interfaces"].as_array().into_iter().flatten() {
            let pid = p["id"].as_str().unwrap_or_default();
            devices.push((
                device_name("qr-", pid),
                device_name("tap", pid),
                p,
                vec![],
                !ha,
            ));
        }
        let gw = &r["gateway"];
        if let Some(pid) = gw["id"].as_str() {
            let fips: Vec<String> = r["floating_ips"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["floating_ip_address"].as_str())
                .map(|a| format!("{a}/{}", if a.contains(':') { 128 } else { 32 }))
                .collect();
            devices.push((
                device_name("qg-", pid),
                device_name("tap", pid),
                gw,
                fips,
                !ha,
            ));
        }
        if let Some(pid) = r["ha_port"]["id"].as_str().filter(|_| ha) {
            let port = &r["ha_port"];
            devices.push((
                device_name("ha-", pid),
                device_name("tap", pid),
                port,
                vec![],
                true,
            ));
        }
        let wanted: HashSet<String> = devices.iter().map(|d| d.0.clone()).collect();
        for (name, _) in self.host.links(Some(ns)).await {
            let ours = ["qr-", "qg-", "ha-"].iter().any(|p| name.starts_with(p));
            if ours && !wanted.contains(&name) {
                self.host.ip(Some(ns), &["link", "del", &name]).await?;
            }
        }
        for (inner, outer, port, extra, own_addresses) in &devices {
            let mac = port["mac_address"].as_str().unwrap_or_default();
            let mtu = port["mtu"].as_i64().unwrap_or(1500);
            host::ensure_veth(&self.host, outer, inner, ns, mac, mtu).await?;
            if !own_addresses {
                continue;
            }
            let mut addrs = cidrs(port);
            addrs.extend(extra.iter().cloned());
            let before = host::addresses(&self.host, Some(ns), inner).await;
            host::set_addresses(&self.host, Some(ns), inner, &addrs).await?;
            for a in addrs
                .iter()
                .filter(|a| !before.contains(a) && !a.contains(':'))
            {
                let ip = a.split('/').next().unwrap_or_default().to_owned();
                announce.push((inner.clone(), ip));
            }
        }
        Ok(announce)
    }

    /// The default route through the external network's gateway.
    async fn default_route(&self, ns: &str, gw: &Value) -> host::CmdResult<()> {
        let ext_gw = gw["fixed_ips"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["ip_version"] == 4)
            .and_then(|f| f["gateway_ip"].as_str());
        match (gw["id"].as_str(), ext_gw) {
            (Some(pid), Some(via)) => {
                let qg = device_name("qg-", pid);
                self.host
                    .ip(
                        Some(ns),
                        &["route", "replace", "default", "via", via, "dev", &qg],
                    )
                    .await?;
            }
            _ => {
                let _ = self.host.ip(Some(ns), &["route", "del", "default"]).await;
            }
        }
        Ok(())
    }

    /// Neighbours that asked for a floating IP before it existed would
    /// otherwise wait for their next ARP retry (a second).
    fn announce(&self, ns: &str, addresses: Vec<(String, String)>) {
        for (dev, ip) in addresses {
            let (host, ns) = (self.host.clone(), ns.to_owned());
            tokio::spawn(async move {
                if let Err(e) = host
                    .run_in(
                        &ns,
                        "arping",
                        &["-U", "-c", "2", "-i", "0.2", "-I", &dev, &ip],
                    )
                    .await
                {
                    // Only a hint to neighbours: they ARP again on their own.
                    tracing::debug!(%dev, %ip, error = %e, "gratuitous ARP not sent");
                }
            });
        }
    }

    /// The router's extra routes, kept as `proto static` so they can be told
    /// from the connected and default routes.
    async fn sync_routes(&self, ns: &str, r: &Value) -> host::CmdResult<()> {
        let want: Vec<(String, String)> = r["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| {
                Some((
                    x["destination"].as_str()?.to_owned(),
                    x["nexthop"].as_str()?.to_owned(),
                ))
            })
            .filter(|(d, _)| !d.contains(':'))
            .collect();
        let have: Vec<(String, String)> = self
            .host
            .ip_json(Some(ns), &["route", "show", "proto", "static"])
            .await
            .into_iter()
            .filter_map(|x| {
                let dst = x["dst"].as_str()?;
                let dst = if dst.contains('/') {
                    dst.to_owned()
                } else {
                    format!("{dst}/32")
                };
                Some((dst, x["gateway"].as_str()?.to_owned()))
            })
            .collect();
        for (d, n) in want.iter().filter(|w| !have.contains(w)) {
            self.host
                .ip(
                    Some(ns),
                    &["route", "replace", d, "via", n, "proto", "static"],
                )
                .await?;
        }
        for (d, n) in have.iter().filter(|h| !want.contains(h)) {
            self.host
                .ip(Some(ns), &["route", "del", d, "via", n, "proto", "static"])
                .await?;
        }
        Ok(())
    }

    async fn teardown(&mut self, ns: &str) -> Result<(), String> {
        self.proxies.remove(ns);
        self.nat_applied.remove(ns);
        if let Some(id) = ns.strip_prefix("qrouter-") {
            self.reported_ha.remove(id);
            keepalived::stop(&keepalived::RouterFiles::new(&self.settings.state_dir, id)).await;
        }
        // Deleting the namespace deletes its veth ends and their host peers.
        host::delete_namespace(&self.host, ns)
            .await
            .map_err(|e| e.to_string())?;
        self.ledger.remove(ns).map_err(|e| e.to_string())
    }
}

impl L3Agent {
    /// Tell the server the VRRP state of each HA router here, when it
    /// changed since the last report.
    async fn report_ha_states(&mut self, routers: &[&str]) -> Result<(), String> {
        let mut changed = serde_json::Map::new();
        for id in routers {
            let state = keepalived::RouterFiles::new(&self.settings.state_dir, id)
                .read_state()
                .ha_state();
            if self.reported_ha.get(*id).map(String::as_str) != Some(state) {
                changed.insert((*id).to_owned(), json!(state));
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        self.plugin
            .call(
                "update_ha_states",
                json!({"host": self.settings.host, "states": changed}),
            )
            .await?;
        for (id, state) in changed {
            self.reported_ha
                .insert(id, state.as_str().unwrap_or_default().to_owned());
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for L3Agent {
    fn identity(&self) -> (&'static str, &'static str, &'static str) {
        ("L3 agent", "neutron-l3-agent", "l3_agent")
    }

    fn cares(&self, event: &str) -> bool {
        [
            "router.",
            "floatingip.",
            "port.",
            "subnet.",
            "network.",
            "agent.",
        ]
        .iter()
        .any(|p| event.starts_with(p))
    }

    async fn sync(&mut self) -> Result<Value, String> {
        let state = self.plugin.state("l3_state").await?;
        let routers = state["routers"].as_array().cloned().unwrap_or_default();
        let mut want = HashSet::new();
        let mut errors = Vec::new();
        let (mut interfaces, mut fips, mut gws) = (0, 0, 0);
        for r in routers.iter().filter(|r| r["admin_state_up"] != false) {
            let id = r["id"].as_str().unwrap_or_default();
            want.insert(namespace(id));
            interfaces += r["interfaces"].as_array().map_or(0, Vec::len);
            fips += r["floating_ips"].as_array().map_or(0, Vec::len);
            gws += usize::from(r["gateway"].is_object());
            if let Err(e) = self.ensure_router(r).await {
                errors.push(format!("router {id}: {e}"));
            }
        }
        for ns in self.ledger.with_prefix("qrouter-") {
            if !want.contains(&ns) {
                if let Err(e) = self.teardown(&ns).await {
                    errors.push(format!("{ns}: {e}"));
                }
            }
        }
        let ha_routers: Vec<&str> = routers
            .iter()
            .filter(|r| r["ha"] == true && r["admin_state_up"] != false)
            .filter_map(|r| r["id"].as_str())
            .collect();
        if let Err(e) = self.report_ha_states(&ha_routers).await {
            errors.push(format!("HA states: {e}"));
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(json!({
            "agent_mode": "legacy", "routers": want.len(), "interfaces": interfaces,
            "floating_ips": fips, "ex_gw_ports": gws,
            "external_network_bridge": "", "handle_internal_only_routers": true,
            "metadata_proxy": self.settings.metadata_url,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_has_floating_ips_before_the_gateway_snat() {
        let r = json!({
            "enable_snat": true,
            "gateway": {"id": "gw0123456789ab", "fixed_ips": [{"ip_address": "172.24.4.10", "ip_version": 4}]},
            "floating_ips": [{"floating_ip_address": "172.24.4.20", "fixed_ip_address": "10.0.0.3"}],
        });
        let s = nat_rules(&r);
        assert!(s.contains("ip daddr 172.24.4.20 dnat to 10.0.0.3"), "{s}");
        let fip = s.find("ip saddr 10.0.0.3 snat to 172.24.4.20").unwrap();
        let gw = s
            .find("oifname \"qg-gw012345678\" snat to 172.24.4.10")
            .unwrap();
        assert!(fip < gw);
        let mut off = r.clone();
        off["enable_snat"] = json!(false);
        assert!(!nat_rules(&off).contains("snat to 172.24.4.10"));
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }
}
