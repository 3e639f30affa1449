//! Quota classes: limits an admin set for a class (`default` is the one
//! every project falls back to, over the configured defaults).

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use std::collections::HashMap;

pub const SCHEMA: &str = "CREATE TABLE quota_classes (class_name VARCHAR(255) NOT NULL, resource VARCHAR(300) NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (class_name, resource))";

/// The limits set for `class` (resource → hard limit).
pub async fn limits_on(
    db: &Db,
    conn: &mut AnyConnection,
    class: &str,
) -> Result<HashMap<String, i64>> {
    Ok(
        sqlx::query(&db.sql("SELECT resource, hard_limit FROM quota_classes WHERE class_name = ?"))
            .bind(class)
            .fetch_all(conn)
            .await
            .db()?
            .iter()
            .map(|r| (r.str("resource"), r.int("hard_limit")))
            .collect(),
    )
}

pub async fn limits(db: &Db, class: &str) -> Result<HashMap<String, i64>> {
    let mut conn = db.pool.acquire().await.db()?;
    limits_on(db, &mut conn, class).await
}

/// Set limits of a class, all or none.
pub async fn set(db: &Db, class: &str, given: &[(String, i64)]) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    for (resource, limit) in given {
        sqlx::query(&db.sql("DELETE FROM quota_classes WHERE class_name = ? AND resource = ?"))
            .bind(class)
            .bind(resource)
            .execute(&mut *tx)
            .await
            .db()?;
        sqlx::query(
            &db.sql(
                "INSERT INTO quota_classes (class_name, resource, hard_limit) VALUES (?, ?, ?)",
            ),
        )
        .bind(class)
        .bind(resource)
        .bind(limit)
        .execute(&mut *tx)
        .await
        .db()?;
    }
    tx.commit().await.db()?;
    Ok(())
}
