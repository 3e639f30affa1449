//! Volume attachments (Cinder's `volume_attachment` table) and the
//! service heartbeats (`services`), migration 3.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;

pub const SCHEMA: &str = "
CREATE TABLE attachments (id VARCHAR(36) PRIMARY KEY, volume_id VARCHAR(36) NOT NULL, project_id VARCHAR(64) NOT NULL, instance_uuid VARCHAR(36), attached_host VARCHAR(255), mountpoint VARCHAR(255), attach_status VARCHAR(30) NOT NULL, attach_mode VARCHAR(4) NOT NULL, connector TEXT, connection_info TEXT, attach_time VARCHAR(32), detach_time VARCHAR(32), created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX attachments_volume ON attachments (volume_id);
CREATE TABLE services (host VARCHAR(255) NOT NULL, vbinary VARCHAR(64) NOT NULL, zone VARCHAR(255) NOT NULL, disabled BIGINT NOT NULL, disabled_reason TEXT, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (host, vbinary))
";

/// An attachment's own state (Cinder's `attach_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachStatus {
    /// Made without a connector: the volume is held for the instance.
    Reserved,
    /// A connector was given: the export exists, the host is connecting.
    Attaching,
    Attached,
    Detaching,
    Detached,
}

impl AttachStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachStatus::Reserved => "reserved",
            AttachStatus::Attaching => "attaching",
            AttachStatus::Attached => "attached",
            AttachStatus::Detaching => "detaching",
            AttachStatus::Detached => "detached",
        }
    }

    pub fn parse(s: &str) -> AttachStatus {
        match s {
            "reserved" => AttachStatus::Reserved,
            "attaching" => AttachStatus::Attaching,
            "attached" => AttachStatus::Attached,
            "detaching" => AttachStatus::Detaching,
            _ => AttachStatus::Detached,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: String,
    pub volume_id: String,
    pub project_id: String,
    pub instance_uuid: Option<String>,
    pub attached_host: Option<String>,
    pub mountpoint: Option<String>,
    pub status: AttachStatus,
    /// `rw` or `ro`.
    pub mode: String,
    pub connector: Option<Value>,
    pub connection_info: Option<Value>,
    pub attach_time: Option<String>,
    pub detach_time: Option<String>,
    pub created_at: String,
}

fn json_col(r: &sqlx::any::AnyRow, col: &str) -> Option<Value> {
    r.opt_str(col).and_then(|s| serde_json::from_str(&s).ok())
}

fn from_row(r: &sqlx::any::AnyRow) -> Attachment {
    Attachment {
        id: r.str("id"),
        volume_id: r.str("volume_id"),
        project_id: r.str("project_id"),
        instance_uuid: r.opt_str("instance_uuid"),
        attached_host: r.opt_str("attached_host"),
        mountpoint: r.opt_str("mountpoint"),
        status: AttachStatus::parse(&r.str("attach_status")),
        mode: r.str("attach_mode"),
        connector: json_col(r, "connector"),
        connection_info: json_col(r, "connection_info"),
        attach_time: r.opt_str("attach_time"),
        detach_time: r.opt_str("detach_time"),
        created_at: r.str("created_at"),
    }
}

pub async fn insert_on(db: &Db, conn: &mut AnyConnection, a: &Attachment) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO attachments (id, volume_id, project_id, instance_uuid, attached_host, mountpoint, attach_status, attach_mode, connector, connection_info, attach_time, detach_time, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&a.id)
    .bind(&a.volume_id)
    .bind(&a.project_id)
    .bind(&a.instance_uuid)
    .bind(&a.attached_host)
    .bind(&a.mountpoint)
    .bind(a.status.as_str())
    .bind(&a.mode)
    .bind(a.connector.as_ref().map(Value::to_string))
    .bind(a.connection_info.as_ref().map(Value::to_string))
    .bind(&a.attach_time)
    .bind(&a.detach_time)
    .bind(&a.created_at)
    .bind(&a.created_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Write every mutable field of `a`.
pub async fn update(db: &Db, a: &Attachment) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE attachments SET instance_uuid = ?, attached_host = ?, mountpoint = ?, attach_status = ?, attach_mode = ?, connector = ?, connection_info = ?, attach_time = ?, detach_time = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(&a.instance_uuid)
    .bind(&a.attached_host)
    .bind(&a.mountpoint)
    .bind(a.status.as_str())
    .bind(&a.mode)
    .bind(a.connector.as_ref().map(Value::to_string))
    .bind(a.connection_info.as_ref().map(Value::to_string))
    .bind(&a.attach_time)
    .bind(&a.detach_time)
    .bind(super::now_str())
    .bind(&a.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Attachment>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM attachments WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(from_row),
    )
}

/// The attachments of one volume, oldest first.
pub async fn of_volume(db: &Db, volume_id: &str) -> Result<Vec<Attachment>> {
    Ok(sqlx::query(
        &db.sql("SELECT * FROM attachments WHERE volume_id = ? ORDER BY created_at, id"),
    )
    .bind(volume_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(from_row)
    .collect())
}

/// Every attachment of a project, or of all (`None`).
pub async fn list(db: &Db, project_id: Option<&str>) -> Result<Vec<Attachment>> {
    let rows = super::newest_first(db, "attachments", project_id).await?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM attachments WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Remove a deleted volume's attachment records.
pub async fn delete_of_volume(db: &Db, volume_id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM attachments WHERE volume_id = ?"))
        .bind(volume_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
