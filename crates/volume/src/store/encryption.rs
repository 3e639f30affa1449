//! Volume type encryption specs (Cinder's `encryption` table): at most
//! one per type.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

pub const SCHEMA: &str = "CREATE TABLE encryption (encryption_id VARCHAR(36) PRIMARY KEY, volume_type_id VARCHAR(36) NOT NULL UNIQUE, provider VARCHAR(255) NOT NULL, cipher VARCHAR(255), key_size BIGINT, control_location VARCHAR(255) NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32))";

#[derive(Clone, Debug)]
pub struct Encryption {
    pub encryption_id: String,
    pub volume_type_id: String,
    pub provider: String,
    pub cipher: Option<String>,
    pub key_size: Option<i64>,
    pub control_location: String,
    pub created_at: String,
    pub updated_at: Option<String>,
}

fn from_row(r: &sqlx::any::AnyRow) -> Encryption {
    let key_size: Option<i64> = ferrostack_db::sqlx::Row::try_get(r, "key_size")
        .ok()
        .flatten();
    Encryption {
        encryption_id: r.str("encryption_id"),
        volume_type_id: r.str("volume_type_id"),
        provider: r.str("provider"),
        cipher: r.opt_str("cipher"),
        key_size,
        control_location: r.str("control_location"),
        created_at: r.str("created_at"),
        updated_at: r.opt_str("updated_at"),
    }
}

pub async fn of_type(db: &Db, type_id: &str) -> Result<Option<Encryption>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM encryption WHERE volume_type_id = ?"))
            .bind(type_id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(from_row),
    )
}

pub async fn insert(db: &Db, e: &Encryption) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO encryption (encryption_id, volume_type_id, provider, cipher, key_size, control_location, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&e.encryption_id)
    .bind(&e.volume_type_id)
    .bind(&e.provider)
    .bind(&e.cipher)
    .bind(e.key_size)
    .bind(&e.control_location)
    .bind(&e.created_at)
    .bind(&e.updated_at)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn update(db: &Db, e: &Encryption) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE encryption SET provider = ?, cipher = ?, key_size = ?, control_location = ?, updated_at = ? WHERE encryption_id = ?",
    ))
    .bind(&e.provider)
    .bind(&e.cipher)
    .bind(e.key_size)
    .bind(&e.control_location)
    .bind(&e.updated_at)
    .bind(&e.encryption_id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete(db: &Db, type_id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM encryption WHERE volume_type_id = ?"))
        .bind(type_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
