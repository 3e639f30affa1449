//! S3-compatible access to the same accounts and objects (Swift's s3api):
//! buckets are containers, keys are objects. Requests signed with AWS
//! Signature V4 by an identity EC2 credential; the credential's project is
//! the account (`AUTH_<project>`), its user's roles there decide as for a
//! token. Path-style addressing on the object port: `/<bucket>/<key>`.

use crate::access::{self, Caller, Op};
use crate::api::headers;
use crate::listing::{self, Entry, Filters};
use crate::service::{NewObject, ObjectService};
use crate::store::{accounts, containers, objects, ListRange};
use axum::body::Body;

pub(crate) mod credentials;
mod error;
mod multipart;
mod payload;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use credentials::hex;
pub use credentials::Ec2Credentials;
pub(crate) use error::xml;
pub use error::S3Error;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::Error;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

fn hmac(key: &[u8], msg: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Whether a request is S3's (signed with SigV4).
pub fn is_s3(h: &HeaderMap) -> bool {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 "))
}

/// The parts of a SigV4 `Authorization` header.
struct SigV4 {
    access: String,
    scope: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_auth(v: &str) -> Option<SigV4> {
    let rest = v.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut fields = HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        fields.insert(k, v);
    }
    let (access, scope) = fields.get("Credential")?.split_once('/')?;
    Some(SigV4 {
        access: access.into(),
        scope: scope.into(),
        signed_headers: fields
            .get("SignedHeaders")?
            .split(';')
            .map(str::to_owned)
            .collect(),
        signature: fields.get("Signature")?.to_string(),
    })
}

/// AWS's URI encoding (RFC 3986 unreserved characters kept).
fn aws_encode(s: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, KEEP).to_string()
}

/// Check the request's SigV4 signature; the caller it authenticates.
async fn authenticate(
    creds: &Ec2Credentials,
    method: &str,
    raw_path: &str,
    query: &[(String, String)],
    h: &HeaderMap,
) -> Result<Arc<AuthContext>, S3Error> {
    let auth = parse_auth(&headers::get(h, "authorization").unwrap_or_default())
        .ok_or_else(S3Error::signature)?;
    let cred = creds.lookup(&auth.access).await?;
    let date = headers::get(h, "x-amz-date").ok_or_else(S3Error::signature)?;
    // A signed request is good for 15 minutes either side, as S3's.
    let signed_at = chrono::NaiveDateTime::parse_from_str(&date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| S3Error::signature())?
        .and_utc()
        .timestamp();
    if (signed_at - crate::service::now_s()).abs() > 900 {
        return Err(S3Error::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (aws_encode(k), aws_encode(v)))
        .collect();
    q.sort();
    let canonical_query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_headers: String = auth
        .signed_headers
        .iter()
        .map(|n| {
            let v = headers::get(h, n).unwrap_or_default();
            format!(
                "{n}:{}\n",
                v.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    let payload =
        headers::get(h, "x-amz-content-sha256").unwrap_or_else(|| "UNSIGNED-PAYLOAD".into());
    let canonical = format!(
        "{method}\n{raw_path}\n{canonical_query}\n{canonical_headers}\n{}\n{payload}",
        auth.signed_headers.join(";")
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}\n{}",
        auth.scope,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{}", cred.secret).into_bytes();
    for part in auth.scope.split('/') {
        key = hmac(&key, part);
    }
    let expected = hex(&hmac(&key, &to_sign));
    if expected != auth.signature {
        return Err(S3Error::signature());
    }
    Ok(cred.ctx)
}

/// Serve one S3 request.
pub async fn handle(svc: &Arc<ObjectService>, req: axum::extract::Request) -> Response {
    match serve(svc, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve(svc: &Arc<ObjectService>, req: axum::extract::Request) -> Result<Response, S3Error> {
    let (parts, body) = req.into_parts();
    let raw_path = parts.uri.path().to_owned();
    let query = crate::api::query::parse_query(parts.uri.query());
    let ctx = authenticate(
        &svc.ec2,
        parts.method.as_str(),
        &raw_path,
        &query,
        &parts.headers,
    )
    .await?;
    let (body, mismatch) = payload::verified(body, payload::declared(&parts.headers)?);
    let outcome = dispatch(svc, &parts, &raw_path, &query, ctx, body).await;
    // A body that did not hash to its signed value was discarded by
    // whatever read it; the client hears why.
    if mismatch.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(payload::mismatch());
    }
    outcome
}

/// Route an authenticated request to its operation.
async fn dispatch(
    svc: &Arc<ObjectService>,
    parts: &axum::http::request::Parts,
    raw_path: &str,
    query: &[(String, String)],
    ctx: Arc<AuthContext>,
    body: Body,
) -> Result<Response, S3Error> {
    let account = format!(
        "{}{}",
        access::RESELLER_PREFIX,
        ctx.project_id.clone().unwrap_or_default()
    );
    let caller = Caller::User(ctx);
    let path = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let path = path.trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (b.to_owned(), k.to_owned()),
        None => (path.to_owned(), String::new()),
    };
    let method = parts.method.as_str();
    let c = if bucket.is_empty() {
        None
    } else {
        containers::get(&svc.db, &account, &bucket).await?
    };
    let op = match (key.is_empty(), method) {
        (true, "GET" | "HEAD") => Op::ListContainer,
        (true, _) => Op::Manage,
        (false, "GET" | "HEAD") => Op::ReadObject,
        (false, _) => Op::WriteObject,
    };
    access::authorize(
        &svc.policy,
        &caller,
        &account,
        op,
        c.as_ref().map(|c| &c.meta),
    )?;
    let no_bucket = || {
        S3Error::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
    };
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match (bucket.is_empty(), key.is_empty(), method) {
        (true, _, "GET") => list_buckets(svc, &account).await,
        (false, true, "PUT") => {
            accounts::ensure(&svc.db, &account).await?;
            if !containers::create(&svc.db, &account, &bucket, &Default::default()).await? {
                return Err(S3Error::new(StatusCode::CONFLICT, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it."));
            }
            Ok((StatusCode::OK, [("location", format!("/{bucket}"))]).into_response())
        }
        (false, true, "DELETE") => {
            c.ok_or_else(no_bucket)?;
            svc.delete_container(&account, &bucket).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (false, true, "HEAD") => {
            c.ok_or_else(no_bucket)?;
            Ok(StatusCode::OK.into_response())
        }
        (false, true, "GET") => {
            c.ok_or_else(no_bucket)?;
            list_objects(svc, &account, &bucket, query).await
        }
        (false, false, _) if c.is_none() => Err(no_bucket()),
        (false, false, "POST") if q("uploads").is_some() => {
            multipart::initiate(svc, &account, &bucket, &key).await
        }
        (false, false, "POST") => {
            multipart::complete(
                svc,
                &account,
                &bucket,
                &key,
                &q("uploadId").unwrap_or_default(),
                body,
            )
            .await
        }
        (false, false, "PUT") => match (q("uploadId"), q("partNumber")) {
            (Some(id), Some(n)) => {
                multipart::upload_part(svc, &account, &bucket, &key, &id, &n, &parts.headers, body)
                    .await
            }
            _ => match headers::get(&parts.headers, "x-amz-copy-source") {
                Some(source) => copy_object(svc, &caller, &account, &bucket, &key, &source).await,
                None => put_object(svc, &account, &bucket, &key, &parts.headers, body).await,
            },
        },
        (false, false, "GET" | "HEAD") => {
            get_object(
                svc,
                &account,
                &bucket,
                &key,
                &parts.headers,
                method == "HEAD",
            )
            .await
        }
        (false, false, "DELETE") if q("uploadId").is_some() => {
            multipart::abort(
                svc,
                &account,
                &bucket,
                &key,
                &q("uploadId").unwrap_or_default(),
            )
            .await
        }
        (false, false, "DELETE") => match svc.delete_object(&account, &bucket, &key).await {
            Ok(_) | Err(Error::NotFound(_)) => Ok(StatusCode::NO_CONTENT.into_response()),
            Err(e) => Err(e.into()),
        },
        _ => Err(S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "A header or operation you provided implies functionality that is not implemented.",
        )),
    }
}

fn iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

async fn list_buckets(svc: &ObjectService, account: &str) -> Result<Response, S3Error> {
    let range = ListRange {
        limit: svc.config.object.listing_limit,
        ..Default::default()
    };
    let all = containers::list(&svc.db, account, &range).await?;
    // Multipart parts live in `<bucket>+segments`, which is no bucket.
    let buckets: String = all
        .iter()
        .filter(|c| !c.name.ends_with("+segments"))
        .map(|c| {
            format!(
                "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
                xml(&c.name),
                iso(c.created_us)
            )
        })
        .collect();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{a}</ID><DisplayName>{a}</DisplayName></Owner><Buckets>{buckets}</Buckets></ListAllMyBucketsResult>",
        a = xml(account)
    );
    Ok((StatusCode::OK, [("content-type", "application/xml")], body).into_response())
}

/// ListObjects (v1: `marker`) and ListObjectsV2 (`list-type=2`:
/// `continuation-token`/`start-after`).
async fn list_objects(
    svc: &ObjectService,
    account: &str,
    bucket: &str,
    q: &[(String, String)],
) -> Result<Response, S3Error> {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let v2 = get("list-type").as_deref() == Some("2");
    let max: usize = get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let marker = if v2 {
        get("continuation-token").or_else(|| get("start-after"))
    } else {
        get("marker")
    };
    let filters = Filters {
        range: ListRange {
            marker: marker.clone(),
            prefix: get("prefix"),
            limit: max + 1,
            ..Default::default()
        },
        delimiter: get("delimiter").filter(|d| !d.is_empty()),
    };
    let mut entries = listing::run(&filters, |range| async move {
        objects::list(&svc.db, account, bucket, &range).await
    })
    .await?;
    let truncated = entries.len() > max;
    entries.truncate(max);
    let last = entries.last().map(|e| match e {
        Entry::Item(o) => o.name.clone(),
        Entry::Subdir(s) => s.clone(),
    });
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    body.push_str(&format!(
        "<Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max}</MaxKeys>",
        xml(bucket),
        xml(&get("prefix").unwrap_or_default())
    ));
    if let Some(d) = &filters.delimiter {
        body.push_str(&format!("<Delimiter>{}</Delimiter>", xml(d)));
    }
    body.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if v2 {
        body.push_str(&format!("<KeyCount>{}</KeyCount>", entries.len()));
        if let Some(t) = get("continuation-token") {
            body.push_str(&format!(
                "<ContinuationToken>{}</ContinuationToken>",
                xml(&t)
            ));
        }
        if truncated {
            body.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                xml(&last.clone().unwrap_or_default())
            ));
        }
    } else {
        body.push_str(&format!(
            "<Marker>{}</Marker>",
            xml(&marker.unwrap_or_default())
        ));
        if truncated {
            body.push_str(&format!(
                "<NextMarker>{}</NextMarker>",
                xml(&last.clone().unwrap_or_default())
            ));
        }
    }
    for e in &entries {
        match e {
            Entry::Item(o) => body.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                xml(&o.name), iso(o.modified_us), o.etag, o.size
            )),
            Entry::Subdir(s) => body.push_str(&format!("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", xml(s))),
        }
    }
    body.push_str("</ListBucketResult>");
    Ok((StatusCode::OK, [("content-type", "application/xml")], body).into_response())
}

pub(crate) async fn put_object(
    svc: &ObjectService,
    account: &str,
    bucket: &str,
    key: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response, S3Error> {
    let mut meta = crate::store::Meta::new();
    for (n, v) in h {
        if let Some(rest) = n.as_str().strip_prefix("x-amz-meta-") {
            meta.insert(format!("x-object-meta-{rest}"), headers::text(v));
        }
    }
    let md5 = headers::get(h, "content-md5").and_then(|b64| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .map(|raw| hex(&raw))
    });
    let new = NewObject {
        content_type: headers::get(h, "content-type")
            .unwrap_or_else(|| "binary/octet-stream".into()),
        meta,
        delete_at: None,
        etag: md5,
        length: headers::get(h, "content-length").and_then(|l| l.parse().ok()),
    };
    use futures::TryStreamExt;
    let stream: crate::service::Body = Box::pin(
        body.into_data_stream()
            .map_err(|e| ferrostack_core::http::body_read_error(&e, StatusCode::BAD_REQUEST)),
    );
    let obj = svc.put_object(account, bucket, key, new, stream).await?;
    Ok((StatusCode::OK, [("etag", format!("\"{}\"", obj.etag))]).into_response())
}

/// `PUT /<bucket>/<key>` with `x-amz-copy-source: /<bucket>/<key>`: a
/// server-side copy within the account, the caller allowed to read the
/// source as for a GET.
async fn copy_object(
    svc: &ObjectService,
    caller: &Caller,
    account: &str,
    bucket: &str,
    key: &str,
    source: &str,
) -> Result<Response, S3Error> {
    let source = source.split('?').next().unwrap_or_default();
    let source = percent_encoding::percent_decode_str(source).decode_utf8_lossy();
    let (src_bucket, src_key) = source
        .trim_start_matches('/')
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| {
            S3Error::new(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            )
        })?;
    let c = containers::get(&svc.db, account, src_bucket)
        .await?
        .ok_or_else(|| {
            S3Error::new(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                "The specified bucket does not exist",
            )
        })?;
    access::authorize(&svc.policy, caller, account, Op::ReadObject, Some(&c.meta))?;
    let src = svc.object(account, src_bucket, src_key).await?;
    let obj = svc.copy_object(&src, account, bucket, key, |_| {}).await?;
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag></CopyObjectResult>",
        iso(obj.modified_us),
        obj.etag
    );
    Ok((StatusCode::OK, [("content-type", "application/xml")], body).into_response())
}

async fn get_object(
    svc: &Arc<ObjectService>,
    account: &str,
    bucket: &str,
    key: &str,
    h: &HeaderMap,
    head: bool,
) -> Result<Response, S3Error> {
    let obj = svc.object(account, bucket, key).await?;
    let plan = crate::large::plan(svc, &obj).await?;
    let mut out = HeaderMap::new();
    let etag = format!("\"{}\"", plan.etag.trim_matches('"'));
    headers::put(&mut out, "etag", &etag);
    headers::put(&mut out, "content-type", &obj.content_type);
    headers::put(
        &mut out,
        "last-modified",
        headers::http_date(obj.modified_us),
    );
    headers::put(&mut out, "accept-ranges", "bytes");
    for (k, v) in &obj.meta {
        if let Some(rest) = k.strip_prefix("x-object-meta-") {
            headers::put(&mut out, &format!("x-amz-meta-{rest}"), v);
        }
    }
    let (status, start, len) = match crate::api::range::range_of(h, plan.size) {
        Some((s, l)) => {
            headers::put(
                &mut out,
                "content-range",
                format!("bytes {s}-{}/{}", s + l - 1, plan.size),
            );
            (StatusCode::PARTIAL_CONTENT, s, l)
        }
        None => (StatusCode::OK, 0, plan.size),
    };
    headers::put(&mut out, "content-length", len.to_string());
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(crate::large::stream(svc.clone(), &plan, start, len))
    };
    Ok((status, out, body).into_response())
}
