//! Gnocchi v1 resources: resource types, resources of a type with their
//! metrics and history, the metrics and measures under a resource,
//! `search/resource` with Gnocchi's filter language, and the batch of
//! measures by resource and metric name.

use super::gnocchi::{
    bad, created, metric_view, new_metric, no_content, ok, parse_measures, read_measures,
};
use super::{Query, Svc};
use crate::store::sqlite::Tx;
use crate::store::{
    self,
    resources::{Resource, ResourceType},
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use ferrostack_core::{Error, Result};
use ferrostack_db::DbResultExt;
use serde_json::{json, Map, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v1/resource_type", get(list_types).post(create_type))
        .route(
            "/v1/resource_type/{name}",
            get(show_type).patch(patch_type).delete(delete_type),
        )
        .route("/v1/resource", get(resource_roots))
        .route(
            "/v1/resource/{type}",
            get(list_resources).post(create_resource),
        )
        .route(
            "/v1/resource/{type}/{id}",
            get(show_resource)
                .patch(update_resource)
                .delete(delete_resource),
        )
        .route("/v1/resource/{type}/{id}/history", get(history))
        .route(
            "/v1/resource/{type}/{id}/metric",
            get(resource_metrics).post(add_resource_metrics),
        )
        .route(
            "/v1/resource/{type}/{id}/metric/{name}/measures",
            get(resource_measures).post(post_resource_measures),
        )
        .route("/v1/search/resource/{type}", post(search))
        .route(
            "/v1/batch/resources/metrics/measures",
            post(batch_resources),
        )
}

const STANDARD: &[&str] = &[
    "id",
    "type",
    "original_resource_id",
    "project_id",
    "user_id",
    "started_at",
    "ended_at",
    "metrics",
    "created_by_project_id",
    "created_by_user_id",
    "creator",
    "revision_start",
    "revision_end",
];

// ----- resource types -----

async fn list_types(State(svc): State<Svc>, Authenticated(ctx): Authenticated) -> Result<Response> {
    svc.authorize(&ctx, "list resource type", None)?;
    ok(store::resources::list_types(&svc.db)
        .await?
        .iter()
        .map(ResourceType::view)
        .collect())
}

async fn type_named(svc: &Svc, name: &str) -> Result<ResourceType> {
    store::resources::get_type(&svc.db, name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Resource type {name} does not exist")))
}

async fn show_type(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "get resource type", None)?;
    ok(type_named(&svc, &name).await?.view())
}

async fn create_type(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "create resource type", None)?;
    let name = body["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("Invalid input: required key not provided @ data['name']"))?;
    let mut attributes = Map::new();
    for (k, v) in body["attributes"].as_object().cloned().unwrap_or_default() {
        let a = checked_attribute(&k, &v, true)?;
        attributes.insert(k, a);
    }
    if store::resources::get_type(&svc.db, name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "Resource type {name} already exists"
        )));
    }
    let t = ResourceType {
        name: name.to_owned(),
        attributes,
        state: "active".into(),
    };
    store::resources::insert_type(&svc.db, &t).await?;
    created(&svc, &["resource_type", &t.name], t.view())
}

/// Gnocchi's JSON patch of a type's schema: `add` and `remove` of
/// `/attributes/<name>`.
async fn patch_type(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "update resource type", None)?;
    let mut t = type_named(&svc, &name).await?;
    let ops = body
        .as_array()
        .ok_or_else(|| bad("Invalid input: expected a list"))?;
    for op in ops {
        let path = op["path"].as_str().unwrap_or_default();
        let attr = path
            .strip_prefix("/attributes/")
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| bad(format!("Invalid input: invalid path {path}")))?;
        match op["op"].as_str() {
            Some("add") => {
                let a = checked_attribute(attr, &op["value"], false)?;
                t.attributes.insert(attr.to_owned(), a);
            }
            Some("remove") => {
                if t.attributes.remove(attr).is_none() {
                    return Err(bad(format!("Invalid input: unknown attribute {attr}")));
                }
            }
            other => {
                return Err(bad(format!(
                    "Invalid input: unsupported operation {}",
                    other.unwrap_or_default()
                )))
            }
        }
    }
    store::resources::update_type_attributes(&svc.db, &t).await?;
    ok(t.view())
}

/// One attribute of a type's schema; `required` defaults to `default`.
fn checked_attribute(k: &str, v: &Value, default: bool) -> Result<Value> {
    let kind = v["type"].as_str().unwrap_or_default();
    if !matches!(kind, "string" | "uuid" | "number" | "bool" | "datetime") || STANDARD.contains(&k)
    {
        return Err(bad(format!(
            "Invalid input: Invalid attribute {k} @ data['attributes']"
        )));
    }
    let mut a = v.as_object().cloned().unwrap_or_default();
    a.entry("required").or_insert(json!(default));
    Ok(Value::Object(a))
}

/// `GET /v1/resource`: each resource type's collection URL by name.
async fn resource_roots(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "list resource type", None)?;
    let base = svc.config.public_url(svc.config.telemetry.metric_port);
    let mut out = Map::new();
    for t in store::resources::list_types(&svc.db).await? {
        let url = format!("{base}/v1/resource/{}", t.name);
        out.insert(t.name, json!(url));
    }
    ok(Value::Object(out))
}

async fn delete_type(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "delete resource type", None)?;
    type_named(&svc, &name).await?;
    if name == "generic" || store::resources::type_in_use(&svc.db, &name).await? {
        return Err(Error::Status(
            StatusCode::BAD_REQUEST,
            format!("Resource type {name} is still in use"),
        ));
    }
    store::resources::delete_type(&svc.db, &name).await?;
    no_content()
}

// ----- resources -----

async fn view(svc: &Svc, r: &Resource) -> Result<Value> {
    view_as(svc, r, &r.kind).await
}

/// A resource as a member of `kind`: through `generic` only the generic
/// attributes show, as Gnocchi answers (a listing mixes types).
pub(super) async fn view_as(svc: &Svc, r: &Resource, kind: &str) -> Result<Value> {
    let metrics: Map<String, Value> = store::metrics::of_resource(&svc.db, &r.id)
        .await?
        .into_iter()
        .filter_map(|m| Some((m.name?, json!(m.id))))
        .collect();
    let mut doc = json!({
        "id": r.id,
        "type": r.kind,
        "original_resource_id": r.original_resource_id,
        "project_id": r.project_id,
        "user_id": r.user_id,
        "created_by_project_id": r.created_by_project_id,
        "created_by_user_id": r.created_by_user_id,
        "creator": format!("{}:{}", r.created_by_user_id, r.created_by_project_id),
        "started_at": store::iso_utc(r.started_at),
        "ended_at": r.ended_at.map(store::iso_utc),
        "revision_start": store::iso_utc(r.revision_start),
        "revision_end": r.revision_end.map(store::iso_utc),
        "metrics": metrics,
    });
    if kind != "generic" {
        for (k, v) in &r.attributes {
            doc[k] = v.clone();
        }
    }
    Ok(doc)
}

pub(super) fn visible(svc: &Svc, ctx: &AuthContext, r: &Resource) -> bool {
    match svc.scope(ctx) {
        None => true,
        Some(p) => r.project_id.as_deref() == Some(&p) || r.created_by_project_id == p,
    }
}

async fn resource_for(
    svc: &Svc,
    ctx: &AuthContext,
    kind: &str,
    id: &str,
    action: &str,
) -> Result<Resource> {
    let not_found = || Error::NotFound(format!("Resource {id} does not exist"));
    let r = store::resources::find(&svc.db, &store::resources::resource_uuid(id))
        .await?
        .ok_or_else(not_found)?;
    if (kind != "generic" && r.kind != kind) || !visible(svc, ctx, &r) {
        return Err(not_found());
    }
    svc.authorize(ctx, action, r.project_id.as_deref())?;
    Ok(r)
}

/// The type's attributes of a body, checked against its schema.
fn attributes_of(t: &ResourceType, body: &Value, creating: bool) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in body.as_object().cloned().unwrap_or_default() {
        if STANDARD.contains(&k.as_str()) {
            continue;
        }
        if !t.attributes.contains_key(&k) {
            return Err(bad(format!(
                "Invalid input: extra keys not allowed @ data['{k}']"
            )));
        }
        out.insert(k, v);
    }
    if creating {
        for (k, a) in &t.attributes {
            if a["required"].as_bool() == Some(true) && !out.contains_key(k) {
                return Err(bad(format!(
                    "Invalid input: required key not provided @ data['{k}']"
                )));
            }
        }
    }
    Ok(out)
}

fn time_field(body: &Value, k: &str) -> Result<Option<i64>> {
    match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(store::parse_time)
            .map(Some)
            .ok_or_else(|| {
                bad(format!(
                    "Invalid input: Unable to parse timestamp @ data['{k}']"
                ))
            }),
    }
}

async fn create_resource(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(kind): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let t = type_named(&svc, &kind).await?;
    let original = body["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("Invalid input: required key not provided @ data['id']"))?;
    let project_id = body["project_id"].as_str().map(str::to_owned);
    svc.authorize(&ctx, "create resource", project_id.as_deref())?;
    let now = store::now_us();
    let r = Resource {
        id: store::resources::resource_uuid(original),
        kind: kind.clone(),
        original_resource_id: original.to_owned(),
        project_id,
        user_id: body["user_id"].as_str().map(str::to_owned),
        created_by_project_id: ctx.project_id.clone().unwrap_or_default(),
        created_by_user_id: ctx.user_id.clone(),
        started_at: time_field(&body, "started_at")?.unwrap_or(now),
        ended_at: time_field(&body, "ended_at")?,
        revision: 1,
        revision_start: now,
        revision_end: None,
        attributes: attributes_of(&t, &body, true)?,
        first_sample: None,
        last_sample: None,
        metadata: json!({}),
    };
    let mut tx = svc.db.pool.begin().await.db()?;
    if store::resources::get(&mut Tx::Any(&mut tx), &svc.db, &r.id)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!("Resource {} already exists", r.id)));
    }
    store::resources::insert(&mut Tx::Any(&mut tx), &svc.db, &r).await?;
    attach_metrics(&svc, &ctx, &mut tx, &r, &body["metrics"]).await?;
    tx.commit().await.db()?;
    created(&svc, &["resource", &kind, &r.id], view(&svc, &r).await?)
}

/// `{"name": {"archive_policy_name": …}}` or `{"name": "<metric id>"}`.
async fn attach_metrics(
    svc: &Svc,
    ctx: &AuthContext,
    conn: &mut sqlx::AnyConnection,
    r: &Resource,
    metrics: &Value,
) -> Result<()> {
    for (name, spec) in metrics.as_object().cloned().unwrap_or_default() {
        if store::metrics::by_resource_name(&mut Tx::Any(conn), &svc.db, &r.id, &name)
            .await?
            .is_some()
        {
            return Err(Error::Conflict(format!(
                "Named metric {name} already exists"
            )));
        }
        if spec.is_string() {
            return Err(bad("Invalid input: attaching existing metrics by id is not supported; give an archive policy"));
        }
        let m = new_metric(svc, ctx, &spec, Some(&name), Some(&r.id)).await?;
        store::metrics::insert(&mut Tx::Any(conn), &svc.db, &m).await?;
    }
    Ok(())
}

async fn list_resources(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(kind): Path<String>,
) -> Result<Response> {
    type_named(&svc, &kind).await?;
    svc.authorize(&ctx, "list resource", ctx.project_id.as_deref())?;
    let filter = (kind != "generic").then_some(kind.as_str());
    let mut out = Vec::new();
    for r in store::resources::list(&svc.db, filter, None).await? {
        if visible(&svc, &ctx, &r) {
            out.push(view_as(&svc, &r, &kind).await?);
        }
    }
    ok(Value::Array(out))
}

async fn show_resource(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response> {
    let r = resource_for(&svc, &ctx, &kind, &id, "get resource").await?;
    ok(view(&svc, &r).await?)
}

async fn update_resource(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((kind, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let old = resource_for(&svc, &ctx, &kind, &id, "update resource").await?;
    let t = type_named(&svc, &old.kind).await?;
    let mut attributes = old.attributes.clone();
    attributes.extend(attributes_of(&t, &body, false)?);
    let mut new = Resource {
        attributes,
        revision_start: store::now_us(),
        ..old.clone()
    };
    if let Some(e) = body.get("ended_at") {
        new.ended_at = if e.is_null() {
            None
        } else {
            time_field(&body, "ended_at")?
        };
    }
    if body.get("user_id").is_some() {
        new.user_id = body["user_id"].as_str().map(str::to_owned);
    }
    if body.get("project_id").is_some() {
        new.project_id = body["project_id"].as_str().map(str::to_owned);
    }
    let mut tx = svc.db.pool.begin().await.db()?;
    if new.attributes != old.attributes
        || new.ended_at != old.ended_at
        || new.user_id != old.user_id
        || new.project_id != old.project_id
    {
        if !store::resources::revise(&mut Tx::Any(&mut tx), &svc.db, &old, &new).await? {
            return Err(Error::Conflict(format!("Resource {id} changed meanwhile")));
        }
        new.revision += 1;
    } else {
        new = old.clone();
    }
    attach_metrics(&svc, &ctx, &mut tx, &new, &body["metrics"]).await?;
    tx.commit().await.db()?;
    ok(view(&svc, &new).await?)
}

async fn delete_resource(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response> {
    let r = resource_for(&svc, &ctx, &kind, &id, "delete resource").await?;
    store::resources::delete(&svc.db, &r.id).await?;
    no_content()
}

async fn history(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response> {
    let r = resource_for(&svc, &ctx, &kind, &id, "get resource").await?;
    let mut out = Vec::new();
    for rev in store::resources::history(&svc.db, &r.id).await? {
        out.push(view(&svc, &rev).await?);
    }
    ok(Value::Array(out))
}

async fn resource_metrics(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response> {
    let r = resource_for(&svc, &ctx, &kind, &id, "get resource").await?;
    ok(store::metrics::of_resource(&svc.db, &r.id)
        .await?
        .iter()
        .map(|m| metric_view(&svc, m))
        .collect())
}

async fn add_resource_metrics(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((kind, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let r = resource_for(&svc, &ctx, &kind, &id, "update resource").await?;
    let mut tx = svc.db.pool.begin().await.db()?;
    attach_metrics(&svc, &ctx, &mut tx, &r, &body).await?;
    tx.commit().await.db()?;
    ok(store::metrics::of_resource(&svc.db, &r.id)
        .await?
        .iter()
        .map(|m| metric_view(&svc, m))
        .collect())
}

async fn named_metric(svc: &Svc, r: &Resource, name: &str) -> Result<store::metrics::Metric> {
    let mut conn = svc.db.pool.acquire().await.db()?;
    store::metrics::by_resource_name(&mut Tx::Any(&mut conn), &svc.db, &r.id, name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Metric {name} does not exist")))
}

async fn resource_measures(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((kind, id, name)): Path<(String, String, String)>,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    let r = resource_for(&svc, &ctx, &kind, &id, "get measures").await?;
    let m = named_metric(&svc, &r, &name).await?;
    ok(read_measures(&svc, &m, &params).await?)
}

async fn post_resource_measures(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((kind, id, name)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let r = resource_for(&svc, &ctx, &kind, &id, "post measures").await?;
    let m = named_metric(&svc, &r, &name).await?;
    svc.add_measures(&m, &parse_measures(&body)?).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `{resource_id: {metric_name: [measures] | {"archive_policy_name", "measures"}}}`;
/// `create_metrics=true` makes missing metrics.
async fn batch_resources(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(params): Query,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response> {
    let create = crate::query::single(&params, "create_metrics")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut work = Vec::new();
    for (rid, metrics) in &body {
        let r = resource_for(&svc, &ctx, "generic", rid, "post measures")
            .await
            .map_err(|_| bad(format!("Unknown resources: {rid}")))?;
        for (name, spec) in metrics.as_object().cloned().unwrap_or_default() {
            let pts = parse_measures(spec.get("measures").unwrap_or(&spec))?;
            let mut conn = svc.db.pool.acquire().await.db()?;
            let m = match store::metrics::by_resource_name(
                &mut Tx::Any(&mut conn),
                &svc.db,
                &r.id,
                &name,
            )
            .await?
            {
                Some(m) => m,
                None if create => {
                    let m = new_metric(&svc, &ctx, &spec, Some(&name), Some(&r.id)).await?;
                    store::metrics::insert(&mut Tx::Any(&mut conn), &svc.db, &m).await?;
                    m
                }
                None => return Err(bad(format!("Unknown metrics: {rid}/{name}"))),
            };
            work.push((m, pts));
        }
    }
    for (m, pts) in work {
        svc.add_measures(&m, &pts).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /v1/search/resource/{type}` with the JSON filter as the body, or
/// (gnocchiclient with a query string) `?filter=…` and no body.
async fn search(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(kind): Path<String>,
    axum::extract::Query(params): Query,
    body: axum::body::Bytes,
) -> Result<Response> {
    let filter = match crate::query::single(&params, "filter") {
        Some(q) => super::gnocchi_filter::parse(q)?,
        None if body.iter().all(u8::is_ascii_whitespace) => json!({}),
        None => {
            let v: Value =
                serde_json::from_slice(&body).map_err(|e| bad(format!("Invalid input: {e}")))?;
            super::gnocchi_filter::filter_of(&v)?
        }
    };
    let found = search_resources(&svc, &ctx, &kind, &filter).await?;
    ok(Value::Array(
        found.into_iter().map(|(_, doc)| doc).collect(),
    ))
}

/// The resources of `kind` the caller may see that match `filter`, with
/// their views as members of `kind`.
pub(super) async fn search_resources(
    svc: &Svc,
    ctx: &AuthContext,
    kind: &str,
    filter: &Value,
) -> Result<Vec<(Resource, Value)>> {
    type_named(svc, kind).await?;
    svc.authorize(ctx, "search resource", ctx.project_id.as_deref())?;
    let kind_filter = (kind != "generic").then_some(kind);
    let mut out = Vec::new();
    for r in store::resources::list(&svc.db, kind_filter, None).await? {
        if !visible(svc, ctx, &r) {
            continue;
        }
        let doc = view_as(svc, &r, kind).await?;
        if matches(filter, &doc)? {
            out.push((r, doc));
        }
    }
    Ok(out)
}

/// Gnocchi's filter language: `{"=": {"attr": v}}`, `{"and": [...]}`,
/// `or`, `not`, `in`, `like`, `<`, `>`, `<=`, `>=`, `!=` and their words.
pub(super) fn matches(filter: &Value, doc: &Value) -> Result<bool> {
    let Some(obj) = filter.as_object() else {
        return Err(bad("Invalid input: filter must be an object"));
    };
    if obj.is_empty() {
        return Ok(true);
    }
    let (op, arg) = obj.iter().next().expect("one key");
    match op.as_str() {
        "and" | "∧" => all_of(arg, doc, true),
        "or" | "∨" => all_of(arg, doc, false),
        "not" | "¬" => Ok(!matches(arg, doc)?),
        _ => {
            let (field, want) = arg
                .as_object()
                .and_then(|o| o.iter().next())
                .ok_or_else(|| bad(format!("Invalid input: {op} needs an attribute")))?;
            let have = &doc[field];
            compare(op, have, want)
        }
    }
}

fn all_of(arg: &Value, doc: &Value, and: bool) -> Result<bool> {
    let list = arg
        .as_array()
        .ok_or_else(|| bad("Invalid input: expected a list"))?;
    for f in list {
        if matches(f, doc)? != and {
            return Ok(!and);
        }
    }
    Ok(and)
}

fn compare(op: &str, have: &Value, want: &Value) -> Result<bool> {
    let ord = || match (have, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => {
            match (store::parse_time(a), store::parse_time(b)) {
                (Some(x), Some(y)) if a.contains('-') => Some(x.cmp(&y)),
                _ => Some(a.cmp(b)),
            }
        }
        _ => None,
    };
    use std::cmp::Ordering::*;
    Ok(match op {
        "=" | "==" | "eq" => have == want || ord() == Some(Equal),
        "!=" | "≠" | "ne" => have != want,
        "<" | "lt" => ord() == Some(Less),
        ">" | "gt" => ord() == Some(Greater),
        "<=" | "≤" | "le" => matches!(ord(), Some(Less | Equal)),
        ">=" | "≥" | "ge" => matches!(ord(), Some(Greater | Equal)),
        "in" => want.as_array().is_some_and(|l| l.contains(have)),
        "like" => {
            let pattern = want.as_str().unwrap_or_default().replace('%', "*");
            let rule = store::policies::Rule {
                name: String::new(),
                metric_pattern: pattern,
                archive_policy_name: String::new(),
            };
            rule.matches(have.as_str().unwrap_or_default())
        }
        other => return Err(bad(format!("Invalid input: unknown operator {other}"))),
    })
}
