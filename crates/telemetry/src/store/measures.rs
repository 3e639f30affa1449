//! Rollups: one row per (metric, granularity, bucket) holding count, sum,
//! sum of squares, min, max, first and last. A batch of measures is folded
//! in memory per bucket first (the buckets of every metric of a batch
//! together), then written by multi-row upserts that insert new buckets and
//! merge into existing ones, so a measure costs O(granularities) row writes
//! and a query reads only the rows of its range at one granularity.
//!
//! A policy with `rate:*` methods also keeps the series of differences of
//! consecutive measures (`rate_rollups`), stamped with the later measure's
//! time, as Gnocchi's `rate:*` methods aggregate; the last measure folded
//! in (`metric_heads`) links one batch's differences to the next.

use super::sqlite::{err, Arg, Tx};
use crate::archive::{Aggregation, ArchivePolicy};
use ferrostack_core::Result;
use ferrostack_db::{Db, DbResultExt};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// The aggregate state of one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Acc {
    pub count: i64,
    pub sum: f64,
    pub sumsq: f64,
    pub min: f64,
    pub max: f64,
    pub first_ts: i64,
    pub first: f64,
    pub last_ts: i64,
    pub last: f64,
}

impl Acc {
    pub fn one(ts: i64, v: f64) -> Acc {
        Acc {
            count: 1,
            sum: v,
            sumsq: v * v,
            min: v,
            max: v,
            first_ts: ts,
            first: v,
            last_ts: ts,
            last: v,
        }
    }

    pub fn merge(&mut self, o: &Acc) {
        self.count += o.count;
        self.sum += o.sum;
        self.sumsq += o.sumsq;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if o.first_ts < self.first_ts {
            self.first_ts = o.first_ts;
            self.first = o.first;
        }
        if o.last_ts >= self.last_ts {
            self.last_ts = o.last_ts;
            self.last = o.last;
        }
    }

    /// The value of one aggregation method; `None` where it is undefined
    /// (the sample standard deviation of one point).
    pub fn value(&self, a: Aggregation) -> Option<f64> {
        let n = self.count as f64;
        Some(match a {
            Aggregation::Mean => self.sum / n,
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            Aggregation::Sum => self.sum,
            Aggregation::Count => n,
            Aggregation::First => self.first,
            Aggregation::Last => self.last,
            Aggregation::Std => {
                if self.count < 2 {
                    return None;
                }
                ((self.sumsq - self.sum * self.sum / n) / (n - 1.0))
                    .max(0.0)
                    .sqrt()
            }
        })
    }
}

/// Which series of a metric: its measures or the differences between
/// consecutive measures (`rate:*` methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    Measures,
    Rates,
}

impl Series {
    fn table(self) -> &'static str {
        match self {
            Series::Measures => "rollups",
            Series::Rates => "rate_rollups",
        }
    }

    pub fn of(rate: bool) -> Series {
        if rate {
            Series::Rates
        } else {
            Series::Measures
        }
    }
}

/// The measures of one metric to fold in, under its archive policy.
pub struct MetricPoints<'a> {
    pub metric: &'a str,
    pub policy: &'a ArchivePolicy,
    /// (microseconds, value), in any order.
    pub points: &'a [(i64, f64)],
}

/// Fold `points` (microseconds, value) into the rollups of `metric` at
/// every level of `policy`; see [`add_many`].
pub async fn add(
    conn: &mut Tx<'_>,
    db: &Db,
    metric: &str,
    policy: &ArchivePolicy,
    points: &[(i64, f64)],
) -> Result<usize> {
    let one = MetricPoints {
        metric,
        policy,
        points,
    };
    add_many(conn, db, &[one]).await
}

/// Fold the points of many metrics into their rollups at every level of
/// their policies (and their differences into the rate rollups when the
/// policy keeps `rate:*` methods); as Gnocchi, a level keeps the timespan
/// before the newest point (not before the present: measures of 2015
/// posted today are kept), so points further back than that are not kept
/// at that level. Runs in the caller's transaction. The buckets of all
/// metrics are folded in memory first and written by multi-row upserts:
/// a few statements per batch, not several per metric (each statement is
/// a round trip to SQLite's worker thread; per-metric statements were
/// a third of the ingest time in `bench/telemetry.sh`).
pub async fn add_many(conn: &mut Tx<'_>, db: &Db, batch: &[MetricPoints<'_>]) -> Result<usize> {
    let rated: Vec<&str> = batch
        .iter()
        .filter(|m| m.policy.has_rates())
        .map(|m| m.metric)
        .collect();
    let heads = read_heads(conn, db, &rated).await?;
    let mut measures: Vec<BucketRow> = Vec::new();
    let mut rates: Vec<BucketRow> = Vec::new();
    let mut new_heads: Vec<(&str, (i64, f64))> = Vec::new();
    for m in batch {
        measures.extend(rows_of(m.metric, buckets(m.policy, m.points)));
        if m.policy.has_rates() {
            let (diffs, head) = differences(heads.get(m.metric).copied(), m.points);
            if let Some(head) = head {
                new_heads.push((m.metric, head));
            }
            rates.extend(rows_of(m.metric, buckets(m.policy, &diffs)));
        }
    }
    write_heads(conn, db, &new_heads).await?;
    let n = measures.len() + rates.len();
    upsert_buckets(conn, db, Series::Measures, &measures).await?;
    upsert_buckets(conn, db, Series::Rates, &rates).await?;
    Ok(n)
}

/// One rollup row to fold in: (metric, granularity, bucket, state).
type BucketRow<'a> = (&'a str, i64, i64, Acc);

fn rows_of(
    metric: &str,
    buckets: BTreeMap<(i64, i64), Acc>,
) -> impl Iterator<Item = BucketRow<'_>> {
    buckets
        .into_iter()
        .map(move |((g, b), a)| (metric, g, b, a))
}

/// A measure: (timestamp, value).
type Point = (i64, f64);

/// The differences of `points` (sorted, after the metric's last folded
/// measure `head`, which they continue from) and the new head, if any.
/// Measures at or before the head are late for the rate series and only
/// count in the measures'.
fn differences(head: Option<Point>, points: &[Point]) -> (Vec<Point>, Option<Point>) {
    let mut sorted: Vec<(i64, f64)> = points
        .iter()
        .copied()
        .filter(|(ts, v)| v.is_finite() && head.is_none_or(|(h, _)| *ts > h))
        .collect();
    sorted.sort_by_key(|p| p.0);
    (chain(head, &sorted), sorted.last().copied())
}

/// Consecutive differences of time-ordered points continuing `head`.
fn chain(head: Option<(i64, f64)>, sorted: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut prev = head;
    let mut out = Vec::with_capacity(sorted.len());
    for &(ts, v) in sorted {
        if let Some((pts, pv)) = prev {
            if ts > pts {
                out.push((ts, v - pv));
            }
        }
        prev = Some((ts, v));
    }
    out
}

/// Rows per multi-row statement: 12 parameters a row stays under every
/// engine's cap on bound parameters (the bundled SQLite's 32,766,
/// PostgreSQL's and MySQL's 65,535).
const ROWS_PER_STATEMENT: usize = 1000;

/// The last folded measure of each of `metrics`.
async fn read_heads(
    tx: &mut Tx<'_>,
    db: &Db,
    metrics: &[&str],
) -> Result<std::collections::HashMap<String, (i64, f64)>> {
    let mut out = std::collections::HashMap::new();
    for chunk in metrics.chunks(ROWS_PER_STATEMENT) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql =
            format!("SELECT metric_id, ts, value FROM metric_heads WHERE metric_id IN ({marks})");
        let args: Vec<Arg> = chunk.iter().map(|m| Arg::from(*m)).collect();
        let rows = tx
            .fetch(db, &sql, &args, |r| {
                (r.str("metric_id"), r.int("ts"), r.real("value"))
            })
            .await?;
        for (metric, ts, value) in rows {
            out.insert(metric, (ts, value));
        }
    }
    Ok(out)
}

/// `col` of the row an upsert proposed: `excluded.col`, MySQL's `VALUES(col)`.
fn proposed(db: &Db, col: &str) -> String {
    match db.backend {
        ferrostack_db::Backend::MySql => format!("VALUES({col})"),
        _ => format!("excluded.{col}"),
    }
}

/// `INSERT … VALUES …` followed by the engine's "on a duplicate `key`,
/// set" clause.
fn upsert_sql(db: &Db, insert: &str, key: &str, sets: &str) -> String {
    match db.backend {
        ferrostack_db::Backend::MySql => format!("{insert} ON DUPLICATE KEY UPDATE {sets}"),
        _ => format!("{insert} ON CONFLICT ({key}) DO UPDATE SET {sets}"),
    }
}

/// Move the heads of the rate series to their new last measures.
async fn write_heads(tx: &mut Tx<'_>, db: &Db, heads: &[(&str, (i64, f64))]) -> Result<()> {
    let sets = format!(
        "ts = {}, value = {}",
        proposed(db, "ts"),
        proposed(db, "value")
    );
    let conn = match tx {
        Tx::Sqlite(conn) => conn,
        Tx::Any(conn) => return write_heads_any(conn, db, heads, &sets).await,
    };
    let insert = "INSERT INTO metric_heads (metric_id, ts, value) VALUES (?, ?, ?)";
    let sql = upsert_sql(db, insert, "metric_id", &sets);
    let mut q = conn.prepare_cached(&sql).map_err(err)?;
    for (metric, (ts, value)) in heads {
        q.execute((metric, ts, value)).map_err(err)?;
    }
    Ok(())
}

/// [`write_heads`] through sqlx, many rows per statement.
async fn write_heads_any(
    conn: &mut AnyConnection,
    db: &Db,
    heads: &[(&str, (i64, f64))],
    sets: &str,
) -> Result<()> {
    for chunk in heads.chunks(ROWS_PER_STATEMENT) {
        let marks = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let insert = format!("INSERT INTO metric_heads (metric_id, ts, value) VALUES {marks}");
        let text = upsert_sql(db, &insert, "metric_id", sets);
        let sql = db.sql(&text);
        let mut q = sqlx::query(&sql);
        for (metric, (ts, value)) in chunk {
            q = q.bind(*metric).bind(*ts).bind(*value);
        }
        q.execute(&mut *conn).await.db()?;
    }
    Ok(())
}

/// The buckets `points` fall in at every level of `policy`, folded.
fn buckets(policy: &ArchivePolicy, points: &[(i64, f64)]) -> BTreeMap<(i64, i64), Acc> {
    let mut buckets: BTreeMap<(i64, i64), Acc> = BTreeMap::new();
    let newest = points.iter().map(|p| p.0).max().unwrap_or(0);
    for level in &policy.definition {
        let g_us = level.granularity * 1_000_000;
        let oldest = newest - level.timespan * 1_000_000;
        for &(ts, v) in points
            .iter()
            .filter(|(ts, v)| *ts >= oldest && v.is_finite())
        {
            let bucket = ts.div_euclid(g_us) * level.granularity;
            buckets
                .entry((level.granularity, bucket))
                .and_modify(|a| a.merge(&Acc::one(ts, v)))
                .or_insert_with(|| Acc::one(ts, v));
        }
    }
    buckets
}

/// The "fold into the stored row" half of the rollup upsert. The first
/// and last values are set before their times: MySQL evaluates the
/// assignments in order, each seeing the ones before.
fn merge_sets(db: &Db, table: &str) -> String {
    let n = |c: &str| proposed(db, c);
    let t = table;
    format!(
        "cnt = {t}.cnt + {cnt}, total = {t}.total + {total}, sumsq = {t}.sumsq + {sumsq}, \
         vmin = CASE WHEN {t}.vmin < {vmin} THEN {t}.vmin ELSE {vmin} END, \
         vmax = CASE WHEN {t}.vmax > {vmax} THEN {t}.vmax ELSE {vmax} END, \
         first_v = CASE WHEN {t}.first_ts <= {first_ts} THEN {t}.first_v ELSE {first_v} END, \
         first_ts = CASE WHEN {t}.first_ts <= {first_ts} THEN {t}.first_ts ELSE {first_ts} END, \
         last_v = CASE WHEN {t}.last_ts > {last_ts} THEN {t}.last_v ELSE {last_v} END, \
         last_ts = CASE WHEN {t}.last_ts > {last_ts} THEN {t}.last_ts ELSE {last_ts} END",
        cnt = n("cnt"),
        total = n("total"),
        sumsq = n("sumsq"),
        vmin = n("vmin"),
        vmax = n("vmax"),
        first_ts = n("first_ts"),
        first_v = n("first_v"),
        last_ts = n("last_ts"),
        last_v = n("last_v"),
    )
}

/// The columns of a rollup row, in the order they are bound.
const ROLLUP_COLUMNS: &str =
    "metric_id, granularity, bucket, cnt, total, sumsq, vmin, vmax, first_ts, first_v, last_ts, last_v";

/// Fold bucket rows into `series`' table: new ones inserted, existing
/// ones merged. Each (metric, granularity, bucket) appears once in `rows`
/// (PostgreSQL refuses to update a row twice in one statement).
async fn upsert_buckets(
    tx: &mut Tx<'_>,
    db: &Db,
    series: Series,
    rows: &[BucketRow<'_>],
) -> Result<()> {
    let table = series.table();
    let sets = merge_sets(db, table);
    let conn = match tx {
        Tx::Sqlite(conn) => conn,
        Tx::Any(conn) => return upsert_buckets_any(conn, db, table, &sets, rows).await,
    };
    let insert = format!(
        "INSERT INTO {table} ({ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    let sql = upsert_sql(db, &insert, "metric_id, granularity, bucket", &sets);
    let mut q = conn.prepare_cached(&sql).map_err(err)?;
    for (metric, g, bucket, a) in rows {
        q.execute(rusqlite::params![
            metric, g, bucket, a.count, a.sum, a.sumsq, a.min, a.max, a.first_ts, a.first,
            a.last_ts, a.last
        ])
        .map_err(err)?;
    }
    Ok(())
}

/// [`upsert_buckets`] through sqlx, many rows per statement.
async fn upsert_buckets_any(
    conn: &mut AnyConnection,
    db: &Db,
    table: &str,
    sets: &str,
    rows: &[BucketRow<'_>],
) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let marks = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let insert = format!("INSERT INTO {table} ({ROLLUP_COLUMNS}) VALUES {marks}");
        let text = upsert_sql(db, &insert, "metric_id, granularity, bucket", sets);
        let sql = db.sql(&text);
        let mut q = sqlx::query(&sql);
        for (metric, g, bucket, a) in chunk {
            q = q
                .bind(*metric)
                .bind(*g)
                .bind(*bucket)
                .bind(a.count)
                .bind(a.sum)
                .bind(a.sumsq)
                .bind(a.min)
                .bind(a.max)
                .bind(a.first_ts)
                .bind(a.first)
                .bind(a.last_ts)
                .bind(a.last);
        }
        q.execute(&mut *conn).await.db()?;
    }
    Ok(())
}

/// One bucket of one metric.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub metric_id: String,
    /// Seconds since the epoch of the bucket's start.
    pub start: i64,
    pub acc: Acc,
}

/// The buckets of `metrics` at `granularity` with `from <= start < to`
/// (seconds), in time order.
pub async fn read(
    db: &Db,
    series: Series,
    metrics: &[String],
    granularity: i64,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<Bucket>> {
    let mut out = Vec::new();
    for m in metrics {
        for (start, acc) in read_one(db, series, m, granularity, from, to).await? {
            out.push(Bucket {
                metric_id: m.clone(),
                start,
                acc,
            });
        }
    }
    out.sort_by_key(|b| b.start);
    Ok(out)
}

/// One metric's buckets (start in seconds, state) at `granularity` with
/// `from <= start < to`, in time order: a range of the primary key, the
/// columns by position (a month of hourly buckets for a hundred metrics
/// is 72,000 rows; decoding by name was a third of the statistics' time).
pub async fn read_one(
    db: &Db,
    series: Series,
    metric: &str,
    granularity: i64,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<(i64, Acc)>> {
    let sql = format!(
        "SELECT bucket, cnt, total, sumsq, vmin, vmax, first_ts, first_v, last_ts, last_v FROM {} \
         WHERE metric_id = ? AND granularity = ? AND bucket >= ? AND bucket < ? ORDER BY bucket",
        series.table()
    );
    let rows = sqlx::query(&db.sql(&sql))
        .bind(metric)
        .bind(granularity)
        .bind(from.unwrap_or(i64::MIN))
        .bind(to.unwrap_or(i64::MAX))
        .fetch_all(&db.pool)
        .await
        .db()?;
    Ok(rows.iter().map(|r| decode(r, true)).collect())
}

/// How summed buckets are grouped: into periods of `length` seconds from
/// `start`, or (`length` 0) into one period starting at `start`.
#[derive(Clone, Copy, Debug)]
pub struct Periods {
    pub start: i64,
    pub length: i64,
}

impl Periods {
    /// The start of the period holding `bucket` (at or after `start`).
    fn of(self, bucket: i64) -> i64 {
        if self.length == 0 {
            self.start
        } else {
            self.start + (bucket - self.start).div_euclid(self.length) * self.length
        }
    }
}

/// The buckets of several metrics at `granularity` with `from <= start <
/// to` (seconds), summed per period of `periods` by the database, in time
/// order: one row per period instead of one per metric and bucket (a
/// month of hourly statistics over 100 resources decoded 72,000 rows;
/// summed, 720), and no folding on the async runtime. Buckets before
/// `periods.start` are not asked for (the start is the range's). The
/// first and last *values* are not kept (NaN): statistics show counts,
/// sums, extremes and the first and last times only.
pub async fn read_summed(
    db: &Db,
    series: Series,
    metrics: &[&str],
    granularity: i64,
    range: (Option<i64>, Option<i64>),
    periods: Periods,
) -> Result<Vec<(i64, Acc)>> {
    let mut summed: BTreeMap<i64, Acc> = BTreeMap::new();
    for part in metrics.chunks(ROWS_PER_STATEMENT) {
        let rows = read_summed_part(db, series, part, granularity, range, periods).await?;
        for (start, acc) in rows {
            fold_into(&mut summed, start, acc);
        }
    }
    Ok(summed.into_iter().collect())
}

fn fold_into(summed: &mut BTreeMap<i64, Acc>, start: i64, acc: Acc) {
    summed
        .entry(start)
        .and_modify(|a| a.merge(&acc))
        .or_insert(acc);
}

/// [`read_summed`] on a typed SQLite connection: each metric's range of
/// the primary key read in key order and folded into its periods as
/// SQLite yields the rows. A `GROUP BY` of the period made SQLite sort
/// every row first (a month of hourly rows of 100 metrics: 72,000), most
/// of the query's time; here no row is sorted or decoded twice.
/// Blocking.
pub fn read_summed_sqlite(
    conn: &rusqlite::Connection,
    series: Series,
    metrics: &[String],
    granularity: i64,
    (from, to): (Option<i64>, Option<i64>),
    periods: Periods,
) -> Result<Vec<(i64, Acc)>> {
    let sql = format!(
        "SELECT bucket, cnt, total, sumsq, vmin, vmax, first_ts, last_ts FROM {} \
         WHERE metric_id = ? AND granularity = ? AND bucket >= ? AND bucket < ?",
        series.table()
    );
    let mut q = conn.prepare_cached(&sql).map_err(err)?;
    let (from, to) = (from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX));
    let mut summed: BTreeMap<i64, Acc> = BTreeMap::new();
    for m in metrics {
        let mut rows = q.query((m, granularity, from, to)).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let row = |r: &rusqlite::Row| -> rusqlite::Result<(i64, Acc)> {
                let acc = Acc {
                    count: r.get(1)?,
                    sum: r.get(2)?,
                    sumsq: r.get(3)?,
                    min: r.get(4)?,
                    max: r.get(5)?,
                    first_ts: r.get(6)?,
                    first: f64::NAN,
                    last_ts: r.get(7)?,
                    last: f64::NAN,
                };
                Ok((r.get(0)?, acc))
            };
            let (bucket, acc) = row(r).map_err(err)?;
            fold_into(&mut summed, periods.of(bucket), acc);
        }
    }
    Ok(summed.into_iter().collect())
}

/// One statement of [`read_summed`]: `metrics` (at most
/// [`ROWS_PER_STATEMENT`]) summed per period.
async fn read_summed_part(
    db: &Db,
    series: Series,
    metrics: &[&str],
    granularity: i64,
    (from, to): (Option<i64>, Option<i64>),
    periods: Periods,
) -> Result<Vec<(i64, Acc)>> {
    let (int, div) = match db.backend {
        ferrostack_db::Backend::MySql => ("SIGNED", "DIV"),
        _ => ("BIGINT", "/"),
    };
    let key = if periods.length == 0 {
        format!("CAST(? AS {int})")
    } else {
        format!("? + ((bucket - ?) {div} ?) * ?")
    };
    let marks = vec!["?"; metrics.len()].join(", ");
    let sql = format!(
        "SELECT {key}, CAST(SUM(cnt) AS {int}), SUM(total), SUM(sumsq), MIN(vmin), MAX(vmax), \
         CAST(MIN(first_ts) AS {int}), CAST(MAX(last_ts) AS {int}) FROM {} \
         WHERE granularity = ? AND bucket >= ? AND bucket < ? AND metric_id IN ({marks}) \
         GROUP BY 1",
        series.table()
    );
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql).bind(periods.start);
    if periods.length != 0 {
        q = q
            .bind(periods.start)
            .bind(periods.length)
            .bind(periods.length);
    }
    q = q
        .bind(granularity)
        .bind(from.unwrap_or(i64::MIN))
        .bind(to.unwrap_or(i64::MAX));
    for m in metrics {
        q = q.bind(*m);
    }
    let rows = q.fetch_all(&db.pool).await.db()?;
    Ok(rows.iter().map(|r| decode(r, false)).collect())
}

/// A row of [`read_one`]'s columns (`values`: bucket, the counts and sums,
/// first time and value, last time and value) or of [`read_summed`]'s
/// (the same without the first and last values, which are NaN), by
/// position (decoding by name was a third of the statistics' time).
fn decode(r: &AnyRow, values: bool) -> (i64, Acc) {
    let i = |n: usize| r.try_get::<i64, _>(n).unwrap_or(0);
    let f = |n: usize| r.try_get::<f64, _>(n).unwrap_or(0.0);
    let (first, last_ts, last) = if values {
        (f(7), i(8), f(9))
    } else {
        (f64::NAN, i(7), f64::NAN)
    };
    let acc = Acc {
        count: i(1),
        sum: f(2),
        sumsq: f(3),
        min: f(4),
        max: f(5),
        first_ts: i(6),
        first,
        last_ts,
        last,
    };
    (i(0), acc)
}

/// Drop the buckets of `metric` a level's timespan no longer covers,
/// counted back from the level's newest bucket (Gnocchi's retention).
pub async fn trim(db: &Db, metric: &str, policy: &ArchivePolicy) -> Result<u64> {
    let mut n = 0;
    for table in ["rollups", "rate_rollups"] {
        let newest = format!(
            "SELECT MAX(bucket) AS newest FROM {table} WHERE metric_id = ? AND granularity = ?"
        );
        let newest = db.sql(&newest);
        let text =
            format!("DELETE FROM {table} WHERE metric_id = ? AND granularity = ? AND bucket < ?");
        let sql = db.sql(&text);
        for level in &policy.definition {
            let top = sqlx::query(&newest)
                .bind(metric)
                .bind(level.granularity)
                .fetch_one(&db.pool)
                .await
                .db()?
                .try_get::<Option<i64>, _>("newest")
                .ok()
                .flatten();
            let Some(top) = top else { continue };
            n += sqlx::query(&sql)
                .bind(metric)
                .bind(level.granularity)
                .bind(top + level.granularity - level.timespan)
                .execute(&db.pool)
                .await
                .db()?
                .rows_affected();
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_buckets_give_gnocchis_aggregates() {
        let mut a = Acc::one(10, 2.0);
        a.merge(&Acc::one(5, 4.0));
        a.merge(&Acc::one(20, 6.0));
        assert_eq!(a.value(Aggregation::Mean), Some(4.0));
        assert_eq!(a.value(Aggregation::First), Some(4.0));
        assert_eq!(a.value(Aggregation::Last), Some(6.0));
        assert_eq!(a.value(Aggregation::Std), Some(2.0));
        assert_eq!(Acc::one(1, 1.0).value(Aggregation::Std), None);
    }

    #[test]
    fn periods_count_from_the_range_start() {
        let tens = Periods {
            start: 100,
            length: 600,
        };
        assert_eq!((tens.of(100), tens.of(699), tens.of(700)), (100, 100, 700));
        let whole = Periods {
            start: 100,
            length: 0,
        };
        assert_eq!(whole.of(5000), 100);
    }

    #[test]
    fn differences_continue_from_the_head_and_skip_late_points() {
        assert_eq!(
            chain(Some((10, 5.0)), &[(20, 8.0), (30, 8.0), (40, 2.0)]),
            vec![(20, 3.0), (30, 0.0), (40, -6.0)]
        );
        assert_eq!(chain(None, &[(1, 1.0), (2, 4.0)]), vec![(2, 3.0)]);
        assert!(chain(None, &[(1, 1.0)]).is_empty());
    }
}
