//! QoS specs (`qos_specs` rows) and their association with volume types
//! (the type's `qos_specs_id`, one specs per type as in Cinder).

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::{Map, Value};

pub const SCHEMA: &str = "
CREATE TABLE qos_specs (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255) NOT NULL, consumer VARCHAR(20) NOT NULL, specs TEXT NOT NULL, created_at VARCHAR(32) NOT NULL);
CREATE UNIQUE INDEX qos_specs_name ON qos_specs (name);
ALTER TABLE volume_types ADD COLUMN qos_specs_id VARCHAR(36)
";

/// Who enforces the limits: the hypervisor (`front-end`), the storage
/// (`back-end`) or both, as Cinder's `consumer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumer {
    FrontEnd,
    BackEnd,
    Both,
}

impl Consumer {
    pub fn parse(s: &str) -> Option<Consumer> {
        match s {
            "front-end" => Some(Consumer::FrontEnd),
            "back-end" => Some(Consumer::BackEnd),
            "both" => Some(Consumer::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Consumer::FrontEnd => "front-end",
            Consumer::BackEnd => "back-end",
            Consumer::Both => "both",
        }
    }
}

#[derive(Clone, Debug)]
pub struct QosSpecs {
    pub id: String,
    pub name: String,
    pub consumer: Consumer,
    /// The key/value limits (`read_iops_sec`, …), all strings.
    pub specs: Map<String, Value>,
}

fn from_row(r: &sqlx::any::AnyRow) -> QosSpecs {
    QosSpecs {
        id: r.str("id"),
        name: r.str("name"),
        consumer: Consumer::parse(&r.str("consumer")).unwrap_or(Consumer::BackEnd),
        specs: r.json("specs").as_object().cloned().unwrap_or_default(),
    }
}

pub async fn insert(db: &Db, q: &QosSpecs) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO qos_specs (id, name, consumer, specs, created_at) VALUES (?, ?, ?, ?, ?)",
    ))
    .bind(&q.id)
    .bind(&q.name)
    .bind(q.consumer.as_str())
    .bind(Value::Object(q.specs.clone()).to_string())
    .bind(super::now_str())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn list(db: &Db) -> Result<Vec<QosSpecs>> {
    Ok(
        sqlx::query("SELECT * FROM qos_specs ORDER BY created_at, id")
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(from_row)
            .collect(),
    )
}

pub async fn get(db: &Db, id: &str) -> Result<Option<QosSpecs>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM qos_specs WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .as_ref()
        .map(from_row))
}

pub async fn name_taken(db: &Db, name: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("SELECT id FROM qos_specs WHERE name = ?"))
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .is_some(),
    )
}

/// Write the consumer and the specs.
pub async fn update(db: &Db, q: &QosSpecs) -> Result<()> {
    sqlx::query(&db.sql("UPDATE qos_specs SET consumer = ?, specs = ? WHERE id = ?"))
        .bind(q.consumer.as_str())
        .bind(Value::Object(q.specs.clone()).to_string())
        .bind(&q.id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Delete the specs and drop them from every type they were on.
pub async fn delete(db: &Db, id: &str) -> Result<()> {
    disassociate_all(db, id).await?;
    sqlx::query(&db.sql("DELETE FROM qos_specs WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// The (id, name) of each type the specs are associated with.
pub async fn associations(db: &Db, id: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query(
        &db.sql("SELECT id, name FROM volume_types WHERE qos_specs_id = ? ORDER BY name"),
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| (r.str("id"), r.str("name")))
    .collect())
}

/// Set (or with `None` clear) the specs of a type.
pub async fn set_type_specs(db: &Db, type_id: &str, qos_id: Option<&str>) -> Result<()> {
    sqlx::query(&db.sql("UPDATE volume_types SET qos_specs_id = ? WHERE id = ?"))
        .bind(qos_id)
        .bind(type_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn disassociate_all(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("UPDATE volume_types SET qos_specs_id = NULL WHERE qos_specs_id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
