//! The host's image cache (Nova's `_base`): each image is downloaded once,
//! checked against its record (hash, declared format) and converted once
//! into what guests are built on — raw for disks, as Nova's
//! `force_raw_images`; ISO images stay ISO. Guests get qcow2 overlays on
//! these files, so a cached image is never written and never downloaded
//! again while it exists. Images no guest uses are removed once they have
//! aged out. Conversion runs in `qemu-img`, off the async runtime.

use crate::image_client::{ImageApiError, ImageClient};
use ferrostack_hypervisor::DiskFormat;
use serde_json::Value;
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;

/// Why an image cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The image service refused or failed.
    #[error("{0}")]
    Api(String),
    /// The image's data is not a disk a guest can boot from.
    #[error("{0}")]
    InvalidImage(String),
    /// The host could not store or convert it.
    #[error("{0}")]
    Host(String),
}

impl From<ImageApiError> for CacheError {
    fn from(e: ImageApiError) -> Self {
        CacheError::Api(e.to_string())
    }
}

/// A cached image ready for guests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedImage {
    pub path: PathBuf,
    pub format: DiskFormat,
}

pub struct ImageCache {
    dir: PathBuf,
    images: ImageClient,
    qemu_img: PathBuf,
    /// One fetch at a time per image; different images in parallel.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn host_err(what: &str, e: impl std::fmt::Display) -> CacheError {
    CacheError::Host(format!("{what}: {e}"))
}

impl ImageCache {
    pub fn new(dir: PathBuf, images: ImageClient, qemu_img: PathBuf) -> ImageCache {
        ImageCache {
            dir,
            images,
            qemu_img,
            fetching: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn valid_id(image_id: &str) -> Result<(), CacheError> {
        let ok = !image_id.is_empty()
            && image_id.len() <= 64
            && image_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(())
        } else {
            Err(CacheError::InvalidImage(format!(
                "'{image_id}' is not an image id."
            )))
        }
    }

    /// Where an image is (or would be) cached, in each format.
    fn cached_paths(&self, image_id: &str) -> [(PathBuf, DiskFormat); 2] {
        [
            (self.dir.join(image_id), DiskFormat::Raw),
            (self.dir.join(format!("{image_id}.iso")), DiskFormat::Iso),
        ]
    }

    /// The image, cached: from the cache when it is there (its age is
    /// renewed), else downloaded, verified and converted.
    pub async fn fetch(&self, image_id: &str) -> Result<CachedImage, CacheError> {
        Self::valid_id(image_id)?;
        let lock = self
            .fetching
            .lock()
            .unwrap()
            .entry(image_id.to_owned())
            .or_default()
            .clone();
        let _held = lock.lock().await;
        for (path, format) in self.cached_paths(image_id) {
            if tokio::fs::metadata(&path).await.is_ok() {
                touch(&path);
                return Ok(CachedImage { path, format });
            }
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| host_err("creating the image cache", e))?;
        let part = self
            .dir
            .join(format!(".{image_id}.part-{}", uuid::Uuid::new_v4()));
        let result = self.download_and_convert(image_id, &part).await;
        let _ = tokio::fs::remove_file(&part).await;
        result
    }

    async fn download_and_convert(
        &self,
        image_id: &str,
        part: &Path,
    ) -> Result<CachedImage, CacheError> {
        let record = self
            .images
            .get(image_id)
            .await?
            .ok_or_else(|| CacheError::Api(format!("Image {image_id} could not be found.")))?;
        if record["status"] != "active" {
            return Err(CacheError::InvalidImage(format!(
                "Image {image_id} is not active (status {}).",
                record["status"].as_str().unwrap_or("unknown")
            )));
        }
        let declared = record["disk_format"].as_str().unwrap_or("raw").to_owned();
        self.images.download(image_id, part).await?;
        verify_hash(&record, part).await?;
        let detected = self.detect_format(part).await?;
        check_declared_format(image_id, &declared, &detected)?;
        if declared == "iso" {
            let dest = self.dir.join(format!("{image_id}.iso"));
            check_bootable(image_id, part, DiskFormat::Iso).await?;
            tokio::fs::rename(part, &dest)
                .await
                .map_err(|e| host_err("storing the image", e))?;
            return Ok(CachedImage {
                path: dest,
                format: DiskFormat::Iso,
            });
        }
        let raw = self
            .dir
            .join(format!(".{image_id}.raw-{}", uuid::Uuid::new_v4()));
        let converted = self.convert_to_raw(image_id, part, &detected, &raw).await;
        let checked = match converted {
            Ok(()) => check_bootable(image_id, &raw, DiskFormat::Raw).await,
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            let _ = tokio::fs::remove_file(&raw).await;
            return Err(e);
        }
        let dest = self.dir.join(image_id);
        tokio::fs::rename(&raw, &dest)
            .await
            .map_err(|e| host_err("storing the image", e))?;
        tracing::info!(image = %image_id, format = %detected, "image cached");
        Ok(CachedImage {
            path: dest,
            format: DiskFormat::Raw,
        })
    }

    /// The format `qemu-img` finds in the data (never trusting the record),
    /// refusing images that name a backing file or a data file.
    async fn detect_format(&self, path: &Path) -> Result<String, CacheError> {
        let out = tokio::process::Command::new(&self.qemu_img)
            .args(["info", "--output=json"])
            .arg(path)
            .output()
            .await
            .map_err(|e| host_err(&format!("running {}", self.qemu_img.display()), e))?;
        if !out.status.success() {
            return Err(CacheError::InvalidImage(format!(
                "The image data is not a disk image qemu-img can read: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let info: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| host_err("reading qemu-img info", e))?;
        if info.get("backing-filename").is_some()
            || info["format-specific"]["data"]["data-file"].is_string()
        {
            return Err(CacheError::InvalidImage(
                "The image names a backing or data file, which is not allowed.".into(),
            ));
        }
        Ok(info["format"].as_str().unwrap_or("raw").to_owned())
    }

    async fn convert_to_raw(
        &self,
        image_id: &str,
        src: &Path,
        format: &str,
        dest: &Path,
    ) -> Result<(), CacheError> {
        if format == "raw" {
            return tokio::fs::rename(src, dest)
                .await
                .map_err(|e| host_err("storing the image", e));
        }
        let out = tokio::process::Command::new(&self.qemu_img)
            .args(["convert", "-q", "-f", format, "-O", "raw"])
            .arg(src)
            .arg(dest)
            .output()
            .await
            .map_err(|e| host_err(&format!("running {}", self.qemu_img.display()), e))?;
        if !out.status.success() {
            return Err(CacheError::InvalidImage(format!(
                "Image {image_id} could not be converted from {format}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Remove cached images that no guest uses and that were last used
    /// more than `min_age` ago; returns the ids removed.
    pub async fn age_out(&self, in_use: &[PathBuf], min_age: Duration) -> Vec<String> {
        let in_use: HashSet<&Path> = in_use.iter().map(PathBuf::as_path).collect();
        let mut removed = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return removed;
        };
        while let Ok(Some(e)) = entries.next_entry().await {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = e.metadata().await else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            if age < min_age || in_use.contains(path.as_path()) {
                continue;
            }
            // Leftovers of interrupted downloads go too.
            let id = name.trim_end_matches(".iso").to_owned();
            if name.starts_with('.') || Self::valid_id(&id).is_ok() {
                if let Some(lock) = self.fetching.lock().unwrap().get(&id).cloned() {
                    if lock.try_lock().is_err() {
                        continue;
                    }
                }
                if tokio::fs::remove_file(&path).await.is_ok() {
                    tracing::info!(image = %id, "unused cached image removed");
                    removed.push(id);
                }
            }
        }
        removed
    }
}

/// Renew a cached image's age (it was just used).
fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Compare the data with the record's SHA-512 (`os_hash_value`) or MD5
/// (`checksum`), read in chunks.
async fn verify_hash(record: &Value, path: &Path) -> Result<(), CacheError> {
    let want_sha512 = record["os_hash_algo"] == "sha512";
    let want = if want_sha512 {
        record["os_hash_value"].as_str()
    } else {
        record["checksum"].as_str()
    };
    let Some(want) = want.map(str::to_owned) else {
        return Ok(());
    };
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| host_err("reading the image", e))?;
    let mut sha = sha2::Sha512::new();
    let mut md5 = md5::Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| host_err("reading the image", e))?;
        if n == 0 {
            break;
        }
        if want_sha512 {
            sha.update(&buf[..n]);
        } else {
            md5.update(&buf[..n]);
        }
    }
    let got = if want_sha512 {
        hex(&sha.finalize())
    } else {
        hex(&md5.finalize())
    };
    if got != want {
        return Err(CacheError::InvalidImage(format!(
            "The downloaded image does not match its record's hash ({got} != {want})."
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The format in the data must be the one the record declares: a qcow2
/// uploaded as `raw` would otherwise be handed to guests as raw (or the
/// other way round).
fn check_declared_format(image_id: &str, declared: &str, detected: &str) -> Result<(), CacheError> {
    let ok = match declared {
        "raw" | "iso" => detected == "raw",
        "qcow2" => detected == "qcow2",
        "vmdk" => detected == "vmdk",
        "vdi" => detected == "vdi",
        "vhd" => detected == "vpc",
        "vhdx" => detected == "vhdx",
        _ => {
            return Err(CacheError::InvalidImage(format!(
                "Image {image_id} has disk format '{declared}', which this hypervisor cannot boot."
            )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(CacheError::InvalidImage(format!(
            "Image {image_id} is declared '{declared}' but its data is '{detected}'."
        )))
    }
}

/// A disk a BIOS can boot has the 0x55AA signature at the end of its
/// first sector; a bootable ISO has an El Torito boot record.
async fn check_bootable(image_id: &str, path: &Path, format: DiskFormat) -> Result<(), CacheError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| host_err("reading the image", e))?;
    let mut head = vec![0u8; 0x8800];
    let mut got = 0;
    while got < head.len() {
        let n = file
            .read(&mut head[got..])
            .await
            .map_err(|e| host_err("reading the image", e))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    head.truncate(got);
    let mbr = head.len() >= 512 && head[510] == 0x55 && head[511] == 0xAA;
    let el_torito = format == DiskFormat::Iso
        && head.len() >= 0x8820
        && &head[0x8801..0x8806] == b"CD001"
        && head[0x8800] == 0;
    if mbr || el_torito {
        return Ok(());
    }
    let why = if head.iter().all(|b| *b == 0) {
        "its data is empty (all zeros)"
    } else {
        "its first sector has no boot signature (0x55AA)"
    };
    Err(CacheError::InvalidImage(format!(
        "Image {image_id} is not a bootable disk: {why}."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_format_must_match_the_data() {
        assert!(check_declared_format("i", "qcow2", "qcow2").is_ok());
        assert!(check_declared_format("i", "raw", "raw").is_ok());
        assert!(check_declared_format("i", "vhd", "vpc").is_ok());
        let e = check_declared_format("i", "raw", "qcow2").unwrap_err();
        assert!(e
            .to_string()
            .contains("declared 'raw' but its data is 'qcow2'"));
        assert!(check_declared_format("i", "aki", "raw").is_err());
    }

    #[tokio::test]
    async fn boot_signature_is_required() {
        let dir = std::env::temp_dir().join(format!("fs-cache-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, vec![0u8; 4096]).unwrap();
        let e = check_bootable("i", &empty, DiskFormat::Raw)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("not a bootable disk: its data is empty"),
            "{e}"
        );
        let mut sector = vec![0u8; 512];
        sector[0] = 0xEB;
        sector[510] = 0x55;
        sector[511] = 0xAA;
        let boot = dir.join("boot");
        std::fs::write(&boot, &sector).unwrap();
        check_bootable("i", &boot, DiskFormat::Raw).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_cannot_leave_the_cache() {
        assert!(ImageCache::valid_id("../etc").is_err());
        assert!(ImageCache::valid_id("").is_err());
        assert!(ImageCache::valid_id("6a1b0f0e-2d7c-4d1b-9c59-8a4c8f3b0a11").is_ok());
    }
}
