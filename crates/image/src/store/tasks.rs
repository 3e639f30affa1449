//! Tasks: the record of an asynchronous import, as Glance reports it.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Task {
    pub id: String,
    pub task_type: String,
    /// pending, processing, success, failure
    pub status: String,
    pub owner: Option<String>,
    pub image_id: Option<String>,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub input: Value,
    pub result: Value,
    pub message: String,
    pub created_at: String,
    pub updated_at: String,
}

fn from_row(r: &sqlx::any::AnyRow) -> Task {
    let json = |c: &str| {
        r.opt_str(c)
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    };
    Task {
        id: r.str("id"),
        task_type: r.str("task_type"),
        status: r.str("status"),
        owner: r.opt_str("owner"),
        image_id: r.opt_str("image_id"),
        request_id: r.opt_str("request_id"),
        user_id: r.opt_str("user_id"),
        input: json("input"),
        result: json("result"),
        message: r.str("message"),
        created_at: r.str("created_at"),
        updated_at: r.str("updated_at"),
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Task>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM tasks WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .map(|r| from_row(&r)))
}

pub async fn list(db: &Db, image_id: Option<&str>) -> Result<Vec<Task>> {
    let rows = match image_id {
        Some(i) => {
            sqlx::query(&db.sql("SELECT * FROM tasks WHERE image_id = ? ORDER BY created_at"))
                .bind(i)
                .fetch_all(&db.pool)
                .await
                .db()?
        }
        None => sqlx::query("SELECT * FROM tasks ORDER BY created_at")
            .fetch_all(&db.pool)
            .await
            .db()?,
    };
    Ok(rows.iter().map(from_row).collect())
}

pub async fn insert(db: &Db, t: &Task) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO tasks (id, task_type, status, owner, image_id, request_id, user_id, input, result, message, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&t.id)
    .bind(&t.task_type)
    .bind(&t.status)
    .bind(&t.owner)
    .bind(&t.image_id)
    .bind(&t.request_id)
    .bind(&t.user_id)
    .bind(t.input.to_string())
    .bind(t.result.to_string())
    .bind(&t.message)
    .bind(&t.created_at)
    .bind(&t.updated_at)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn finish(db: &Db, id: &str, status: &str, result: &Value, message: &str) -> Result<()> {
    sqlx::query(
        &db.sql(
            "UPDATE tasks SET status = ?, result = ?, message = ?, updated_at = ? WHERE id = ?",
        ),
    )
    .bind(status)
    .bind(result.to_string())
    .bind(message)
    .bind(super::now_str())
    .bind(id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Tasks still running when the process stopped are failed on restart.
pub async fn fail_unfinished(db: &Db) -> Result<u64> {
    Ok(sqlx::query(&db.sql("UPDATE tasks SET status = ?, message = ?, updated_at = ? WHERE status IN ('pending', 'processing')"))
        .bind("failure")
        .bind("Interrupted by a restart of the image service.")
        .bind(super::now_str())
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected())
}
