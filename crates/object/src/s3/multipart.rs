//! S3 multipart upload on Swift's large objects, as s3api does: parts are
//! objects in `<bucket>+segments` named `<key>/<upload id>/<part number>`,
//! and completing an upload writes a static large object manifest of them.

use super::{xml, S3Error};
use crate::service::ObjectService;
use crate::store::{containers, objects, ListRange};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn segments(bucket: &str) -> String {
    format!("{bucket}+segments")
}

fn no_upload() -> S3Error {
    S3Error::new(
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "The specified multipart upload does not exist.",
    )
}

/// `POST /<bucket>/<key>?uploads`: a new upload id (the marker object
/// `<key>/<id>` in the segments container records that it exists).
pub async fn initiate(
    svc: &ObjectService,
    account: &str,
    bucket: &str,
    key: &str,
) -> Result<Response, S3Error> {
    let seg = segments(bucket);
    containers::create(&svc.db, account, &seg, &Default::default()).await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let body: crate::service::Body = Box::pin(futures::stream::empty());
    svc.put_object(
        account,
        &seg,
        &format!("{key}/{id}"),
        Default::default(),
        body,
    )
    .await?;
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
        xml(bucket),
        xml(key)
    );
    Ok((StatusCode::OK, [("content-type", "application/xml")], doc).into_response())
}

async fn check_upload(
    svc: &ObjectService,
    account: &str,
    bucket: &str,
    key: &str,
    id: &str,
) -> Result<(), S3Error> {
    svc.object(account, &segments(bucket), &format!("{key}/{id}"))
        .await
        .map(|_| ())
        .map_err(|_| no_upload())
}

/// `PUT /<bucket>/<key>?partNumber=N&uploadId=ID`.
#[allow(clippy::too_many_arguments)]
pub async fn upload_part(
    svc: &ObjectService,
    account: &str,
    bucket: &str,
    key: &str,
    id: &str,
    number: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response, S3Error> {
    let n: u32 = number
        .parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            S3Error::new(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })?;
    check_upload(svc, account, bucket, key, id).await?;
    super::put_object(
        svc,
        account,
        &segments(bucket),
        &format!("{key}/{id}/{n:05}"),
        h,
        body,
    )
    .await
}

/// The `(part number, ETag)` pairs of a CompleteMultipartUpload document.
fn parts_of(doc: &str) -> Vec<(u32, String)> {
    let tag = |s: &str, name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let start = s.find(&open)? + open.len();
        let end = s[start..].find(&format!("</{name}>"))? + start;
        Some(s[start..end].trim().to_owned())
    };
    doc.split("<Part>")
        .skip(1)
        .filter_map(|p| {
            let n = tag(p, "PartNumber")?.parse().ok()?;
            let etag = tag(p, "ETag")
                .unwrap_or_default()
                .replace("&quot;", "")
                .replace('"', "");
            Some((n, etag))
        })
        .collect()
}

/// `POST /<bucket>/<key>?uploadId=ID`: the parts, in the client's order,
/// become a static large object at the key.
pub async fn complete(
    svc: &Arc<ObjectService>,
    account: &str,
    bucket: &str,
    key: &str,
    id: &str,
    body: Body,
) -> Result<Response, S3Error> {
    check_upload(svc, account, bucket, key, id).await?;
    let doc = axum::body::to_bytes(body, 1 << 20).await.map_err(|_| {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed.",
        )
    })?;
    let parts = parts_of(&String::from_utf8_lossy(&doc));
    if parts.is_empty() || parts.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order.",
        ));
    }
    let seg = segments(bucket);
    let manifest: Vec<serde_json::Value> = parts
        .iter()
        .map(|(n, etag)| serde_json::json!({"path": format!("/{seg}/{key}/{id}/{n:05}"), "etag": etag}))
        .collect();
    let manifest = serde_json::to_vec(&manifest).map_err(|_| S3Error::internal())?;
    let (segs, size, etag) = crate::large::validate_manifest(svc, account, &manifest)
        .await
        .map_err(|_| {
            S3Error::new(
                StatusCode::BAD_REQUEST,
                "InvalidPart",
                "One or more of the specified parts could not be found or its ETag did not match.",
            )
        })?;
    let c = svc.container(account, bucket).await?;
    let written = svc
        .write_document(serde_json::to_vec(&segs).map_err(|_| S3Error::internal())?)
        .await?;
    let obj = objects::Object {
        account: account.into(),
        container: bucket.into(),
        name: key.into(),
        data_id: written.data_id,
        kind: objects::Kind::Slo,
        size: size as i64,
        etag: etag.clone(),
        content_type: "binary/octet-stream".into(),
        modified_us: crate::store::now_us(),
        delete_at: None,
        meta: Default::default(),
    };
    svc.commit(&c, obj).await?;
    // The upload is done: its marker goes (the parts stay, as the manifest's segments).
    let _ = svc
        .delete_object(account, &seg, &format!("{key}/{id}"))
        .await;
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><ETag>&quot;{etag}-{}&quot;</ETag></CompleteMultipartUploadResult>",
        xml(bucket),
        xml(key),
        parts.len()
    );
    Ok((StatusCode::OK, [("content-type", "application/xml")], doc).into_response())
}

/// `DELETE /<bucket>/<key>?uploadId=ID`: the parts and the marker go.
pub async fn abort(
    svc: &ObjectService,
    account: &str,
    bucket: &str,
    key: &str,
    id: &str,
) -> Result<Response, S3Error> {
    check_upload(svc, account, bucket, key, id).await?;
    let seg = segments(bucket);
    let range = ListRange {
        prefix: Some(format!("{key}/{id}/")),
        limit: 10_000,
        ..Default::default()
    };
    for part in objects::list(&svc.db, account, &seg, &range).await? {
        let _ = svc.delete_object(account, &seg, &part.name).await;
    }
    let _ = svc
        .delete_object(account, &seg, &format!("{key}/{id}"))
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn complete_document() {
        let doc = "<CompleteMultipartUpload><Part><ETag>\"aa\"</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber><ETag>&quot;bb&quot;</ETag></Part></CompleteMultipartUpload>";
        assert_eq!(
            super::parts_of(doc),
            vec![(1, "aa".to_owned()), (2, "bb".to_owned())]
        );
    }
}
