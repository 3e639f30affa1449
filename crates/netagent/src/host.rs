//! Running the host's networking tools (`ip`, `bridge`, `nft`, `dnsmasq`)
//! in the host's own namespace or in a router/DHCP namespace. Every call
//! goes through here so that a failure names the command that failed.

use serde_json::Value;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

#[derive(Debug)]
pub struct CmdError(pub String);

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CmdError {}

pub type CmdResult<T> = Result<T, CmdError>;

/// Where a command runs: the host's stack (optionally a named namespace
/// standing for the host, as tests do) or a named namespace of the agent's.
#[derive(Clone, Debug)]
pub struct Host {
    /// Namespace standing for this host; `None` is the agent's own.
    pub netns: Option<String>,
}

impl Host {
    pub fn new(netns: &str) -> Host {
        Host {
            netns: (!netns.is_empty()).then(|| netns.to_owned()),
        }
    }

    /// `ip` and `bridge` switch only the network namespace (`-n`); other
    /// tools run under `ip netns exec`, which also gives them a private
    /// mount namespace — so namespaces are never created from in there.
    fn command(ns: Option<&str>, prog: &str, args: &[&str]) -> Command {
        let mut c = match ns {
            Some(ns) if prog == "ip" || prog == "bridge" => {
                let mut c = Command::new(prog);
                c.args(["-n", ns]);
                c
            }
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, prog]);
                c
            }
            None => Command::new(prog),
        };
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn output(mut c: Command, what: String, input: Option<&str>) -> CmdResult<String> {
        if input.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c
            .spawn()
            .map_err(|e| CmdError(format!("{what}: cannot start: {e}")))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            // A tool that stops reading has failed; its exit status and
            // stderr below say why.
            let _ = stdin.write_all(text.as_bytes()).await;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| CmdError(format!("{what}: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(CmdError(format!(
                "{what}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Run on the host.
    pub async fn run(&self, prog: &str, args: &[&str]) -> CmdResult<String> {
        let what = format!("{prog} {}", args.join(" "));
        Self::output(Self::command(self.netns.as_deref(), prog, args), what, None).await
    }

    /// Run inside a namespace of the agent's (`qrouter-…`, `qdhcp-…`).
    pub async fn run_in(&self, ns: &str, prog: &str, args: &[&str]) -> CmdResult<String> {
        let what = format!("[{ns}] {prog} {}", args.join(" "));
        Self::output(Self::command(Some(ns), prog, args), what, None).await
    }

    /// Start a daemon inside a namespace (it forks and detaches); its
    /// start-up errors are read from `log`, so no pipe is left open.
    pub async fn start_daemon_in(
        &self,
        ns: &str,
        prog: &str,
        args: &[&str],
        log: &std::path::Path,
    ) -> CmdResult<()> {
        let what = format!("[{ns}] {prog} {}", args.join(" "));
        let file = std::fs::File::create(log).map_err(|e| CmdError(format!("{what}: {e}")))?;
        let err = file
            .try_clone()
            .map_err(|e| CmdError(format!("{what}: {e}")))?;
        let status = Command::new("ip")
            .args(["netns", "exec", ns, prog])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .status()
            .await
            .map_err(|e| CmdError(format!("{what}: cannot start: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            Err(CmdError(format!("{what}: {}", text.trim())))
        }
    }

    /// Apply an nftables script atomically, on the host or in a namespace.
    pub async fn nft(&self, ns: Option<&str>, script: &str) -> CmdResult<()> {
        let ns = ns.or(self.netns.as_deref());
        let what = format!("[{}] nft -f -", ns.unwrap_or("host"));
        Self::output(Self::command(ns, "nft", &["-f", "-"]), what, Some(script))
            .await
            .map(|_| ())
    }

    /// `ip -j …` parsed; an absent device or namespace reads as empty.
    pub async fn ip_json(&self, ns: Option<&str>, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["-j"];
        full.extend_from_slice(args);
        let out = match ns {
            Some(ns) => self.run_in(ns, "ip", &full).await,
            None => self.run("ip", &full).await,
        };
        out.ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// `ip …` in the host or a namespace.
    pub async fn ip(&self, ns: Option<&str>, args: &[&str]) -> CmdResult<String> {
        match ns {
            Some(ns) => self.run_in(ns, "ip", args).await,
            None => self.run("ip", args).await,
        }
    }

    /// Links of the host (or a namespace) by name, with details.
    pub async fn links(&self, ns: Option<&str>) -> std::collections::HashMap<String, Value> {
        self.ip_json(ns, &["-d", "link", "show"])
            .await
            .into_iter()
            .filter_map(|l| Some((l["ifname"].as_str()?.to_owned(), l)))
            .collect()
    }

    /// Write a sysctl of the host or a namespace through /proc (which shows
    /// the caller's namespace).
    pub async fn sysctl(&self, ns: Option<&str>, key: &str, value: &str) -> CmdResult<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let script = format!("echo {value} > {path}");
        match ns.or(self.netns.as_deref()) {
            Some(ns) => self.run_in(ns, "sh", &["-c", &script]).await,
            None => {
                Self::output(
                    Self::command(None, "sh", &["-c", &script]),
                    script.clone(),
                    None,
                )
                .await
            }
        }
        .map(|_| ())
    }
}

/// Names of the named namespaces on this machine.
pub fn namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Device names are at most 15 characters: Neutron's prefix + the first
/// 11 characters of the port id.
pub fn device_name(prefix: &str, port_id: &str) -> String {
    format!("{prefix}{}", &port_id[..port_id.len().min(11)])
}

/// The addresses (`addr/prefixlen`) of a device, link-local IPv6 excepted.
pub async fn addresses(host: &Host, ns: Option<&str>, dev: &str) -> Vec<String> {
    host.ip_json(ns, &["addr", "show", "dev", dev])
        .await
        .into_iter()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["scope"] != "link")
        .filter_map(|a| Some(format!("{}/{}", a["local"].as_str()?, a["prefixlen"])))
        .collect()
}

/// Make a device carry exactly `want` (besides link-local addresses).
pub async fn set_addresses(
    host: &Host,
    ns: Option<&str>,
    dev: &str,
    want: &[String],
) -> CmdResult<()> {
    let have = addresses(host, ns, dev).await;
    for a in want.iter().filter(|a| !have.contains(a)) {
        host.ip(ns, &["addr", "replace", a, "dev", dev]).await?;
    }
    for a in have.iter().filter(|a| !want.contains(a)) {
        host.ip(ns, &["addr", "del", a, "dev", dev]).await?;
    }
    Ok(())
}

/// Make sure a named namespace exists with its loopback up.
pub async fn ensure_namespace(host: &Host, ns: &str) -> CmdResult<()> {
    if !namespaces().iter().any(|n| n == ns) {
        Host::new("").run("ip", &["netns", "add", ns]).await?;
    }
    host.ip(Some(ns), &["link", "set", "lo", "up"]).await?;
    Ok(())
}

/// Remove a namespace; absent is fine.
pub async fn delete_namespace(host: &Host, ns: &str) -> CmdResult<()> {
    let _ = host;
    if namespaces().iter().any(|n| n == ns) {
        Host::new("").run("ip", &["netns", "del", ns]).await?;
    }
    Ok(())
}

/// A veth pair: `outer` on the host, `inner` in `ns` with `mac` and `mtu`,
/// both up. An outer end left behind by a crash is replaced.
pub async fn ensure_veth(
    host: &Host,
    outer: &str,
    inner: &str,
    ns: &str,
    mac: &str,
    mtu: i64,
) -> CmdResult<()> {
    let inner_links = host.links(Some(ns)).await;
    if !inner_links.contains_key(inner) {
        if host.links(None).await.contains_key(outer) {
            host.ip(None, &["link", "del", outer]).await?;
        }
        host.ip(
            None,
            &[
                "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns,
            ],
        )
        .await?;
    }
    let mtu = mtu.to_string();
    host.ip(
        Some(ns),
        &["link", "set", inner, "address", mac, "mtu", &mtu, "up"],
    )
    .await?;
    host.ip(None, &["link", "set", outer, "mtu", &mtu, "up"])
        .await?;
    Ok(())
}
