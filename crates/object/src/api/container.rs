//! `/v1/<account>/<container>`: create and update (PUT, POST), list
//! (GET), totals and metadata (HEAD), delete when empty; bulk delete.

use super::headers::{self, Scope};
use super::{Req, Verb};
use crate::access::{self, Grant, Op};
use crate::listing::{self, Filters, Format};
use crate::service::ObjectService;
use crate::store::{accounts, containers, objects};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_core::{Error, Result};

pub async fn handle(
    svc: &ObjectService,
    req: &mut Req,
    account: &str,
    name: &str,
) -> Result<Response> {
    let existing = containers::get(&svc.db, account, name).await?;
    let op = match req.verb {
        Verb::Get | Verb::Head => Op::ListContainer,
        _ => Op::Manage,
    };
    let grant = access::authorize(
        &svc.policy,
        &req.caller,
        account,
        op,
        existing.as_ref().map(|c| &c.meta),
    )?;
    match req.verb {
        Verb::Put => put(svc, req, account, name, existing).await,
        Verb::Post => {
            let c = existing.ok_or_else(|| Error::NotFound(String::new()))?;
            let mut meta = c.meta;
            headers::apply(&mut meta, meta_updates(req)?);
            headers::check(&meta, Scope::Container)?;
            containers::set_meta(&svc.db, account, name, &meta).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Verb::Delete => {
            svc.delete_container(account, name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Verb::Head => {
            let c = existing.ok_or_else(|| Error::NotFound(String::new()))?;
            let mut h = container_headers(&c, grant);
            headers::put(&mut h, "content-type", "text/plain; charset=utf-8");
            headers::put(&mut h, "content-length", "0");
            Ok((StatusCode::NO_CONTENT, h).into_response())
        }
        Verb::Get => {
            let c = existing.ok_or_else(|| Error::NotFound(String::new()))?;
            list(svc, req, &c, grant).await
        }
        _ => Err(Error::MethodNotAllowed(String::new())),
    }
}

/// Metadata changes of a container PUT/POST; 400 for a malformed quota.
fn meta_updates(req: &Req) -> Result<Vec<(String, Option<String>)>> {
    let updates = headers::updates(&req.headers, Scope::Container);
    for (k, v) in &updates {
        let quota = k == "x-container-meta-quota-bytes" || k == "x-container-meta-quota-count";
        if quota && v.as_deref().is_some_and(|v| v.parse::<u64>().is_err()) {
            return Err(Error::BadRequest("Invalid quota value.".into()));
        }
        if k == "x-versions-location" || k == "x-history-location" {
            if let Some(v) = v {
                if v.contains('/') {
                    return Err(Error::Status(
                        StatusCode::PRECONDITION_FAILED,
                        "Container name cannot contain a slash".into(),
                    ));
                }
            }
        }
    }
    Ok(updates)
}

async fn put(
    svc: &ObjectService,
    req: &Req,
    account: &str,
    name: &str,
    existing: Option<containers::Container>,
) -> Result<Response> {
    if name.contains('/') {
        return Err(Error::BadRequest(
            "Container name cannot contain '/'".into(),
        ));
    }
    let updates = meta_updates(req)?;
    let mut meta = existing
        .as_ref()
        .map(|c| c.meta.clone())
        .unwrap_or_default();
    headers::apply(&mut meta, updates);
    // Only one versioning mode at a time.
    if meta.contains_key("x-versions-location") && meta.contains_key("x-history-location") {
        return Err(Error::BadRequest(
            "Only one of X-Versions-Location or X-History-Location may be specified".into(),
        ));
    }
    headers::check(&meta, Scope::Container)?;
    accounts::ensure(&svc.db, account).await?;
    if existing.is_some() || !containers::create(&svc.db, account, name, &meta).await? {
        containers::set_meta(&svc.db, account, name, &meta).await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    Ok(StatusCode::CREATED.into_response())
}

fn container_headers(c: &containers::Container, grant: Grant) -> HeaderMap {
    let mut h = HeaderMap::new();
    headers::put(
        &mut h,
        "x-container-object-count",
        c.object_count.to_string(),
    );
    headers::put(&mut h, "x-container-bytes-used", c.bytes_used.to_string());
    headers::put(&mut h, "x-timestamp", crate::store::timestamp(c.created_us));
    headers::put(
        &mut h,
        "x-put-timestamp",
        crate::store::timestamp(c.created_us),
    );
    headers::put(&mut h, "last-modified", headers::http_date(c.modified_us));
    headers::put(&mut h, "x-storage-policy", "Policy-0");
    headers::put(&mut h, "accept-ranges", "bytes");
    headers::put_meta(&mut h, &c.meta, grant == Grant::Acl);
    h
}

async fn list(
    svc: &ObjectService,
    req: &Req,
    c: &containers::Container,
    grant: Grant,
) -> Result<Response> {
    let format = Format::choose(req.param("format"), req.header("accept").as_deref())?;
    let mut filters = Filters::from_query(&req.query, svc.config.object.listing_limit)?;
    if let Some(path) = req.param("path") {
        // `path=p`: the names directly under `p/`.
        let p = if path.is_empty() || path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        };
        filters.range.prefix = Some(p);
        filters.delimiter = Some("/".into());
    }
    let (account, name) = (c.account.as_str(), c.name.as_str());
    let entries = listing::run(&filters, |range| async move {
        objects::list(&svc.db, account, name, &range).await
    })
    .await?;
    let mut h = container_headers(c, grant);
    headers::put(&mut h, "content-type", format.content_type());
    if entries.is_empty() && format == Format::Plain {
        return Ok((StatusCode::NO_CONTENT, h).into_response());
    }
    let body = listing::render(&entries, format, ("container", name), "object");
    Ok((StatusCode::OK, h, body).into_response())
}
