//! Form POST (Swift's formpost middleware): a browser form, signed with
//! the account's or container's temp URL key, uploads files under an
//! object prefix without a token.

use super::{headers, Req};
use crate::service::{now_s, ObjectService};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::{Error, Result};
use std::collections::HashMap;

/// Largest form accepted (held in memory while it is parsed).
pub const MAX_FORM_BYTES: usize = 64 * 1024 * 1024;

/// One part of a `multipart/form-data` body.
struct Part<'a> {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn disposition_param(line: &str, key: &str) -> Option<String> {
    line.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>> {
    let bad = || Error::BadRequest("FormPost: invalid starting boundary".into());
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut pos = find(body, delim.as_bytes(), 0).ok_or_else(bad)? + delim.len();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(out);
        }
        let head_start = pos + 2;
        let head_end = find(body, b"\r\n\r\n", head_start).ok_or_else(bad)?;
        let next = find(body, format!("\r\n{delim}").as_bytes(), head_end).ok_or_else(bad)?;
        let head = String::from_utf8_lossy(&body[head_start..head_end]);
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            data: &body[head_end + 4..next],
        };
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                part.name = disposition_param(v, "name").unwrap_or_default();
                part.filename = disposition_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(v.trim().to_owned());
            }
        }
        out.push(part);
        pos = next + 2 + delim.len();
    }
}

/// `POST` of a form to `/v1/<account>/<container>[/<prefix>]`.
pub async fn handle(
    svc: &ObjectService,
    req: &mut Req,
    account: &str,
    container: &str,
    prefix: &str,
) -> Result<Response> {
    let ctype = req.header("content-type").unwrap_or_default();
    let boundary = disposition_param(&ctype, "boundary")
        .ok_or_else(|| Error::BadRequest("FormPost: no boundary".into()))?;
    let body = req.small_body(MAX_FORM_BYTES).await?;
    let parts = parts(&body, &boundary)?;
    let mut fields: HashMap<String, String> = HashMap::new();
    for p in parts.iter().filter(|p| p.filename.is_none()) {
        fields.insert(
            p.name.clone(),
            String::from_utf8_lossy(p.data).trim().to_owned(),
        );
    }
    let field = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let unauthorized = |m: &str| Error::Unauthorized(format!("FormPost: {m}"));
    let expires: i64 = field("expires")
        .parse()
        .map_err(|_| unauthorized("expired"))?;
    if expires <= now_s() {
        return Err(unauthorized("Form Expired"));
    }
    let message = format!(
        "{}\n{}\n{}\n{}\n{}",
        req.path,
        field("redirect"),
        field("max_file_size"),
        field("max_file_count"),
        field("expires")
    );
    let keys = super::temp_url_keys(svc, account, container).await?;
    if !crate::tempurl::signed_by(&field("signature"), &message, &keys) {
        return Err(unauthorized("Invalid Signature"));
    }
    let max_size: u64 = field("max_file_size").parse().unwrap_or(0);
    let max_count: usize = field("max_file_count").parse().unwrap_or(0);
    let files: Vec<&Part> = parts
        .iter()
        .filter(|p| p.filename.as_deref().is_some_and(|f| !f.is_empty()))
        .collect();
    if files.len() > max_count {
        return Err(Error::BadRequest(
            "FormPost: max_file_count exceeded".into(),
        ));
    }
    let mut expiry = axum::http::HeaderMap::new();
    for (field_name, header) in [
        ("x_delete_at", "x-delete-at"),
        ("x_delete_after", "x-delete-after"),
    ] {
        if let Some(v) = fields.get(field_name) {
            headers::put(&mut expiry, header, v);
        }
    }
    let delete_at = headers::delete_at(&expiry, now_s())?.flatten();
    for f in files {
        if f.data.len() as u64 > max_size {
            return Err(Error::BadRequest("FormPost: max_file_size exceeded".into()));
        }
        let name = format!("{prefix}{}", f.filename.as_deref().unwrap_or_default());
        let bytes = axum::body::Bytes::copy_from_slice(f.data);
        let stream: crate::service::Body = Box::pin(futures::stream::iter([Ok(bytes)]));
        let new = crate::service::NewObject {
            content_type: f
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            length: Some(f.data.len() as u64),
            delete_at,
            ..Default::default()
        };
        svc.put_object(account, container, &name, new, stream)
            .await?;
    }
    let redirect = field("redirect");
    if redirect.is_empty() {
        let body = "<html><h1>Created</h1><p>201 Created</p></html>";
        return Ok((
            StatusCode::CREATED,
            [("content-type", "text/html; charset=UTF-8")],
            body,
        )
            .into_response());
    }
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let location = format!("{redirect}{sep}status=201&message=");
    Ok((StatusCode::SEE_OTHER, [("location", location)]).into_response())
}
