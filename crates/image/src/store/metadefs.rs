//! Metadata definitions: namespaces and the objects, properties, tags and
//! resource-type associations inside them, each a JSON document.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Object,
    Property,
    Tag,
    ResourceType,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Object => "object",
            Kind::Property => "property",
            Kind::Tag => "tag",
            Kind::ResourceType => "resource_type",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Namespace {
    pub namespace: String,
    pub owner: Option<String>,
    pub body: Value,
}

pub async fn get_namespace(db: &Db, ns: &str) -> Result<Option<Namespace>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM metadef_namespaces WHERE namespace = ?"))
            .bind(ns)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| Namespace {
                namespace: r.str("namespace"),
                owner: r.opt_str("owner"),
                body: r.json("body"),
            }),
    )
}

pub async fn list_namespaces(db: &Db) -> Result<Vec<Namespace>> {
    Ok(
        sqlx::query("SELECT * FROM metadef_namespaces ORDER BY namespace")
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(|r| Namespace {
                namespace: r.str("namespace"),
                owner: r.opt_str("owner"),
                body: r.json("body"),
            })
            .collect(),
    )
}

pub async fn put_namespace(db: &Db, n: &Namespace, old_name: Option<&str>) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    let key = old_name.unwrap_or(&n.namespace);
    sqlx::query(&db.sql("DELETE FROM metadef_namespaces WHERE namespace = ?"))
        .bind(key)
        .execute(&mut *tx)
        .await
        .db()?;
    sqlx::query(
        &db.sql("INSERT INTO metadef_namespaces (namespace, owner, body) VALUES (?, ?, ?)"),
    )
    .bind(&n.namespace)
    .bind(&n.owner)
    .bind(n.body.to_string())
    .execute(&mut *tx)
    .await
    .db()?;
    if key != n.namespace {
        sqlx::query(&db.sql("UPDATE metadef_items SET namespace = ? WHERE namespace = ?"))
            .bind(&n.namespace)
            .bind(key)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}

pub async fn delete_namespace(db: &Db, ns: &str) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    for q in [
        "DELETE FROM metadef_items WHERE namespace = ?",
        "DELETE FROM metadef_namespaces WHERE namespace = ?",
    ] {
        sqlx::query(&db.sql(q))
            .bind(ns)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}

pub async fn list_items(db: &Db, ns: &str, kind: Kind) -> Result<Vec<(String, Value)>> {
    Ok(sqlx::query(&db.sql(
        "SELECT name, body FROM metadef_items WHERE namespace = ? AND kind = ? ORDER BY name",
    ))
    .bind(ns)
    .bind(kind.as_str())
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| (r.str("name"), r.json("body")))
    .collect())
}

pub async fn get_item(db: &Db, ns: &str, kind: Kind, name: &str) -> Result<Option<Value>> {
    Ok(sqlx::query(
        &db.sql("SELECT body FROM metadef_items WHERE namespace = ? AND kind = ? AND name = ?"),
    )
    .bind(ns)
    .bind(kind.as_str())
    .bind(name)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .map(|r| r.json("body")))
}

/// Insert or replace an item; `old_name` renames.
pub async fn put_item(
    db: &Db,
    ns: &str,
    kind: Kind,
    name: &str,
    body: &Value,
    old_name: Option<&str>,
) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    sqlx::query(&db.sql("DELETE FROM metadef_items WHERE namespace = ? AND kind = ? AND name = ?"))
        .bind(ns)
        .bind(kind.as_str())
        .bind(old_name.unwrap_or(name))
        .execute(&mut *tx)
        .await
        .db()?;
    sqlx::query(
        &db.sql("INSERT INTO metadef_items (namespace, kind, name, body) VALUES (?, ?, ?, ?)"),
    )
    .bind(ns)
    .bind(kind.as_str())
    .bind(name)
    .bind(body.to_string())
    .execute(&mut *tx)
    .await
    .db()?;
    tx.commit().await.db()
}

pub async fn delete_item(db: &Db, ns: &str, kind: Kind, name: Option<&str>) -> Result<u64> {
    let r = match name {
        Some(n) => sqlx::query(
            &db.sql("DELETE FROM metadef_items WHERE namespace = ? AND kind = ? AND name = ?"),
        )
        .bind(ns)
        .bind(kind.as_str())
        .bind(n)
        .execute(&db.pool)
        .await
        .db()?,
        None => sqlx::query(&db.sql("DELETE FROM metadef_items WHERE namespace = ? AND kind = ?"))
            .bind(ns)
            .bind(kind.as_str())
            .execute(&db.pool)
            .await
            .db()?,
    };
    Ok(r.rows_affected())
}
