//! Backup records.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub struct Backup {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB: the volume's size when backed up.
    pub size: i64,
    pub status: String,
    pub fail_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The backup an incremental one holds the changes since.
    pub parent_id: Option<String>,
    /// The snapshot backed up, when not the volume itself.
    pub snapshot_id: Option<String>,
    /// The volume's metadata when backed up (a restore gives it back).
    pub volume_metadata: Map<String, Value>,
}

pub const SCHEMA_V8: &str = "
ALTER TABLE backups ADD COLUMN parent_id VARCHAR(36);
ALTER TABLE backups ADD COLUMN snapshot_id VARCHAR(36);
ALTER TABLE backups ADD COLUMN volume_metadata TEXT
";

fn from_row(r: &sqlx::any::AnyRow) -> Backup {
    Backup {
        id: r.str("id"),
        project_id: r.str("project_id"),
        user_id: r.str("user_id"),
        volume_id: r.str("volume_id"),
        name: r.opt_str("name"),
        description: r.opt_str("description"),
        size: r.int("size"),
        status: r.str("status"),
        fail_reason: r.opt_str("fail_reason"),
        created_at: r.str("created_at"),
        updated_at: r.str("updated_at"),
        parent_id: r.opt_str("parent_id"),
        snapshot_id: r.opt_str("snapshot_id"),
        volume_metadata: r
            .opt_str("volume_metadata")
            .and_then(|m| serde_json::from_str::<Map<String, Value>>(&m).ok())
            .unwrap_or_default(),
    }
}

pub async fn insert_on(db: &Db, conn: &mut AnyConnection, b: &Backup) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO backups (id, project_id, user_id, volume_id, name, description, size, status, fail_reason, created_at, updated_at, parent_id, snapshot_id, volume_metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&b.id)
    .bind(&b.project_id)
    .bind(&b.user_id)
    .bind(&b.volume_id)
    .bind(&b.name)
    .bind(&b.description)
    .bind(b.size)
    .bind(&b.status)
    .bind(&b.fail_reason)
    .bind(&b.created_at)
    .bind(&b.updated_at)
    .bind(&b.parent_id)
    .bind(&b.snapshot_id)
    .bind(Value::Object(b.volume_metadata.clone()).to_string())
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Backup>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM backups WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .as_ref()
        .map(from_row))
}

/// Every backup of a project, or of all projects (`None`), newest first.
pub async fn list(db: &Db, project_id: Option<&str>) -> Result<Vec<Backup>> {
    let rows = super::newest_first(db, "backups", project_id).await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Compare-and-set of the status (and the reason of a failure).
pub async fn transition(
    db: &Db,
    id: &str,
    from: &[&str],
    to: &str,
    fail_reason: Option<&str>,
) -> Result<bool> {
    let mut conn = db.pool.acquire().await.db()?;
    transition_on(db, &mut conn, id, from, to, fail_reason).await
}

/// [`transition`] on a connection (with the change that goes with it).
pub async fn transition_on(
    db: &Db,
    conn: &mut AnyConnection,
    id: &str,
    from: &[&str],
    to: &str,
    fail_reason: Option<&str>,
) -> Result<bool> {
    let marks = vec!["?"; from.len()].join(", ");
    let sql = format!(
        "UPDATE backups SET status = ?, fail_reason = ?, updated_at = ? WHERE id = ? AND status IN ({marks})"
    );
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql)
        .bind(to)
        .bind(fail_reason)
        .bind(super::now_str())
        .bind(id);
    for f in from {
        q = q.bind(*f);
    }
    Ok(q.execute(conn).await.db()?.rows_affected() == 1)
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM backups WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Whether an incremental backup builds on backup `id`.
pub async fn has_dependents(db: &Db, id: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("SELECT id FROM backups WHERE parent_id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .is_some(),
    )
}

/// The newest `available` backup of a volume: what an incremental one
/// builds on.
pub async fn latest_of_volume(db: &Db, volume_id: &str) -> Result<Option<Backup>> {
    Ok(sqlx::query(&db.sql(
        "SELECT * FROM backups WHERE volume_id = ? AND status = 'available' ORDER BY created_at DESC, id DESC",
    ))
    .bind(volume_id)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .as_ref()
    .map(from_row))
}

/// Write a backup's name and description.
pub async fn rename(db: &Db, b: &Backup) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE backups SET name = ?, description = ?, updated_at = ? WHERE id = ?"),
    )
    .bind(&b.name)
    .bind(&b.description)
    .bind(super::now_str())
    .bind(&b.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}
