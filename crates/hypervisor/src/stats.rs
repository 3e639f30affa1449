//! A guest's usage figures for metering (what Ceilometer's compute agent
//! reads through libvirt): CPU time, memory in use, per-disk and
//! per-interface counters. Counters are cumulative since the guest's
//! process started; interface figures are from the guest's side
//! (`rx` = what the guest received = what its tap sent).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestStats {
    /// CPU time the guest used, in nanoseconds.
    pub cpu_time_ns: u64,
    pub vcpus: u32,
    /// Memory the guest's process holds, in MiB (`None`: unknown).
    pub memory_used_mb: Option<u64>,
    pub disks: Vec<DiskStats>,
    pub interfaces: Vec<InterfaceStats>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskStats {
    /// The guest-visible device (`vda`, or the device id when unknown).
    pub device: String,
    pub read_bytes: u64,
    pub read_requests: u64,
    pub write_bytes: u64,
    pub write_requests: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStats {
    pub port_id: String,
    /// The host device (`tap…`).
    pub device: String,
    pub mac_address: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

/// `utime + stime` of a process from `/proc/<pid>/stat`, in nanoseconds.
pub fn process_cpu_ns(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces: fields count from its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some((utime + stime) * 1_000_000_000 / hz)
}

/// `VmRSS` of `/proc/<pid>/status`, in MiB.
pub fn process_rss_mb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// A device's (rx bytes, rx packets, tx bytes, tx packets) from
/// `/proc/net/dev`, which, unlike sysfs, shows the reader's own network
/// namespace.
pub fn net_dev_counters(text: &str, device: &str) -> Option<(u64, u64, u64, u64)> {
    let line = text
        .lines()
        .find(|l| l.trim_start().split(':').next() == Some(device))?;
    let f: Vec<u64> = line
        .split_once(':')?
        .1
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((*f.first()?, *f.get(1)?, *f.get(8)?, *f.get(9)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_figures_parse() {
        let stat = "4242 (qemu-system x86) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        assert_eq!(process_cpu_ns(stat), Some(300 * 1_000_000_000 / hz));
        assert_eq!(process_rss_mb("Name: q\nVmRSS:\t  204800 kB\n"), Some(200));
        let dev = "Inter-|   Receive\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n  tapabc: 100 2 0 0 0 0 0 0 300 4 0 0 0 0 0 0\n";
        assert_eq!(net_dev_counters(dev, "tapabc"), Some((100, 2, 300, 4)));
        assert_eq!(net_dev_counters(dev, "tapx"), None);
    }
}
