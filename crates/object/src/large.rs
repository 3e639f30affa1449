//! Large objects and versions. A dynamic large object (`X-Object-Manifest:
//! container/prefix`) is the concatenation of the objects under a prefix,
//! found when read; a static one is a manifest of named segments checked
//! when it is written. Both are read through a [`Plan`]: the pieces of data
//! a GET streams, so ranges work the same on every kind of object.
//! Versioned containers (`X-Versions-Location`, stack mode, and
//! `X-History-Location`) keep replaced objects in an archive container
//! under `<len of name, 3 hex digits><name>/<timestamp>`.

use crate::backend::ByteStream;
use crate::service::ObjectService;
use crate::store::objects::{self, Kind, Object};
use crate::store::ListRange;
use ferrostack_core::{Error, Result};
use futures::{StreamExt, TryStreamExt};
use md5::Digest as _;
use serde::{Deserialize, Serialize};

/// Most segments one manifest may name (Swift's `max_manifest_segments`).
pub const MAX_SEGMENTS: usize = 1000;
/// Largest manifest body accepted (Swift's `max_manifest_size`).
pub const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;

/// One piece of data a read streams.
#[derive(Clone, Debug)]
pub struct Piece {
    pub data_id: String,
    pub offset: u64,
    pub len: u64,
}

/// What a GET of an object streams, its total size and its ETag as sent
/// (a large object's in quotes, as Swift sends it).
#[derive(Clone, Debug)]
pub struct Plan {
    pub pieces: Vec<Piece>,
    pub size: u64,
    pub etag: String,
}

/// One segment of a static large object, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Segment {
    pub name: String,
    pub hash: String,
    pub bytes: u64,
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub last_modified: String,
}

/// One segment of a manifest as a client PUTs it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentIn {
    path: String,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    size_bytes: Option<u64>,
    #[serde(default)]
    range: Option<String>,
}

fn md5_of_etags<'a>(etags: impl Iterator<Item = &'a str>) -> String {
    let mut h = md5::Md5::new();
    for e in etags {
        h.update(e.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `(container, object)` of a segment path `/container/object`.
pub fn split_path(path: &str) -> Option<(String, String)> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let (c, o) = p.split_once('/')?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    let (c, o) = (decode(c)?, decode(o)?);
    (!c.is_empty() && !o.is_empty()).then_some((c, o))
}

/// The read plan of an object in `account`.
pub async fn plan(svc: &ObjectService, obj: &Object) -> Result<Plan> {
    if obj.kind == Kind::Slo {
        return slo_plan(svc, obj).await;
    }
    if let Some(manifest) = obj.meta.get("x-object-manifest") {
        return dlo_plan(svc, &obj.account, manifest).await;
    }
    Ok(Plan {
        pieces: vec![Piece {
            data_id: obj.data_id.clone(),
            offset: 0,
            len: obj.size as u64,
        }],
        size: obj.size as u64,
        etag: obj.etag.clone(),
    })
}

async fn dlo_plan(svc: &ObjectService, account: &str, manifest: &str) -> Result<Plan> {
    let (container, prefix) = manifest
        .split_once('/')
        .map(|(c, p)| (c.to_owned(), p.to_owned()))
        .unwrap_or((manifest.to_owned(), String::new()));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (container, prefix) = (decode(&container), decode(&prefix));
    let mut range = ListRange {
        prefix: Some(prefix),
        limit: 1000,
        ..Default::default()
    };
    let mut segments = Vec::new();
    loop {
        let page = objects::list(&svc.db, account, &container, &range).await?;
        let done = page.len() < range.limit;
        range.marker = page.last().map(|o| o.name.clone());
        segments.extend(page);
        if done || segments.len() > 10 * MAX_SEGMENTS {
            break;
        }
    }
    let etag = format!(
        "\"{}\"",
        md5_of_etags(segments.iter().map(|s| s.etag.as_str()))
    );
    let pieces: Vec<Piece> = segments
        .iter()
        .filter(|s| s.kind == Kind::Plain && s.size > 0)
        .map(|s| Piece {
            data_id: s.data_id.clone(),
            offset: 0,
            len: s.size as u64,
        })
        .collect();
    Ok(Plan {
        size: pieces.iter().map(|p| p.len).sum(),
        pieces,
        etag,
    })
}

pub async fn manifest_of(svc: &ObjectService, obj: &Object) -> Result<Vec<Segment>> {
    let doc = svc
        .backend
        .read_all(&obj.data_id)
        .await
        .map_err(Error::internal)?;
    serde_json::from_slice(&doc).map_err(Error::internal)
}

async fn slo_plan(svc: &ObjectService, obj: &Object) -> Result<Plan> {
    let mut pieces = Vec::new();
    for seg in manifest_of(svc, obj).await? {
        let (c, o) = split_path(&seg.name).ok_or_else(|| Error::internal("bad manifest"))?;
        let found = svc.object(&obj.account, &c, &o).await.ok();
        let Some(s) = found.filter(|s| s.etag == seg.hash && s.kind == Kind::Plain) else {
            return Err(Error::Conflict(format!(
                "Object segment no longer valid: {}",
                seg.name
            )));
        };
        pieces.push(Piece {
            data_id: s.data_id,
            offset: 0,
            len: seg.bytes,
        });
    }
    Ok(Plan {
        size: obj.size as u64,
        pieces,
        etag: format!("\"{}\"", obj.etag),
    })
}

/// Stream `len` bytes of a plan from `start`, reading each piece only
/// when the previous one is done.
pub fn stream(svc: std::sync::Arc<ObjectService>, plan: &Plan, start: u64, len: u64) -> ByteStream {
    let mut wanted = Vec::new();
    let (mut pos, end) = (0u64, start + len);
    for p in &plan.pieces {
        let (p_start, p_end) = (pos, pos + p.len);
        pos = p_end;
        let (from, to) = (start.max(p_start), end.min(p_end));
        if from < to {
            wanted.push(Piece {
                data_id: p.data_id.clone(),
                offset: p.offset + (from - p_start),
                len: to - from,
            });
        }
    }
    let s = futures::stream::iter(wanted)
        .then(move |p| {
            let svc = svc.clone();
            async move { svc.backend.read(&p.data_id, p.offset, p.len).await }
        })
        .try_flatten();
    Box::pin(s)
}

/// Check a manifest a client PUT (`?multipart-manifest=put`) against the
/// segments it names; the manifest to store, its total size and ETag.
pub async fn validate_manifest(
    svc: &ObjectService,
    account: &str,
    body: &[u8],
) -> Result<(Vec<Segment>, u64, String)> {
    let input: Vec<SegmentIn> = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("Manifest must be valid JSON.\n{e}")))?;
    if input.is_empty() || input.len() > MAX_SEGMENTS {
        return Err(Error::BadRequest(format!(
            "Manifest must have between 1 and {MAX_SEGMENTS} segments."
        )));
    }
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for seg in &input {
        if seg.range.is_some() {
            problems.push(format!("{}, Segment ranges are not supported", seg.path));
            continue;
        }
        let Some((c, o)) = split_path(&seg.path) else {
            problems.push(format!("{}, Invalid segment path", seg.path));
            continue;
        };
        let Ok(found) = svc.object(account, &c, &o).await else {
            problems.push(format!("{}, 404 Not Found", seg.path));
            continue;
        };
        if found.kind != Kind::Plain {
            problems.push(format!("{}, Nested manifests are not supported", seg.path));
            continue;
        }
        if seg
            .etag
            .as_deref()
            .is_some_and(|e| !e.is_empty() && e != found.etag)
        {
            problems.push(format!("{}, Etag Mismatch", seg.path));
        }
        if seg.size_bytes.is_some_and(|n| n != found.size as u64) {
            problems.push(format!("{}, Size Mismatch", seg.path));
        }
        out.push(Segment {
            name: format!("/{c}/{o}"),
            hash: found.etag.clone(),
            bytes: found.size as u64,
            content_type: found.content_type.clone(),
            last_modified: crate::listing::iso_time(found.modified_us),
        });
    }
    if !problems.is_empty() {
        return Err(Error::BadRequest(format!(
            "Errors:\n{}",
            problems.join("\n")
        )));
    }
    let size = out.iter().map(|s| s.bytes).sum();
    let etag = md5_of_etags(out.iter().map(|s| s.hash.as_str()));
    Ok((out, size, etag))
}

/// `(container, object)` names of every segment of a manifest, for
/// `?multipart-manifest=delete`.
pub async fn segment_names(svc: &ObjectService, obj: &Object) -> Result<Vec<(String, String)>> {
    Ok(manifest_of(svc, obj)
        .await?
        .iter()
        .filter_map(|s| split_path(&s.name))
        .collect())
}
