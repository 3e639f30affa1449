//! Leases in a service's database, so that several controllers on one
//! database run a piece of work that outlives a request — an unfinished
//! saga, a periodic task — one at a time (docs/multinode.md). A lease is a
//! row `(name, holder, expires_at, generation)`: taken when free, expired
//! or already ours, in one conditional statement, so two takers never both
//! win; `generation` changes whenever the holder does, so a holder that
//! paused past its expiry can tell (and fence its writes) that someone
//! else took over. Times are the taker's clock in RFC 3339 (the hosts keep
//! time with NTP, as the seed's do).

use crate::{Db, DbError};
use std::time::Duration;

/// A lease held: its name, who holds it, and the generation taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub generation: i64,
}

const TABLE: &str = "CREATE TABLE IF NOT EXISTS leases (name VARCHAR(255) PRIMARY KEY, holder VARCHAR(255) NOT NULL, expires_at VARCHAR(32) NOT NULL, generation BIGINT NOT NULL)";

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Make the lease table if this database has none.
pub async fn ensure_table(db: &Db) -> Result<(), DbError> {
    sqlx::query(TABLE).execute(&db.pool).await?;
    Ok(())
}

/// Take `name` for `holder` until `ttl` from now, or renew it when
/// `holder` has it: `None` when another holder's lease has not expired.
pub async fn acquire(
    db: &Db,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Lease>, DbError> {
    let start = now();
    let until = stamp(start + chrono::Duration::from_std(ttl).unwrap_or_default());
    let now = stamp(start);
    // `generation` first: MySQL evaluates SET left to right, with the
    // values already assigned.
    let taken = sqlx::query(&db.sql(
        "UPDATE leases SET generation = CASE WHEN holder = ? THEN generation ELSE generation + 1 END, holder = ?, expires_at = ? WHERE name = ? AND (holder = ? OR expires_at < ?)",
    ))
    .bind(holder)
    .bind(holder)
    .bind(&until)
    .bind(name)
    .bind(holder)
    .bind(&now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if taken == 0 {
        let made =
            sqlx::query(&db.sql(
                "INSERT INTO leases (name, holder, expires_at, generation) VALUES (?, ?, ?, 1)",
            ))
            .bind(name)
            .bind(holder)
            .bind(&until)
            .execute(&db.pool)
            .await;
        match made {
            Ok(_) => {}
            // The row exists (held by another, or made by a racing taker).
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    current(db, name, holder).await
}

/// The lease `name` as `holder` has it now, unexpired.
async fn current(db: &Db, name: &str, holder: &str) -> Result<Option<Lease>, DbError> {
    use sqlx::Row;
    let row = sqlx::query(
        &db.sql("SELECT generation FROM leases WHERE name = ? AND holder = ? AND expires_at >= ?"),
    )
    .bind(name)
    .bind(holder)
    .bind(stamp(now()))
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        Some(r) => Some(Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            generation: r.try_get::<i64, _>("generation")?,
        }),
        None => None,
    })
}

/// Whether `lease` is still held as taken (same holder and generation,
/// not expired): checked before a step's result is recorded.
pub async fn still_held(db: &Db, lease: &Lease) -> Result<bool, DbError> {
    Ok(current(db, &lease.name, &lease.holder)
        .await?
        .is_some_and(|l| l.generation == lease.generation))
}

/// Whether anyone holds `name` now (an unexpired row): a controller whose
/// liveness lease lapsed is taken to be gone.
pub async fn is_held(db: &Db, name: &str) -> Result<bool, DbError> {
    let row =
        sqlx::query(&db.sql("SELECT 1 AS held FROM leases WHERE name = ? AND expires_at >= ?"))
            .bind(name)
            .bind(stamp(now()))
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.is_some())
}

/// Give the lease up (the work is done): it is free at once.
pub async fn release(db: &Db, lease: &Lease) -> Result<bool, DbError> {
    let gone =
        sqlx::query(&db.sql("DELETE FROM leases WHERE name = ? AND holder = ? AND generation = ?"))
            .bind(&lease.name)
            .bind(&lease.holder)
            .bind(lease.generation)
            .execute(&db.pool)
            .await?
            .rows_affected();
    Ok(gone == 1)
}

/// A periodic task (usage audit, alarm evaluation, expiry) that several
/// controllers on one database run one at a time: each tick, [`turn`]
/// takes or renews the lease `periodic:<task>` for two periods, so the
/// holder keeps the task while it lives, the others skip their ticks, and
/// one of them takes the task over within about three periods of the
/// holder's last run.
///
/// [`turn`]: Periodic::turn
pub struct Periodic {
    db: Db,
    name: String,
    holder: String,
    ttl: Duration,
    table_ready: bool,
    held: bool,
}

impl Periodic {
    /// The task `task` run every `period` by controller `holder`.
    pub fn new(db: &Db, task: &str, holder: &str, period: Duration) -> Self {
        Periodic {
            db: db.clone(),
            name: format!("periodic:{task}"),
            holder: holder.to_owned(),
            ttl: period.saturating_mul(2).max(Duration::from_secs(1)),
            table_ready: false,
            held: false,
        }
    }

    /// Whether this controller runs the task this tick (it holds the
    /// lease). A database error skips the tick: better one run missed
    /// than two at once.
    pub async fn turn(&mut self) -> bool {
        let held = match self.take().await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(task = %self.name, error = %e, "cannot take the periodic task's lease: skipping this run");
                false
            }
        };
        if held != self.held {
            if held {
                tracing::info!(task = %self.name, holder = %self.holder, "periodic task runs here (lease taken)");
            } else {
                tracing::info!(task = %self.name, "periodic task runs on another controller (lease lost)");
            }
            self.held = held;
        }
        held
    }

    async fn take(&mut self) -> Result<bool, DbError> {
        if !self.table_ready {
            ensure_table(&self.db).await?;
            self.table_ready = true;
        }
        Ok(acquire(&self.db, &self.name, &self.holder, self.ttl)
            .await?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_takeover_after_expiry_on_every_engine() {
        for db in crate::testing::test_databases("db_leases").await {
            ensure_table(&db).await.unwrap();
            ensure_table(&db).await.unwrap();
            let long = Duration::from_secs(60);
            let a = acquire(&db, "saga:1", "ctl-a", long)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(a.generation, 1);
            assert_eq!(acquire(&db, "saga:1", "ctl-b", long).await.unwrap(), None);
            // Renewing keeps the generation.
            let renewed = acquire(&db, "saga:1", "ctl-a", long)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(renewed, a);
            assert!(still_held(&db, &a).await.unwrap());

            // A short lease expires; another holder takes it over, and the
            // first one can tell.
            let short = Duration::from_millis(200);
            let c = acquire(&db, "periodic:sync", "ctl-a", short)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                acquire(&db, "periodic:sync", "ctl-b", long).await.unwrap(),
                None
            );
            tokio::time::sleep(Duration::from_millis(400)).await;
            let d = acquire(&db, "periodic:sync", "ctl-b", long)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(d.generation, c.generation + 1);
            assert!(!still_held(&db, &c).await.unwrap());
            assert!(!release(&db, &c).await.unwrap());
            assert_eq!(
                acquire(&db, "periodic:sync", "ctl-a", long).await.unwrap(),
                None
            );
            assert!(release(&db, &d).await.unwrap());
            assert!(acquire(&db, "periodic:sync", "ctl-a", long)
                .await
                .unwrap()
                .is_some());

            // Many takers at once: exactly one wins.
            let mut takers = tokio::task::JoinSet::new();
            for i in 0..8 {
                let db = db.clone();
                takers.spawn(async move {
                    acquire(&db, "saga:race", &format!("ctl-{i}"), long)
                        .await
                        .unwrap()
                });
            }
            let mut won = 0;
            while let Some(r) = takers.join_next().await {
                won += usize::from(r.unwrap().is_some());
            }
            assert_eq!(won, 1, "{:?}", db.backend);
        }
    }

    #[tokio::test]
    async fn a_periodic_task_runs_on_one_controller_and_moves_when_it_stops() {
        for db in crate::testing::test_databases("db_periodic").await {
            let period = Duration::from_millis(300);
            let mut a = Periodic::new(&db, "audit", "ctl-a", period);
            let mut b = Periodic::new(&db, "audit", "ctl-b", period);
            // Both tick every period for a while: only a runs it.
            let (mut ran_a, mut ran_b) = (0, 0);
            let mut last_a = std::time::Instant::now();
            for _ in 0..4 {
                ran_a += usize::from(a.turn().await);
                last_a = std::time::Instant::now();
                ran_b += usize::from(b.turn().await);
                tokio::time::sleep(period).await;
            }
            assert_eq!((ran_a, ran_b), (4, 0), "{:?}", db.backend);
            // A stops: b takes the task over once the lease (two periods)
            // lapsed, and a, back, finds it held.
            while !b.turn().await {
                assert!(last_a.elapsed() < period * 4, "{:?}", db.backend);
                tokio::time::sleep(period / 6).await;
            }
            assert!(last_a.elapsed() >= period * 2, "{:?}", db.backend);
            assert!(!a.turn().await);
            assert!(b.turn().await);
            // Another task's lease is another row.
            assert!(Periodic::new(&db, "expiry", "ctl-a", period).turn().await);
        }
    }
}
