//! Volume records.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub struct Volume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB.
    pub size: i64,
    pub status: String,
    pub volume_type_id: String,
    pub availability_zone: String,
    pub bootable: bool,
    pub metadata: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    /// The snapshot or volume it was made from.
    pub snapshot_id: Option<String>,
    pub source_volid: Option<String>,
    /// What Glance said of the image it was made from (Cinder's
    /// `volume_image_metadata`); empty when not made from an image.
    pub image_metadata: Map<String, Value>,
    /// The generic volume group it belongs to (3.13+).
    pub group_id: Option<String>,
}

fn from_row(r: &sqlx::any::AnyRow) -> Volume {
    Volume {
        id: r.str("id"),
        project_id: r.str("project_id"),
        user_id: r.str("user_id"),
        name: r.opt_str("name"),
        description: r.opt_str("description"),
        size: r.int("size"),
        status: r.str("status"),
        volume_type_id: r.str("volume_type_id"),
        availability_zone: r.str("availability_zone"),
        bootable: r.flag("bootable"),
        metadata: r.json("metadata").as_object().cloned().unwrap_or_default(),
        created_at: r.str("created_at"),
        updated_at: r.str("updated_at"),
        snapshot_id: r.opt_str("snapshot_id"),
        source_volid: r.opt_str("source_volid"),
        group_id: r.opt_str("group_id"),
        image_metadata: r
            .json("image_metadata")
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

/// Insert on a connection (the quota-locked transaction of a create).
pub async fn insert_on(db: &Db, conn: &mut AnyConnection, v: &Volume) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO volumes (id, project_id, user_id, name, description, size, status, volume_type_id, availability_zone, bootable, metadata, created_at, updated_at, snapshot_id, source_volid, image_metadata, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&v.id)
    .bind(&v.project_id)
    .bind(&v.user_id)
    .bind(&v.name)
    .bind(&v.description)
    .bind(v.size)
    .bind(&v.status)
    .bind(&v.volume_type_id)
    .bind(&v.availability_zone)
    .bind(v.bootable as i64)
    .bind(Value::Object(v.metadata.clone()).to_string())
    .bind(&v.created_at)
    .bind(&v.updated_at)
    .bind(&v.snapshot_id)
    .bind(&v.source_volid)
    .bind(Value::Object(v.image_metadata.clone()).to_string())
    .bind(&v.group_id)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Volume>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM volumes WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .as_ref()
        .map(from_row))
}

/// Every volume of a project, or of all projects (`None`).
pub async fn list(db: &Db, project_id: Option<&str>) -> Result<Vec<Volume>> {
    let rows = match project_id {
        Some(p) => {
            sqlx::query(&db.sql("SELECT * FROM volumes WHERE project_id = ?"))
                .bind(p)
                .fetch_all(&db.pool)
                .await
        }
        None => {
            sqlx::query("SELECT * FROM volumes")
                .fetch_all(&db.pool)
                .await
        }
    }
    .db()?;
    Ok(rows.iter().map(from_row).collect())
}

/// A project's volume count and GiB, counted inside its quota lock.
/// Summed here, not with SUM(): MySQL and PostgreSQL answer it as a decimal.
pub async fn usage_on(db: &Db, conn: &mut AnyConnection, project_id: &str) -> Result<(i64, i64)> {
    let sizes = sqlx::query(&db.sql("SELECT size FROM volumes WHERE project_id = ?"))
        .bind(project_id)
        .fetch_all(conn)
        .await
        .db()?;
    Ok((
        sizes.len() as i64,
        sizes.iter().map(|r| r.int("size")).sum(),
    ))
}

/// [`usage_on`] outside a transaction (for limits and quota usage views).
pub async fn usage(db: &Db, project_id: &str) -> Result<(i64, i64)> {
    let mut conn = db.pool.acquire().await.db()?;
    usage_on(db, &mut conn, project_id).await
}

/// Compare-and-set of the status: true when the volume was in one of `from`.
pub async fn transition(db: &Db, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let mut conn = db.pool.acquire().await.db()?;
    transition_on(db, &mut conn, id, from, to).await
}

/// [`transition`] on a connection (with the operation that follows it).
pub async fn transition_on(
    db: &Db,
    conn: &mut AnyConnection,
    id: &str,
    from: &[&str],
    to: &str,
) -> Result<bool> {
    let marks = vec!["?"; from.len()].join(", ");
    let sql = format!(
        "UPDATE volumes SET status = ?, updated_at = ? WHERE id = ? AND status IN ({marks})"
    );
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql).bind(to).bind(super::now_str()).bind(id);
    for f in from {
        q = q.bind(*f);
    }
    Ok(q.execute(conn).await.db()?.rows_affected() == 1)
}

/// Write the user-settable fields.
pub async fn update(db: &Db, v: &Volume) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE volumes SET name = ?, description = ?, metadata = ?, bootable = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(&v.name)
    .bind(&v.description)
    .bind(Value::Object(v.metadata.clone()).to_string())
    .bind(v.bootable as i64)
    .bind(super::now_str())
    .bind(&v.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Set the size of a volume in status `from`, moving it to `to` (an
/// extend's start and its rollback); true when it was in `from`.
pub async fn resize_on(
    db: &Db,
    conn: &mut AnyConnection,
    id: &str,
    size: i64,
    from: &str,
    to: &str,
) -> Result<bool> {
    let done = sqlx::query(&db.sql(
        "UPDATE volumes SET size = ?, status = ?, updated_at = ? WHERE id = ? AND status = ?",
    ))
    .bind(size)
    .bind(to)
    .bind(super::now_str())
    .bind(id)
    .bind(from)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_on(db: &Db, conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM volumes WHERE id = ?"))
        .bind(id)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// How many volumes use a type (a type in use cannot be deleted).
pub async fn count_of_type(db: &Db, type_id: &str) -> Result<i64> {
    let r = sqlx::query(&db.sql("SELECT COUNT(*) AS n FROM volumes WHERE volume_type_id = ?"))
        .bind(type_id)
        .fetch_one(&db.pool)
        .await
        .db()?;
    Ok(r.int("n"))
}

/// Record what a volume made from an image got of it (and that it boots).
pub async fn set_image_metadata(db: &Db, id: &str, meta: &Map<String, Value>) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE volumes SET image_metadata = ?, bootable = 1, updated_at = ? WHERE id = ?"),
    )
    .bind(Value::Object(meta.clone()).to_string())
    .bind(super::now_str())
    .bind(id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Replace a volume's image metadata (the `os-set_image_metadata` family),
/// its bootable flag left as it is.
pub async fn write_image_metadata(db: &Db, id: &str, meta: &Map<String, Value>) -> Result<()> {
    sqlx::query(&db.sql("UPDATE volumes SET image_metadata = ?, updated_at = ? WHERE id = ?"))
        .bind(Value::Object(meta.clone()).to_string())
        .bind(super::now_str())
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Change a volume's type (a retype within one backend).
pub async fn set_type_on(db: &Db, conn: &mut AnyConnection, id: &str, type_id: &str) -> Result<()> {
    sqlx::query(&db.sql("UPDATE volumes SET volume_type_id = ?, updated_at = ? WHERE id = ?"))
        .bind(type_id)
        .bind(super::now_str())
        .bind(id)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Give a volume to another project (an accepted transfer), `available` again.
pub async fn move_on(
    db: &Db,
    conn: &mut AnyConnection,
    id: &str,
    project_id: &str,
    user_id: &str,
) -> Result<bool> {
    let done = sqlx::query(&db.sql(
        "UPDATE volumes SET project_id = ?, user_id = ?, status = 'available', updated_at = ? WHERE id = ? AND status = 'awaiting-transfer'",
    ))
    .bind(project_id)
    .bind(user_id)
    .bind(super::now_str())
    .bind(id)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}
