//! What a project uses of each quota resource, counted from the records
//! (inside the project's quota lock when a change depends on it).

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use std::collections::HashMap;

/// Resource name → amount used: `volumes`, `gigabytes` (volumes and
/// snapshots, as Cinder counts them), `snapshots`, `backups`,
/// `backup_gigabytes`, `groups`, and `volumes_<type>`, `gigabytes_<type>`,
/// `snapshots_<type>` by type name. Summed here, not with SUM(): MySQL and
/// PostgreSQL answer it as a decimal.
pub async fn project_on(
    db: &Db,
    conn: &mut AnyConnection,
    project_id: &str,
) -> Result<HashMap<String, i64>> {
    let names: HashMap<String, String> = sqlx::query("SELECT id, name FROM volume_types")
        .fetch_all(&mut *conn)
        .await
        .db()?
        .iter()
        .map(|r| (r.str("id"), r.str("name")))
        .collect();
    let mut used: HashMap<String, i64> = HashMap::new();
    let mut add = |k: String, n: i64| *used.entry(k).or_insert(0) += n;
    let vols =
        sqlx::query(&db.sql("SELECT size, volume_type_id FROM volumes WHERE project_id = ?"))
            .bind(project_id)
            .fetch_all(&mut *conn)
            .await
            .db()?;
    for r in &vols {
        let t = names
            .get(&r.str("volume_type_id"))
            .cloned()
            .unwrap_or_default();
        add("volumes".into(), 1);
        add("gigabytes".into(), r.int("size"));
        add(format!("volumes_{t}"), 1);
        add(format!("gigabytes_{t}"), r.int("size"));
    }
    let snaps = sqlx::query(&db.sql(
        "SELECT s.size AS size, v.volume_type_id AS volume_type_id FROM snapshots s LEFT JOIN volumes v ON v.id = s.volume_id WHERE s.project_id = ?",
    ))
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    for r in &snaps {
        let t = names
            .get(&r.str("volume_type_id"))
            .cloned()
            .unwrap_or_default();
        add("snapshots".into(), 1);
        add("gigabytes".into(), r.int("size"));
        add(format!("snapshots_{t}"), 1);
        add(format!("gigabytes_{t}"), r.int("size"));
    }
    let backups = sqlx::query(&db.sql("SELECT size FROM backups WHERE project_id = ?"))
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    for r in &backups {
        add("backups".into(), 1);
        add("backup_gigabytes".into(), r.int("size"));
    }
    let groups = sqlx::query(&db.sql("SELECT id FROM volume_groups WHERE project_id = ?"))
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    add("groups".into(), groups.len() as i64);
    Ok(used)
}

pub async fn project(db: &Db, project_id: &str) -> Result<HashMap<String, i64>> {
    let mut conn = db.pool.acquire().await.db()?;
    project_on(db, &mut conn, project_id).await
}
