//! Migration records (`os-migrations`): one row per resize, moved through
//! Nova's statuses (`pre-migrating` → `finished` → `confirmed` /
//! `reverted`, or `error`).

use ferrostack_core::{Error, Result};
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

#[derive(Clone, Debug, Default)]
pub struct MigrationRow {
    pub id: i64,
    /// The id 2.59 shows (and pages by).
    pub uuid: String,
    pub instance_uuid: String,
    pub source_compute: Option<String>,
    pub dest_compute: Option<String>,
    pub source_node: Option<String>,
    pub dest_node: Option<String>,
    pub dest_host: Option<String>,
    pub old_flavor_id: String,
    pub new_flavor_id: String,
    pub status: String,
    pub migration_type: String,
    pub created_at: String,
    pub updated_at: Option<String>,
    /// Who asked for it (shown and filtered on from 2.80; unset on
    /// migrations recorded before the column).
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    /// A live migration's progress (unset until QEMU reports it).
    pub progress: Progress,
    /// A live migration's abort was asked for (2.24).
    pub abort_requested: bool,
}

/// How far a live migration has got, in bytes (Nova's `memory_*_bytes`
/// and `disk_*_bytes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub memory_total: Option<i64>,
    pub memory_processed: Option<i64>,
    pub memory_remaining: Option<i64>,
    pub disk_total: Option<i64>,
    pub disk_processed: Option<i64>,
    pub disk_remaining: Option<i64>,
}

/// A nullable integer column (absent on rows from before it).
fn opt_int(r: &sqlx::any::AnyRow, name: &str) -> Option<i64> {
    use sqlx::Row;
    r.try_get::<Option<i64>, _>(name).ok().flatten()
}

fn migration_from_row(r: &sqlx::any::AnyRow) -> MigrationRow {
    MigrationRow {
        id: r.int("id"),
        uuid: r.opt_str("uuid").unwrap_or_default(),
        instance_uuid: r.str("instance_uuid"),
        source_compute: r.opt_str("source_compute"),
        dest_compute: r.opt_str("dest_compute"),
        source_node: r.opt_str("source_node"),
        dest_node: r.opt_str("dest_node"),
        dest_host: r.opt_str("dest_host"),
        old_flavor_id: r.str("old_flavor_id"),
        new_flavor_id: r.str("new_flavor_id"),
        status: r.str("status"),
        migration_type: r.str("migration_type"),
        created_at: r.str("created_at"),
        updated_at: r.opt_str("updated_at"),
        user_id: r.opt_str("user_id"),
        project_id: r.opt_str("project_id"),
        progress: Progress {
            memory_total: opt_int(r, "memory_total"),
            memory_processed: opt_int(r, "memory_processed"),
            memory_remaining: opt_int(r, "memory_remaining"),
            disk_total: opt_int(r, "disk_total"),
            disk_processed: opt_int(r, "disk_processed"),
            disk_remaining: opt_int(r, "disk_remaining"),
        },
        abort_requested: opt_int(r, "abort_requested").unwrap_or(0) != 0,
    }
}

pub async fn list_migrations(db: &Db) -> Result<Vec<MigrationRow>> {
    Ok(sqlx::query("SELECT * FROM migrations ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(migration_from_row)
        .collect())
}

/// Record a migration (resize) of an instance; returns its id.
pub async fn add_migration(db: &Db, m: &MigrationRow) -> Result<i64> {
    let now = super::now();
    for _ in 0..10 {
        let id = super::next_id(db, "migrations").await?;
        let r = sqlx::query(&db.sql(
            "INSERT INTO migrations (id, uuid, instance_uuid, source_compute, dest_compute, source_node, dest_node, dest_host, old_flavor_id, new_flavor_id, status, migration_type, created_at, updated_at, user_id, project_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(id)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&m.instance_uuid)
        .bind(&m.source_compute)
        .bind(&m.dest_compute)
        .bind(&m.source_node)
        .bind(&m.dest_node)
        .bind(&m.dest_host)
        .bind(&m.old_flavor_id)
        .bind(&m.new_flavor_id)
        .bind(&m.status)
        .bind(&m.migration_type)
        .bind(&now)
        .bind(&now)
        .bind(&m.user_id)
        .bind(&m.project_id)
        .execute(&db.pool)
        .await
        .db();
        match r {
            Ok(_) => return Ok(id),
            Err(e) if super::is_duplicate(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict("could not allocate a migration id".into()))
}

/// Move the newest migration of an instance to `status`.
pub async fn set_migration_status(db: &Db, instance: &str, status: &str) -> Result<()> {
    finish_migration(db, instance, status, None).await
}

/// Move the newest migration of an instance to `status`, recording its
/// destination host when known.
pub async fn finish_migration(
    db: &Db,
    instance: &str,
    status: &str,
    dest: Option<&str>,
) -> Result<()> {
    let Some(m) = list_migrations(db)
        .await?
        .into_iter()
        .filter(|m| m.instance_uuid == instance)
        .max_by_key(|m| m.id)
    else {
        return Ok(());
    };
    let dest = dest.map(str::to_owned).or(m.dest_compute);
    sqlx::query(&db.sql(
        "UPDATE migrations SET status = ?, dest_compute = ?, dest_node = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(status)
    .bind(&dest)
    .bind(&dest)
    .bind(super::now())
    .bind(m.id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// The newest migration of an instance.
pub async fn latest(db: &Db, instance: &str) -> Result<Option<MigrationRow>> {
    let row = sqlx::query(
        &db.sql("SELECT * FROM migrations WHERE instance_uuid = ? ORDER BY id DESC LIMIT 1"),
    )
    .bind(instance)
    .fetch_optional(&db.pool)
    .await
    .db()?;
    Ok(row.as_ref().map(migration_from_row))
}

/// Move migration `id` to `status`.
pub async fn set_status_of(db: &Db, id: i64, status: &str) -> Result<()> {
    sqlx::query(&db.sql("UPDATE migrations SET status = ?, updated_at = ? WHERE id = ?"))
        .bind(status)
        .bind(super::now())
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Evacuations away from `host` that its compute service has not cleaned
/// up yet (Nova's `done` ones: the guest rebuilt elsewhere, the source's
/// copy still to be destroyed when the host comes back).
pub async fn evacuated_from(db: &Db, host: &str) -> Result<Vec<MigrationRow>> {
    Ok(sqlx::query(&db.sql(
        "SELECT * FROM migrations WHERE source_compute = ? AND migration_type = 'evacuation' AND status = 'done' ORDER BY id",
    ))
    .bind(host)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(migration_from_row)
    .collect())
}

/// Migration `id` of `instance`.
pub async fn get_of_instance(db: &Db, instance: &str, id: i64) -> Result<Option<MigrationRow>> {
    let row = sqlx::query(&db.sql("SELECT * FROM migrations WHERE id = ? AND instance_uuid = ?"))
        .bind(id)
        .bind(instance)
        .fetch_optional(&db.pool)
        .await
        .db()?;
    Ok(row.as_ref().map(migration_from_row))
}

/// Migration `id`.
pub async fn get(db: &Db, id: i64) -> Result<Option<MigrationRow>> {
    let row = sqlx::query(&db.sql("SELECT * FROM migrations WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?;
    Ok(row.as_ref().map(migration_from_row))
}

/// Record a live migration's progress.
pub async fn set_progress(db: &Db, id: i64, p: &Progress) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE migrations SET memory_total = ?, memory_processed = ?, memory_remaining = ?, disk_total = ?, disk_processed = ?, disk_remaining = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(p.memory_total)
    .bind(p.memory_processed)
    .bind(p.memory_remaining)
    .bind(p.disk_total)
    .bind(p.disk_processed)
    .bind(p.disk_remaining)
    .bind(super::now())
    .bind(id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Ask for migration `id` to be aborted, if its status is one of
/// `statuses`; whether it was.
pub async fn request_abort(db: &Db, id: i64, statuses: &[&str]) -> Result<bool> {
    let marks = vec!["?"; statuses.len()].join(", ");
    let sql = format!(
        "UPDATE migrations SET abort_requested = 1, updated_at = ? WHERE id = ? AND status IN ({marks})"
    );
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql).bind(super::now()).bind(id);
    for s in statuses {
        q = q.bind(*s);
    }
    Ok(q.execute(&db.pool).await.db()?.rows_affected() > 0)
}
