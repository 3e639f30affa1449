//! Regions, services and endpoints: the service catalog.

use super::b;
use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Value,
}

#[derive(Clone, Debug)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub enabled: bool,
    /// `name`, `description` and any other attributes.
    pub extra: Value,
}

impl Service {
    pub fn name(&self) -> &str {
        self.extra.get("name").and_then(Value::as_str).unwrap_or("")
    }
}

#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    pub extra: Value,
}

pub async fn list_regions(db: &Db) -> Result<Vec<Region>> {
    Ok(sqlx::query("SELECT * FROM regions ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(|r| Region {
            id: r.str("id"),
            description: r.str("description"),
            parent_region_id: r.opt_str("parent_region_id"),
            extra: r.json("extra"),
        })
        .collect())
}

pub async fn get_region(db: &Db, id: &str) -> Result<Option<Region>> {
    Ok(list_regions(db).await?.into_iter().find(|r| r.id == id))
}

pub async fn insert_region(db: &Db, r: &Region) -> Result<()> {
    sqlx::query(
        &db.sql(
            "INSERT INTO regions (id, description, parent_region_id, extra) VALUES (?, ?, ?, ?)",
        ),
    )
    .bind(&r.id)
    .bind(&r.description)
    .bind(&r.parent_region_id)
    .bind(r.extra.to_string())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn update_region(db: &Db, r: &Region) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE regions SET description = ?, parent_region_id = ?, extra = ? WHERE id = ?"),
    )
    .bind(&r.description)
    .bind(&r.parent_region_id)
    .bind(r.extra.to_string())
    .bind(&r.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete_region(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM regions WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn list_services(db: &Db) -> Result<Vec<Service>> {
    Ok(sqlx::query("SELECT * FROM services ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(|r| Service {
            id: r.str("id"),
            service_type: r.str("service_type"),
            enabled: r.flag("enabled"),
            extra: r.json("extra"),
        })
        .collect())
}

pub async fn insert_service(db: &Db, s: &Service) -> Result<()> {
    sqlx::query(
        &db.sql("INSERT INTO services (id, service_type, enabled, extra) VALUES (?, ?, ?, ?)"),
    )
    .bind(&s.id)
    .bind(&s.service_type)
    .bind(b(s.enabled))
    .bind(s.extra.to_string())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn update_service(db: &Db, s: &Service) -> Result<()> {
    sqlx::query(
        &db.sql("UPDATE services SET service_type = ?, enabled = ?, extra = ? WHERE id = ?"),
    )
    .bind(&s.service_type)
    .bind(b(s.enabled))
    .bind(s.extra.to_string())
    .bind(&s.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Delete a service and its endpoints.
pub async fn delete_service(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    for q in [
        "DELETE FROM endpoints WHERE service_id = ?",
        "DELETE FROM services WHERE id = ?",
    ] {
        sqlx::query(&db.sql(q))
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}

pub async fn list_endpoints(db: &Db) -> Result<Vec<Endpoint>> {
    Ok(sqlx::query("SELECT * FROM endpoints ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(|r| Endpoint {
            id: r.str("id"),
            service_id: r.str("service_id"),
            interface: r.str("interface"),
            url: r.str("url"),
            region_id: r.opt_str("region_id"),
            enabled: r.flag("enabled"),
            extra: r.json("extra"),
        })
        .collect())
}

pub async fn insert_endpoint(db: &Db, e: &Endpoint) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO endpoints (id, service_id, interface, url, region_id, enabled, extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&e.id)
    .bind(&e.service_id)
    .bind(&e.interface)
    .bind(&e.url)
    .bind(&e.region_id)
    .bind(b(e.enabled))
    .bind(e.extra.to_string())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn update_endpoint(db: &Db, e: &Endpoint) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE endpoints SET service_id = ?, interface = ?, url = ?, region_id = ?, enabled = ?, extra = ? WHERE id = ?",
    ))
    .bind(&e.service_id)
    .bind(&e.interface)
    .bind(&e.url)
    .bind(&e.region_id)
    .bind(b(e.enabled))
    .bind(e.extra.to_string())
    .bind(&e.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn delete_endpoint(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM endpoints WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
