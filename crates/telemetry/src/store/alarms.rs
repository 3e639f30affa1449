//! Alarms (Aodh's) as their JSON documents, by project, and their history.

use ferrostack_core::Result;
use ferrostack_db::{Db, DbResultExt, RowExt};
use serde_json::Value;

pub async fn put(db: &Db, id: &str, project_id: &str, body: &Value) -> Result<()> {
    let n = sqlx::query(&db.sql("UPDATE alarms SET body = ? WHERE id = ?"))
        .bind(body.to_string())
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected();
    if n == 0 {
        sqlx::query(&db.sql("INSERT INTO alarms (id, project_id, body) VALUES (?, ?, ?)"))
            .bind(id)
            .bind(project_id)
            .bind(body.to_string())
            .execute(&db.pool)
            .await
            .db()?;
    }
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Value>> {
    let row = sqlx::query(&db.sql("SELECT body FROM alarms WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?;
    Ok(row.map(|r| r.json("body")))
}

pub async fn list(db: &Db, project: Option<&str>) -> Result<Vec<Value>> {
    let rows = match project {
        Some(p) => {
            sqlx::query(&db.sql("SELECT body FROM alarms WHERE project_id = ? ORDER BY id"))
                .bind(p.to_owned())
                .fetch_all(&db.pool)
                .await
        }
        None => {
            sqlx::query("SELECT body FROM alarms ORDER BY id")
                .fetch_all(&db.pool)
                .await
        }
    }
    .db()?;
    Ok(rows.iter().map(|r| r.json("body")).collect())
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM alarm_history WHERE alarm_id = ?",
        "DELETE FROM alarms WHERE id = ?",
    ] {
        sqlx::query(&db.sql(sql))
            .bind(id)
            .execute(&db.pool)
            .await
            .db()?;
    }
    Ok(())
}

pub async fn add_history(db: &Db, alarm_id: &str, body: &Value) -> Result<()> {
    sqlx::query(
        &db.sql("INSERT INTO alarm_history (event_id, alarm_id, seq, body) VALUES (?, ?, ?, ?)"),
    )
    .bind(body["event_id"].as_str().unwrap_or_default().to_owned())
    .bind(alarm_id)
    .bind(super::now_us())
    .bind(body.to_string())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Newest first, as Aodh lists them.
pub async fn history(db: &Db, alarm_id: &str) -> Result<Vec<Value>> {
    let rows =
        sqlx::query(&db.sql("SELECT body FROM alarm_history WHERE alarm_id = ? ORDER BY seq DESC"))
            .bind(alarm_id)
            .fetch_all(&db.pool)
            .await
            .db()?;
    Ok(rows.iter().map(|r| r.json("body")).collect())
}
