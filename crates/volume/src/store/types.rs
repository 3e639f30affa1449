//! Volume types and their extra specs.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub struct VolumeType {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: Map<String, Value>,
    /// The QoS specs associated with the type (`store::qos`).
    pub qos_specs_id: Option<String>,
}

fn from_row(r: &sqlx::any::AnyRow) -> VolumeType {
    VolumeType {
        id: r.str("id"),
        name: r.str("name"),
        description: r.opt_str("description"),
        is_public: r.flag("is_public"),
        extra_specs: r
            .json("extra_specs")
            .as_object()
            .cloned()
            .unwrap_or_default(),
        qos_specs_id: r.opt_str("qos_specs_id"),
    }
}

pub async fn insert(db: &Db, t: &VolumeType) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    ))
    .bind(&t.id)
    .bind(&t.name)
    .bind(&t.description)
    .bind(t.is_public as i64)
    .bind(Value::Object(t.extra_specs.clone()).to_string())
    .bind(super::now_str())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn list(db: &Db) -> Result<Vec<VolumeType>> {
    Ok(sqlx::query("SELECT * FROM volume_types ORDER BY name")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<VolumeType>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM volume_types WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(from_row),
    )
}

pub async fn get_by_name(db: &Db, name: &str) -> Result<Option<VolumeType>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM volume_types WHERE name = ?"))
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .as_ref()
            .map(from_row),
    )
}

/// Write a type's name, description and visibility.
pub async fn update(db: &Db, t: &VolumeType) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE volume_types SET name = ?, description = ?, is_public = ? WHERE id = ?"),
    )
    .bind(&t.name)
    .bind(&t.description)
    .bind(t.is_public as i64)
    .bind(&t.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn set_extra_specs(db: &Db, id: &str, specs: &Map<String, Value>) -> Result<()> {
    sqlx::query(&db.sql("UPDATE volume_types SET extra_specs = ? WHERE id = ?"))
        .bind(Value::Object(specs.clone()).to_string())
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM volume_types WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
