//! Snapshot records.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB: the volume's size when taken.
    pub size: i64,
    pub status: String,
    pub metadata: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    /// What `os-update_snapshot_status` last reported (`80%`); `None`:
    /// derived from the status.
    pub progress: Option<String>,
}

pub const PROGRESS_SCHEMA: &str = "ALTER TABLE snapshots ADD COLUMN progress VARCHAR(255)";

/// `os-update_snapshot_status`: compare-and-set of the status with the
/// progress the caller reports.
pub async fn set_status_progress(
    db: &Db,
    id: &str,
    from: &str,
    to: &str,
    progress: Option<&str>,
) -> Result<bool> {
    let done = sqlx::query(&db.sql(
        "UPDATE snapshots SET status = ?, progress = ?, updated_at = ? WHERE id = ? AND status = ?",
    ))
    .bind(to)
    .bind(progress)
    .bind(super::now_str())
    .bind(id)
    .bind(from)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

fn from_row(r: &sqlx::any::AnyRow) -> Snapshot {
    Snapshot {
        id: r.str("id"),
        project_id: r.str("project_id"),
        user_id: r.str("user_id"),
        volume_id: r.str("volume_id"),
        name: r.opt_str("name"),
        description: r.opt_str("description"),
        size: r.int("size"),
        status: r.str("status"),
        metadata: r.json("metadata").as_object().cloned().unwrap_or_default(),
        created_at: r.str("created_at"),
        updated_at: r.str("updated_at"),
        progress: r.opt_str("progress"),
    }
}

pub async fn insert_on(db: &Db, conn: &mut AnyConnection, s: &Snapshot) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO snapshots (id, project_id, user_id, volume_id, name, description, size, status, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&s.id)
    .bind(&s.project_id)
    .bind(&s.user_id)
    .bind(&s.volume_id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(s.size)
    .bind(&s.status)
    .bind(Value::Object(s.metadata.clone()).to_string())
    .bind(&s.created_at)
    .bind(&s.updated_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Snapshot>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM snapshots WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .as_ref()
        .map(from_row))
}

/// Every snapshot of a project, or of all projects (`None`).
pub async fn list(db: &Db, project_id: Option<&str>) -> Result<Vec<Snapshot>> {
    let rows = super::newest_first(db, "snapshots", project_id).await?;
    Ok(rows.iter().map(from_row).collect())
}

/// The snapshots of one volume.
pub async fn of_volume(db: &Db, volume_id: &str) -> Result<Vec<Snapshot>> {
    let mut conn = db.pool.acquire().await.db()?;
    of_volume_on(db, &mut conn, volume_id).await
}

pub async fn of_volume_on(
    db: &Db,
    conn: &mut AnyConnection,
    volume_id: &str,
) -> Result<Vec<Snapshot>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM snapshots WHERE volume_id = ?"))
            .bind(volume_id)
            .fetch_all(conn)
            .await
            .db()?
            .iter()
            .map(from_row)
            .collect(),
    )
}

/// Compare-and-set of the status: true when the snapshot was in one of `from`.
pub async fn transition_on(
    db: &Db,
    conn: &mut AnyConnection,
    id: &str,
    from: &[&str],
    to: &str,
) -> Result<bool> {
    let marks = vec!["?"; from.len()].join(", ");
    let sql = format!(
        "UPDATE snapshots SET status = ?, updated_at = ? WHERE id = ? AND status IN ({marks})"
    );
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql).bind(to).bind(super::now_str()).bind(id);
    for f in from {
        q = q.bind(*f);
    }
    Ok(q.execute(conn).await.db()?.rows_affected() == 1)
}

pub async fn transition(db: &Db, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let mut conn = db.pool.acquire().await.db()?;
    transition_on(db, &mut conn, id, from, to).await
}

/// Write the user-settable fields.
pub async fn update(db: &Db, s: &Snapshot) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE snapshots SET name = ?, description = ?, metadata = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(&s.name)
    .bind(&s.description)
    .bind(Value::Object(s.metadata.clone()).to_string())
    .bind(super::now_str())
    .bind(&s.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM snapshots WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Give a volume's snapshots to another project (an accepted transfer).
pub async fn move_on(
    db: &Db,
    conn: &mut AnyConnection,
    volume_id: &str,
    project_id: &str,
    user_id: &str,
) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE snapshots SET project_id = ?, user_id = ?, updated_at = ? WHERE volume_id = ?",
    ))
    .bind(project_id)
    .bind(user_id)
    .bind(super::now_str())
    .bind(volume_id)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}
