//! The service layer: recording readings (raw sample, resource revision,
//! metric, rollups — one transaction per batch, with the notification's
//! message id so a redelivery is a no-op), and the policy checks every
//! API operation goes through.

use crate::archive::ArchivePolicy;
use crate::meters::Reading;
use crate::store::{self, measures, metrics::Metric, resources::Resource};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};
use ferrostack_db::{Db, DbResultExt};
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

pub struct TelemetryService {
    pub db: Db,
    pub config: Config,
    pub policy: Policy,
    /// Archive policies by name, read once and refreshed on change.
    policies: Mutex<HashMap<String, ArchivePolicy>>,
    /// One writer at a time in this process: rollup rows are read-modify-
    /// written, and a single writer keeps SQLite free of busy retries.
    /// On SQLite it holds the writer's own connection (out of the pool),
    /// the only one with the larger page cache ([`WRITER_CACHE_KIB`]).
    writer: tokio::sync::Mutex<Option<AnyConnection>>,
}

/// The project and user of an instance, for the pollster's samples.
type Owner = (Option<String>, Option<String>);

/// One notification's worth of readings, with the id that makes it
/// idempotent (`None` for samples posted through the API).
pub struct Batch {
    pub message_id: Option<String>,
    pub readings: Vec<Reading>,
}

impl TelemetryService {
    pub async fn new(db: Db, config: Config) -> Result<TelemetryService> {
        let policy = Policy::new(crate::policy::DEFAULTS)
            .with_file(
                (!config.telemetry.policy_file.is_empty())
                    .then(|| std::path::Path::new(&config.telemetry.policy_file)),
            )
            .map_err(Error::Internal)?;
        store::policies::seed(&db).await?;
        store::resources::seed_types(&db).await?;
        let writer = writer_connection(&db).await?;
        let svc = TelemetryService {
            db,
            config,
            policy,
            policies: Mutex::new(HashMap::new()),
            writer: tokio::sync::Mutex::new(writer),
        };
        svc.reload_policies().await?;
        Ok(svc)
    }

    pub async fn reload_policies(&self) -> Result<()> {
        let all = store::policies::list(&self.db).await?;
        *self.policies.lock().unwrap() = all.into_iter().map(|p| (p.name.clone(), p)).collect();
        Ok(())
    }

    pub fn archive_policy(&self, name: &str) -> Option<ArchivePolicy> {
        self.policies.lock().unwrap().get(name).cloned()
    }

    /// Enforce a rule on a target owned by `project_id`.
    pub fn authorize(
        &self,
        ctx: &AuthContext,
        action: &str,
        project_id: Option<&str>,
    ) -> Result<()> {
        self.policy
            .enforce(action, ctx, &json!({"project_id": project_id}))
    }

    /// Ceilometer's scoping: admins see every project, others their own.
    pub fn scope(&self, ctx: &AuthContext) -> Option<String> {
        if self.policy.check("context_is_admin", ctx, &json!({})) {
            None
        } else {
            Some(ctx.project_id.clone().unwrap_or_default())
        }
    }

    /// Record batches in one transaction; returns the samples stored (a
    /// batch whose message id was already processed adds none).
    pub async fn record(&self, batches: Vec<Batch>) -> Result<usize> {
        let mut writer = self.writer.lock().await;
        let mut tx = begin_write(&mut writer, &self.db).await?;
        let now = store::now_us();
        let mut previous = crate::derive::Previous::default();
        let mut owners = HashMap::new();
        let mut all: Vec<Reading> = Vec::new();
        for mut batch in batches {
            if let Some(id) = &batch.message_id {
                if !store::samples::mark_processed(&mut tx, &self.db, id).await? {
                    continue;
                }
            }
            let derived =
                crate::derive::rates(&mut tx, &self.db, &mut previous, &batch.readings).await?;
            batch.readings.extend(derived);
            for mut r in batch.readings {
                r.sample.recorded_at = now;
                self.fill_owner(&mut tx, &mut owners, &mut r).await?;
                all.push(r);
            }
        }
        let refs: Vec<&store::samples::Sample> = all.iter().map(|r| &r.sample).collect();
        let fresh = store::samples::insert_many(&mut tx, &self.db, &refs).await?;
        let new: Vec<Reading> = all
            .into_iter()
            .zip(fresh)
            .filter_map(|(r, f)| f.then_some(r))
            .collect();
        let stored = new.len();
        self.file(&mut tx, new).await?;
        tx.commit().await.db()?;
        Ok(stored)
    }

    /// File new readings: the batch's resources and their metrics read in
    /// one statement each, each resource's sample times written once, and
    /// every metric's points folded into its rollups together.
    async fn file(&self, tx: &mut AnyConnection, readings: Vec<Reading>) -> Result<()> {
        let originals: HashSet<&str> = readings
            .iter()
            .map(|r| r.sample.resource_id.as_str())
            .collect();
        let ids: Vec<String> = originals
            .into_iter()
            .map(store::resources::resource_uuid)
            .collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut resources = store::resources::get_many(tx, &self.db, &id_refs).await?;
        let mut stored_metrics = store::metrics::of_resources(tx, &self.db, &id_refs).await?;
        // (resource, meter) → (metric, its policy, the resource's uuid).
        let mut metrics: HashMap<(String, String), (String, String, String)> = HashMap::new();
        let mut touched: HashMap<String, (i64, i64, Value)> = HashMap::new();
        let mut points: HashMap<String, (String, Vec<(i64, f64)>)> = HashMap::new();
        for r in readings {
            let key = (r.sample.resource_id.clone(), r.sample.meter.clone());
            if !metrics.contains_key(&key) {
                let id = store::resources::resource_uuid(&r.sample.resource_id);
                let resource = self.ensure_resource(tx, resources.remove(&id), &r).await?;
                let s = &r.sample;
                let m = match stored_metrics.remove(&(id.clone(), s.meter.clone())) {
                    Some(m) => m,
                    None => {
                        let (unit, kind) = (Some(s.unit.as_str()), Some(s.kind.as_str()));
                        self.create_metric(tx, &resource, &s.meter, unit, kind)
                            .await?
                    }
                };
                metrics.insert(key.clone(), (m.id, m.archive_policy_name, id.clone()));
                resources.insert(id, resource);
            }
            let (metric_id, policy, resource) = &metrics[&key];
            let s = r.sample;
            let t = touched
                .entry(resource.clone())
                .or_insert((s.ts, s.ts, Value::Null));
            t.0 = t.0.min(s.ts);
            if s.ts >= t.1 || t.2.is_null() {
                t.1 = t.1.max(s.ts);
                t.2 = s.metadata;
            }
            points
                .entry(metric_id.clone())
                .or_insert_with(|| (policy.clone(), Vec::new()))
                .1
                .push((s.ts, s.volume));
        }
        for (id, (first, last, metadata)) in touched {
            store::resources::touch(tx, &self.db, &id, (first, last), &metadata).await?;
        }
        let policies: HashMap<&str, ArchivePolicy> = points
            .values()
            .filter_map(|(name, _)| Some((name.as_str(), self.archive_policy(name)?)))
            .collect();
        let batch: Vec<measures::MetricPoints> = points
            .iter()
            .filter_map(|(metric, (policy, pts))| {
                Some(measures::MetricPoints {
                    metric,
                    policy: policies.get(policy.as_str())?,
                    points: pts,
                })
            })
            .collect();
        measures::add_many(tx, &self.db, &batch).await?;
        Ok(())
    }

    /// A compute host's pollster knows guests, not their owners: a sample
    /// without a project takes its instance's (from the instance resource
    /// the compute notifications made).
    /// `owners` remembers the instances found in this `record` call.
    async fn fill_owner(
        &self,
        conn: &mut AnyConnection,
        owners: &mut HashMap<String, Owner>,
        r: &mut Reading,
    ) -> Result<()> {
        if r.sample.project_id.is_some() {
            return Ok(());
        }
        let instance = r.sample.metadata["instance_id"]
            .as_str()
            .unwrap_or(&r.sample.resource_id)
            .to_owned();
        let id = store::resources::resource_uuid(&instance);
        if !owners.contains_key(&id) {
            if let Some(found) = store::resources::get(conn, &self.db, &id).await? {
                owners.insert(id.clone(), (found.project_id, found.user_id));
            }
        }
        if let Some((project_id, user_id)) = owners.get(&id).cloned() {
            r.sample.project_id = project_id;
            r.sample.user_id = r.sample.user_id.take().or(user_id);
        }
        Ok(())
    }

    /// The resource of a reading, created or given a new revision when its
    /// attributes or owner changed; its sample timestamps follow.
    /// `current` is its stored revision, read by the caller.
    async fn ensure_resource(
        &self,
        conn: &mut AnyConnection,
        current: Option<Resource>,
        r: &Reading,
    ) -> Result<Resource> {
        let id = store::resources::resource_uuid(&r.sample.resource_id);
        let s = &r.sample;
        let resource = match current {
            None => {
                let new = Resource {
                    id: id.clone(),
                    kind: r.resource_type.into(),
                    original_resource_id: s.resource_id.clone(),
                    project_id: s.project_id.clone(),
                    user_id: s.user_id.clone(),
                    created_by_project_id: s.project_id.clone().unwrap_or_default(),
                    created_by_user_id: s.user_id.clone().unwrap_or_default(),
                    started_at: s.ts,
                    ended_at: None,
                    revision: 1,
                    revision_start: s.recorded_at,
                    revision_end: None,
                    attributes: r.attributes.clone(),
                    first_sample: None,
                    last_sample: None,
                    metadata: json!({}),
                };
                store::resources::insert(conn, &self.db, &new).await?;
                new
            }
            Some(old) => {
                let mut attributes = old.attributes.clone();
                for (k, v) in &r.attributes {
                    if !v.is_null() {
                        attributes.insert(k.clone(), v.clone());
                    }
                }
                // A resource keeps its owner: samples of other projects
                // about it (a download billed to the receiver) only fill a
                // missing one.
                let project_id = old.project_id.clone().or(s.project_id.clone());
                let user_id = old.user_id.clone().or(s.user_id.clone());
                if attributes != old.attributes
                    || project_id != old.project_id
                    || user_id != old.user_id
                {
                    let new = Resource {
                        attributes,
                        project_id,
                        user_id,
                        revision_start: s.recorded_at,
                        ..old.clone()
                    };
                    store::resources::revise(conn, &self.db, &old, &new).await?;
                    new
                } else {
                    old
                }
            }
        };
        Ok(resource)
    }

    /// The metric `name` of a resource, made with the rule-chosen archive
    /// policy when it does not exist yet.
    pub async fn ensure_metric(
        &self,
        conn: &mut AnyConnection,
        resource: &Resource,
        name: &str,
        unit: Option<&str>,
        meter_type: Option<&str>,
    ) -> Result<Metric> {
        if let Some(m) =
            store::metrics::by_resource_name(conn, &self.db, &resource.id, name).await?
        {
            return Ok(m);
        }
        self.create_metric(conn, resource, name, unit, meter_type)
            .await
    }

    /// A new metric `name` of a resource, with the rule-chosen archive
    /// policy.
    async fn create_metric(
        &self,
        conn: &mut AnyConnection,
        resource: &Resource,
        name: &str,
        unit: Option<&str>,
        meter_type: Option<&str>,
    ) -> Result<Metric> {
        // As Ceilometer's publisher: a cumulative meter no rule claims is
        // filed under a `-rate` policy, so `rate:mean` answers for it.
        let default = &self.config.telemetry.default_archive_policy;
        let policy = match store::policies::rule_policy(&self.db, name).await? {
            Some(p) => p,
            None if meter_type == Some("cumulative") => self
                .archive_policy(default)
                .map(|p| crate::archive::rate_policy_for(&p).to_owned())
                .unwrap_or_else(|| default.clone()),
            None => default.clone(),
        };
        let m = Metric {
            id: uuid::Uuid::new_v4().to_string(),
            name: Some(name.to_owned()),
            resource_id: Some(resource.id.clone()),
            archive_policy_name: policy,
            unit: unit.map(str::to_owned),
            meter_type: meter_type.map(str::to_owned),
            created_by_project_id: resource.created_by_project_id.clone(),
            created_by_user_id: resource.created_by_user_id.clone(),
        };
        store::metrics::insert(conn, &self.db, &m).await?;
        Ok(m)
    }

    /// Gnocchi's measures of one metric (`POST …/measures`).
    pub async fn add_measures(&self, metric: &Metric, points: &[(i64, f64)]) -> Result<()> {
        let policy = self
            .archive_policy(&metric.archive_policy_name)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "archive policy {} missing",
                    metric.archive_policy_name
                ))
            })?;
        let mut writer = self.writer.lock().await;
        let mut tx = begin_write(&mut writer, &self.db).await?;
        measures::add(&mut tx, &self.db, &metric.id, &policy, points).await?;
        tx.commit().await.db()?;
        Ok(())
    }

    /// Drop raw samples past retention and rollups past their timespan.
    pub async fn expire(&self) -> Result<()> {
        let days = self.config.telemetry.sample_retention_days as i64;
        let before = store::now_us() - days * 86_400_000_000;
        store::samples::expire(&self.db, before).await?;
        for (m, _) in store::metrics::list_with_owner(&self.db, None).await? {
            if let Some(p) = self.archive_policy(&m.archive_policy_name) {
                measures::trim(&self.db, &m.id, &p).await?;
            }
        }
        Ok(())
    }
}

/// The writing connection's page cache on SQLite, in KiB. A batch
/// appends to each raw-sample index and to every metric's rollups at
/// their ends, so the pages it touches are few; a cache that holds them
/// spares rereading them from the OS each batch (the default 2 MiB did
/// when sample ids were random keys). 16 MiB: the same CPU time per
/// sample in `bench/telemetry.sh` as 64 MiB, half the resident memory
/// (ARCHITECTURE.md, Telemetry).
pub const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// A write transaction on the writer's connection (SQLite) or a pooled
/// one. SQLite's begins `IMMEDIATE`: holding the write lock from the
/// start, a write elsewhere in between (the hourly expiry's, an API's)
/// makes it wait its turn, where a transaction that read first and then
/// wrote would fail at once on the other's newer snapshot
/// (`SQLITE_BUSY_SNAPSHOT`, which no busy timeout retries).
async fn begin_write<'c>(
    writer: &'c mut Option<AnyConnection>,
    db: &Db,
) -> Result<sqlx::Transaction<'c, sqlx::Any>> {
    match writer.as_mut() {
        Some(conn) => conn.begin_with("BEGIN IMMEDIATE").await.db(),
        None => db.pool.begin().await.db(),
    }
}

/// On SQLite, a connection of the writer's own, taken out of the pool so
/// that its page cache ([`WRITER_CACHE_KIB`]) is the only large one: set
/// on pooled connections, any of them could keep one after a write, and
/// the readers would hold four. Other engines write through the pool.
async fn writer_connection(db: &Db) -> Result<Option<AnyConnection>> {
    if db.backend != ferrostack_db::Backend::Sqlite {
        return Ok(None);
    }
    let mut conn = db.pool.acquire().await.db()?.detach();
    sqlx::query(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}"))
        .execute(&mut conn)
        .await
        .db()?;
    Ok(Some(conn))
}

/// The `{"project_id": …}` target of a JSON document.
pub fn target(project_id: Option<&str>) -> Value {
    json!({"project_id": project_id})
}
