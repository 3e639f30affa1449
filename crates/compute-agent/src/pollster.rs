//! The compute host's metering pollster (Ceilometer's compute agent):
//! every `[telemetry] polling_interval` seconds, each guest's figures from
//! the driver become samples with Ceilometer's meter names — `cpu`,
//! `memory.usage`, `disk.device.{read,write}.{bytes,requests}`,
//! `network.{incoming,outgoing}.{bytes,packets}` — published as one
//! `telemetry.polling` notification per guest. Counters are cumulative;
//! rates are the metric store's business (`rate:*` aggregations), as in
//! today's Ceilometer.

use crate::ComputeAgent;
use ferrostack_hypervisor::stats::GuestStats;
use ferrostack_hypervisor::DriverError;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Poll every `interval` for as long as the agent runs.
pub fn spawn(agent: &Arc<ComputeAgent>, interval: Duration) -> JoinHandle<()> {
    let agent = agent.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            if !poll_once(&agent).await {
                tracing::info!(
                    driver = agent.driver.kind(),
                    "the driver reports no guest usage: pollster stops"
                );
                return;
            }
        }
    })
}

/// One round over this host's guests; `false` when the driver has no
/// figures at all.
pub async fn poll_once(agent: &ComputeAgent) -> bool {
    let Ok(ids) = agent.driver.list_instances().await else {
        return true;
    };
    let publisher = format!("ceilometer.polling.{}", agent.settings.host);
    for id in ids {
        let stats = match agent.driver.guest_stats(&id).await {
            Ok(s) => s,
            Err(DriverError::NotSupported(_)) => return false,
            Err(e) => {
                tracing::debug!(guest = %id, error = %e, "no usage figures");
                continue;
            }
        };
        let payload = json!({"samples": samples(&id, &agent.settings.host, &stats)});
        if let Err(e) = agent
            .bus
            .notify(&publisher, "telemetry.polling", payload)
            .await
        {
            tracing::warn!(guest = %id, error = %e, "usage samples not published");
        }
    }
    true
}

fn sample(
    name: &str,
    kind: &str,
    unit: &str,
    volume: u64,
    resource: &str,
    metadata: Value,
) -> Value {
    json!({
        "name": name, "type": kind, "unit": unit, "volume": volume,
        "resource_id": resource,
        "timestamp": ferrostack_core::time::iso_micros(ferrostack_core::time::now()),
        "resource_metadata": metadata,
    })
}

/// The samples of one guest's figures.
pub fn samples(id: &str, host: &str, s: &GuestStats) -> Vec<Value> {
    let meta = json!({"instance_id": id, "host": host, "vcpus": s.vcpus});
    let mut out = vec![sample(
        "cpu",
        "cumulative",
        "ns",
        s.cpu_time_ns,
        id,
        meta.clone(),
    )];
    if let Some(m) = s.memory_used_mb {
        out.push(sample("memory.usage", "gauge", "MB", m, id, meta));
    }
    for d in &s.disks {
        let rid = format!("{id}-{}", d.device);
        let m = json!({"instance_id": id, "name": d.device, "host": host});
        out.push(sample(
            "disk.device.read.bytes",
            "cumulative",
            "B",
            d.read_bytes,
            &rid,
            m.clone(),
        ));
        out.push(sample(
            "disk.device.read.requests",
            "cumulative",
            "request",
            d.read_requests,
            &rid,
            m.clone(),
        ));
        out.push(sample(
            "disk.device.write.bytes",
            "cumulative",
            "B",
            d.write_bytes,
            &rid,
            m.clone(),
        ));
        out.push(sample(
            "disk.device.write.requests",
            "cumulative",
            "request",
            d.write_requests,
            &rid,
            m,
        ));
    }
    for i in &s.interfaces {
        let rid = format!("{id}-{}", i.device);
        let m = json!({"instance_id": id, "name": i.device, "mac": i.mac_address, "port_id": i.port_id, "host": host});
        out.push(sample(
            "network.incoming.bytes",
            "cumulative",
            "B",
            i.rx_bytes,
            &rid,
            m.clone(),
        ));
        out.push(sample(
            "network.incoming.packets",
            "cumulative",
            "packet",
            i.rx_packets,
            &rid,
            m.clone(),
        ));
        out.push(sample(
            "network.outgoing.bytes",
            "cumulative",
            "B",
            i.tx_bytes,
            &rid,
            m.clone(),
        ));
        out.push(sample(
            "network.outgoing.packets",
            "cumulative",
            "packet",
            i.tx_packets,
            &rid,
            m,
        ));
    }
    out
}
