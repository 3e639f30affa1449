//! The loop every agent runs: report state, reconcile at once when a
//! relevant change is announced, and again periodically in case an
//! announcement was missed.

use crate::{Plugin, Settings};
use ferrostack_bus::SharedBus;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// `ip -o monitor link` in the host's namespace: one line per link change.
fn watch_links(netns: &str) -> Option<(Child, Lines<BufReader<ChildStdout>>)> {
    let mut c = Command::new("ip");
    if !netns.is_empty() {
        c.args(["-n", netns]);
    }
    let mut child = c
        .args(["-o", "monitor", "link"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| tracing::warn!(error = %e, "cannot watch the host's links; relying on periodic passes"))
        .ok()?;
    let out = child.stdout.take()?;
    Some((child, BufReader::new(out).lines()))
}

#[async_trait::async_trait]
pub trait Reconciler: Send + 'static {
    /// Neutron's `agent_type`, `binary` and `topic` for this agent.
    fn identity(&self) -> (&'static str, &'static str, &'static str);
    /// What the agent reports before its first pass (a tunnel endpoint
    /// other hosts need at once).
    fn initial_configurations(&self) -> Value {
        json!({})
    }
    /// Whether a notification (`port.update.end`, …) may change this agent's host.
    fn cares(&self, event_type: &str) -> bool;
    /// Whether a network device appearing on the host (a VM's tap made by
    /// the hypervisor) calls for a pass at once; such events are no
    /// notification, so the agent watches the host's links.
    fn watches_devices(&self) -> bool {
        false
    }
    /// Make the host match the desired state; returns the agent's
    /// `configurations` for its heartbeat.
    async fn sync(&mut self) -> Result<Value, String>;
}

async fn report(
    plugin: &Plugin,
    settings: &Settings,
    who: (&str, &str, &str),
    conf: &Value,
    first: bool,
) {
    let (agent_type, binary, topic) = who;
    let state = json!({"agent_state": {
        "agent_type": agent_type, "binary": binary, "topic": topic,
        "host": settings.host, "configurations": conf, "start_flag": first,
    }});
    if let Err(e) = plugin.call("report_state", state).await {
        tracing::warn!(agent = agent_type, error = %e, "state report failed");
    }
}

pub async fn spawn<R: Reconciler>(
    mut agent: R,
    settings: Settings,
    plugin: Plugin,
    bus: SharedBus,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut events = bus
        .subscribe_notifications()
        .await
        .map_err(|e| e.to_string())?;
    let who = agent.identity();
    // Register first: the network service schedules networks and routers
    // only to agents it knows.
    let mut conf = agent.initial_configurations();
    report(&plugin, &settings, who, &conf, true).await;
    Ok(tokio::spawn(async move {
        let mut heartbeat = tokio::time::interval(settings.report_interval);
        let mut resync = tokio::time::interval(settings.resync_interval);
        let mut dirty = true;
        let mut failures = 0u32;
        let mut links = if agent.watches_devices() {
            watch_links(&settings.host_netns)
        } else {
            None
        };
        loop {
            if dirty {
                // Let a burst of changes settle into one pass.
                tokio::time::sleep(Duration::from_millis(30)).await;
                while let Ok(n) = events.try_recv() {
                    let _ = n;
                }
                dirty = false;
                match agent.sync().await {
                    Ok(c) => {
                        conf = c;
                        failures = 0;
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(agent = who.0, error = %e, "sync failed; retrying");
                        let backoff = Duration::from_millis(200 * u64::from(failures.min(10)));
                        tokio::time::sleep(backoff).await;
                        dirty = true;
                        continue;
                    }
                }
            }
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(n) => dirty = agent.cares(&n.event_type),
                    // Missed some: resync everything.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => dirty = true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = heartbeat.tick() => report(&plugin, &settings, who, &conf, false).await,
                _ = resync.tick() => dirty = true,
                line = next_link_change(&mut links) => match line {
                    // A tap came (or went): plug it now, not at the next resync.
                    Some(l) => dirty = l.contains(" tap"),
                    None => links = None,
                },
            }
        }
    }))
}

/// The next link change, or never when the host's links are not watched.
async fn next_link_change(
    links: &mut Option<(Child, Lines<BufReader<ChildStdout>>)>,
) -> Option<String> {
    match links {
        Some((_, lines)) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}
