//! Server groups: a placement policy and the instances that follow it.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct ServerGroup {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    /// `affinity`, `anti-affinity`, `soft-affinity`, `soft-anti-affinity`
    pub policy: String,
    pub members: Vec<String>,
    /// 2.64's anti-affinity rule: how many members one host may run.
    pub max_server_per_host: Option<i64>,
}

fn from_row(r: &sqlx::any::AnyRow) -> ServerGroup {
    ServerGroup {
        id: r.str("id"),
        name: r.str("name"),
        project_id: r.str("project_id"),
        user_id: r.str("user_id"),
        policy: r.str("policy"),
        members: serde_json::from_str(&r.str("members")).unwrap_or_default(),
        // NULL (no rule) reads as 0; a rule is at least 1.
        max_server_per_host: Some(r.int("max_server_per_host")).filter(|n| *n > 0),
    }
}

/// Insert `g` unless its project already has `limit` groups (negative:
/// no limit), counted and written under the project's quota lock so that
/// concurrent creates cannot both take the last one. False when over.
pub async fn insert_within_quota(db: &Db, g: &ServerGroup, limit: i64) -> Result<bool> {
    let mut tx = db
        .begin_under_quota_lock("project_id", &g.project_id)
        .await?;
    let have: i64 =
        sqlx::query_scalar(&db.sql("SELECT COUNT(*) FROM server_groups WHERE project_id = ?"))
            .bind(&g.project_id)
            .fetch_one(&mut *tx)
            .await
            .db()?;
    if limit >= 0 && have >= limit {
        return Ok(false);
    }
    insert_on(db, &mut tx, g).await?;
    tx.commit().await.db()?;
    Ok(true)
}

async fn insert_on(
    db: &Db,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    g: &ServerGroup,
) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO server_groups (id, name, project_id, user_id, policy, members, seq, max_server_per_host) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.project_id)
    .bind(&g.user_id)
    .bind(&g.policy)
    .bind(serde_json::to_string(&g.members).expect("list"))
    .bind(super::seq())
    .bind(g.max_server_per_host)
    .execute(&mut **tx)
    .await
    .db()?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<ServerGroup>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM server_groups WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| from_row(&r)),
    )
}

pub async fn list(db: &Db, project: Option<&str>) -> Result<Vec<ServerGroup>> {
    let all: Vec<ServerGroup> = sqlx::query("SELECT * FROM server_groups ORDER BY seq")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(from_row)
        .collect();
    Ok(all
        .into_iter()
        .filter(|g| project.is_none_or(|p| g.project_id == p))
        .collect())
}

pub async fn delete(db: &Db, id: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("DELETE FROM server_groups WHERE id = ?"))
            .bind(id)
            .execute(&db.pool)
            .await
            .db()?
            .rows_affected()
            == 1,
    )
}

/// Add or remove a member (a compare-and-set on the member list).
pub async fn set_member(db: &Db, id: &str, instance: &str, member: bool) -> Result<()> {
    for _ in 0..20 {
        let Some(g) = get(db, id).await? else {
            return Ok(());
        };
        let mut members = g.members.clone();
        members.retain(|m| m != instance);
        if member {
            members.push(instance.to_owned());
        }
        let n = sqlx::query(
            &db.sql("UPDATE server_groups SET members = ? WHERE id = ? AND members = ?"),
        )
        .bind(serde_json::to_string(&members).expect("list"))
        .bind(id)
        .bind(serde_json::to_string(&g.members).expect("list"))
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected();
        if n == 1 {
            return Ok(());
        }
    }
    Ok(())
}

/// The group an instance belongs to.
pub async fn of_instance(db: &Db, instance: &str) -> Result<Option<ServerGroup>> {
    Ok(list(db, None)
        .await?
        .into_iter()
        .find(|g| g.members.iter().any(|m| m == instance)))
}
