//! `GET /v2.0/<collection>`. A list in creation order or by id — what
//! clients ask for nearly always — is read from the database a chunk at a
//! time from the marker until the page is full, so its cost follows the
//! page, not the number of documents; any other sort reads every candidate
//! document and sorts them here.

use super::listing::{unknown_marker, Encoded, ListRequest};
use super::{keys, Query, Svc, RESOURCES};
use crate::store::{self, Kind, LookupColumn, Order, Scan};
use axum::extract::State;
use axum::response::Response;
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::Result;
use serde_json::Value;

/// Rows read per query while filling a page.
const CHUNK: usize = 500;

pub(super) async fn list(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    if kind == Kind::SecurityGroup || kind == Kind::SecurityGroupRule {
        if let Some(p) = &ctx.project_id {
            svc.ensure_default_security_group(p).await?;
        }
    }
    let req = ListRequest::parse(&q.0)?;
    let (_, plural) = keys(kind);
    let base = format!(
        "{}/v2.0/{}",
        svc.config.public_url(svc.config.network.port),
        RESOURCES.iter().find(|r| r.3 == kind).unwrap().0
    );
    match req.stored_order() {
        Some((by_id, descending)) => {
            let scan = Scan {
                kind,
                order: if by_id { Order::Id } else { Order::Created },
                descending,
                lookup: lookup(kind, &req),
                project_id: project_filter(kind, &req),
                fixed_ip: fixed_ip_filter(kind, &req),
            };
            let (page, more) = read_page(&svc, &ctx, &scan, &req).await?;
            Ok(req.render_encoded(plural, page, more, &base))
        }
        None => {
            let docs = candidates(&svc, kind, &req).await?;
            let related = svc.related(kind, &docs).await?;
            let items: Vec<Value> = docs
                .into_iter()
                .filter(|d| svc.visible_with(&ctx, kind, d, &related))
                .map(|d| svc.view_with(&ctx, kind, d, &related))
                .collect();
            req.respond_all(plural, items, &base)
        }
    }
}

/// The visible items passing the filters from the marker on, at most
/// `limit` (all without one), encoded as they are found, and whether more
/// follow.
async fn read_page(
    svc: &Svc,
    ctx: &AuthContext,
    scan: &Scan,
    req: &ListRequest<'_>,
) -> Result<(Vec<Encoded>, bool)> {
    let mut after = match req.marker {
        Some(m) => Some(
            store::position_of(&svc.db, scan.kind, m)
                .await?
                .ok_or_else(|| unknown_marker(m))?,
        ),
        None => None,
    };
    // One item past the page tells whether another page follows.
    let wanted = req.limit.map(|l| l + 1);
    let chunk_size = wanted.map_or(CHUNK, |w| w.clamp(20, CHUNK));
    let mut page = Vec::new();
    'read: loop {
        let chunk = scan.chunk(&svc.db, after.as_ref(), chunk_size).await?;
        let exhausted = chunk.len() < chunk_size;
        let mut docs = Vec::with_capacity(chunk.len());
        for (position, doc) in chunk {
            after = Some(position);
            docs.push(doc);
        }
        let related = svc.related(scan.kind, &docs).await?;
        for doc in docs {
            if !svc.visible_with(ctx, scan.kind, &doc, &related) {
                continue;
            }
            let view = svc.view_with(ctx, scan.kind, doc, &related);
            if req.keep(&view) {
                page.push(req.encode(view));
                if wanted.is_some_and(|w| page.len() >= w) {
                    break 'read;
                }
            }
        }
        if exhausted {
            break;
        }
    }
    let more = wanted.is_some_and(|w| page.len() >= w);
    if let Some(limit) = req.limit {
        page.truncate(limit);
    }
    Ok((page, more))
}

/// The indexed column a filter given once can narrow the rows by.
fn lookup(kind: Kind, req: &ListRequest) -> Option<(LookupColumn, String)> {
    let on = |column, key| req.single(key).map(|v| (column, v.to_owned()));
    match kind {
        Kind::Port => {
            on(LookupColumn::Device, "device_id").or_else(|| on(LookupColumn::Parent, "network_id"))
        }
        Kind::Subnet => on(LookupColumn::Parent, "network_id"),
        Kind::SecurityGroupRule => on(LookupColumn::Parent, "security_group_id"),
        _ => None,
    }
}

/// `project_id`/`tenant_id` given once, for kinds owned by a project.
fn project_filter(kind: Kind, req: &ListRequest) -> Option<String> {
    if matches!(kind, Kind::Agent | Kind::Quota) {
        return None;
    }
    req.single("project_id")
        .or_else(|| req.single("tenant_id"))
        .map(str::to_owned)
}

/// A port list by one address (`fixed_ips=ip_address=…`, or the bare
/// address).
fn fixed_ip_filter(kind: Kind, req: &ListRequest) -> Option<String> {
    let value = req.single("fixed_ips").filter(|_| kind == Kind::Port)?;
    match value.split_once('=') {
        None => Some(value.to_owned()),
        Some(("ip_address", ip)) => Some(ip.to_owned()),
        Some(_) => None,
    }
}

/// Every document a sorted list filters: the rows an indexed filter
/// selects, or every document of the kind.
async fn candidates(svc: &Svc, kind: Kind, req: &ListRequest<'_>) -> Result<Vec<Value>> {
    match lookup(kind, req) {
        Some((column, value)) => store::list_by(&svc.db, kind, column, &value).await,
        None => store::list(&svc.db, kind).await,
    }
}
