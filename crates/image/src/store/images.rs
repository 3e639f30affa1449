//! Image records. Tags and custom properties are JSON documents on the row:
//! they are always read with the image and filtered in the service layer.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;

#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub visibility: String,
    pub protected: bool,
    pub os_hidden: bool,
    pub owner: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub tags: Vec<String>,
    /// Custom properties: string values only, as Glance's schema requires.
    pub properties: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl Image {
    fn from_row(r: &AnyRow) -> Self {
        let opt_int = |c: &str| sqlx::Row::try_get::<Option<i64>, _>(r, c).ok().flatten();
        Image {
            id: r.str("id"),
            name: r.opt_str("name"),
            status: r.str("status"),
            visibility: r.str("visibility"),
            protected: r.flag("protected"),
            os_hidden: r.flag("os_hidden"),
            owner: r.opt_str("owner"),
            size: opt_int("size"),
            virtual_size: opt_int("virtual_size"),
            checksum: r.opt_str("checksum"),
            os_hash_algo: r.opt_str("os_hash_algo"),
            os_hash_value: r.opt_str("os_hash_value"),
            disk_format: r.opt_str("disk_format"),
            container_format: r.opt_str("container_format"),
            min_disk: r.int("min_disk"),
            min_ram: r.int("min_ram"),
            tags: r
                .opt_str("tags")
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            properties: r
                .opt_str("properties")
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            created_at: r.str("created_at"),
            updated_at: r.str("updated_at"),
        }
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Image>> {
    Ok(sqlx::query(&db.sql("SELECT * FROM images WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .map(|r| Image::from_row(&r)))
}

pub async fn list(db: &Db) -> Result<Vec<Image>> {
    Ok(sqlx::query("SELECT * FROM images")
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(Image::from_row)
        .collect())
}

pub async fn list_by_status(db: &Db, status: &str) -> Result<Vec<Image>> {
    Ok(
        sqlx::query(&db.sql("SELECT * FROM images WHERE status = ?"))
            .bind(status)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(Image::from_row)
            .collect(),
    )
}

/// Reserve room for an upload to `image_id` by `owner` under the owner's
/// lock row: what is stored plus what uploads in flight reserved, against
/// `quota` bytes (0: none) and `cap`. Returns how many bytes this upload may
/// write, and reserves that many (or `declared`, if smaller) so concurrent
/// uploads cannot together pass the quota. Nothing is reserved when
/// `declared` is over the allowance (the caller refuses the upload).
pub async fn reserve_upload(
    db: &Db,
    image_id: &str,
    owner: &str,
    quota: u64,
    cap: u64,
    declared: Option<u64>,
) -> Result<u64> {
    if quota == 0 {
        return Ok(cap);
    }
    let mut tx = db.begin_under_quota_lock("owner", owner).await?;
    // Summed here, not with SUM(): MySQL answers SUM() as a DECIMAL.
    let stored: i64 = sqlx::query(&db.sql("SELECT size FROM images WHERE owner = ?"))
        .bind(owner)
        .fetch_all(&mut *tx)
        .await
        .db()?
        .iter()
        .map(|r| r.int("size").max(0))
        .sum();
    let reserved: i64 = sqlx::query(
        &db.sql("SELECT bytes FROM upload_reservations WHERE owner = ? AND image_id <> ?"),
    )
    .bind(owner)
    .bind(image_id)
    .fetch_all(&mut *tx)
    .await
    .db()?
    .iter()
    .map(|r| r.int("bytes").max(0))
    .sum();
    let used = (stored.max(0) + reserved.max(0)) as u64;
    let allowance = cap.min(quota.saturating_sub(used));
    if declared.is_some_and(|d| d > allowance) {
        return Ok(allowance);
    }
    let bytes = declared.unwrap_or(allowance).min(allowance);
    sqlx::query(&db.sql("DELETE FROM upload_reservations WHERE image_id = ?"))
        .bind(image_id)
        .execute(&mut *tx)
        .await
        .db()?;
    sqlx::query(
        &db.sql("INSERT INTO upload_reservations (image_id, owner, bytes) VALUES (?, ?, ?)"),
    )
    .bind(image_id)
    .bind(owner)
    .bind(bytes as i64)
    .execute(&mut *tx)
    .await
    .db()?;
    tx.commit().await.db()?;
    Ok(allowance)
}

/// Staged data of `image_id` stays reserved, at its size, until the
/// import consumes it or the image goes. No reservation (no quota) is
/// left as none.
pub async fn keep_reservation(db: &Db, image_id: &str, bytes: u64) -> Result<()> {
    sqlx::query(&db.sql("UPDATE upload_reservations SET bytes = ? WHERE image_id = ?"))
        .bind(bytes as i64)
        .bind(image_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// At start: the staged data of `image_id`, already on disk, is reserved
/// again (reservations of the previous process were cleared).
pub async fn reserve_staged(db: &Db, image_id: &str, owner: &str, bytes: u64) -> Result<()> {
    sqlx::query(
        &db.sql("INSERT INTO upload_reservations (image_id, owner, bytes) VALUES (?, ?, ?)"),
    )
    .bind(image_id)
    .bind(owner)
    .bind(bytes as i64)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// The upload to `image_id` ended (stored or not): its reservation goes.
pub async fn release_upload(db: &Db, image_id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM upload_reservations WHERE image_id = ?"))
        .bind(image_id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// At start no upload is in flight: reservations of a crashed process go.
pub async fn clear_upload_reservations(db: &Db) -> Result<()> {
    sqlx::query("DELETE FROM upload_reservations")
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Insert `i` unless `owner` (its owner, or the project creating it)
/// already owns `quota` images (0: no quota): counted and written in one transaction that first takes the
/// owner's lock row, so concurrent creates cannot both take the last one
/// (on every engine). False when over the quota.
pub async fn insert_within_count_quota(
    db: &Db,
    i: &Image,
    owner: &str,
    quota: u64,
) -> Result<bool> {
    let mut tx = db.begin_under_quota_lock("owner", owner).await?;
    if quota > 0 {
        let have: i64 = sqlx::query_scalar(&db.sql("SELECT COUNT(*) FROM images WHERE owner = ?"))
            .bind(owner)
            .fetch_one(&mut *tx)
            .await
            .db()?;
        if have as u64 >= quota {
            return Ok(false);
        }
    }
    let sql = db.sql(INSERT_SQL);
    insert_query(&sql, i).execute(&mut *tx).await.db()?;
    tx.commit().await.db()?;
    Ok(true)
}

const INSERT_SQL: &str = "INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner, size, virtual_size, checksum, os_hash_algo, os_hash_value, disk_format, container_format, min_disk, min_ram, tags, properties, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The insert of `i`, on the engine's SQL (`db.sql(INSERT_SQL)`).
fn insert_query<'q>(
    sql: &'q str,
    i: &'q Image,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(sql)
        .bind(&i.id)
        .bind(&i.name)
        .bind(&i.status)
        .bind(&i.visibility)
        .bind(i.protected as i64)
        .bind(i.os_hidden as i64)
        .bind(&i.owner)
        .bind(i.size)
        .bind(i.virtual_size)
        .bind(&i.checksum)
        .bind(&i.os_hash_algo)
        .bind(&i.os_hash_value)
        .bind(&i.disk_format)
        .bind(&i.container_format)
        .bind(i.min_disk)
        .bind(i.min_ram)
        .bind(serde_json::to_string(&i.tags).expect("tags"))
        .bind(Value::Object(i.properties.clone()).to_string())
        .bind(&i.created_at)
        .bind(&i.updated_at)
}

pub async fn insert(db: &Db, i: &Image) -> Result<()> {
    let sql = db.sql(INSERT_SQL);
    insert_query(&sql, i).execute(&db.pool).await.db()?;
    Ok(())
}

/// The image's data is stored (`i` has its size, hashes and status): the
/// record and the end of its upload's or staging's reservation are one
/// transaction under the owner's lock, so its bytes are counted once. (The
/// lock matters: the bytes move from one counted table to the other, and a
/// concurrent [`reserve_upload`] reading both between the moves — each
/// statement its own snapshot on PostgreSQL — would count them nowhere.)
pub async fn store_data(db: &Db, i: &Image) -> Result<()> {
    let owner = i.owner.as_deref().unwrap_or("");
    let mut tx = db.begin_under_quota_lock("owner", owner).await?;
    sqlx::query(&db.sql(
        "UPDATE images SET status = ?, size = ?, virtual_size = ?, checksum = ?, os_hash_algo = ?, os_hash_value = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(&i.status)
    .bind(i.size)
    .bind(i.virtual_size)
    .bind(&i.checksum)
    .bind(&i.os_hash_algo)
    .bind(&i.os_hash_value)
    .bind(&i.updated_at)
    .bind(&i.id)
    .execute(&mut *tx)
    .await
    .db()?;
    sqlx::query(&db.sql("DELETE FROM upload_reservations WHERE image_id = ?"))
        .bind(&i.id)
        .execute(&mut *tx)
        .await
        .db()?;
    tx.commit().await.db()
}

/// Write what a PATCH may change, leaving status, size and hashes to the
/// upload and activation paths.
pub async fn update_metadata(db: &Db, i: &Image) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE images SET name = ?, visibility = ?, protected = ?, os_hidden = ?, owner = ?, disk_format = ?, container_format = ?, min_disk = ?, min_ram = ?, tags = ?, properties = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(&i.name)
    .bind(&i.visibility)
    .bind(i.protected as i64)
    .bind(i.os_hidden as i64)
    .bind(&i.owner)
    .bind(&i.disk_format)
    .bind(&i.container_format)
    .bind(i.min_disk)
    .bind(i.min_ram)
    .bind(serde_json::to_string(&i.tags).expect("tags"))
    .bind(Value::Object(i.properties.clone()).to_string())
    .bind(&i.updated_at)
    .bind(&i.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Move an image from one status to another only if it is still in `from`:
/// the compare-and-set that keeps two uploads from racing.
pub async fn transition(db: &Db, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let marks = vec!["?"; from.len()].join(", ");
    let q = format!(
        "UPDATE images SET status = ?, updated_at = ? WHERE id = ? AND status IN ({marks})"
    );
    let sql = db.sql(&q);
    let mut query = sqlx::query(&sql).bind(to).bind(super::now_str()).bind(id);
    for f in from {
        query = query.bind(*f);
    }
    Ok(query.execute(&db.pool).await.db()?.rows_affected() == 1)
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    for q in [
        "DELETE FROM image_members WHERE image_id = ?",
        "DELETE FROM upload_reservations WHERE image_id = ?",
        "DELETE FROM images WHERE id = ?",
    ] {
        sqlx::query(&db.sql(q))
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()
}

/// Bytes and images a project owns (for quotas). Summed here rather than in
/// SQL, where SUM's result type differs between engines.
pub async fn usage(db: &Db, owner: &str) -> Result<(i64, i64)> {
    let rows = sqlx::query(&db.sql("SELECT size FROM images WHERE owner = ?"))
        .bind(owner)
        .fetch_all(&db.pool)
        .await
        .db()?;
    let bytes = rows.iter().map(|r| r.int("size")).sum();
    Ok((bytes, rows.len() as i64))
}
