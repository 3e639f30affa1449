//! The `services` rows: one per (host, binary), whose `updated_at` is the
//! heartbeat `os-services` judges up or down by.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

#[derive(Clone, Debug)]
pub struct ServiceRow {
    pub host: String,
    pub binary: String,
    pub zone: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    /// A frozen volume backend refuses changes to its volumes' backing
    /// (`os-services/freeze`, Cinder's replication maintenance).
    pub frozen: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Record a heartbeat of `binary` on `host` (the row is made at the first).
pub async fn heartbeat(db: &Db, host: &str, binary: &str, zone: &str) -> Result<()> {
    let now = super::now_str();
    let done = sqlx::query(
        &db.sql("UPDATE services SET updated_at = ?, zone = ? WHERE host = ? AND vbinary = ?"),
    )
    .bind(&now)
    .bind(zone)
    .bind(host)
    .bind(binary)
    .execute(&db.pool)
    .await
    .db()?;
    if done.rows_affected() == 0 {
        // Two first beats at once: the primary key keeps one row.
        let _ = sqlx::query(&db.sql(
            "INSERT INTO services (host, vbinary, zone, disabled, disabled_reason, created_at, updated_at) VALUES (?, ?, ?, 0, NULL, ?, ?)",
        ))
        .bind(host)
        .bind(binary)
        .bind(zone)
        .bind(&now)
        .bind(&now)
        .execute(&db.pool)
        .await;
    }
    Ok(())
}

pub async fn list(db: &Db) -> Result<Vec<ServiceRow>> {
    Ok(sqlx::query("SELECT * FROM services ORDER BY vbinary, host")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(|r| ServiceRow {
            host: r.str("host"),
            binary: r.str("vbinary"),
            zone: r.str("zone"),
            disabled: r.flag("disabled"),
            disabled_reason: r.opt_str("disabled_reason"),
            frozen: r.flag("frozen"),
            created_at: r.str("created_at"),
            updated_at: r.str("updated_at"),
        })
        .collect())
}

pub const FROZEN_SCHEMA: &str = "ALTER TABLE services ADD COLUMN frozen BIGINT NOT NULL DEFAULT 0";

/// Enable or disable the `binary` service of `host`; false when there is none.
pub async fn set_disabled(
    db: &Db,
    host: &str,
    binary: &str,
    disabled: bool,
    reason: Option<&str>,
) -> Result<bool> {
    let done = sqlx::query(&db.sql(
        "UPDATE services SET disabled = ?, disabled_reason = ? WHERE host = ? AND vbinary = ?",
    ))
    .bind(disabled as i64)
    .bind(reason)
    .bind(host)
    .bind(binary)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(done.rows_affected() > 0)
}

/// Freeze or thaw the volume service of `host` (exact).
pub async fn set_frozen(db: &Db, host: &str, frozen: bool) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE services SET frozen = ? WHERE vbinary = 'cinder-volume' AND host = ?"),
    )
    .bind(frozen as i64)
    .bind(host)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}
