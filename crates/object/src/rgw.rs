//! A [`Backend`] on an S3 service — Ceph's RADOS Gateway for deployments
//! that outgrow one machine (no home-made replication: RADOS replicates).
//! Each piece of data is one S3 object named by its data id in one bucket;
//! records and listings stay in the object service's database. Requests
//! are signed with AWS Signature V4 by a small client here (a few HMACs,
//! no SDK). A PUT is atomic in S3, so an interrupted upload leaves nothing
//! to clean up; bodies stream both ways. S3 needs a PUT's length up front:
//! a body of declared length streams straight through, a chunked one is
//! first spooled to a local temporary file (disk, not memory).

use crate::backend::{Backend, ByteStream, Filesystem, WriteError, Written};
use axum::body::Bytes;
use ferrostack_core::config::Config;
use ferrostack_core::Error;
use futures::{Stream, StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use md5::Digest as _;
use reqwest::{Method, StatusCode};
use sha2::Sha256;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The SHA-256 of an empty payload, which every bodiless request signs.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub struct S3Backend {
    http: reqwest::Client,
    /// `http://host:port`, no trailing slash.
    endpoint: String,
    /// `host:port` as signed.
    host: String,
    bucket: String,
    access: String,
    secret: String,
    region: String,
    /// Where chunked uploads wait until their length is known.
    spool: Filesystem,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], msg: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn io(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("S3 backend: {what}: {e}"))
}

impl S3Backend {
    /// A backend on `[object] s3_*`; the bucket is created when missing.
    pub async fn open(config: &Config) -> Result<Self, String> {
        let cfg = &config.object;
        let spool_dir = config.object_data_dir().join("spool");
        let spool = Filesystem::open(&spool_dir)
            .map_err(|e| format!("[object] spool {}: {e}", spool_dir.display()))?;
        let url = reqwest::Url::parse(&cfg.s3_endpoint)
            .map_err(|e| format!("[object] s3_endpoint '{}': {e}", cfg.s3_endpoint))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => {
                return Err(format!(
                    "[object] s3_endpoint '{}' has no host",
                    cfg.s3_endpoint
                ))
            }
        };
        let valid_bucket = (3..=63).contains(&cfg.s3_bucket.len())
            && cfg
                .s3_bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "[object] s3_bucket '{}' is not a valid bucket name",
                cfg.s3_bucket
            ));
        }
        let backend = S3Backend {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?,
            endpoint: cfg.s3_endpoint.trim_end_matches('/').to_owned(),
            host,
            bucket: cfg.s3_bucket.clone(),
            access: cfg.s3_access_key.clone(),
            secret: cfg.s3_secret_key.clone(),
            region: cfg.s3_region.clone(),
            spool,
        };
        backend.ensure_bucket().await.map_err(|e| e.to_string())?;
        Ok(backend)
    }

    async fn ensure_bucket(&self) -> std::io::Result<()> {
        let path = format!("/{}", self.bucket);
        let resp = self.request(Method::PUT, &path, &[], None).await?;
        match resp.status() {
            // 409 is BucketAlreadyOwnedByYou (or Exists: then the next
            // call tells whether it is ours).
            StatusCode::OK | StatusCode::CONFLICT => Ok(()),
            s => Err(io("creating the bucket", s)),
        }
    }

    /// SigV4 headers for a request on `path` (already URL-safe) signing
    /// `extra` headers too; `payload` is the body's SHA-256 or
    /// `UNSIGNED-PAYLOAD`.
    fn sign(
        &self,
        method: &Method,
        path: &str,
        extra: &[(&str, String)],
        payload: &str,
    ) -> Vec<(String, String)> {
        let now = chrono::Utc::now();
        let date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let scope = format!("{}/{}/s3/aws4_request", now.format("%Y%m%d"), self.region);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-amz-content-sha256".into(), payload.into()),
            ("x-amz-date".into(), date.clone()),
        ];
        headers.extend(
            extra
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        );
        headers.sort();
        let names = headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let canonical = format!("{method}\n{path}\n\n{canonical_headers}\n{names}\n{payload}");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut key = format!("AWS4{}", self.secret).into_bytes();
        for part in scope.split('/') {
            key = hmac(&key, part);
        }
        let signature = hex(&hmac(&key, &to_sign));
        headers.retain(|(k, _)| k != "host");
        headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
                self.access
            ),
        ));
        headers
    }

    /// One signed request; a body is sent unsigned (streamed, chunked).
    async fn request(
        &self,
        method: Method,
        path: &str,
        extra: &[(&str, String)],
        body: Option<(reqwest::Body, u64)>,
    ) -> std::io::Result<reqwest::Response> {
        let payload = if body.is_some() {
            "UNSIGNED-PAYLOAD"
        } else {
            EMPTY_SHA256
        };
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.endpoint));
        for (k, v) in self.sign(&method, path, extra, payload) {
            req = req.header(k, v);
        }
        if let Some((b, len)) = body {
            req = req.header("content-length", len).body(b);
        }
        req.send().await.map_err(|e| io("unreachable", e))
    }

    fn key(&self, data_id: &str) -> String {
        format!("/{}/{data_id}", self.bucket)
    }

    /// GET of the object, optionally a byte range; 404 is `NotFound`.
    async fn get(
        &self,
        data_id: &str,
        range: Option<String>,
    ) -> std::io::Result<reqwest::Response> {
        let path = self.key(data_id);
        let mut extra = Vec::new();
        if let Some(r) = range {
            extra.push(("range", r));
        }
        let resp = self.request(Method::GET, &path, &extra, None).await?;
        match resp.status() {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => Ok(resp),
            StatusCode::NOT_FOUND => Err(std::io::ErrorKind::NotFound.into()),
            s => Err(io("reading", s)),
        }
    }

    /// PUT a body of known length as it arrives, counted and hashed.
    async fn put_stream(
        &self,
        data_id: &str,
        body: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
        length: u64,
    ) -> Result<Written, WriteError> {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stream = counted(body, length, tally.clone());
        let sent = self
            .request(
                Method::PUT,
                &self.key(data_id),
                &[],
                Some((reqwest::Body::wrap_stream(stream), length)),
            )
            .await;
        let (size, md5, failure) = {
            let mut t = tally.lock().expect("tally");
            let md5 = hex(&std::mem::take(&mut t.md5).finalize());
            (t.size, md5, t.failure.take())
        };
        if let Some(f) = failure {
            let _ = self.remove(data_id).await;
            return Err(f);
        }
        let resp = sent.map_err(|e| WriteError::Unavailable(e.to_string()))?;
        self.check_stored(data_id, resp, size, md5).await
    }

    /// A chunked body: into the spool, then PUT with its length.
    async fn put_spooled(
        &self,
        data_id: &str,
        body: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
        limit: u64,
    ) -> Result<Written, WriteError> {
        let w = self.spool.write(data_id, body, limit, None).await?;
        let file = match tokio::fs::File::open(self.spool.path(data_id)).await {
            Ok(f) => f,
            Err(e) => {
                let _ = self.spool.remove(data_id).await;
                return Err(WriteError::Io(e));
            }
        };
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        let sent = self
            .request(
                Method::PUT,
                &self.key(data_id),
                &[],
                Some((reqwest::Body::wrap_stream(stream), w.size)),
            )
            .await;
        let _ = self.spool.remove(data_id).await;
        let resp = sent.map_err(|e| WriteError::Unavailable(e.to_string()))?;
        self.check_stored(data_id, resp, w.size, w.md5).await
    }

    /// A PUT's answer: stored, with the MD5 the bytes had on the way.
    async fn check_stored(
        &self,
        data_id: &str,
        resp: reqwest::Response,
        size: u64,
        md5: String,
    ) -> Result<Written, WriteError> {
        if resp.status() != StatusCode::OK {
            return Err(WriteError::Unavailable(format!(
                "the S3 backend refused the data: {}",
                resp.status()
            )));
        }
        // A single PUT's ETag is its MD5: the bytes arrived as sent.
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !etag.trim_matches('"').eq_ignore_ascii_case(&md5) {
            let _ = self.remove(data_id).await;
            return Err(WriteError::Unavailable(format!(
                "the S3 backend stored ETag {etag}, not {md5}"
            )));
        }
        Ok(Written {
            data_id: data_id.to_owned(),
            size,
            md5,
        })
    }
}

/// What a streamed upload has seen so far, shared with the writer.
#[derive(Default)]
struct Tally {
    size: u64,
    md5: md5::Md5,
    failure: Option<WriteError>,
}

/// The body counted and hashed as it goes up; it stops at the limit or at
/// the client's error, recording why.
fn counted(
    body: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
    limit: u64,
    tally: Arc<Mutex<Tally>>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    body.map(move |chunk| {
        let mut t = tally.lock().expect("tally");
        match chunk {
            Ok(c) if t.size + c.len() as u64 > limit => {
                t.failure = Some(WriteError::TooLarge);
                Err(io("upload", "over the limit"))
            }
            Ok(c) => {
                t.size += c.len() as u64;
                t.md5.update(&c);
                Ok(c)
            }
            Err(e) => {
                let msg = e.to_string();
                t.failure = Some(WriteError::Client(e));
                Err(io("client body", msg))
            }
        }
    })
}

#[async_trait::async_trait]
impl Backend for S3Backend {
    async fn write(
        &self,
        data_id: &str,
        body: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
        limit: u64,
        length: Option<u64>,
    ) -> Result<Written, WriteError> {
        match length {
            Some(n) if n > limit => Err(WriteError::TooLarge),
            Some(n) => self.put_stream(data_id, body, n).await,
            None => self.put_spooled(data_id, body, limit).await,
        }
    }

    async fn read(&self, data_id: &str, offset: u64, len: u64) -> std::io::Result<ByteStream> {
        if len == 0 {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let range = format!("bytes={offset}-{}", offset + len - 1);
        let resp = self.get(data_id, Some(range)).await?;
        Ok(Box::pin(resp.bytes_stream().map_err(|e| io("reading", e))))
    }

    async fn read_all(&self, data_id: &str) -> std::io::Result<Vec<u8>> {
        let resp = self.get(data_id, None).await?;
        Ok(resp.bytes().await.map_err(|e| io("reading", e))?.to_vec())
    }

    async fn duplicate(&self, from: &str, to: &str) -> std::io::Result<()> {
        let source = self.key(from);
        let resp = self
            .request(
                Method::PUT,
                &self.key(to),
                &[("x-amz-copy-source", source)],
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Err(std::io::ErrorKind::NotFound.into()),
            s => Err(io("copying", s)),
        }
    }

    async fn remove(&self, data_id: &str) -> std::io::Result<()> {
        self.spool.remove(data_id).await?;
        let resp = self
            .request(Method::DELETE, &self.key(data_id), &[], None)
            .await?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            s => Err(io("deleting", s)),
        }
    }

    /// A PUT is atomic in S3: an interrupted one left nothing behind
    /// there; only the spool has temporary files.
    async fn clear_temporary(&self) -> std::io::Result<usize> {
        self.spool.clear_temporary().await
    }
}
