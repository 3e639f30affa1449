//! Metrics: a named series, optionally of a resource, under an archive
//! policy. Ceilometer's meters are the metrics of resources (`meter_type`
//! keeps the Ceilometer type of the samples that made them).

use super::sqlite::{Arg, Cols, Tx};
use ferrostack_core::Result;
use ferrostack_db::{Db, DbResultExt};

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub id: String,
    pub name: Option<String>,
    pub resource_id: Option<String>,
    pub archive_policy_name: String,
    pub unit: Option<String>,
    pub meter_type: Option<String>,
    pub created_by_project_id: String,
    pub created_by_user_id: String,
}

fn from_row(r: &(impl Cols + ?Sized)) -> Metric {
    Metric {
        id: r.str("id"),
        name: r.opt_str("name"),
        resource_id: r.opt_str("resource_id"),
        archive_policy_name: r.str("archive_policy_name"),
        unit: r.opt_str("unit"),
        meter_type: r.opt_str("meter_type"),
        created_by_project_id: r.str("created_by_project_id"),
        created_by_user_id: r.str("created_by_user_id"),
    }
}

pub async fn insert(tx: &mut Tx<'_>, db: &Db, m: &Metric) -> Result<()> {
    tx.execute(
        db,
        "INSERT INTO metrics (id, name, resource_id, archive_policy_name, unit, meter_type, created_by_project_id, created_by_user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            (&m.id).into(),
            (&m.name).into(),
            (&m.resource_id).into(),
            (&m.archive_policy_name).into(),
            (&m.unit).into(),
            (&m.meter_type).into(),
            (&m.created_by_project_id).into(),
            (&m.created_by_user_id).into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Metric>> {
    let row = sqlx::query(&db.sql("SELECT * FROM metrics WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?;
    Ok(row.as_ref().map(from_row))
}

/// The named metrics of the resources `ids`, by (resource, name): one
/// statement per thousand resources (a batch's metrics read at once).
pub async fn of_resources(
    tx: &mut Tx<'_>,
    db: &Db,
    ids: &[&str],
) -> Result<std::collections::HashMap<(String, String), Metric>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(1000) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT * FROM metrics WHERE resource_id IN ({marks})");
        let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
        for m in tx.fetch(db, &sql, &args, |r| from_row(r)).await? {
            if let (Some(resource), Some(name)) = (m.resource_id.clone(), m.name.clone()) {
                out.insert((resource, name), m);
            }
        }
    }
    Ok(out)
}

pub async fn by_resource_name(
    tx: &mut Tx<'_>,
    db: &Db,
    resource_id: &str,
    name: &str,
) -> Result<Option<Metric>> {
    let sql = "SELECT * FROM metrics WHERE resource_id = ? AND name = ?";
    let rows = tx
        .fetch(db, sql, &[resource_id.into(), name.into()], |r| from_row(r))
        .await?;
    Ok(rows.into_iter().next())
}

pub async fn of_resource(db: &Db, resource_id: &str) -> Result<Vec<Metric>> {
    let rows = sqlx::query(&db.sql("SELECT * FROM metrics WHERE resource_id = ? ORDER BY name"))
        .bind(resource_id)
        .fetch_all(&db.pool)
        .await
        .db()?;
    Ok(rows.iter().map(from_row).collect())
}

/// Every metric (with `name`: of that name), with its resource's project
/// and user for scoping and grouping.
pub async fn list_with_owner(db: &Db, name: Option<&str>) -> Result<Vec<(Metric, Owner)>> {
    let mut sql = String::from(
        "SELECT m.*, r.project_id AS r_project, r.user_id AS r_user, r.original_resource_id AS r_original FROM metrics m LEFT JOIN resources r ON r.id = m.resource_id",
    );
    if name.is_some() {
        sql.push_str(" WHERE m.name = ?");
    }
    sql.push_str(" ORDER BY m.name, m.resource_id");
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql);
    if let Some(n) = name {
        q = q.bind(n.to_owned());
    }
    let rows = q.fetch_all(&db.pool).await.db()?;
    Ok(rows
        .iter()
        .map(|r| {
            let owner = Owner {
                project_id: r.opt_str("r_project"),
                user_id: r.opt_str("r_user"),
                original_resource_id: r.opt_str("r_original"),
            };
            (from_row(r), owner)
        })
        .collect())
}

/// Who a metric's resource belongs to.
#[derive(Clone, Debug, Default)]
pub struct Owner {
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub original_resource_id: Option<String>,
}

pub async fn delete(db: &Db, id: &str) -> Result<bool> {
    let mut tx = db.pool.begin().await.db()?;
    for table in ["rollups", "rate_rollups", "metric_heads"] {
        sqlx::query(&db.sql(&format!("DELETE FROM {table} WHERE metric_id = ?")))
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    let n = sqlx::query(&db.sql("DELETE FROM metrics WHERE id = ?"))
        .bind(id)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
    tx.commit().await.db()?;
    Ok(n > 0)
}
