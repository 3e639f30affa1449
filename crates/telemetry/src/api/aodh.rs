//! Aodh v2: `/v2/alarms` (list, create), `/v2/alarms/{id}` (show, replace,
//! delete), its `state` (get, set) and `history`. Non-admins see their
//! project's alarms only.

use super::{Query, Svc};
use crate::alarms::{self, State};
use crate::store;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/", get(versions))
        .route("/v2/capabilities", get(capabilities))
        .route("/v2/alarms", get(list).post(create))
        .route("/v2/alarms/{id}", get(show).put(replace).delete(remove))
        .route("/v2/alarms/{id}/state", get(show_state).put(set_state))
        .route("/v2/alarms/{id}/history", get(history))
        .route("/v2/query/alarms", post(query_alarms))
        .route("/v2/query/alarms/history", post(query_history))
}

/// A complex query's filter (`{"filter": "<JSON>"}`, the JSON as a string
/// as aodhclient sends it, or as an object) and `limit`.
fn complex_filter(body: &Value) -> Result<(Value, Option<usize>)> {
    let filter = match &body["filter"] {
        Value::String(s) if !s.trim().is_empty() => serde_json::from_str(s)
            .map_err(|e| Error::BadRequest(format!("Filter expression not valid: {e}")))?,
        Value::Object(_) => body["filter"].clone(),
        _ => json!({}),
    };
    let limit = body["limit"].as_u64().map(|n| n as usize);
    Ok((filter, limit))
}

/// `POST /v2/query/alarms`: the alarms a complex query selects
/// (`{"=": {"name": …}}`, `and`, `or`, `not`, comparisons, `in`).
async fn query_alarms(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:query_alarm", ctx.project_id.as_deref())?;
    let (filter, limit) = complex_filter(&body)?;
    let mut out = Vec::new();
    for a in store::alarms::list(&svc.db, svc.scope(&ctx).as_deref()).await? {
        if super::gnocchi_resources::matches(&filter, &flat(&a))? {
            out.push(a);
        }
    }
    out.truncate(limit.unwrap_or(usize::MAX));
    Ok(axum::Json(Value::Array(out)).into_response())
}

/// `POST /v2/query/alarms/history`: the history entries of the visible
/// alarms a complex query selects.
async fn query_history(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(
        &ctx,
        "telemetry:query_alarm_history",
        ctx.project_id.as_deref(),
    )?;
    let (filter, limit) = complex_filter(&body)?;
    let mut out = Vec::new();
    for a in store::alarms::list(&svc.db, svc.scope(&ctx).as_deref()).await? {
        let id = a["alarm_id"].as_str().unwrap_or_default();
        for h in store::alarms::history(&svc.db, id).await? {
            if super::gnocchi_resources::matches(&filter, &h)? {
                out.push(h);
            }
        }
    }
    out.truncate(limit.unwrap_or(usize::MAX));
    Ok(axum::Json(Value::Array(out)).into_response())
}

/// An alarm with its rule's fields also at the top (`threshold`, `metric`,
/// …), which complex queries may name.
fn flat(a: &Value) -> Value {
    let mut doc = a.clone();
    for key in [
        alarms::RULE,
        alarms::BY_METRICS_RULE,
        alarms::EVENT_RULE,
        alarms::LB_HEALTH_RULE,
    ] {
        if let Some(rule) = a[key].as_object() {
            for (k, v) in rule {
                if doc.get(k).is_none() {
                    doc[k] = v.clone();
                }
            }
        }
    }
    doc
}

async fn versions(AxState(svc): AxState<Svc>) -> Result<Response> {
    let url = svc.config.public_url(svc.config.telemetry.alarm_port);
    Ok(axum::Json(json!({"versions": {"values": [{"id": "v2", "status": "stable", "updated": "2013-02-13T00:00:00Z",
        "links": [{"href": format!("{url}/v2"), "rel": "self"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.telemetry-v2+json"},
            {"base": "application/xml", "type": "application/vnd.openstack.telemetry-v2+xml"}]}]}}))
    .into_response())
}

/// `GET /v2/capabilities`: what the API and the alarm storage support.
async fn capabilities() -> Response {
    let api = json!({
        "alarms:query:simple": true, "alarms:query:complex": true,
        "alarms:history:query:simple": true, "alarms:history:query:complex": true,
    });
    let storage = json!({"storage:production_ready": true});
    axum::Json(json!({"api": api, "alarm_storage": storage})).into_response()
}

async fn visible(svc: &Svc, ctx: &AuthContext, id: &str, action: &str) -> Result<Value> {
    let not_found = || Error::NotFound(format!("Alarm {id} not found"));
    let alarm = store::alarms::get(&svc.db, id)
        .await?
        .ok_or_else(not_found)?;
    let project = alarm["project_id"].as_str().map(str::to_owned);
    if let Some(own) = svc.scope(ctx) {
        if project.as_deref() != Some(own.as_str()) {
            return Err(not_found());
        }
    }
    svc.authorize(ctx, action, project.as_deref())?;
    Ok(alarm)
}

async fn list(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:get_alarms", ctx.project_id.as_deref())?;
    let q = ListQuery::parse(&params)?;
    let scope = svc.scope(&ctx);
    let admin = scope.is_none();
    if q.all_projects && !admin {
        return Err(Error::Forbidden("RBAC Authorization Failed".into()));
    }
    for (f, v) in &q.eq {
        if f == "project_id" && !admin && scope.as_deref() != Some(v.as_str()) {
            return Err(Error::Unauthorized(format!(
                "Not Authorized to access project {v}"
            )));
        }
    }
    let mut all = store::alarms::list(&svc.db, scope.as_deref()).await?;
    for (f, v) in &q.eq {
        all.retain(|a| match &a[f.as_str()] {
            Value::String(s) => s == v,
            other => *other == serde_json::from_str::<Value>(v).unwrap_or(Value::Null),
        });
    }
    q.page(&mut all)?;
    Ok(axum::Json(Value::Array(all)).into_response())
}

/// The fields an alarm list may filter on and sort by (Aodh's).
const LIST_FIELDS: &[&str] = &[
    "alarm_id",
    "enabled",
    "name",
    "type",
    "severity",
    "timestamp",
    "user_id",
    "project_id",
    "state",
    "repeat_actions",
    "state_timestamp",
];

/// `GET /v2/alarms`'s parameters: `q.field/q.op/q.value` equalities (as
/// aodhclient's `--query` sends them), `all_projects`, `sort=key[:dir]`,
/// `limit` and `marker` (the alarm id the page starts after).
struct ListQuery {
    eq: Vec<(String, String)>,
    all_projects: bool,
    sort: Vec<(String, bool)>,
    limit: Option<usize>,
    marker: Option<String>,
}

impl ListQuery {
    fn parse(params: &[(String, String)]) -> Result<ListQuery> {
        let take = |k: &str| -> Vec<&str> {
            params
                .iter()
                .filter(|(p, _)| p == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let (fields, ops, values) = (take("q.field"), take("q.op"), take("q.value"));
        let mut q = ListQuery {
            eq: Vec::new(),
            all_projects: false,
            sort: Vec::new(),
            limit: None,
            marker: take("marker").first().map(|m| m.to_string()),
        };
        for (i, (f, v)) in fields.iter().zip(&values).enumerate() {
            let op = ops
                .get(i)
                .copied()
                .filter(|o| !o.is_empty())
                .unwrap_or("eq");
            if op != "eq" {
                return Err(Error::BadRequest(format!(
                    "operator {op} is not supported. the supported operators are: (eq,)"
                )));
            }
            if *f == "all_projects" {
                q.all_projects = v.eq_ignore_ascii_case("true");
            } else if LIST_FIELDS.contains(f) {
                q.eq.push((f.to_string(), v.to_string()));
            } else {
                return Err(Error::BadRequest(format!(
                    "Unknown argument: \"{f}\": unrecognized field in query"
                )));
            }
        }
        for s in take("sort") {
            let (key, dir) = s.split_once(':').unwrap_or((s, "asc"));
            if !LIST_FIELDS.contains(&key) || !matches!(dir, "asc" | "desc") {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute sort. Value: '{s}'. the sort parameter should be a pair of sort key and sort dir combined with colon(:), or only sort key specified and sort dir will be default 'asc', the supported sort keys are: {}",
                    LIST_FIELDS.join(", ")
                )));
            }
            q.sort.push((key.to_owned(), dir == "desc"));
        }
        if let Some(l) = take("limit").first() {
            q.limit = Some(
                l.parse()
                    .ok()
                    .filter(|n: &usize| *n > 0)
                    .ok_or_else(|| Error::BadRequest(format!("Limit must be positive: {l}")))?,
            );
        }
        Ok(q)
    }

    /// Sort (with the alarm id as the last key, so pages are stable, as
    /// Aodh adds its primary key), start after the marker, then limit.
    fn page(&self, all: &mut Vec<Value>) -> Result<()> {
        if !self.sort.is_empty() {
            let mut keys = self.sort.clone();
            if !keys.iter().any(|(k, _)| k == "alarm_id") {
                keys.push(("alarm_id".to_owned(), false));
            }
            all.sort_by(|a, b| {
                keys.iter()
                    .fold(std::cmp::Ordering::Equal, |acc, (k, desc)| {
                        acc.then_with(|| {
                            let o = cmp_json(&a[k.as_str()], &b[k.as_str()]);
                            if *desc {
                                o.reverse()
                            } else {
                                o
                            }
                        })
                    })
            });
        }
        if let Some(marker) = &self.marker {
            let at = all
                .iter()
                .position(|a| a["alarm_id"] == marker.as_str())
                .ok_or_else(|| Error::BadRequest(format!("Marker {marker} not found.")))?;
            all.drain(..=at);
        }
        if let Some(l) = self.limit {
            all.truncate(l);
        }
        Ok(())
    }
}

/// Order of two alarm fields (strings, booleans, numbers).
fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
    }
}

async fn create(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:create_alarm", ctx.project_id.as_deref())?;
    let project = ctx.project_id.clone().unwrap_or_default();
    let alarm = alarms::from_body(&body, &project, &ctx.user_id)?;
    let id = alarm["alarm_id"].as_str().unwrap_or_default().to_owned();
    store::alarms::put(&svc.db, &id, &project, &alarm).await?;
    store::alarms::add_history(&svc.db, &id, &json!({
        "event_id": uuid::Uuid::new_v4().to_string(), "alarm_id": id, "type": "creation",
        "detail": alarm.to_string(), "timestamp": alarm["timestamp"],
        "project_id": project, "user_id": ctx.user_id, "on_behalf_of": project, "severity": alarm["severity"],
    })).await?;
    Ok((StatusCode::CREATED, axum::Json(alarm)).into_response())
}

async fn show(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(axum::Json(visible(&svc, &ctx, &id, "telemetry:get_alarm").await?).into_response())
}

async fn replace(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let old = visible(&svc, &ctx, &id, "telemetry:change_alarm").await?;
    let project = old["project_id"].as_str().unwrap_or_default().to_owned();
    let mut new = alarms::from_body(&body, &project, old["user_id"].as_str().unwrap_or_default())?;
    new["alarm_id"] = json!(id);
    // `state_reason` is read-only: a state the update changes is a manual
    // transition, recorded (and explained) as `PUT .../state` records it.
    let new_state = match body.get("state") {
        Some(s) if *s != old["state"] => Some(s.as_str().and_then(State::parse).ok_or_else(|| {
            Error::BadRequest(format!("Invalid input for field/attribute state. Value: '{s}'. Value should be one of: alarm, ok, insufficient data"))
        })?),
        _ => None,
    };
    new["state"] = old["state"].clone();
    new["state_reason"] = old["state_reason"].clone();
    new["state_timestamp"] = old["state_timestamp"].clone();
    store::alarms::put(&svc.db, &id, &project, &new).await?;
    // Aodh's `rule change` event: the fields the update changed.
    let changed: serde_json::Map<String, Value> = new
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            !matches!(
                k.as_str(),
                "timestamp" | "state_timestamp" | "state_reason" | "state"
            ) && old.get(k.as_str()) != Some(*v)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !changed.is_empty() {
        store::alarms::add_history(&svc.db, &id, &json!({
            "event_id": uuid::Uuid::new_v4().to_string(), "alarm_id": id, "type": "rule change",
            "detail": Value::Object(changed).to_string(), "timestamp": new["timestamp"],
            "project_id": project, "user_id": ctx.user_id, "on_behalf_of": project, "severity": new["severity"],
        })).await?;
    }
    let new = match new_state {
        Some(state) => alarms::transition(&svc, new, state, "Manually set via API", true).await?,
        None => new,
    };
    Ok(axum::Json(new).into_response())
}

async fn remove(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    visible(&svc, &ctx, &id, "telemetry:delete_alarm").await?;
    store::alarms::delete(&svc.db, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn show_state(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let a = visible(&svc, &ctx, &id, "telemetry:get_alarm_state").await?;
    Ok(axum::Json(a["state"].clone()).into_response())
}

async fn set_state(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let a = visible(&svc, &ctx, &id, "telemetry:change_alarm_state").await?;
    let wanted = body.as_str().and_then(State::parse).ok_or_else(|| {
        Error::BadRequest(format!("Invalid input for field/attribute state. Value: '{body}'. Value should be one of: alarm, ok, insufficient data"))
    })?;
    let a = alarms::transition(&svc, a, wanted, "Manually set via API", true).await?;
    Ok(axum::Json(a["state"].clone()).into_response())
}

async fn history(
    AxState(svc): AxState<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    visible(&svc, &ctx, &id, "telemetry:alarm_history").await?;
    Ok(axum::Json(Value::Array(store::alarms::history(&svc.db, &id).await?)).into_response())
}
