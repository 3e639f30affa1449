//! Revocation events: a token is revoked when every field an event sets
//! matches the token and the token was issued at or before `issued_before`.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

#[derive(Clone, Debug, Default)]
pub struct RevocationEvent {
    pub audit_id: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub role_id: Option<String>,
    pub app_cred_id: Option<String>,
    /// Microseconds since the epoch.
    pub issued_before: i64,
    pub revoked_at: i64,
}

pub async fn insert(db: &Db, e: &RevocationEvent) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO revocation_events (id, audit_id, user_id, project_id, domain_id, role_id, app_cred_id, issued_before, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(super::new_id())
    .bind(&e.audit_id)
    .bind(&e.user_id)
    .bind(&e.project_id)
    .bind(&e.domain_id)
    .bind(&e.role_id)
    .bind(&e.app_cred_id)
    .bind(e.issued_before)
    .bind(e.revoked_at)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Events newer than `min_issued_before` (older ones can only match expired tokens).
pub async fn list_since(db: &Db, min_issued_before: i64) -> Result<Vec<RevocationEvent>> {
    Ok(sqlx::query(
        &db.sql("SELECT * FROM revocation_events WHERE issued_before >= ? ORDER BY revoked_at"),
    )
    .bind(min_issued_before)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| RevocationEvent {
        audit_id: r.opt_str("audit_id"),
        user_id: r.opt_str("user_id"),
        project_id: r.opt_str("project_id"),
        domain_id: r.opt_str("domain_id"),
        role_id: r.opt_str("role_id"),
        app_cred_id: r.opt_str("app_cred_id"),
        issued_before: r.int("issued_before"),
        revoked_at: r.int("revoked_at"),
    })
    .collect())
}

/// Drop events that can only match tokens that expired already.
pub async fn prune(db: &Db, older_than: i64) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM revocation_events WHERE issued_before < ?"))
        .bind(older_than)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}
