//! What the network API tests share beside the testkit.

use ferrostack_db::Db;
use std::time::Duration;

/// A SQLite network database whose pool has exactly one connection: a code
/// path that waits for a second connection while holding one fails at once
/// (2 s acquire timeout) instead of deadlocking only under load.
pub async fn one_connection_db(dir: &std::path::Path) -> Db {
    let url = format!("sqlite://{}/network-1conn.sqlite?mode=rwc", dir.display());
    Db::connect_with(&url, Some(1), Duration::from_secs(2))
        .await
        .expect("sqlite")
}
