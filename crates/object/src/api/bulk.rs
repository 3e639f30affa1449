//! Swift's bulk middleware: delete many objects and containers in one
//! request (`?bulk-delete`), and create them from a tar archive
//! (`PUT ?extract-archive=tar`).

use super::Req;
use crate::service::ObjectService;
use crate::store::{accounts, containers};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::{Error, Result};

/// Largest archive extracted (held in memory while it is read).
pub const MAX_ARCHIVE_BYTES: usize = 256 * 1024 * 1024;

/// `POST /v1/<account>?bulk-delete`: the body names `/container/object`
/// or `/container` per line (URL-encoded); each is deleted as its owner
/// could. The result as Swift's bulk middleware reports it.
pub async fn bulk_delete(svc: &ObjectService, req: &mut Req, account: &str) -> Result<Response> {
    let body = req.small_body(1024 * 1024).await?;
    let text = String::from_utf8_lossy(&body);
    let (mut deleted, mut not_found, mut errors) = (0, 0, Vec::<(String, String)>::new());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = percent_encoding::percent_decode_str(line)
            .decode_utf8_lossy()
            .into_owned();
        let p = path.trim_start_matches('/');
        let result = match p.split_once('/') {
            Some((c, o)) if !o.is_empty() => svc.delete_object(account, c, o).await.map(|_| ()),
            _ => svc.delete_container(account, p.trim_end_matches('/')).await,
        };
        match result {
            Ok(()) => deleted += 1,
            Err(Error::NotFound(_)) => not_found += 1,
            Err(e) => errors.push((
                path.clone(),
                format!(
                    "{} {}",
                    e.status().as_u16(),
                    e.status().canonical_reason().unwrap_or("")
                ),
            )),
        }
    }
    let status = if errors.is_empty() {
        "200 OK"
    } else {
        "400 Bad Request"
    };
    let json = req.header("accept").is_some_and(|a| a.contains("json"));
    let body = if json {
        serde_json::json!({
            "Number Deleted": deleted,
            "Number Not Found": not_found,
            "Response Status": status,
            "Response Body": "",
            "Errors": errors.iter().map(|(p, s)| vec![p.clone(), s.clone()]).collect::<Vec<_>>(),
        })
        .to_string()
    } else {
        let errs: String = errors.iter().map(|(p, s)| format!("{p}, {s}\n")).collect();
        format!("Number Deleted: {deleted}\nNumber Not Found: {not_found}\nResponse Body: \nResponse Status: {status}\nErrors: \n{errs}")
    };
    let ct = if json {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    Ok((StatusCode::OK, [("content-type", ct)], body).into_response())
}

/// One regular file of a tar archive.
struct Member<'a> {
    path: String,
    data: &'a [u8],
}

fn octal(field: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    usize::from_str_radix(text, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The regular files of a (ustar, GNU or PAX) tar archive.
fn tar_members(buf: &[u8]) -> Result<Vec<Member<'_>>> {
    let bad = || Error::BadRequest("Invalid Tar File: invalid header".into());
    let mut out = Vec::new();
    let (mut pos, mut long_name): (usize, Option<String>) = (0, None);
    while pos + 512 <= buf.len() {
        let h = &buf[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let size = octal(&h[124..136]).ok_or_else(bad)?;
        let start = pos + 512;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= buf.len())
            .ok_or_else(bad)?;
        let data = &buf[start..end];
        pos = start + size.div_ceil(512) * 512;
        match h[156] {
            b'L' => long_name = Some(cstr(data)),
            b'x' => {
                long_name = String::from_utf8_lossy(data)
                    .lines()
                    .find_map(|l| l.split_once(" path=").map(|(_, p)| p.to_owned()))
                    .or(long_name);
            }
            b'0' | 0 => {
                let name = long_name.take().unwrap_or_else(|| {
                    let prefix = if &h[257..262] == b"ustar" {
                        cstr(&h[345..500])
                    } else {
                        String::new()
                    };
                    let name = cstr(&h[0..100]);
                    if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}/{name}")
                    }
                });
                out.push(Member { path: name, data });
            }
            _ => long_name = None,
        }
    }
    Ok(out)
}

/// `PUT /v1/<account>[/<container>[/<prefix>]]?extract-archive=tar`: every
/// file of the archive becomes an object under the upload path (at the
/// account, its first path segment names the container, created if
/// missing).
pub async fn extract(
    svc: &ObjectService,
    req: &mut Req,
    account: &str,
    base: &str,
) -> Result<Response> {
    if req.param("extract-archive") != Some("tar") {
        return Err(Error::BadRequest("Unsupported archive format".into()));
    }
    let body = req.small_body(MAX_ARCHIVE_BYTES).await?;
    let members = tar_members(&body)?;
    accounts::ensure(&svc.db, account).await?;
    let mut created = 0;
    let mut errors: Vec<(String, String)> = Vec::new();
    for m in members {
        let full = format!(
            "{base}/{}",
            m.path.trim_start_matches("./").trim_start_matches('/')
        );
        let full = full.trim_start_matches('/');
        let Some((c, o)) = full
            .split_once('/')
            .filter(|(c, o)| !c.is_empty() && !o.is_empty())
        else {
            continue;
        };
        if containers::get(&svc.db, account, c).await?.is_none() {
            containers::create(&svc.db, account, c, &Default::default()).await?;
        }
        let bytes = axum::body::Bytes::copy_from_slice(m.data);
        let stream: crate::service::Body = Box::pin(futures::stream::iter([Ok(bytes)]));
        let new = crate::service::NewObject {
            content_type: "application/octet-stream".into(),
            length: Some(m.data.len() as u64),
            ..Default::default()
        };
        match svc.put_object(account, c, o, new, stream).await {
            Ok(_) => created += 1,
            Err(e) => errors.push((format!("/{c}/{o}"), e.status().to_string())),
        }
    }
    let status = if errors.is_empty() {
        "201 Created"
    } else {
        "400 Bad Request"
    };
    let json = req.header("accept").is_some_and(|a| a.contains("json"));
    let body = if json {
        serde_json::json!({"Number Files Created": created, "Response Status": status,
            "Response Body": "", "Errors": errors.iter().map(|(p, s)| vec![p.clone(), s.clone()]).collect::<Vec<_>>()})
        .to_string()
    } else {
        let errs: String = errors.iter().map(|(p, s)| format!("{p}, {s}\n")).collect();
        format!("Number Files Created: {created}\nResponse Body: \nResponse Status: {status}\nErrors: \n{errs}")
    };
    let ct = if json {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    Ok((StatusCode::OK, [("content-type", ct)], body).into_response())
}
