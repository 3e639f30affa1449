//! Security groups as nftables rules. Instances' taps hang off bridges, and
//! this kernel's bridge family has no connection tracking, so the work is
//! split: a `bridge` table sees which port a frame enters or leaves by,
//! drops spoofed MAC/ARP sources and marks the packet with the ports'
//! indexes; bridged IP traffic then passes the `inet` forward hook
//! (br_netfilter), where an `inet` table applies each port's rules with
//! connection tracking, one conntrack zone per bridge so that tenants with
//! the same addresses never share entries. Both tables are rewritten in one
//! `nft -f` transaction each time, so the rules are never half applied.

use crate::host::{device_name, CmdResult, Host};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;

pub struct Firewall {
    host: Host,
    applied: Option<String>,
}

fn protocol_number(p: &str) -> Option<u8> {
    Some(match p {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "igmp" => 2,
        "ipip" => 4,
        "ospf" => 89,
        "pgm" => 113,
        "rsvp" => 46,
        "udplite" => 136,
        "vrrp" => 112,
        "egp" => 8,
        "dccp" => 33,
        "ipv6-encap" => 41,
        "ipv6-frag" => 44,
        "ipv6-nonxt" => 59,
        "ipv6-opts" => 60,
        "ipv6-route" => 43,
        n => return n.parse().ok(),
    })
}

fn is_v6(addr: &str) -> bool {
    addr.contains(':')
}

fn set(items: &BTreeSet<String>) -> String {
    format!(
        "{{ {} }}",
        items.iter().cloned().collect::<Vec<_>>().join(", ")
    )
}

/// One security group rule as an nftables match ending in `return` (the
/// packet passes this port's check; the other port's check may follow).
fn rule_text(rule: &Value, members: &Value) -> Option<String> {
    let v6 = rule["ethertype"] == "IPv6";
    let ingress = rule["direction"] == "ingress";
    let mut m = String::from(if v6 {
        "meta nfproto ipv6"
    } else {
        "meta nfproto ipv4"
    });
    let (fam, dir) = (
        if v6 { "ip6" } else { "ip" },
        if ingress { "saddr" } else { "daddr" },
    );
    let prefix = rule["normalized_cidr"]
        .as_str()
        .or_else(|| rule["remote_ip_prefix"].as_str());
    if let Some(prefix) = prefix {
        if prefix != "0.0.0.0/0" && prefix != "::/0" {
            if is_v6(prefix) != v6 {
                return None;
            }
            let _ = write!(m, " {fam} {dir} {prefix}");
        }
    } else if let Some(group) = rule["remote_group_id"].as_str() {
        let addrs: BTreeSet<String> = members[group]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .filter(|a| is_v6(a) == v6)
            .map(str::to_owned)
            .collect();
        if addrs.is_empty() {
            return None;
        }
        let _ = write!(m, " {fam} {dir} {}", set(&addrs));
    }
    if let Some(proto) = rule["protocol"]
        .as_str()
        .filter(|p| !p.is_empty() && *p != "any")
    {
        let mut n = protocol_number(proto)?;
        if v6 && n == 1 {
            n = 58;
        }
        let _ = write!(m, " meta l4proto {n}");
        let min = rule["port_range_min"].as_i64();
        let max = rule["port_range_max"].as_i64();
        match n {
            6 | 17 | 132 | 136 | 33 => match (min, max) {
                (Some(a), Some(b)) if a != b => {
                    let _ = write!(m, " th dport {a}-{b}");
                }
                (Some(a), _) => {
                    let _ = write!(m, " th dport {a}");
                }
                _ => {}
            },
            1 | 58 => {
                let word = if n == 1 { "icmp" } else { "icmpv6" };
                if let Some(t) = min {
                    let _ = write!(m, " {word} type {t}");
                    if let Some(c) = max {
                        let _ = write!(m, " {word} code {c}");
                    }
                }
            }
            _ => {}
        }
    }
    m.push_str(" return");
    Some(m)
}

/// The whole ruleset for the ports plugged on this host.
pub fn ruleset(ports: &[Value], state: &Value, bridges: &[String]) -> String {
    let mut bridge = String::new();
    let mut inet = String::new();
    let mut chains = String::new();
    let mut inet_chains = String::new();
    let members = &state["remote_group_members"];
    let filtered: Vec<&Value> = ports.iter().filter(|p| p["filtered"] == true).collect();
    for (i, port) in filtered.iter().enumerate() {
        let idx = i + 1;
        let tap = device_name("tap", port["id"].as_str().unwrap_or_default());
        let mut macs = BTreeSet::new();
        let mut ips = BTreeSet::new();
        if let Some(mac) = port["mac_address"].as_str() {
            macs.insert(mac.to_owned());
        }
        for f in port["fixed_ips"].as_array().into_iter().flatten() {
            if let Some(ip) = f["ip_address"].as_str() {
                ips.insert(ip.to_owned());
            }
        }
        for pair in port["allowed_address_pairs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(ip) = pair["ip_address"].as_str() {
                ips.insert(ip.to_owned());
            }
            if let Some(mac) = pair["mac_address"].as_str() {
                macs.insert(mac.to_owned());
            }
        }
        let v4: BTreeSet<String> = ips.iter().filter(|a| !is_v6(a)).cloned().collect();
        let mut v6: BTreeSet<String> = ips.iter().filter(|a| is_v6(a)).cloned().collect();
        v6.insert("fe80::/10".into());
        let mut arp_ok = v4.clone();
        arp_ok.insert("0.0.0.0".into());
        let _ = writeln!(bridge, "    iifname \"{tap}\" jump from_{idx}");
        let _ = writeln!(
            bridge,
            "    oifname \"{tap}\" meta mark set meta mark or 0x{:x}",
            idx << 16
        );
        let _ = write!(
            chains,
            "  chain from_{idx} {{\n    ether saddr != {} drop\n    arp saddr ip != {} drop\n    meta mark set meta mark or 0x{idx:x}\n  }}\n",
            set(&macs),
            set(&arp_ok)
        );
        let _ = writeln!(
            inet,
            "    meta mark and 0xffff == 0x{idx:x} jump egress_{idx}"
        );
        let _ = writeln!(
            inet,
            "    meta mark and 0xffff0000 == 0x{:x} jump ingress_{idx}",
            idx << 16
        );
        let mut egress = vec![
            "udp sport 68 udp dport 67 return".to_owned(),
            "udp sport 67 udp dport 68 drop".to_owned(),
            "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } return"
                .to_owned(),
        ];
        if v4.is_empty() {
            egress.push("meta nfproto ipv4 drop".into());
        } else {
            egress.push(format!("meta nfproto ipv4 ip saddr != {} drop", set(&v4)));
        }
        egress.push(format!("meta nfproto ipv6 ip6 saddr != {} drop", set(&v6)));
        let mut ingress = vec![
            "udp sport 67 udp dport 68 return".to_owned(),
            "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } return"
                .to_owned(),
        ];
        for chain in [&mut egress, &mut ingress] {
            chain.push("ct state invalid drop".into());
            chain.push("ct state established,related return".into());
        }
        let mut seen = BTreeSet::new();
        for group in port["security_groups"].as_array().into_iter().flatten() {
            let group = group.as_str().unwrap_or_default();
            for rule in state["security_groups"][group]
                .as_array()
                .into_iter()
                .flatten()
            {
                let Some(text) = rule_text(rule, members) else {
                    continue;
                };
                if !seen.insert((rule["direction"] == "ingress", text.clone())) {
                    continue;
                }
                if rule["direction"] == "ingress" {
                    ingress.push(text);
                } else {
                    egress.push(text);
                }
            }
        }
        for (name, rules) in [("egress", egress), ("ingress", ingress)] {
            let _ = writeln!(inet_chains, "  chain {name}_{idx} {{");
            for r in rules {
                let _ = writeln!(inet_chains, "    {r}");
            }
            let _ = writeln!(inet_chains, "    drop\n  }}");
        }
    }
    let mut zones = String::new();
    for b in bridges {
        let zone = zone_of(b);
        let _ = writeln!(zones, "    iifname \"{b}\" ct zone set {zone}");
    }
    format!(
        "table bridge ferrostack_ports\ndelete table bridge ferrostack_ports\n\
table bridge ferrostack_ports {{\n  chain forward {{\n    type filter hook forward priority -100; policy accept;\n    meta mark set 0\n{bridge}  }}\n{chains}}}\n\
table inet ferrostack_sg\ndelete table inet ferrostack_sg\n\
table inet ferrostack_sg {{\n  chain zones {{\n    type filter hook prerouting priority raw; policy accept;\n{zones}  }}\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n{inet}  }}\n{inet_chains}}}\n"
    )
}

/// A stable conntrack zone for a bridge (1..=65000).
fn zone_of(bridge: &str) -> u32 {
    let mut h: u32 = 2166136261;
    for b in bridge.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16777619);
    }
    1 + h % 65000
}

impl Firewall {
    pub fn new(host: Host) -> Firewall {
        Firewall {
            host,
            applied: None,
        }
    }

    /// Install the rules for `ports` unless they are already in place.
    pub async fn apply(
        &mut self,
        ports: &[Value],
        state: &Value,
        bridges: &[String],
    ) -> CmdResult<()> {
        let mut bridges = bridges.to_vec();
        bridges.sort();
        let script = ruleset(ports, state, &bridges);
        if self.applied.as_deref() == Some(script.as_str()) {
            return Ok(());
        }
        if self.applied.is_none() {
            // Bridged traffic must reach the inet hooks (br_netfilter).
            for key in [
                "net.bridge.bridge-nf-call-iptables",
                "net.bridge.bridge-nf-call-ip6tables",
            ] {
                self.host.sysctl(None, key, "1").await?;
            }
        }
        self.host.nft(None, &script).await?;
        self.applied = Some(script);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state() -> Value {
        json!({
            "security_groups": {"sg1": [
                {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                 "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"},
                {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": "sg1"},
                {"direction": "egress", "ethertype": "IPv4"},
                {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
                 "port_range_min": 8, "port_range_max": null, "remote_ip_prefix": "10.1.0.0/16"},
            ]},
            "remote_group_members": {"sg1": ["10.0.0.3", "10.0.0.4", "fd00::5"]},
        })
    }

    fn port() -> Value {
        json!({"id": "0123456789abcdef", "filtered": true, "mac_address": "fa:16:3e:00:00:01",
               "fixed_ips": [{"ip_address": "10.0.0.3"}], "security_groups": ["sg1"],
               "allowed_address_pairs": [{"ip_address": "10.0.0.100/32", "mac_address": "fa:16:3e:00:00:01"}]})
    }

    #[test]
    fn rules_follow_the_groups() {
        let s = ruleset(&[port()], &state(), &["brq0123".into()]);
        assert!(s.contains("iifname \"tap0123456789a\" jump from_1"), "{s}");
        assert!(s.contains("oifname \"tap0123456789a\" meta mark set meta mark or 0x10000"));
        assert!(s.contains("ether saddr != { fa:16:3e:00:00:01 } drop"));
        assert!(s.contains("arp saddr ip != { 0.0.0.0, 10.0.0.100/32, 10.0.0.3 } drop"));
        assert!(s.contains("meta nfproto ipv4 ip saddr != { 10.0.0.100/32, 10.0.0.3 } drop"));
        assert!(s.contains("meta nfproto ipv4 meta l4proto 6 th dport 22 return"));
        assert!(s.contains("meta nfproto ipv4 ip saddr { 10.0.0.3, 10.0.0.4 } return"));
        assert!(
            s.contains("meta nfproto ipv4 ip saddr 10.1.0.0/16 meta l4proto 1 icmp type 8 return")
        );
        assert!(s.contains("chain egress_1 {\n"));
        assert!(s.contains("chain ingress_1 {\n"));
        assert!(s.contains("ct zone set"));
        // Every chain is closed: braces balance.
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
    }

    #[test]
    fn unfiltered_ports_get_no_rules() {
        let mut p = port();
        p["filtered"] = json!(false);
        let s = ruleset(&[p], &state(), &[]);
        assert!(!s.contains("tap0123456789a"));
    }

    #[test]
    fn empty_remote_group_adds_nothing() {
        let rule = json!({"direction": "ingress", "ethertype": "IPv4", "remote_group_id": "none"});
        assert!(rule_text(&rule, &json!({})).is_none());
        let v6 = json!({"direction": "ingress", "ethertype": "IPv6", "protocol": "icmp"});
        assert_eq!(
            rule_text(&v6, &json!({})).unwrap(),
            "meta nfproto ipv6 meta l4proto 58 return"
        );
    }
}
