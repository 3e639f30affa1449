//! `/v1/<account>`: its containers (GET), totals and metadata (HEAD),
//! metadata changes (POST), and bulk delete (`POST ?bulk-delete`).

use super::headers::{self, Scope};
use super::{Req, Verb};
use crate::access::{self, Grant, Op};
use crate::listing::{self, Filters, Format};
use crate::service::ObjectService;
use crate::store::{accounts, containers};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_core::{Error, Result};

pub async fn handle(svc: &ObjectService, req: &mut Req, account: &str) -> Result<Response> {
    let grant = access::authorize(&svc.policy, &req.caller, account, Op::Manage, None)?;
    match req.verb {
        Verb::Get => list(svc, req, account).await,
        Verb::Head => head(svc, account, StatusCode::NO_CONTENT).await,
        Verb::Post | Verb::Delete if req.param("bulk-delete").is_some() => {
            super::bulk::bulk_delete(svc, req, account).await
        }
        Verb::Post => post(svc, req, account, grant).await,
        Verb::Put | Verb::Delete => Err(Error::MethodNotAllowed(String::new())),
        _ => Err(Error::MethodNotAllowed(String::new())),
    }
}

/// The account's headers: totals, metadata.
async fn account_headers(svc: &ObjectService, account: &str) -> Result<HeaderMap> {
    let a = accounts::get(&svc.db, account).await?.unwrap_or_default();
    let t = accounts::totals(&svc.db, account).await?;
    let mut h = HeaderMap::new();
    headers::put(
        &mut h,
        "x-account-container-count",
        t.containers.to_string(),
    );
    headers::put(&mut h, "x-account-object-count", t.objects.to_string());
    headers::put(&mut h, "x-account-bytes-used", t.bytes.to_string());
    headers::put(
        &mut h,
        "x-account-storage-policy-policy-0-container-count",
        t.containers.to_string(),
    );
    headers::put(
        &mut h,
        "x-account-storage-policy-policy-0-object-count",
        t.objects.to_string(),
    );
    headers::put(
        &mut h,
        "x-account-storage-policy-policy-0-bytes-used",
        t.bytes.to_string(),
    );
    let created = if a.created_us > 0 {
        a.created_us
    } else {
        crate::store::now_us()
    };
    headers::put(&mut h, "x-timestamp", crate::store::timestamp(created));
    headers::put(&mut h, "x-put-timestamp", crate::store::timestamp(created));
    headers::put_meta(&mut h, &a.meta, false);
    Ok(h)
}

async fn head(svc: &ObjectService, account: &str, status: StatusCode) -> Result<Response> {
    let mut h = account_headers(svc, account).await?;
    headers::put(&mut h, "content-type", "text/plain; charset=utf-8");
    headers::put(&mut h, "content-length", "0");
    Ok((status, h).into_response())
}

async fn list(svc: &ObjectService, req: &Req, account: &str) -> Result<Response> {
    let format = Format::choose(req.param("format"), req.header("accept").as_deref())?;
    let filters = Filters::from_query(&req.query, svc.config.object.listing_limit)?;
    let entries = listing::run(&filters, |range| async move {
        containers::list(&svc.db, account, &range).await
    })
    .await?;
    let mut h = account_headers(svc, account).await?;
    headers::put(&mut h, "content-type", format.content_type());
    if entries.is_empty() && format == Format::Plain {
        return Ok((StatusCode::NO_CONTENT, h).into_response());
    }
    let body = listing::render(&entries, format, ("account", account), "container");
    Ok((StatusCode::OK, h, body).into_response())
}

async fn post(svc: &ObjectService, req: &Req, account: &str, grant: Grant) -> Result<Response> {
    let updates = headers::updates(&req.headers, Scope::Account);
    let quotas = updates.iter().filter(|(k, _)| {
        matches!(
            k.as_str(),
            "x-account-meta-quota-bytes" | "x-account-quota-bytes" | "x-account-quota-count"
        )
    });
    for (_, v) in quotas {
        if grant != Grant::Reseller {
            return Err(Error::Forbidden(String::new()));
        }
        if v.as_deref().is_some_and(|v| v.parse::<u64>().is_err()) {
            return Err(Error::BadRequest("Invalid bytes quota.".into()));
        }
    }
    let mut meta = accounts::ensure(&svc.db, account).await?.meta;
    headers::apply(&mut meta, updates);
    headers::check(&meta, Scope::Account)?;
    accounts::set_meta(&svc.db, account, &meta).await?;
    head(svc, account, StatusCode::NO_CONTENT).await
}
