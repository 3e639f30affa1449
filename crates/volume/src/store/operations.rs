//! Durable records of the multi-step volume operations (create, delete):
//! written before the backend is touched, so a restarted service finds
//! what was under way and finishes or undoes it.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct OperationRow {
    pub id: String,
    /// `create_volume`, `delete_volume`
    pub kind: String,
    pub volume_id: String,
    /// `running`, `unwinding`, `done`, `failed`
    pub state: String,
    /// What the kind needs besides the volume (an extend's sizes).
    pub params: Value,
}

fn from_row(r: &sqlx::any::AnyRow) -> OperationRow {
    OperationRow {
        id: r.str("id"),
        kind: r.str("kind"),
        volume_id: r.str("volume_id"),
        state: r.str("state"),
        params: r.json("params"),
    }
}

/// Record a running operation (in the transaction that makes the change it finishes).
pub async fn create_on(
    db: &Db,
    conn: &mut AnyConnection,
    id: &str,
    kind: &str,
    volume_id: &str,
    params: &Value,
) -> Result<()> {
    let now = super::now_str();
    sqlx::query(&db.sql(
        "INSERT INTO operations (id, kind, volume_id, state, error, params, created_at, updated_at) VALUES (?, ?, ?, 'running', NULL, ?, ?, ?)",
    ))
    .bind(id)
    .bind(kind)
    .bind(volume_id)
    .bind(params.to_string())
    .bind(&now)
    .bind(&now)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn set_state(db: &Db, id: &str, state: &str, error: Option<&str>) -> Result<()> {
    sqlx::query(&db.sql("UPDATE operations SET state = ?, error = ?, updated_at = ? WHERE id = ?"))
        .bind(state)
        .bind(error)
        .bind(super::now_str())
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Operations a previous run left running or unwinding, oldest first.
pub async fn unfinished(db: &Db) -> Result<Vec<OperationRow>> {
    Ok(sqlx::query(
        "SELECT * FROM operations WHERE state = 'running' OR state = 'unwinding' ORDER BY created_at",
    )
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(from_row)
    .collect())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<OperationRow>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM operations WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(from_row),
    )
}

/// Whether an operation is still running or unwinding on volume `id`.
pub async fn busy(db: &Db, volume_id: &str) -> Result<bool> {
    Ok(sqlx::query(&db.sql(
        "SELECT id FROM operations WHERE volume_id = ? AND (state = 'running' OR state = 'unwinding')",
    ))
    .bind(volume_id)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .is_some())
}
