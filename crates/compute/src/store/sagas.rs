//! Saga records: one row per saga (kind, instance, state, parameters) and
//! one per step that started, so a restarted service knows what was done.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct SagaRow {
    pub id: String,
    pub kind: String,
    pub instance_id: String,
    /// `running`, `unwinding`, `done`, `failed`
    pub state: String,
    pub params: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRow {
    pub step: String,
    /// `started`, `done`, `undone`
    pub state: String,
}

pub async fn create(
    db: &Db,
    id: &str,
    kind: &str,
    instance_id: &str,
    params: &Value,
) -> Result<()> {
    let mut conn = db.pool.acquire().await.db()?;
    create_on(db, &mut conn, id, kind, instance_id, params).await
}

/// [`create`] on a connection (the boot's transaction records its
/// instances and their sagas together).
pub async fn create_on(
    db: &Db,
    conn: &mut AnyConnection,
    id: &str,
    kind: &str,
    instance_id: &str,
    params: &Value,
) -> Result<()> {
    let now = super::now();
    sqlx::query(&db.sql(
        "INSERT INTO sagas (id, kind, instance_id, state, params, error, created_at, updated_at) VALUES (?, ?, ?, 'running', ?, NULL, ?, ?)",
    ))
    .bind(id)
    .bind(kind)
    .bind(instance_id)
    .bind(params.to_string())
    .bind(&now)
    .bind(&now)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

fn saga_from_row(r: &sqlx::any::AnyRow) -> SagaRow {
    SagaRow {
        id: r.str("id"),
        kind: r.str("kind"),
        instance_id: r.str("instance_id"),
        state: r.str("state"),
        params: r.json("params"),
    }
}

/// Sagas that did not finish (running or unwinding).
pub async fn unfinished(db: &Db) -> Result<Vec<SagaRow>> {
    Ok(unfinished_with_owners(db)
        .await?
        .into_iter()
        .map(|s| s.row)
        .collect())
}

/// An unfinished saga and the controller running it (`None`: recorded by a
/// version before owners, or its controller stopped before it began).
#[derive(Clone, Debug)]
pub struct OwnedSaga {
    pub row: SagaRow,
    pub owner: Option<String>,
    pub updated_at: String,
}

/// Unfinished sagas with their owners, oldest first.
pub async fn unfinished_with_owners(db: &Db) -> Result<Vec<OwnedSaga>> {
    Ok(sqlx::query(
        "SELECT * FROM sagas WHERE state = 'running' OR state = 'unwinding' ORDER BY created_at",
    )
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| OwnedSaga {
        row: saga_from_row(r),
        owner: r.opt_str("owner"),
        updated_at: r.str("updated_at"),
    })
    .collect())
}

/// Make `me` the owner of saga `id` if it is still unfinished and owned by
/// `from` (`None`: by nobody). One conditional statement, so of two
/// controllers claiming together exactly one wins.
pub async fn claim(db: &Db, id: &str, from: Option<&str>, me: &str) -> Result<bool> {
    let owner_is = match from {
        Some(_) => "owner = ?",
        None => "owner IS NULL",
    };
    let sql = format!(
        "UPDATE sagas SET owner = ? WHERE id = ? AND (state = 'running' OR state = 'unwinding') AND {owner_is}"
    );
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql).bind(me).bind(id);
    if let Some(from) = from {
        q = q.bind(from);
    }
    Ok(q.execute(&db.pool).await.db()?.rows_affected() == 1)
}

/// Whether `me` still owns saga `id`: checked before each step, so a
/// controller that paused past its lease does not run a step the
/// controller that took over runs too.
pub async fn owned_by(db: &Db, id: &str, me: &str) -> Result<bool> {
    let row = sqlx::query(&db.sql("SELECT owner FROM sagas WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?;
    Ok(row.and_then(|r| r.opt_str("owner")).as_deref() == Some(me))
}

pub async fn for_instance(db: &Db, instance_id: &str) -> Result<Vec<SagaRow>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM sagas WHERE instance_id = ? ORDER BY created_at"))
            .bind(instance_id)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(saga_from_row)
            .collect(),
    )
}

/// Parameters a saga keeps only while it runs (the admin password bound
/// for a config drive, the user's token a boot from volume creates its
/// volumes with): removed from its record once it ended.
pub const SECRET_PARAMS: &[&str] = &["admin_pass", "user_token"];

pub async fn forget_secrets(db: &Db, id: &str, params: &Value) -> Result<()> {
    let Some(obj) = params.as_object() else {
        return Ok(());
    };
    // A saga whose guest gets no password carries the key as null.
    if !SECRET_PARAMS
        .iter()
        .any(|k| obj.get(*k).is_some_and(|v| !v.is_null()))
    {
        return Ok(());
    }
    let mut kept = obj.clone();
    for k in SECRET_PARAMS {
        kept.remove(*k);
    }
    sqlx::query(&db.sql("UPDATE sagas SET params = ?, updated_at = ? WHERE id = ?"))
        .bind(Value::Object(kept).to_string())
        .bind(super::now())
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn set_state(db: &Db, id: &str, state: &str, error: Option<&str>) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE sagas SET state = ?, error = COALESCE(?, error), updated_at = ? WHERE id = ?",
    ))
    .bind(state)
    .bind(error)
    .bind(super::now())
    .bind(id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn steps(db: &Db, saga_id: &str) -> Result<Vec<StepRow>> {
    Ok(
        sqlx::query(&db.sql("SELECT step, state FROM saga_steps WHERE saga_id = ? ORDER BY seq"))
            .bind(saga_id)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(|r| StepRow {
                step: r.str("step"),
                state: r.str("state"),
            })
            .collect(),
    )
}

pub async fn set_step(db: &Db, saga_id: &str, step: &str, seq: i64, state: &str) -> Result<()> {
    let now = super::now();
    let n = sqlx::query(
        &db.sql("UPDATE saga_steps SET state = ?, updated_at = ? WHERE saga_id = ? AND step = ?"),
    )
    .bind(state)
    .bind(&now)
    .bind(saga_id)
    .bind(step)
    .execute(&db.pool)
    .await
    .db()?
    .rows_affected();
    if n == 0 {
        sqlx::query(&db.sql(
            "INSERT INTO saga_steps (saga_id, step, seq, state, output, updated_at) VALUES (?, ?, ?, ?, NULL, ?)",
        ))
        .bind(saga_id)
        .bind(step)
        .bind(seq)
        .bind(state)
        .bind(&now)
        .execute(&db.pool)
        .await
        .db()?;
    }
    Ok(())
}

/// A saga's state and the error that failed it, if it is recorded.
pub async fn outcome(db: &Db, id: &str) -> Result<Option<(String, Option<String>)>> {
    Ok(
        sqlx::query(&db.sql("SELECT state, error FROM sagas WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| (r.str("state"), r.opt_str("error"))),
    )
}
