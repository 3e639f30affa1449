//! The QEMU names and block-node descriptions of a volume's disk: what
//! the command line (`command.rs`) and hot-plug (`volumes.rs`) both build
//! from, kept apart from either.

use crate::{DriverError, NbdExport, Result, VolumeAttachment, VolumeConnection};
use serde_json::{json, Value};

/// How long the guest's I/O waits for a lost NBD connection to come back
/// (the volume service restarting its export, as it does to grow it)
/// before it fails.
const RECONNECT_DELAY_SECS: u64 = 15;

/// How many characters of the volume id virtio-blk keeps as the serial.
const SERIAL_LEN: usize = 20;

/// The QEMU names of one volume: its device, its raw node and the two
/// names its NBD node takes in turn. Block node names are at most 31
/// bytes, so they carry the first 24 characters of the id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VolumeNames {
    pub device: String,
    pub format: String,
    pub nbd: [String; 2],
    pub serial: String,
}

impl VolumeNames {
    pub fn new(volume_id: &str) -> Result<VolumeNames> {
        validate_volume_id(volume_id)?;
        let key: String = volume_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(24)
            .collect();
        Ok(VolumeNames {
            device: format!("volume-{volume_id}"),
            format: format!("vol-{key}"),
            nbd: [format!("nbda-{key}"), format!("nbdb-{key}")],
            serial: volume_id.chars().take(SERIAL_LEN).collect(),
        })
    }
}

/// Volume ids go into QEMU ids and option strings: keep them to what a
/// UUID is made of.
pub(crate) fn validate_volume_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().any(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DriverError::InvalidRequest(format!(
            "Invalid volume id '{id}': expected a UUID."
        )))
    }
}

fn nbd_export(c: &VolumeConnection) -> &NbdExport {
    match c {
        VolumeConnection::Nbd(e) => e,
    }
}

fn read_only(c: &VolumeConnection) -> bool {
    nbd_export(c).access_mode == "ro"
}

/// The `blockdev-add` arguments of the NBD node `name` for `c`.
pub(crate) fn nbd_node(name: &str, c: &VolumeConnection) -> Result<Value> {
    let e = nbd_export(c);
    let server = match (&e.socket, &e.host, e.port) {
        (Some(path), None, None) => json!({"type": "unix", "path": path}),
        (None, Some(host), port) => {
            json!({"type": "inet", "host": host, "port": port.unwrap_or(10809).to_string()})
        }
        _ => {
            return Err(DriverError::InvalidRequest(
                "The volume's NBD connection must name a unix socket or a host, not both.".into(),
            ))
        }
    };
    Ok(json!({"driver": "nbd", "node-name": name, "server": server,
              "export": e.export, "read-only": read_only(c),
              "reconnect-delay": RECONNECT_DELAY_SECS}))
}

/// The `blockdev-add` arguments of the raw node over NBD node `file`.
pub(crate) fn format_node(n: &VolumeNames, file: &str, c: &VolumeConnection) -> Value {
    json!({"driver": "raw", "node-name": n.format, "file": file, "read-only": read_only(c)})
}

/// The `-device` / `device_add` properties of the volume's disk.
pub(crate) fn device_props(n: &VolumeNames, v: &VolumeAttachment) -> Value {
    let mut dev = json!({"driver": "virtio-blk-pci", "drive": n.format, "id": n.device,
                         "serial": n.serial});
    if let Some(i) = v.boot_index {
        dev["bootindex"] = json!(i);
    }
    dev
}
