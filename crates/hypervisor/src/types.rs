//! What crosses the driver boundary: a guest's specification, its disks,
//! its power state, the host's figures, where its console is.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Nova's power states (`OS-EXT-STS:power_state` shows the code).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PowerState {
    #[default]
    NoState,
    Running,
    Paused,
    Shutdown,
    Crashed,
    Suspended,
}

impl PowerState {
    /// The number Nova's API shows.
    pub fn code(self) -> i64 {
        match self {
            PowerState::NoState => 0,
            PowerState::Running => 1,
            PowerState::Paused => 3,
            PowerState::Shutdown => 4,
            PowerState::Crashed => 6,
            PowerState::Suspended => 7,
        }
    }

    pub fn from_code(code: i64) -> PowerState {
        match code {
            1 => PowerState::Running,
            3 => PowerState::Paused,
            4 => PowerState::Shutdown,
            6 => PowerState::Crashed,
            7 => PowerState::Suspended,
            _ => PowerState::NoState,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RebootKind {
    Soft,
    Hard,
}

/// One network interface of a guest: a Neutron port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifSpec {
    pub port_id: String,
    pub network_id: String,
    pub mac_address: String,
    /// The network's MTU, when the networking API gave one.
    #[serde(default)]
    pub mtu: Option<u32>,
}

impl VifSpec {
    /// The host-side device, named as Neutron's L2 agents look for it.
    pub fn tap_name(&self) -> String {
        let n = self.port_id.len().min(11);
        format!("tap{}", &self.port_id[..n])
    }
}

/// What a driver needs to build a guest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// The server's UUID.
    pub id: String,
    /// The server's display name.
    pub name: String,
    /// Nova's `OS-EXT-SRV-ATTR:instance_name` (`instance-0000002a`).
    pub instance_name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    /// Root disk size; 0 means the image's own size (Nova's `disk=0` flavors).
    pub root_gb: u64,
    pub ephemeral_gb: u64,
    pub swap_mb: u64,
    pub image_id: String,
    /// The image's properties (`hw_disk_bus`, `hw_vif_model`, …).
    #[serde(default)]
    pub image_properties: BTreeMap<String, String>,
    pub vifs: Vec<VifSpec>,
    /// Block-storage volumes the guest has (Cinder volumes); the one with
    /// `boot_index == Some(0)` is its root disk (boot from volume), and
    /// then there is no image disk.
    #[serde(default)]
    pub volumes: Vec<VolumeAttachment>,
}

impl InstanceSpec {
    /// The volume the guest boots from, when it boots from a volume.
    pub fn boot_volume(&self) -> Option<&VolumeAttachment> {
        self.volumes.iter().find(|v| v.boot_index == Some(0))
    }
}

/// How a host reaches a volume's data: Cinder's `connection_info`
/// (`{"driver_volume_type": "nbd", "data": {…}}`), read as the volume
/// service gives it. Fields the driver does not need are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "driver_volume_type",
    content = "data",
    rename_all = "snake_case"
)]
pub enum VolumeConnection {
    /// An NBD export (qemu-storage-daemon): a unix socket on this host, or
    /// TCP on the storage host's management address.
    Nbd(NbdExport),
}

/// One NBD export. Exactly one of `socket` and `host`/`port` is set; the
/// export name is a secret no other instance can guess.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NbdExport {
    pub export: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `rw` or `ro`.
    #[serde(default = "read_write")]
    pub access_mode: String,
}

fn read_write() -> String {
    "rw".into()
}

/// A volume as the guest has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeAttachment {
    pub volume_id: String,
    pub connection: VolumeConnection,
    /// The device name Nova shows (`/dev/vdb`); the guest may name it
    /// otherwise, as with Nova. The disk's serial is the volume id (its
    /// first 20 characters, as virtio-blk keeps them), which is how a guest
    /// finds it under `/dev/disk/by-id/virtio-<serial>`.
    pub device_name: String,
    /// 0 for the root disk of a guest booted from a volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_index: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskFormat {
    Raw,
    Qcow2,
    Iso,
}

impl DiskFormat {
    /// qemu-img's name of the format.
    pub fn qemu_name(self) -> &'static str {
        match self {
            DiskFormat::Raw | DiskFormat::Iso => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

/// The disks a guest is built from, prepared by the agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestDisks {
    /// The cached base image (shared by every guest of the image; never
    /// written); `None` for a guest that boots from a volume (no image disk).
    pub base: Option<PathBuf>,
    pub base_format: DiskFormat,
    /// A config drive (ISO 9660, label `config-2`) to attach, made for this
    /// guest; the driver moves it into the guest's own directory.
    pub config_drive: Option<PathBuf>,
}

/// The image a guest is rescued with, cached by the agent: the driver
/// boots the guest from a throwaway disk made on it (never written
/// itself). Without `device` and `bus` (a legacy rescue) the rescue disk
/// is the first disk and the guest's own root disk the second; with
/// either (Nova's stable device rescue, the image's `hw_rescue_device` /
/// `hw_rescue_bus`) every disk of the guest stays where it is and the
/// rescue disk is added last, on that device and bus, and booted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RescueImage {
    /// The cached image file (shared, read-only).
    pub path: PathBuf,
    pub format: DiskFormat,
    /// `hw_rescue_device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<RescueDevice>,
    /// `hw_rescue_bus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<RescueBus>,
}

impl RescueImage {
    /// A stable device rescue: the image names a device or a bus.
    pub fn is_stable(&self) -> bool {
        self.device.is_some() || self.bus.is_some()
    }

    /// The device and bus of a stable rescue, with libvirt's defaults on
    /// x86 for the one the image leaves out: a disk, on virtio for a disk,
    /// IDE for a cdrom and the floppy controller for a floppy.
    pub fn placement(&self) -> (RescueDevice, RescueBus) {
        let device = self.device.unwrap_or(RescueDevice::Disk);
        let bus = self.bus.unwrap_or(match device {
            RescueDevice::Disk => RescueBus::Virtio,
            RescueDevice::Cdrom => RescueBus::Ide,
            RescueDevice::Floppy => RescueBus::Fdc,
        });
        (device, bus)
    }
}

/// Nova's `hw_rescue_device` values (its `BlockDeviceType` for rescue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RescueDevice {
    Disk,
    Cdrom,
    Floppy,
}

/// Nova's `hw_rescue_bus` values (its `DiskBus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RescueBus {
    Virtio,
    Ide,
    Scsi,
    Usb,
    Sata,
    Fdc,
    Xen,
    Lxc,
    Uml,
}

impl std::str::FromStr for RescueDevice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .map_err(|_| format!("'{s}' is not a valid hw_rescue_device"))
    }
}

impl std::str::FromStr for RescueBus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .map_err(|_| format!("'{s}' is not a valid hw_rescue_bus"))
    }
}

impl RescueDevice {
    pub fn as_str(self) -> &'static str {
        match self {
            RescueDevice::Disk => "disk",
            RescueDevice::Cdrom => "cdrom",
            RescueDevice::Floppy => "floppy",
        }
    }
}

impl RescueBus {
    pub fn as_str(self) -> &'static str {
        match self {
            RescueBus::Virtio => "virtio",
            RescueBus::Ide => "ide",
            RescueBus::Scsi => "scsi",
            RescueBus::Usb => "usb",
            RescueBus::Sata => "sata",
            RescueBus::Fdc => "fdc",
            RescueBus::Xen => "xen",
            RescueBus::Lxc => "lxc",
            RescueBus::Uml => "uml",
        }
    }
}

/// The host's figures, as Nova's compute node record keeps them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostResources {
    pub hypervisor_type: String,
    /// Nova's integer form: 7.2.0 is 7002000.
    pub hypervisor_version: i64,
    pub hypervisor_hostname: String,
    /// JSON text: arch, model, vendor, topology, features.
    pub cpu_info: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    /// Size of the filesystem holding the guests' disks.
    pub local_gb: i64,
    /// Free space there (Nova's `disk_available_least`).
    pub disk_available_least_gb: i64,
}

/// Where a guest's VNC server answers. Never an outside address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConsoleTarget {
    Unix { path: PathBuf },
    Tcp { host: String, port: u16 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_state_codes_round_trip() {
        for p in [
            PowerState::NoState,
            PowerState::Running,
            PowerState::Paused,
            PowerState::Shutdown,
            PowerState::Crashed,
            PowerState::Suspended,
        ] {
            assert_eq!(PowerState::from_code(p.code()), p);
        }
        assert_eq!(
            serde_json::to_value(PowerState::Shutdown).unwrap(),
            "SHUTDOWN"
        );
    }

    #[test]
    fn cinder_connection_info_reads_as_a_volume_connection() {
        let info = serde_json::json!({
            "driver_volume_type": "nbd",
            "data": {"export": "e1", "socket": "/run/x.sock", "volume_id": "v", "discard": true}
        });
        let c: VolumeConnection = serde_json::from_value(info).unwrap();
        let VolumeConnection::Nbd(e) = &c;
        assert_eq!(e.export, "e1");
        assert_eq!(
            e.socket.as_deref(),
            Some(std::path::Path::new("/run/x.sock"))
        );
        assert_eq!(e.access_mode, "rw");
        assert!(serde_json::from_value::<VolumeConnection>(
            serde_json::json!({"driver_volume_type": "iscsi", "data": {}})
        )
        .is_err());
    }

    #[test]
    fn tap_names_follow_neutron() {
        let v = VifSpec {
            port_id: "0123456789abcdef".into(),
            ..Default::default()
        };
        assert_eq!(v.tap_name(), "tap0123456789a");
    }
}
