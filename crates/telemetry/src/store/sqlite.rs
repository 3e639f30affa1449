//! The typed SQLite path: the recording transaction and the summed
//! rollup reads on SQLite go through `rusqlite` connections of their own
//! to the pool's file instead of sqlx's `Any` driver. `Any` copies every
//! bound string twice and hands each statement to a worker thread; here a
//! row is a bind and a step of a statement prepared once per connection,
//! and a read folds rows as SQLite yields them (ARCHITECTURE.md,
//! Telemetry: the figures). Other engines, and a SQLite database without
//! a file, keep the `Any` path; both write the same rows.

use ferrostack_core::{Error, Result};
use ferrostack_db::{Backend, Db, DbResultExt};
use rusqlite::{Connection, OpenFlags};
use sqlx::AnyConnection;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// The writer's page cache, in KiB. A batch appends to each raw-sample
/// index and to every metric's rollups at their ends, so the pages it
/// touches are few; a cache that holds them spares rereading them from
/// the OS each batch. 16 MiB: the same CPU time per sample in
/// `bench/telemetry.sh` as 64 MiB, half the resident memory.
pub const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Idle reading connections kept (the pool's size).
const READERS_KEPT: usize = 4;

/// A transaction the recording path writes in: sqlx's (PostgreSQL,
/// MariaDB, SQLite without a file) or the SQLite writer's own
/// connection, inside `BEGIN IMMEDIATE`.
pub enum Tx<'a> {
    Any(&'a mut AnyConnection),
    Sqlite(&'a mut Connection),
}

/// A bound value of a statement written once for both paths.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Str(Option<&'a str>),
    Int(Option<i64>),
    Real(f64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Str(Some(s))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Str(Some(s))
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(s: &'a Option<String>) -> Self {
        Arg::Str(s.as_deref())
    }
}

impl From<i64> for Arg<'_> {
    fn from(i: i64) -> Self {
        Arg::Int(Some(i))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(i: Option<i64>) -> Self {
        Arg::Int(i)
    }
}

impl From<f64> for Arg<'_> {
    fn from(f: f64) -> Self {
        Arg::Real(f)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Arg::Str(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Int(Some(i)) => ToSqlOutput::Owned(Value::Integer(i)),
            Arg::Real(f) => ToSqlOutput::Owned(Value::Real(f)),
            Arg::Str(None) | Arg::Int(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

fn bind_any<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match *a {
            Arg::Str(s) => q.bind(s),
            Arg::Int(i) => q.bind(i),
            Arg::Real(f) => q.bind(f),
        };
    }
    q
}

impl Tx<'_> {
    /// Run one statement (`?` placeholders); the rows it changed.
    pub async fn execute(&mut self, db: &Db, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        match self {
            Tx::Any(conn) => {
                let sql = db.sql(sql);
                let q = bind_any(sqlx::query(&sql), args);
                Ok(q.execute(&mut **conn).await.db()?.rows_affected())
            }
            Tx::Sqlite(conn) => conn
                .prepare_cached(sql)
                .and_then(|mut q| q.execute(rusqlite::params_from_iter(args)))
                .map(|n| n as u64)
                .map_err(err),
        }
    }

    /// The rows of one query, each mapped by `f`.
    pub async fn fetch<T>(
        &mut self,
        db: &Db,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&dyn Cols) -> T,
    ) -> Result<Vec<T>> {
        match self {
            Tx::Any(conn) => {
                let sql = db.sql(sql);
                let q = bind_any(sqlx::query(&sql), args);
                let rows = q.fetch_all(&mut **conn).await.db()?;
                Ok(rows.iter().map(|r| f(r)).collect())
            }
            Tx::Sqlite(conn) => {
                let mut q = conn.prepare_cached(sql).map_err(err)?;
                let mut rows = q.query(rusqlite::params_from_iter(args)).map_err(err)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(err)? {
                    out.push(f(r));
                }
                Ok(out)
            }
        }
    }
}

/// The SQLite file of a telemetry database and its typed connections.
pub struct SqliteFile {
    path: PathBuf,
    /// The writer's connection, opened at its first write.
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteFile {
    /// The file behind `db`, when it is SQLite with one (not in memory).
    pub async fn of(db: &Db) -> Result<Option<SqliteFile>> {
        if db.backend != Backend::Sqlite {
            return Ok(None);
        }
        let file: Option<String> =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_optional(&db.pool)
                .await
                .db()?;
        Ok(file.filter(|f| !f.is_empty()).map(|f| SqliteFile {
            path: f.into(),
            writer: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
        }))
    }

    fn open(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
        )
        .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    /// Run `f` in a transaction of the writer's connection (opened with
    /// its larger page cache the first time); see [`in_transaction`].
    /// Blocking: call from a blocking thread.
    pub fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.is_none() {
            let conn = self.open()?;
            conn.execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}"))
                .map_err(err)?;
            *writer = Some(conn);
        }
        let conn = writer.as_mut().expect("opened above");
        in_transaction(conn, f)
    }

    /// Run `f` on a reading connection (an idle one, or a new one),
    /// kept for the next read afterwards. Blocking: call from a blocking
    /// thread.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        let mut idle = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < READERS_KEPT {
            idle.push(conn);
        }
        out
    }
}

/// Run `f` in an `IMMEDIATE` transaction of `conn`, committed when it
/// succeeds and rolled back when it fails. `IMMEDIATE` takes the write
/// lock first, so a write elsewhere in between (the hourly expiry's, an
/// API's) makes it wait its turn, where a transaction that read first and
/// then wrote would fail at once on the other's newer snapshot
/// (`SQLITE_BUSY_SNAPSHOT`, which no busy timeout retries).
pub fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T>,
) -> Result<T> {
    if !conn.is_autocommit() {
        // A transaction a panic left open.
        conn.execute_batch("ROLLBACK").map_err(err)?;
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("COMMIT").map_err(err)?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// A rusqlite error as the services' error: a duplicate key is the
/// conflict sqlx's are (`ferrostack_db::DbError`), anything else internal.
pub fn err(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        {
            return Error::Conflict(
                "Conflict occurred attempting to store the resource: duplicate entry.".into(),
            );
        }
    }
    Error::Internal(format!("database error: {e}"))
}

/// Columns by name of a row from either path, read as `RowExt` reads
/// them (a missing or NULL value is the type's default), so one row
/// mapping serves both.
pub trait Cols {
    fn str(&self, col: &str) -> String {
        self.opt_str(col).unwrap_or_default()
    }
    fn opt_str(&self, col: &str) -> Option<String>;
    fn opt_int(&self, col: &str) -> Option<i64>;
    fn int(&self, col: &str) -> i64 {
        self.opt_int(col).unwrap_or(0)
    }
    fn real(&self, col: &str) -> f64;
    fn json(&self, col: &str) -> serde_json::Value {
        self.opt_str(col)
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Object(Default::default()))
    }
}

impl Cols for sqlx::any::AnyRow {
    fn opt_str(&self, col: &str) -> Option<String> {
        ferrostack_db::RowExt::opt_str(self, col)
    }
    fn opt_int(&self, col: &str) -> Option<i64> {
        sqlx::Row::try_get::<Option<i64>, _>(self, col)
            .ok()
            .flatten()
    }
    fn real(&self, col: &str) -> f64 {
        sqlx::Row::try_get::<f64, _>(self, col).unwrap_or(0.0)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn opt_str(&self, col: &str) -> Option<String> {
        self.get(col).ok().flatten()
    }
    fn opt_int(&self, col: &str) -> Option<i64> {
        self.get(col).ok().flatten()
    }
    fn real(&self, col: &str) -> f64 {
        self.get(col).unwrap_or(0.0)
    }
}
