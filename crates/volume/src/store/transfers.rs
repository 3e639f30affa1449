//! Volume transfer offers: the volume, its giving project and the salted
//! hash of the key the receiver must present.

use ferrostack_core::Result;
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

#[derive(Clone, Debug)]
pub struct Transfer {
    pub id: String,
    pub volume_id: String,
    /// The project giving the volume away.
    pub project_id: String,
    pub name: Option<String>,
    pub salt: String,
    pub crypt_hash: String,
    pub created_at: String,
}

fn from_row(r: &sqlx::any::AnyRow) -> Transfer {
    Transfer {
        id: r.str("id"),
        volume_id: r.str("volume_id"),
        project_id: r.str("project_id"),
        name: r.opt_str("name"),
        salt: r.str("salt"),
        crypt_hash: r.str("crypt_hash"),
        created_at: r.str("created_at"),
    }
}

pub async fn insert_on(db: &Db, conn: &mut AnyConnection, t: &Transfer) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO transfers (id, volume_id, project_id, name, salt, crypt_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&t.id)
    .bind(&t.volume_id)
    .bind(&t.project_id)
    .bind(&t.name)
    .bind(&t.salt)
    .bind(&t.crypt_hash)
    .bind(&t.created_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Transfer>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM transfers WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .as_ref()
        .map(from_row))
}

/// Every transfer of a project, or of all projects (`None`).
pub async fn list(db: &Db, project_id: Option<&str>) -> Result<Vec<Transfer>> {
    let rows = super::newest_first(db, "transfers", project_id).await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Remove a transfer; true when it was there (so only one accept wins).
pub async fn delete_on(db: &Db, conn: &mut AnyConnection, id: &str) -> Result<bool> {
    Ok(sqlx::query(&db.sql("DELETE FROM transfers WHERE id = ?"))
        .bind(id)
        .execute(conn)
        .await
        .db()?
        .rows_affected()
        == 1)
}
