//! Image members: projects an image is shared with, and their answer.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub image_id: String,
    pub member: String,
    /// pending, accepted or rejected
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

fn from_row(r: &sqlx::any::AnyRow) -> Member {
    Member {
        image_id: r.str("image_id"),
        member: r.str("member"),
        status: r.str("status"),
        created_at: r.str("created_at"),
        updated_at: r.str("updated_at"),
    }
}

pub async fn list_for_image(db: &Db, image_id: &str) -> Result<Vec<Member>> {
    Ok(sqlx::query(
        &db.sql("SELECT * FROM image_members WHERE image_id = ? ORDER BY created_at, member"),
    )
    .bind(image_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(from_row)
    .collect())
}

pub async fn list_for_member(db: &Db, member: &str) -> Result<Vec<Member>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM image_members WHERE member = ?"))
            .bind(member)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(from_row)
            .collect(),
    )
}

pub async fn get(db: &Db, image_id: &str, member: &str) -> Result<Option<Member>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM image_members WHERE image_id = ? AND member = ?"))
            .bind(image_id)
            .bind(member)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| from_row(&r)),
    )
}

pub async fn insert(db: &Db, m: &Member) -> Result<()> {
    sqlx::query(&db.sql("INSERT INTO image_members (image_id, member, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"))
        .bind(&m.image_id)
        .bind(&m.member)
        .bind(&m.status)
        .bind(&m.created_at)
        .bind(&m.updated_at)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn update(db: &Db, m: &Member) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE image_members SET status = ?, updated_at = ? WHERE image_id = ? AND member = ?",
    ))
    .bind(&m.status)
    .bind(&m.updated_at)
    .bind(&m.image_id)
    .bind(&m.member)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete(db: &Db, image_id: &str, member: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("DELETE FROM image_members WHERE image_id = ? AND member = ?"))
            .bind(image_id)
            .bind(member)
            .execute(&db.pool)
            .await
            .db()?
            .rows_affected()
            > 0,
    )
}
