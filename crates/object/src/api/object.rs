//! `/v1/<account>/<container>/<object>`: PUT (streamed, copies, static
//! large object manifests), GET/HEAD (ranges, conditions, large objects),
//! POST (metadata), DELETE, COPY.

use super::headers::{self, Scope};
use super::range::{self, Ranges};
use super::{Req, Svc, Verb};
use crate::access::{self, Caller, Op};
use crate::large;
use crate::service::{now_s, NewObject};
use crate::store::containers;
use crate::store::objects::{Kind, Object};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_core::{Error, Result};
use futures::StreamExt;

pub async fn handle(
    svc: &Svc,
    req: &mut Req,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Response> {
    let c = containers::get(&svc.db, account, container).await?;
    let op = match req.verb {
        Verb::Get | Verb::Head => Op::ReadObject,
        _ => Op::WriteObject,
    };
    access::authorize(
        &svc.policy,
        &req.caller,
        account,
        op,
        c.as_ref().map(|c| &c.meta),
    )?;
    match req.verb {
        Verb::Get | Verb::Head => get(svc, req, account, container, name).await,
        Verb::Put if req.headers.contains_key("x-copy-from") => {
            let from = req.header("x-copy-from").unwrap_or_default();
            let (sc, so) = large::split_path(&from).ok_or_else(|| {
                Error::Status(
                    StatusCode::PRECONDITION_FAILED,
                    "X-Copy-From header must be of the form <container name>/<object name>".into(),
                )
            })?;
            copy(svc, req, account, (&sc, &so), (container, name)).await
        }
        Verb::Put if req.param("multipart-manifest") == Some("put") => {
            put_manifest(svc, req, account, container, name).await
        }
        Verb::Put => put(svc, req, account, container, name).await,
        Verb::Copy => {
            let dest = req.header("destination").unwrap_or_default();
            let (dc, dn) = large::split_path(&dest).ok_or_else(|| {
                Error::Status(
                    StatusCode::PRECONDITION_FAILED,
                    "Destination header must be of the form <container name>/<object name>".into(),
                )
            })?;
            let dc_meta = containers::get(&svc.db, account, &dc).await?;
            access::authorize(
                &svc.policy,
                &req.caller,
                account,
                Op::WriteObject,
                dc_meta.as_ref().map(|c| &c.meta),
            )?;
            copy(svc, req, account, (container, name), (&dc, &dn)).await
        }
        Verb::Post => post(svc, req, account, container, name).await,
        Verb::Delete if req.param("multipart-manifest") == Some("delete") => {
            delete_manifest(svc, req, account, container, name).await
        }
        Verb::Delete => {
            svc.delete_object(account, container, name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Verb::Options => Err(Error::MethodNotAllowed(String::new())),
    }
}

/// A content type from the name's extension (Swift guesses when none is sent).
fn guess_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "application/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "iso" => "application/x-iso9660-image",
        _ => "application/octet-stream",
    }
}

fn content_type(req: &Req, name: &str) -> String {
    let detect = req
        .header("x-detect-content-type")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    match req
        .header("content-type")
        .filter(|t| !t.trim().is_empty() && !detect)
    {
        Some(t) => t.trim().to_owned(),
        None => guess_type(name).to_owned(),
    }
}

/// The metadata a PUT sets (only what it sends).
fn new_meta(req: &Req) -> Result<crate::store::Meta> {
    let mut meta = crate::store::Meta::new();
    headers::apply(
        &mut meta,
        headers::updates(&req.headers, Scope::Object)
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .collect(),
    );
    headers::check(&meta, Scope::Object)?;
    Ok(meta)
}

fn declared_length(req: &Req) -> Result<Option<u64>> {
    match req.header("content-length") {
        Some(l) => l
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Error::BadRequest("Invalid Content-Length".into())),
        // Chunked, or (HTTP/1.1 without either header) an empty body.
        None => Ok(None),
    }
}

async fn precheck_put(
    svc: &Svc,
    req: &Req,
    account: &str,
    container: &str,
    name: &str,
) -> Result<()> {
    if req.header("if-none-match").is_some_and(|v| v.trim() == "*")
        && svc.object(account, container, name).await.is_ok()
    {
        return Err(Error::Status(
            StatusCode::PRECONDITION_FAILED,
            String::new(),
        ));
    }
    Ok(())
}

fn created(obj: &Object, etag: &str) -> Response {
    let mut h = HeaderMap::new();
    headers::put(&mut h, "etag", etag);
    headers::put(&mut h, "last-modified", headers::http_date(obj.modified_us));
    headers::put(&mut h, "content-type", "text/html; charset=UTF-8");
    (StatusCode::CREATED, h).into_response()
}

async fn put(
    svc: &Svc,
    req: &mut Req,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Response> {
    let length = declared_length(req)?;
    if length.is_some_and(|l| l > svc.config.object.max_file_size) {
        return Err(Error::PayloadTooLarge("Your request is too large.".into()));
    }
    precheck_put(svc, req, account, container, name).await?;
    let new = NewObject {
        content_type: content_type(req, name),
        meta: new_meta(req)?,
        delete_at: headers::delete_at(&req.headers, now_s())?.flatten(),
        etag: req.header("etag"),
        length,
    };
    let body = req.take_body();
    let obj = svc.put_object(account, container, name, new, body).await?;
    Ok(created(&obj, &obj.etag))
}

async fn put_manifest(
    svc: &Svc,
    req: &mut Req,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Response> {
    let c = svc.container(account, container).await?;
    precheck_put(svc, req, account, container, name).await?;
    let body = req.small_body(large::MAX_MANIFEST_BYTES).await?;
    let (segments, size, etag) = large::validate_manifest(svc, account, &body).await?;
    if req
        .header("etag")
        .is_some_and(|e| e.trim_matches('"') != etag)
    {
        return Err(Error::Status(
            StatusCode::UNPROCESSABLE_ENTITY,
            String::new(),
        ));
    }
    let doc = serde_json::to_vec(&segments).map_err(Error::internal)?;
    let written = svc.write_document(doc).await?;
    let mut meta = new_meta(req)?;
    meta.remove("x-object-manifest");
    let obj = Object {
        account: account.into(),
        container: container.into(),
        name: name.into(),
        data_id: written.data_id,
        kind: Kind::Slo,
        size: size as i64,
        etag: etag.clone(),
        content_type: content_type(req, name),
        modified_us: crate::store::now_us(),
        delete_at: headers::delete_at(&req.headers, now_s())?.flatten(),
        meta,
    };
    let obj = svc.commit(&c, obj).await?;
    Ok(created(&obj, &format!("\"{etag}\"")))
}

async fn delete_manifest(
    svc: &Svc,
    req: &Req,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Response> {
    let obj = svc.object(account, container, name).await?;
    let mut deleted = 0;
    let mut not_found = 0;
    if obj.kind == Kind::Slo {
        for (c, o) in large::segment_names(svc, &obj).await? {
            match svc.delete_object(account, &c, &o).await {
                Ok(_) => deleted += 1,
                Err(Error::NotFound(_)) => not_found += 1,
                Err(e) => return Err(e),
            }
        }
    }
    svc.delete_object(account, container, name).await?;
    deleted += 1;
    let json = req.header("accept").is_some_and(|a| a.contains("json"));
    let body = if json {
        serde_json::json!({"Number Deleted": deleted, "Number Not Found": not_found,
            "Response Status": "200 OK", "Response Body": "", "Errors": []})
        .to_string()
    } else {
        format!("Number Deleted: {deleted}\nNumber Not Found: {not_found}\nResponse Body: \nResponse Status: 200 OK\nErrors: \n")
    };
    Ok((StatusCode::OK, body).into_response())
}

/// Copy `(container, object)` to `(container, object)` in `account`: the
/// source's bytes (a large object's concatenation), its metadata unless
/// `X-Fresh-Metadata`, the request's metadata over it.
async fn copy(
    svc: &Svc,
    req: &mut Req,
    account: &str,
    src: (&str, &str),
    dst: (&str, &str),
) -> Result<Response> {
    let src_meta = containers::get(&svc.db, account, src.0).await?;
    if req.verb == Verb::Put {
        access::authorize(
            &svc.policy,
            &req.caller,
            account,
            Op::ReadObject,
            src_meta.as_ref().map(|c| &c.meta),
        )?;
    }
    let source = svc.object(account, src.0, src.1).await?;
    let fresh = req
        .header("x-fresh-metadata")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut meta = if fresh {
        Default::default()
    } else {
        source.meta.clone()
    };
    headers::apply(&mut meta, headers::updates(&req.headers, Scope::Object));
    meta.remove("x-object-manifest");
    headers::check(&meta, Scope::Object)?;
    let ctype = req
        .header("content-type")
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| source.content_type.clone());
    let delete_at = headers::delete_at(&req.headers, now_s())?;
    let large_source = source.kind == Kind::Slo || source.meta.contains_key("x-object-manifest");
    let obj = if large_source {
        let plan = large::plan(svc, &source).await?;
        let body = large::stream(svc.clone(), &plan, 0, plan.size);
        let new = NewObject {
            content_type: ctype,
            meta,
            delete_at: delete_at.flatten(),
            etag: None,
            length: Some(plan.size),
        };
        let body = Box::pin(body.map(|r| r.map_err(Error::internal)));
        svc.put_object(account, dst.0, dst.1, new, body).await?
    } else {
        svc.copy_object(&source, account, dst.0, dst.1, |o| {
            o.meta = meta;
            o.content_type = ctype;
            o.delete_at = delete_at.unwrap_or(None);
        })
        .await?
    };
    let mut resp = created(&obj, &obj.etag);
    let h = resp.headers_mut();
    let from = format!("{}/{}", src.0, src.1);
    // As Python's `quote` (Swift's): unreserved characters and '/' stay.
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    let encoded = percent_encoding::utf8_percent_encode(&from, KEEP).to_string();
    // Swift answers a copy with the new object's metadata.
    headers::put_meta(h, &obj.meta, false);
    headers::put(h, "x-copied-from", encoded);
    headers::put(
        h,
        "x-copied-from-last-modified",
        headers::http_date(source.modified_us),
    );
    Ok(resp)
}

async fn post(
    svc: &Svc,
    req: &Req,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Response> {
    let obj = svc.object(account, container, name).await?;
    let mut meta = crate::store::Meta::new();
    if let Some(m) = obj.meta.get("x-object-manifest") {
        meta.insert("x-object-manifest".into(), m.clone());
    }
    headers::apply(&mut meta, headers::updates(&req.headers, Scope::Object));
    headers::check(&meta, Scope::Object)?;
    let delete_at = headers::delete_at(&req.headers, now_s())?.flatten();
    let ctype = req.header("content-type").filter(|t| !t.trim().is_empty());
    svc.post_object(obj, |o| {
        o.meta = meta;
        o.delete_at = delete_at;
        if let Some(t) = ctype {
            o.content_type = t;
        }
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        [("content-type", "text/html; charset=UTF-8")],
    )
        .into_response())
}

fn object_headers(obj: &Object, plan: &large::Plan, caller: &Caller) -> HeaderMap {
    let mut h = HeaderMap::new();
    headers::put(&mut h, "content-type", &obj.content_type);
    headers::put(&mut h, "etag", &plan.etag);
    headers::put(&mut h, "last-modified", headers::http_date(obj.modified_us));
    headers::put(
        &mut h,
        "x-timestamp",
        crate::store::timestamp(obj.modified_us),
    );
    headers::put(&mut h, "accept-ranges", "bytes");
    if let Some(t) = obj.delete_at {
        headers::put(&mut h, "x-delete-at", t.to_string());
    }
    if obj.kind == Kind::Slo {
        headers::put(&mut h, "x-static-large-object", "True");
    }
    for (k, v) in &obj.meta {
        // A temp URL's response shows no private metadata (tempurl's
        // outgoing_remove_headers), only x-object-meta-public-*.
        let private = k.starts_with("x-object-meta-") && !k.starts_with("x-object-meta-public-");
        if matches!(caller, Caller::TempUrl) && private {
            continue;
        }
        headers::put(&mut h, k, v);
    }
    h
}

async fn get(svc: &Svc, req: &Req, account: &str, container: &str, name: &str) -> Result<Response> {
    let obj = svc.object(account, container, name).await?;
    if obj.kind == Kind::Slo && req.param("multipart-manifest") == Some("get") {
        let doc = svc
            .backend
            .read_all(&obj.data_id)
            .await
            .map_err(Error::internal)?;
        let mut h = HeaderMap::new();
        headers::put(&mut h, "content-type", "application/json; charset=utf-8");
        headers::put(&mut h, "x-static-large-object", "True");
        headers::put(&mut h, "etag", format!("{:x}", md5::Md5::digest(&doc)));
        let body = if req.verb == Verb::Head {
            Vec::new()
        } else {
            doc
        };
        return Ok((StatusCode::OK, h, body).into_response());
    }
    let plan = large::plan(svc, &obj).await?;
    let mut h = object_headers(&obj, &plan, &req.caller);
    if let Some(status) = range::conditional(&req.headers, &plan.etag, obj.modified_us)? {
        h.remove("content-type");
        return Ok((status, h).into_response());
    }
    if matches!(req.caller, Caller::TempUrl) && req.verb == Verb::Get {
        disposition(&mut h, req, name);
    }
    let ranges = range::parse(req.header("range").as_deref(), plan.size);
    let head = req.verb == Verb::Head;
    match ranges {
        Ranges::Full => {
            headers::put(&mut h, "content-length", plan.size.to_string());
            let body = if head {
                Body::empty()
            } else {
                Body::from_stream(large::stream(svc.clone(), &plan, 0, plan.size))
            };
            Ok((StatusCode::OK, h, body).into_response())
        }
        Ranges::Unsatisfiable => {
            headers::put(&mut h, "content-range", format!("bytes */{}", plan.size));
            let mut r =
                Error::Status(StatusCode::RANGE_NOT_SATISFIABLE, String::new()).into_response();
            r.headers_mut().extend(h);
            Ok(r)
        }
        Ranges::Parts(parts) if parts.len() == 1 => {
            let (start, len) = parts[0];
            headers::put(
                &mut h,
                "content-range",
                format!("bytes {start}-{}/{}", start + len - 1, plan.size),
            );
            headers::put(&mut h, "content-length", len.to_string());
            let body = if head {
                Body::empty()
            } else {
                Body::from_stream(large::stream(svc.clone(), &plan, start, len))
            };
            Ok((StatusCode::PARTIAL_CONTENT, h, body).into_response())
        }
        Ranges::Parts(parts) => Ok(multirange(svc, &plan, &obj.content_type, parts, h, head)),
    }
}

fn disposition(h: &mut HeaderMap, req: &Req, name: &str) {
    let t = crate::tempurl::TempUrl::from_query(&req.query).unwrap_or_default();
    let base = name.rsplit('/').next().unwrap_or(name);
    let file = t.filename.clone().unwrap_or_else(|| base.to_owned());
    let quoted = file.replace('"', "\\\"");
    let encoded = percent_encoding::utf8_percent_encode(&file, percent_encoding::NON_ALPHANUMERIC);
    let v = if t.inline {
        match &t.filename {
            Some(_) => format!("inline; filename=\"{quoted}\"; filename*=UTF-8''{encoded}"),
            None => "inline".to_owned(),
        }
    } else {
        format!("attachment; filename=\"{quoted}\"; filename*=UTF-8''{encoded}")
    };
    headers::put(h, "content-disposition", v);
}

/// A `multipart/byteranges` answer, each part streamed in turn.
fn multirange(
    svc: &Svc,
    plan: &large::Plan,
    ctype: &str,
    parts: Vec<(u64, u64)>,
    mut h: HeaderMap,
    head: bool,
) -> Response {
    let boundary = uuid::Uuid::new_v4().simple().to_string();
    let size = plan.size;
    let heads: Vec<String> = parts
        .iter()
        .map(|(s, l)| format!("--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {s}-{}/{size}\r\n\r\n", s + l - 1))
        .collect();
    let tail = format!("\r\n--{boundary}--");
    let total: u64 = heads.iter().map(|x| x.len() as u64).sum::<u64>()
        + parts.iter().map(|(_, l)| l).sum::<u64>()
        + 2 * (parts.len() as u64 - 1)
        + tail.len() as u64;
    headers::put(
        &mut h,
        "content-type",
        format!("multipart/byteranges;boundary={boundary}"),
    );
    headers::put(&mut h, "content-length", total.to_string());
    if head {
        return (StatusCode::PARTIAL_CONTENT, h).into_response();
    }
    let mut streams: Vec<crate::backend::ByteStream> = Vec::new();
    for (i, ((s, l), head)) in parts.iter().zip(heads).enumerate() {
        let sep = if i == 0 { String::new() } else { "\r\n".into() };
        let lead = Bytes::from(format!("{sep}{head}"));
        streams.push(Box::pin(futures::stream::once(async move { Ok(lead) })));
        streams.push(large::stream(svc.clone(), plan, *s, *l));
    }
    let tail = Bytes::from(tail);
    streams.push(Box::pin(futures::stream::once(async move { Ok(tail) })));
    let body = Body::from_stream(futures::stream::iter(streams).flatten());
    (StatusCode::PARTIAL_CONTENT, h, body).into_response()
}

use md5::Digest as _;
