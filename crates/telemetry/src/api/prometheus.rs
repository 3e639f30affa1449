//! `GET /metrics`: the latest value of every metric in Prometheus' text
//! exposition, named as OpenStack's Ceilometer Prometheus publisher names
//! them (`ceilometer_` + the meter with dots as underscores) with the
//! `project_id`, `user_id`, `resource_id` and `unit` labels. Admin only:
//! it spans every project.

use super::Svc;
use crate::archive::Aggregation;
use crate::store;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::Result;
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new().route("/metrics", get(exposition))
}

fn name_of(meter: &str) -> String {
    let cleaned: String = meter
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("ceilometer_{cleaned}")
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn exposition(State(svc): State<Svc>, Authenticated(ctx): Authenticated) -> Result<Response> {
    svc.authorize(&ctx, "telemetry:prometheus", None)?;
    let mut families: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for (m, o) in store::metrics::list_with_owner(&svc.db, None).await? {
        let (Some(meter), Some(policy)) = (
            m.name.as_deref(),
            svc.archive_policy(&m.archive_policy_name),
        ) else {
            continue;
        };
        let Some(finest) = policy.definition.first() else {
            continue;
        };
        let buckets = store::measures::read(
            &svc.db,
            store::measures::Series::Measures,
            std::slice::from_ref(&m.id),
            finest.granularity,
            None,
            None,
        )
        .await?;
        let Some(last) = buckets.last() else { continue };
        let kind = match m.meter_type.as_deref() {
            Some("cumulative") => "counter",
            _ => "gauge",
        };
        let line = format!(
            "{}{{project_id=\"{}\",user_id=\"{}\",resource_id=\"{}\",unit=\"{}\"}} {} {}",
            name_of(meter),
            label(o.project_id.as_deref().unwrap_or_default()),
            label(o.user_id.as_deref().unwrap_or_default()),
            label(o.original_resource_id.as_deref().unwrap_or_default()),
            label(m.unit.as_deref().unwrap_or_default()),
            last.acc.value(Aggregation::Last).unwrap_or(0.0),
            last.acc.last_ts / 1000,
        );
        families
            .entry(name_of(meter))
            .or_insert_with(|| (kind.to_owned(), Vec::new()))
            .1
            .push(line);
    }
    let mut body = String::new();
    for (name, (kind, lines)) in families {
        let _ = writeln!(body, "# TYPE {name} {kind}");
        for l in lines {
            let _ = writeln!(body, "{l}");
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}
