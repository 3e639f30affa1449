//! A project's quota limits where they differ from the configured defaults.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use std::collections::HashMap;

/// The limits set for a project (resource → hard limit).
pub async fn overrides_on(
    db: &Db,
    conn: &mut AnyConnection,
    project_id: &str,
) -> Result<HashMap<String, i64>> {
    Ok(
        sqlx::query(&db.sql("SELECT resource, hard_limit FROM quotas WHERE project_id = ?"))
            .bind(project_id)
            .fetch_all(conn)
            .await
            .db()?
            .iter()
            .map(|r| (r.str("resource"), r.int("hard_limit")))
            .collect(),
    )
}

pub async fn overrides(db: &Db, project_id: &str) -> Result<HashMap<String, i64>> {
    let mut conn = db.pool.acquire().await.db()?;
    overrides_on(db, &mut conn, project_id).await
}

/// Set one limit of a project (replacing an earlier one).
pub async fn set(db: &Db, project_id: &str, resource: &str, limit: i64) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    sqlx::query(&db.sql("DELETE FROM quotas WHERE project_id = ? AND resource = ?"))
        .bind(project_id)
        .bind(resource)
        .execute(&mut *tx)
        .await
        .db()?;
    sqlx::query(&db.sql("INSERT INTO quotas (project_id, resource, hard_limit) VALUES (?, ?, ?)"))
        .bind(project_id)
        .bind(resource)
        .bind(limit)
        .execute(&mut *tx)
        .await
        .db()?;
    tx.commit().await.db()?;
    Ok(())
}

/// Back to the defaults.
pub async fn reset(db: &Db, project_id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM quotas WHERE project_id = ?"))
        .bind(project_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
