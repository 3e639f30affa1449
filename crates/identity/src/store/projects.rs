//! Projects and domains (a domain is a project with `is_domain`).

use super::{b, DOMAIN_ROOT};
use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;
use sqlx::any::AnyRow;

#[derive(Clone, Debug)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// For a domain: [`DOMAIN_ROOT`].
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub is_domain: bool,
    pub extra: Value,
    pub tags: Vec<String>,
}

impl Project {
    fn from_row(r: &AnyRow) -> Self {
        Project {
            id: r.str("id"),
            name: r.str("name"),
            domain_id: r.str("domain_id"),
            parent_id: r.opt_str("parent_id"),
            description: r.str("description"),
            enabled: r.flag("enabled"),
            is_domain: r.flag("is_domain"),
            extra: r.json("extra"),
            tags: Vec::new(),
        }
    }
}

async fn load_tags(db: &Db, mut ps: Vec<Project>) -> Result<Vec<Project>> {
    if ps.is_empty() {
        return Ok(ps);
    }
    let rows = sqlx::query("SELECT project_id, name FROM project_tags ORDER BY name")
        .fetch_all(&db.pool)
        .await
        .db()?;
    for r in rows {
        let pid = r.str("project_id");
        if let Some(p) = ps.iter_mut().find(|p| p.id == pid) {
            p.tags.push(r.str("name"));
        }
    }
    Ok(ps)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Project>> {
    let row = sqlx::query(&db.sql("SELECT * FROM projects WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?;
    match row {
        None => Ok(None),
        Some(r) => Ok(load_tags(db, vec![Project::from_row(&r)]).await?.pop()),
    }
}

pub async fn get_by_name(
    db: &Db,
    domain_id: &str,
    name: &str,
    is_domain: bool,
) -> Result<Option<Project>> {
    let row = sqlx::query(
        &db.sql("SELECT * FROM projects WHERE domain_id = ? AND name = ? AND is_domain = ?"),
    )
    .bind(if is_domain { DOMAIN_ROOT } else { domain_id })
    .bind(name)
    .bind(b(is_domain))
    .fetch_optional(&db.pool)
    .await
    .db()?;
    match row {
        None => Ok(None),
        Some(r) => Ok(load_tags(db, vec![Project::from_row(&r)]).await?.pop()),
    }
}

pub async fn list(db: &Db, is_domain: bool) -> Result<Vec<Project>> {
    let rows = sqlx::query(&db.sql("SELECT * FROM projects WHERE is_domain = ? ORDER BY name, id"))
        .bind(b(is_domain))
        .fetch_all(&db.pool)
        .await
        .db()?;
    load_tags(db, rows.iter().map(Project::from_row).collect()).await
}

pub async fn insert(db: &Db, p: &Project) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    sqlx::query(&db.sql(
        "INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, is_domain, extra, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.domain_id)
    .bind(&p.parent_id)
    .bind(&p.description)
    .bind(b(p.enabled))
    .bind(b(p.is_domain))
    .bind(p.extra.to_string())
    .bind(super::now_str())
    .execute(&mut *tx)
    .await
    .db()?;
    for t in &p.tags {
        sqlx::query(&db.sql("INSERT INTO project_tags (project_id, name) VALUES (?, ?)"))
            .bind(&p.id)
            .bind(t)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}

pub async fn update(db: &Db, p: &Project) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    sqlx::query(
        &db.sql(
            "UPDATE projects SET name = ?, description = ?, enabled = ?, extra = ? WHERE id = ?",
        ),
    )
    .bind(&p.name)
    .bind(&p.description)
    .bind(b(p.enabled))
    .bind(p.extra.to_string())
    .bind(&p.id)
    .execute(&mut *tx)
    .await
    .db()?;
    sqlx::query(&db.sql("DELETE FROM project_tags WHERE project_id = ?"))
        .bind(&p.id)
        .execute(&mut *tx)
        .await
        .db()?;
    for t in &p.tags {
        sqlx::query(&db.sql("INSERT INTO project_tags (project_id, name) VALUES (?, ?)"))
            .bind(&p.id)
            .bind(t)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}

/// Delete a project (or domain) and every assignment on it.
pub async fn delete(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    for q in [
        "DELETE FROM project_tags WHERE project_id = ?",
        "DELETE FROM assignments WHERE target_id = ?",
        "DELETE FROM projects WHERE id = ?",
    ] {
        sqlx::query(&db.sql(q))
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}

pub async fn count_children(db: &Db, id: &str) -> Result<i64> {
    let r = sqlx::query(&db.sql("SELECT COUNT(*) AS n FROM projects WHERE parent_id = ? OR (domain_id = ? AND is_domain = 0)"))
        .bind(id)
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .db()?;
    Ok(r.int("n"))
}
