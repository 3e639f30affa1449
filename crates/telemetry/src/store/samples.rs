//! Ceilometer's raw samples (kept `sample_retention_days`) and the message
//! ids of the notifications already turned into samples: both are written
//! in the transaction that records the samples, so a notification
//! delivered again (a restart, a redelivery) is never counted twice.

use super::sqlite::{err, Tx};
use crate::query::{Cond, Field, Op, Value as QValue};
use ferrostack_core::Result;
use ferrostack_db::{Db, DbResultExt, RowExt};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashSet;

/// Ceilometer's meter types: a reading, a change, or a running total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterType {
    Gauge,
    Delta,
    Cumulative,
}

impl MeterType {
    pub fn parse(s: &str) -> Option<MeterType> {
        match s {
            "gauge" => Some(MeterType::Gauge),
            "delta" => Some(MeterType::Delta),
            "cumulative" => Some(MeterType::Cumulative),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MeterType::Gauge => "gauge",
            MeterType::Delta => "delta",
            MeterType::Cumulative => "cumulative",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub id: String,
    pub meter: String,
    pub kind: MeterType,
    pub unit: String,
    pub volume: f64,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub resource_id: String,
    /// Microseconds since the epoch.
    pub ts: i64,
    pub recorded_at: i64,
    pub source: String,
    pub metadata: Value,
}

fn from_row(r: &AnyRow) -> Sample {
    Sample {
        id: r.str("id"),
        meter: r.str("meter"),
        kind: MeterType::parse(&r.str("type")).unwrap_or(MeterType::Gauge),
        unit: r.str("unit"),
        volume: r.try_get::<f64, _>("volume").unwrap_or(0.0),
        user_id: r.opt_str("user_id"),
        project_id: r.opt_str("project_id"),
        resource_id: r.str("resource_id"),
        ts: r.int("ts"),
        recorded_at: r.int("recorded_at"),
        source: r.str("source"),
        metadata: r.json("metadata"),
    }
}

/// Insert samples in bulk; the answer says, per sample, whether it was
/// new (a repeated id at the same time, stored before or earlier in
/// `samples`, is not).
pub async fn insert_many(tx: &mut Tx<'_>, db: &Db, samples: &[&Sample]) -> Result<Vec<bool>> {
    match tx {
        Tx::Any(conn) => insert_many_any(conn, db, samples).await,
        Tx::Sqlite(conn) => insert_many_sqlite(conn, samples),
    }
}

/// The INSERT of one sample row.
const INSERT: &str = "INSERT INTO samples (id, meter, type, unit, volume, user_id, project_id, resource_id, ts, recorded_at, source, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// [`insert_many`] on the SQLite writer: a statement prepared once,
/// a bind and a step per row. Repeats are looked up only when the batch's
/// time range holds stored samples at all (new samples arrive after the
/// stored ones), one seek of the `(ts, id)` index each.
fn insert_many_sqlite(conn: &rusqlite::Connection, samples: &[&Sample]) -> Result<Vec<bool>> {
    let lo = samples.iter().map(|s| s.ts).min().unwrap_or(0);
    let hi = samples.iter().map(|s| s.ts).max().unwrap_or(0);
    let overlaps: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM samples WHERE ts >= ? AND ts <= ?)")
        .and_then(|mut q| q.query_row((lo, hi), |r| r.get(0)))
        .map_err(err)?;
    let mut stored = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM samples WHERE ts = ? AND id = ?)")
        .map_err(err)?;
    let mut insert = conn.prepare_cached(INSERT).map_err(err)?;
    let mut seen: HashSet<(i64, &str)> = HashSet::with_capacity(samples.len());
    let mut fresh = Vec::with_capacity(samples.len());
    for s in samples {
        let new = seen.insert((s.ts, s.id.as_str()))
            && !(overlaps
                && stored
                    .query_row((s.ts, &s.id), |r| r.get::<_, bool>(0))
                    .map_err(err)?);
        if new {
            insert
                .execute(rusqlite::params![
                    s.id,
                    s.meter,
                    s.kind.as_str(),
                    s.unit,
                    s.volume,
                    s.user_id,
                    s.project_id,
                    s.resource_id,
                    s.ts,
                    s.recorded_at,
                    s.source,
                    s.metadata.to_string(),
                ])
                .map_err(err)?;
        }
        fresh.push(new);
    }
    Ok(fresh)
}

/// Rows per multi-row statement: 12 columns each stays under every
/// engine's cap on bound parameters (PostgreSQL's and MySQL's 65,535);
/// fewer, larger statements are fewer round trips.
const ROWS_PER_INSERT: usize = 1000;

/// [`insert_many`] through sqlx: one `SELECT … IN` for the ids already
/// stored and one multi-row INSERT per [`ROWS_PER_INSERT`] new ones.
async fn insert_many_any(
    conn: &mut AnyConnection,
    db: &Db,
    samples: &[&Sample],
) -> Result<Vec<bool>> {
    let mut seen = stored_ids(conn, db, samples).await?;
    let fresh: Vec<bool> = samples
        .iter()
        .map(|s| seen.insert((s.ts, s.id.clone())))
        .collect();
    let new: Vec<&&Sample> = samples
        .iter()
        .zip(&fresh)
        .filter_map(|(s, f)| f.then_some(s))
        .collect();
    for chunk in new.chunks(ROWS_PER_INSERT) {
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!("INSERT INTO samples (id, meter, type, unit, volume, user_id, project_id, resource_id, ts, recorded_at, source, metadata) VALUES {rows}");
        let sql = db.sql(&sql);
        let mut q = sqlx::query(&sql);
        for s in chunk {
            q = q
                .bind(&s.id)
                .bind(&s.meter)
                .bind(s.kind.as_str())
                .bind(&s.unit)
                .bind(s.volume)
                .bind(&s.user_id)
                .bind(&s.project_id)
                .bind(&s.resource_id)
                .bind(s.ts)
                .bind(s.recorded_at)
                .bind(&s.source)
                .bind(s.metadata.to_string());
        }
        q.execute(&mut *conn).await.db()?;
    }
    Ok(fresh)
}

/// The (time, id) pairs of `samples` already stored. A sample is the same
/// sample only at the same time (its id is named after its notification,
/// whose time it carries), so the lookup is a range of the `(ts, id)`
/// index: the samples arrive in time order and that index grows at its
/// end, where a unique index on the random ids alone made each insert a
/// random page of a B-tree larger than any cache (and its write to the
/// WAL): 4 KiB written per sample.
async fn stored_ids(
    conn: &mut AnyConnection,
    db: &Db,
    samples: &[&Sample],
) -> Result<HashSet<(i64, String)>> {
    let mut by_time: Vec<&&Sample> = samples.iter().collect();
    by_time.sort_by_key(|s| s.ts);
    let mut seen = HashSet::new();
    for chunk in by_time.chunks(ROWS_PER_INSERT) {
        let (lo, hi) = (chunk[0].ts, chunk[chunk.len() - 1].ts);
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql =
            format!("SELECT ts, id FROM samples WHERE ts >= ? AND ts <= ? AND id IN ({marks})");
        let sql = db.sql(&sql);
        let mut q = sqlx::query(&sql).bind(lo).bind(hi);
        for s in chunk {
            q = q.bind(&s.id);
        }
        for r in q.fetch_all(&mut *conn).await.db()? {
            seen.insert((r.int("ts"), r.str("id")));
        }
    }
    Ok(seen)
}

/// Record a notification as processed; `false` when it already was.
pub async fn mark_processed(tx: &mut Tx<'_>, db: &Db, message_id: &str) -> Result<bool> {
    const SEEN: &str = "SELECT message_id FROM processed_messages WHERE message_id = ?";
    const MARK: &str = "INSERT INTO processed_messages (message_id, processed_at) VALUES (?, ?)";
    let now = super::now_us();
    match tx {
        Tx::Any(conn) => {
            let seen = sqlx::query(&db.sql(SEEN))
                .bind(message_id)
                .fetch_optional(&mut **conn)
                .await
                .db()?;
            if seen.is_some() {
                return Ok(false);
            }
            sqlx::query(&db.sql(MARK))
                .bind(message_id)
                .bind(now)
                .execute(&mut **conn)
                .await
                .db()?;
        }
        Tx::Sqlite(conn) => {
            let seen = conn
                .prepare_cached(SEEN)
                .and_then(|mut q| q.exists([message_id]))
                .map_err(err)?;
            if seen {
                return Ok(false);
            }
            conn.prepare_cached(MARK)
                .and_then(|mut q| q.execute((message_id, now)))
                .map_err(err)?;
        }
    }
    Ok(true)
}

fn column(f: &Field) -> Option<&'static str> {
    Some(match f {
        Field::Meter => "meter",
        Field::ResourceId => "resource_id",
        Field::ProjectId => "project_id",
        Field::UserId => "user_id",
        Field::Source => "source",
        Field::Timestamp => "ts",
        Field::MessageId => "id",
        Field::Metadata(_) => return None,
    })
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Ge => ">=",
        Op::Gt => ">",
    }
}

/// Samples matching every condition, newest first, at most `limit`.
/// Conditions on columns are SQL; those on metadata are checked here.
pub async fn query(db: &Db, conds: &[Cond], limit: Option<usize>) -> Result<Vec<Sample>> {
    let mut sql = String::from("SELECT * FROM samples WHERE 1 = 1");
    let mut binds: Vec<QValue> = Vec::new();
    for c in conds {
        if let Some(col) = column(&c.field) {
            sql.push_str(&format!(" AND {col} {} ?", sql_op(c.op)));
            binds.push(c.value.clone());
        }
    }
    sql.push_str(" ORDER BY ts DESC, id");
    let meta_conds: Vec<&Cond> = conds
        .iter()
        .filter(|c| matches!(c.field, Field::Metadata(_)))
        .collect();
    if meta_conds.is_empty() {
        if let Some(l) = limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
    }
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = match b {
            QValue::Str(s) => q.bind(s),
            QValue::Int(i) => q.bind(i),
            QValue::Float(f) => q.bind(f),
            QValue::Bool(b) => q.bind(b.to_string()),
        };
    }
    let rows = q.fetch_all(&db.pool).await.db()?;
    let mut out: Vec<Sample> = rows
        .iter()
        .map(from_row)
        .filter(|s| meta_conds.iter().all(|c| c.matches_metadata(&s.metadata)))
        .collect();
    if let Some(l) = limit {
        out.truncate(l);
    }
    Ok(out)
}

/// Drop samples and processed-message marks older than `before` (µs).
pub async fn expire(db: &Db, before: i64) -> Result<u64> {
    let a = sqlx::query(&db.sql("DELETE FROM samples WHERE ts < ?"))
        .bind(before)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected();
    sqlx::query(&db.sql("DELETE FROM processed_messages WHERE processed_at < ?"))
        .bind(before)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(a)
}
