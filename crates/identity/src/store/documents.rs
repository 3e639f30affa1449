//! Small resources whose attributes Keystone treats as opaque documents —
//! credentials (incl. EC2), policies, OAuth1 consumers, endpoint groups and
//! their project associations, domain configurations, access rules. Each has
//! its own table of the same shape: id, owning user/domain, JSON body.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;

#[derive(Clone, Copy, Debug)]
pub enum Table {
    Credentials,
    Policies,
    OauthConsumers,
    EndpointGroups,
    ProjectEndpointGroups,
    DomainConfigs,
    AccessRules,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Credentials => "credentials",
            Table::Policies => "policies",
            Table::OauthConsumers => "oauth_consumers",
            Table::EndpointGroups => "endpoint_groups",
            Table::ProjectEndpointGroups => "project_endpoint_groups",
            Table::DomainConfigs => "domain_configs",
            Table::AccessRules => "access_rules",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Document {
    pub id: String,
    pub owner_id: String,
    pub body: Value,
}

fn doc(r: &sqlx::any::AnyRow) -> Document {
    Document {
        id: r.str("id"),
        owner_id: r.str("owner_id"),
        body: r.json("body"),
    }
}

pub async fn get(db: &Db, t: Table, id: &str) -> Result<Option<Document>> {
    let q = format!("SELECT * FROM {} WHERE id = ?", t.name());
    Ok(sqlx::query(&db.sql(&q))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .map(|r| doc(&r)))
}

/// All documents, or those of one owner.
pub async fn list(db: &Db, t: Table, owner_id: Option<&str>) -> Result<Vec<Document>> {
    let rows = match owner_id {
        Some(o) => {
            let q = format!("SELECT * FROM {} WHERE owner_id = ? ORDER BY id", t.name());
            sqlx::query(&db.sql(&q))
                .bind(o)
                .fetch_all(&db.pool)
                .await
                .db()?
        }
        None => {
            let q = format!("SELECT * FROM {} ORDER BY id", t.name());
            sqlx::query(&q).fetch_all(&db.pool).await.db()?
        }
    };
    Ok(rows.iter().map(doc).collect())
}

/// Insert or replace.
pub async fn put(db: &Db, t: Table, d: &Document) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    let del = format!("DELETE FROM {} WHERE id = ?", t.name());
    sqlx::query(&db.sql(&del))
        .bind(&d.id)
        .execute(&mut *tx)
        .await
        .db()?;
    let ins = format!(
        "INSERT INTO {} (id, owner_id, body) VALUES (?, ?, ?)",
        t.name()
    );
    sqlx::query(&db.sql(&ins))
        .bind(&d.id)
        .bind(&d.owner_id)
        .bind(d.body.to_string())
        .execute(&mut *tx)
        .await
        .db()?;
    tx.commit().await.db()
}

pub async fn delete(db: &Db, t: Table, id: &str) -> Result<bool> {
    let q = format!("DELETE FROM {} WHERE id = ?", t.name());
    Ok(sqlx::query(&db.sql(&q))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected()
        > 0)
}

/// Delete every document of an owner (a deleted user's credentials).
pub async fn delete_owned(db: &Db, t: Table, owner_id: &str) -> Result<()> {
    let q = format!("DELETE FROM {} WHERE owner_id = ?", t.name());
    sqlx::query(&db.sql(&q))
        .bind(owner_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
