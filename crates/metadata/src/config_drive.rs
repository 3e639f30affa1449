//! The config drive: the metadata documents on an ISO 9660 volume labelled
//! `config-2`, as Nova's `ConfigDriveBuilder` makes it
//! (`nova/virt/configdrive.py`, `metadata_for_config_drive`):
//!
//! - `ec2/<version>/meta-data.json` (the `meta-data` tree as JSON) and
//!   `ec2/<version>/user-data` for `2009-04-04` and `latest` (Nova's
//!   `config_drive_skip_versions` leaves out the older ones);
//! - `openstack/<version>/meta_data.json`, `user_data`, and from their
//!   versions on `vendor_data.json`, `network_data.json` and
//!   `vendor_data2.json`, for every version and `latest`. The drive's
//!   `meta_data.json` also carries `admin_pass` when there is one.
//!
//! The tree is written to a private temporary directory, which is removed
//! whatever happens, and packed by Debian's `genisoimage`.

use crate::{ec2, openstack, InstanceMetadata};
use rand::RngCore;
use std::path::{Path, PathBuf};

/// The ISO builder (Debian package `genisoimage`).
pub const GENISOIMAGE: &str = "genisoimage";

/// The volume label cloud-init and other guests look for.
pub const VOLUME_LABEL: &str = "config-2";

/// The EC2 versions Nova writes to a drive.
pub const EC2_VERSIONS: [&str; 2] = ["2009-04-04", "latest"];

/// Every file of the drive: (path inside the volume, content), in Nova's
/// order.
pub fn files(md: &InstanceMetadata) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let user_data = md.user_data_lossy();
    for version in EC2_VERSIONS {
        let index = ec2::version_index(version).expect("a known EC2 version");
        if let Some(data) = &user_data {
            out.push((format!("ec2/{version}/user-data"), data.clone()));
        }
        let mut tree = ec2::meta_data(md, index, None);
        ec2::strip_labels(&mut tree);
        let json = serde_json::to_vec(&tree).expect("JSON value serializes");
        out.push((format!("ec2/{version}/meta-data.json"), json));
    }
    for version in openstack::versions() {
        let index = openstack::version_index(version).expect("a known OpenStack version");
        let dir = format!("openstack/{version}");
        out.push((
            format!("{dir}/{}", openstack::META_DATA),
            openstack::meta_data(md, index, true),
        ));
        for name in openstack::listing(md, index) {
            let content = match name {
                openstack::USER_DATA => match &user_data {
                    Some(data) => data.clone(),
                    None => continue,
                },
                openstack::VENDOR_DATA => openstack::vendor_data(md),
                openstack::NETWORK_DATA => openstack::network_data(md),
                openstack::VENDOR_DATA2 => openstack::vendor_data2(md),
                // meta_data.json is above; the password is the API's only.
                _ => continue,
            };
            out.push((format!("{dir}/{name}"), content));
        }
    }
    out
}

/// Write the config drive of `md` to `out` (an ISO 9660 image).
pub async fn build_config_drive(md: &InstanceMetadata, out: &Path) -> Result<(), String> {
    build_with(GENISOIMAGE, md, out, &std::env::temp_dir()).await
}

/// A directory removed when dropped, unless it was removed already.
struct TempDir(Option<PathBuf>);

impl TempDir {
    async fn create(base: &Path) -> Result<TempDir, String> {
        let path = base.join(format!(
            "ferrostack-config-drive-{:016x}",
            rand::thread_rng().next_u64()
        ));
        let mut builder = tokio::fs::DirBuilder::new();
        // User data and the admin password are the guest's secrets.
        builder.mode(0o700);
        builder
            .create(&path)
            .await
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir(Some(path)))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().expect("not removed yet")
    }

    async fn remove(mut self) {
        if let Some(path) = self.0.take() {
            if let Err(e) = tokio::fs::remove_dir_all(&path).await {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a config drive's files");
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Only when the build was abandoned midway (its future dropped).
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

async fn build_with(
    program: &str,
    md: &InstanceMetadata,
    out: &Path,
    temp_base: &Path,
) -> Result<(), String> {
    let dir = TempDir::create(temp_base).await?;
    let result = write_and_pack(program, md, dir.path(), out).await;
    dir.remove().await;
    result
}

async fn write_and_pack(
    program: &str,
    md: &InstanceMetadata,
    dir: &Path,
    out: &Path,
) -> Result<(), String> {
    for (name, content) in files(md) {
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        tokio::fs::write(&path, content)
            .await
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let publisher = format!("Ferrostack {}", env!("CARGO_PKG_VERSION"));
    let output = tokio::process::Command::new(program)
        .arg("-o")
        .arg(out)
        .args(["-ldots", "-allow-lowercase", "-allow-multidot", "-l"])
        .args(["-publisher", &publisher])
        .args(["-quiet", "-J", "-r", "-V", VOLUME_LABEL])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "cannot build a config drive: {program} is not installed \
                 (install the Debian package `genisoimage`)"
            ))
        }
        Err(e) => return Err(format!("cannot run {program}: {e}")),
    };
    if !output.status.success() {
        let _ = tokio::fs::remove_file(out).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr: String = stderr.trim().chars().take(1000).collect();
        return Err(format!(
            "{program} failed ({}) building {}: {stderr}",
            output.status,
            out.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::two_port_instance;
    use serde_json::Value;
    use std::process::Command;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ferrostack-metadata-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// What is in `dir` besides the test's own subdirectory `out`.
    fn leftovers(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != "out"))
            .collect()
    }

    #[test]
    fn the_drive_tree() {
        let mut md = two_port_instance();
        md.admin_pass = Some("s3cret".into());
        let files = files(&md);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        for name in [
            "ec2/2009-04-04/meta-data.json",
            "ec2/2009-04-04/user-data",
            "ec2/latest/meta-data.json",
            "ec2/latest/user-data",
            "openstack/2012-08-10/meta_data.json",
            "openstack/2012-08-10/user_data",
            "openstack/2013-10-17/vendor_data.json",
            "openstack/2015-10-15/network_data.json",
            "openstack/2016-10-06/vendor_data2.json",
            "openstack/latest/meta_data.json",
            "openstack/latest/user_data",
            "openstack/latest/vendor_data.json",
            "openstack/latest/network_data.json",
            "openstack/latest/vendor_data2.json",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        for absent in [
            "ec2/1.0/meta-data.json",
            "openstack/2012-08-10/vendor_data.json",
            "openstack/2013-10-17/network_data.json",
            "openstack/2015-10-15/vendor_data2.json",
            "openstack/latest/password",
        ] {
            assert!(!names.contains(&absent), "{absent} should not be there");
        }
        // 2 EC2 versions × 2 files; OpenStack: 10 × (meta + user) + 8 × vendor
        // + 7 × network + 5 × vendor2.
        assert_eq!(files.len(), 4 + 20 + 8 + 7 + 5);
        let get = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap().1;
        let meta: Value = serde_json::from_slice(get("openstack/latest/meta_data.json")).unwrap();
        assert_eq!(meta["admin_pass"], "s3cret");
        let ec2: Value = serde_json::from_slice(get("ec2/latest/meta-data.json")).unwrap();
        assert_eq!(ec2["instance-id"], "i-0000002a");
        assert_eq!(
            ec2["public-keys"]["0"]["openssh-key"],
            "ssh-ed25519 AAAA mykey"
        );
        assert!(ec2["public-keys"]["0"].get("_name").is_none());
        assert_eq!(get("ec2/latest/user-data"), b"#cloud-config\nhostname: a\n");

        md.user_data_b64 = None;
        let names: Vec<String> = super::files(&md).into_iter().map(|(n, _)| n).collect();
        assert!(!names
            .iter()
            .any(|n| n.ends_with("user_data") || n.ends_with("user-data")));
    }

    #[tokio::test]
    async fn builds_an_iso_labelled_config_2() {
        let dir = scratch("iso");
        let iso = dir.join("out");
        let md = two_port_instance();
        build_with(GENISOIMAGE, &md, &iso, &dir).await.unwrap();
        assert_eq!(leftovers(&dir), Vec::<PathBuf>::new());

        let info = Command::new("isoinfo")
            .args(["-d", "-i"])
            .arg(&iso)
            .output()
            .unwrap();
        assert!(info.status.success());
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains("Volume id: config-2"), "{info}");
        assert!(info.contains("Rock Ridge"), "{info}");

        let read = |path: &str| {
            let out = Command::new("isoinfo")
                .args(["-R", "-i"])
                .arg(&iso)
                .args(["-x", path])
                .output()
                .unwrap();
            assert!(out.status.success());
            out.stdout
        };
        let meta: Value =
            serde_json::from_slice(&read("/openstack/latest/meta_data.json")).unwrap();
        assert_eq!(meta["uuid"], md.uuid);
        assert_eq!(meta["project_id"], "p-a");
        let net: Value =
            serde_json::from_slice(&read("/openstack/2015-10-15/network_data.json")).unwrap();
        assert_eq!(net["links"][0]["id"], "tap11111111-22");
        assert_eq!(
            read("/openstack/latest/user_data"),
            b"#cloud-config\nhostname: a\n"
        );
        let ec2: Value = serde_json::from_slice(&read("/ec2/latest/meta-data.json")).unwrap();
        assert_eq!(ec2["local-ipv4"], "10.0.0.5");

        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_missing_genisoimage_names_the_package_and_leaves_nothing() {
        let dir = scratch("missing");
        let err = build_with(
            "ferrostack-no-such-genisoimage",
            &two_port_instance(),
            &dir.join("out"),
            &dir,
        )
        .await
        .unwrap_err();
        assert!(err.contains("Debian package `genisoimage`"), "{err}");
        assert_eq!(leftovers(&dir), Vec::<PathBuf>::new());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_failing_genisoimage_is_reported_and_cleaned_up() {
        let dir = scratch("failing");
        // The output's directory does not exist.
        let err = build_with(
            GENISOIMAGE,
            &two_port_instance(),
            &dir.join("out/no/such/dir/disk.config"),
            &dir,
        )
        .await
        .unwrap_err();
        assert!(err.contains("genisoimage failed"), "{err}");
        assert_eq!(leftovers(&dir), Vec::<PathBuf>::new());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
