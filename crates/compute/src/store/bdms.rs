//! Block device mappings: the volumes of each instance (Nova's
//! `block_device_mapping` table), with the device the guest sees, the
//! Cinder attachment and its connection_info, the boot index, and what to
//! do with the volume when the server goes. A row is reserved first (its
//! device taken) and filled in as the attach saga advances.

use ferrostack_core::{Error, Result};
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// Where a mapping's volume comes from (boot from volume creates it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    #[default]
    Volume,
    Image,
    Snapshot,
    Blank,
}

/// How far the attach saga got (or the detach saga, going back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BdmState {
    /// The device is reserved; the volume is being attached.
    #[default]
    Attaching,
    Attached,
    Detaching,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bdm {
    /// Nova's `bdm_uuid` (2.89).
    pub id: String,
    pub instance_id: String,
    /// Empty until boot from volume has created the volume.
    pub volume_id: String,
    pub device_name: String,
    pub attachment_id: Option<String>,
    /// Cinder's connection_info for this host's connector.
    pub connection_info: Option<Value>,
    pub boot_index: Option<i32>,
    pub delete_on_termination: bool,
    pub tag: Option<String>,
    pub source_type: SourceType,
    /// The image or snapshot a created volume is made from.
    pub source_id: Option<String>,
    /// GiB of a volume boot from volume creates.
    pub volume_size: Option<i64>,
    /// The volume type a created volume gets (2.67; the default when none).
    pub volume_type: Option<String>,
    pub state: BdmState,
}

pub const MIGRATION_SQL: &str = "
CREATE TABLE block_device_mappings (id VARCHAR(36) PRIMARY KEY, instance_id VARCHAR(36) NOT NULL, volume_id VARCHAR(36) NOT NULL, device_name VARCHAR(255) NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL);
CREATE UNIQUE INDEX bdm_instance_device ON block_device_mappings (instance_id, device_name);
CREATE INDEX bdm_volume ON block_device_mappings (volume_id)
";

fn from_row(r: &sqlx::any::AnyRow) -> Bdm {
    serde_json::from_str(&r.str("body")).unwrap_or_default()
}

/// Reserve a mapping; a 409 when its device is taken meanwhile.
pub async fn insert(db: &Db, b: &Bdm) -> Result<()> {
    let mut conn = db.pool.acquire().await.db()?;
    insert_on(db, &mut conn, b).await
}

/// [`insert`] on a connection (an attach records the row and its saga
/// together, so a crash leaves neither or both).
pub async fn insert_on(db: &Db, conn: &mut AnyConnection, b: &Bdm) -> Result<()> {
    let done = sqlx::query(&db.sql(
        "INSERT INTO block_device_mappings (id, instance_id, volume_id, device_name, seq, body) VALUES (?, ?, ?, ?, ?, ?)",
    ))
    .bind(&b.id)
    .bind(&b.instance_id)
    .bind(&b.volume_id)
    .bind(&b.device_name)
    .bind(super::seq())
    .bind(serde_json::to_string(b).expect("bdm serializes"))
    .execute(conn)
    .await
    .db();
    match done {
        Err(e) if super::is_duplicate(&e) => Err(Error::Conflict(format!(
            "The supplied device path ({}) is in use.",
            b.device_name
        ))),
        other => other.map(|_| ()),
    }
}

/// Reserve a mapping and record the saga that attaches it, in one
/// transaction.
pub async fn insert_with_saga(
    db: &Db,
    b: &Bdm,
    saga_id: &str,
    kind: &str,
    params: &Value,
) -> Result<()> {
    let mut tx = db.pool.begin().await.db()?;
    insert_on(db, &mut tx, b).await?;
    super::sagas::create_on(db, &mut tx, saga_id, kind, &b.instance_id, params).await?;
    tx.commit().await.db()?;
    Ok(())
}

/// Write the row's changed fields.
pub async fn save(db: &Db, b: &Bdm) -> Result<()> {
    sqlx::query(&db.sql(
        "UPDATE block_device_mappings SET volume_id = ?, device_name = ?, body = ? WHERE id = ?",
    ))
    .bind(&b.volume_id)
    .bind(&b.device_name)
    .bind(serde_json::to_string(b).expect("bdm serializes"))
    .bind(&b.id)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// Change one row (read, change, write); `None` when it is gone.
pub async fn update(db: &Db, id: &str, change: impl FnOnce(&mut Bdm)) -> Result<Option<Bdm>> {
    let Some(mut b) = get(db, id).await? else {
        return Ok(None);
    };
    change(&mut b);
    save(db, &b).await?;
    Ok(Some(b))
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Bdm>> {
    Ok(
        sqlx::query(&db.sql("SELECT body FROM block_device_mappings WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| from_row(&r)),
    )
}

/// An instance's mappings in the order they were made.
pub async fn of_instance(db: &Db, instance_id: &str) -> Result<Vec<Bdm>> {
    Ok(sqlx::query(
        &db.sql("SELECT body FROM block_device_mappings WHERE instance_id = ? ORDER BY seq"),
    )
    .bind(instance_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(from_row)
    .collect())
}

/// The mappings of many instances at once (server lists), by instance.
pub async fn of_instances(db: &Db, ids: &[String]) -> Result<HashMap<String, Vec<Bdm>>> {
    let mut out: HashMap<String, Vec<Bdm>> = HashMap::new();
    for chunk in ids.chunks(200) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let text = format!(
            "SELECT body FROM block_device_mappings WHERE instance_id IN ({marks}) ORDER BY seq"
        );
        let sql = db.sql(&text);
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&db.pool).await.db()? {
            let b = from_row(&r);
            out.entry(b.instance_id.clone()).or_default().push(b);
        }
    }
    Ok(out)
}

/// The mapping of `volume_id` on an instance.
pub async fn of_volume(db: &Db, instance_id: &str, volume_id: &str) -> Result<Option<Bdm>> {
    Ok(sqlx::query(
        &db.sql("SELECT body FROM block_device_mappings WHERE instance_id = ? AND volume_id = ?"),
    )
    .bind(instance_id)
    .bind(volume_id)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .map(|r| from_row(&r)))
}

/// Every mapping of `volume_id`, whatever the instance (a multiattach
/// volume has several).
pub async fn with_volume(db: &Db, volume_id: &str) -> Result<Vec<Bdm>> {
    Ok(
        sqlx::query(&db.sql("SELECT body FROM block_device_mappings WHERE volume_id = ?"))
            .bind(volume_id)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(from_row)
            .collect(),
    )
}

/// Drop a mapping; one already gone is fine.
pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query(&db.sql("DELETE FROM block_device_mappings WHERE id = ?"))
        .bind(id)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

/// Nova's device path check: `/dev/` then a disk name (`vdb`, `sdc`, `xvdd`).
pub fn valid_device(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("/dev/") else {
        return false;
    };
    let letters: String = rest
        .chars()
        .take_while(|c| c.is_ascii_lowercase())
        .collect();
    let digits = &rest[letters.len()..];
    letters.len() >= 2 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The next free `/dev/vdX` after `taken` (the root disk and the others).
pub fn next_device(taken: &[String]) -> Option<String> {
    let letter = |n: u32| {
        // vda … vdz, then vdaa … (as Nova's get_dev_name_for_instance).
        let mut s = String::new();
        let mut n = n;
        loop {
            s.insert(0, (b'a' + (n % 26) as u8) as char);
            if n < 26 {
                break;
            }
            n = n / 26 - 1;
        }
        s
    };
    (0..702)
        .map(|n| format!("/dev/vd{}", letter(n)))
        .find(|d| !taken.iter().any(|t| t == d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_as_nova_does() {
        assert_eq!(next_device(&["/dev/vda".into()]).unwrap(), "/dev/vdb");
        assert_eq!(
            next_device(&["/dev/vda".into(), "/dev/vdb".into(), "/dev/vdd".into()]).unwrap(),
            "/dev/vdc"
        );
        let all: Vec<String> = (b'a'..=b'z')
            .map(|c| format!("/dev/vd{}", c as char))
            .collect();
        assert_eq!(next_device(&all).unwrap(), "/dev/vdaa");
        assert!(valid_device("/dev/vdb"));
        assert!(valid_device("/dev/xvdc"));
        assert!(!valid_device("/dev/"));
        assert!(!valid_device("vdb"));
        assert!(!valid_device("/dev/vd b"));
    }
}
