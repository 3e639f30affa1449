//! Users and their passwords (bcrypt hashes only).

use super::b;
use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;
use sqlx::any::AnyRow;

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub password_hash: Option<String>,
    pub password_expires_at: Option<String>,
    pub options: Value,
    pub extra: Value,
}

impl User {
    fn from_row(r: &AnyRow) -> Self {
        User {
            id: r.str("id"),
            name: r.str("name"),
            domain_id: r.str("domain_id"),
            enabled: r.flag("enabled"),
            default_project_id: r.opt_str("default_project_id"),
            password_hash: r.opt_str("password_hash"),
            password_expires_at: r.opt_str("password_expires_at"),
            options: r.json("options"),
            extra: r.json("extra"),
        }
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<User>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM users WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .map(|r| User::from_row(&r)))
}

pub async fn get_by_name(db: &Db, domain_id: &str, name: &str) -> Result<Option<User>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM users WHERE domain_id = ? AND name = ?"))
            .bind(domain_id)
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| User::from_row(&r)),
    )
}

pub async fn list(db: &Db) -> Result<Vec<User>> {
    Ok(sqlx::query("SELECT * FROM users ORDER BY name, id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(User::from_row)
        .collect())
}

pub async fn list_in_group(db: &Db, group_id: &str) -> Result<Vec<User>> {
    Ok(sqlx::query(&db.sql(
        "SELECT u.* FROM users u JOIN group_members m ON m.user_id = u.id WHERE m.group_id = ? ORDER BY u.name, u.id",
    ))
    .bind(group_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(User::from_row)
    .collect())
}

pub async fn insert(db: &Db, u: &User) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO users (id, name, domain_id, enabled, default_project_id, password_hash, password_expires_at, options, extra, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&u.id)
    .bind(&u.name)
    .bind(&u.domain_id)
    .bind(b(u.enabled))
    .bind(&u.default_project_id)
    .bind(&u.password_hash)
    .bind(&u.password_expires_at)
    .bind(u.options.to_string())
    .bind(u.extra.to_string())
    .bind(super::now_str())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn update(db: &Db, u: &User) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE users SET name = ?, domain_id = ?, enabled = ?, default_project_id = ?, password_hash = ?, password_expires_at = ?, options = ?, extra = ? WHERE id = ?",
    ))
    .bind(&u.name)
    .bind(&u.domain_id)
    .bind(b(u.enabled))
    .bind(&u.default_project_id)
    .bind(&u.password_hash)
    .bind(&u.password_expires_at)
    .bind(u.options.to_string())
    .bind(u.extra.to_string())
    .bind(&u.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Delete a user with its memberships, assignments and application credentials.
pub async fn delete(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    for q in [
        "DELETE FROM group_members WHERE user_id = ?",
        "DELETE FROM assignments WHERE actor_id = ?",
        "DELETE FROM application_credentials WHERE user_id = ?",
        "DELETE FROM credentials WHERE owner_id = ?",
        "DELETE FROM access_rules WHERE owner_id = ?",
        "DELETE FROM users WHERE id = ?",
    ] {
        sqlx::query(&db.sql(q))
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}
