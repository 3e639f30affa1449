//! Object records. A record names its data file (`data_id`); a data file
//! no record names is "loose" and listed in `loose_data` from before it is
//! written until a record names it, and again from when its record goes
//! until the file is removed — so a crash at any point leaves a list of
//! what to check instead of a directory to scan.

use super::{meta_of, meta_text, now_us, ListRange, Meta};
use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use sqlx::any::AnyRow;

/// What an object's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The bytes themselves.
    Plain,
    /// A static large object's manifest (JSON); its segments are the bytes.
    Slo,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Slo => "slo",
        }
    }
    fn parse(s: &str) -> Kind {
        match s {
            "slo" => Kind::Slo,
            _ => Kind::Plain,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Object {
    pub account: String,
    pub container: String,
    pub name: String,
    pub data_id: String,
    pub kind: Kind,
    /// Bytes a GET returns (a manifest's: its segments' total).
    pub size: i64,
    /// MD5 of the bytes (a manifest's: of its segments' etags).
    pub etag: String,
    pub content_type: String,
    pub modified_us: i64,
    pub delete_at: Option<i64>,
    /// `x-object-meta-*` and the other headers an object keeps.
    pub meta: Meta,
}

impl Object {
    fn from_row(r: &AnyRow) -> Self {
        Object {
            account: r.str("account"),
            container: r.str("container"),
            name: r.str("name"),
            data_id: r.str("data_id"),
            kind: Kind::parse(&r.str("kind")),
            size: r.int("size"),
            etag: r.str("etag"),
            content_type: r.str("content_type"),
            modified_us: r.int("modified_us"),
            delete_at: sqlx::Row::try_get::<Option<i64>, _>(r, "delete_at")
                .ok()
                .flatten(),
            meta: meta_of(&r.str("meta")),
        }
    }

    /// Past its `X-Delete-At`: answered as missing until the expirer reaps it.
    pub fn expired(&self, now_s: i64) -> bool {
        self.delete_at.is_some_and(|t| t <= now_s)
    }
}

pub async fn get(db: &Db, account: &str, container: &str, name: &str) -> Result<Option<Object>> {
    Ok(sqlx::query(
        &db.sql("SELECT * FROM objects WHERE account = ? AND container = ? AND name = ?"),
    )
    .bind(account)
    .bind(container)
    .bind(name)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .map(|r| Object::from_row(&r)))
}

/// One page of a container's listing (expired objects left out).
pub async fn list(
    db: &Db,
    account: &str,
    container: &str,
    range: &ListRange,
) -> Result<Vec<Object>> {
    let (clauses, binds) = range.clauses();
    let sql = db
        .sql(&format!(
            "SELECT * FROM objects WHERE account = ? AND container = ? AND (delete_at IS NULL OR delete_at > ?){clauses}"
        ))
        .into_owned();
    let mut q = sqlx::query(&sql)
        .bind(account.to_owned())
        .bind(container.to_owned())
        .bind(now_us() / 1_000_000);
    for b in binds {
        q = q.bind(b);
    }
    Ok(q.fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(Object::from_row)
        .collect())
}

/// Note a data file that no record names (yet, or any more).
pub async fn add_loose(db: &Db, data_id: &str) -> Result<()> {
    sqlx::query(&db.sql("INSERT INTO loose_data (data_id, created_us) VALUES (?, ?)"))
        .bind(data_id)
        .bind(now_us())
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn remove_loose(db: &Db, data_id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM loose_data WHERE data_id = ?"))
        .bind(data_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn loose(db: &Db) -> Result<Vec<String>> {
    Ok(sqlx::query("SELECT data_id FROM loose_data")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(|r| r.str("data_id"))
        .collect())
}

pub async fn referenced(db: &Db, data_id: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("SELECT 1 AS one FROM objects WHERE data_id = ?"))
            .bind(data_id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .is_some(),
    )
}

/// Make `obj` the object at its name, in one transaction: the record
/// replaced (its data becomes loose), the new data no longer loose, the
/// container's count and bytes adjusted. Returns the replaced record.
pub async fn put(db: &Db, obj: &Object) -> Result<Option<Object>> {
    let mut tx = db.pool.begin().await.db()?;
    // A write first: SQLite then takes the write lock now (waiting its busy
    // timeout for it) rather than failing to upgrade a read lock later.
    sqlx::query(&db.sql("DELETE FROM loose_data WHERE data_id = ?"))
        .bind(&obj.data_id)
        .execute(&mut *tx)
        .await
        .db()?;
    let old = sqlx::query(
        &db.sql("SELECT * FROM objects WHERE account = ? AND container = ? AND name = ?"),
    )
    .bind(&obj.account)
    .bind(&obj.container)
    .bind(&obj.name)
    .fetch_optional(&mut *tx)
    .await
    .db()?
    .map(|r| Object::from_row(&r));
    if old.is_some() {
        sqlx::query(
            &db.sql("DELETE FROM objects WHERE account = ? AND container = ? AND name = ?"),
        )
        .bind(&obj.account)
        .bind(&obj.container)
        .bind(&obj.name)
        .execute(&mut *tx)
        .await
        .db()?;
    }
    sqlx::query(&db.sql(
        "INSERT INTO objects (account, container, name, data_id, kind, size, etag, content_type, modified_us, delete_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&obj.account)
    .bind(&obj.container)
    .bind(&obj.name)
    .bind(&obj.data_id)
    .bind(obj.kind.as_str())
    .bind(obj.size)
    .bind(&obj.etag)
    .bind(&obj.content_type)
    .bind(obj.modified_us)
    .bind(obj.delete_at)
    .bind(meta_text(&obj.meta))
    .execute(&mut *tx)
    .await
    .db()?;
    let (count, bytes) = match &old {
        Some(o) => (0, obj.size - o.size),
        None => (1, obj.size),
    };
    adjust_container(db, &mut tx, &obj.account, &obj.container, count, bytes).await?;
    if let Some(o) = &old {
        loose_in(db, &mut tx, &o.data_id).await?;
    }
    tx.commit().await.db()?;
    Ok(old)
}

/// Remove the object at a name (its data becomes loose); the removed record.
/// `only_data` guards against removing a newer object written meanwhile.
pub async fn delete(
    db: &Db,
    account: &str,
    container: &str,
    name: &str,
    only_data: Option<&str>,
) -> Result<Option<Object>> {
    let mut tx = db.pool.begin().await.db()?;
    // A write first, as in `put`.
    adjust_container(db, &mut tx, account, container, 0, 0).await?;
    let old = sqlx::query(
        &db.sql("SELECT * FROM objects WHERE account = ? AND container = ? AND name = ?"),
    )
    .bind(account)
    .bind(container)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await
    .db()?
    .map(|r| Object::from_row(&r));
    let Some(old) = old.filter(|o| only_data.is_none_or(|d| d == o.data_id)) else {
        return Ok(None);
    };
    sqlx::query(&db.sql("DELETE FROM objects WHERE account = ? AND container = ? AND name = ?"))
        .bind(account)
        .bind(container)
        .bind(name)
        .execute(&mut *tx)
        .await
        .db()?;
    adjust_container(db, &mut tx, account, container, -1, -old.size).await?;
    loose_in(db, &mut tx, &old.data_id).await?;
    tx.commit().await.db()?;
    Ok(Some(old))
}

async fn adjust_container(
    db: &Db,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &str,
    container: &str,
    count: i64,
    bytes: i64,
) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE containers SET object_count = object_count + ?, bytes_used = bytes_used + ?, modified_us = ? WHERE account = ? AND name = ?",
    ))
    .bind(count)
    .bind(bytes)
    .bind(now_us())
    .bind(account)
    .bind(container)
    .execute(&mut **tx)
    .await
    .db()?;
    Ok(())
}

async fn loose_in(db: &Db, tx: &mut sqlx::Transaction<'_, sqlx::Any>, data_id: &str) -> Result<()> {
    sqlx::query(&db.sql("INSERT INTO loose_data (data_id, created_us) VALUES (?, ?)"))
        .bind(data_id)
        .bind(now_us())
        .execute(&mut **tx)
        .await
        .db()?;
    Ok(())
}

/// Replace an object's metadata, content type and expiry (a POST).
pub async fn set_meta(db: &Db, obj: &Object) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE objects SET meta = ?, content_type = ?, delete_at = ?, modified_us = ? WHERE account = ? AND container = ? AND name = ? AND data_id = ?",
    ))
    .bind(meta_text(&obj.meta))
    .bind(&obj.content_type)
    .bind(obj.delete_at)
    .bind(obj.modified_us)
    .bind(&obj.account)
    .bind(&obj.container)
    .bind(&obj.name)
    .bind(&obj.data_id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Objects whose `X-Delete-At` has passed, at most `limit`.
pub async fn expired(db: &Db, now_s: i64, limit: i64) -> Result<Vec<Object>> {
    Ok(sqlx::query(&db.sql(&format!(
        "SELECT * FROM objects WHERE delete_at IS NOT NULL AND delete_at <= ? LIMIT {limit}"
    )))
    .bind(now_s)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(Object::from_row)
    .collect())
}
