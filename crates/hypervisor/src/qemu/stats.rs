//! A QEMU guest's usage for metering: CPU time and resident memory of its
//! QEMU process from `/proc`, per-disk counters from QMP
//! `query-blockstats`, per-interface counters of its taps from
//! `/proc/net/dev` (guest's view: what the tap sent, the guest received).

use super::guest::{live_pid, GuestRecord};
use super::QemuDriver;
use crate::error::{DriverError, Result};
use crate::stats::{self, DiskStats, GuestStats, InterfaceStats};

impl QemuDriver {
    pub(super) async fn read_guest_stats(&self, id: &str) -> Result<GuestStats> {
        let p = self.paths(id)?;
        let pid = live_pid(&p)
            .await
            .ok_or_else(|| DriverError::InvalidState(format!("guest {id} is not running")))?;
        let record = GuestRecord::load(&p.record()).await?;
        let proc_text = |f: String| async move { tokio::fs::read_to_string(f).await.ok() };
        let cpu_time_ns = proc_text(format!("/proc/{pid}/stat"))
            .await
            .and_then(|s| stats::process_cpu_ns(&s))
            .unwrap_or(0);
        let memory_used_mb = proc_text(format!("/proc/{pid}/status"))
            .await
            .and_then(|s| stats::process_rss_mb(&s))
            .map(|m| m.min(record.spec.memory_mb));
        let disks = match self.qmp_do(&p, "query-blockstats", None).await {
            Ok(v) => block_stats(&v),
            Err(e) => {
                tracing::debug!(guest = %id, error = %e, "no block statistics");
                Vec::new()
            }
        };
        let net = proc_text("/proc/net/dev".into()).await.unwrap_or_default();
        let interfaces = record
            .spec
            .vifs
            .iter()
            .filter_map(|v| {
                let dev = v.tap_name();
                let (tap_rx_b, tap_rx_p, tap_tx_b, tap_tx_p) = stats::net_dev_counters(&net, &dev)?;
                Some(InterfaceStats {
                    port_id: v.port_id.clone(),
                    device: dev,
                    mac_address: v.mac_address.clone(),
                    rx_bytes: tap_tx_b,
                    rx_packets: tap_tx_p,
                    tx_bytes: tap_rx_b,
                    tx_packets: tap_rx_p,
                })
            })
            .collect();
        Ok(GuestStats {
            cpu_time_ns,
            vcpus: record.spec.vcpus,
            memory_used_mb,
            disks,
            interfaces,
        })
    }
}

/// `query-blockstats` entries with a guest device (the qdev id, e.g.
/// `virtio-disk0`, else the node name); CD-ROMs and empty drives count.
fn block_stats(v: &serde_json::Value) -> Vec<DiskStats> {
    let empty = Vec::new();
    v.as_array()
        .unwrap_or(&empty)
        .iter()
        .filter_map(|d| {
            let name = [
                d["qdev"].as_str(),
                d["device"].as_str(),
                d["node-name"].as_str(),
            ]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())?;
            let device = name
                .trim_start_matches("/machine/peripheral/")
                .split('/')
                .next()
                .unwrap_or(name)
                .to_owned();
            let s = &d["stats"];
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            Some(DiskStats {
                device,
                read_bytes: n("rd_bytes"),
                read_requests: n("rd_operations"),
                write_bytes: n("wr_bytes"),
                write_requests: n("wr_operations"),
            })
        })
        .collect()
}
