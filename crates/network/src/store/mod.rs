//! The network database. Every resource is a JSON document in `resources`
//! (its API view, as stored), keyed by kind and id; the allocations that
//! must be unique across concurrent requests — IP addresses, MAC addresses,
//! segmentation ids — have their own tables whose primary keys make the
//! database refuse a double allocation.

use ferrostack_core::{Error, Result};
use ferrostack_db::{sqlx, Db, DbResultExt, Migration, RowExt};
use serde_json::Value;

mod scan;
pub use scan::{children_of, get_many, ports_with_ip, position_of, Order, Position, Scan};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
    version: 1,
    name: "network_initial",
    sql: "
CREATE TABLE resources (kind VARCHAR(32) NOT NULL, id VARCHAR(64) NOT NULL, project_id VARCHAR(64), seq BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE INDEX resources_kind_seq ON resources (kind, seq);
CREATE TABLE ip_allocations (network_id VARCHAR(36) NOT NULL, ip_address VARCHAR(64) NOT NULL, subnet_id VARCHAR(36) NOT NULL, port_id VARCHAR(36) NOT NULL, PRIMARY KEY (network_id, ip_address));
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);
CREATE TABLE mac_allocations (network_id VARCHAR(36) NOT NULL, mac_address VARCHAR(17) NOT NULL, port_id VARCHAR(36) NOT NULL, PRIMARY KEY (network_id, mac_address));
CREATE TABLE segment_allocations (network_type VARCHAR(16) NOT NULL, physical_network VARCHAR(64) NOT NULL, segmentation_id BIGINT NOT NULL, network_id VARCHAR(36) NOT NULL, PRIMARY KEY (network_type, physical_network, segmentation_id))
",
},
    Migration {
        version: 2,
        name: "network_project_index",
        // Quota checks count a project's resources on every create.
        sql: "CREATE INDEX resources_kind_project ON resources (kind, project_id)",
    },
    Migration {
        version: 3,
        name: "network_revisions",
        // Compare-and-set for read-modify-write updates (see `Tx::update`).
        sql: "ALTER TABLE resources ADD COLUMN rev BIGINT NOT NULL DEFAULT 0",
    },
    Migration {
        version: 4,
        name: "network_lookup_columns",
        // Ports by device (Nova looks its instance's ports up on every
        // boot) and ports/subnets by network, without reading every
        // document. Filled from the documents by `backfill_lookup_columns`.
        sql: "
ALTER TABLE resources ADD COLUMN parent_id VARCHAR(64);
ALTER TABLE resources ADD COLUMN device_id VARCHAR(255);
CREATE INDEX resources_kind_parent ON resources (kind, parent_id);
CREATE INDEX resources_kind_device ON resources (kind, device_id)
",
    },
    Migration {
        version: 5,
        name: "network_quota_locks",
        // One row per project, locked by an UPDATE at the start of a
        // quota-checked create, so the count and the insert are one step
        // (see `Tx::within_quota`).
        sql: "CREATE TABLE quota_locks (project_id VARCHAR(64) NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (project_id))",
    },
    Migration {
        version: 6,
        name: "network_host_column",
        // A port's binding host: every L2 agent asks for the ports bound
        // to its host on each resync. Filled by `backfill_lookup_columns`.
        sql: "
ALTER TABLE resources ADD COLUMN host_id VARCHAR(255);
CREATE INDEX resources_kind_host ON resources (kind, host_id)
",
    },
];

/// The indexed lookup columns of a document.
#[derive(Default)]
struct Lookup {
    /// A port's or subnet's network, a rule's security group.
    parent: Option<String>,
    device: Option<String>,
    /// A port's binding host ("" while unbound).
    host: Option<String>,
}

fn lookup_columns(kind: Kind, doc: &Value) -> Lookup {
    let text = |key: &str| doc[key].as_str().map(str::to_owned);
    match kind {
        Kind::Port => Lookup {
            parent: text("network_id"),
            device: text("device_id"),
            host: Some(text("binding:host_id").unwrap_or_default()),
        },
        Kind::Subnet => Lookup {
            parent: text("network_id"),
            ..Lookup::default()
        },
        Kind::SecurityGroupRule => Lookup {
            parent: text("security_group_id"),
            ..Lookup::default()
        },
        _ => Lookup::default(),
    }
}

/// Fill the lookup columns of documents written before they existed.
pub async fn backfill_lookup_columns(db: &Db) -> Result<()> {
    for kind in [Kind::Port, Kind::Subnet, Kind::SecurityGroupRule] {
        let rows = sqlx::query(&db.sql(
            "SELECT body FROM resources WHERE kind = ? AND (parent_id IS NULL OR (kind = 'port' AND host_id IS NULL))",
        ))
        .bind(kind.as_str())
        .fetch_all(&db.pool)
        .await
        .db()?;
        for r in rows {
            let doc: Value = serde_json::from_str(&r.str("body")).unwrap_or_default();
            let columns = lookup_columns(kind, &doc);
            sqlx::query(&db.sql(
                "UPDATE resources SET parent_id = ?, device_id = ?, host_id = ? WHERE kind = ? AND id = ?",
            ))
            .bind(columns.parent)
            .bind(columns.device)
            .bind(columns.host)
            .bind(kind.as_str())
            .bind(doc["id"].as_str().unwrap_or_default())
            .execute(&db.pool)
            .await
            .db()?;
        }
    }
    Ok(())
}

/// The documents of a kind whose lookup column (`parent_id`; `device_id`)
/// has a value, in creation order.
pub async fn list_by(db: &Db, kind: Kind, column: LookupColumn, value: &str) -> Result<Vec<Value>> {
    let sql = match column {
        LookupColumn::Parent => {
            "SELECT body, rev FROM resources WHERE kind = ? AND parent_id = ? ORDER BY seq, id"
        }
        LookupColumn::Device => {
            "SELECT body, rev FROM resources WHERE kind = ? AND device_id = ? ORDER BY seq, id"
        }
        LookupColumn::Host => {
            "SELECT body, rev FROM resources WHERE kind = ? AND host_id = ? ORDER BY seq, id"
        }
    };
    Ok(sqlx::query(&db.sql(sql))
        .bind(kind.as_str())
        .bind(value)
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(with_rev)
        .collect())
}

/// The ports a live migration is bringing to `host` (Nova sets
/// `binding:profile.migrating_to` before the switch-over, so that host's
/// agents wire the guest while its binding still names the source). A
/// text match picks candidates; the profile is then checked exactly.
pub async fn ports_migrating_to(db: &Db, host: &str) -> Result<Vec<Value>> {
    let pattern = format!("%\"migrating_to\":{}%", Value::from(host));
    Ok(sqlx::query(&db.sql(
        "SELECT body, rev FROM resources WHERE kind = 'port' AND body LIKE ? ORDER BY seq, id",
    ))
    .bind(pattern)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(with_rev)
    .filter(|p| p["binding:profile"]["migrating_to"] == host)
    .collect())
}

#[derive(Clone, Copy, Debug)]
pub enum LookupColumn {
    /// A port's or subnet's network, a rule's security group.
    Parent,
    Device,
    /// A port's binding host.
    Host,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Network,
    Subnet,
    Port,
    Router,
    FloatingIp,
    SecurityGroup,
    SecurityGroupRule,
    Agent,
    Quota,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Port => "port",
            Kind::Router => "router",
            Kind::FloatingIp => "floatingip",
            Kind::SecurityGroup => "security_group",
            Kind::SecurityGroupRule => "security_group_rule",
            Kind::Agent => "agent",
            Kind::Quota => "quota",
        }
    }
}

/// The field carrying a document's stored revision while it is in memory
/// (internal: `_` fields never reach a client).
pub const REV: &str = "_rev";

fn with_rev(r: &sqlx::any::AnyRow) -> Value {
    let mut v = r.json("body");
    if let Some(o) = v.as_object_mut() {
        o.insert(REV.into(), Value::from(r.int("rev")));
    }
    v
}

pub async fn get(db: &Db, kind: Kind, id: &str) -> Result<Option<Value>> {
    Ok(
        sqlx::query(&db.sql("SELECT body, rev FROM resources WHERE kind = ? AND id = ?"))
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| with_rev(&r)),
    )
}

/// Every document of a kind, in creation order.
pub async fn list(db: &Db, kind: Kind) -> Result<Vec<Value>> {
    Ok(
        sqlx::query(&db.sql("SELECT body, rev FROM resources WHERE kind = ? ORDER BY seq, id"))
            .bind(kind.as_str())
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(with_rev)
            .collect(),
    )
}

pub async fn count_for_project(db: &Db, kind: Kind, project_id: &str) -> Result<i64> {
    let r = sqlx::query(
        &db.sql("SELECT COUNT(*) AS n FROM resources WHERE kind = ? AND project_id = ?"),
    )
    .bind(kind.as_str())
    .bind(project_id)
    .fetch_one(&db.pool)
    .await
    .db()?;
    Ok(r.int("n"))
}

fn seq() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A unit of work: documents and allocations written together or not at
/// all. It holds no database connection while the service builds it — the
/// writes are recorded and run in one transaction by [`Tx::commit`], which
/// does nothing but SQL — so no code path can wait for a second pooled
/// connection while holding one (with a pool of N, N such waiters used to
/// deadlock the service). Reads go through the pool as before; what must be
/// unique is guarded by primary keys, what was read is guarded by revision
/// compare-and-set, and quotas by [`Tx::within_quota`], all checked at commit.
pub struct Tx<'a> {
    db: &'a Db,
    quotas: Vec<QuotaGuard>,
    writes: Vec<Write>,
}

/// "At most `limit` documents of `kind` in `project` once this commits".
struct QuotaGuard {
    kind: Kind,
    project: String,
    limit: i64,
}

enum Write {
    Insert(Kind, Value),
    Update(Kind, Value),
    Delete(Kind, String),
    AllocateIp {
        network_id: String,
        ip: String,
        subnet_id: String,
        port_id: String,
    },
    ReleasePortIps(String),
    ReleaseSubnetIps(String),
    AllocateMac {
        network_id: String,
        mac: String,
        port_id: String,
    },
    ReleaseMac(String),
    AllocateSegment {
        network_type: String,
        physnet: String,
        id: i64,
        network_id: String,
    },
    ReleaseSegments(String),
}

type Conn = sqlx::AnyConnection;

impl<'a> Tx<'a> {
    pub fn begin(db: &'a Db) -> Tx<'a> {
        Tx {
            db,
            quotas: Vec::new(),
            writes: Vec::new(),
        }
    }

    /// Refuse the whole commit with 409 OverQuota if `project` would hold
    /// more than `limit` documents of `kind` (negative: unlimited). Checked
    /// inside the transaction after a lock on the project's quota row, so
    /// concurrent creators of one project count one after the other on
    /// SQLite, MariaDB and PostgreSQL alike.
    pub fn within_quota(&mut self, kind: Kind, project: &str, limit: i64) {
        if limit >= 0 {
            self.quotas.push(QuotaGuard {
                kind,
                project: project.to_owned(),
                limit,
            });
        }
    }

    pub fn insert(&mut self, kind: Kind, doc: &Value) {
        self.writes.push(Write::Insert(kind, doc.clone()));
    }

    /// Write a document read earlier; if someone else wrote it since (its
    /// `_rev` moved on), the commit writes nothing and answers 409.
    pub fn update(&mut self, kind: Kind, doc: &Value) {
        self.writes.push(Write::Update(kind, doc.clone()));
    }

    pub fn delete(&mut self, kind: Kind, id: &str) {
        self.writes.push(Write::Delete(kind, id.to_owned()));
    }

    /// Claim an address; the commit answers `IpAddressAlreadyAllocated` when
    /// another port holds it.
    pub fn allocate_ip(&mut self, network_id: &str, ip: &str, subnet_id: &str, port_id: &str) {
        self.writes.push(Write::AllocateIp {
            network_id: network_id.to_owned(),
            ip: ip.to_owned(),
            subnet_id: subnet_id.to_owned(),
            port_id: port_id.to_owned(),
        });
    }

    pub fn release_port_ips(&mut self, port_id: &str) {
        self.writes.push(Write::ReleasePortIps(port_id.to_owned()));
    }

    pub fn release_subnet_ips(&mut self, subnet_id: &str) {
        self.writes
            .push(Write::ReleaseSubnetIps(subnet_id.to_owned()));
    }

    pub fn allocate_mac(&mut self, network_id: &str, mac: &str, port_id: &str) {
        self.writes.push(Write::AllocateMac {
            network_id: network_id.to_owned(),
            mac: mac.to_owned(),
            port_id: port_id.to_owned(),
        });
    }

    pub fn release_mac(&mut self, port_id: &str) {
        self.writes.push(Write::ReleaseMac(port_id.to_owned()));
    }

    pub fn allocate_segment(
        &mut self,
        network_type: &str,
        physnet: &str,
        id: i64,
        network_id: &str,
    ) {
        self.writes.push(Write::AllocateSegment {
            network_type: network_type.to_owned(),
            physnet: physnet.to_owned(),
            id,
            network_id: network_id.to_owned(),
        });
    }

    pub fn release_segments(&mut self, network_id: &str) {
        self.writes
            .push(Write::ReleaseSegments(network_id.to_owned()));
    }

    /// Run the recorded writes in one transaction on one connection: quota
    /// rows locked and counted first (so on SQLite the transaction is a
    /// writer from its first statement and never has to upgrade), then the
    /// writes in order. Any failure rolls everything back.
    pub async fn commit(self) -> Result<()> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let db = self.db;
        let mut conn = db.pool.acquire().await.db()?;
        for q in &self.quotas {
            ensure_quota_row(db, &mut conn, &q.project).await?;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await.db()?;
        for q in &self.quotas {
            let adding = self
                .writes
                .iter()
                .filter(|w| matches!(w, Write::Insert(k, d) if *k == q.kind && d["project_id"] == q.project.as_str()))
                .count() as i64;
            check_quota(db, &mut tx, q, adding).await?;
        }
        for w in &self.writes {
            apply(db, &mut tx, w).await?;
        }
        tx.commit().await.db()
    }
}

/// Every project that ever had a quota-checked create has a row in
/// `quota_locks`; made outside the transaction (a duplicate from a
/// concurrent first create is fine) so that inside it the row only needs
/// locking.
async fn ensure_quota_row(db: &Db, conn: &mut Conn, project: &str) -> Result<()> {
    let exists = sqlx::query(&db.sql("SELECT n FROM quota_locks WHERE project_id = ?"))
        .bind(project)
        .fetch_optional(&mut *conn)
        .await
        .db()?
        .is_some();
    if !exists {
        match sqlx::query(&db.sql("INSERT INTO quota_locks (project_id, n) VALUES (?, 0)"))
            .bind(project)
            .execute(&mut *conn)
            .await
            .db()
        {
            Ok(_) | Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Lock the project's quota row (an UPDATE: a row lock on MariaDB and
/// PostgreSQL, the database's write lock on SQLite), then count.
async fn check_quota(db: &Db, conn: &mut Conn, q: &QuotaGuard, adding: i64) -> Result<()> {
    sqlx::query(&db.sql("UPDATE quota_locks SET n = n + 1 WHERE project_id = ?"))
        .bind(&q.project)
        .execute(&mut *conn)
        .await
        .db()?;
    let used = sqlx::query(
        &db.sql("SELECT COUNT(*) AS n FROM resources WHERE kind = ? AND project_id = ?"),
    )
    .bind(q.kind.as_str())
    .bind(&q.project)
    .fetch_one(&mut *conn)
    .await
    .db()?
    .int("n");
    if used + adding > q.limit {
        return Err(Error::Conflict(format!(
            "Quota exceeded for resources: ['{}'].",
            q.kind.as_str()
        ))
        .typed("OverQuota"));
    }
    Ok(())
}

/// The body as stored: the in-memory revision is not part of it.
fn stored_body(doc: &Value) -> String {
    let mut body = doc.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove(REV);
    }
    body.to_string()
}

async fn apply(db: &Db, conn: &mut Conn, w: &Write) -> Result<()> {
    match w {
        Write::Insert(kind, doc) => {
            let columns = lookup_columns(*kind, doc);
            sqlx::query(&db.sql(
                "INSERT INTO resources (kind, id, project_id, seq, body, parent_id, device_id, host_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(kind.as_str())
            .bind(doc["id"].as_str().unwrap_or_default())
            .bind(doc["project_id"].as_str())
            .bind(seq())
            .bind(stored_body(doc))
            .bind(columns.parent)
            .bind(columns.device)
            .bind(columns.host)
            .execute(&mut *conn)
            .await
            .db()?;
        }
        Write::Update(kind, doc) => update(db, conn, *kind, doc).await?,
        Write::Delete(kind, id) => {
            sqlx::query(&db.sql("DELETE FROM resources WHERE kind = ? AND id = ?"))
                .bind(kind.as_str())
                .bind(id)
                .execute(&mut *conn)
                .await
                .db()?;
        }
        Write::AllocateIp {
            network_id,
            ip,
            subnet_id,
            port_id,
        } => {
            sqlx::query(&db.sql("INSERT INTO ip_allocations (network_id, ip_address, subnet_id, port_id) VALUES (?, ?, ?, ?)"))
                .bind(network_id)
                .bind(ip)
                .bind(subnet_id)
                .bind(port_id)
                .execute(&mut *conn)
                .await
                .db()
                .map_err(|e| match e {
                    Error::Conflict(_) => Error::Conflict(format!(
                        "IP address {ip} already allocated in subnet {subnet_id}"
                    )).typed("IpAddressAlreadyAllocated"),
                    other => other,
                })?;
        }
        Write::ReleasePortIps(port_id) => {
            sqlx::query(&db.sql("DELETE FROM ip_allocations WHERE port_id = ?"))
                .bind(port_id)
                .execute(&mut *conn)
                .await
                .db()?;
        }
        Write::ReleaseSubnetIps(subnet_id) => {
            sqlx::query(&db.sql("DELETE FROM ip_allocations WHERE subnet_id = ?"))
                .bind(subnet_id)
                .execute(&mut *conn)
                .await
                .db()?;
        }
        Write::AllocateMac {
            network_id,
            mac,
            port_id,
        } => {
            sqlx::query(&db.sql("INSERT INTO mac_allocations (network_id, mac_address, port_id) VALUES (?, ?, ?)"))
                .bind(network_id)
                .bind(mac)
                .bind(port_id)
                .execute(&mut *conn)
                .await
                .db()
                .map_err(|e| match e {
                    Error::Conflict(_) => Error::Conflict(format!(
                        "Unable to complete operation for network {network_id}. The mac address {mac} is in use."
                    )).typed("MacAddressInUse"),
                    other => other,
                })?;
        }
        Write::ReleaseMac(port_id) => {
            sqlx::query(&db.sql("DELETE FROM mac_allocations WHERE port_id = ?"))
                .bind(port_id)
                .execute(&mut *conn)
                .await
                .db()?;
        }
        Write::AllocateSegment {
            network_type,
            physnet,
            id,
            network_id,
        } => {
            sqlx::query(&db.sql(
                "INSERT INTO segment_allocations (network_type, physical_network, segmentation_id, network_id) VALUES (?, ?, ?, ?)",
            ))
            .bind(network_type)
            .bind(physnet)
            .bind(id)
            .bind(network_id)
            .execute(&mut *conn)
            .await
            .db()
            .map_err(|e| match e {
                Error::Conflict(_) => Error::Conflict(format!(
                    "Unable to create the network. The {network_type} segmentation id {id} is in use."
                )).typed(match network_type.as_str() {
                    "vlan" => "VlanIdInUse",
                    "flat" => "FlatNetworkInUse",
                    _ => "TunnelIdInUse",
                }),
                other => other,
            })?;
        }
        Write::ReleaseSegments(network_id) => {
            sqlx::query(&db.sql("DELETE FROM segment_allocations WHERE network_id = ?"))
                .bind(network_id)
                .execute(&mut *conn)
                .await
                .db()?;
        }
    }
    Ok(())
}

/// Compare-and-set on the revision the document was read at (`_rev`).
async fn update(db: &Db, conn: &mut Conn, kind: Kind, doc: &Value) -> Result<()> {
    let expected = doc.get(REV).and_then(Value::as_i64);
    let id = doc["id"].as_str().unwrap_or_default();
    let sql = match expected {
        Some(_) => "UPDATE resources SET body = ?, project_id = ?, parent_id = ?, device_id = ?, host_id = ?, rev = rev + 1 WHERE kind = ? AND id = ? AND rev = ?",
        None => "UPDATE resources SET body = ?, project_id = ?, parent_id = ?, device_id = ?, host_id = ?, rev = rev + 1 WHERE kind = ? AND id = ?",
    };
    let sql = db.sql(sql);
    let columns = lookup_columns(kind, doc);
    let mut q = sqlx::query(&sql)
        .bind(stored_body(doc))
        .bind(doc["project_id"].as_str())
        .bind(columns.parent)
        .bind(columns.device)
        .bind(columns.host)
        .bind(kind.as_str())
        .bind(id);
    if let Some(r) = expected {
        q = q.bind(r);
    }
    let done = q.execute(&mut *conn).await.db()?.rows_affected();
    if done == 0 && expected.is_some() {
        return Err(Error::Conflict(format!(
            "The {} {id} was changed by another request at the same time; retry.",
            kind.as_str()
        ))
        .typed("ConcurrentModification"));
    }
    Ok(())
}

/// Addresses in use on a network.
pub async fn used_ips(db: &Db, network_id: &str) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query(
        &db.sql("SELECT ip_address, subnet_id, port_id FROM ip_allocations WHERE network_id = ?"),
    )
    .bind(network_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| (r.str("ip_address"), r.str("subnet_id"), r.str("port_id")))
    .collect())
}

pub async fn used_segments(db: &Db, network_type: &str, physnet: &str) -> Result<Vec<i64>> {
    Ok(sqlx::query(&db.sql("SELECT segmentation_id FROM segment_allocations WHERE network_type = ? AND physical_network = ?"))
        .bind(network_type)
        .bind(physnet)
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(|r| r.int("segmentation_id"))
        .collect())
}

pub async fn ip_in_use(db: &Db, network_id: &str, ip: &str) -> Result<bool> {
    Ok(sqlx::query(
        &db.sql("SELECT port_id FROM ip_allocations WHERE network_id = ? AND ip_address = ?"),
    )
    .bind(network_id)
    .bind(ip)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .is_some())
}

pub async fn mac_in_use(db: &Db, network_id: &str, mac: &str) -> Result<bool> {
    Ok(sqlx::query(
        &db.sql("SELECT port_id FROM mac_allocations WHERE network_id = ? AND mac_address = ?"),
    )
    .bind(network_id)
    .bind(mac)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .is_some())
}
