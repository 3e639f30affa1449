//! HA routers' VRRP: one keepalived per HA router, inside its `qrouter-`
//! namespace, with a VRRP instance on the router's `ha-` interface (its
//! port on the project's HA network). Every L3 agent hosting the router
//! runs one; the master holds the router's addresses — gateway, internal
//! interfaces, floating IPs — as virtual IPs and its routes as virtual
//! routes, so a standby copy answers nothing. On becoming master
//! keepalived sends gratuitous ARPs for them, which moves the external
//! network's and the tunnels' forwarding entries to the new node (the
//! MAC addresses are the ports', the same on every node). Its notify
//! script writes the state to a file the agent reads and reports.

use crate::host::{device_name, CmdError, CmdResult, Host};
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Seconds between VRRP adverts. A backup takes over after three missed
/// ones (plus skew), so a dead master costs about 3 s; Neutron's default
/// is 2 s (about 6 s).
pub const ADVERT_INT: u32 = 1;
/// Both nodes start as backup with one priority and never preempt: a node
/// coming back does not take the router from the one serving it. High
/// (Neutron uses 50) because the takeover waits `(256 - priority) / 256`
/// of an advert interval on top of the three missed adverts: 0.8 s at 50,
/// 0.02 s here — a measured failover gap of 4.9 s had little room under 5 s.
const PRIORITY: u32 = 250;

/// What keepalived's notify script says a node's copy is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VrrpState {
    Master,
    Backup,
}

impl VrrpState {
    /// Neutron's `ha_state` for the server.
    pub fn ha_state(self) -> &'static str {
        match self {
            VrrpState::Master => "active",
            VrrpState::Backup => "standby",
        }
    }
}

/// Where one router's keepalived keeps its files.
pub struct RouterFiles {
    pub dir: PathBuf,
}

impl RouterFiles {
    pub fn new(state_dir: &Path, router_id: &str) -> RouterFiles {
        RouterFiles {
            dir: state_dir.join("ha").join(router_id),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("keepalived.conf")
    }
    pub fn notify_script(&self) -> PathBuf {
        self.dir.join("notify.sh")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
    fn pid(&self) -> PathBuf {
        self.dir.join("keepalived.pid")
    }
    fn vrrp_pid(&self) -> PathBuf {
        self.dir.join("vrrp.pid")
    }

    /// The state the notify script last wrote (backup until it says master).
    pub fn read_state(&self) -> VrrpState {
        match std::fs::read_to_string(self.state()) {
            Ok(s) if s.trim() == "master" => VrrpState::Master,
            _ => VrrpState::Backup,
        }
    }

    /// The running keepalived's pid, if its pid file names a live one.
    fn running(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains("keepalived")
            .then_some(pid)
    }
}

fn cidrs(port: &Value) -> impl Iterator<Item = &str> {
    port["fixed_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["cidr"].as_str())
        .filter(|c| !c.contains(':'))
}

/// keepalived.conf for one HA router from its `l3_state` entry. The
/// primary VIP is 169.254.0.<vr_id> on the HA interface (as Neutron's);
/// the router's own addresses are "excluded" VIPs, carried by the master
/// but not listed in adverts (no limit on their number).
pub fn config(router: &Value, notify_script: &Path) -> String {
    let vr_id = router["ha_vr_id"].as_i64().unwrap_or(1);
    let ha = device_name("ha-", router["ha_port"]["id"].as_str().unwrap_or_default());
    let mut vips = String::new();
    let mut routes = String::new();
    let gw = &router["gateway"];
    if let Some(gw_id) = gw["id"].as_str() {
        let qg = device_name("qg-", gw_id);
        for c in cidrs(gw) {
            let _ = writeln!(vips, "        {c} dev {qg}");
        }
        for f in router["floating_ips"].as_array().into_iter().flatten() {
            if let Some(a) = f["floating_ip_address"]
                .as_str()
                .filter(|a| !a.contains(':'))
            {
                let _ = writeln!(vips, "        {a}/32 dev {qg}");
            }
        }
        let via = gw["fixed_ips"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["ip_version"] == 4)
            .and_then(|f| f["gateway_ip"].as_str());
        if let Some(via) = via {
            let _ = writeln!(routes, "        0.0.0.0/0 via {via} dev {qg}");
        }
    }
    for p in router["interfaces"].as_array().into_iter().flatten() {
        let qr = device_name("qr-", p["id"].as_str().unwrap_or_default());
        for c in cidrs(p) {
            let _ = writeln!(vips, "        {c} dev {qr}");
        }
    }
    for r in router["routes"].as_array().into_iter().flatten() {
        if let (Some(d), Some(n)) = (r["destination"].as_str(), r["nexthop"].as_str()) {
            if !d.contains(':') {
                let _ = writeln!(routes, "        {d} via {n}");
            }
        }
    }
    let script = notify_script.display();
    format!(
        "global_defs {{\n    router_id {vr_id}\n}}\n\
vrrp_instance VR_{vr_id} {{\n    state BACKUP\n    interface {ha}\n    virtual_router_id {vr_id}\n\
    priority {PRIORITY}\n    nopreempt\n    advert_int {ADVERT_INT}\n    garp_master_delay 1\n\
    garp_master_repeat 3\n    track_interface {{\n        {ha}\n    }}\n\
    virtual_ipaddress {{\n        169.254.0.{vr_id}/24 dev {ha}\n    }}\n\
    virtual_ipaddress_excluded {{\n{vips}    }}\n    virtual_routes {{\n{routes}    }}\n\
    notify_master \"{script} master\"\n    notify_backup \"{script} backup\"\n\
    notify_fault \"{script} backup\"\n}}\n"
    )
}

/// The notify script: keepalived runs it with the new state.
pub fn notify_script(state_file: &Path) -> String {
    format!(
        "#!/bin/sh\n# Written by the L3 agent: keepalived's VRRP state for the agent to report.\necho \"$1\" > {}.tmp && mv {0}.tmp {0}\n",
        state_file.display()
    )
}

/// Write the router's files and make its keepalived run with them: start
/// it when none runs, reload it (SIGHUP, keeping its state) when the
/// configuration changed.
pub async fn ensure(host: &Host, ns: &str, files: &RouterFiles, conf: &str) -> CmdResult<()> {
    let io = |e: std::io::Error| CmdError(format!("{}: {e}", files.dir.display()));
    std::fs::create_dir_all(&files.dir).map_err(io)?;
    let script = files.notify_script();
    let script_text = notify_script(&files.state());
    if std::fs::read_to_string(&script).ok().as_deref() != Some(&script_text) {
        std::fs::write(&script, &script_text).map_err(io)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    let changed = std::fs::read_to_string(files.config()).ok().as_deref() != Some(conf);
    if changed {
        std::fs::write(files.config(), conf).map_err(io)?;
    }
    match files.running() {
        Some(pid) if changed => signal(pid, "HUP").await,
        Some(_) => Ok(()),
        None => {
            let (conf, pid, vrrp) = (files.config(), files.pid(), files.vrrp_pid());
            let args = [
                "-P",
                "-f",
                path_str(&conf),
                "-p",
                path_str(&pid),
                "-r",
                path_str(&vrrp),
            ];
            host.start_daemon_in(ns, "keepalived", &args, &files.dir.join("start.log"))
                .await
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

async fn signal(pid: i32, sig: &str) -> CmdResult<()> {
    Host::new("")
        .run("kill", &[&format!("-{sig}"), &pid.to_string()])
        .await
        .map(|_| ())
}

/// Stop the router's keepalived (it removes its addresses) and drop its files.
pub async fn stop(files: &RouterFiles) {
    if let Some(pid) = files.running() {
        let _ = signal(pid, "TERM").await;
        for _ in 0..50 {
            if files.running().is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let _ = std::fs::remove_dir_all(&files.dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn router() -> Value {
        json!({
            "id": "r1", "ha": true, "ha_vr_id": 7,
            "ha_port": {"id": "ha0123456789abc", "fixed_ips": [{"cidr": "169.254.192.5/18"}]},
            "gateway": {"id": "gw0123456789abc", "fixed_ips": [
                {"cidr": "192.168.100.110/24", "ip_version": 4, "gateway_ip": "192.168.100.1"}]},
            "interfaces": [{"id": "if0123456789abc", "fixed_ips": [
                {"cidr": "50.50.1.1/24", "ip_version": 4}, {"cidr": "fd00::1/64", "ip_version": 6}]}],
            "floating_ips": [{"floating_ip_address": "192.168.100.111", "fixed_ip_address": "50.50.1.5"}],
            "routes": [{"destination": "10.9.0.0/16", "nexthop": "50.50.1.7"}],
        })
    }

    #[test]
    fn the_router_addresses_are_virtual_and_only_the_master_holds_them() {
        let c = config(&router(), Path::new("/state/ha/r1/notify.sh"));
        for line in [
            "interface ha-ha012345678",
            "virtual_router_id 7",
            "state BACKUP",
            "nopreempt",
            "advert_int 1",
            "169.254.0.7/24 dev ha-ha012345678",
            "192.168.100.110/24 dev qg-gw012345678",
            "192.168.100.111/32 dev qg-gw012345678",
            "50.50.1.1/24 dev qr-if012345678",
            "0.0.0.0/0 via 192.168.100.1 dev qg-gw012345678",
            "10.9.0.0/16 via 50.50.1.7",
            "notify_master \"/state/ha/r1/notify.sh master\"",
            "notify_backup \"/state/ha/r1/notify.sh backup\"",
        ] {
            assert!(c.contains(line), "no `{line}` in:\n{c}");
        }
        // IPv6 addresses are left out; the VRRP port's own address is the
        // interface's, not a virtual one.
        assert!(
            !c.contains("fd00::1") && !c.contains("169.254.192.5"),
            "{c}"
        );
        assert_eq!(c.matches('{').count(), c.matches('}').count(), "{c}");
        // The excluded addresses sit inside their block.
        let block = c.split("virtual_ipaddress_excluded {").nth(1).unwrap();
        let block = &block[..block.find('}').unwrap()];
        assert_eq!(
            block.lines().filter(|l| !l.trim().is_empty()).count(),
            3,
            "{block}"
        );
    }

    #[test]
    fn a_router_without_gateway_has_no_default_route() {
        let mut r = router();
        r["gateway"] = Value::Null;
        r["floating_ips"] = json!([]);
        let c = config(&r, Path::new("/n.sh"));
        assert!(!c.contains("0.0.0.0/0"), "{c}");
        assert!(c.contains("50.50.1.1/24 dev qr-if012345678"), "{c}");
    }

    #[test]
    fn the_state_file_says_master_or_backup() {
        let dir = std::env::temp_dir().join(format!("netha-ka-{}", std::process::id()));
        let files = RouterFiles::new(&dir, "r1");
        assert_eq!(files.read_state(), VrrpState::Backup);
        std::fs::create_dir_all(&files.dir).unwrap();
        std::fs::write(files.state(), "master\n").unwrap();
        assert_eq!(files.read_state(), VrrpState::Master);
        assert_eq!(files.read_state().ha_state(), "active");
        std::fs::write(files.state(), "backup\n").unwrap();
        assert_eq!(files.read_state().ha_state(), "standby");
        let _ = std::fs::remove_dir_all(dir);
    }
}
