//! Services (nova-compute rows with heartbeats), compute nodes and the
//! resource claims placed on them.

use ferrostack_core::{Error, Result};
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct ServiceRow {
    pub id: i64,
    /// The id 2.53 shows and takes.
    pub uuid: String,
    pub host: String,
    pub binary: String,
    pub topic: String,
    pub zone: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub updated_at: Option<String>,
}

fn service_from_row(r: &sqlx::any::AnyRow) -> ServiceRow {
    ServiceRow {
        id: r.int("id"),
        uuid: r.opt_str("uuid").unwrap_or_default(),
        host: r.str("host"),
        binary: r.str("binary_name"),
        topic: r.str("topic"),
        zone: r.str("zone"),
        disabled: r.flag("disabled"),
        disabled_reason: r.opt_str("disabled_reason"),
        forced_down: r.flag("forced_down"),
        updated_at: r.opt_str("updated_at"),
    }
}

pub async fn list_services(db: &Db) -> Result<Vec<ServiceRow>> {
    Ok(sqlx::query("SELECT * FROM services ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(service_from_row)
        .collect())
}

pub async fn get_service(db: &Db, host: &str, binary: &str) -> Result<Option<ServiceRow>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM services WHERE host = ? AND binary_name = ?"))
            .bind(host)
            .bind(binary)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| service_from_row(&r)),
    )
}

pub async fn get_service_by_id(db: &Db, id: i64) -> Result<Option<ServiceRow>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM services WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .map(|r| service_from_row(&r)))
}

/// Record a heartbeat, registering the service on its first one.
pub async fn heartbeat(db: &Db, host: &str, binary: &str, topic: &str, zone: &str) -> Result<()> {
    let now = super::now();
    let n = sqlx::query(
        &db.sql("UPDATE services SET updated_at = ? WHERE host = ? AND binary_name = ?"),
    )
    .bind(&now)
    .bind(host)
    .bind(binary)
    .execute(&db.pool)
    .await
    .db()?
    .rows_affected();
    if n == 1 {
        return Ok(());
    }
    // A host an aggregate placed in a zone joins that zone.
    let zone = super::aggregates::zone_of(db, host)
        .await?
        .unwrap_or_else(|| zone.to_owned());
    for _ in 0..10 {
        let id = super::next_id(db, "services").await?;
        let r = sqlx::query(&db.sql(
            "INSERT INTO services (id, uuid, host, binary_name, topic, zone, disabled, disabled_reason, forced_down, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, NULL, 0, ?, ?)",
        ))
        .bind(id)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(host)
        .bind(binary)
        .bind(topic)
        .bind(&zone)
        .bind(&now)
        .bind(&now)
        .execute(&db.pool)
        .await
        .db();
        match r {
            Ok(_) => return Ok(()),
            Err(e) if super::is_duplicate(&e) => {
                if get_service(db, host, binary).await?.is_some() {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict("could not register the service".into()))
}

pub async fn update_service(
    db: &Db,
    id: i64,
    disabled: Option<(bool, Option<String>)>,
    forced_down: Option<bool>,
) -> Result<()> {
    if let Some((d, reason)) = disabled {
        sqlx::query(&db.sql("UPDATE services SET disabled = ?, disabled_reason = ? WHERE id = ?"))
            .bind(d as i64)
            .bind(reason)
            .bind(id)
            .execute(&db.pool)
            .await
            .db()?;
    }
    if let Some(f) = forced_down {
        sqlx::query(&db.sql("UPDATE services SET forced_down = ? WHERE id = ?"))
            .bind(f as i64)
            .bind(id)
            .execute(&db.pool)
            .await
            .db()?;
    }
    Ok(())
}

pub async fn delete_service(db: &Db, id: i64) -> Result<bool> {
    Ok(sqlx::query(&db.sql("DELETE FROM services WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected()
        == 1)
}

// ----- compute nodes -----

#[derive(Clone, Debug, Serialize, Default)]
pub struct ComputeNode {
    pub id: i64,
    /// The id 2.53 shows and takes.
    pub uuid: String,
    pub host: String,
    pub hypervisor_hostname: String,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub host_ip: String,
    pub cpu_info: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub vcpus_used: i64,
    pub memory_mb_used: i64,
    pub local_gb_used: i64,
    pub running_vms: i64,
    pub updated_at: Option<String>,
}

fn node_from_row(r: &sqlx::any::AnyRow) -> ComputeNode {
    ComputeNode {
        id: r.int("id"),
        uuid: r.opt_str("uuid").unwrap_or_default(),
        host: r.str("host"),
        hypervisor_hostname: r.str("hypervisor_hostname"),
        hypervisor_type: r.str("hypervisor_type"),
        hypervisor_version: r.int("hypervisor_version"),
        host_ip: r.str("host_ip"),
        cpu_info: r.str("cpu_info"),
        vcpus: r.int("vcpus"),
        memory_mb: r.int("memory_mb"),
        local_gb: r.int("local_gb"),
        vcpus_used: r.int("vcpus_used"),
        memory_mb_used: r.int("memory_mb_used"),
        local_gb_used: r.int("local_gb_used"),
        running_vms: r.int("running_vms"),
        updated_at: r.opt_str("updated_at"),
    }
}

pub async fn list_nodes(db: &Db) -> Result<Vec<ComputeNode>> {
    Ok(sqlx::query("SELECT * FROM compute_nodes ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(node_from_row)
        .collect())
}

pub async fn get_node(db: &Db, host: &str) -> Result<Option<ComputeNode>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM compute_nodes WHERE host = ?"))
            .bind(host)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| node_from_row(&r)),
    )
}

/// Store what the hypervisor reports; the used amounts belong to claims and
/// are never overwritten here.
pub async fn report_node(db: &Db, n: &ComputeNode) -> Result<()> {
    let now = super::now();
    let updated = sqlx::query(&db.sql(
        "UPDATE compute_nodes SET hypervisor_hostname = ?, hypervisor_type = ?, hypervisor_version = ?, host_ip = ?, cpu_info = ?, vcpus = ?, memory_mb = ?, local_gb = ?, running_vms = ?, updated_at = ? WHERE host = ?",
    ))
    .bind(&n.hypervisor_hostname)
    .bind(&n.hypervisor_type)
    .bind(n.hypervisor_version)
    .bind(&n.host_ip)
    .bind(&n.cpu_info)
    .bind(n.vcpus)
    .bind(n.memory_mb)
    .bind(n.local_gb)
    .bind(n.running_vms)
    .bind(&now)
    .bind(&n.host)
    .execute(&db.pool)
    .await
    .db()?
    .rows_affected();
    if updated == 1 {
        return Ok(());
    }
    for _ in 0..10 {
        let id = super::next_id(db, "compute_nodes").await?;
        let r = sqlx::query(&db.sql(
            "INSERT INTO compute_nodes (id, uuid, host, hypervisor_hostname, hypervisor_type, hypervisor_version, host_ip, cpu_info, vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used, running_vms, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?)",
        ))
        .bind(id)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&n.host)
        .bind(&n.hypervisor_hostname)
        .bind(&n.hypervisor_type)
        .bind(n.hypervisor_version)
        .bind(&n.host_ip)
        .bind(&n.cpu_info)
        .bind(n.vcpus)
        .bind(n.memory_mb)
        .bind(n.local_gb)
        .bind(n.running_vms)
        .bind(&now)
        .execute(&db.pool)
        .await
        .db();
        match r {
            Ok(_) => return Ok(()),
            Err(e) if super::is_duplicate(&e) => {
                if get_node(db, &n.host).await?.is_some() {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(
        "could not register the compute node".into(),
    ))
}

// ----- claims -----

/// What one claim takes from a host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

/// Take `want` from `host` if it fits under the limits, in one transaction:
/// the usage counters are raised by a conditional UPDATE (a compare-and-set
/// the database serialises per row), so concurrent claims never over-commit.
/// Idempotent: an existing claim of the same instance and purpose succeeds.
pub async fn claim(
    db: &Db,
    instance_id: &str,
    purpose: &str,
    host: &str,
    want: Resources,
    limits: Resources,
) -> Result<bool> {
    if get_claim(db, instance_id, purpose).await?.is_some() {
        return Ok(true);
    }
    let mut tx = db.pool.begin().await.db()?;
    let n = sqlx::query(&db.sql(
        "UPDATE compute_nodes SET vcpus_used = vcpus_used + ?, memory_mb_used = memory_mb_used + ?, local_gb_used = local_gb_used + ? WHERE host = ? AND vcpus_used + ? <= ? AND memory_mb_used + ? <= ? AND local_gb_used + ? <= ?",
    ))
    .bind(want.vcpus)
    .bind(want.memory_mb)
    .bind(want.disk_gb)
    .bind(host)
    .bind(want.vcpus)
    .bind(limits.vcpus)
    .bind(want.memory_mb)
    .bind(limits.memory_mb)
    .bind(want.disk_gb)
    .bind(limits.disk_gb)
    .execute(&mut *tx)
    .await
    .db()?
    .rows_affected();
    if n != 1 {
        return Ok(false);
    }
    sqlx::query(&db.sql(
        "INSERT INTO claims (instance_id, purpose, host, vcpus, memory_mb, disk_gb) VALUES (?, ?, ?, ?, ?, ?)",
    ))
    .bind(instance_id)
    .bind(purpose)
    .bind(host)
    .bind(want.vcpus)
    .bind(want.memory_mb)
    .bind(want.disk_gb)
    .execute(&mut *tx)
    .await
    .db()?;
    tx.commit().await.db()?;
    Ok(true)
}

pub async fn get_claim(
    db: &Db,
    instance_id: &str,
    purpose: &str,
) -> Result<Option<(String, Resources)>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM claims WHERE instance_id = ? AND purpose = ?"))
            .bind(instance_id)
            .bind(purpose)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| {
                (
                    r.str("host"),
                    Resources {
                        vcpus: r.int("vcpus"),
                        memory_mb: r.int("memory_mb"),
                        disk_gb: r.int("disk_gb"),
                    },
                )
            }),
    )
}

/// Every claim as (instance, purpose, host).
pub async fn list_claims(db: &Db) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query("SELECT instance_id, purpose, host FROM claims")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(|r| (r.str("instance_id"), r.str("purpose"), r.str("host")))
        .collect())
}

/// Give a claim back (idempotent): the counters and the row go together.
/// Both statements write (the counters read the claim through subqueries),
/// so SQLite takes its write lock at the first one instead of failing to
/// upgrade a read snapshot.
pub async fn release(db: &Db, instance_id: &str, purpose: &str) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    let claim =
        |col: &str| format!("(SELECT {col} FROM claims WHERE instance_id = ? AND purpose = ?)");
    let sql = format!(
        "UPDATE compute_nodes SET vcpus_used = vcpus_used - {}, memory_mb_used = memory_mb_used - {}, local_gb_used = local_gb_used - {} WHERE host = {}",
        claim("vcpus"),
        claim("memory_mb"),
        claim("disk_gb"),
        claim("host")
    );
    let sql = db.sql(&sql).into_owned();
    let mut q = sqlx::query(&sql);
    for _ in 0..4 {
        q = q.bind(instance_id).bind(purpose);
    }
    q.execute(&mut *tx).await.db()?;
    sqlx::query(&db.sql("DELETE FROM claims WHERE instance_id = ? AND purpose = ?"))
        .bind(instance_id)
        .bind(purpose)
        .execute(&mut *tx)
        .await
        .db()?;
    tx.commit().await.db()
}

/// Turn a resize's new claim into the instance's claim (confirm) in one transaction.
pub async fn rename_claim(db: &Db, instance_id: &str, from: &str, to: &str) -> Result<()> {
    sqlx::query(&db.sql("UPDATE claims SET purpose = ? WHERE instance_id = ? AND purpose = ?"))
        .bind(to)
        .bind(instance_id)
        .bind(from)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
