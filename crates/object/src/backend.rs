//! Where object bytes live. The service streams a body into the backend,
//! which hands back its size and MD5 once the bytes are durable; records
//! (what exists, what is listed) stay in the database. The filesystem
//! backend writes `tmp/<id>`, fsyncs it, and renames it to
//! `data/<id[..2]>/<id>` only when the upload is complete, so no reader
//! ever sees part of an object and a crash leaves at most a temporary file.

use axum::body::Bytes;
use ferrostack_core::Error;
use futures::{Stream, StreamExt};
use md5::Digest as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A completely received body, durable but not yet named by any record.
#[derive(Debug, Clone)]
pub struct Written {
    pub data_id: String,
    pub size: u64,
    pub md5: String,
}

/// Why a write stopped.
#[derive(Debug)]
pub enum WriteError {
    /// More bytes than the limit (object size, quota): 413.
    TooLarge,
    /// The client's body failed (disconnect, timeout): its error.
    Client(Error),
    Io(std::io::Error),
    /// A remote store failed or refused: 503, as Swift when it cannot store.
    Unavailable(String),
}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::TooLarge => Error::PayloadTooLarge("Your request is too large.".into()),
            WriteError::Client(e) => e,
            WriteError::Io(e) => Error::Internal(format!("object backend: {e}")),
            WriteError::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Stream `body` (at most `limit` bytes; `length` when the client
    /// declared it) into new data named `data_id`.
    async fn write(
        &self,
        data_id: &str,
        body: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
        limit: u64,
        length: Option<u64>,
    ) -> Result<Written, WriteError>;
    /// `len` bytes of the data from `offset`.
    async fn read(&self, data_id: &str, offset: u64, len: u64) -> std::io::Result<ByteStream>;
    /// The whole data, into memory (small documents: manifests).
    async fn read_all(&self, data_id: &str) -> std::io::Result<Vec<u8>>;
    /// New data `to` with the bytes of `from` (copies, versions).
    async fn duplicate(&self, from: &str, to: &str) -> std::io::Result<()>;
    /// Remove data (and any temporary file of it); missing is fine.
    async fn remove(&self, data_id: &str) -> std::io::Result<()>;
    /// After a restart: drop every temporary file.
    async fn clear_temporary(&self) -> std::io::Result<usize>;
}

pub struct Filesystem {
    root: PathBuf,
}

impl Filesystem {
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("data"))?;
        Ok(Filesystem {
            root: root.to_owned(),
        })
    }

    fn tmp(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(id)
    }

    pub(crate) fn path(&self, id: &str) -> PathBuf {
        let shard = id.get(..2).unwrap_or("00");
        self.root.join("data").join(shard).join(id)
    }

    async fn place(&self, tmp: &Path, id: &str) -> std::io::Result<()> {
        let dest = self.path(id);
        let dir = dest.parent().expect("sharded path has a parent").to_owned();
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::rename(tmp, &dest).await?;
        let d = tokio::fs::File::open(&dir).await?;
        d.sync_all().await
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait::async_trait]
impl Backend for Filesystem {
    async fn write(
        &self,
        data_id: &str,
        mut body: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
        limit: u64,
        _length: Option<u64>,
    ) -> Result<Written, WriteError> {
        let tmp = self.tmp(data_id);
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(WriteError::Io)?;
        let mut md5 = md5::Md5::new();
        let mut size: u64 = 0;
        let result: Result<(), WriteError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(WriteError::Client)?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(WriteError::TooLarge);
                }
                md5.update(&chunk);
                file.write_all(&chunk).await.map_err(WriteError::Io)?;
            }
            file.sync_all().await.map_err(WriteError::Io)
        }
        .await;
        drop(file);
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        if let Err(e) = self.place(&tmp, data_id).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(WriteError::Io(e));
        }
        Ok(Written {
            data_id: data_id.to_owned(),
            size,
            md5: hex(&md5.finalize()),
        })
    }

    async fn read(&self, data_id: &str, offset: u64, len: u64) -> std::io::Result<ByteStream> {
        let mut file = tokio::fs::File::open(self.path(data_id)).await?;
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset)).await?;
        }
        let reader = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
        Ok(Box::pin(reader))
    }

    async fn read_all(&self, data_id: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(data_id)).await
    }

    async fn duplicate(&self, from: &str, to: &str) -> std::io::Result<()> {
        // Data files are never modified, so a hard link is a copy.
        let tmp = self.tmp(to);
        if tokio::fs::hard_link(self.path(from), &tmp).await.is_err() {
            tokio::fs::copy(self.path(from), &tmp).await?;
            tokio::fs::File::open(&tmp).await?.sync_all().await?;
        }
        self.place(&tmp, to).await
    }

    async fn remove(&self, data_id: &str) -> std::io::Result<()> {
        for p in [self.path(data_id), self.tmp(data_id)] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn clear_temporary(&self) -> std::io::Result<usize> {
        let mut n = 0;
        let mut dir = tokio::fs::read_dir(self.root.join("tmp")).await?;
        while let Some(e) = dir.next_entry().await? {
            tokio::fs::remove_file(e.path()).await?;
            n += 1;
        }
        Ok(n)
    }
}
