//! Generic volume groups (Cinder 3.11–3.20): group types with their specs,
//! groups of volumes (a volume's `group_id`), and group snapshots, whose
//! member snapshots are ordinary snapshots listed in
//! `group_snapshot_members`.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::{Map, Value};

pub const SCHEMA: &str = "
CREATE TABLE group_types (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255) NOT NULL, description TEXT, is_public BIGINT NOT NULL, group_specs TEXT NOT NULL, created_at VARCHAR(32) NOT NULL);
CREATE UNIQUE INDEX group_types_name ON group_types (name);
CREATE TABLE volume_groups (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, name VARCHAR(255), description TEXT, group_type_id VARCHAR(36) NOT NULL, volume_type_ids TEXT NOT NULL, status VARCHAR(30) NOT NULL, settling BIGINT NOT NULL, availability_zone VARCHAR(255) NOT NULL, group_snapshot_id VARCHAR(36), source_group_id VARCHAR(36), created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX volume_groups_project ON volume_groups (project_id);
CREATE TABLE group_snapshots (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, group_id VARCHAR(36) NOT NULL, group_type_id VARCHAR(36) NOT NULL, name VARCHAR(255), description TEXT, status VARCHAR(30) NOT NULL, settling BIGINT NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX group_snapshots_group ON group_snapshots (group_id);
CREATE TABLE group_snapshot_members (group_snapshot_id VARCHAR(36) NOT NULL, snapshot_id VARCHAR(36) NOT NULL, PRIMARY KEY (group_snapshot_id, snapshot_id));
ALTER TABLE volumes ADD COLUMN group_id VARCHAR(36)
";

#[derive(Clone, Debug)]
pub struct GroupType {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub group_specs: Map<String, Value>,
}

fn type_from_row(r: &sqlx::any::AnyRow) -> GroupType {
    GroupType {
        id: r.str("id"),
        name: r.str("name"),
        description: r.opt_str("description"),
        is_public: r.flag("is_public"),
        group_specs: r
            .json("group_specs")
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

pub async fn insert_type(db: &Db, t: &GroupType) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO group_types (id, name, description, is_public, group_specs, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    ))
    .bind(&t.id)
    .bind(&t.name)
    .bind(&t.description)
    .bind(t.is_public as i64)
    .bind(Value::Object(t.group_specs.clone()).to_string())
    .bind(super::now_str())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn update_type(db: &Db, t: &GroupType) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE group_types SET name = ?, description = ?, is_public = ?, group_specs = ? WHERE id = ?",
    ))
    .bind(&t.name)
    .bind(&t.description)
    .bind(t.is_public as i64)
    .bind(Value::Object(t.group_specs.clone()).to_string())
    .bind(&t.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete_type(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM group_types WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn get_type(db: &Db, id: &str) -> Result<Option<GroupType>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM group_types WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(type_from_row),
    )
}

pub async fn get_type_by_name(db: &Db, name: &str) -> Result<Option<GroupType>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM group_types WHERE name = ?"))
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(type_from_row),
    )
}

pub async fn list_types(db: &Db) -> Result<Vec<GroupType>> {
    Ok(
        sqlx::query("SELECT * FROM group_types ORDER BY created_at, id")
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(type_from_row)
            .collect(),
    )
}

/// Whether any group, deleted or not, still uses the type.
pub async fn type_in_use(db: &Db, id: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("SELECT id FROM volume_groups WHERE group_type_id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .is_some(),
    )
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub group_type_id: String,
    pub volume_type_ids: Vec<String>,
    pub status: String,
    /// `creating` until its volumes are made (a group from a source):
    /// the status follows them until it settles.
    pub settling: bool,
    pub availability_zone: String,
    pub group_snapshot_id: Option<String>,
    pub source_group_id: Option<String>,
    pub created_at: String,
}

fn group_from_row(r: &sqlx::any::AnyRow) -> Group {
    Group {
        id: r.str("id"),
        project_id: r.str("project_id"),
        user_id: r.str("user_id"),
        name: r.opt_str("name"),
        description: r.opt_str("description"),
        group_type_id: r.str("group_type_id"),
        volume_type_ids: serde_json::from_value(r.json("volume_type_ids")).unwrap_or_default(),
        status: r.str("status"),
        settling: r.flag("settling"),
        availability_zone: r.str("availability_zone"),
        group_snapshot_id: r.opt_str("group_snapshot_id"),
        source_group_id: r.opt_str("source_group_id"),
        created_at: r.str("created_at"),
    }
}

pub async fn insert_group_on(db: &Db, conn: &mut AnyConnection, g: &Group) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO volume_groups (id, project_id, user_id, name, description, group_type_id, volume_type_ids, status, settling, availability_zone, group_snapshot_id, source_group_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&g.id)
    .bind(&g.project_id)
    .bind(&g.user_id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(&g.group_type_id)
    .bind(serde_json::json!(g.volume_type_ids).to_string())
    .bind(&g.status)
    .bind(g.settling as i64)
    .bind(&g.availability_zone)
    .bind(&g.group_snapshot_id)
    .bind(&g.source_group_id)
    .bind(&g.created_at)
    .bind(&g.created_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn get_group(db: &Db, id: &str) -> Result<Option<Group>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM volume_groups WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(group_from_row),
    )
}

/// The groups of a project, or of all projects (`None`), newest first.
pub async fn list_groups(db: &Db, project_id: Option<&str>) -> Result<Vec<Group>> {
    let rows = super::newest_first(db, "volume_groups", project_id).await?;
    Ok(rows.iter().map(group_from_row).collect())
}

pub async fn update_group_text(
    db: &Db,
    id: &str,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE volume_groups SET name = ?, description = ?, updated_at = ? WHERE id = ?"),
    )
    .bind(name)
    .bind(description)
    .bind(super::now_str())
    .bind(id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Set the status (and whether it still follows its volumes).
pub async fn set_group_status(db: &Db, id: &str, status: &str, settling: bool) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE volume_groups SET status = ?, settling = ?, updated_at = ? WHERE id = ?"),
    )
    .bind(status)
    .bind(settling as i64)
    .bind(super::now_str())
    .bind(id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete_group(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM volume_groups WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Put volume `volume_id` in group `group_id` (or out of any: `None`).
pub async fn set_volume_group(db: &Db, volume_id: &str, group_id: Option<&str>) -> Result<()> {
    sqlx::query(&db.sql("UPDATE volumes SET group_id = ? WHERE id = ?"))
        .bind(group_id)
        .bind(volume_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

#[derive(Clone, Debug)]
pub struct GroupSnapshot {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub group_id: String,
    pub group_type_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    /// `creating` while its member snapshots are taken.
    pub settling: bool,
    pub created_at: String,
}

fn snapshot_from_row(r: &sqlx::any::AnyRow) -> GroupSnapshot {
    GroupSnapshot {
        id: r.str("id"),
        project_id: r.str("project_id"),
        user_id: r.str("user_id"),
        group_id: r.str("group_id"),
        group_type_id: r.str("group_type_id"),
        name: r.opt_str("name"),
        description: r.opt_str("description"),
        status: r.str("status"),
        settling: r.flag("settling"),
        created_at: r.str("created_at"),
    }
}

pub async fn insert_snapshot(db: &Db, s: &GroupSnapshot) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO group_snapshots (id, project_id, user_id, group_id, group_type_id, name, description, status, settling, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&s.id)
    .bind(&s.project_id)
    .bind(&s.user_id)
    .bind(&s.group_id)
    .bind(&s.group_type_id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.status)
    .bind(s.settling as i64)
    .bind(&s.created_at)
    .bind(&s.created_at)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn get_snapshot(db: &Db, id: &str) -> Result<Option<GroupSnapshot>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM group_snapshots WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(snapshot_from_row),
    )
}

/// The group snapshots of a project (or all: `None`), newest first.
pub async fn list_snapshots(db: &Db, project_id: Option<&str>) -> Result<Vec<GroupSnapshot>> {
    let rows = super::newest_first(db, "group_snapshots", project_id).await?;
    Ok(rows.iter().map(snapshot_from_row).collect())
}

pub async fn snapshots_of_group(db: &Db, group_id: &str) -> Result<Vec<GroupSnapshot>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM group_snapshots WHERE group_id = ?"))
            .bind(group_id)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(snapshot_from_row)
            .collect(),
    )
}

pub async fn set_snapshot_status(db: &Db, id: &str, status: &str, settling: bool) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE group_snapshots SET status = ?, settling = ?, updated_at = ? WHERE id = ?"),
    )
    .bind(status)
    .bind(settling as i64)
    .bind(super::now_str())
    .bind(id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete_snapshot(db: &Db, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM group_snapshot_members WHERE group_snapshot_id = ?",
        "DELETE FROM group_snapshots WHERE id = ?",
    ] {
        sqlx::query(&db.sql(sql))
            .bind(id)
            .execute(&db.pool)
            .await
            .db()?;
    }
    Ok(())
}

pub async fn add_member(db: &Db, group_snapshot_id: &str, snapshot_id: &str) -> Result<()> {
    sqlx::query(
        &db.sql(
            "INSERT INTO group_snapshot_members (group_snapshot_id, snapshot_id) VALUES (?, ?)",
        ),
    )
    .bind(group_snapshot_id)
    .bind(snapshot_id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// The ids of a group snapshot's member snapshots.
pub async fn members(db: &Db, group_snapshot_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query(
        &db.sql("SELECT snapshot_id FROM group_snapshot_members WHERE group_snapshot_id = ?"),
    )
    .bind(group_snapshot_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| r.str("snapshot_id"))
    .collect())
}
