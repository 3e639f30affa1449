//! Flavors (with extra specs and project access), key pairs and quotas.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub ram: i64,
    pub vcpus: i64,
    pub disk: i64,
    pub ephemeral: i64,
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
}

/// Nova's default flavors, created at first start (ids "1".."5").
pub const DEFAULT_FLAVORS: &[(&str, &str, i64, i64, i64)] = &[
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
];

fn flavor_from_row(r: &sqlx::any::AnyRow) -> Flavor {
    Flavor {
        id: r.str("id"),
        name: r.str("name"),
        ram: r.int("ram"),
        vcpus: r.int("vcpus"),
        disk: r.int("disk"),
        ephemeral: r.int("ephemeral"),
        swap: r.int("swap"),
        rxtx_factor: r.str("rxtx_factor").parse().unwrap_or(1.0),
        is_public: r.flag("is_public"),
        disabled: r.flag("disabled"),
        description: r.opt_str("description"),
        extra_specs: serde_json::from_str(&r.str("extra_specs")).unwrap_or_default(),
    }
}

pub async fn insert_flavor(db: &Db, f: &Flavor) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO flavors (id, name, ram, vcpus, disk, ephemeral, swap, rxtx_factor, is_public, disabled, description, extra_specs, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&f.id)
    .bind(&f.name)
    .bind(f.ram)
    .bind(f.vcpus)
    .bind(f.disk)
    .bind(f.ephemeral)
    .bind(f.swap)
    // Exponent form: at most ~24 characters for any f64 (the column holds 32).
    .bind(format!("{:e}", f.rxtx_factor))
    .bind(f.is_public as i64)
    .bind(f.disabled as i64)
    .bind(f.description.clone())
    .bind(serde_json::to_string(&f.extra_specs).expect("map"))
    .bind(super::seq())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Create the default flavors that do not exist yet (idempotent).
pub async fn ensure_default_flavors(db: &Db) -> Result<()> {
    for (id, name, ram, vcpus, disk) in DEFAULT_FLAVORS {
        if get_flavor(db, id).await?.is_some() {
            continue;
        }
        let f = Flavor {
            id: id.to_string(),
            name: name.to_string(),
            ram: *ram,
            vcpus: *vcpus,
            disk: *disk,
            rxtx_factor: 1.0,
            is_public: true,
            ..Default::default()
        };
        match insert_flavor(db, &f).await {
            Ok(()) => {}
            // Another controller created it meanwhile.
            Err(e) if super::is_duplicate(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub async fn get_flavor(db: &Db, id: &str) -> Result<Option<Flavor>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM flavors WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .map(|r| flavor_from_row(&r)))
}

pub async fn list_flavors(db: &Db) -> Result<Vec<Flavor>> {
    Ok(sqlx::query("SELECT * FROM flavors ORDER BY seq")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(flavor_from_row)
        .collect())
}

pub async fn delete_flavor(db: &Db, id: &str) -> Result<bool> {
    sqlx::query(&db.sql("DELETE FROM flavor_projects WHERE flavor_id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(sqlx::query(&db.sql("DELETE FROM flavors WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected()
        == 1)
}

pub async fn set_extra_specs(db: &Db, id: &str, specs: &BTreeMap<String, String>) -> Result<()> {
    sqlx::query(&db.sql("UPDATE flavors SET extra_specs = ? WHERE id = ?"))
        .bind(serde_json::to_string(specs).expect("map"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn set_flavor_description(db: &Db, id: &str, d: Option<&str>) -> Result<()> {
    sqlx::query(&db.sql("UPDATE flavors SET description = ? WHERE id = ?"))
        .bind(d)
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn flavor_projects(db: &Db, flavor_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query(
        &db.sql("SELECT project_id FROM flavor_projects WHERE flavor_id = ? ORDER BY project_id"),
    )
    .bind(flavor_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| r.str("project_id"))
    .collect())
}

pub async fn add_flavor_project(db: &Db, flavor_id: &str, project: &str) -> Result<()> {
    sqlx::query(&db.sql("INSERT INTO flavor_projects (flavor_id, project_id) VALUES (?, ?)"))
        .bind(flavor_id)
        .bind(project)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn remove_flavor_project(db: &Db, flavor_id: &str, project: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("DELETE FROM flavor_projects WHERE flavor_id = ? AND project_id = ?"))
            .bind(flavor_id)
            .bind(project)
            .execute(&db.pool)
            .await
            .db()?
            .rows_affected()
            == 1,
    )
}

// ----- key pairs -----

#[derive(Clone, Debug, Serialize)]
pub struct KeyPair {
    pub id: i64,
    pub user_id: String,
    pub name: String,
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: String,
}

fn keypair_from_row(r: &sqlx::any::AnyRow) -> KeyPair {
    KeyPair {
        id: r.int("id"),
        user_id: r.str("user_id"),
        name: r.str("name"),
        key_type: r.str("key_type"),
        public_key: r.str("public_key"),
        fingerprint: r.str("fingerprint"),
        created_at: r.str("created_at"),
    }
}

/// Insert `kp` with the next integer id unless its user already has
/// `limit` key pairs (negative: no limit): counted and written in one
/// transaction under the project's quota lock, so concurrent creates cannot
/// both take the last one. False when over the quota; a duplicate name is
/// a 409 for the caller.
pub async fn insert_keypair_within_quota(
    db: &Db,
    kp: &mut KeyPair,
    project: &str,
    limit: i64,
) -> Result<bool> {
    for _ in 0..10 {
        let mut tx = db.begin_under_quota_lock("project_id", project).await?;
        let have: i64 =
            sqlx::query_scalar(&db.sql("SELECT COUNT(*) FROM key_pairs WHERE user_id = ?"))
                .bind(&kp.user_id)
                .fetch_one(&mut *tx)
                .await
                .db()?;
        if limit >= 0 && have >= limit {
            return Ok(false);
        }
        let taken: Option<i64> =
            sqlx::query_scalar(&db.sql("SELECT id FROM key_pairs WHERE user_id = ? AND name = ?"))
                .bind(&kp.user_id)
                .bind(&kp.name)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
        if taken.is_some() {
            return Err(ferrostack_core::Error::Conflict(format!(
                "Key pair '{}' already exists.",
                kp.name
            )));
        }
        kp.id = sqlx::query_scalar(&db.sql("SELECT COALESCE(MAX(id), 0) + 1 FROM key_pairs"))
            .fetch_one(&mut *tx)
            .await
            .db()?;
        let inserted = sqlx::query(&db.sql(
            "INSERT INTO key_pairs (id, user_id, name, key_type, public_key, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(kp.id)
        .bind(&kp.user_id)
        .bind(&kp.name)
        .bind(&kp.key_type)
        .bind(&kp.public_key)
        .bind(&kp.fingerprint)
        .bind(&kp.created_at)
        .execute(&mut *tx)
        .await
        .db();
        match inserted {
            // Another project's key pair took the id first (engines other
            // than SQLite let writers of other projects run meanwhile).
            Err(e) if super::is_duplicate(&e) => continue,
            Err(e) => return Err(e),
            Ok(_) => {
                tx.commit().await.db()?;
                return Ok(true);
            }
        }
    }
    Err(ferrostack_core::Error::Conflict(
        "Could not store the key pair; try again.".into(),
    ))
}

pub async fn get_keypair(db: &Db, user_id: &str, name: &str) -> Result<Option<KeyPair>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM key_pairs WHERE user_id = ? AND name = ?"))
            .bind(user_id)
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| keypair_from_row(&r)),
    )
}

pub async fn list_keypairs(db: &Db, user_id: &str) -> Result<Vec<KeyPair>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM key_pairs WHERE user_id = ? ORDER BY name"))
            .bind(user_id)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(keypair_from_row)
            .collect(),
    )
}

pub async fn delete_keypair(db: &Db, user_id: &str, name: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("DELETE FROM key_pairs WHERE user_id = ? AND name = ?"))
            .bind(user_id)
            .bind(name)
            .execute(&db.pool)
            .await
            .db()?
            .rows_affected()
            == 1,
    )
}

// ----- quotas -----

/// A project's explicit limits (resource → limit); defaults come from config.
pub async fn project_quotas(db: &Db, project: &str) -> Result<BTreeMap<String, i64>> {
    Ok(
        sqlx::query(&db.sql("SELECT resource, hard_limit FROM quotas WHERE project_id = ?"))
            .bind(project)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(|r| (r.str("resource"), r.int("hard_limit")))
            .collect(),
    )
}

pub async fn set_quota(db: &Db, project: &str, resource: &str, limit: i64) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    sqlx::query(&db.sql("DELETE FROM quotas WHERE project_id = ? AND resource = ?"))
        .bind(project)
        .bind(resource)
        .execute(&mut *tx)
        .await
        .db()?;
    sqlx::query(&db.sql("INSERT INTO quotas (project_id, resource, hard_limit) VALUES (?, ?, ?)"))
        .bind(project)
        .bind(resource)
        .bind(limit)
        .execute(&mut *tx)
        .await
        .db()?;
    tx.commit().await.db()
}

pub async fn reset_quotas(db: &Db, project: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM quotas WHERE project_id = ?"))
        .bind(project)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
