//! Which projects may use a private volume type.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

/// The projects granted type `type_id`.
pub async fn projects(db: &Db, type_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query(&db.sql(
        "SELECT project_id FROM volume_type_access WHERE volume_type_id = ? ORDER BY project_id",
    ))
    .bind(type_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| r.str("project_id"))
    .collect())
}

/// The private types project `project_id` was granted.
pub async fn types_of(db: &Db, project_id: &str) -> Result<Vec<String>> {
    Ok(
        sqlx::query(&db.sql("SELECT volume_type_id FROM volume_type_access WHERE project_id = ?"))
            .bind(project_id)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(|r| r.str("volume_type_id"))
            .collect(),
    )
}

/// Grant; false when the project already had access.
pub async fn add(db: &Db, type_id: &str, project_id: &str) -> Result<bool> {
    if projects(db, type_id).await?.iter().any(|p| p == project_id) {
        return Ok(false);
    }
    sqlx::query(
        &db.sql("INSERT INTO volume_type_access (volume_type_id, project_id) VALUES (?, ?)"),
    )
    .bind(type_id)
    .bind(project_id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(true)
}

/// Revoke; false when the project had no access.
pub async fn remove(db: &Db, type_id: &str, project_id: &str) -> Result<bool> {
    Ok(sqlx::query(
        &db.sql("DELETE FROM volume_type_access WHERE volume_type_id = ? AND project_id = ?"),
    )
    .bind(type_id)
    .bind(project_id)
    .execute(&db.pool)
    .await
    .db()?
    .rows_affected()
        == 1)
}

/// Forget every grant of a deleted type.
pub async fn forget_type(db: &Db, type_id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM volume_type_access WHERE volume_type_id = ?"))
        .bind(type_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
