//! Database access for every service: one pool per service database, SQLite
//! by default and MySQL/MariaDB or PostgreSQL by URL, with versioned
//! migrations. Queries are written once with `?` placeholders; [`Db::sql`]
//! rewrites them for PostgreSQL.
//!
//! Portable column conventions (so one migration serves all three engines):
//! ids and names are `VARCHAR(n)`, booleans are `BIGINT` 0/1, integers are
//! `BIGINT`, timestamps are `VARCHAR(32)` RFC 3339 strings that sort in time
//! order, and free-form attributes are JSON in `TEXT`.

pub mod lease;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::borrow::Cow;
use std::time::Duration;

pub use sqlx;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("unsupported database URL '{0}': use sqlite://, mysql:// or postgres://")]
    UnsupportedUrl(String),
    #[error("another process held the migration lock for {0} s")]
    MigrationLockTimeout(u64),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
}

impl From<DbError> for ferrostack_core::Error {
    fn from(e: DbError) -> Self {
        match &e {
            DbError::Sqlx(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                ferrostack_core::Error::Conflict(
                    "Conflict occurred attempting to store the resource: duplicate entry.".into(),
                )
            }
            _ => ferrostack_core::Error::internal(e),
        }
    }
}

/// The engine locks [`Db::migrate`] takes (see `lock_migrations`).
const MIGRATION_LOCK_KEY: i64 = 0x4665_7272_6f53_7461; // "FerroSta"
const MIGRATION_LOCK_NAME: &str = "ferrostack_migrations";
const MIGRATION_LOCK_WAIT_SECS: u64 = 300;
static SQLITE_MIGRATIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// One schema change. `sql` holds statements separated by `;` on their own
/// line ends; `{bool}`-free, portable SQL (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Db {
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Self::connect_with(url, None, Duration::from_secs(30)).await
    }

    /// [`Db::connect`] with a chosen pool size (`None`: SQLite 4, others 16)
    /// and acquire timeout. Tests run services on one connection, where a
    /// code path that waits for a second connection while holding one
    /// fails at once instead of deadlocking only under load.
    pub async fn connect_with(
        url: &str,
        max_connections: Option<u32>,
        acquire_timeout: Duration,
    ) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Backend::MySql
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_owned()));
        };
        let url = if let Some(rest) = url.strip_prefix("mariadb:") {
            Cow::Owned(format!("mysql:{rest}"))
        } else {
            Cow::Borrowed(url)
        };
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_path(&url) {
                if let Some(dir) = std::path::Path::new(path).parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
            }
        }
        let default_size = if backend == Backend::Sqlite { 4 } else { 16 };
        let mut opts = AnyPoolOptions::new()
            .max_connections(max_connections.unwrap_or(default_size))
            .acquire_timeout(acquire_timeout);
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await?;
        Ok(Db { pool, backend })
    }

    /// Rewrite `?` placeholders to `$1, $2, …` for PostgreSQL.
    pub fn sql<'a>(&self, q: &'a str) -> Cow<'a, str> {
        if self.backend != Backend::Postgres || !q.contains('?') {
            return Cow::Borrowed(q);
        }
        let mut out = String::with_capacity(q.len() + 8);
        let mut n = 0;
        let mut in_str = false;
        for c in q.chars() {
            match c {
                '\'' => {
                    in_str = !in_str;
                    out.push(c);
                }
                '?' if !in_str => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                _ => out.push(c),
            }
        }
        Cow::Owned(out)
    }

    /// Apply every migration newer than the recorded version, each in its
    /// own transaction where the engine allows DDL in transactions.
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<i64, DbError> {
        // SQLite files belong to one process: a mutex there is enough.
        let _in_process = match self.backend {
            Backend::Sqlite => Some(SQLITE_MIGRATIONS.lock().await),
            _ => None,
        };
        let mut conn = self.pool.acquire().await?;
        self.lock_migrations(&mut conn).await?;
        let applied = self.migrate_on(&mut conn, migrations).await;
        // Unlocked after a failed migration too; a session that dies with
        // the process drops its lock on its own.
        let unlocked = self.unlock_migrations(&mut conn).await;
        let latest = applied?;
        unlocked?;
        Ok(latest)
    }

    /// Two controllers starting together on one database must not both
    /// apply the same migration: the migrating session holds an engine
    /// lock (a PostgreSQL advisory lock, a MySQL named lock), and the one
    /// that waited reads the version again once it has the lock.
    async fn lock_migrations(&self, conn: &mut sqlx::AnyConnection) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => {}
            Backend::Postgres => {
                sqlx::query(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                    .execute(&mut *conn)
                    .await?;
            }
            Backend::MySql => {
                let row = sqlx::query(&format!(
                    "SELECT GET_LOCK('{MIGRATION_LOCK_NAME}', {MIGRATION_LOCK_WAIT_SECS}) AS got"
                ))
                .fetch_one(&mut *conn)
                .await?;
                if row.int("got") != 1 {
                    return Err(DbError::MigrationLockTimeout(MIGRATION_LOCK_WAIT_SECS));
                }
            }
        }
        Ok(())
    }

    async fn unlock_migrations(&self, conn: &mut sqlx::AnyConnection) -> Result<(), DbError> {
        let stmt = match self.backend {
            Backend::Sqlite => return Ok(()),
            Backend::Postgres => format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"),
            Backend::MySql => format!("SELECT RELEASE_LOCK('{MIGRATION_LOCK_NAME}') AS released"),
        };
        sqlx::query(&stmt).fetch_one(&mut *conn).await?;
        Ok(())
    }

    /// Apply every migration newer than the recorded version, each in its
    /// own transaction, on the connection that holds the migration lock.
    async fn migrate_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        migrations: &[Migration],
    ) -> Result<i64, DbError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at VARCHAR(32) NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        let current: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
                .fetch_one(&mut *conn)
                .await?
                .try_get::<i64, _>("v")?;
        let mut latest = current;
        for m in migrations.iter().filter(|m| m.version > current) {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for stmt in m.sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
                let stmt = self.dialect(stmt);
                sqlx::query(&stmt)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| DbError::Migration {
                        version: m.version,
                        name: m.name,
                        source,
                    })?;
            }
            sqlx::query(
                &self.sql(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                ),
            )
            .bind(m.version)
            .bind(m.name)
            .bind(
                chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string(),
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
            latest = m.version;
        }
        Ok(latest)
    }

    /// The few spellings that differ between engines.
    fn dialect(&self, stmt: &str) -> String {
        match self.backend {
            // Case-sensitive names, as SQLite and PostgreSQL compare them.
            Backend::MySql if stmt.starts_with("CREATE TABLE") => {
                format!(
                    "{} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                    stmt.replace(" TEXT", " MEDIUMTEXT")
                )
            }
            Backend::MySql => stmt.replace(" TEXT", " MEDIUMTEXT"),
            _ => stmt.to_owned(),
        }
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Read helpers for the portable column conventions.
pub trait RowExt {
    fn str(&self, col: &str) -> String;
    fn opt_str(&self, col: &str) -> Option<String>;
    fn flag(&self, col: &str) -> bool;
    fn int(&self, col: &str) -> i64;
    fn json(&self, col: &str) -> serde_json::Value;
}

impl RowExt for AnyRow {
    fn str(&self, col: &str) -> String {
        self.opt_str(col).unwrap_or_default()
    }
    fn opt_str(&self, col: &str) -> Option<String> {
        match self.try_get::<Option<String>, _>(col) {
            Ok(v) => v,
            // MySQL reports TEXT columns as blobs through the Any driver.
            Err(_) => self
                .try_get::<Option<Vec<u8>>, _>(col)
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok()),
        }
    }
    fn flag(&self, col: &str) -> bool {
        self.try_get::<Option<i64>, _>(col)
            .ok()
            .flatten()
            .unwrap_or(0)
            != 0
    }
    fn int(&self, col: &str) -> i64 {
        self.try_get::<Option<i64>, _>(col)
            .ok()
            .flatten()
            .unwrap_or(0)
    }
    fn json(&self, col: &str) -> serde_json::Value {
        self.opt_str(col)
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Object(Default::default()))
    }
}

/// Test databases: SQLite always; MariaDB and PostgreSQL when reachable.
/// With `FERROSTACK_TEST_REQUIRE_ALL_DBS=1` (set by CI) an unreachable
/// server is a failure, not a silent omission.
pub mod testing {
    use super::*;

    pub async fn test_databases(name: &str) -> Vec<Db> {
        let require = std::env::var("FERROSTACK_TEST_REQUIRE_ALL_DBS").as_deref() == Ok("1");
        let dir =
            std::env::temp_dir().join(format!("ferrostack-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut dbs = vec![Db::connect(&format!(
            "sqlite://{}/{name}.sqlite?mode=rwc",
            dir.display()
        ))
        .await
        .expect("sqlite")];
        let dbname = format!("ferrostack_test_{name}");
        let servers = [
            (
                std::env::var("FERROSTACK_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into()),
                "mysql",
            ),
            (
                std::env::var("FERROSTACK_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into()),
                "postgres",
            ),
        ];
        for (base, kind) in servers {
            match recreate_database(&base, kind, &dbname).await {
                Ok(db) => dbs.push(db),
                Err(e) if require => panic!("{kind} test database unavailable: {e}"),
                Err(e) => eprintln!("note: {kind} not reachable, testing without it: {e}"),
            }
        }
        dbs
    }

    async fn recreate_database(base: &str, kind: &str, dbname: &str) -> Result<Db, DbError> {
        let admin_url = if kind == "postgres" {
            format!("{base}/postgres")
        } else {
            base.to_owned()
        };
        let admin = Db::connect(&admin_url).await?;
        let quoted = if kind == "postgres" {
            format!("\"{dbname}\"")
        } else {
            format!("`{dbname}`")
        };
        sqlx::query(&format!("DROP DATABASE IF EXISTS {quoted}"))
            .execute(&admin.pool)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&admin.pool)
            .await?;
        admin.pool.close().await;
        Db::connect(&format!("{base}/{dbname}")).await
    }
}

/// `query.fetch_one(..).await.db()?` — a sqlx result in the services' error type.
pub trait DbResultExt<T> {
    fn db(self) -> Result<T, ferrostack_core::Error>;
}

impl<T> DbResultExt<T> for Result<T, sqlx::Error> {
    fn db(self) -> Result<T, ferrostack_core::Error> {
        self.map_err(|e| DbError::Sqlx(e).into())
    }
}

/// True when an error is the database refusing a duplicate key (what
/// [`DbError`] turns a unique violation into).
pub fn is_duplicate(e: &ferrostack_core::Error) -> bool {
    matches!(e.base(), ferrostack_core::Error::Conflict(m) if m.contains("duplicate"))
}

impl Db {
    /// A transaction holding the lock row `key` of a service's
    /// `quota_locks (<key_column> PRIMARY KEY, generation BIGINT)` table:
    /// the transaction's first statement writes the row, so the lock is
    /// held before anything is read, on SQLite, MariaDB and PostgreSQL
    /// alike. A missing row is made once, outside (a concurrent duplicate
    /// is fine), and the write tried again. Every quota check and the
    /// insert it guards run in one of these.
    pub async fn begin_under_quota_lock(
        &self,
        key_column: &'static str,
        key: &str,
    ) -> Result<sqlx::Transaction<'_, sqlx::Any>, ferrostack_core::Error> {
        let lock =
            format!("UPDATE quota_locks SET generation = generation + 1 WHERE {key_column} = ?");
        let lock = self.sql(&lock);
        for _ in 0..2 {
            let mut tx = self.pool.begin().await.db()?;
            let locked = sqlx::query(&lock)
                .bind(key)
                .execute(&mut *tx)
                .await
                .db()?
                .rows_affected();
            if locked == 1 {
                return Ok(tx);
            }
            tx.rollback().await.db()?;
            let made = sqlx::query(&self.sql(&format!(
                "INSERT INTO quota_locks ({key_column}, generation) VALUES (?, 0)"
            )))
            .bind(key)
            .execute(&self.pool)
            .await
            .db();
            match made {
                Err(e) if !is_duplicate(&e) => return Err(e),
                _ => {}
            }
        }
        Err(ferrostack_core::Error::Internal(format!(
            "the quota lock row of {key} could not be made"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[Migration] = &[
        Migration {
            version: 1,
            name: "things",
            sql: "CREATE TABLE things (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, enabled BIGINT NOT NULL, extra TEXT);\nCREATE UNIQUE INDEX things_name ON things (name)",
        },
        Migration { version: 2, name: "things_size", sql: "ALTER TABLE things ADD COLUMN size BIGINT" },
    ];

    /// Two controllers starting at once on one database: each session
    /// migrates under the lock, so both start and each version is applied
    /// once (without the lock the second `CREATE TABLE` fails).
    #[tokio::test]
    async fn concurrent_migrations_apply_each_version_once() {
        for db in testing::test_databases("db_crate_concurrent").await {
            let runs = (0..4).map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.migrate(MIGRATIONS).await })
            });
            for run in runs.collect::<Vec<_>>() {
                let latest = run.await.unwrap();
                assert_eq!(latest.unwrap(), 2, "on {:?}", db.backend);
            }
            let applied = sqlx::query("SELECT COUNT(*) AS n FROM schema_migrations")
                .fetch_one(&db.pool)
                .await
                .unwrap();
            assert_eq!(applied.int("n"), 2, "on {:?}", db.backend);
        }
    }

    #[tokio::test]
    async fn migrations_and_portable_queries_on_every_engine() {
        for db in testing::test_databases("db_crate").await {
            assert_eq!(db.migrate(MIGRATIONS).await.unwrap(), 2);
            // Idempotent.
            assert_eq!(db.migrate(MIGRATIONS).await.unwrap(), 2);
            sqlx::query(
                &db.sql(
                    "INSERT INTO things (id, name, enabled, extra, size) VALUES (?, ?, ?, ?, ?)",
                ),
            )
            .bind("a")
            .bind("alpha")
            .bind(1i64)
            .bind(r#"{"k":"v"}"#)
            .bind(Option::<i64>::None)
            .execute(&db.pool)
            .await
            .unwrap();
            let row = sqlx::query(&db.sql("SELECT * FROM things WHERE id = ?"))
                .bind("a")
                .fetch_one(&db.pool)
                .await
                .unwrap();
            assert_eq!(row.str("name"), "alpha");
            assert!(row.flag("enabled"));
            assert_eq!(row.json("extra")["k"], "v");
            assert_eq!(row.opt_str("missing_is_none"), None);
            let dup =
                sqlx::query(&db.sql("INSERT INTO things (id, name, enabled) VALUES (?, ?, ?)"))
                    .bind("b")
                    .bind("alpha")
                    .bind(0i64)
                    .execute(&db.pool)
                    .await
                    .unwrap_err();
            let err: ferrostack_core::Error = DbError::from(dup).into();
            assert_eq!(err.status(), 409, "{:?} on {:?}", err, db.backend);
        }
    }
}
