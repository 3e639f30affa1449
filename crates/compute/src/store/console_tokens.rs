//! Console tokens (Nova's `console_auth_tokens`): stored as their SHA-256,
//! bound to one instance and one console target, valid until they expire.
//! The token itself is only ever in the URL handed to the user.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use sha2::Digest;

/// A console token's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleToken {
    pub console_type: String,
    pub instance_id: String,
    pub host: String,
    /// The console target as JSON (`ConsoleTarget`).
    pub target: String,
    pub access_url: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

pub fn hash(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn insert(db: &Db, token: &str, t: &ConsoleToken) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO console_auth_tokens (token_hash, console_type, instance_id, host, target, access_url, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(hash(token))
    .bind(&t.console_type)
    .bind(&t.instance_id)
    .bind(&t.host)
    .bind(&t.target)
    .bind(&t.access_url)
    .bind(t.expires_at)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// The unexpired record of a token, if any.
pub async fn find(db: &Db, token: &str, now: i64) -> Result<Option<ConsoleToken>> {
    Ok(sqlx::query(
        &db.sql("SELECT * FROM console_auth_tokens WHERE token_hash = ? AND expires_at > ?"),
    )
    .bind(hash(token))
    .bind(now)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .map(|r| ConsoleToken {
        console_type: r.str("console_type"),
        instance_id: r.str("instance_id"),
        host: r.str("host"),
        target: r.str("target"),
        access_url: r.str("access_url"),
        expires_at: r.int("expires_at"),
    }))
}

/// Forget an instance's tokens (it was deleted, rebuilt or moved).
pub async fn delete_for_instance(db: &Db, instance_id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM console_auth_tokens WHERE instance_id = ?"))
        .bind(instance_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Drop expired tokens.
pub async fn delete_expired(db: &Db, now: i64) -> Result<u64> {
    Ok(
        sqlx::query(&db.sql("DELETE FROM console_auth_tokens WHERE expires_at <= ?"))
            .bind(now)
            .execute(&db.pool)
            .await
            .db()?
            .rows_affected(),
    )
}
