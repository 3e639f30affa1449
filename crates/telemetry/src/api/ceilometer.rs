//! Ceilometer v2: `/v2/meters` (list), `/v2/meters/{name}` (samples, and
//! POST to add some), `/v2/meters/{name}/statistics`, `/v2/samples`,
//! `/v2/resources`, with the Havana response fields. Non-admins see their
//! project only, as Ceilometer's `segregation` rule does.

use super::{Query, Svc};
use crate::meters::{MeterType, Reading};
use crate::query::{self, Cond, Field, Op, Value as QValue};
use crate::service::Batch;
use crate::stats::{self, GroupBy, StatsQuery};
use crate::store::{self, samples::Sample};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/", get(versions))
        .route("/v2", get(v2_root))
        .route("/v2/meters", get(list_meters))
        .route("/v2/meters/{name}", get(meter_samples).post(post_samples))
        .route("/v2/meters/{name}/statistics", get(statistics))
        .route("/v2/samples", get(list_samples))
        .route("/v2/samples/{id}", get(show_sample))
        .route("/v2/resources", get(list_resources))
        .route("/v2/resources/{id}", get(show_resource))
}

fn ok(v: Value) -> Result<Response> {
    Ok(axum::Json(v).into_response())
}

async fn versions(State(svc): State<Svc>) -> Result<Response> {
    let url = svc.config.public_url(svc.config.telemetry.metering_port);
    ok(json!({"versions": {"values": [{
        "id": "v2", "status": "stable", "updated": "2013-02-13T00:00:00Z",
        "links": [{"href": format!("{url}/v2"), "rel": "self"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.telemetry-v2+json"}],
    }]}}))
}

async fn v2_root(State(svc): State<Svc>) -> Result<Response> {
    versions(State(svc)).await
}

/// The caller's conditions, with the project condition scoping adds, and
/// checked against scope (a non-admin may not ask for another project).
fn scoped(
    svc: &Svc,
    ctx: &AuthContext,
    params: &[(String, String)],
) -> Result<(Vec<Cond>, Option<String>)> {
    let conds = query::parse(params)?;
    let scope = svc.scope(ctx);
    if let Some(own) = &scope {
        for c in &conds {
            if c.field == Field::ProjectId && c.op == Op::Eq && c.text() != Some(own.as_str()) {
                return Err(Error::Unauthorized(format!(
                    "Not Authorized to access project {}",
                    c.text().unwrap_or_default()
                )));
            }
        }
    }
    Ok((conds, scope))
}

fn limit(params: &[(String, String)]) -> Result<Option<usize>> {
    match query::single(params, "limit") {
        None => Ok(None),
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            _ => Err(Error::BadRequest("Limit must be positive".into())),
        },
    }
}

fn meter_id(resource_id: &str, name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{resource_id}+{name}"))
}

async fn list_meters(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:get_meters", ctx.project_id.as_deref())?;
    let (conds, scope) = scoped(&svc, &ctx, &params)?;
    let mut out = Vec::new();
    for (m, o) in store::metrics::list_with_owner(&svc.db, None).await? {
        let Some(meter_type) = &m.meter_type else {
            continue;
        };
        if scope.is_some() && o.project_id != scope {
            continue;
        }
        let name = m.name.clone().unwrap_or_default();
        let rid = o.original_resource_id.clone().unwrap_or_default();
        let doc = json!({
            "meter_id": meter_id(&rid, &name),
            "name": name,
            "type": meter_type,
            "unit": m.unit.clone().unwrap_or_default(),
            "resource_id": rid,
            "project_id": o.project_id,
            "user_id": o.user_id,
            "source": crate::meters::SOURCE,
        });
        if conds.iter().all(|c| cond_matches_doc(c, &doc)) {
            out.push(doc);
        }
    }
    ok(Value::Array(out))
}

/// A condition on a listed document's fields (meters, resources).
fn cond_matches_doc(c: &Cond, doc: &Value) -> bool {
    let key = match &c.field {
        Field::Meter => "name",
        Field::ResourceId => "resource_id",
        Field::ProjectId => "project_id",
        Field::UserId => "user_id",
        Field::Source => "source",
        Field::Metadata(_) => return c.matches_metadata(&doc["metadata"]),
        Field::Timestamp | Field::MessageId => return true,
    };
    let have = doc[key].as_str().unwrap_or_default();
    c.op.holds(have.cmp(c.text().unwrap_or_default()))
}

/// 404 for a meter no resource in scope has (Ceilometer's wording).
async fn require_meter(svc: &Svc, name: &str, scope: &Option<String>) -> Result<()> {
    let known = store::metrics::list_with_owner(&svc.db, Some(name))
        .await?
        .iter()
        .any(|(m, o)| m.meter_type.is_some() && (scope.is_none() || o.project_id == *scope));
    if known {
        Ok(())
    } else {
        Err(Error::NotFound(format!("Meter {name} Not Found")))
    }
}

fn with_meter(mut conds: Vec<Cond>, name: &str, scope: &Option<String>) -> Vec<Cond> {
    conds.push(Cond {
        field: Field::Meter,
        op: Op::Eq,
        value: QValue::Str(name.to_owned()),
    });
    if let Some(p) = scope {
        conds.push(Cond {
            field: Field::ProjectId,
            op: Op::Eq,
            value: QValue::Str(p.clone()),
        });
    }
    conds
}

/// The Havana `OldSample` of `/v2/meters/{name}`.
fn old_sample(s: &Sample) -> Value {
    json!({
        "counter_name": s.meter,
        "counter_type": s.kind.as_str(),
        "counter_unit": s.unit,
        "counter_volume": s.volume,
        "user_id": s.user_id,
        "project_id": s.project_id,
        "resource_id": s.resource_id,
        "timestamp": store::iso_naive(s.ts),
        "recorded_at": store::iso_naive(s.recorded_at),
        "resource_metadata": s.metadata,
        "message_id": s.id,
        "source": s.source,
    })
}

/// The `Sample` of `/v2/samples`.
fn sample_view(s: &Sample) -> Value {
    json!({
        "id": s.id,
        "meter": s.meter,
        "type": s.kind.as_str(),
        "unit": s.unit,
        "volume": s.volume,
        "user_id": s.user_id,
        "project_id": s.project_id,
        "resource_id": s.resource_id,
        "timestamp": store::iso_naive(s.ts),
        "recorded_at": store::iso_naive(s.recorded_at),
        "source": s.source,
        "metadata": s.metadata,
    })
}

async fn meter_samples(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:get_samples", ctx.project_id.as_deref())?;
    let (conds, scope) = scoped(&svc, &ctx, &params)?;
    let limit = limit(&params)?;
    require_meter(&svc, &name, &scope).await?;
    let samples = store::samples::query(&svc.db, &with_meter(conds, &name, &scope), limit).await?;
    ok(samples.iter().map(old_sample).collect())
}

/// One posted `OldSample`, checked: the meter of the URL, a known type,
/// a number; project and user default to the caller's.
fn posted_sample(ctx: &AuthContext, is_admin: bool, name: &str, s: &Value) -> Result<Reading> {
    let field = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(n) = field("counter_name") {
        if n != name {
            return Err(Error::BadRequest(format!(
                "The metric name {n} in the sample does not match the meter {name} of the URL"
            )));
        }
    }
    let kind = field("counter_type")
        .as_deref()
        .and_then(MeterType::parse)
        .ok_or_else(|| Error::BadRequest("Invalid input for field/attribute counter_type. Value should be one of: gauge, delta, cumulative".into()))?;
    let volume = s["counter_volume"]
        .as_f64()
        .or_else(|| s["counter_volume"].as_str().and_then(|v| v.parse().ok()))
        .ok_or_else(|| {
            Error::BadRequest("Invalid input for field/attribute counter_volume.".into())
        })?;
    let resource_id = field("resource_id")
        .ok_or_else(|| Error::BadRequest("Mandatory field missing: resource_id".into()))?;
    let project_id = field("project_id").or(ctx.project_id.clone());
    if !is_admin && project_id != ctx.project_id {
        return Err(Error::Unauthorized(format!(
            "Not Authorized to access project {}",
            project_id.unwrap_or_default()
        )));
    }
    let ts = match field("timestamp") {
        Some(t) => store::parse_time(&t).ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid input for field/attribute timestamp. Value: '{t}'."
            ))
        })?,
        None => store::now_us(),
    };
    Ok(Reading {
        sample: Sample {
            id: uuid::Uuid::new_v4().to_string(),
            meter: name.to_owned(),
            kind,
            unit: field("counter_unit").unwrap_or_default(),
            volume,
            user_id: field("user_id").or(Some(ctx.user_id.clone())),
            project_id,
            resource_id,
            ts,
            recorded_at: 0,
            source: field("source").unwrap_or_else(|| {
                format!("{}:openstack", ctx.project_id.clone().unwrap_or_default())
            }),
            metadata: s.get("resource_metadata").cloned().unwrap_or(json!({})),
        },
        resource_type: "generic",
        attributes: Default::default(),
    })
}

async fn post_samples(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:create_samples", ctx.project_id.as_deref())?;
    let items = body.as_array().ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute samples. Value should be a list".into(),
        )
    })?;
    let is_admin = svc.scope(&ctx).is_none();
    let readings = items
        .iter()
        .map(|s| posted_sample(&ctx, is_admin, &name, s))
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<String> = readings.iter().map(|r| r.sample.id.clone()).collect();
    svc.record(vec![Batch {
        message_id: None,
        readings,
    }])
    .await?;
    let mut out = Vec::new();
    for id in ids {
        let c = Cond {
            field: Field::MessageId,
            op: Op::Eq,
            value: QValue::Str(id),
        };
        out.extend(
            store::samples::query(&svc.db, &[c], Some(1))
                .await?
                .iter()
                .map(old_sample),
        );
    }
    ok(Value::Array(out))
}

async fn statistics(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    svc.authorize(
        &ctx,
        "telemetry:compute_statistics",
        ctx.project_id.as_deref(),
    )?;
    let (conds, scope) = scoped(&svc, &ctx, &params)?;
    let period = match query::single(&params, "period") {
        None | Some("") => 0,
        Some(p) => p.parse::<i64>().map_err(|_| {
            Error::BadRequest(format!(
                "Invalid input for field/attribute period. Value: '{p}'. unable to convert to int"
            ))
        })?,
    };
    let groupby: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "groupby")
        .map(|(_, v)| v.clone())
        .collect();
    let groupby = GroupBy::parse(&groupby)?;
    require_meter(&svc, &name, &scope).await?;
    let q = StatsQuery {
        meter: name,
        conds,
        period,
        groupby,
        scope,
    };
    ok(Value::Array(stats::statistics(&svc, &q).await?))
}

async fn list_samples(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:get_samples", ctx.project_id.as_deref())?;
    let (mut conds, scope) = scoped(&svc, &ctx, &params)?;
    let limit = limit(&params)?;
    if let Some(p) = &scope {
        conds.push(Cond {
            field: Field::ProjectId,
            op: Op::Eq,
            value: QValue::Str(p.clone()),
        });
    }
    let samples = store::samples::query(&svc.db, &conds, limit).await?;
    ok(samples.iter().map(sample_view).collect())
}

async fn show_sample(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:get_sample", ctx.project_id.as_deref())?;
    let scope = svc.scope(&ctx);
    let c = Cond {
        field: Field::MessageId,
        op: Op::Eq,
        value: QValue::Str(id.clone()),
    };
    let found = store::samples::query(&svc.db, &[c], Some(1)).await?;
    match found.first() {
        Some(s) if scope.is_none() || s.project_id == scope => ok(sample_view(s)),
        _ => Err(Error::NotFound(format!("Sample {id} Not Found"))),
    }
}

async fn resource_view(svc: &Svc, r: &store::resources::Resource) -> Result<Value> {
    let base = svc.config.public_url(svc.config.telemetry.metering_port);
    let rid = &r.original_resource_id;
    let mut links = vec![json!({"href": format!("{base}/v2/resources/{rid}"), "rel": "self"})];
    for m in store::metrics::of_resource(&svc.db, &r.id).await? {
        if m.meter_type.is_none() {
            continue;
        }
        let name = m.name.unwrap_or_default();
        links.push(json!({
            "href": format!("{base}/v2/meters/{name}?q.field=resource_id&q.value={rid}"),
            "rel": name,
        }));
    }
    Ok(json!({
        "resource_id": rid,
        "project_id": r.project_id,
        "user_id": r.user_id,
        "source": crate::meters::SOURCE,
        "first_sample_timestamp": r.first_sample.map(store::iso_naive),
        "last_sample_timestamp": r.last_sample.map(store::iso_naive),
        "metadata": r.metadata,
        "links": links,
    }))
}

async fn list_resources(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(params): Query,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:get_resources", ctx.project_id.as_deref())?;
    let (conds, scope) = scoped(&svc, &ctx, &params)?;
    let mut out = Vec::new();
    for r in store::resources::list(&svc.db, None, scope.as_deref()).await? {
        if r.first_sample.is_none() {
            continue;
        }
        let doc = resource_view(&svc, &r).await?;
        let in_range = conds.iter().all(|c| match c.time() {
            Some(t) => {
                let last = r.last_sample.unwrap_or(0);
                let first = r.first_sample.unwrap_or(0);
                match c.op {
                    Op::Ge | Op::Gt => last >= t,
                    Op::Lt | Op::Le => first <= t,
                    _ => true,
                }
            }
            None => cond_matches_doc(c, &doc),
        });
        if in_range {
            out.push(doc);
        }
    }
    ok(Value::Array(out))
}

async fn show_resource(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:get_resource", ctx.project_id.as_deref())?;
    let scope = svc.scope(&ctx);
    let uuid = store::resources::resource_uuid(&id);
    match store::resources::find(&svc.db, &uuid).await? {
        Some(r) if r.first_sample.is_some() && (scope.is_none() || r.project_id == scope) => {
            ok(resource_view(&svc, &r).await?)
        }
        _ => Err(Error::NotFound(format!("Resource {id} Not Found"))),
    }
}
