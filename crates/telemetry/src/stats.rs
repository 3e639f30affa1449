//! Ceilometer's statistics (`/v2/meters/{name}/statistics`) over the
//! rollups when the query allows it — conditions only on resource,
//! project, user, source and time, a period that is a multiple of a
//! granularity whose timespan covers the range — else over raw samples.
//! The rollup path reads one row per metric and bucket of the range, so a
//! month costs what the number of buckets costs, not the samples behind
//! them. Periods start at the range start aligned down to the granularity
//! (Ceilometer starts them at the first sample).

use crate::query::{Cond, Field, Op};
use crate::service::TelemetryService;
use crate::store::{
    self,
    measures::Acc,
    metrics::{Metric, Owner},
};
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupBy {
    ResourceId,
    ProjectId,
    UserId,
    Source,
}

impl GroupBy {
    pub fn parse(fields: &[String]) -> Result<Vec<GroupBy>> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for f in fields {
            match f.as_str() {
                "resource_id" => out.push(GroupBy::ResourceId),
                "project_id" => out.push(GroupBy::ProjectId),
                "user_id" => out.push(GroupBy::UserId),
                "source" => out.push(GroupBy::Source),
                other => bad.push(format!("'{other}'")),
            }
        }
        if !bad.is_empty() {
            return Err(Error::BadRequest(format!(
                "Unknown argument: \"{}\": Invalid groupby fields",
                bad.join(", ")
            )));
        }
        Ok(out)
    }

    fn name(self) -> &'static str {
        match self {
            GroupBy::ResourceId => "resource_id",
            GroupBy::ProjectId => "project_id",
            GroupBy::UserId => "user_id",
            GroupBy::Source => "source",
        }
    }
}

/// What one statistics request asks.
pub struct StatsQuery {
    pub meter: String,
    pub conds: Vec<Cond>,
    /// Seconds; 0 for one period over the whole range.
    pub period: i64,
    pub groupby: Vec<GroupBy>,
    /// The caller's project when not an admin.
    pub scope: Option<String>,
}

type Key = (Vec<Option<String>>, i64);

/// The statistics' states: per group (in order) its periods (in order).
type Folded = Vec<(Vec<Option<String>>, Vec<(i64, Acc)>)>;

struct Owned<'a> {
    resource_id: &'a str,
    project_id: Option<&'a str>,
    user_id: Option<&'a str>,
    source: &'a str,
}

fn group_of(g: &[GroupBy], o: &Owned) -> Vec<Option<String>> {
    g.iter()
        .map(|k| match k {
            GroupBy::ResourceId => Some(o.resource_id.to_owned()),
            GroupBy::ProjectId => o.project_id.map(str::to_owned),
            GroupBy::UserId => o.user_id.map(str::to_owned),
            GroupBy::Source => Some(o.source.to_owned()),
        })
        .collect()
}

fn owner_matches(conds: &[Cond], o: &Owned) -> bool {
    conds.iter().all(|c| {
        let have = match c.field {
            Field::ResourceId => Some(o.resource_id),
            Field::ProjectId => o.project_id,
            Field::UserId => o.user_id,
            Field::Source => Some(o.source),
            _ => return true,
        };
        let want = c.text().unwrap_or_default();
        c.op.holds(have.unwrap_or_default().cmp(want))
    })
}

fn bounds(conds: &[Cond]) -> (Option<i64>, Option<i64>) {
    let mut from = None;
    let mut to = None;
    for c in conds {
        if let Some(t) = c.time() {
            match c.op {
                Op::Ge => from = Some(t),
                Op::Gt => from = Some(t + 1),
                Op::Lt => to = Some(t),
                Op::Le => to = Some(t + 1),
                Op::Eq => {
                    from = Some(t);
                    to = Some(t + 1);
                }
                Op::Ne => {}
            }
        }
    }
    (from, to)
}

/// Compute the statistics of `q`, Ceilometer's `Statistics` documents.
pub async fn statistics(svc: &TelemetryService, q: &StatsQuery) -> Result<Vec<Value>> {
    if q.period < 0 {
        return Err(Error::BadRequest("Period must be positive.".into()));
    }
    let rollup_ok = q.conds.iter().all(|c| {
        matches!(
            c.field,
            Field::ResourceId
                | Field::ProjectId
                | Field::UserId
                | Field::Source
                | Field::Timestamp
                | Field::Meter
        ) && (c.field != Field::Timestamp || c.op != Op::Ne)
    });
    let metrics: Vec<(Metric, Owner)> = store::metrics::list_with_owner(&svc.db, Some(&q.meter))
        .await?
        .into_iter()
        .filter(|(_, o)| q.scope.is_none() || o.project_id == q.scope)
        .collect();
    let unit = metrics
        .first()
        .and_then(|(m, _)| m.unit.clone())
        .unwrap_or_default();
    let (from, to) = bounds(&q.conds);
    let folded = match (rollup_ok, granularity(svc, &metrics, q.period, from)) {
        (true, Some(g)) => from_rollups(svc, q, &metrics, g, from, to).await?,
        _ => by_group(from_samples(svc, q, from).await?),
    };
    // Thousands of documents for a grouped month: built off the runtime.
    let shape = Shape {
        period: q.period,
        groupby: q.groupby.clone(),
        unit,
        from,
        to,
    };
    tokio::task::spawn_blocking(move || {
        folded
            .iter()
            .flat_map(|(group, periods)| {
                periods
                    .iter()
                    .map(|(pstart, acc)| view(&shape, group, *pstart, acc))
            })
            .collect()
    })
    .await
    .map_err(|e| Error::Internal(format!("statistics: {e}")))
}

/// What every statistics document of one request shares.
struct Shape {
    period: i64,
    groupby: Vec<GroupBy>,
    unit: String,
    from: Option<i64>,
    to: Option<i64>,
}

/// The coarsest granularity every metric keeps that divides the period
/// and still covers `from`.
fn granularity(
    svc: &TelemetryService,
    metrics: &[(Metric, Owner)],
    period: i64,
    from: Option<i64>,
) -> Option<i64> {
    let now_s = store::now_us() / 1_000_000;
    let mut common: Option<Vec<(i64, i64)>> = None;
    for (m, _) in metrics {
        let p = svc.archive_policy(&m.archive_policy_name)?;
        let levels: Vec<(i64, i64)> = p
            .definition
            .iter()
            .map(|l| (l.granularity, l.timespan))
            .collect();
        common = Some(match common {
            None => levels,
            Some(c) => c.into_iter().filter(|l| levels.contains(l)).collect(),
        });
    }
    common?
        .into_iter()
        .filter(|(g, span)| {
            (period == 0 || period % g == 0)
                && from.is_some_and(|f| {
                    f / 1_000_000 >= now_s - span && (f / 1_000_000) % g == 0 && f % 1_000_000 == 0
                })
        })
        .map(|(g, _)| g)
        .max()
}

async fn from_rollups(
    svc: &TelemetryService,
    q: &StatsQuery,
    metrics: &[(Metric, Owner)],
    g: i64,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Folded> {
    let from_s = from.map(|f| f / 1_000_000);
    let to_s = to.map(|t| (t + 999_999) / 1_000_000);
    let start = from_s.unwrap_or(0);
    // The metrics of each group; the database sums a group's buckets.
    let mut members: BTreeMap<Vec<Option<String>>, Vec<&str>> = BTreeMap::new();
    for (m, o) in metrics {
        let owned = Owned {
            resource_id: o.original_resource_id.as_deref().unwrap_or_default(),
            project_id: o.project_id.as_deref(),
            user_id: o.user_id.as_deref(),
            source: crate::meters::SOURCE,
        };
        if owner_matches(&q.conds, &owned) {
            members
                .entry(group_of(&q.groupby, &owned))
                .or_default()
                .push(&m.id);
        }
    }
    let series = store::measures::Series::Measures;
    let periods = store::measures::Periods {
        start,
        length: q.period,
    };
    let range = (from_s, to_s);
    let Some(sqlite) = svc.sqlite.clone() else {
        let mut groups: Folded = Vec::new();
        for (key, ids) in members {
            let summed =
                store::measures::read_summed(&svc.db, series, &ids, g, range, periods).await?;
            if !summed.is_empty() {
                groups.push((key, summed));
            }
        }
        return Ok(groups);
    };
    // SQLite: every group read on one typed connection, off the runtime.
    let members: Vec<(Vec<Option<String>>, Vec<String>)> = members
        .into_iter()
        .map(|(key, ids)| (key, ids.into_iter().map(str::to_owned).collect()))
        .collect();
    let read = move || {
        sqlite.read(|conn| {
            let mut groups: Folded = Vec::new();
            for (key, ids) in members {
                let summed =
                    store::measures::read_summed_sqlite(conn, series, &ids, g, range, periods)?;
                if !summed.is_empty() {
                    groups.push((key, summed));
                }
            }
            Ok(groups)
        })
    };
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| Error::Internal(format!("statistics: {e}")))?
}

/// Folded states keyed by (group, period start) as [`Folded`].
fn by_group(map: BTreeMap<Key, Acc>) -> Folded {
    let mut out: Folded = Vec::new();
    for ((group, pstart), acc) in map {
        match out.last_mut() {
            Some((g, periods)) if *g == group => periods.push((pstart, acc)),
            _ => out.push((group, vec![(pstart, acc)])),
        }
    }
    out
}

async fn from_samples(
    svc: &TelemetryService,
    q: &StatsQuery,
    from: Option<i64>,
) -> Result<BTreeMap<Key, Acc>> {
    let mut conds = q.conds.clone();
    conds.push(Cond {
        field: Field::Meter,
        op: Op::Eq,
        value: crate::query::Value::Str(q.meter.clone()),
    });
    if let Some(p) = &q.scope {
        conds.push(Cond {
            field: Field::ProjectId,
            op: Op::Eq,
            value: crate::query::Value::Str(p.clone()),
        });
    }
    let samples = store::samples::query(&svc.db, &conds, None).await?;
    let start_us = from
        .or_else(|| samples.iter().map(|s| s.ts).min())
        .unwrap_or(0);
    let start = start_us.div_euclid(1_000_000);
    let mut out: BTreeMap<Key, Acc> = BTreeMap::new();
    for s in &samples {
        let owned = Owned {
            resource_id: &s.resource_id,
            project_id: s.project_id.as_deref(),
            user_id: s.user_id.as_deref(),
            source: &s.source,
        };
        let group = group_of(&q.groupby, &owned);
        let secs = s.ts.div_euclid(1_000_000);
        let pstart = if q.period == 0 {
            start
        } else {
            start + (secs - start).div_euclid(q.period) * q.period
        };
        let acc = Acc::one(s.ts, s.volume);
        out.entry((group, pstart))
            .and_modify(|a| a.merge(&acc))
            .or_insert(acc);
    }
    Ok(out)
}

fn view(q: &Shape, group: &[Option<String>], pstart: i64, acc: &Acc) -> Value {
    let (from, to, unit) = (q.from, q.to, &q.unit);
    let (period_start, period_end) = if q.period == 0 {
        (from.unwrap_or(acc.first_ts), to.unwrap_or(acc.last_ts))
    } else {
        (pstart * 1_000_000, (pstart + q.period) * 1_000_000)
    };
    let groupby = (!q.groupby.is_empty()).then(|| {
        q.groupby
            .iter()
            .zip(group)
            .map(|(k, v)| (k.name().to_owned(), json!(v)))
            .collect::<Map<String, Value>>()
    });
    json!({
        "avg": acc.sum / acc.count as f64,
        "count": acc.count,
        "sum": acc.sum,
        "min": acc.min,
        "max": acc.max,
        "duration": (acc.last_ts - acc.first_ts) as f64 / 1e6,
        "duration_start": store::iso_naive(acc.first_ts),
        "duration_end": store::iso_naive(acc.last_ts),
        "period": q.period,
        "period_start": store::iso_naive(period_start),
        "period_end": store::iso_naive(period_end),
        "unit": unit,
        "groupby": groupby,
    })
}
