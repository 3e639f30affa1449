//! Accounts (`AUTH_<project id>`): created on first write, as Swift's
//! `account_autocreate`; their metadata and the totals of their containers.

use super::{meta_of, meta_text, now_us, Meta};
use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

#[derive(Clone, Debug, Default)]
pub struct Account {
    pub name: String,
    pub meta: Meta,
    pub created_us: i64,
}

/// An account's containers, objects and bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    pub containers: i64,
    pub objects: i64,
    pub bytes: i64,
}

pub async fn get(db: &Db, name: &str) -> Result<Option<Account>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM accounts WHERE name = ?"))
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| Account {
                name: r.str("name"),
                meta: meta_of(&r.str("meta")),
                created_us: r.int("created_us"),
            }),
    )
}

/// The account, created (empty) when it does not exist yet.
pub async fn ensure(db: &Db, name: &str) -> Result<Account> {
    if let Some(a) = get(db, name).await? {
        return Ok(a);
    }
    let created_us = now_us();
    let r =
        sqlx::query(&db.sql("INSERT INTO accounts (name, meta, created_us) VALUES (?, '{}', ?)"))
            .bind(name)
            .bind(created_us)
            .execute(&db.pool)
            .await
            .db();
    match r {
        Ok(_) => Ok(Account {
            name: name.to_owned(),
            meta: Meta::new(),
            created_us,
        }),
        // Created concurrently: read the winner's.
        Err(e) if ferrostack_db::is_duplicate(&e) => Ok(get(db, name).await?.unwrap_or_default()),
        Err(e) => Err(e),
    }
}

pub async fn set_meta(db: &Db, name: &str, meta: &Meta) -> Result<()> {
    ensure(db, name).await?;
    sqlx::query(&db.sql("UPDATE accounts SET meta = ? WHERE name = ?"))
        .bind(meta_text(meta))
        .bind(name)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Summed here rather than with SUM(), which MySQL answers as a DECIMAL.
pub async fn totals(db: &Db, name: &str) -> Result<Totals> {
    let rows =
        sqlx::query(&db.sql("SELECT object_count, bytes_used FROM containers WHERE account = ?"))
            .bind(name)
            .fetch_all(&db.pool)
            .await
            .db()?;
    let mut t = Totals::default();
    for r in rows {
        t.containers += 1;
        t.objects += r.int("object_count");
        t.bytes += r.int("bytes_used");
    }
    Ok(t)
}
