//! Groups and their members.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;
use sqlx::any::AnyRow;

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub extra: Value,
}

impl Group {
    fn from_row(r: &AnyRow) -> Self {
        Group {
            id: r.str("id"),
            name: r.str("name"),
            domain_id: r.str("domain_id"),
            description: r.str("description"),
            extra: r.json("extra"),
        }
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Group>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM identity_groups WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| Group::from_row(&r)),
    )
}

pub async fn list(db: &Db) -> Result<Vec<Group>> {
    Ok(
        sqlx::query("SELECT * FROM identity_groups ORDER BY name, id")
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(Group::from_row)
            .collect(),
    )
}

pub async fn list_for_user(db: &Db, user_id: &str) -> Result<Vec<Group>> {
    Ok(sqlx::query(&db.sql(
        "SELECT g.* FROM identity_groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name, g.id",
    ))
    .bind(user_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(Group::from_row)
    .collect())
}

pub async fn insert(db: &Db, g: &Group) -> Result<()> {
    sqlx::query(&db.sql("INSERT INTO identity_groups (id, name, domain_id, description, extra) VALUES (?, ?, ?, ?, ?)"))
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.domain_id)
        .bind(&g.description)
        .bind(g.extra.to_string())
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn update(db: &Db, g: &Group) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE identity_groups SET name = ?, description = ?, extra = ? WHERE id = ?"),
    )
    .bind(&g.name)
    .bind(&g.description)
    .bind(g.extra.to_string())
    .bind(&g.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    for q in [
        "DELETE FROM group_members WHERE group_id = ?",
        "DELETE FROM assignments WHERE actor_id = ?",
        "DELETE FROM identity_groups WHERE id = ?",
    ] {
        sqlx::query(&db.sql(q))
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}

pub async fn add_member(db: &Db, group_id: &str, user_id: &str) -> Result<()> {
    if is_member(db, group_id, user_id).await? {
        return Ok(());
    }
    sqlx::query(&db.sql("INSERT INTO group_members (group_id, user_id) VALUES (?, ?)"))
        .bind(group_id)
        .bind(user_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn remove_member(db: &Db, group_id: &str, user_id: &str) -> Result<bool> {
    let r = sqlx::query(&db.sql("DELETE FROM group_members WHERE group_id = ? AND user_id = ?"))
        .bind(group_id)
        .bind(user_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(r.rows_affected() > 0)
}

pub async fn is_member(db: &Db, group_id: &str, user_id: &str) -> Result<bool> {
    Ok(sqlx::query(
        &db.sql("SELECT group_id FROM group_members WHERE group_id = ? AND user_id = ?"),
    )
    .bind(group_id)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .is_some())
}
