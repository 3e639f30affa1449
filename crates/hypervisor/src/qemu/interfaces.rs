//! Attaching and detaching network interfaces: the tap is made (or
//! removed) on the host, the NIC hot-plugged into a running guest over
//! QMP (`netdev_add` + `device_add`; `device_del`, wait until the guest
//! let it go, `netdev_del`), and the guest's record updated so that its
//! next launch has the same NICs.

use super::command::{nic_ids, nic_model};
use super::control::Observed;
use super::guest::GuestPaths;
use super::tap;
use super::QemuDriver;
use crate::{DriverError, Result, VifSpec};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a guest gets to let go of an unplugged NIC (ACPI hot-unplug).
const UNPLUG_TIMEOUT: Duration = Duration::from_secs(20);

impl QemuDriver {
    pub(super) async fn attach_interface_locked(
        &self,
        p: &GuestPaths,
        vif: &VifSpec,
    ) -> Result<()> {
        tap::host_mac(&vif.mac_address)?;
        let mut record = self.load_record(p).await?;
        if record.spec.vifs.iter().any(|v| v.port_id == vif.port_id) {
            return Ok(());
        }
        tap::ensure(self.ip.as_deref(), vif).await?;
        if let Observed::Live { .. } = self.observe_existing(p).await? {
            if let Err(e) = self.hotplug(p, vif, nic_model(&record)).await {
                let _ = tap::delete(self.ip.as_deref(), &vif.tap_name()).await;
                return Err(e);
            }
        }
        record.spec.vifs.push(vif.clone());
        record.save(&p.record()).await
    }

    async fn hotplug(&self, p: &GuestPaths, vif: &VifSpec, model: &str) -> Result<()> {
        let (netdev, device) = nic_ids(vif);
        self.qmp_do(
            p,
            "netdev_add",
            Some(
                json!({"type": "tap", "id": netdev, "ifname": vif.tap_name(),
                        "script": "no", "downscript": "no"}),
            ),
        )
        .await?;
        let mut dev = json!({"driver": model, "netdev": netdev, "id": device,
                             "mac": vif.mac_address});
        if let (Some(mtu), "virtio-net-pci") = (vif.mtu, model) {
            dev["host_mtu"] = json!(mtu);
        }
        if let Err(e) = self.qmp_do(p, "device_add", Some(dev)).await {
            let _ = self.qmp(p, "netdev_del", Some(json!({"id": netdev}))).await;
            return Err(e);
        }
        Ok(())
    }

    pub(super) async fn detach_interface_locked(
        &self,
        p: &GuestPaths,
        port_id: &str,
    ) -> Result<()> {
        let mut record = self.load_record(p).await?;
        let Some(vif) = record
            .spec
            .vifs
            .iter()
            .find(|v| v.port_id == port_id)
            .cloned()
        else {
            return Ok(());
        };
        if let Observed::Live { .. } = self.observe_existing(p).await? {
            self.unplug(p, &vif).await?;
        }
        record.spec.vifs.retain(|v| v.port_id != port_id);
        record.save(&p.record()).await?;
        tap::delete(self.ip.as_deref(), &vif.tap_name()).await
    }

    async fn unplug(&self, p: &GuestPaths, vif: &VifSpec) -> Result<()> {
        let (netdev, device) = nic_ids(vif);
        let path = format!("/machine/peripheral/{device}");
        let present = |r: &std::result::Result<serde_json::Value, _>| r.is_ok();
        let probe = || self.qmp(p, "qom-list", Some(json!({"path": path})));
        if present(&probe().await) {
            // A device_del already asked for (a repeated call) is fine.
            let _ = self.qmp(p, "device_del", Some(json!({"id": device}))).await;
            let deadline = Instant::now() + UNPLUG_TIMEOUT;
            while present(&probe().await) {
                if Instant::now() >= deadline {
                    return Err(DriverError::Failed(format!(
                        "The guest of instance {} did not release interface {} within {} s.",
                        p.id,
                        vif.port_id,
                        UNPLUG_TIMEOUT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // The backend may be gone already (a repeated call).
        let _ = self.qmp(p, "netdev_del", Some(json!({"id": netdev}))).await;
        Ok(())
    }
}
