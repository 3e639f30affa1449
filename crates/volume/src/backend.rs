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
    /// The file and format an exporter serves volume `id` from; `None`
    /// for a backend whose volumes cannot be exported.
    fn export_source(&self, _id: &str) -> Option<crate::export::ExportSource> {
        None
    }
    /// Copy volume `volume_id`'s data into snapshot `snapshot_id`.
    /// Idempotent; the copy stands alone, so volume and snapshot can be
    /// deleted in either order. A backend without data copies refuses.
    async fn create_snapshot(&self, _snapshot_id: &str, _volume_id: &str) -> Result<()> {
        Err(unsupported(self.name(), "snapshots"))
    }
    /// Remove a snapshot's data; nothing there is success.
    async fn delete_snapshot(&self, _snapshot_id: &str) -> Result<()> {
        Ok(())
    }
    /// Make volume `id` of `size_gb` GiB from snapshot `snapshot_id`.
    async fn create_from_snapshot(
        &self,
        _id: &str,
        _snapshot_id: &str,
        _size_gb: u64,
    ) -> Result<()> {
        Err(unsupported(self.name(), "volumes from snapshots"))
    }
    /// Make volume `id` of `size_gb` GiB as a copy of volume `source_id`.
    async fn clone_volume(&self, _id: &str, _source_id: &str, _size_gb: u64) -> Result<()> {
        Err(unsupported(self.name(), "volume clones"))
    }
    /// Replace volume `id`'s data with the image file `src` (in qemu's
    /// `format`), grown to `size_gb` GiB: a create from an image or a
    /// backup, or a restore over an existing volume.
    async fn import(&self, _id: &str, _src: &Path, _format: &str, _size_gb: u64) -> Result<()> {
        Err(unsupported(self.name(), "imports"))
    }
    /// Write volume `id`'s data to `dest` in qemu's `format`.
    async fn export(&self, _id: &str, _dest: &Path, _format: &str) -> Result<()> {
        Err(unsupported(self.name(), "exports"))
    }
    /// Write the data of `source` to `dest` as qcow2, for the directory
    /// backup driver: whole, or, given `parent` (an earlier backup of the
    /// same volume, in the same directory), as an image on top of it
    /// holding only the blocks that differ from it — an incremental backup.
    async fn write_backup(
        &self,
        _source: BackupSource<'_>,
        _dest: &Path,
        _parent: Option<&Path>,
    ) -> Result<()> {
        Err(unsupported(self.name(), "backups"))
    }
}

/// What a backup reads: a volume's data, or a snapshot's.
#[derive(Clone, Copy, Debug)]
pub enum BackupSource<'a> {
    Volume(&'a str),
    Snapshot(&'a str),
}

fn unsupported(backend: &str, what: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input received: the {backend} backend does not support {what}."
    ))
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

    /// The file of snapshot `id`.
    pub fn snapshot_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("snapshot-{id}"))
    }

    /// Convert `src` (in `src_format`) into `dest` in the backend's
    /// format, at least `size_gb` GiB: written under a temporary name
    /// next to `dest` and renamed, so `dest` is whole or absent.
    async fn place_copy(
        &self,
        src: &Path,
        src_format: &str,
        dest: &Path,
        size_gb: Option<u64>,
    ) -> Result<()> {
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let _ = tokio::fs::remove_file(&tmp).await;
        let made = async {
            convert(src, src_format, &tmp, &self.format).await?;
            if let Some(gb) = size_gb {
                let have = virtual_size(&tmp).await?;
                if have > gb * GIB {
                    return Err(Error::BadRequest(format!(
                        "Invalid input received: the source's {have} bytes do not fit in {gb} GiB."
                    )));
                }
                if have < gb * GIB {
                    let size = format!("{gb}G");
                    qemu_img(&[
                        "resize",
                        "-q",
                        "-f",
                        &self.format,
                        &tmp.to_string_lossy(),
                        &size,
                    ])
                    .await?;
                }
            }
            tokio::fs::rename(&tmp, dest)
                .await
                .map_err(|e| Error::Internal(format!("cannot place {}: {e}", dest.display())))
        }
        .await;
        if made.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        made
    }
}

impl FileBackend {
    fn source_path(&self, source: BackupSource<'_>) -> PathBuf {
        match source {
            BackupSource::Volume(id) => self.path(id),
            BackupSource::Snapshot(id) => self.snapshot_path(id),
        }
    }

    /// The changed blocks are found by qemu-img itself: an empty overlay
    /// over a point-in-time copy of the source shows the current data;
    /// rebasing it (safe mode) onto the parent copies into it exactly the
    /// clusters whose data differs between the two, and nothing else. The
    /// copy (read with shared locks, as an exported volume needs) is
    /// removed after.
    async fn backup_file(
        &self,
        source: BackupSource<'_>,
        dest: &Path,
        parent: Option<&Path>,
    ) -> Result<()> {
        let src = self.source_path(source);
        let Some(parent) = parent else {
            return convert(&src, &self.format, dest, "qcow2").await;
        };
        let parent_name = parent
            .file_name()
            .ok_or_else(|| Error::Internal(format!("bad parent {}", parent.display())))?
            .to_string_lossy()
            .into_owned();
        let mut copy = dest.as_os_str().to_owned();
        copy.push(".whole");
        let copy = PathBuf::from(copy);
        let made = async {
            convert(&src, &self.format, &copy, "qcow2").await?;
            let (copy_s, dest_s) = (copy.to_string_lossy(), dest.to_string_lossy());
            qemu_img(&[
                "create", "-q", "-f", "qcow2", "-b", &copy_s, "-F", "qcow2", &dest_s,
            ])
            .await?;
            qemu_img(&[
                "rebase",
                "-q",
                "-f",
                "qcow2",
                "-b",
                &parent_name,
                "-F",
                "qcow2",
                &dest_s,
            ])
            .await
            .map(|_| ())
        }
        .await;
        remove(&copy).await?;
        made
    }
}

/// `qemu-img convert`, reading with shared locks (`-U`) so a volume that
/// a storage daemon exports can still be copied.
async fn convert(src: &Path, src_format: &str, dest: &Path, dest_format: &str) -> Result<()> {
    qemu_img(&[
        "convert",
        "-U",
        "-q",
        "-f",
        src_format,
        "-O",
        dest_format,
        &src.to_string_lossy(),
        &dest.to_string_lossy(),
    ])
    .await
    .map(|_| ())
}

/// Remove a file; absent is success.
async fn remove(p: &Path) -> Result<()> {
    match tokio::fs::remove_file(p).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Internal(format!(
            "cannot remove {}: {e}",
            p.display()
        ))),
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

    fn export_source(&self, id: &str) -> Option<crate::export::ExportSource> {
        Some(crate::export::ExportSource {
            path: self.path(id),
            format: self.format.clone(),
            limits: Default::default(),
        })
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

    async fn create_snapshot(&self, snapshot_id: &str, volume_id: &str) -> Result<()> {
        let dest = self.snapshot_path(snapshot_id);
        if dest.exists() {
            return Ok(());
        }
        self.place_copy(&self.path(volume_id), &self.format, &dest, None)
            .await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<()> {
        remove(&self.dir.join(format!(".snapshot-{snapshot_id}.tmp"))).await?;
        remove(&self.snapshot_path(snapshot_id)).await
    }

    async fn create_from_snapshot(&self, id: &str, snapshot_id: &str, size_gb: u64) -> Result<()> {
        if self.path(id).exists() {
            return Ok(());
        }
        let src = self.snapshot_path(snapshot_id);
        self.place_copy(&src, &self.format, &self.path(id), Some(size_gb))
            .await
    }

    async fn clone_volume(&self, id: &str, source_id: &str, size_gb: u64) -> Result<()> {
        if self.path(id).exists() {
            return Ok(());
        }
        let src = self.path(source_id);
        self.place_copy(&src, &self.format, &self.path(id), Some(size_gb))
            .await
    }

    async fn import(&self, id: &str, src: &Path, format: &str, size_gb: u64) -> Result<()> {
        self.place_copy(src, format, &self.path(id), Some(size_gb))
            .await
    }

    async fn export(&self, id: &str, dest: &Path, format: &str) -> Result<()> {
        convert(&self.path(id), &self.format, dest, format).await
    }

    async fn write_backup(
        &self,
        source: BackupSource<'_>,
        dest: &Path,
        parent: Option<&Path>,
    ) -> Result<()> {
        self.backup_file(source, dest, parent).await
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
