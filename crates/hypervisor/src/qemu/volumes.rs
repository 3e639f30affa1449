//! Cinder volumes as virtio disks: an `nbd` block node (the volume
//! service's export), a `raw` node over it and a `virtio-blk-pci` device,
//! hot-plugged into a running guest over QMP and kept in the guest's record
//! so that its next launch has them on the command line.
//!
//! The NBD client cannot grow a node (a connection keeps the size it was
//! told), so an extend opens a second connection, which sees the new size,
//! moves the raw node onto it (`blockdev-reopen`), resizes the raw node
//! (the guest gets a capacity change) and drops the old connection. The
//! two connections of a volume take turns under two node names.

use super::control::{describe, is_off_status, Observed};
use super::guest::exists;
use super::guest::GuestPaths;
use super::volume_nodes::{device_props, format_node, nbd_node, VolumeNames};
use super::QemuDriver;
use crate::{DriverError, Result, VolumeAttachment, VolumeConnection};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a guest gets to let go of an unplugged disk (ACPI hot-unplug).
const UNPLUG_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the nodes of an unplugged disk may stay in use.
const NODE_RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a volume change goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A running QEMU: over QMP, and into the record.
    Running,
    /// No QEMU, or one whose guest is off (it is launched anew at power
    /// on): only into the record.
    RecordOnly,
}

impl QemuDriver {
    /// Where attaching or detaching a volume goes; refused while the guest
    /// is suspended: its saved memory knows the disks it had, and a
    /// restore with other disks fails.
    async fn volume_target(&self, p: &GuestPaths, what: &str, volume_id: &str) -> Result<Target> {
        let observed = self.observe_existing(p).await?;
        let saved = exists(&p.memory_state()).await;
        match &observed {
            Observed::Off { suspended: false } => Ok(Target::RecordOnly),
            Observed::Live { status, .. } if !saved && is_off_status(status) => {
                Ok(Target::RecordOnly)
            }
            Observed::Live { .. } if !saved => Ok(Target::Running),
            o => Err(DriverError::InvalidState(format!(
                "Cannot {what} volume {volume_id}: instance {} is {}.",
                p.id,
                if saved {
                    "suspended".into()
                } else {
                    describe(o)
                }
            ))),
        }
    }

    pub(super) async fn attach_volume_locked(
        &self,
        p: &GuestPaths,
        volume: &VolumeAttachment,
    ) -> Result<()> {
        let n = VolumeNames::new(&volume.volume_id)?;
        nbd_node(&n.nbd[0], &volume.connection)?;
        let mut record = self.load_record(p).await?;
        if record
            .spec
            .volumes
            .iter()
            .any(|v| v.volume_id == volume.volume_id)
        {
            return Ok(());
        }
        if self.volume_target(p, "attach", &volume.volume_id).await? == Target::Running {
            // A call that plugged the disk but stopped before the record.
            if !self.device_present(p, &n.device).await {
                self.drop_nodes(p, &n).await;
                if let Err(e) = self.plug_volume(p, &n, volume).await {
                    self.drop_nodes(p, &n).await;
                    return Err(e);
                }
            }
        }
        record.spec.volumes.push(volume.clone());
        record.save(&p.record()).await
    }

    async fn plug_volume(
        &self,
        p: &GuestPaths,
        n: &VolumeNames,
        v: &VolumeAttachment,
    ) -> Result<()> {
        let c = &v.connection;
        let add = |args| self.volume_qmp(p, &v.volume_id, "blockdev-add", args);
        add(nbd_node(&n.nbd[0], c)?).await?;
        add(format_node(n, &n.nbd[0], c)).await?;
        self.volume_qmp(p, &v.volume_id, "device_add", device_props(n, v))
            .await
            .map(|_| ())
    }

    /// A QMP command about a volume, its failure naming the volume.
    async fn volume_qmp(
        &self,
        p: &GuestPaths,
        volume_id: &str,
        command: &str,
        args: Value,
    ) -> Result<Value> {
        self.qmp(p, command, Some(args)).await.map_err(|e| {
            DriverError::Failed(format!(
                "QMP {command} for volume {volume_id} on instance {} failed: {e}",
                p.id
            ))
        })
    }

    async fn device_present(&self, p: &GuestPaths, device: &str) -> bool {
        let path = format!("/machine/peripheral/{device}");
        self.qmp(p, "qom-list", Some(json!({"path": path})))
            .await
            .is_ok()
    }

    /// The block node names QEMU has.
    async fn node_names(&self, p: &GuestPaths) -> Result<Vec<String>> {
        let nodes = self
            .qmp(p, "query-named-block-nodes", Some(json!({"flat": true})))
            .await
            .map_err(|e| DriverError::failed("QMP query-named-block-nodes", e))?;
        Ok(nodes
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["node-name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Delete the volume's block nodes, those that are there (the raw
    /// node first: it holds the NBD node).
    async fn drop_nodes(&self, p: &GuestPaths, n: &VolumeNames) {
        for name in [&n.format, &n.nbd[0], &n.nbd[1]] {
            let _ = self
                .qmp(p, "blockdev-del", Some(json!({"node-name": name})))
                .await;
        }
    }

    pub(super) async fn detach_volume_locked(&self, p: &GuestPaths, volume_id: &str) -> Result<()> {
        let n = VolumeNames::new(volume_id)?;
        let mut record = self.load_record(p).await?;
        let attached = record.spec.volumes.iter().any(|v| v.volume_id == volume_id);
        let target = match self.volume_target(p, "detach", volume_id).await {
            Err(_) if !attached => return Ok(()),
            t => t?,
        };
        if target == Target::Running {
            // Also when not in the record: an attach that stopped before it.
            self.unplug_volume(p, &n, volume_id).await?;
        }
        if attached {
            record.spec.volumes.retain(|v| v.volume_id != volume_id);
            record.save(&p.record()).await?;
        }
        Ok(())
    }

    /// `device_del`, wait until the guest released the disk (its device
    /// gone, which is when QEMU sends `DEVICE_DELETED`), then its nodes.
    async fn unplug_volume(&self, p: &GuestPaths, n: &VolumeNames, volume_id: &str) -> Result<()> {
        if self.device_present(p, &n.device).await {
            // A device_del already asked for (a repeated call) is fine.
            let _ = self
                .qmp(p, "device_del", Some(json!({"id": n.device})))
                .await;
            let deadline = Instant::now() + UNPLUG_TIMEOUT;
            while self.device_present(p, &n.device).await {
                if Instant::now() >= deadline {
                    return Err(DriverError::Failed(format!(
                        "The guest of instance {} did not release the disk of volume \
                         {volume_id} within {} s.",
                        p.id,
                        UNPLUG_TIMEOUT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // The device leaves QEMU's tree a moment before it lets go of its
        // block backend, so the nodes may still be in use at first.
        let deadline = Instant::now() + NODE_RELEASE_TIMEOUT;
        loop {
            self.drop_nodes(p, n).await;
            let left: Vec<String> = self
                .node_names(p)
                .await?
                .into_iter()
                .filter(|x| *x == n.format || n.nbd.contains(x))
                .collect();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Failed(format!(
                    "QEMU of instance {} still has block nodes {} of volume {volume_id}.",
                    p.id,
                    left.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(super) async fn extend_volume_locked(
        &self,
        p: &GuestPaths,
        volume_id: &str,
        connection: &VolumeConnection,
        new_size_bytes: u64,
    ) -> Result<()> {
        let n = VolumeNames::new(volume_id)?;
        nbd_node(&n.nbd[0], connection)?;
        let mut record = self.load_record(p).await?;
        let Some(volume) = record
            .spec
            .volumes
            .iter_mut()
            .find(|v| v.volume_id == volume_id)
        else {
            return Err(DriverError::InvalidRequest(format!(
                "Volume {volume_id} is not attached to instance {}.",
                p.id
            )));
        };
        if volume.connection != *connection {
            volume.connection = connection.clone();
            record.save(&p.record()).await?;
        }
        match self.observe_existing(p).await? {
            Observed::Live { status, .. }
                if !is_off_status(&status) && !exists(&p.memory_state()).await =>
            {
                self.grow_live(p, &n, connection, new_size_bytes).await
            }
            // The next launch opens the export anew and sees its size.
            _ => Ok(()),
        }
    }

    /// Move the raw node onto a new NBD connection (which sees the new
    /// size) and resize it, so the guest sees a capacity change.
    async fn grow_live(
        &self,
        p: &GuestPaths,
        n: &VolumeNames,
        c: &VolumeConnection,
        size: u64,
    ) -> Result<()> {
        let vid = n.device.trim_start_matches("volume-");
        if !self.node_names(p).await?.contains(&n.format) {
            return Err(DriverError::Failed(format!(
                "QEMU of instance {} has no disk for volume {vid}.",
                p.id
            )));
        }
        // An NBD node the raw node does not use (left by an extend that
        // stopped half way) goes; the one in use refuses to.
        for name in &n.nbd {
            let _ = self
                .qmp(p, "blockdev-del", Some(json!({"node-name": name})))
                .await;
        }
        let names = self.node_names(p).await?;
        let (old, new) = if names.contains(&n.nbd[0]) {
            (&n.nbd[0], &n.nbd[1])
        } else {
            (&n.nbd[1], &n.nbd[0])
        };
        self.volume_qmp(p, vid, "blockdev-add", nbd_node(new, c)?)
            .await?;
        let reopen = json!({"options": [format_node(n, new, c)]});
        if let Err(e) = self.volume_qmp(p, vid, "blockdev-reopen", reopen).await {
            let _ = self
                .qmp(p, "blockdev-del", Some(json!({"node-name": new})))
                .await;
            return Err(e);
        }
        self.volume_qmp(
            p,
            vid,
            "block_resize",
            json!({"node-name": n.format, "size": size}),
        )
        .await?;
        if names.contains(old) {
            self.volume_qmp(p, vid, "blockdev-del", json!({"node-name": old}))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(data: Value) -> VolumeConnection {
        serde_json::from_value(json!({"driver_volume_type": "nbd", "data": data})).unwrap()
    }

    #[test]
    fn names_fit_qemu() {
        let n = VolumeNames::new("3f1c2a9e-0d7b-4c43-9a55-8e1b2f0c6d11").unwrap();
        assert_eq!(n.device, "volume-3f1c2a9e-0d7b-4c43-9a55-8e1b2f0c6d11");
        assert_eq!(n.format, "vol-3f1c2a9e0d7b4c439a558e1b");
        assert_eq!(n.nbd[0], "nbda-3f1c2a9e0d7b4c439a558e1b");
        assert!(n.nbd.iter().all(|x| x.len() <= 31));
        assert_eq!(n.serial, "3f1c2a9e-0d7b-4c43-9");
        for bad in ["", "a,b", "a b", "--", "x=1"] {
            assert!(VolumeNames::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nbd_nodes_by_socket_or_host() {
        let unix = conn(json!({"export": "s3cret", "socket": "/run/v.sock"}));
        assert_eq!(
            nbd_node("nbda-x", &unix).unwrap(),
            json!({"driver": "nbd", "node-name": "nbda-x", "export": "s3cret",
                   "server": {"type": "unix", "path": "/run/v.sock"}, "read-only": false,
                   "reconnect-delay": 15})
        );
        let tcp = conn(json!({"export": "e", "host": "10.0.0.2", "port": 10810,
                              "access_mode": "ro"}));
        assert_eq!(
            nbd_node("n", &tcp).unwrap()["server"],
            json!({"type": "inet", "host": "10.0.0.2", "port": "10810"})
        );
        assert_eq!(nbd_node("n", &tcp).unwrap()["read-only"], true);
        let both = conn(json!({"export": "e", "host": "h", "socket": "/s"}));
        assert!(matches!(
            nbd_node("n", &both),
            Err(DriverError::InvalidRequest(_))
        ));
        let none = conn(json!({"export": "e"}));
        assert!(nbd_node("n", &none).is_err());
    }

    #[test]
    fn devices_carry_the_serial_and_boot_index() {
        let v = VolumeAttachment {
            volume_id: "3f1c2a9e-0d7b-4c43-9a55-8e1b2f0c6d11".into(),
            connection: conn(json!({"export": "e", "socket": "/s"})),
            device_name: "/dev/vda".into(),
            boot_index: Some(0),
        };
        let n = VolumeNames::new(&v.volume_id).unwrap();
        assert_eq!(
            device_props(&n, &v),
            json!({"driver": "virtio-blk-pci", "drive": "vol-3f1c2a9e0d7b4c439a558e1b",
                   "id": "volume-3f1c2a9e-0d7b-4c43-9a55-8e1b2f0c6d11",
                   "serial": "3f1c2a9e-0d7b-4c43-9", "bootindex": 0})
        );
    }
}
