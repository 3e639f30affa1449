//! Image data stores. Every upload is first streamed to a local temporary
//! file while its size, MD5 and SHA-512 are computed ([`FilesystemStore`]);
//! only a complete, verified upload is handed to the [`ImageData`] store of
//! active images — the filesystem (a rename) or the object service
//! ([`crate::swift::SwiftStore`]) — so a reader never sees a partial image
//! and a crash leaves only temporary files, which [`FilesystemStore::recover`]
//! removes.

use axum::body::Bytes;
use ferrostack_core::Error;
use futures::{Stream, StreamExt};
use md5::Digest as _;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Image data on its way to a client.
pub type DataStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Where the data of active images lives (Glance's `glance_store` drivers).
#[async_trait::async_trait]
pub trait ImageData: Send + Sync {
    /// Keep a verified upload as the data of image `id`; the temporary file
    /// is consumed on success and left to the caller on failure.
    async fn put(&self, id: &str, w: &Written) -> Result<(), Error>;
    /// `len` bytes of image `id`'s data from byte `start` (the whole image
    /// when `start` is 0 and `len` its size).
    async fn get(&self, id: &str, start: u64, len: u64, size: u64) -> Result<DataStream, Error>;
    /// Remove image `id`'s data; missing data is fine.
    async fn delete(&self, id: &str) -> Result<(), Error>;
}

fn unavailable(id: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("The image data of {id} is not available: {e}"))
}

pub struct FilesystemStore {
    root: PathBuf,
}

/// A completely received upload, still in its temporary file.
#[derive(Debug)]
pub struct Written {
    pub tmp: PathBuf,
    pub size: u64,
    pub md5: String,
    pub sha512: String,
    pub head: Vec<u8>,
}

/// Why an upload stopped.
#[derive(Debug)]
pub enum WriteError {
    /// More bytes than allowed (quota or size cap): 413.
    TooLarge(u64),
    /// The client's stream failed.
    Client(String),
    /// The disk failed.
    Io(std::io::Error),
}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::TooLarge(limit) => Error::PayloadTooLarge(format!(
                "Image exceeds the storage quota or size limit of {limit} bytes."
            )),
            WriteError::Client(m) => {
                Error::BadRequest(format!("The image upload was interrupted: {m}"))
            }
            WriteError::Io(e) => Error::Internal(format!("image store: {e}")),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FilesystemStore {
    pub fn open(root: &Path) -> std::io::Result<Self> {
        for d in [root.to_path_buf(), root.join(".tmp"), root.join(".staging")] {
            std::fs::create_dir_all(&d)?;
        }
        Ok(FilesystemStore {
            root: root.to_owned(),
        })
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn staging_path(&self, id: &str) -> PathBuf {
        self.root.join(".staging").join(id)
    }

    /// Stream `body` into a new temporary file, at most `max_bytes` bytes.
    pub async fn write<S, E>(
        &self,
        id: &str,
        mut body: S,
        max_bytes: u64,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let tmp = self
            .root
            .join(".tmp")
            .join(format!("{id}.{}", uuid::Uuid::new_v4().simple()));
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(WriteError::Io)?;
        let mut md5 = md5::Md5::new();
        let mut sha512 = sha2::Sha512::new();
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(crate::format::HEAD_BYTES);
        let result: Result<(), WriteError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| WriteError::Client(e.to_string()))?;
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(WriteError::TooLarge(max_bytes));
                }
                if head.len() < crate::format::HEAD_BYTES {
                    let take = (crate::format::HEAD_BYTES - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                md5.update(&chunk);
                sha512.update(&chunk);
                file.write_all(&chunk).await.map_err(WriteError::Io)?;
            }
            file.sync_all().await.map_err(WriteError::Io)?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(Written {
            tmp,
            size,
            md5: hex(&md5.finalize()),
            sha512: hex(&sha512.finalize()),
            head,
        })
    }

    /// Rename a verified upload into place (atomic on one filesystem).
    pub async fn commit(&self, w: &Written, dest: &Path) -> std::io::Result<()> {
        tokio::fs::rename(&w.tmp, dest).await?;
        if let Some(dir) = dest.parent() {
            if let Ok(d) = tokio::fs::File::open(dir).await {
                let _ = d.sync_all().await;
            }
        }
        Ok(())
    }

    pub async fn discard(&self, w: &Written) {
        let _ = tokio::fs::remove_file(&w.tmp).await;
    }

    /// Remove an image's data; a missing file is fine.
    pub async fn delete(&self, id: &str) -> std::io::Result<()> {
        for p in [self.path(id), self.staging_path(id)] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// After a restart: drop temporary files of interrupted uploads, and
    /// data (or staged data) no image record claims.
    pub fn recover(
        &self,
        stored: &HashSet<String>,
        staged: &HashSet<String>,
    ) -> std::io::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let mut sweep = |dir: PathBuf, keep: Option<&HashSet<String>>| -> std::io::Result<()> {
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                if !e.file_type()?.is_file() {
                    continue;
                }
                let name = e.file_name().to_string_lossy().into_owned();
                if keep.is_some_and(|k| k.contains(&name)) {
                    continue;
                }
                std::fs::remove_file(e.path())?;
                removed.push(e.path());
            }
            Ok(())
        };
        sweep(self.root.join(".tmp"), None)?;
        sweep(self.root.join(".staging"), Some(staged))?;
        sweep(self.root.clone(), Some(stored))?;
        Ok(removed)
    }
}

/// The filesystem store of active images: `<root>/<id>`.
pub struct FileData {
    root: PathBuf,
}

impl FileData {
    pub fn new(root: &Path) -> Self {
        FileData {
            root: root.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl ImageData for FileData {
    async fn put(&self, id: &str, w: &Written) -> Result<(), Error> {
        let dest = self.root.join(id);
        tokio::fs::rename(&w.tmp, &dest)
            .await
            .map_err(Error::internal)?;
        if let Ok(d) = tokio::fs::File::open(&self.root).await {
            let _ = d.sync_all().await;
        }
        Ok(())
    }

    async fn get(&self, id: &str, start: u64, len: u64, _size: u64) -> Result<DataStream, Error> {
        let mut file = tokio::fs::File::open(self.root.join(id))
            .await
            .map_err(|e| unavailable(id, e))?;
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(Error::internal)?;
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
        Ok(Box::pin(stream))
    }

    async fn delete(&self, id: &str) -> Result<(), Error> {
        match tokio::fs::remove_file(self.root.join(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::internal(e)),
        }
    }
}
