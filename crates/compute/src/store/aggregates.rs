//! Host aggregates: a name, metadata (`availability_zone` among it) and
//! member hosts, both kept as JSON in the row.

use ferrostack_core::{Error, Result};
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct Aggregate {
    pub id: i64,
    /// The id 2.41 shows (placement's name for the aggregate).
    pub uuid: String,
    pub name: String,
    pub hosts: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl Aggregate {
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get("availability_zone").map(String::as_str)
    }
}

fn from_row(r: &sqlx::any::AnyRow) -> Aggregate {
    Aggregate {
        id: r.int("id"),
        uuid: r.opt_str("uuid").unwrap_or_default(),
        name: r.str("name"),
        hosts: serde_json::from_str(&r.str("hosts")).unwrap_or_default(),
        metadata: serde_json::from_str(&r.str("metadata")).unwrap_or_default(),
        created_at: r.str("created_at"),
        updated_at: r.opt_str("updated_at"),
    }
}

pub async fn list(db: &Db) -> Result<Vec<Aggregate>> {
    Ok(sqlx::query("SELECT * FROM aggregates ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Aggregate>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM aggregates WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| from_row(&r)),
    )
}

/// Insert a new aggregate; a taken name is a conflict.
pub async fn create(db: &Db, name: &str, metadata: &BTreeMap<String, String>) -> Result<Aggregate> {
    let now = super::now();
    let meta = serde_json::to_string(metadata).map_err(Error::internal)?;
    for _ in 0..10 {
        let id = super::next_id(db, "aggregates").await?;
        let r = sqlx::query(&db.sql(
            "INSERT INTO aggregates (id, uuid, name, hosts, metadata, created_at, updated_at) VALUES (?, ?, ?, '[]', ?, ?, NULL)",
        ))
        .bind(id)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(name)
        .bind(&meta)
        .bind(&now)
        .execute(&db.pool)
        .await
        .db();
        match r {
            Ok(_) => {
                return get(db, id)
                    .await?
                    .ok_or_else(|| Error::Internal("aggregate vanished".into()))
            }
            Err(e) if super::is_duplicate(&e) => {
                if list(db).await?.iter().any(|a| a.name == name) {
                    return Err(Error::Conflict(format!("Aggregate {name} already exists.")));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict("could not allocate an aggregate id".into()))
}

/// Write back name, hosts and metadata, stamping `updated_at`.
pub async fn save(db: &Db, a: &Aggregate) -> Result<Aggregate> {
    let r = sqlx::query(&db.sql(
        "UPDATE aggregates SET name = ?, hosts = ?, metadata = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(&a.name)
    .bind(serde_json::to_string(&a.hosts).map_err(Error::internal)?)
    .bind(serde_json::to_string(&a.metadata).map_err(Error::internal)?)
    .bind(super::now())
    .bind(a.id)
    .execute(&db.pool)
    .await
    .db();
    match r {
        Err(e) if super::is_duplicate(&e) => Err(Error::Conflict(format!(
            "Aggregate {} already exists.",
            a.name
        ))),
        Err(e) => Err(e),
        Ok(_) => get(db, a.id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("Aggregate {} could not be found.", a.id))),
    }
}

pub async fn delete(db: &Db, id: i64) -> Result<bool> {
    Ok(sqlx::query(&db.sql("DELETE FROM aggregates WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected()
        == 1)
}

/// The zone of `host`: its aggregates' `availability_zone`, if any.
pub async fn zone_of(db: &Db, host: &str) -> Result<Option<String>> {
    Ok(list(db)
        .await?
        .into_iter()
        .filter(|a| a.hosts.iter().any(|h| h == host))
        .find_map(|a| a.availability_zone().map(str::to_owned)))
}

/// Point the compute services of `host` at its zone (the aggregate's, or
/// `default` when no aggregate of the host names one).
pub async fn sync_zone(db: &Db, host: &str, default: &str) -> Result<()> {
    let zone = zone_of(db, host)
        .await?
        .unwrap_or_else(|| default.to_owned());
    sqlx::query(&db.sql("UPDATE services SET zone = ? WHERE host = ?"))
        .bind(zone)
        .bind(host)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
