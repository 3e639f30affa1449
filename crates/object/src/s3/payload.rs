//! The signed payload hash (`x-amz-content-sha256`). SigV4 signs the hash
//! the client declares, not the body, so a body that does not hash to it
//! must be refused as S3 refuses it (`XAmzContentSHA256Mismatch`, 400) and
//! nothing stored: the body is hashed as it streams and the stream fails at
//! its end on a mismatch, which makes the write that reads it discard its
//! data. `UNSIGNED-PAYLOAD` is taken as is; the `aws-chunked` streaming
//! forms are refused as s3api refuses them (501 `NotImplemented`).

use super::S3Error;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// What the request's `x-amz-content-sha256` promises about its body.
#[derive(Debug, PartialEq)]
pub enum Declared {
    Unsigned,
    Sha256([u8; 32]),
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The declared payload hash, or S3's refusal of the header.
pub fn declared(h: &HeaderMap) -> Result<Declared, S3Error> {
    let Some(v) = crate::api::headers::get(h, "x-amz-content-sha256") else {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Missing required header for this request: x-amz-content-sha256",
        ));
    };
    if v == "UNSIGNED-PAYLOAD" {
        return Ok(Declared::Unsigned);
    }
    if v.starts_with("STREAMING-") {
        return Err(S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "Transferring payloads in multiple chunks using aws-chunked is not supported.",
        ));
    }
    parse_hex(&v).map(Declared::Sha256).ok_or_else(|| {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.",
        )
    })
}

/// The error a request whose body did not hash to its declared value gets.
pub fn mismatch() -> S3Error {
    S3Error::new(
        StatusCode::BAD_REQUEST,
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
}

/// `body`, checked against `declared` as it is read; the flag is set when
/// it ended with a hash other than the declared one.
pub fn verified(body: Body, declared: Declared) -> (Body, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(false));
    let Declared::Sha256(want) = declared else {
        return (body, flag);
    };
    let stream = Verify {
        inner: body.into_data_stream(),
        hasher: Some(Sha256::new()),
        want,
        mismatch: flag.clone(),
    };
    (Body::from_stream(stream), flag)
}

struct Verify<S> {
    inner: S,
    /// `None` once the end has been checked.
    hasher: Option<Sha256>,
    want: [u8; 32],
    mismatch: Arc<AtomicBool>,
}

impl<S, E> Stream for Verify<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(h) = this.hasher.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(std::io::Error::other(e.to_string()))))
            }
            Poll::Ready(None) => {
                let matched = this
                    .hasher
                    .take()
                    .is_none_or(|h| h.finalize().as_slice() == this.want);
                if matched {
                    return Poll::Ready(None);
                }
                this.mismatch.store(true, Ordering::SeqCst);
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "XAmzContentSHA256Mismatch",
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-amz-content-sha256", v.parse().unwrap());
        h
    }

    #[test]
    fn the_header_forms() {
        assert_eq!(
            declared(&with("UNSIGNED-PAYLOAD")).unwrap(),
            Declared::Unsigned
        );
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(matches!(
            declared(&with(empty)).unwrap(),
            Declared::Sha256(_)
        ));
        let e = declared(&with("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (501, "NotImplemented"));
        let e = declared(&with("abc")).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "InvalidArgument"));
        let e = declared(&HeaderMap::new()).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "InvalidRequest"));
    }

    #[tokio::test]
    async fn a_body_is_checked_at_its_end() {
        let good: [u8; 32] = Sha256::digest(b"data").into();
        let (body, flag) = verified(Body::from("data"), Declared::Sha256(good));
        assert_eq!(axum::body::to_bytes(body, 100).await.unwrap(), "data");
        assert!(!flag.load(Ordering::SeqCst));
        let (body, flag) = verified(Body::from("other"), Declared::Sha256(good));
        assert!(axum::body::to_bytes(body, 100).await.is_err());
        assert!(flag.load(Ordering::SeqCst));
    }
}
