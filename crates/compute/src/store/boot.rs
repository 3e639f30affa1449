//! Recording a boot. Under the project's quota lock (a row of
//! `quota_locks`, so only boots of the same project wait for each other,
//! on every engine and across controllers) the project's live instances
//! are read, the caller decides how many instances the quota allows, and
//! those instances, their `create` actions and their create sagas are
//! written in the same transaction: two boots cannot both take a project's
//! last unit of quota, and a crash leaves all of a boot or none of it.

use super::instances::{self, ActionStart, Instance};
use super::sagas;
use ferrostack_core::{Error, Result};
use ferrostack_db::{sqlx, Db, DbResultExt};
use serde_json::Value;

/// One instance of a boot with what starts it.
pub struct BootRecord {
    pub instance: Instance,
    pub action_id: String,
    pub request_id: String,
    pub saga_id: String,
    pub saga_kind: &'static str,
    pub saga_params: Value,
}

/// Lock the project's quota row, give `decide` the project's live
/// instances (and the members of the server group the boot joins), and
/// write every record it returns — instances, actions, sagas, the group's
/// new members — in one transaction. `interrupt` fails the transaction
/// after the instance rows and before the saga rows (a test's crash in
/// between).
pub async fn record<F>(
    db: &Db,
    project: &str,
    group: Option<&str>,
    interrupt: Option<Error>,
    decide: F,
) -> Result<Vec<BootRecord>>
where
    F: FnOnce(instances::ProjectUsage, &[String]) -> Result<Vec<BootRecord>>,
{
    let mut tx = db.begin_under_quota_lock("project_id", project).await?;
    let used = instances::usage_on(db, &mut tx, project).await?;
    let members = match group {
        Some(g) => group_members(db, &mut tx, g).await?,
        None => None,
    };
    let records = decide(used, members.as_deref().unwrap_or(&[]))?;
    for r in &records {
        instances::insert_on(db, &mut tx, &r.instance).await?;
        let action = ActionStart {
            id: &r.action_id,
            instance_id: &r.instance.id,
            action: "create",
            request_id: &r.request_id,
            user_id: &r.instance.user_id,
            project_id: &r.instance.project_id,
        };
        instances::action_start_on(db, &mut tx, &action).await?;
    }
    if let Some(e) = interrupt {
        return Err(e);
    }
    for r in &records {
        sagas::create_on(
            db,
            &mut tx,
            &r.saga_id,
            r.saga_kind,
            &r.instance.id,
            &r.saga_params,
        )
        .await?;
    }
    if let (Some(g), Some(before)) = (group, &members) {
        let mut after = before.clone();
        after.extend(records.iter().map(|r| r.instance.id.clone()));
        // Compare-and-set: a member removed meanwhile (a delete, outside
        // this lock) is not written back.
        let set = sqlx::query(
            &db.sql("UPDATE server_groups SET members = ? WHERE id = ? AND members = ?"),
        )
        .bind(serde_json::to_string(&after).expect("list"))
        .bind(g)
        .bind(serde_json::to_string(before).expect("list"))
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
        if set != 1 {
            return Err(Error::Conflict(
                "The server group changed while the servers were recorded; try again.".into(),
            ));
        }
    }
    tx.commit().await.db()?;
    Ok(records)
}

/// The members of server group `id` as stored (`None`: no such group).
async fn group_members(
    db: &Db,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> Result<Option<Vec<String>>> {
    let members: Option<String> =
        sqlx::query_scalar(&db.sql("SELECT members FROM server_groups WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .db()?;
    Ok(members.map(|m| serde_json::from_str(&m).unwrap_or_default()))
}
