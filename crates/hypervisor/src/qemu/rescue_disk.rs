//! Where a stable device rescue (2.87) puts its disk: the device and bus
//! combinations supported and the QEMU options for each. Apart from
//! `rescue.rs` because the command line (`command.rs`) needs the options
//! and `rescue.rs` needs the running guest's controls, which use the
//! command line.

use crate::{DriverError, RescueBus, RescueDevice, RescueImage, Result};
use std::path::Path;

/// The device and bus combinations a stable rescue places its disk on;
/// any other (a virtio cdrom, a disk on the floppy controller, the Xen,
/// LXC and UML buses) is refused before the guest is touched.
pub(super) fn check_placement(id: &str, image: &RescueImage) -> Result<()> {
    use RescueBus::*;
    use RescueDevice::*;
    match image.placement() {
        (Disk, Virtio | Scsi | Usb | Ide | Sata)
        | (Cdrom, Scsi | Usb | Ide | Sata)
        | (Floppy, Fdc) => Ok(()),
        (device, bus) => Err(DriverError::NotSupported(format!(
            "Instance {id} cannot be rescued: a rescue {} on the {} bus is not supported.",
            device.as_str(),
            bus.as_str()
        ))),
    }
}

/// The QEMU options of a stable device rescue's disk (`disk.rescue`): the
/// drive and its device on the image's device and bus (a controller of
/// its own for SCSI, USB and SATA), the only device booted. Added after
/// every disk of the guest, so theirs keep their places.
pub(super) fn stable_rescue_args(disk: &Path, image: &RescueImage) -> Vec<String> {
    use RescueBus::*;
    use RescueDevice::*;
    let (device, bus) = image.placement();
    let cd = device == Cdrom;
    let media = if cd { ",media=cdrom,readonly=on" } else { "" };
    let file = disk.to_string_lossy().replace(',', ",,");
    let dev = "drive=drive-rescue,id=rescue-disk";
    let boot = ",bootindex=0";
    let (scsi, ide) = if cd {
        ("scsi-cd", "ide-cd")
    } else {
        ("scsi-hd", "ide-hd")
    };
    let devices: Vec<String> = match (device, bus) {
        (Disk, Virtio) => vec![format!("virtio-blk-pci,{dev}{boot}")],
        (_, Scsi) => vec![
            "virtio-scsi-pci,id=rescue-scsi".into(),
            format!("{scsi},bus=rescue-scsi.0,{dev}{boot}"),
        ],
        (Disk, Usb) => vec![
            "qemu-xhci,id=rescue-usb".into(),
            format!("usb-storage,bus=rescue-usb.0,{dev}{boot}"),
        ],
        (_, Usb) => vec![
            "qemu-xhci,id=rescue-usb".into(),
            "usb-bot,id=rescue-bot,bus=rescue-usb.0".into(),
            format!("scsi-cd,bus=rescue-bot.0,{dev}{boot}"),
        ],
        (_, Ide) => vec![format!("{ide},{dev}{boot}")],
        (_, Sata) => vec![
            "ich9-ahci,id=rescue-sata".into(),
            format!("{ide},bus=rescue-sata.0,{dev}{boot}"),
        ],
        // The floppy device has no bootindex of its own: its controller's.
        (Floppy, Fdc) => vec![format!("floppy,unit=0,{dev}")],
        _ => return Vec::new(),
    };
    let mut a = vec![
        "-drive".to_owned(),
        format!("file={file},format=qcow2,if=none,id=drive-rescue{media}"),
    ];
    for d in devices {
        a.extend(["-device".to_owned(), d]);
    }
    if device == Floppy {
        a.extend(["-global".to_owned(), "isa-fdc.bootindexA=0".to_owned()]);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiskFormat;
    use std::path::PathBuf;

    fn image(device: Option<RescueDevice>, bus: Option<RescueBus>) -> RescueImage {
        RescueImage {
            path: PathBuf::from("/cache/img"),
            format: DiskFormat::Raw,
            device,
            bus,
        }
    }

    #[test]
    fn each_device_and_bus_has_its_own_devices() {
        let disk = Path::new("/g/disk.rescue");
        let cases = [
            (
                RescueDevice::Disk,
                RescueBus::Virtio,
                "virtio-blk-pci,drive=drive-rescue",
            ),
            (
                RescueDevice::Disk,
                RescueBus::Scsi,
                "scsi-hd,bus=rescue-scsi.0",
            ),
            (
                RescueDevice::Disk,
                RescueBus::Usb,
                "usb-storage,bus=rescue-usb.0",
            ),
            (
                RescueDevice::Disk,
                RescueBus::Ide,
                "ide-hd,drive=drive-rescue",
            ),
            (
                RescueDevice::Cdrom,
                RescueBus::Ide,
                "ide-cd,drive=drive-rescue",
            ),
            (
                RescueDevice::Cdrom,
                RescueBus::Usb,
                "scsi-cd,bus=rescue-bot.0",
            ),
            (
                RescueDevice::Cdrom,
                RescueBus::Sata,
                "ide-cd,bus=rescue-sata.0",
            ),
        ];
        for (device, bus, wanted) in cases {
            let a = stable_rescue_args(disk, &image(Some(device), Some(bus)));
            let joined = a.join(" ");
            assert!(joined.contains(wanted), "{device:?}/{bus:?}: {joined}");
            assert!(joined.contains("bootindex=0"), "{joined}");
            assert_eq!(
                joined.contains("media=cdrom"),
                device == RescueDevice::Cdrom,
                "{joined}"
            );
        }
        let floppy = stable_rescue_args(disk, &image(Some(RescueDevice::Floppy), None));
        assert!(
            floppy.contains(&"isa-fdc.bootindexA=0".to_owned()),
            "{floppy:?}"
        );
    }

    #[test]
    fn defaults_and_refusals_follow_libvirt() {
        assert!(!image(None, None).is_stable());
        assert_eq!(
            image(Some(RescueDevice::Cdrom), None).placement(),
            (RescueDevice::Cdrom, RescueBus::Ide)
        );
        assert_eq!(
            image(None, Some(RescueBus::Scsi)).placement(),
            (RescueDevice::Disk, RescueBus::Scsi)
        );
        let refused = [
            image(Some(RescueDevice::Cdrom), Some(RescueBus::Virtio)),
            image(Some(RescueDevice::Disk), Some(RescueBus::Fdc)),
            image(None, Some(RescueBus::Xen)),
        ];
        for i in refused {
            assert!(check_placement("x", &i).is_err(), "{i:?}");
        }
        assert!(
            check_placement("x", &image(Some(RescueDevice::Disk), Some(RescueBus::Usb))).is_ok()
        );
    }
}
