//! What the network API tests share beside the testkit.

use ferrostack_db::sqlx::any::AnyPoolOptions;
use ferrostack_db::{Backend, Db};
use std::time::Duration;

/// A SQLite network database whose pool has exactly one connection: a code
/// path that waits for a second connection while holding one fails at once
/// (2 s acquire timeout) instead of deadlocking only under load.
pub async fn one_connection_db(dir: &std::path::Path) -> Db {
    ferrostack_db::sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}/network-1conn.sqlite?mode=rwc", dir.display());
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .after_connect(|conn, _| {
            Box::pin(async move {
                use ferrostack_db::sqlx::Executor;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .expect("sqlite");
    Db {
        pool,
        backend: Backend::Sqlite,
    }
}
