//! Gnocchi v1: status and capabilities, archive policies and rules,
//! metrics and their measures, batch measures. Resources are in
//! `gnocchi_resources`, aggregates in `gnocchi_aggregates`.

use super::{Query, Svc};
use crate::archive::{ArchivePolicy, Method};
use crate::query::single;
use crate::store::sqlite::Tx;
use crate::store::{self, measures, metrics::Metric, policies::Rule};
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
        .route("/", get(versions))
        .route("/v1", get(v1_root))
        .route("/v1/status", get(status))
        .route("/v1/capabilities", get(capabilities))
        .route("/v1/archive_policy", get(list_policies).post(create_policy))
        .route(
            "/v1/archive_policy/{name}",
            get(show_policy).patch(update_policy).delete(delete_policy),
        )
        .route("/v1/archive_policy_rule", get(list_rules).post(create_rule))
        .route(
            "/v1/archive_policy_rule/{name}",
            get(show_rule).patch(rename_rule).delete(delete_rule),
        )
        .route("/v1/metric", get(list_metrics).post(create_metric))
        .route("/v1/metric/{id}", get(show_metric).delete(delete_metric))
        .route(
            "/v1/metric/{id}/measures",
            get(get_measures).post(post_measures),
        )
        .route("/v1/batch/metrics/measures", post(batch_metrics))
}

pub(super) fn ok(v: Value) -> Result<Response> {
    Ok(axum::Json(v).into_response())
}

/// 201 with the new resource's absolute URL in `Location`, as webob
/// makes Gnocchi's (`segments` percent-encoded).
pub(super) fn created(svc: &Svc, segments: &[&str], v: Value) -> Result<Response> {
    let mut url = svc.config.public_url(svc.config.telemetry.metric_port);
    url.push_str("/v1");
    for s in segments {
        url.push('/');
        url.push_str(&percent_encode(s));
    }
    let mut resp = (StatusCode::CREATED, axum::Json(v)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&url) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

/// A path segment's bytes outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn no_content() -> Result<Response> {
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) fn bad(m: impl Into<String>) -> Error {
    Error::BadRequest(m.into())
}

async fn versions(State(svc): State<Svc>) -> Result<Response> {
    let url = svc.config.public_url(svc.config.telemetry.metric_port);
    ok(
        json!({"versions": [{"id": "v1.0", "status": "CURRENT", "updated": "2015-03-19",
        "links": [{"href": format!("{url}/v1/"), "rel": "self"}]}]}),
    )
}

async fn v1_root(State(svc): State<Svc>) -> Result<Response> {
    let url = svc.config.public_url(svc.config.telemetry.metric_port);
    let names = [
        "archive_policy",
        "archive_policy_rule",
        "metric",
        "resource",
        "resource_type",
        "search",
        "aggregates",
        "batch",
        "capabilities",
        "status",
    ];
    ok(
        json!({"version": "1.0", "links": names.iter().map(|n| json!({"rel": n, "href": format!("{url}/v1/{n}")})).collect::<Vec<_>>()}),
    )
}

async fn status(State(svc): State<Svc>, Authenticated(ctx): Authenticated) -> Result<Response> {
    svc.authorize(&ctx, "get status", None)?;
    // Rollups are computed on write: nothing ever waits for processing.
    ok(
        json!({"storage": {"summary": {"metrics": 0, "measures": 0}, "measures_to_process": {}},
        "metricd": {"processors": [svc.config.common.host], "statistics": {}}}),
    )
}

async fn capabilities() -> Result<Response> {
    let methods = Method::all_names();
    ok(
        json!({"aggregation_methods": methods, "dynamic_aggregation_methods": ["aggregate", "metric"]}),
    )
}

// ----- archive policies -----

async fn list_policies(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.authorize(&ctx, "list archive policy", None)?;
    ok(store::policies::list(&svc.db)
        .await?
        .iter()
        .map(ArchivePolicy::view)
        .collect())
}

async fn create_policy(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "create archive policy", None)?;
    let p = ArchivePolicy::from_body(&body)?;
    if store::policies::get(&svc.db, &p.name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "Archive policy {} already exists",
            p.name
        )));
    }
    store::policies::insert(&svc.db, &p).await?;
    svc.reload_policies().await?;
    created(&svc, &["archive_policy", &p.name], p.view())
}

async fn policy_named(svc: &Svc, name: &str) -> Result<ArchivePolicy> {
    store::policies::get(&svc.db, name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Archive policy {name} does not exist")))
}

async fn show_policy(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "get archive policy", None)?;
    ok(policy_named(&svc, &name).await?.view())
}

/// Gnocchi lets only the timespans of existing granularities change.
async fn update_policy(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "update archive policy", None)?;
    let mut p = policy_named(&svc, &name).await?;
    let mut wanted = body.clone();
    wanted["name"] = json!(name);
    let new = ArchivePolicy::from_body(&wanted)?;
    let same_grains = new.definition.len() == p.definition.len()
        && new
            .definition
            .iter()
            .zip(&p.definition)
            .all(|(a, b)| a.granularity == b.granularity);
    if !same_grains {
        return Err(bad(
            "Archive policy granularities cannot be changed, only their timespan",
        ));
    }
    p.definition = new.definition;
    store::policies::update_definition(&svc.db, &p).await?;
    svc.reload_policies().await?;
    ok(p.view())
}

async fn delete_policy(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "delete archive policy", None)?;
    policy_named(&svc, &name).await?;
    if store::policies::in_use(&svc.db, &name).await? {
        return Err(bad(format!("Archive policy {name} is still in use")));
    }
    store::policies::delete(&svc.db, &name).await?;
    svc.reload_policies().await?;
    no_content()
}

// ----- archive policy rules -----

async fn list_rules(State(svc): State<Svc>, Authenticated(ctx): Authenticated) -> Result<Response> {
    svc.authorize(&ctx, "list archive policy rule", None)?;
    ok(store::policies::rules(&svc.db)
        .await?
        .iter()
        .map(Rule::view)
        .collect())
}

async fn create_rule(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "create archive policy rule", None)?;
    crate::archive::only_keys(
        &body,
        &["name", "metric_pattern", "archive_policy_name"],
        "",
    )?;
    let field = |k: &str| {
        body[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                bad(format!(
                    "Invalid input: required key not provided @ data['{k}']"
                ))
            })
    };
    let rule = Rule {
        name: field("name")?,
        metric_pattern: field("metric_pattern")?,
        archive_policy_name: field("archive_policy_name")?,
    };
    if store::policies::get(&svc.db, &rule.archive_policy_name)
        .await?
        .is_none()
    {
        return Err(bad(format!(
            "Archive policy {} does not exist",
            rule.archive_policy_name
        )));
    }
    if store::policies::rules(&svc.db)
        .await?
        .iter()
        .any(|r| r.name == rule.name)
    {
        return Err(Error::Conflict(format!(
            "Archive policy rule {} already exists",
            rule.name
        )));
    }
    store::policies::insert_rule(&svc.db, &rule).await?;
    created(&svc, &["archive_policy_rule", &rule.name], rule.view())
}

async fn rule_named(svc: &Svc, name: &str) -> Result<Rule> {
    store::policies::rules(&svc.db)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| Error::NotFound(format!("Archive policy rule {name} does not exist")))
}

async fn show_rule(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "get archive policy rule", None)?;
    ok(rule_named(&svc, &name).await?.view())
}

async fn rename_rule(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "update archive policy rule", None)?;
    let mut rule = rule_named(&svc, &name).await?;
    let new = body["name"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("Invalid input: required key not provided @ data['name']"))?;
    store::policies::rename_rule(&svc.db, &name, new).await?;
    rule.name = new.to_owned();
    ok(rule.view())
}

async fn delete_rule(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "delete archive policy rule", None)?;
    if !store::policies::delete_rule(&svc.db, &name).await? {
        return Err(Error::NotFound(format!(
            "Archive policy rule {name} does not exist"
        )));
    }
    no_content()
}

// ----- metrics -----

pub(super) fn metric_view(svc: &Svc, m: &Metric) -> Value {
    let policy = svc
        .archive_policy(&m.archive_policy_name)
        .map(|p| p.view())
        .unwrap_or(json!({"name": m.archive_policy_name}));
    json!({
        "id": m.id,
        "name": m.name,
        "unit": m.unit,
        "resource_id": m.resource_id,
        "archive_policy_name": m.archive_policy_name,
        "archive_policy": policy,
        "created_by_project_id": m.created_by_project_id,
        "created_by_user_id": m.created_by_user_id,
        "creator": format!("{}:{}", m.created_by_user_id, m.created_by_project_id),
    })
}

fn can_see_metric(svc: &Svc, ctx: &AuthContext, m: &Metric, owner_project: Option<&str>) -> bool {
    match svc.scope(ctx) {
        None => true,
        Some(p) => m.created_by_project_id == p || owner_project == Some(p.as_str()),
    }
}

/// Gnocchi's metric list with its attribute filters (`id`, `name`,
/// `archive_policy_name`, `unit`, `resource_id`); `status=delete` asks for
/// metrics awaiting deletion, which this store never has (a delete is
/// done at once).
async fn list_metrics(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    svc.authorize(&ctx, "list metric", None)?;
    if single(&params, "status").is_some_and(|s| s != "active") {
        return ok(json!([]));
    }
    let all = store::metrics::list_with_owner(&svc.db, None).await?;
    let field = |m: &Metric, k: &str| -> Option<String> {
        match k {
            "id" => Some(m.id.clone()),
            "name" => m.name.clone(),
            "archive_policy_name" => Some(m.archive_policy_name.clone()),
            "unit" => m.unit.clone(),
            "resource_id" => m.resource_id.clone(),
            _ => None,
        }
    };
    let filters: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "id" | "name" | "archive_policy_name" | "unit" | "resource_id"
            )
        })
        .collect();
    ok(all
        .iter()
        .filter(|(m, o)| can_see_metric(&svc, &ctx, m, o.project_id.as_deref()))
        .filter(|(m, _)| {
            filters
                .iter()
                .all(|(k, v)| field(m, k).as_deref() == Some(v.as_str()))
        })
        .map(|(m, _)| metric_view(&svc, m))
        .collect())
}

/// A metric to create from a body (`archive_policy_name`, `name`, `unit`);
/// without a policy, the rule matching its name chooses, as in Gnocchi.
pub(super) async fn new_metric(
    svc: &Svc,
    ctx: &AuthContext,
    body: &Value,
    name: Option<&str>,
    resource_id: Option<&str>,
) -> Result<Metric> {
    let name = name
        .map(str::to_owned)
        .or_else(|| body["name"].as_str().map(str::to_owned));
    let policy = match body["archive_policy_name"].as_str() {
        Some(p) => p.to_owned(),
        None => {
            let by_rule = store::policies::rules(&svc.db).await?;
            let mut by_rule: Vec<_> = by_rule
                .into_iter()
                .filter(|r| name.as_deref().is_some_and(|n| r.matches(n)))
                .collect();
            by_rule.sort_by_key(|r| std::cmp::Reverse(r.metric_pattern.len()));
            by_rule.into_iter().next().map(|r| r.archive_policy_name).ok_or_else(|| {
                bad("No archive policy name specified and no archive policy rule found matching the metric name")
            })?
        }
    };
    if svc.archive_policy(&policy).is_none() {
        return Err(bad(format!("Archive policy {policy} does not exist")));
    }
    Ok(Metric {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        resource_id: resource_id.map(str::to_owned),
        archive_policy_name: policy,
        unit: body["unit"].as_str().map(str::to_owned),
        meter_type: None,
        created_by_project_id: ctx.project_id.clone().unwrap_or_default(),
        created_by_user_id: ctx.user_id.clone(),
    })
}

async fn create_metric(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "create metric", ctx.project_id.as_deref())?;
    let m = new_metric(&svc, &ctx, &body, None, None).await?;
    let mut conn = svc.db.pool.acquire().await.db()?;
    store::metrics::insert(&mut Tx::Any(&mut conn), &svc.db, &m).await?;
    created(&svc, &["metric", &m.id], metric_view(&svc, &m))
}

/// The metric of `id`, if the caller may see it (404 otherwise).
pub(super) async fn visible_metric(
    svc: &Svc,
    ctx: &AuthContext,
    id: &str,
    action: &str,
) -> Result<Metric> {
    let not_found = || Error::NotFound(format!("Metric {id} does not exist"));
    let m = store::metrics::get(&svc.db, id)
        .await?
        .ok_or_else(not_found)?;
    let owner = match &m.resource_id {
        Some(r) => store::resources::find(&svc.db, r)
            .await?
            .and_then(|r| r.project_id),
        None => None,
    };
    if !can_see_metric(svc, ctx, &m, owner.as_deref()) {
        return Err(not_found());
    }
    svc.authorize(
        ctx,
        action,
        Some(owner.as_deref().unwrap_or(&m.created_by_project_id)),
    )?;
    Ok(m)
}

async fn show_metric(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let m = visible_metric(&svc, &ctx, &id, "get metric").await?;
    let mut doc = metric_view(&svc, &m);
    doc["resource"] = match &m.resource_id {
        Some(rid) => {
            let mut conn = svc.db.pool.acquire().await.db()?;
            store::resources::get(&mut Tx::Any(&mut conn), &svc.db, rid)
                .await?
                .map_or(Value::Null, |r| resource_summary(&r))
        }
        None => Value::Null,
    };
    ok(doc)
}

/// A metric's resource as Gnocchi's metric details embed it (its generic
/// fields).
fn resource_summary(r: &store::resources::Resource) -> Value {
    let time = |t: Option<i64>| t.map(store::iso_utc);
    json!({
        "id": r.id,
        "type": r.kind,
        "original_resource_id": r.original_resource_id,
        "project_id": r.project_id,
        "user_id": r.user_id,
        "created_by_project_id": r.created_by_project_id,
        "created_by_user_id": r.created_by_user_id,
        "creator": format!("{}:{}", r.created_by_user_id, r.created_by_project_id),
        "started_at": store::iso_utc(r.started_at),
        "ended_at": time(r.ended_at),
        "revision_start": store::iso_utc(r.revision_start),
        "revision_end": time(r.revision_end),
    })
}

async fn delete_metric(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    visible_metric(&svc, &ctx, &id, "delete metric").await?;
    store::metrics::delete(&svc.db, &id).await?;
    no_content()
}

/// Measures of a body: `[{"timestamp", "value"}, …]`.
pub(super) fn parse_measures(body: &Value) -> Result<Vec<(i64, f64)>> {
    let items = body
        .as_array()
        .ok_or_else(|| bad("Invalid input: expected a list of measures"))?;
    items
        .iter()
        .map(|m| {
            let ts = match &m["timestamp"] {
                Value::String(s) => store::parse_time(s),
                Value::Number(n) => n.as_f64().map(|f| (f * 1e6) as i64),
                _ => None,
            }
            .ok_or_else(|| {
                bad(format!(
                    "Invalid input: Unable to parse timestamp {} @ data[0]['timestamp']",
                    m["timestamp"]
                ))
            })?;
            let v = match &m["value"] {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| {
                bad("Invalid input: expected float for dictionary value @ data[0]['value']")
            })?;
            Ok((ts, v))
        })
        .collect()
}

async fn post_measures(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let m = visible_metric(&svc, &ctx, &id, "post measures").await?;
    svc.add_measures(&m, &parse_measures(&body)?).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `[[timestamp, granularity, value], …]`, coarsest granularity first.
pub(super) async fn read_measures(
    svc: &Svc,
    m: &Metric,
    params: &[(String, String)],
) -> Result<Value> {
    let agg_name = single(params, "aggregation").unwrap_or("mean");
    let window = Window::from_params(params)?;
    let points = read_points(svc, m, agg_name, &window).await?;
    Ok(Value::Array(
        points
            .into_iter()
            .map(|(g, ts, v)| json!([store::iso_utc(ts * 1_000_000), g as f64, v]))
            .collect(),
    ))
}

/// The time range and granularity a read asks for (`start`, `stop`,
/// `granularity`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Window {
    pub start: Option<i64>,
    pub stop: Option<i64>,
    pub granularity: Option<i64>,
}

impl Window {
    pub fn from_params(params: &[(String, String)]) -> Result<Window> {
        let time = |k: &str| -> Result<Option<i64>> {
            single(params, k)
                .filter(|s| !s.is_empty())
                .map(|s| store::parse_time(s).ok_or_else(|| bad(format!("Invalid value for {k}"))))
                .transpose()
        };
        let granularity = single(params, "granularity")
            .filter(|s| !s.is_empty())
            .map(|g| {
                crate::archive::parse_duration(g)
                    .filter(|g| *g > 0)
                    .ok_or_else(|| bad(format!("Invalid value for granularity: {g}")))
            })
            .transpose()?;
        Ok(Window {
            start: time("start")?,
            stop: time("stop")?,
            granularity,
        })
    }
}

/// The points `(granularity, bucket start s, value)` of one metric and
/// aggregation method, coarsest granularity first.
pub(super) async fn read_points(
    svc: &Svc,
    m: &Metric,
    agg_name: &str,
    window: &Window,
) -> Result<Vec<(i64, i64, f64)>> {
    let policy = svc
        .archive_policy(&m.archive_policy_name)
        .ok_or_else(|| Error::Internal("archive policy missing".into()))?;
    let agg = Method::parse(agg_name)
        .filter(|a| policy.aggregation_methods.contains(a))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "Aggregation method '{agg_name}' for metric {} does not exist",
                m.id
            ))
        })?;
    let (start, stop, wanted) = (window.start, window.stop, window.granularity);
    let mut levels: Vec<i64> = policy
        .definition
        .iter()
        .map(|l| l.granularity)
        .filter(|g| wanted.is_none_or(|w| w == *g))
        .collect();
    if let Some(w) = wanted {
        if levels.is_empty() {
            return Err(Error::NotFound(format!(
                "Granularity '{w}.0' for metric {} does not exist",
                m.id
            )));
        }
    }
    levels.sort_by(|a, b| b.cmp(a));
    let mut out = Vec::new();
    for g in levels {
        let from = start.map(|s| s.div_euclid(g * 1_000_000) * g);
        let to = stop.map(|s| s.div_euclid(1_000_000) + 1);
        let series = measures::Series::of(agg.rate);
        for b in measures::read(&svc.db, series, std::slice::from_ref(&m.id), g, from, to).await? {
            if let Some(v) = b.acc.value(agg.base) {
                out.push((g, b.start, v));
            }
        }
    }
    Ok(out)
}

async fn get_measures(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    let m = visible_metric(&svc, &ctx, &id, "get measures").await?;
    ok(read_measures(&svc, &m, &params).await?)
}

async fn batch_metrics(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response> {
    let mut work = Vec::new();
    for (id, measures) in &body {
        let m = visible_metric(&svc, &ctx, id, "post measures")
            .await
            .map_err(|_| bad(format!("Unknown metrics: {id}")))?;
        work.push((m, parse_measures(measures)?));
    }
    for (m, pts) in work {
        svc.add_measures(&m, &pts).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}
