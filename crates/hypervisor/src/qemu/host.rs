//! The host's real figures for the scheduler and `hypervisor show`.

use crate::{DriverError, HostResources, Result};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

/// `QEMU emulator version 7.2.22 (Debian …)` → (7, 2, 22).
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = &text[text.find("version ")? + "version ".len()..];
    let word = rest.split_whitespace().next()?;
    let mut parts = word.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let micro = parts.next().flatten().unwrap_or(0);
    Some((major, minor, micro))
}

/// Nova's integer form of a version: 7.2.22 is 7002022.
pub(crate) fn nova_version((major, minor, micro): (u32, u32, u32)) -> i64 {
    major as i64 * 1_000_000 + minor as i64 * 1_000 + micro as i64
}

/// `MemTotal` of /proc/meminfo, in MB.
pub(crate) fn mem_total_mb(meminfo: &str) -> Option<i64> {
    meminfo.lines().find_map(|l| {
        let kb = l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
        kb.trim().parse::<i64>().ok().map(|kb| kb / 1024)
    })
}

/// Nova's `cpu_info` JSON from /proc/cpuinfo.
pub(crate) fn cpu_info(cpuinfo: &str, arch: &str, online: i64) -> String {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let count = |name: &str| -> Option<i64> { field(name)?.parse().ok() };
    let sockets = cpuinfo
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "physical id").then(|| v.trim().to_owned())
        })
        .collect::<BTreeSet<_>>()
        .len()
        .max(1) as i64;
    let cores = count("cpu cores")
        .unwrap_or((online / sockets).max(1))
        .max(1);
    let siblings = count("siblings").unwrap_or(cores);
    let threads = (siblings / cores).max(1);
    let vendor = match field("vendor_id").as_deref() {
        Some("GenuineIntel") => "Intel".to_owned(),
        Some("AuthenticAMD") => "AMD".to_owned(),
        Some(other) => other.to_owned(),
        None => String::new(),
    };
    let features: BTreeSet<String> = field("flags")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    json!({
        "arch": arch,
        "model": field("model name").unwrap_or_default(),
        "vendor": vendor,
        "topology": {"sockets": sockets, "cores": cores, "threads": threads},
        "features": features,
    })
    .to_string()
}

fn online_cpus() -> i64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as i64
    } else {
        1
    }
}

/// (size, available) of the filesystem holding `dir`, in bytes.
pub(crate) async fn fs_space(dir: &Path) -> Result<(u64, u64)> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|e| DriverError::failed("statvfs", e))?;
        // SAFETY: `st` is plain data that statvfs fills in; `c` is a valid C string.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(DriverError::failed(
                &format!("statvfs {}", dir.display()),
                std::io::Error::last_os_error(),
            ));
        }
        let frsize = st.f_frsize as u64;
        Ok((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
    })
    .await
    .map_err(|e| DriverError::failed("statvfs", e))?
}

pub(crate) async fn resources(
    hostname: &str,
    version: (u32, u32, u32),
    instances_dir: &Path,
) -> Result<HostResources> {
    let read = |p: &'static str| async move {
        tokio::fs::read_to_string(p)
            .await
            .map_err(|e| DriverError::failed(&format!("reading {p}"), e))
    };
    let meminfo = read("/proc/meminfo").await?;
    let cpuinfo = read("/proc/cpuinfo").await?;
    let vcpus = online_cpus();
    let (size, avail) = fs_space(instances_dir).await?;
    Ok(HostResources {
        hypervisor_type: "QEMU".into(),
        hypervisor_version: nova_version(version),
        hypervisor_hostname: hostname.to_owned(),
        cpu_info: cpu_info(&cpuinfo, std::env::consts::ARCH, vcpus),
        vcpus,
        memory_mb: mem_total_mb(&meminfo).unwrap_or(0),
        local_gb: (size / super::disk::GIB) as i64,
        disk_available_least_gb: (avail / super::disk::GIB) as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_nova_counts_them() {
        let v = parse_version(
            "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright …",
        )
        .unwrap();
        assert_eq!(v, (7, 2, 22));
        assert_eq!(nova_version(v), 7_002_022);
        assert_eq!(parse_version("qemu-img version 10.0.0\n"), Some((10, 0, 0)));
        assert_eq!(parse_version("QEMU emulator version 8.1"), Some((8, 1, 0)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn memory_and_cpu_figures() {
        assert_eq!(
            mem_total_mb("MemTotal:        8040148 kB\nMemFree: 1 kB\n"),
            Some(7851)
        );
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU\n\
                       physical id\t: 0\nsiblings\t: 2\ncpu cores\t: 1\nflags\t\t: fpu vmx sse2 fpu\n\n\
                       processor\t: 1\nvendor_id\t: GenuineIntel\nphysical id\t: 0\n";
        let v: serde_json::Value = serde_json::from_str(&cpu_info(cpuinfo, "x86_64", 2)).unwrap();
        assert_eq!(v["arch"], "x86_64");
        assert_eq!(v["vendor"], "Intel");
        assert_eq!(v["model"], "Intel(R) Xeon(R) CPU");
        assert_eq!(
            v["topology"],
            json!({"sockets": 1, "cores": 1, "threads": 2})
        );
        assert_eq!(v["features"], json!(["fpu", "sse2", "vmx"]));
        let bare: serde_json::Value = serde_json::from_str(&cpu_info("", "x86_64", 4)).unwrap();
        assert_eq!(
            bare["topology"],
            json!({"sockets": 1, "cores": 4, "threads": 1})
        );
    }
}
