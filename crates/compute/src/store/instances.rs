//! Instances, their actions and events, and the external events the
//! network service reports.

use super::catalog::Flavor;
use crate::states::{power_code, PowerState, TaskState, VmState};
use ferrostack_core::{Error, Result};
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::{sqlx, Backend, Db, DbResultExt, RowExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One network interface of an instance, as the network API reported it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Vif {
    pub port_id: String,
    pub network_id: String,
    pub network_name: String,
    pub mac_address: String,
    /// The network's MTU (the guest's NIC gets it).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// (address, IP version)
    pub ips: Vec<(String, i64)>,
    /// Floating IPs associated with the port (kept current by the
    /// networking API's `network-changed` events).
    #[serde(default)]
    pub floating_ips: Vec<String>,
    /// True when Nova created the port (and so deletes it with the server).
    pub created_by_compute: bool,
    /// The device tag asked for with the network or port (shown from 2.70).
    #[serde(default)]
    pub tag: Option<String>,
}

/// A network the caller asked for: a network, a port, or a fixed IP on a network.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestedNetwork {
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Fault {
    pub code: i64,
    pub message: String,
    pub created: String,
}

impl Fault {
    /// The fault an operation that failed on `error` leaves on its server:
    /// code 500 with the error's message, as Nova records a compute
    /// host's failure.
    pub fn of(error: &ferrostack_core::Error) -> Fault {
        Fault {
            code: 500,
            message: error.message().to_owned(),
            created: super::now(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Instance {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    /// Nova's `display_description` (shown from 2.19; before 2.19 a
    /// create sets it to the name, as Nova does).
    #[serde(default)]
    pub description: Option<String>,
    pub host: Option<String>,
    pub node: Option<String>,
    pub vm_state: VmState,
    pub task_state: Option<TaskState>,
    #[serde(with = "power_code")]
    pub power_state: PowerState,
    pub deleted: bool,
    pub created_at: String,
    pub updated_at: String,
    pub image_ref: String,
    pub image_properties: Value,
    pub flavor: Flavor,
    pub old_flavor: Option<Flavor>,
    pub new_flavor: Option<Flavor>,
    pub metadata: BTreeMap<String, String>,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    pub user_data: Option<String>,
    pub availability_zone: String,
    pub requested_availability_zone: Option<String>,
    /// 2.74: the host and node asked for at create (the scheduler's
    /// filters still apply).
    pub requested_host: Option<String>,
    pub requested_node: Option<String>,
    pub security_groups: Vec<String>,
    /// `None` means "auto"; an empty list means "none".
    pub requested_networks: Option<Vec<RequestedNetwork>>,
    pub network_info: Vec<Vif>,
    pub launched_at: Option<String>,
    pub terminated_at: Option<String>,
    pub fault: Option<Fault>,
    pub locked: bool,
    pub locked_by: Option<String>,
    /// Why it was locked (2.73), while it is.
    pub locked_reason: Option<String>,
    pub tags: Vec<String>,
    pub reservation_id: String,
    pub launch_index: i64,
    pub config_drive: String,
    pub access_ip_v4: String,
    pub access_ip_v6: String,
    pub instance_name: String,
    /// The state to return to when a resize is reverted (Nova's `old_vm_state`).
    pub old_vm_state: Option<VmState>,
    /// The password the guest posted to the metadata service (encrypted by
    /// the guest with the user's key), as Nova keeps it in system metadata.
    pub guest_password: Option<String>,
    /// Whether the guest was built with a config drive.
    pub has_config_drive: bool,
    /// 2.63: the certificate ids the user trusts to have signed the image
    /// (kept and shown; checked only where image signatures are verified,
    /// which no driver here does, as Nova's default `[glance]`).
    pub trusted_image_certificates: Option<Vec<String>>,
    /// While shelved: the snapshot the guest's disk was saved to, when,
    /// and on which host (Nova's `shelved_image_id`, `shelved_at`,
    /// `shelved_host` system metadata).
    pub shelved_image_id: Option<String>,
    pub shelved_at: Option<String>,
    pub shelved_host: Option<String>,
    /// The guest's host name: given at create, update or rebuild from
    /// 2.90 (an FQDN from 2.94), else made from the name at create as Nova
    /// does; records older than the field fall back to the name.
    pub hostname: Option<String>,
    /// The scheduler hints given at create (`os:scheduler_hints`, each
    /// value a list of strings as Nova's request spec keeps them; 2.100).
    pub scheduler_hints: BTreeMap<String, Value>,
    #[serde(skip)]
    pub rev: i64,
    /// The instance's volumes (the `block_device_mappings` rows, read
    /// with the instance; not part of its record).
    #[serde(skip)]
    pub bdms: Vec<super::bdms::Bdm>,
}

/// Nova's `sanitize_hostname`: the display name made a host name (`My
/// Server_1` → `my-server-1`), at most 63 characters.
pub fn sanitize_hostname(name: &str, id: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            ' ' | '_' | '.' => out.push('-'),
            c if c.is_ascii_alphanumeric() || c == '-' => out.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(63).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    if trimmed.is_empty() {
        format!("server-{id}")
    } else {
        trimmed
    }
}

impl Instance {
    /// The guest's host name (see [`Instance::hostname`]'s field).
    pub fn hostname(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| sanitize_hostname(&self.name, &self.id))
    }

    /// The zone the server is pinned to (Nova's request spec zone): the
    /// one asked for at create or unshelve, without a `:host` part.
    pub fn pinned_availability_zone(&self) -> Option<String> {
        self.requested_availability_zone
            .as_deref()
            .and_then(|z| z.split(':').next())
            .filter(|z| !z.is_empty())
            .map(str::to_owned)
    }
}

/// Read the mappings of `list` in one query.
async fn with_bdms(db: &Db, mut list: Vec<Instance>) -> Result<Vec<Instance>> {
    let ids: Vec<String> = list.iter().map(|i| i.id.clone()).collect();
    let mut bdms = super::bdms::of_instances(db, &ids).await?;
    for i in &mut list {
        i.bdms = bdms.remove(&i.id).unwrap_or_default();
    }
    Ok(list)
}

fn from_row(r: &sqlx::any::AnyRow) -> Instance {
    let mut i: Instance = serde_json::from_str(&r.str("body")).unwrap_or_default();
    i.rev = r.int("rev");
    i
}

pub async fn insert(db: &Db, i: &Instance) -> Result<()> {
    let mut conn = db.pool.acquire().await.db()?;
    insert_on(db, &mut conn, i).await
}

/// [`insert`] on a connection (a transaction that records more with it).
pub async fn insert_on(db: &Db, conn: &mut AnyConnection, i: &Instance) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO instances (id, project_id, user_id, host, vm_state, task_state, power_state, deleted, created_at, updated_at, seq, rev, body, name, vcpus, memory_mb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
    ))
    .bind(&i.id)
    .bind(&i.project_id)
    .bind(&i.user_id)
    .bind(i.host.clone())
    .bind(i.vm_state.as_str())
    .bind(i.task_state.map(TaskState::as_str))
    .bind(i.power_state.code())
    .bind(i.deleted as i64)
    .bind(&i.created_at)
    .bind(&i.updated_at)
    .bind(super::seq())
    .bind(serde_json::to_string(i).expect("instance serializes"))
    .bind(&i.name)
    .bind(i.flavor.vcpus)
    .bind(i.flavor.ram)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// What a project's live instances use: (instances, vCPUs, MiB of RAM),
/// each counted whatever its state, as in Nova.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectUsage {
    pub instances: i64,
    pub vcpus: i64,
    pub memory_mb: i64,
}

/// [`ProjectUsage`] on a connection (read in the transaction that holds
/// the project's quota lock when a boot is recorded).
pub async fn usage_on(db: &Db, conn: &mut AnyConnection, project: &str) -> Result<ProjectUsage> {
    // Summed here, not with SUM(): MySQL and PostgreSQL answer it as a decimal.
    let rows = sqlx::query(
        &db.sql("SELECT vcpus, memory_mb FROM instances WHERE project_id = ? AND deleted = 0"),
    )
    .bind(project)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .iter()
        .fold(ProjectUsage::default(), |u, r| ProjectUsage {
            instances: u.instances + 1,
            vcpus: u.vcpus + r.int("vcpus"),
            memory_mb: u.memory_mb + r.int("memory_mb"),
        }))
}

pub async fn usage(db: &Db, project: &str) -> Result<ProjectUsage> {
    let mut conn = db.pool.acquire().await.db()?;
    usage_on(db, &mut conn, project).await
}

/// Fill the list columns (migration 13) of rows written before them, from
/// their bodies. Run once at start; rows written since carry them.
pub async fn backfill_list_columns(db: &Db) -> Result<()> {
    let rows = sqlx::query("SELECT body, rev FROM instances WHERE name IS NULL OR vcpus IS NULL")
        .fetch_all(&db.pool)
        .await
        .db()?;
    for i in rows.iter().map(from_row) {
        sqlx::query(
            &db.sql("UPDATE instances SET name = ?, vcpus = ?, memory_mb = ? WHERE id = ?"),
        )
        .bind(&i.name)
        .bind(i.flavor.vcpus)
        .bind(i.flavor.ram)
        .bind(&i.id)
        .execute(&db.pool)
        .await
        .db()?;
    }
    Ok(())
}

/// Which rows a server list reads: of a project or all, with these
/// `deleted` values, after the marker's position when paging.
pub struct ListScope<'a> {
    pub project: Option<&'a str>,
    pub deleted: &'a [bool],
    /// The marker's position: only rows after it (the list is newest
    /// first, by `seq` then id).
    pub after: Option<Position>,
    /// Only rows whose name contains one of these (a name filter's
    /// required substrings, checked by the database before the filter).
    pub name_contains: Option<&'a [String]>,
}

/// Where a row stands in a list: its `seq`, ties broken by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub seq: i64,
    pub id: String,
}

/// The position of an instance, the place a list's marker names.
pub async fn position_of(db: &Db, id: &str) -> Result<Option<Position>> {
    Ok(
        sqlx::query(&db.sql("SELECT seq, id FROM instances WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| Position {
                seq: r.int("seq"),
                id: r.str("id"),
            }),
    )
}

/// (seq, name) rows read per query while scanning past the first (which
/// reads just the page and one more, enough when nothing is filtered out);
/// bodies are then read only for rows whose name passes, `BODIES` at a time.
const NARROW: usize = 5000;
const BODIES: usize = 500;

/// A row of the brief list: the two columns `GET /servers` shows (the
/// name is `None` only in rows older than its column, until the backfill
/// at start).
pub struct Named {
    pub id: String,
    pub name: Option<String>,
}

/// Walks `scope` newest first in chunks of (position, name) rows: the
/// first chunk `want + 1` rows, the next ones `NARROW`.
struct NameScan<'a> {
    scope: &'a ListScope<'a>,
    cursor: Option<Position>,
    chunk: usize,
    done: bool,
}

impl<'a> NameScan<'a> {
    fn new(scope: &'a ListScope<'a>, want: usize) -> Self {
        NameScan {
            scope,
            cursor: scope.after.clone(),
            chunk: want.saturating_add(1).min(NARROW),
            done: false,
        }
    }

    /// The next chunk of `Named` rows; empty at the end.
    async fn next(&mut self, db: &Db) -> Result<Vec<Named>> {
        if self.done {
            return Ok(Vec::new());
        }
        let deleted: Vec<String> = self
            .scope
            .deleted
            .iter()
            .map(|d| (*d as i64).to_string())
            .collect();
        let mut q = format!(
            "SELECT seq, id, name FROM instances WHERE deleted IN ({})",
            deleted.join(", ")
        );
        if self.scope.project.is_some() {
            q.push_str(" AND project_id = ?");
        }
        if let Some(parts) = self.scope.name_contains {
            let contains = match &db.backend {
                Backend::Sqlite => "instr(name, ?) > 0",
                Backend::Postgres => "strpos(name, ?) > 0",
                // Under a case-insensitive collation this keeps more rows,
                // never fewer; the filter itself decides.
                Backend::MySql => "LOCATE(?, name) > 0",
            };
            // A row older than the name column (NULL until the backfill)
            // is kept for the filter to judge from its body.
            let any = vec![contains; parts.len()].join(" OR ");
            q.push_str(&format!(" AND (name IS NULL OR {any})"));
        }
        if self.cursor.is_some() {
            q.push_str(" AND (seq < ? OR (seq = ? AND id < ?))");
        }
        q.push_str(&format!(" ORDER BY seq DESC, id DESC LIMIT {}", self.chunk));
        let sql = db.sql(&q);
        let mut query = sqlx::query(&sql);
        if let Some(p) = self.scope.project {
            query = query.bind(p);
        }
        for part in self.scope.name_contains.unwrap_or_default() {
            query = query.bind(part.clone());
        }
        if let Some(c) = &self.cursor {
            query = query.bind(c.seq).bind(c.seq).bind(c.id.clone());
        }
        let rows = query.fetch_all(&db.pool).await.db()?;
        self.done = rows.len() < self.chunk;
        self.chunk = NARROW;
        if let Some(last) = rows.last() {
            self.cursor = Some(Position {
                seq: last.int("seq"),
                id: last.str("id"),
            });
        }
        Ok(rows
            .iter()
            .map(|r| Named {
                id: r.str("id"),
                name: r.opt_str("name"),
            })
            .collect())
    }
}

/// The first `want` instances of `scope`, newest first, that `name_ok`
/// (on the name column, before any body is read) and then `keep` accept,
/// and whether more would follow. Reads the table in chunks, so neither
/// time nor memory grows with the rows after the page; a regex name
/// filter reads names only.
pub async fn scan(
    db: &Db,
    scope: &ListScope<'_>,
    name_ok: impl Fn(&str) -> bool,
    mut keep: impl FnMut(&Instance) -> bool,
    want: usize,
) -> Result<(Vec<Instance>, bool)> {
    let mut out = Vec::new();
    let mut names = NameScan::new(scope, want);
    loop {
        let rows = names.next(db).await?;
        if rows.is_empty() {
            break;
        }
        let ids: Vec<String> = rows
            .into_iter()
            .filter(|r| r.name.as_deref().is_none_or(&name_ok))
            .map(|r| r.id)
            .collect();
        for chunk in ids.chunks(BODIES) {
            for i in bodies(db, chunk).await? {
                if keep(&i) {
                    out.push(i);
                    if out.len() > want {
                        out.truncate(want);
                        return Ok((with_bdms(db, out).await?, true));
                    }
                }
            }
        }
    }
    Ok((with_bdms(db, out).await?, false))
}

/// [`scan`] for the brief list when only the name filters: the id and
/// name columns, no body read.
pub async fn scan_names(
    db: &Db,
    scope: &ListScope<'_>,
    name_ok: impl Fn(&str) -> bool,
    want: usize,
) -> Result<(Vec<Named>, bool)> {
    let mut out = Vec::new();
    let mut names = NameScan::new(scope, want);
    loop {
        let rows = names.next(db).await?;
        if rows.is_empty() {
            return Ok((out, false));
        }
        out.extend(
            rows.into_iter()
                .filter(|r| name_ok(r.name.as_deref().unwrap_or_default())),
        );
        if out.len() > want {
            out.truncate(want);
            return Ok((out, true));
        }
    }
}

/// The instances of these ids, newest first.
async fn bodies(db: &Db, ids: &[String]) -> Result<Vec<Instance>> {
    let marks = vec!["?"; ids.len()].join(", ");
    let text =
        format!("SELECT body, rev FROM instances WHERE id IN ({marks}) ORDER BY seq DESC, id DESC");
    let sql = db.sql(&text);
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id.clone());
    }
    Ok(q.fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(from_row)
        .collect())
}

/// Instances still building that no saga drives: what a crash between
/// recording a boot and its saga would leave (none since both are written
/// in one transaction, but older records may hold some).
pub async fn building_without_saga(db: &Db) -> Result<Vec<Instance>> {
    Ok(sqlx::query(&db.sql(
        "SELECT body, rev FROM instances WHERE vm_state = 'building' AND deleted = 0 AND id NOT IN (SELECT instance_id FROM sagas)",
    ))
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(from_row)
    .collect())
}

/// An instance, deleted ones included.
pub async fn get(db: &Db, id: &str) -> Result<Option<Instance>> {
    let found = sqlx::query(&db.sql("SELECT body, rev FROM instances WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .db()?
        .map(|r| from_row(&r));
    let Some(mut i) = found else {
        return Ok(None);
    };
    i.bdms = super::bdms::of_instance(db, id).await?;
    Ok(Some(i))
}

/// Instances, newest first; of one project when given; deleted ones only when asked.
pub async fn list(db: &Db, project: Option<&str>, deleted: bool) -> Result<Vec<Instance>> {
    let mut q = String::from("SELECT body, rev FROM instances WHERE deleted = ?");
    if project.is_some() {
        q.push_str(" AND project_id = ?");
    }
    q.push_str(" ORDER BY seq DESC");
    let sql = db.sql(&q);
    let mut query = sqlx::query(&sql).bind(deleted as i64);
    if let Some(p) = project {
        query = query.bind(p);
    }
    let list = query
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .map(from_row)
        .collect();
    with_bdms(db, list).await
}

/// Instances placed on a host, not deleted.
pub async fn on_host(db: &Db, host: &str) -> Result<Vec<Instance>> {
    let list =
        sqlx::query(&db.sql("SELECT body, rev FROM instances WHERE host = ? AND deleted = 0"))
            .bind(host)
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .map(from_row)
            .collect();
    with_bdms(db, list).await
}

/// Read-modify-write with a compare-and-set on the revision, retried when
/// another writer got there first, so concurrent updates never undo each other.
pub async fn update<F>(db: &Db, id: &str, mut change: F) -> Result<Instance>
where
    F: FnMut(&mut Instance) -> Result<()>,
{
    for _ in 0..20 {
        let mut i = get(db, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("Instance {id} could not be found.")))?;
        let rev = i.rev;
        change(&mut i)?;
        i.updated_at = super::now();
        let n = sqlx::query(&db.sql(
            "UPDATE instances SET host = ?, vm_state = ?, task_state = ?, power_state = ?, deleted = ?, updated_at = ?, body = ?, name = ?, vcpus = ?, memory_mb = ?, rev = ? WHERE id = ? AND rev = ?",
        ))
        .bind(i.host.clone())
        .bind(i.vm_state.as_str())
        .bind(i.task_state.map(TaskState::as_str))
        .bind(i.power_state.code())
        .bind(i.deleted as i64)
        .bind(&i.updated_at)
        .bind(serde_json::to_string(&i).expect("instance serializes"))
        .bind(&i.name)
        .bind(i.flavor.vcpus)
        .bind(i.flavor.ram)
        .bind(rev + 1)
        .bind(id)
        .bind(rev)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected();
        if n == 1 {
            i.rev = rev + 1;
            return Ok(i);
        }
    }
    Err(Error::Conflict(format!(
        "Instance {id} is being changed concurrently; try again."
    )))
}

// ----- instance actions -----

pub async fn action_start(
    db: &Db,
    instance_id: &str,
    action: &str,
    request_id: &str,
    user_id: &str,
    project_id: &str,
) -> Result<String> {
    let mut conn = db.pool.acquire().await.db()?;
    let id = uuid::Uuid::new_v4().to_string();
    let started = ActionStart {
        id: &id,
        instance_id,
        action,
        request_id,
        user_id,
        project_id,
    };
    action_start_on(db, &mut conn, &started).await?;
    Ok(id)
}

/// An instance action as it begins (Nova's `InstanceAction.action_start`).
pub struct ActionStart<'a> {
    pub id: &'a str,
    pub instance_id: &'a str,
    pub action: &'a str,
    pub request_id: &'a str,
    pub user_id: &'a str,
    pub project_id: &'a str,
}

/// [`action_start`] on a connection, with the action's id chosen by the caller.
pub async fn action_start_on(db: &Db, conn: &mut AnyConnection, a: &ActionStart<'_>) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO instance_actions (id, instance_id, action, request_id, user_id, project_id, start_time, message, seq) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
    ))
    .bind(a.id)
    .bind(a.instance_id)
    .bind(a.action)
    .bind(a.request_id)
    .bind(a.user_id)
    .bind(a.project_id)
    .bind(super::now())
    .bind(super::seq())
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Record one finished event of an action (`compute_reboot_instance`, …).
pub async fn action_event(
    db: &Db,
    action_id: &str,
    event: &str,
    started: &str,
    outcome: std::result::Result<(), String>,
) -> Result<()> {
    let (result, tb) = match outcome {
        Ok(()) => ("Success", None),
        Err(e) => ("Error", Some(e)),
    };
    if result == "Error" {
        sqlx::query(&db.sql("UPDATE instance_actions SET message = 'Error' WHERE id = ?"))
            .bind(action_id)
            .execute(&db.pool)
            .await
            .db()?;
    }
    sqlx::query(&db.sql(
        "INSERT INTO instance_action_events (action_id, event_name, start_time, finish_time, outcome, traceback, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(action_id)
    .bind(event)
    .bind(started)
    .bind(super::now())
    .bind(result)
    .bind(tb)
    .bind(super::seq())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// A server's actions, newest first. `updated_at` is when the action last
/// changed: its start or its newest event's start or finish (2.58 shows it
/// and filters on it).
pub async fn actions(db: &Db, instance_id: &str) -> Result<Vec<Value>> {
    Ok(sqlx::query(&db.sql(
        "SELECT a.*, (SELECT MAX(COALESCE(e.finish_time, e.start_time)) FROM instance_action_events e WHERE e.action_id = a.id) AS last_event FROM instance_actions a WHERE a.instance_id = ? ORDER BY a.seq DESC",
    ))
    .bind(instance_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| {
        serde_json::json!({
            "id": r.str("id"), "action": r.str("action"), "request_id": r.str("request_id"),
            "user_id": r.str("user_id"), "project_id": r.str("project_id"),
            "start_time": r.str("start_time"), "message": r.opt_str("message"),
            "instance_uuid": r.str("instance_id"),
            "updated_at": r.opt_str("last_event").filter(|e| *e > r.str("start_time")).unwrap_or_else(|| r.str("start_time")),
        })
    })
    .collect())
}

pub async fn action_events(db: &Db, action_id: &str) -> Result<Vec<Value>> {
    Ok(sqlx::query(
        &db.sql("SELECT * FROM instance_action_events WHERE action_id = ? ORDER BY seq"),
    )
    .bind(action_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| {
        serde_json::json!({
            "event": r.str("event_name"), "start_time": r.str("start_time"),
            "finish_time": r.str("finish_time"), "result": r.str("outcome"),
            "traceback": r.opt_str("traceback"),
        })
    })
    .collect())
}

// ----- external events (network-vif-plugged, …) -----

pub async fn add_external_event(
    db: &Db,
    instance_id: &str,
    name: &str,
    tag: &str,
    status: &str,
) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO external_events (instance_id, name, tag, status, received_at, seq) VALUES (?, ?, ?, ?, ?, ?)",
    ))
    .bind(instance_id)
    .bind(name)
    .bind(tag)
    .bind(status)
    .bind(super::now())
    .bind(super::seq())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

/// The (name, tag, status) of the events received for an instance.
pub async fn external_events(db: &Db, instance_id: &str) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query(
        &db.sql("SELECT name, tag, status FROM external_events WHERE instance_id = ? ORDER BY seq"),
    )
    .bind(instance_id)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(|r| (r.str("name"), r.str("tag"), r.str("status")))
    .collect())
}
