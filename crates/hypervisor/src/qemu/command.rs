//! The QEMU command line of a guest, as libvirt would write it for Nova:
//! SMBIOS naming OpenStack, virtio disk and NICs on taps, the serial
//! console in a file, VNC and QMP on unix sockets only.

use super::guest::{GuestPaths, GuestRecord};
use super::volume_nodes;
use super::Accel;
use crate::{DiskFormat, VifSpec, VolumeAttachment};

/// How to launch: the guest, where its files are, the accelerator, and
/// whether it restores saved memory (`-incoming defer`, paused).
pub(crate) struct Launch<'a> {
    pub record: &'a GuestRecord,
    pub paths: &'a GuestPaths,
    pub accel: Accel,
    pub incoming: bool,
}

/// A value inside a QEMU option list: commas are doubled.
fn esc(v: &str) -> String {
    v.replace(',', ",,")
}

fn path(p: &std::path::Path) -> String {
    esc(&p.to_string_lossy())
}

/// The disk bus of the root disk, from the image's `hw_disk_bus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DiskBus {
    Virtio,
    Ide,
}

pub(crate) fn disk_bus(record: &GuestRecord) -> DiskBus {
    match record
        .spec
        .image_properties
        .get("hw_disk_bus")
        .map(String::as_str)
    {
        Some("ide") => DiskBus::Ide,
        _ => DiskBus::Virtio,
    }
}

/// The NIC model, from the image's `hw_vif_model` (virtio by default).
pub(crate) fn nic_model(record: &GuestRecord) -> &'static str {
    match record
        .spec
        .image_properties
        .get("hw_vif_model")
        .map(String::as_str)
    {
        Some("e1000") => "e1000",
        Some("e1000e") => "e1000e",
        Some("rtl8139") => "rtl8139",
        Some("ne2k_pci") => "ne2k_pci",
        Some("pcnet") => "pcnet",
        _ => "virtio-net-pci",
    }
}

/// The QEMU ids of a VIF's backend and NIC, named after its tap so that
/// an interface attached later or detached finds its own.
pub(crate) fn nic_ids(vif: &VifSpec) -> (String, String) {
    let tap = vif.tap_name();
    (format!("hostnet-{tap}"), format!("net-{tap}"))
}

/// `-blockdev` (NBD, then raw over it) and `-device` of a volume, the
/// nodes as JSON (export names and paths need no escaping then).
/// `boot`: whether its `boot_index` is kept (a stable rescue boots the
/// rescue disk only).
fn volume_args(v: &VolumeAttachment, boot: bool) -> Vec<String> {
    let Ok(n) = volume_nodes::VolumeNames::new(&v.volume_id) else {
        return Vec::new();
    };
    let Ok(nbd) = volume_nodes::nbd_node(&n.nbd[0], &v.connection) else {
        return Vec::new();
    };
    let mut dev = format!(
        "virtio-blk-pci,drive={},id={},serial={}",
        n.format, n.device, n.serial
    );
    if let Some(i) = v.boot_index.filter(|_| boot) {
        dev.push_str(&format!(",bootindex={i}"));
    }
    vec![
        "-blockdev".into(),
        nbd.to_string(),
        "-blockdev".into(),
        volume_nodes::format_node(&n, &n.nbd[0], &v.connection).to_string(),
        "-device".into(),
        dev,
    ]
}

pub(crate) fn qemu_args(l: &Launch<'_>) -> Vec<String> {
    let spec = &l.record.spec;
    let p = l.paths;
    let id = &spec.id;
    let name = if spec.instance_name.is_empty() {
        id.as_str()
    } else {
        spec.instance_name.as_str()
    };
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));

    push(&["-name", &format!("guest={}", esc(name))]);
    push(&["-uuid", id]);
    push(&[
        "-smbios",
        &format!(
            "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,\
             serial={id},uuid={id},family=Virtual Machine"
        ),
    ]);
    let (accel, cpu) = match l.accel {
        Accel::Kvm => ("kvm", super::accel::KVM_CPU_MODEL),
        _ => ("tcg", super::accel::TCG_CPU_MODEL),
    };
    push(&["-machine", &format!("pc,accel={accel}")]);
    push(&["-cpu", cpu]);
    push(&["-smp", &spec.vcpus.max(1).to_string()]);
    push(&["-m", &spec.memory_mb.to_string()]);
    push(&["-nodefaults", "-no-user-config"]);
    push(&["-rtc", "base=utc"]);
    push(&["-boot", "strict=on"]);

    // The root disk. An ISO base boots as a cdrom, the disk after it; a
    // guest booted from a volume has that volume first and no image disk.
    let iso = l.record.base_format == DiskFormat::Iso && l.record.base.is_some();
    // Rescued (legacy): the rescue disk comes first and is the only one
    // booted; the guest's own disk is the second disk (vdb). A stable
    // device rescue keeps every disk where it is, none booted, and adds
    // the rescue disk last (below).
    let stable = l.record.rescue.as_ref().filter(|r| r.is_stable());
    let rescued = l.record.rescue.is_some();
    let root_boot = match (rescued, iso) {
        (true, _) => String::new(),
        (false, true) => ",bootindex=2".to_owned(),
        (false, false) => ",bootindex=1".to_owned(),
    };
    if rescued && stable.is_none() {
        a.extend([
            "-drive".to_owned(),
            format!(
                "file={},format=qcow2,if=none,id=drive-virtio-rescue",
                path(&p.rescue_disk())
            ),
            "-device".to_owned(),
            "virtio-blk-pci,drive=drive-virtio-rescue,id=virtio-rescue,bootindex=1".to_owned(),
        ]);
    }
    let (boot_volumes, data_volumes): (Vec<_>, Vec<_>) =
        spec.volumes.iter().partition(|v| v.boot_index == Some(0));
    for v in &boot_volumes {
        a.extend(volume_args(v, stable.is_none()));
    }
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    match disk_bus(l.record) {
        _ if l.record.base.is_none() => {}
        DiskBus::Virtio => {
            push(&[
                "-drive",
                &format!(
                    "file={},format=qcow2,if=none,id=drive-virtio-disk0",
                    path(&p.disk())
                ),
            ]);
            push(&[
                "-device",
                &format!("virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0{root_boot}"),
            ]);
        }
        DiskBus::Ide => {
            push(&[
                "-drive",
                &format!(
                    "file={},format=qcow2,if=none,id=drive-ide0-0-0",
                    path(&p.disk())
                ),
            ]);
            push(&[
                "-device",
                &format!("ide-hd,drive=drive-ide0-0-0,id=ide0-0-0{root_boot}"),
            ]);
        }
    }
    // The flavor's ephemeral and swap disks follow the root disk (vdb, vdc).
    let scratch = [
        (spec.ephemeral_gb > 0, p.ephemeral(), 1),
        (spec.swap_mb > 0, p.swap(), 2),
    ];
    for (wanted, file, n) in scratch {
        if wanted {
            push(&[
                "-drive",
                &format!(
                    "file={},format=raw,if=none,id=drive-virtio-disk{n}",
                    path(&file)
                ),
            ]);
            push(&[
                "-device",
                &format!("virtio-blk-pci,drive=drive-virtio-disk{n},id=virtio-disk{n}"),
            ]);
        }
    }
    for v in &data_volumes {
        push(
            &volume_args(v, true)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
    }
    if let (true, Some(base)) = (iso, &l.record.base) {
        push(&[
            "-drive",
            &format!(
                "file={},format=raw,if=none,id=drive-ide0-1-1,media=cdrom,readonly=on",
                path(base)
            ),
        ]);
        let boot = if rescued { "" } else { ",bootindex=1" };
        push(&[
            "-device",
            &format!("ide-cd,drive=drive-ide0-1-1,id=ide0-1-1{boot}"),
        ]);
    }
    if l.record.config_drive {
        push(&[
            "-drive",
            &format!(
                "file={},format=raw,if=none,id=drive-ide0,media=cdrom,readonly=on",
                path(&p.config_drive())
            ),
        ]);
        push(&["-device", "ide-cd,drive=drive-ide0,id=ide0"]);
    }
    if let Some(r) = stable {
        a.extend(super::rescue_disk::stable_rescue_args(&p.rescue_disk(), r));
    }
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));

    let model = nic_model(l.record);
    for vif in &spec.vifs {
        let (netdev, device) = nic_ids(vif);
        push(&[
            "-netdev",
            &format!(
                "tap,id={netdev},ifname={},script=no,downscript=no",
                vif.tap_name()
            ),
        ]);
        let mut dev = format!(
            "{model},netdev={netdev},id={device},mac={}",
            vif.mac_address
        );
        if let (Some(mtu), "virtio-net-pci") = (vif.mtu, model) {
            dev.push_str(&format!(",host_mtu={mtu}"));
        }
        push(&["-device", &dev]);
    }

    push(&[
        "-chardev",
        &format!(
            "file,id=charserial0,path={},append=on",
            path(&p.console_log())
        ),
    ]);
    push(&["-device", "isa-serial,chardev=charserial0,id=serial0"]);
    push(&["-device", "VGA,id=video0"]);
    push(&["-usb", "-device", "usb-tablet,id=input0"]);
    push(&["-vnc", &format!("unix:{}", path(&p.vnc()))]);
    push(&[
        "-qmp",
        &format!("unix:{},server=on,wait=off", path(&p.qmp())),
    ]);
    push(&["-device", "virtio-balloon-pci,id=balloon0"]);
    push(&["-no-shutdown"]);
    push(&["-msg", "timestamp=on"]);
    if l.incoming {
        push(&["-incoming", "defer", "-S"]);
    }
    push(&["-daemonize", "-pidfile", &p.pidfile().to_string_lossy()]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstanceSpec, VifSpec};
    use std::path::{Path, PathBuf};

    const ID: &str = "3f1c2a9e-0d7b-4c43-9a55-8e1b2f0c6d11";

    fn record() -> GuestRecord {
        GuestRecord {
            spec: InstanceSpec {
                id: ID.into(),
                name: "vm1".into(),
                instance_name: "instance-0000002a".into(),
                vcpus: 2,
                memory_mb: 512,
                root_gb: 1,
                image_id: "img".into(),
                vifs: vec![
                    VifSpec {
                        port_id: "0123456789abcdef".into(),
                        network_id: "n".into(),
                        mac_address: "fa:16:3e:00:00:01".into(),
                        mtu: Some(1450),
                    },
                    VifSpec {
                        port_id: "fedcba9876543210".into(),
                        network_id: "n".into(),
                        mac_address: "fa:16:3e:00:00:02".into(),
                        mtu: None,
                    },
                ],
                ..Default::default()
            },
            base: Some(PathBuf::from("/var/cache/base")),
            base_format: DiskFormat::Qcow2,
            config_drive: true,
            rescue: None,
        }
    }

    fn args(record: &GuestRecord, accel: Accel, incoming: bool) -> Vec<String> {
        let paths = GuestPaths::new(Path::new("/srv/instances"), ID).unwrap();
        qemu_args(&Launch {
            record,
            paths: &paths,
            accel,
            incoming,
        })
    }

    /// The value after each occurrence of `flag`.
    fn values<'a>(a: &'a [String], flag: &str) -> Vec<&'a str> {
        a.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn names_the_guest_as_nova_does() {
        let a = args(&record(), Accel::Tcg, false);
        assert_eq!(values(&a, "-name"), ["guest=instance-0000002a"]);
        assert_eq!(values(&a, "-uuid"), [ID]);
        assert_eq!(
            values(&a, "-smbios"),
            [format!(
                "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,\
                 serial={ID},uuid={ID},family=Virtual Machine"
            )]
        );
        assert_eq!(values(&a, "-machine"), ["pc,accel=tcg"]);
        assert_eq!(values(&a, "-cpu"), ["max"]);
        assert_eq!(values(&a, "-smp"), ["2"]);
        assert_eq!(values(&a, "-m"), ["512"]);
        for flag in [
            "-nodefaults",
            "-no-user-config",
            "-no-shutdown",
            "-daemonize",
        ] {
            assert!(a.iter().any(|x| x == flag), "{flag}");
        }
        assert_eq!(
            values(&a, "-pidfile"),
            [format!("/srv/instances/{ID}/qemu.pid")]
        );
        assert!(!a.iter().any(|x| x == "-incoming"));
        let kvm = args(&record(), Accel::Kvm, false);
        assert_eq!(values(&kvm, "-machine"), ["pc,accel=kvm"]);
        assert_eq!(values(&kvm, "-cpu"), ["host"]);
    }

    #[test]
    fn vnc_and_qmp_are_unix_sockets_only() {
        let a = args(&record(), Accel::Tcg, false);
        assert_eq!(
            values(&a, "-vnc"),
            [format!("unix:/srv/instances/{ID}/vnc.sock")]
        );
        assert_eq!(
            values(&a, "-qmp"),
            [format!(
                "unix:/srv/instances/{ID}/qmp.sock,server=on,wait=off"
            )]
        );
        assert!(!a
            .iter()
            .any(|x| x.starts_with("tcp:") || x.contains("0.0.0.0")));
        assert!(!a.iter().any(|x| x == "-monitor" || x == "-serial"));
    }

    #[test]
    fn root_disk_config_drive_and_console() {
        let a = args(&record(), Accel::Tcg, false);
        let drives = values(&a, "-drive");
        assert_eq!(
            drives,
            [
                format!("file=/srv/instances/{ID}/disk,format=qcow2,if=none,id=drive-virtio-disk0"),
                format!("file=/srv/instances/{ID}/disk.config,format=raw,if=none,id=drive-ide0,media=cdrom,readonly=on"),
            ]
        );
        let devices = values(&a, "-device");
        assert!(devices
            .contains(&"virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0,bootindex=1"));
        assert!(devices.contains(&"ide-cd,drive=drive-ide0,id=ide0"));
        assert!(devices.contains(&"isa-serial,chardev=charserial0,id=serial0"));
        assert!(devices.iter().any(|d| d.starts_with("VGA")));
        assert_eq!(
            values(&a, "-chardev"),
            [format!(
                "file,id=charserial0,path=/srv/instances/{ID}/console.log,append=on"
            )]
        );

        let mut r = record();
        r.config_drive = false;
        r.spec
            .image_properties
            .insert("hw_disk_bus".into(), "ide".into());
        let a = args(&r, Accel::Tcg, false);
        assert_eq!(
            values(&a, "-drive"),
            [format!(
                "file=/srv/instances/{ID}/disk,format=qcow2,if=none,id=drive-ide0-0-0"
            )]
        );
        assert!(
            values(&a, "-device").contains(&"ide-hd,drive=drive-ide0-0-0,id=ide0-0-0,bootindex=1")
        );
        assert!(!values(&a, "-device")
            .iter()
            .any(|d| d.starts_with("ide-cd")));
    }

    #[test]
    fn a_rescued_guest_boots_the_rescue_disk_with_its_own_second() {
        let mut r = record();
        r.config_drive = false;
        r.rescue = Some(crate::RescueImage {
            path: PathBuf::from("/var/cache/rescue"),
            format: DiskFormat::Qcow2,
            device: None,
            bus: None,
        });
        let a = args(&r, Accel::Tcg, false);
        assert_eq!(
            values(&a, "-drive"),
            vec![
                format!("file=/srv/instances/{ID}/disk.rescue,format=qcow2,if=none,id=drive-virtio-rescue"),
                format!("file=/srv/instances/{ID}/disk,format=qcow2,if=none,id=drive-virtio-disk0"),
            ]
        );
        let devices = values(&a, "-device");
        assert_eq!(
            &devices[..2],
            &[
                "virtio-blk-pci,drive=drive-virtio-rescue,id=virtio-rescue,bootindex=1",
                "virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0",
            ]
        );
        assert_eq!(a.iter().filter(|x| x.contains("bootindex")).count(), 1);
        // Same NICs as when not rescued.
        r.rescue = None;
        assert_eq!(
            values(&a, "-netdev"),
            values(&args(&r, Accel::Tcg, false), "-netdev")
        );
    }

    #[test]
    fn ephemeral_and_swap_disks_follow_the_root_disk() {
        let mut r = record();
        r.spec.ephemeral_gb = 1;
        r.spec.swap_mb = 512;
        let a = args(&r, Accel::Tcg, false);
        let drives = values(&a, "-drive");
        assert!(drives.contains(
            &format!("file=/srv/instances/{ID}/disk.eph0,format=raw,if=none,id=drive-virtio-disk1")
                .as_str()
        ));
        assert!(drives.contains(
            &format!("file=/srv/instances/{ID}/disk.swap,format=raw,if=none,id=drive-virtio-disk2")
                .as_str()
        ));
        let devices = values(&a, "-device");
        assert!(devices.contains(&"virtio-blk-pci,drive=drive-virtio-disk1,id=virtio-disk1"));
        assert!(devices.contains(&"virtio-blk-pci,drive=drive-virtio-disk2,id=virtio-disk2"));
    }

    #[test]
    fn iso_images_boot_from_a_cdrom() {
        let mut r = record();
        r.base_format = DiskFormat::Iso;
        r.base = Some(PathBuf::from("/cache/a,b.iso"));
        let a = args(&r, Accel::Tcg, false);
        let drives = values(&a, "-drive");
        assert!(drives.contains(
            &"file=/cache/a,,b.iso,format=raw,if=none,id=drive-ide0-1-1,media=cdrom,readonly=on"
        ));
        let devices = values(&a, "-device");
        assert!(devices.contains(&"ide-cd,drive=drive-ide0-1-1,id=ide0-1-1,bootindex=1"));
        assert!(devices
            .contains(&"virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0,bootindex=2"));
    }

    #[test]
    fn one_tap_and_nic_per_vif() {
        let a = args(&record(), Accel::Tcg, false);
        assert_eq!(
            values(&a, "-netdev"),
            [
                "tap,id=hostnet-tap0123456789a,ifname=tap0123456789a,script=no,downscript=no",
                "tap,id=hostnet-tapfedcba98765,ifname=tapfedcba98765,script=no,downscript=no",
            ]
        );
        let nics: Vec<&str> = values(&a, "-device")
            .into_iter()
            .filter(|d| d.starts_with("virtio-net-pci"))
            .collect();
        assert_eq!(
            nics,
            [
                "virtio-net-pci,netdev=hostnet-tap0123456789a,id=net-tap0123456789a,mac=fa:16:3e:00:00:01,host_mtu=1450",
                "virtio-net-pci,netdev=hostnet-tapfedcba98765,id=net-tapfedcba98765,mac=fa:16:3e:00:00:02",
            ]
        );
        let mut r = record();
        r.spec
            .image_properties
            .insert("hw_vif_model".into(), "e1000".into());
        let a = args(&r, Accel::Tcg, false);
        assert!(values(&a, "-device").contains(
            &"e1000,netdev=hostnet-tap0123456789a,id=net-tap0123456789a,mac=fa:16:3e:00:00:01"
        ));
    }

    #[test]
    fn incoming_restores_paused_and_names_are_escaped() {
        let mut r = record();
        r.spec.instance_name = "a,b".into();
        let a = args(&r, Accel::Tcg, true);
        assert_eq!(values(&a, "-incoming"), ["defer"]);
        assert!(a.iter().any(|x| x == "-S"));
        assert_eq!(values(&a, "-name"), ["guest=a,,b"]);
    }

    fn nbd(volume_id: &str, boot_index: Option<i32>) -> VolumeAttachment {
        VolumeAttachment {
            volume_id: volume_id.into(),
            connection: serde_json::from_value(serde_json::json!({
                "driver_volume_type": "nbd",
                "data": {"export": format!("x,{volume_id}"), "socket": "/run/v.sock"}
            }))
            .unwrap(),
            device_name: "/dev/vdb".into(),
            boot_index,
        }
    }

    #[test]
    fn volumes_are_nbd_blockdevs_after_the_root_disk() {
        let mut r = record();
        r.config_drive = false;
        r.spec.ephemeral_gb = 1;
        r.spec.volumes = vec![nbd("0b6f2d4e-1111-4c43-9a55-8e1b2f0c6d11", None)];
        let a = args(&r, Accel::Tcg, false);
        let blockdevs: Vec<serde_json::Value> = values(&a, "-blockdev")
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        assert_eq!(
            blockdevs,
            [
                serde_json::json!({"driver": "nbd", "node-name": "nbda-0b6f2d4e11114c439a558e1b",
                    "server": {"type": "unix", "path": "/run/v.sock"},
                    "export": "x,0b6f2d4e-1111-4c43-9a55-8e1b2f0c6d11",
                    "read-only": false, "reconnect-delay": 15}),
                serde_json::json!({"driver": "raw", "node-name": "vol-0b6f2d4e11114c439a558e1b",
                    "file": "nbda-0b6f2d4e11114c439a558e1b", "read-only": false}),
            ]
        );
        let devices = values(&a, "-device");
        let disks: Vec<&&str> = devices
            .iter()
            .filter(|d| d.starts_with("virtio-blk-pci"))
            .collect();
        assert_eq!(
            disks,
            [
                &"virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0,bootindex=1",
                &"virtio-blk-pci,drive=drive-virtio-disk1,id=virtio-disk1",
                &"virtio-blk-pci,drive=vol-0b6f2d4e11114c439a558e1b,\
                   id=volume-0b6f2d4e-1111-4c43-9a55-8e1b2f0c6d11,serial=0b6f2d4e-1111-4c43-9",
            ]
        );
    }

    #[test]
    fn a_boot_volume_replaces_the_image_disk() {
        let mut r = record();
        r.base = None;
        r.config_drive = false;
        r.spec.volumes = vec![
            nbd("1c7e3f5a-2222-4c43-9a55-8e1b2f0c6d11", None),
            nbd("0b6f2d4e-1111-4c43-9a55-8e1b2f0c6d11", Some(0)),
        ];
        let a = args(&r, Accel::Tcg, false);
        assert!(values(&a, "-drive").is_empty(), "no image disk: {a:?}");
        let disks: Vec<&str> = values(&a, "-device")
            .into_iter()
            .filter(|d| d.starts_with("virtio-blk-pci"))
            .collect();
        assert_eq!(disks.len(), 2);
        assert!(disks[0].contains("id=volume-0b6f2d4e") && disks[0].ends_with(",bootindex=0"));
        assert!(disks[1].contains("id=volume-1c7e3f5a") && !disks[1].contains("bootindex"));
    }

    #[test]
    fn records_from_before_volumes_still_load() {
        let old = serde_json::json!({
            "spec": {"id": ID, "name": "vm1", "instance_name": "i", "vcpus": 1,
                     "memory_mb": 64, "root_gb": 1, "ephemeral_gb": 0, "swap_mb": 0,
                     "image_id": "img", "vifs": []},
            "base": "/var/cache/base", "base_format": "qcow2", "config_drive": false
        });
        let r: GuestRecord = serde_json::from_value(old).unwrap();
        assert_eq!(r.base, Some(PathBuf::from("/var/cache/base")));
        assert!(r.spec.volumes.is_empty());
    }
}
