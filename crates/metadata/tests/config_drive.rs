//! A config drive built by `build_config_drive` and read back with
//! `isoinfo` (Debian package `genisoimage`), as a guest would mount it.

use ferrostack_metadata::{build_config_drive, InstanceMetadata, PublicKey};
use serde_json::Value;
use std::process::Command;

fn isoinfo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("isoinfo")
        .args(args)
        .output()
        .expect("isoinfo (apt-get install genisoimage)");
    assert!(
        out.status.success(),
        "isoinfo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn config_drive_reads_back() {
    let dir =
        std::env::temp_dir().join(format!("ferrostack-metadata-drive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let iso = dir.join("disk.config");
    let md = InstanceMetadata {
        uuid: "5e0b6f0e-8d7c-4a2b-9c1d-0e9f8a7b6c5d".into(),
        name: "drive test".into(),
        hostname: "drive-test".into(),
        project_id: "project-a".into(),
        availability_zone: "nova".into(),
        instance_name: "instance-00000007".into(),
        public_keys: vec![PublicKey {
            name: "k".into(),
            key_type: "ssh".into(),
            data: "ssh-ed25519 AAAA k".into(),
        }],
        user_data_b64: Some("aGVsbG8K".into()), // "hello\n"
        admin_pass: Some("p4ss".into()),
        ..Default::default()
    };
    build_config_drive(&md, &iso).await.unwrap();

    let iso_path = iso.to_str().unwrap();
    let info = String::from_utf8(isoinfo(&["-d", "-i", iso_path])).unwrap();
    assert!(info.contains("Volume id: config-2"), "{info}");

    let meta: Value = serde_json::from_slice(&isoinfo(&[
        "-i",
        iso_path,
        "-R",
        "-x",
        "/openstack/latest/meta_data.json",
    ]))
    .unwrap();
    assert_eq!(meta["uuid"], md.uuid);
    assert_eq!(meta["hostname"], "drive-test");
    assert_eq!(meta["admin_pass"], "p4ss");
    assert_eq!(meta["public_keys"]["k"], "ssh-ed25519 AAAA k");

    let old: Value = serde_json::from_slice(&isoinfo(&[
        "-i",
        iso_path,
        "-R",
        "-x",
        "/openstack/2012-08-10/meta_data.json",
    ]))
    .unwrap();
    assert!(old.get("project_id").is_none());
    assert_eq!(
        isoinfo(&["-i", iso_path, "-R", "-x", "/openstack/latest/user_data"]),
        b"hello\n"
    );
    assert_eq!(
        isoinfo(&[
            "-i",
            iso_path,
            "-R",
            "-x",
            "/openstack/latest/network_data.json"
        ]),
        b"{}"
    );
    assert_eq!(
        isoinfo(&["-i", iso_path, "-R", "-x", "/ec2/2009-04-04/user-data"]),
        b"hello\n"
    );
    let ec2: Value = serde_json::from_slice(&isoinfo(&[
        "-i",
        iso_path,
        "-R",
        "-x",
        "/ec2/latest/meta-data.json",
    ]))
    .unwrap();
    assert_eq!(ec2["instance-id"], "i-00000007");

    // The listing, as Rock Ridge shows it.
    let listing = String::from_utf8(isoinfo(&["-i", iso_path, "-R", "-f"])).unwrap();
    for path in [
        "/ec2/latest/meta-data.json",
        "/openstack/2016-10-06/vendor_data2.json",
        "/openstack/latest/vendor_data.json",
    ] {
        assert!(
            listing.lines().any(|l| l == path),
            "{path} not in\n{listing}"
        );
    }
    assert!(!listing.contains("password"));
    let _ = std::fs::remove_dir_all(&dir);
}
