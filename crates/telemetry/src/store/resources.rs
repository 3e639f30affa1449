//! Resource types, resources and their revisions. A change of a resource's
//! attributes moves the previous revision to `resource_history` (with its
//! `revision_end`), so `GET …/history` lists every revision in order.

use super::sqlite::{Arg, Cols, Tx};
use ferrostack_core::Result;
use ferrostack_db::{Db, DbResultExt};
use serde_json::{Map, Value};

/// Resource ids that are not UUIDs become name-based UUIDs, as Gnocchi's
/// `ResourceUUID` makes them; `original_resource_id` keeps what was given.
pub const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x0a7a15ff_aa13_4ac2_897c_9bdf30ce175b);

pub fn resource_uuid(original: &str) -> String {
    match uuid::Uuid::parse_str(original) {
        Ok(u) => u.to_string(),
        Err(_) => uuid::Uuid::new_v5(&ID_NAMESPACE, original.as_bytes()).to_string(),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub id: String,
    pub kind: String,
    pub original_resource_id: String,
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub created_by_project_id: String,
    pub created_by_user_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub revision: i64,
    pub revision_start: i64,
    /// `None` for a current revision.
    pub revision_end: Option<i64>,
    pub attributes: Map<String, Value>,
    pub first_sample: Option<i64>,
    pub last_sample: Option<i64>,
    /// The last sample's resource metadata (Ceilometer's `metadata`).
    pub metadata: Value,
}

fn from_row(r: &(impl Cols + ?Sized)) -> Resource {
    Resource {
        id: r.str("id"),
        kind: r.str("type"),
        original_resource_id: r
            .opt_str("original_resource_id")
            .unwrap_or_else(|| r.str("id")),
        project_id: r.opt_str("project_id"),
        user_id: r.opt_str("user_id"),
        created_by_project_id: r.str("created_by_project_id"),
        created_by_user_id: r.str("created_by_user_id"),
        started_at: r.int("started_at"),
        ended_at: r.opt_int("ended_at"),
        revision: r.int("revision"),
        revision_start: r.int("revision_start"),
        revision_end: r.opt_int("revision_end"),
        attributes: r
            .json("attributes")
            .as_object()
            .cloned()
            .unwrap_or_default(),
        first_sample: r.opt_int("first_sample"),
        last_sample: r.opt_int("last_sample"),
        metadata: r.json("metadata"),
    }
}

pub async fn get(tx: &mut Tx<'_>, db: &Db, id: &str) -> Result<Option<Resource>> {
    let rows = tx
        .fetch(
            db,
            "SELECT * FROM resources WHERE id = ?",
            &[id.into()],
            |r| from_row(r),
        )
        .await?;
    Ok(rows.into_iter().next())
}

/// The current revisions of the resources `ids` names, by id: one
/// statement per thousand ids (a batch's resources read at once).
pub async fn get_many(
    tx: &mut Tx<'_>,
    db: &Db,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, Resource>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(1000) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT * FROM resources WHERE id IN ({marks})");
        let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
        for resource in tx.fetch(db, &sql, &args, |r| from_row(r)).await? {
            out.insert(resource.id.clone(), resource);
        }
    }
    Ok(out)
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Resource>> {
    let mut conn = db.pool.acquire().await.db()?;
    get(&mut Tx::Any(&mut conn), db, id).await
}

pub async fn insert(tx: &mut Tx<'_>, db: &Db, r: &Resource) -> Result<()> {
    let attributes = Value::Object(r.attributes.clone()).to_string();
    let metadata = r.metadata.to_string();
    tx.execute(
        db,
        "INSERT INTO resources (id, type, original_resource_id, project_id, user_id, created_by_project_id, created_by_user_id, started_at, ended_at, revision, revision_start, attributes, first_sample, last_sample, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            (&r.id).into(),
            (&r.kind).into(),
            (&r.original_resource_id).into(),
            (&r.project_id).into(),
            (&r.user_id).into(),
            (&r.created_by_project_id).into(),
            (&r.created_by_user_id).into(),
            r.started_at.into(),
            r.ended_at.into(),
            r.revision.into(),
            r.revision_start.into(),
            (&attributes).into(),
            r.first_sample.into(),
            r.last_sample.into(),
            (&metadata).into(),
        ],
    )
    .await?;
    Ok(())
}

/// Make `new` the current revision of its resource: the previous one (as
/// read, `old`) goes to the history. A concurrent change of the same
/// revision leaves this one unapplied (`false`).
pub async fn revise(tx: &mut Tx<'_>, db: &Db, old: &Resource, new: &Resource) -> Result<bool> {
    let attributes = Value::Object(new.attributes.clone()).to_string();
    let n = tx
        .execute(
            db,
            "UPDATE resources SET project_id = ?, user_id = ?, started_at = ?, ended_at = ?, revision = ?, revision_start = ?, attributes = ? WHERE id = ? AND revision = ?",
            &[
                (&new.project_id).into(),
                (&new.user_id).into(),
                new.started_at.into(),
                new.ended_at.into(),
                (old.revision + 1).into(),
                new.revision_start.into(),
                (&attributes).into(),
                (&old.id).into(),
                old.revision.into(),
            ],
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    let old_attributes = Value::Object(old.attributes.clone()).to_string();
    tx.execute(
        db,
        "INSERT INTO resource_history (id, revision, type, project_id, user_id, started_at, ended_at, revision_start, revision_end, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            (&old.id).into(),
            old.revision.into(),
            (&old.kind).into(),
            (&old.project_id).into(),
            (&old.user_id).into(),
            old.started_at.into(),
            old.ended_at.into(),
            old.revision_start.into(),
            new.revision_start.into(),
            (&old_attributes).into(),
        ],
    )
    .await?;
    Ok(true)
}

/// Record that samples of `first..=last` arrived (Ceilometer's first/last
/// sample timestamps) with the newest one's metadata, which replaces the
/// stored one unless a later sample's is there.
pub async fn touch(
    tx: &mut Tx<'_>,
    db: &Db,
    id: &str,
    (first, last): (i64, i64),
    metadata: &Value,
) -> Result<()> {
    let metadata = metadata.to_string();
    tx.execute(
        db,
        "UPDATE resources SET first_sample = CASE WHEN first_sample IS NULL OR first_sample > ? THEN ? ELSE first_sample END, last_sample = CASE WHEN last_sample IS NULL OR last_sample < ? THEN ? ELSE last_sample END, metadata = CASE WHEN last_sample IS NULL OR last_sample <= ? THEN ? ELSE metadata END WHERE id = ?",
        &[
            first.into(),
            first.into(),
            last.into(),
            last.into(),
            last.into(),
            (&metadata).into(),
            id.into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn history(db: &Db, id: &str) -> Result<Vec<Resource>> {
    let rows =
        sqlx::query(&db.sql("SELECT * FROM resource_history WHERE id = ? ORDER BY revision"))
            .bind(id)
            .fetch_all(&db.pool)
            .await
            .db()?;
    let mut out: Vec<Resource> = rows.iter().map(from_row).collect();
    if let Some(current) = find(db, id).await? {
        for r in &mut out {
            r.original_resource_id = current.original_resource_id.clone();
            r.created_by_project_id = current.created_by_project_id.clone();
            r.created_by_user_id = current.created_by_user_id.clone();
        }
        out.push(current);
    }
    Ok(out)
}

/// Resources of a type (`generic`: all), of one project when scoped.
pub async fn list(db: &Db, kind: Option<&str>, project: Option<&str>) -> Result<Vec<Resource>> {
    let mut sql = String::from("SELECT * FROM resources WHERE 1 = 1");
    if kind.is_some() {
        sql.push_str(" AND type = ?");
    }
    if project.is_some() {
        sql.push_str(" AND project_id = ?");
    }
    sql.push_str(" ORDER BY revision_start, id");
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql);
    if let Some(k) = kind {
        q = q.bind(k.to_owned());
    }
    if let Some(p) = project {
        q = q.bind(p.to_owned());
    }
    Ok(q.fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn delete(db: &Db, id: &str) -> Result<bool> {
    let mut tx = db.pool.begin().await.db()?;
    for sql in [
        "DELETE FROM rollups WHERE metric_id IN (SELECT id FROM metrics WHERE resource_id = ?)",
        "DELETE FROM rate_rollups WHERE metric_id IN (SELECT id FROM metrics WHERE resource_id = ?)",
        "DELETE FROM metric_heads WHERE metric_id IN (SELECT id FROM metrics WHERE resource_id = ?)",
        "DELETE FROM metrics WHERE resource_id = ?",
        "DELETE FROM resource_history WHERE id = ?",
    ] {
        sqlx::query(&db.sql(sql))
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    let n = sqlx::query(&db.sql("DELETE FROM resources WHERE id = ?"))
        .bind(id)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
    tx.commit().await.db()?;
    Ok(n > 0)
}

// ----- resource types -----

#[derive(Clone, Debug)]
pub struct ResourceType {
    pub name: String,
    /// Gnocchi's attribute schema: name → {type, required, …}.
    pub attributes: Map<String, Value>,
    pub state: String,
}

impl ResourceType {
    pub fn view(&self) -> Value {
        serde_json::json!({"name": self.name, "attributes": self.attributes, "state": self.state})
    }
}

pub async fn insert_type(db: &Db, t: &ResourceType) -> Result<()> {
    sqlx::query(&db.sql("INSERT INTO resource_types (name, attributes, state) VALUES (?, ?, ?)"))
        .bind(&t.name)
        .bind(Value::Object(t.attributes.clone()).to_string())
        .bind(&t.state)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn update_type_attributes(db: &Db, t: &ResourceType) -> Result<()> {
    sqlx::query(&db.sql("UPDATE resource_types SET attributes = ? WHERE name = ?"))
        .bind(Value::Object(t.attributes.clone()).to_string())
        .bind(&t.name)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

fn type_row(r: &(impl Cols + ?Sized)) -> ResourceType {
    ResourceType {
        name: r.str("name"),
        attributes: r
            .json("attributes")
            .as_object()
            .cloned()
            .unwrap_or_default(),
        state: r.str("state"),
    }
}

pub async fn get_type(db: &Db, name: &str) -> Result<Option<ResourceType>> {
    let row = sqlx::query(&db.sql("SELECT * FROM resource_types WHERE name = ?"))
        .bind(name)
        .fetch_optional(&db.pool)
        .await
        .db()?;
    Ok(row.as_ref().map(type_row))
}

pub async fn list_types(db: &Db) -> Result<Vec<ResourceType>> {
    let rows = sqlx::query("SELECT * FROM resource_types ORDER BY name")
        .fetch_all(&db.pool)
        .await
        .db()?;
    Ok(rows.iter().map(type_row).collect())
}

pub async fn delete_type(db: &Db, name: &str) -> Result<bool> {
    let n = sqlx::query(&db.sql("DELETE FROM resource_types WHERE name = ?"))
        .bind(name)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected();
    Ok(n > 0)
}

pub async fn type_in_use(db: &Db, name: &str) -> Result<bool> {
    Ok(
        sqlx::query(&db.sql("SELECT id FROM resources WHERE type = ? LIMIT 1"))
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .is_some(),
    )
}

/// `generic` and the types Ceilometer's Gnocchi publisher creates for the
/// meters this collector produces.
pub async fn seed_types(db: &Db) -> Result<()> {
    let s = |required: bool| serde_json::json!({"type": "string", "required": required, "min_length": 0, "max_length": 255});
    let types: &[(&str, &[&str])] = &[
        ("generic", &[]),
        (
            "instance",
            &[
                "display_name",
                "flavor_id",
                "flavor_name",
                "host",
                "image_ref",
                "server_group",
            ],
        ),
        ("instance_disk", &["name", "instance_id"]),
        ("instance_network_interface", &["name", "instance_id"]),
        ("image", &["name", "container_format", "disk_format"]),
        ("volume", &["display_name", "volume_type"]),
        ("network", &[]),
    ];
    for (name, attrs) in types {
        if get_type(db, name).await?.is_none() {
            let attributes = attrs.iter().map(|a| (a.to_string(), s(false))).collect();
            insert_type(
                db,
                &ResourceType {
                    name: name.to_string(),
                    attributes,
                    state: "active".into(),
                },
            )
            .await?;
        }
    }
    Ok(())
}
