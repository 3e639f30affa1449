//! Application credentials (secret stored as a bcrypt hash).

use super::b;
use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;
use sqlx::any::AnyRow;

#[derive(Clone, Debug)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub secret_hash: String,
    pub description: Option<String>,
    pub expires_at: Option<String>,
    pub unrestricted: bool,
    /// `[{"id", "name"}]`
    pub roles: Value,
    pub access_rules: Value,
}

impl AppCred {
    fn from_row(r: &AnyRow) -> Self {
        AppCred {
            id: r.str("id"),
            name: r.str("name"),
            user_id: r.str("user_id"),
            project_id: r.opt_str("project_id"),
            secret_hash: r.str("secret_hash"),
            description: r.opt_str("description"),
            expires_at: r.opt_str("expires_at"),
            unrestricted: r.flag("unrestricted"),
            roles: r
                .opt_str("roles")
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Array(vec![])),
            access_rules: r
                .opt_str("access_rules")
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Array(vec![])),
        }
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<AppCred>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM application_credentials WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| AppCred::from_row(&r)),
    )
}

pub async fn list_for_user(db: &Db, user_id: &str) -> Result<Vec<AppCred>> {
    Ok(sqlx::query(
        &db.sql("SELECT * FROM application_credentials WHERE user_id = ? ORDER BY name"),
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(AppCred::from_row)
    .collect())
}

pub async fn insert(db: &Db, a: &AppCred) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO application_credentials (id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted, roles, access_rules, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.user_id)
    .bind(&a.project_id)
    .bind(&a.secret_hash)
    .bind(&a.description)
    .bind(&a.expires_at)
    .bind(b(a.unrestricted))
    .bind(a.roles.to_string())
    .bind(a.access_rules.to_string())
    .bind(super::now_str())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM application_credentials WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
