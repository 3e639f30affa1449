//! Which accelerator guests get. /dev/kvm being there is not enough (on
//! some hosts a KVM guest never runs), so guests are started under KVM
//! first: a boot sector that writes `K` to COM1 (hosts where QEMU aborts),
//! then a Linux kernel that must boot to its "cannot mount root" panic
//! (hosts where a boot sector runs but Linux hangs with no output, seen on
//! nested KVM). The outcome is kept in `<instances_dir>/.accel-probe` for
//! the current boot and QEMU version.

use super::guest::write_atomic;
use super::Accel;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

pub(crate) const CACHE_FILE: &str = ".accel-probe";
/// The host-wide copy: `/run` is emptied at boot, as the outcome expires.
const HOST_CACHE: &str = "/run/ferrostack/accel-probe.json";

/// The CPU models guests get. The probe runs the KVM one: on some nested
/// hosts KVM runs a default-CPU guest but aborts a `-cpu host` one (an MSR
/// the host refuses), so probing anything else would pass a KVM that no
/// guest can use.
pub(crate) const KVM_CPU_MODEL: &str = "host";
pub(crate) const TCG_CPU_MODEL: &str = "max";

/// What a cached outcome was probed with; an outcome of another probe is
/// probed again.
const PROBE: &str = "boot sector then a Linux kernel, pc machine, -cpu host";

/// Where `scripts/setup-host.sh` leaves a kernel for the probe when the
/// host has none in `/boot` (containers, CI machines).
pub const SHARED_PROBE_KERNEL: &str = "/var/cache/ferrostack/kvm-probe/vmlinuz";

/// How the KVM probe runs.
pub(crate) struct Probe {
    /// For the boot sector's `K`.
    pub timeout: Duration,
    /// The kernel to boot; `None`: found as [`probe_kernel`] says.
    pub kernel: Option<std::path::PathBuf>,
    /// For the kernel's panic.
    pub kernel_timeout: Duration,
}

/// The kernel the probe boots: the configured one, else the newest
/// `/boot/vmlinuz-*`, else [`SHARED_PROBE_KERNEL`]; `None` if none is readable.
fn probe_kernel(configured: Option<&Path>) -> Option<std::path::PathBuf> {
    if let Some(k) = configured {
        return Some(k.to_owned());
    }
    let mut boot: Vec<std::path::PathBuf> = std::fs::read_dir("/boot")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .filter(|p| std::fs::File::open(p).is_ok())
        .collect();
    boot.sort();
    boot.pop().or_else(|| {
        let shared = Path::new(SHARED_PROBE_KERNEL);
        std::fs::File::open(shared).ok().map(|_| shared.to_owned())
    })
}

/// 16-bit real mode at 0x7c00: `mov dx,0x3f8; mov al,'K'; out dx,al;
/// hlt; jmp $-1`, then the boot signature.
pub(crate) fn probe_boot_sector() -> [u8; 512] {
    let code = [0xBA, 0xF8, 0x03, 0xB0, b'K', 0xEE, 0xF4, 0xEB, 0xFD];
    let mut s = [0u8; 512];
    s[..code.len()].copy_from_slice(&code);
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Cached {
    #[serde(default)]
    probe: String,
    boot_id: String,
    qemu_version: String,
    accel: Accel,
    reason: String,
}

/// The accelerator to use and why, probing (or reading the cached probe)
/// for [`Accel::Auto`].
pub(crate) async fn resolve(
    wanted: Accel,
    binary: &Path,
    qemu_version: &str,
    instances_dir: &Path,
    how: &Probe,
) -> (Accel, String) {
    match wanted {
        Accel::Kvm => return (Accel::Kvm, "forced by the configuration".into()),
        Accel::Tcg => return (Accel::Tcg, "forced by the configuration".into()),
        Accel::Auto => {}
    }
    if !tokio::fs::try_exists("/dev/kvm").await.unwrap_or(false) {
        return (Accel::Tcg, "KVM probe: /dev/kvm is absent".into());
    }
    let boot_id = tokio::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .await
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    // The instances directory's copy, and the host's (so a new instances
    // directory, as every test makes, does not probe again).
    let caches = [
        instances_dir.join(CACHE_FILE),
        Path::new(HOST_CACHE).to_owned(),
    ];
    if !boot_id.is_empty() {
        for cache in &caches {
            let Ok(text) = tokio::fs::read(cache).await else {
                continue;
            };
            if let Ok(c) = serde_json::from_slice::<Cached>(&text) {
                if c.probe == PROBE && c.boot_id == boot_id && c.qemu_version == qemu_version {
                    if cache != &caches[0] {
                        let _ = write_atomic(&caches[0], &text).await;
                    }
                    return (c.accel, format!("{}; cached for this boot", c.reason));
                }
            }
        }
    }
    let (mut accel, mut reason) = probe(binary, instances_dir, how.timeout).await;
    if accel == Accel::Kvm {
        match probe_kernel(how.kernel.as_deref()) {
            Some(kernel) => {
                (accel, reason) = probe_linux(binary, &kernel, how.kernel_timeout).await
            }
            None => {
                reason = format!(
                    "{reason}; no kernel to boot as a second probe ({SHARED_PROBE_KERNEL} or \
                     /boot/vmlinuz-*), so KVM is trusted on the boot sector alone"
                );
                tracing::warn!("{reason}");
            }
        }
    }
    if !boot_id.is_empty() {
        let c = Cached {
            probe: PROBE.to_owned(),
            boot_id,
            qemu_version: qemu_version.to_owned(),
            accel,
            reason: reason.clone(),
        };
        if let Ok(text) = serde_json::to_vec_pretty(&c) {
            if let Err(e) = write_atomic(&caches[0], &text).await {
                tracing::warn!("could not keep the KVM probe's outcome: {e}");
            }
            if let Some(dir) = Path::new(HOST_CACHE).parent() {
                let _ = tokio::fs::create_dir_all(dir).await;
            }
            let _ = write_atomic(&caches[1], &text).await;
        }
    }
    (accel, reason)
}

/// Start the probe guest under KVM and wait for its `K`.
async fn probe(binary: &Path, instances_dir: &Path, timeout: Duration) -> (Accel, String) {
    let image = instances_dir.join(format!(".accel-probe-{}.img", std::process::id()));
    if let Err(e) = tokio::fs::write(&image, probe_boot_sector()).await {
        return (
            Accel::Tcg,
            format!("KVM probe: could not write the probe guest: {e}"),
        );
    }
    let outcome = run_probe(binary, &image, timeout).await;
    let _ = tokio::fs::remove_file(&image).await;
    outcome
}

async fn run_probe(binary: &Path, image: &Path, timeout: Duration) -> (Accel, String) {
    let secs = timeout.as_secs_f64();
    let drive = format!(
        "file={},format=raw,if=ide",
        image.to_string_lossy().replace(',', ",,")
    );
    let child = tokio::process::Command::new(binary)
        .args([
            "-machine",
            "pc,accel=kvm",
            "-cpu",
            KVM_CPU_MODEL,
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-m",
            "16",
            "-serial",
            "stdio",
            "-drive",
            &drive,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (Accel::Tcg, format!("KVM probe: could not run QEMU: {e}")),
    };
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let stderr_task = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut s).await;
        String::from_utf8_lossy(&s).into_owned()
    });
    let saw_k = tokio::time::timeout(timeout, async {
        let mut buf = [0u8; 256];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if buf[..n].contains(&b'K') => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let stderr = stderr_task.await.unwrap_or_default();
    match saw_k {
        Ok(true) => (
            Accel::Kvm,
            "KVM probe: the probe guest ran under KVM".to_owned(),
        ),
        Ok(false) => {
            let why = super::exec::stderr_reason(&stderr);
            (
                Accel::Tcg,
                if why.is_empty() {
                    "KVM probe: QEMU exited without running the probe guest under KVM".to_owned()
                } else {
                    format!("KVM probe: QEMU could not use KVM: {why}")
                },
            )
        }
        Err(_) => (
            Accel::Tcg,
            format!("KVM probe: /dev/kvm present but the probe guest printed nothing in {secs} s"),
        ),
    }
}

/// Boot `kernel` under KVM with no root device: a kernel that runs prints
/// its panic about the root file system within a second or two; one that
/// hangs (interrupts or timers that never come) prints nothing.
async fn probe_linux(binary: &Path, kernel: &Path, timeout: Duration) -> (Accel, String) {
    let child = tokio::process::Command::new(binary)
        .args(["-machine", "pc,accel=kvm", "-cpu", KVM_CPU_MODEL])
        .args(["-nodefaults", "-no-user-config", "-no-reboot"])
        .args(["-display", "none", "-m", "256", "-serial", "stdio"])
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1 root=/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (Accel::Tcg, format!("KVM probe: could not run QEMU: {e}")),
    };
    let mut stdout = child.stdout.take().expect("piped");
    let kernel_name = kernel.display();
    let booted = tokio::time::timeout(timeout, async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if seen.windows(12).any(|w| w == b"Kernel panic") {
                        return true;
                    }
                    // Keep the tail only: the marker may span two reads.
                    if seen.len() > 64 * 1024 {
                        seen.drain(..seen.len() - 64);
                    }
                }
            }
        }
    })
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    match booted {
        Ok(true) => (
            Accel::Kvm,
            format!("KVM probe: a boot sector and the kernel {kernel_name} ran under KVM"),
        ),
        Ok(false) => (
            Accel::Tcg,
            format!("KVM probe: QEMU ended before the kernel {kernel_name} booted under KVM"),
        ),
        Err(_) => (
            Accel::Tcg,
            format!(
                "KVM probe: a boot sector ran under KVM but the kernel {kernel_name} printed no \
                 panic in {} s (Linux guests hang on this host's KVM)",
                timeout.as_secs()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_a_boot_sector() {
        let s = probe_boot_sector();
        assert_eq!(
            &s[..9],
            &[0xBA, 0xF8, 0x03, 0xB0, 0x4B, 0xEE, 0xF4, 0xEB, 0xFD]
        );
        assert_eq!(&s[510..], &[0x55, 0xAA]);
    }

    #[tokio::test]
    async fn forced_accelerators_do_not_probe() {
        let none = Path::new("/nonexistent/qemu");
        let dir = Path::new("/nonexistent");
        let how = Probe {
            timeout: Duration::from_secs(1),
            kernel: None,
            kernel_timeout: Duration::from_secs(1),
        };
        assert_eq!(resolve(Accel::Kvm, none, "", dir, &how).await.0, Accel::Kvm);
        assert_eq!(resolve(Accel::Tcg, none, "", dir, &how).await.0, Accel::Tcg);
    }

    #[test]
    fn a_configured_probe_kernel_is_used_as_given() {
        let k = Path::new("/some/vmlinuz");
        assert_eq!(probe_kernel(Some(k)).as_deref(), Some(k));
    }
}
