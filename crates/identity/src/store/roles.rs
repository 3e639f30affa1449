//! Roles and role inference rules (implied roles).

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;
use sqlx::any::AnyRow;

#[derive(Clone, Debug)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// [`super::NULL_DOMAIN`] for global roles.
    pub domain_id: String,
    pub description: Option<String>,
    pub options: Value,
    pub extra: Value,
}

impl Role {
    fn from_row(r: &AnyRow) -> Self {
        Role {
            id: r.str("id"),
            name: r.str("name"),
            domain_id: r.str("domain_id"),
            description: r.opt_str("description"),
            options: r.json("options"),
            extra: r.json("extra"),
        }
    }
    pub fn domain(&self) -> Option<&str> {
        (self.domain_id != super::NULL_DOMAIN).then_some(self.domain_id.as_str())
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Role>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM roles WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .map(|r| Role::from_row(&r)))
}

pub async fn list(db: &Db) -> Result<Vec<Role>> {
    Ok(sqlx::query("SELECT * FROM roles ORDER BY name, id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(Role::from_row)
        .collect())
}

pub async fn insert(db: &Db, r: &Role) -> Result<()> {
    sqlx::query(&db.sql("INSERT INTO roles (id, name, domain_id, description, options, extra) VALUES (?, ?, ?, ?, ?, ?)"))
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.domain_id)
        .bind(&r.description)
        .bind(r.options.to_string())
        .bind(r.extra.to_string())
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn update(db: &Db, r: &Role) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE roles SET name = ?, description = ?, options = ?, extra = ? WHERE id = ?"),
    )
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.options.to_string())
    .bind(r.extra.to_string())
    .bind(&r.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    for q in [
        "DELETE FROM assignments WHERE role_id = ?",
        "DELETE FROM implied_roles WHERE prior_role_id = ? OR implied_role_id = ?",
        "DELETE FROM roles WHERE id = ?",
    ] {
        let sql = db.sql(q);
        let mut query = sqlx::query(&sql).bind(id);
        if q.contains(" OR ") {
            query = query.bind(id);
        }
        query.execute(&mut *tx).await.db()?;
    }
    tx.commit().await.db()
}

/// All inference rules as `(prior, implied)` pairs.
pub async fn list_implied(db: &Db) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query("SELECT prior_role_id, implied_role_id FROM implied_roles ORDER BY prior_role_id, implied_role_id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(|r| (r.str("prior_role_id"), r.str("implied_role_id")))
        .collect())
}

pub async fn add_implied(db: &Db, prior: &str, implied: &str) -> Result<()> {
    sqlx::query(
        &db.sql("INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES (?, ?)"),
    )
    .bind(prior)
    .bind(implied)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn remove_implied(db: &Db, prior: &str, implied: &str) -> Result<bool> {
    Ok(sqlx::query(
        &db.sql("DELETE FROM implied_roles WHERE prior_role_id = ? AND implied_role_id = ?"),
    )
    .bind(prior)
    .bind(implied)
    .execute(&db.pool)
    .await
    .db()?
    .rows_affected()
        > 0)
}
