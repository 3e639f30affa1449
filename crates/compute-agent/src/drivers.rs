//! The driver `[compute] driver` names, built from the configuration.

use ferrostack_core::config::Config;
use ferrostack_hypervisor::fake::{FakeConfig, FakeDriver};
use ferrostack_hypervisor::qemu::{Accel, QemuConfig, QemuDriver};
use ferrostack_hypervisor::Driver;
use std::sync::Arc;
use std::time::Duration;

/// Nova's `[libvirt] virt_type` names (`qemu` is TCG) and ours.
fn accel(virt_type: &str) -> Result<Accel, String> {
    match virt_type {
        "auto" => Ok(Accel::Auto),
        "kvm" => Ok(Accel::Kvm),
        "qemu" | "tcg" => Ok(Accel::Tcg),
        other => Err(format!(
            "[compute] virt_type: unknown value '{other}' (auto, kvm or qemu)"
        )),
    }
}

/// `qemu` (the default) or `fake` (scale tests). A QEMU that is not
/// installed is an error naming the package, so the agent refuses to start.
pub async fn driver_from_config(config: &Config) -> Result<Arc<dyn Driver>, String> {
    let c = &config.compute;
    match c.driver.as_str() {
        "fake" => Ok(Arc::new(FakeDriver::new(&FakeConfig {
            host: config.common.host.clone(),
            vcpus: c.fake_vcpus,
            memory_mb: c.fake_memory_mb,
            local_gb: c.fake_local_gb,
        }))),
        "qemu" => {
            let qemu = QemuConfig {
                binary: c.qemu_binary.clone().into(),
                qemu_img: c.qemu_img.clone().into(),
                instances_dir: config.compute_instances_path(),
                accel: accel(&c.virt_type)?,
                shutdown_timeout: Duration::from_secs(c.shutdown_timeout),
                host: config.common.host.clone(),
                probe_kernel: (!c.kvm_probe_kernel.is_empty())
                    .then(|| c.kvm_probe_kernel.clone().into()),
                ..QemuConfig::default()
            };
            let driver = QemuDriver::new(qemu)
                .await
                .map_err(|e| format!("the QEMU driver cannot start: {e}"))?;
            Ok(Arc::new(driver))
        }
        other => Err(format!(
            "[compute] driver: unknown value '{other}' (this build has: qemu, fake)"
        )),
    }
}
