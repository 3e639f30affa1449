//! Containers: metadata (ACLs, quotas, versioning are metadata too) and
//! the object count and bytes kept up to date by every object write.

use super::{meta_of, meta_text, now_us, ListRange, Meta};
use ferrostack_core::{Error, Result};
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use sqlx::any::AnyRow;

#[derive(Clone, Debug)]
pub struct Container {
    pub account: String,
    pub name: String,
    pub meta: Meta,
    pub object_count: i64,
    pub bytes_used: i64,
    pub created_us: i64,
    pub modified_us: i64,
}

impl Container {
    fn from_row(r: &AnyRow) -> Self {
        Container {
            account: r.str("account"),
            name: r.str("name"),
            meta: meta_of(&r.str("meta")),
            object_count: r.int("object_count"),
            bytes_used: r.int("bytes_used"),
            created_us: r.int("created_us"),
            modified_us: r.int("modified_us"),
        }
    }
}

pub async fn get(db: &Db, account: &str, name: &str) -> Result<Option<Container>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM containers WHERE account = ? AND name = ?"))
            .bind(account)
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| Container::from_row(&r)),
    )
}

/// Create the container; false when it already existed.
pub async fn create(db: &Db, account: &str, name: &str, meta: &Meta) -> Result<bool> {
    let now = now_us();
    let r = sqlx::query(&db.sql(
        "INSERT INTO containers (account, name, meta, object_count, bytes_used, created_us, modified_us) VALUES (?, ?, ?, 0, 0, ?, ?)",
    ))
    .bind(account)
    .bind(name)
    .bind(meta_text(meta))
    .bind(now)
    .bind(now)
    .execute(&db.pool)
    .await
    .db();
    match r {
        Ok(_) => Ok(true),
        Err(e) if ferrostack_db::is_duplicate(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn set_meta(db: &Db, account: &str, name: &str, meta: &Meta) -> Result<()> {
    sqlx::query(&db.sql("UPDATE containers SET meta = ? WHERE account = ? AND name = ?"))
        .bind(meta_text(meta))
        .bind(account)
        .bind(name)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Delete an empty container: NotFound when missing, Conflict when it
/// still holds objects (checked in the same statement, so an object put
/// concurrently is never orphaned).
pub async fn delete(db: &Db, account: &str, name: &str) -> Result<()> {
    let done = sqlx::query(
        &db.sql("DELETE FROM containers WHERE account = ? AND name = ? AND object_count = 0"),
    )
    .bind(account)
    .bind(name)
    .execute(&db.pool)
    .await
    .db()?
    .rows_affected();
    if done == 1 {
        return Ok(());
    }
    match get(db, account, name).await? {
        None => Err(Error::NotFound(String::new())),
        Some(_) => Err(Error::Conflict(
            "There was a conflict when trying to complete your request.".into(),
        )),
    }
}

pub async fn list(db: &Db, account: &str, range: &ListRange) -> Result<Vec<Container>> {
    let (clauses, binds) = range.clauses();
    let sql = db
        .sql(&format!(
            "SELECT * FROM containers WHERE account = ?{clauses}"
        ))
        .into_owned();
    let mut q = sqlx::query(&sql).bind(account.to_owned());
    for b in binds {
        q = q.bind(b);
    }
    Ok(q.fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(Container::from_row)
        .collect())
}
