//! User messages: what went wrong with a user's asynchronous request,
//! kept for the user to read (Cinder's `messages` table).

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

pub const SCHEMA: &str = "
CREATE TABLE messages (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(64) NOT NULL, request_id VARCHAR(255) NOT NULL, resource_type VARCHAR(36) NOT NULL, resource_uuid VARCHAR(36), event_id VARCHAR(255) NOT NULL, message_level VARCHAR(255) NOT NULL, user_message TEXT NOT NULL, created_at VARCHAR(32) NOT NULL, expires_at VARCHAR(32) NOT NULL);
CREATE INDEX messages_project ON messages (project_id)
";

#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub project_id: String,
    pub request_id: String,
    pub resource_type: String,
    pub resource_uuid: Option<String>,
    pub event_id: String,
    pub message_level: String,
    pub user_message: String,
    pub created_at: String,
    pub expires_at: String,
}

fn from_row(r: &sqlx::any::AnyRow) -> Message {
    Message {
        id: r.str("id"),
        project_id: r.str("project_id"),
        request_id: r.str("request_id"),
        resource_type: r.str("resource_type"),
        resource_uuid: r.opt_str("resource_uuid"),
        event_id: r.str("event_id"),
        message_level: r.str("message_level"),
        user_message: r.str("user_message"),
        created_at: r.str("created_at"),
        expires_at: r.str("expires_at"),
    }
}

pub async fn insert(db: &Db, m: &Message) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, event_id, message_level, user_message, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&m.id)
    .bind(&m.project_id)
    .bind(&m.request_id)
    .bind(&m.resource_type)
    .bind(&m.resource_uuid)
    .bind(&m.event_id)
    .bind(&m.message_level)
    .bind(&m.user_message)
    .bind(&m.created_at)
    .bind(&m.expires_at)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// The unexpired messages of a project, or of all (`None`), newest first.
pub async fn list(db: &Db, project_id: Option<&str>, now: &str) -> Result<Vec<Message>> {
    let rows = match project_id {
        Some(p) => {
            sqlx::query(&db.sql(
                "SELECT * FROM messages WHERE project_id = ? AND expires_at > ? ORDER BY created_at DESC, id DESC",
            ))
            .bind(p)
            .bind(now)
            .fetch_all(&db.pool)
            .await
        }
        None => {
            sqlx::query(&db.sql(
                "SELECT * FROM messages WHERE expires_at > ? ORDER BY created_at DESC, id DESC",
            ))
            .bind(now)
            .fetch_all(&db.pool)
            .await
        }
    }
    .db()?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Message>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM messages WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .as_ref()
        .map(from_row))
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM messages WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Drop the messages past their time.
pub async fn expire(db: &Db, now: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM messages WHERE expires_at <= ?"))
        .bind(now)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
