//! Aodh's alarms over the metric store: `gnocchi_resources_threshold`
//! rules (a resource's metric; `gnocchi_aggregation_by_metrics_threshold`:
//! metrics by id, aggregated across; an aggregation at a granularity, the last
//! `evaluation_periods` points against a threshold), evaluated every
//! `[telemetry] evaluation_interval` seconds; a change of state is
//! recorded in the history and announced to the state's actions (`http://`
//! and `https://` URLs get Aodh's JSON by POST, `log://` a log line).

use crate::archive::{Aggregation, Method};
use crate::service::TelemetryService;
use crate::store::sqlite::Tx;
use crate::store::{self, measures};
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const TYPE: &str = "gnocchi_resources_threshold";
pub const RULE: &str = "gnocchi_resources_threshold_rule";
/// Aodh's threshold over a list of metrics by id, aggregated across them.
pub const BY_METRICS: &str = "gnocchi_aggregation_by_metrics_threshold";
pub const BY_METRICS_RULE: &str = "gnocchi_aggregation_by_metrics_threshold_rule";
/// Aodh's `event` alarms: a notification of a type (glob) in the alarm's
/// project whose payload matches the rule's query sets the alarm off.
pub const EVENT: &str = "event";
pub const EVENT_RULE: &str = "event_rule";
/// Aodh's `loadbalancer_member_health`: Octavia's members of a pool an
/// autoscaling group made. Stored and served as Aodh does; Aodh's
/// evaluator asks Octavia, which this cloud does not run, so such an alarm
/// stays in `insufficient data` as Aodh's does without a load balancer.
pub const LB_HEALTH: &str = "loadbalancer_member_health";
pub const LB_HEALTH_RULE: &str = "loadbalancer_member_health_rule";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Ok,
    Alarm,
    InsufficientData,
}

impl State {
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "ok" => Some(State::Ok),
            "alarm" => Some(State::Alarm),
            "insufficient data" => Some(State::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Alarm => "alarm",
            State::InsufficientData => "insufficient data",
        }
    }

    fn actions_key(self) -> &'static str {
        match self {
            State::Ok => "ok_actions",
            State::Alarm => "alarm_actions",
            State::InsufficientData => "insufficient_data_actions",
        }
    }
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadRequest(m.into())
}

/// A new alarm's document from a POST body, checked as Aodh checks it.
pub fn from_body(body: &Value, project_id: &str, user_id: &str) -> Result<Value> {
    let name = body["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            bad("Invalid input for field/attribute name. Value: 'None'. Mandatory field missing.")
        })?;
    let kind = body["type"].as_str().unwrap_or_default();
    let (rule_key, rule, description) = match kind {
        TYPE => (
            RULE,
            check_rule(&body[RULE])?,
            "gnocchi_resources_threshold alarm rule".to_owned(),
        ),
        BY_METRICS => (
            BY_METRICS_RULE,
            check_by_metrics_rule(&body[BY_METRICS_RULE])?,
            "gnocchi_aggregation_by_metrics_threshold alarm rule".to_owned(),
        ),
        EVENT => {
            let rule = check_event_rule(&body[EVENT_RULE])?;
            let d = format!("Alarm when {} event occurred.", rule["event_type"].as_str().unwrap_or("*"));
            (EVENT_RULE, rule, d)
        }
        LB_HEALTH => (
            LB_HEALTH_RULE,
            check_lb_rule(&body[LB_HEALTH_RULE])?,
            "loadbalancer_member_health alarm rule".to_owned(),
        ),
        _ => {
            return Err(bad(format!(
                "Invalid input for field/attribute type. Value: '{kind}'. Value should be one of: {TYPE}, {BY_METRICS}, {EVENT}, {LB_HEALTH}"
            )))
        }
    };
    check_no_time_constraints(&body["time_constraints"])?;
    check_enums(body)?;
    let now = store::iso_naive(store::now_us());
    let list = |k: &str| {
        body.get(k)
            .cloned()
            .filter(Value::is_array)
            .unwrap_or(json!([]))
    };
    let mut actions = serde_json::Map::new();
    for key in ["alarm_actions", "ok_actions", "insufficient_data_actions"] {
        let mut urls = Vec::new();
        for a in list(key).as_array().into_iter().flatten() {
            // Aodh keeps each action once.
            let url = json!(action_url(a.as_str().unwrap_or_default())?);
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        actions.insert(key.to_owned(), Value::Array(urls));
    }
    let mut doc = json!({
        "alarm_id": uuid::Uuid::new_v4().to_string(),
        "name": name,
        "type": kind,
        "description": body["description"].as_str().map(str::to_owned).unwrap_or(description),
        "enabled": body["enabled"].as_bool().unwrap_or(true),
        "state": body["state"].as_str().and_then(State::parse).unwrap_or(State::InsufficientData).as_str(),
        "state_reason": "Not evaluated yet",
        "state_timestamp": now,
        "timestamp": now,
        "project_id": project_id,
        "user_id": user_id,
        "severity": body["severity"].as_str().unwrap_or("low"),
        "repeat_actions": body["repeat_actions"].as_bool().unwrap_or(false),
        "alarm_actions": actions["alarm_actions"],
        "ok_actions": actions["ok_actions"],
        "insufficient_data_actions": actions["insufficient_data_actions"],
        "time_constraints": [],
    });
    doc[rule_key] = rule;
    Ok(doc)
}

/// An action URL as Aodh stores it (its notifiers: `http(s)://`, `log://`
/// and `test://`), in the normal form Python's `urlsplit` gives: a URL
/// with nothing after the scheme loses its `//` (`log://` → `log:`).
fn action_url(url: &str) -> Result<String> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    if !matches!(scheme, "http" | "https" | "log" | "test") {
        return Err(bad(format!("Unsupported action {url}")));
    }
    Ok(match url.strip_suffix("//") {
        Some(bare) if bare == format!("{scheme}:") => bare.to_owned(),
        _ => url.to_owned(),
    })
}

/// A load-balancer member health rule: Aodh's three mandatory ids.
fn check_lb_rule(r: &Value) -> Result<Value> {
    let mut rule = serde_json::Map::new();
    for k in ["pool_id", "stack_id", "autoscaling_group_id"] {
        let v = r[k].as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
            bad(format!(
                "Invalid input for field/attribute {k}. Value: 'None'. Mandatory field missing."
            ))
        })?;
        rule.insert(k.to_owned(), json!(v));
    }
    Ok(Value::Object(rule))
}

/// An event rule: `event_type` (a glob, `*` by default) and a `query` list
/// of `{field, op, value, type}` over the event's traits.
fn check_event_rule(r: &Value) -> Result<Value> {
    let event_type = r["event_type"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("*");
    let mut query = Vec::new();
    for q in r["query"].as_array().into_iter().flatten() {
        let field = q["field"].as_str().filter(|f| !f.is_empty()).ok_or_else(|| {
            bad("Invalid input for field/attribute query. Value: 'None'. Mandatory field missing.")
        })?;
        let op = q["op"].as_str().filter(|o| !o.is_empty()).unwrap_or("eq");
        if !matches!(op, "lt" | "le" | "eq" | "ne" | "ge" | "gt") {
            return Err(bad(format!(
                "Invalid input for field/attribute op. Value: '{op}'. unimplemented operator for {field}"
            )));
        }
        let value = match &q["value"] {
            Value::String(s) => s.clone(),
            Value::Null => return Err(bad(format!("Query {field} has no value"))),
            other => other.to_string(),
        };
        query.push(json!({"field": field, "op": op, "value": value, "type": q["type"].as_str().unwrap_or("")}));
    }
    Ok(json!({"event_type": event_type, "query": query}))
}

/// Whether a notification matches an event rule for an alarm of
/// `project`: its type, its project, and every query condition on its
/// traits (`traits.<name>`: a payload field, also inside the payload's
/// one-object wrapper as Neutron sends).
pub fn event_matches(rule: &Value, project: &str, n: &ferrostack_bus::Notification) -> bool {
    let pattern = rule["event_type"].as_str().unwrap_or("*");
    if !crate::store::policies::glob_match(pattern, &n.event_type) {
        return false;
    }
    let family = n.event_type.split('.').next().unwrap_or_default();
    let doc = n
        .payload
        .get(family)
        .filter(|v| v.is_object())
        .unwrap_or(&n.payload);
    let trait_of = |name: &str| -> Option<String> {
        match doc.get(name).or_else(|| n.payload.get(name))? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let owner = ["project_id", "tenant_id", "owner"]
        .iter()
        .find_map(|k| trait_of(k));
    if owner.as_deref() != Some(project) {
        return false;
    }
    rule["query"].as_array().into_iter().flatten().all(|q| {
        let name = q["field"].as_str().unwrap_or_default();
        let name = name.strip_prefix("traits.").unwrap_or(name);
        let want = q["value"].as_str().unwrap_or_default();
        let Some(have) = trait_of(name) else {
            return false;
        };
        let ord = match (have.parse::<f64>(), want.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b),
            _ => Some(have.as_str().cmp(want)),
        };
        use std::cmp::Ordering::*;
        match q["op"].as_str().unwrap_or("eq") {
            "lt" => ord == Some(Less),
            "le" => matches!(ord, Some(Less | Equal)),
            "gt" => ord == Some(Greater),
            "ge" => matches!(ord, Some(Greater | Equal)),
            "ne" => ord != Some(Equal),
            _ => ord == Some(Equal),
        }
    })
}

/// Set off the enabled event alarms the notifications match.
pub async fn on_notifications(
    svc: &TelemetryService,
    notes: &[ferrostack_bus::Notification],
) -> Result<()> {
    let alarms: Vec<Value> = store::alarms::list(&svc.db, None)
        .await?
        .into_iter()
        .filter(|a| a["type"] == EVENT && a["enabled"] == json!(true))
        .collect();
    for mut alarm in alarms {
        for n in notes {
            let project = alarm["project_id"].as_str().unwrap_or_default().to_owned();
            if !event_matches(&alarm[EVENT_RULE], &project, n) {
                continue;
            }
            let firing = alarm["state"] == State::Alarm.as_str();
            if firing && alarm["repeat_actions"] != json!(true) {
                continue;
            }
            let reason = format!(
                "Event <id={},event_type={}> hits the query <query={}>.",
                n.message_id, n.event_type, alarm[EVENT_RULE]["query"]
            );
            alarm = if firing {
                notify(&alarm, State::Alarm.as_str(), State::Alarm, &reason).await;
                alarm
            } else {
                transition(svc, alarm, State::Alarm, &reason, false).await?
            };
        }
    }
    Ok(())
}

fn check_rule(r: &Value) -> Result<Value> {
    let need = |k: &str| {
        r[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned).ok_or_else(|| {
            bad(format!("Invalid input for field/attribute {k}. Value: 'None'. Mandatory field missing."))
        })
    };
    let mut rule = check_threshold(r)?;
    rule["metric"] = json!(need("metric")?);
    rule["resource_id"] = json!(need("resource_id")?);
    rule["resource_type"] = json!(need("resource_type")?);
    Ok(rule)
}

/// A `gnocchi_aggregation_by_metrics_threshold` rule: `metrics`, a
/// non-empty list of metric ids, and the threshold fields.
fn check_by_metrics_rule(r: &Value) -> Result<Value> {
    let metrics: Vec<String> = r["metrics"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect())
        .filter(|ms: &Vec<String>| !ms.is_empty() && ms.len() == r["metrics"].as_array().map_or(0, Vec::len))
        .ok_or_else(|| {
            bad("Invalid input for field/attribute metrics. Value: 'None'. Mandatory field missing: a list of metric ids.")
        })?;
    let mut rule = check_threshold(r)?;
    rule["metrics"] = json!(metrics);
    Ok(rule)
}

/// The fields every Gnocchi threshold rule has, with Aodh's defaults.
fn check_threshold(r: &Value) -> Result<Value> {
    if !r.is_object() {
        return Err(bad(
            "Invalid input: the alarm rule is missing or not an object",
        ));
    }
    let threshold = r["threshold"].as_f64().ok_or_else(|| {
        bad("Invalid input for field/attribute threshold. Value: 'None'. Mandatory field missing.")
    })?;
    let aggregation = r["aggregation_method"].as_str().unwrap_or("mean");
    if Method::parse(aggregation).is_none() {
        return Err(bad(format!(
            "aggregation_method should be in {:?}",
            Method::all_names()
        )));
    }
    let op = r["comparison_operator"].as_str().unwrap_or("eq");
    if !matches!(op, "lt" | "le" | "eq" | "ne" | "ge" | "gt") {
        return Err(bad(format!(
            "Invalid input for field/attribute comparison_operator. Value: '{op}'. Value should be one of: lt, le, eq, ne, ge, gt"
        )));
    }
    let granularity = r["granularity"].as_i64().unwrap_or(60);
    let periods = r["evaluation_periods"].as_i64().unwrap_or(1);
    if granularity <= 0 || periods <= 0 {
        return Err(bad("granularity and evaluation_periods must be positive"));
    }
    Ok(json!({
        "threshold": threshold, "aggregation_method": aggregation, "comparison_operator": op,
        "granularity": granularity, "evaluation_periods": periods,
    }))
}

/// `enabled`, `repeat_actions`, `severity` and `state`, when given, must be
/// of Aodh's types and values.
fn check_enums(body: &Value) -> Result<()> {
    let invalid = |k: &str, allowed: &str| {
        bad(format!(
            "Invalid input for field/attribute {k}. Value: '{}'. Value should be {allowed}",
            body[k]
        ))
    };
    for k in ["enabled", "repeat_actions"] {
        if !matches!(body.get(k), None | Some(Value::Null) | Some(Value::Bool(_))) {
            return Err(invalid(k, "a boolean"));
        }
    }
    let one_of = |k: &str, values: &[&str]| match body.get(k) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(v)) if values.contains(&v.as_str()) => Ok(()),
        Some(_) => Err(invalid(k, &format!("one of: {}", values.join(", ")))),
    };
    one_of("severity", &["low", "moderate", "critical"])?;
    one_of("state", &["ok", "alarm", "insufficient data"])
}

/// Time constraints (evaluate only in cron-given windows) are not built:
/// an alarm that asks for them is refused rather than evaluated at all
/// times (docs/compatibility.md).
fn check_no_time_constraints(tc: &Value) -> Result<()> {
    match tc {
        Value::Null => Ok(()),
        Value::Array(a) if a.is_empty() => Ok(()),
        _ => Err(bad(
            "Invalid input for field/attribute time_constraints: time constraints are not supported by this alarm service",
        )),
    }
}

/// Whether `v` breaches the rule's threshold.
fn breaches(rule: &Value, v: f64) -> bool {
    let t = rule["threshold"].as_f64().unwrap_or(0.0);
    match rule["comparison_operator"].as_str().unwrap_or("eq") {
        "lt" => v < t,
        "le" => v <= t,
        "ne" => v != t,
        "ge" => v >= t,
        "gt" => v > t,
        _ => v == t,
    }
}

/// The metric ids a threshold rule reads (one of a resource, or a list
/// aggregated across), or why there are none to read.
async fn rule_metrics(
    svc: &TelemetryService,
    rule: &Value,
) -> Result<std::result::Result<Vec<String>, String>> {
    if let Some(listed) = rule["metrics"].as_array() {
        let mut ids = Vec::new();
        for id in listed.iter().filter_map(Value::as_str) {
            match store::metrics::get(&svc.db, id).await? {
                Some(m) => ids.push(m.id),
                None => return Ok(Err(format!("Metric {id} does not exist"))),
            }
        }
        return Ok(Ok(ids));
    }
    let rid = store::resources::resource_uuid(rule["resource_id"].as_str().unwrap_or_default());
    let name = rule["metric"].as_str().unwrap_or_default();
    let mut conn = svc.db.pool.acquire().await.map_err(Error::internal)?;
    Ok(
        match store::metrics::by_resource_name(&mut Tx::Any(&mut conn), &svc.db, &rid, name).await?
        {
            Some(m) => Ok(vec![m.id]),
            None => Err(format!("Metric {name} of resource {rid} does not exist")),
        },
    )
}

/// One value per bucket start, in time order: a single metric's aggregate,
/// or (several metrics, as Gnocchi aggregates across metrics) the same
/// aggregation over each metric's aggregate, where every metric has a point.
fn across_metrics(buckets: &[measures::Bucket], metrics: usize, base: Aggregation) -> Vec<f64> {
    if metrics <= 1 {
        return buckets.iter().filter_map(|b| b.acc.value(base)).collect();
    }
    let mut at: std::collections::BTreeMap<i64, (usize, Option<measures::Acc>)> =
        Default::default();
    for b in buckets {
        let Some(v) = b.acc.value(base) else { continue };
        let (n, acc) = at.entry(b.start).or_default();
        *n += 1;
        let one = measures::Acc::one(b.start, v);
        match acc {
            Some(a) => a.merge(&one),
            None => *acc = Some(one),
        }
    }
    at.into_values()
        .filter(|(n, _)| *n == metrics)
        .filter_map(|(_, acc)| acc.and_then(|a| a.value(base)))
        .collect()
}

/// The state the rule's last points give at `now_s`, with Aodh's reason.
pub async fn evaluate_rule(
    svc: &TelemetryService,
    rule: &Value,
    now_s: i64,
) -> Result<(State, String)> {
    let ids = match rule_metrics(svc, rule).await? {
        Ok(ids) => ids,
        Err(missing) => return Ok((State::InsufficientData, missing)),
    };
    let g = rule["granularity"].as_i64().unwrap_or(60);
    let periods = rule["evaluation_periods"].as_i64().unwrap_or(1);
    let agg = Method::parse(rule["aggregation_method"].as_str().unwrap_or("mean"))
        .unwrap_or(Method::plain(Aggregation::Mean));
    let from = now_s - g * (periods + 1);
    let buckets = measures::read(
        &svc.db,
        measures::Series::of(agg.rate),
        &ids,
        g,
        Some(from),
        Some(now_s + 1),
    )
    .await?;
    let values: Vec<f64> = across_metrics(&buckets, ids.len(), agg.base)
        .into_iter()
        .rev()
        .take(periods as usize)
        .collect();
    if (values.len() as i64) < periods {
        return Ok((
            State::InsufficientData,
            format!("{} datapoints are unknown", periods - values.len() as i64),
        ));
    }
    let hits = values.iter().filter(|v| breaches(rule, **v)).count();
    let last = values[0];
    Ok(if hits == values.len() {
        (
            State::Alarm,
            format!(
                "Transition to alarm due to {hits} samples outside threshold, most recent: {last}"
            ),
        )
    } else if hits == 0 {
        (
            State::Ok,
            format!(
                "Transition to ok due to {} samples inside threshold, most recent: {last}",
                values.len()
            ),
        )
    } else {
        let current = State::InsufficientData;
        (
            current,
            format!(
                "Mixed samples: {hits} of {} outside threshold",
                values.len()
            ),
        )
    })
}

/// Record a state change (history, document) and notify its actions.
pub async fn transition(
    svc: &TelemetryService,
    mut alarm: Value,
    state: State,
    reason: &str,
    by_user: bool,
) -> Result<Value> {
    let previous = alarm["state"].as_str().unwrap_or_default().to_owned();
    let id = alarm["alarm_id"].as_str().unwrap_or_default().to_owned();
    let now = store::iso_naive(store::now_us());
    alarm["state"] = json!(state.as_str());
    alarm["state_reason"] = json!(reason);
    alarm["state_timestamp"] = json!(now);
    store::alarms::put(
        &svc.db,
        &id,
        alarm["project_id"].as_str().unwrap_or_default(),
        &alarm,
    )
    .await?;
    store::alarms::add_history(&svc.db, &id, &json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "alarm_id": id,
        "type": "state transition",
        "detail": json!({"state": state.as_str(), "transition_reason": reason}).to_string(),
        "timestamp": now,
        "project_id": alarm["project_id"], "user_id": alarm["user_id"], "on_behalf_of": alarm["project_id"],
        "severity": alarm["severity"],
    })).await?;
    if !by_user {
        notify(&alarm, &previous, state, reason).await;
    }
    Ok(alarm)
}

async fn notify(alarm: &Value, previous: &str, state: State, reason: &str) {
    let body = json!({
        "alarm_id": alarm["alarm_id"], "alarm_name": alarm["name"], "severity": alarm["severity"],
        "previous": previous, "current": state.as_str(), "reason": reason,
        "reason_data": {"type": "threshold"},
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build();
    for action in alarm[state.actions_key()].as_array().into_iter().flatten() {
        let url = action.as_str().unwrap_or_default();
        if url.starts_with("log:") || url.starts_with("test:") {
            tracing::info!(alarm = %alarm["alarm_id"], state = state.as_str(), reason, "alarm action");
        } else if let Ok(c) = &client {
            if let Err(e) = c.post(url).json(&body).send().await {
                tracing::warn!(alarm = %alarm["alarm_id"], url, error = %e, "alarm action failed");
            }
        }
    }
}

/// One evaluation round over every enabled alarm.
pub async fn evaluate_all(svc: &TelemetryService, now_s: i64) -> Result<()> {
    for alarm in store::alarms::list(&svc.db, None).await? {
        let rule = match alarm["type"].as_str() {
            Some(TYPE) => &alarm[RULE],
            Some(BY_METRICS) => &alarm[BY_METRICS_RULE],
            _ => continue,
        };
        if alarm["enabled"] != json!(true) {
            continue;
        }
        let (state, reason) = evaluate_rule(svc, rule, now_s).await?;
        let changed = alarm["state"].as_str() != Some(state.as_str());
        if changed {
            transition(svc, alarm, state, &reason, false).await?;
        } else if alarm["repeat_actions"] == json!(true) {
            notify(&alarm, state.as_str(), state, &reason).await;
        }
    }
    Ok(())
}

/// Evaluate every `[telemetry] evaluation_interval` seconds, on one
/// controller at a time (the lease `periodic:alarm-evaluation`), so an
/// alarm's transition is notified once.
pub fn spawn(svc: &Arc<TelemetryService>) {
    let weak = Arc::downgrade(svc);
    let every = Duration::from_secs(svc.config.telemetry.evaluation_interval.max(1));
    let mut lease = ferrostack_db::lease::Periodic::new(
        &svc.db,
        "alarm-evaluation",
        &svc.config.common.host,
        every,
    );
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(svc) = weak.upgrade() else { return };
            if !lease.turn().await {
                continue;
            }
            if let Err(e) = evaluate_all(&svc, store::now_us() / 1_000_000).await {
                tracing::warn!(error = %e, "alarm evaluation failed");
            }
        }
    });
}
