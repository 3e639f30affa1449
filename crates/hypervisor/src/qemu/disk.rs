//! `qemu-img` work: reading an image's size and format, the guest's qcow2
//! overlay, standalone snapshots, growing a disk.

use super::exec;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

pub(crate) const GIB: u64 = 1 << 30;

const INFO_TIMEOUT: Duration = Duration::from_secs(60);
const CREATE_TIMEOUT: Duration = Duration::from_secs(300);
/// Copying a whole disk may take a while.
const CONVERT_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageInfo {
    pub virtual_size: u64,
    pub format: String,
    pub backing_file: Option<String>,
}

pub(crate) fn parse_info(json: &str) -> Result<ImageInfo, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable qemu-img info: {e}"))?;
    Ok(ImageInfo {
        virtual_size: v["virtual-size"]
            .as_u64()
            .ok_or("qemu-img info gave no virtual-size")?,
        format: v["format"].as_str().unwrap_or_default().to_owned(),
        backing_file: v["backing-filename"].as_str().map(str::to_owned),
    })
}

/// `qemu-img info` of an image (read even while a QEMU holds it).
pub(crate) async fn info(
    qemu_img: &Path,
    image: &Path,
    format: Option<&str>,
) -> Result<ImageInfo, String> {
    let mut args = vec!["info".to_owned(), "-U".into(), "--output=json".into()];
    if let Some(f) = format {
        args.extend(["-f".into(), f.to_owned()]);
    }
    args.push(image.to_string_lossy().into_owned());
    let ran = exec::run_ok(qemu_img, &args, INFO_TIMEOUT).await?;
    parse_info(&ran.stdout)
}

/// The guest's disk: a qcow2 overlay of `size` bytes on `base`.
pub(crate) async fn create_overlay(
    qemu_img: &Path,
    base: &Path,
    base_format: &str,
    disk: &Path,
    size: u64,
) -> Result<(), String> {
    let base = base.to_string_lossy();
    let disk = disk.to_string_lossy();
    let size = size.to_string();
    let args = [
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        base_format,
        "-b",
        &base,
        &disk,
        &size,
    ];
    exec::run_ok(qemu_img, args, CREATE_TIMEOUT)
        .await
        .map(|_| ())
}

/// An empty qcow2 disk of `size` bytes.
pub(crate) async fn create_blank(qemu_img: &Path, disk: &Path, size: u64) -> Result<(), String> {
    let disk = disk.to_string_lossy();
    let size = size.to_string();
    exec::run_ok(
        qemu_img,
        ["create", "-q", "-f", "qcow2", &disk, &size],
        CREATE_TIMEOUT,
    )
    .await
    .map(|_| ())
}

/// A standalone qcow2 copy of `disk` (its backing chain's data included).
pub(crate) async fn convert(qemu_img: &Path, disk: &Path, dest: &Path) -> Result<(), String> {
    let disk = disk.to_string_lossy();
    let dest = dest.to_string_lossy();
    exec::run_ok(
        qemu_img,
        ["convert", "-U", "-f", "qcow2", "-O", "qcow2", &disk, &dest],
        CONVERT_TIMEOUT,
    )
    .await
    .map(|_| ())
}

/// Grow `disk` to `size` bytes.
pub(crate) async fn grow(qemu_img: &Path, disk: &Path, size: u64) -> Result<(), String> {
    let disk = disk.to_string_lossy();
    let size = size.to_string();
    exec::run_ok(
        qemu_img,
        ["resize", "-q", "-f", "qcow2", &disk, &size],
        CREATE_TIMEOUT,
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_img_info() {
        let i = parse_info(
            r#"{"virtual-size": 1073741824, "filename": "disk", "format": "qcow2",
                "backing-filename": "/base", "backing-filename-format": "raw"}"#,
        )
        .unwrap();
        assert_eq!(
            i,
            ImageInfo {
                virtual_size: GIB,
                format: "qcow2".into(),
                backing_file: Some("/base".into())
            }
        );
        let i = parse_info(r#"{"virtual-size": 512, "format": "raw"}"#).unwrap();
        assert_eq!(i.backing_file, None);
        assert!(parse_info("{}").is_err());
        assert!(parse_info("nope").is_err());
    }
}

/// What an extra disk of the flavor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scratch {
    /// An ext4 filesystem labelled `ephemeral0` (Nova's ephemeral disk).
    Ephemeral,
    /// A swap area.
    Swap,
}

/// A sparse raw file of `size` bytes formatted as `kind`; `mkfs.ext4` and
/// `mkswap` write into the file directly (no loop device, no root).
pub(crate) async fn create_scratch(path: &Path, size: u64, kind: Scratch) -> Result<(), String> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.set_len(size)
        .await
        .map_err(|e| format!("sizing {}: {e}", path.display()))?;
    drop(file);
    let target = path.to_string_lossy().into_owned();
    let (prog, args): (&str, Vec<String>) = match kind {
        Scratch::Ephemeral => (
            "mkfs.ext4",
            vec![
                "-F".into(),
                "-q".into(),
                "-L".into(),
                "ephemeral0".into(),
                target,
            ],
        ),
        Scratch::Swap => ("mkswap", vec![target]),
    };
    exec::run_ok(Path::new(prog), &args, CREATE_TIMEOUT)
        .await
        .map(|_| ())
}
