//! Where volume data lives. [`VolumeBackend`] is what the service needs of
//! a storage backend; [`FileBackend`] keeps one sparse file per volume
//! (`qemu-img create`), the backend every host can run. LVM and others can
//! implement the same trait where a host has them.

use ferrostack_core::{Error, Result};
use std::path::{Path, PathBuf};

#[async_trait::async_trait]
pub trait VolumeBackend: Send + Sync {
    /// The backend name reported as the volume's host (`host@backend#pool`).
    fn name(&self) -> &str;
    /// Make the storage of volume `id` with `size_gb` GiB. Idempotent: a
    /// volume already there at that size is success.
    async fn create(&self, id: &str, size_gb: u64) -> Result<()>;
    /// Remove the storage of volume `id`; nothing there is success.
    async fn delete(&self, id: &str) -> Result<()>;
    /// Grow volume `id` to `size_gb` GiB.
    async fn extend(&self, id: &str, size_gb: u64) -> Result<()>;
}

/// One `qcow2` or `raw` file per volume under a directory. Files are made
/// under a temporary name and renamed, so a file with a volume's name is
/// always complete.
pub struct FileBackend {
    dir: PathBuf,
    format: String,
}

impl FileBackend {
    pub fn new(dir: PathBuf, format: &str) -> Result<FileBackend> {
        if !matches!(format, "qcow2" | "raw") {
            return Err(Error::Internal(format!(
                "[volume] volume_format {format} is neither qcow2 nor raw"
            )));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
        Ok(FileBackend {
            dir,
            format: format.to_owned(),
        })
    }

    /// The file of volume `id`.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("volume-{id}"))
    }
}

/// Run `qemu-img` (a child process: the runtime's threads only wait on it).
async fn qemu_img(args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("qemu-img")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::Internal(format!("cannot run qemu-img: {e}")))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "qemu-img {} failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The virtual size in bytes of an image file.
async fn virtual_size(path: &Path) -> Result<u64> {
    let info = qemu_img(&["info", "--output=json", &path.to_string_lossy()]).await?;
    let v: serde_json::Value =
        serde_json::from_str(&info).map_err(|e| Error::Internal(format!("qemu-img info: {e}")))?;
    v["virtual-size"]
        .as_u64()
        .ok_or_else(|| Error::Internal("qemu-img info gave no virtual-size".into()))
}

const GIB: u64 = 1 << 30;

#[async_trait::async_trait]
impl VolumeBackend for FileBackend {
    fn name(&self) -> &str {
        "file"
    }

    async fn create(&self, id: &str, size_gb: u64) -> Result<()> {
        let path = self.path(id);
        if path.exists() && virtual_size(&path).await? == size_gb * GIB {
            return Ok(());
        }
        let tmp = self.dir.join(format!(".volume-{id}.tmp"));
        let _ = tokio::fs::remove_file(&tmp).await;
        let size = format!("{size_gb}G");
        let made = qemu_img(&[
            "create",
            "-q",
            "-f",
            &self.format,
            &tmp.to_string_lossy(),
            &size,
        ])
        .await;
        if let Err(e) = made {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| Error::Internal(format!("cannot place {}: {e}", path.display())))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        for p in [self.path(id), self.dir.join(format!(".volume-{id}.tmp"))] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Internal(format!(
                        "cannot remove {}: {e}",
                        p.display()
                    )))
                }
            }
        }
        Ok(())
    }

    async fn extend(&self, id: &str, size_gb: u64) -> Result<()> {
        let path = self.path(id);
        if virtual_size(&path).await? >= size_gb * GIB {
            return Ok(());
        }
        let size = format!("{size_gb}G");
        qemu_img(&[
            "resize",
            "-q",
            "-f",
            &self.format,
            &path.to_string_lossy(),
            &size,
        ])
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_backend_creates_extends_and_deletes_idempotently() {
        let dir =
            std::env::temp_dir().join(format!("ferrostack-volume-backend-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for format in ["qcow2", "raw"] {
            let b = FileBackend::new(dir.join(format), format).unwrap();
            b.create("v1", 1).await.unwrap();
            b.create("v1", 1).await.unwrap();
            assert_eq!(virtual_size(&b.path("v1")).await.unwrap(), GIB);
            b.extend("v1", 2).await.unwrap();
            assert_eq!(virtual_size(&b.path("v1")).await.unwrap(), 2 * GIB);
            b.delete("v1").await.unwrap();
            b.delete("v1").await.unwrap();
            assert!(!b.path("v1").exists());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
