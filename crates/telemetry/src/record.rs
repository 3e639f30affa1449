//! Recording readings in one transaction: the notifications' message ids,
//! derived samples, raw samples, resources and their revisions, metrics
//! and rollups. [`Recorder`] owns what it needs of the service, so the
//! same code runs on the SQLite writer's blocking thread
//! (`store::sqlite`) and on a pooled connection of the other engines.

use crate::archive::ArchivePolicy;
use crate::meters::{Batch, Reading};
use crate::store::sqlite::Tx;
use crate::store::{self, measures, metrics::Metric, resources::Resource};
use ferrostack_core::Result;
use ferrostack_db::Db;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// The project and user of an instance, for the pollster's samples.
type Owner = (Option<String>, Option<String>);

/// What recording needs of the service, owned.
pub struct Recorder {
    pub db: Db,
    /// `[telemetry] default_archive_policy`.
    pub default_policy: String,
    /// Archive policies by name.
    pub policies: HashMap<String, ArchivePolicy>,
}

impl Recorder {
    /// Record batches in `tx`; returns the samples stored (a batch whose
    /// message id was already processed adds none).
    pub async fn record(&self, tx: &mut Tx<'_>, batches: Vec<Batch>) -> Result<usize> {
        let now = store::now_us();
        let mut previous = crate::derive::Previous::default();
        let mut owners = HashMap::new();
        let mut all: Vec<Reading> = Vec::new();
        for mut batch in batches {
            if let Some(id) = &batch.message_id {
                if !store::samples::mark_processed(tx, &self.db, id).await? {
                    continue;
                }
            }
            let derived =
                crate::derive::rates(tx, &self.db, &mut previous, &batch.readings).await?;
            batch.readings.extend(derived);
            for mut r in batch.readings {
                r.sample.recorded_at = now;
                self.fill_owner(tx, &mut owners, &mut r).await?;
                all.push(r);
            }
        }
        let refs: Vec<&store::samples::Sample> = all.iter().map(|r| &r.sample).collect();
        let fresh = store::samples::insert_many(tx, &self.db, &refs).await?;
        let new: Vec<Reading> = all
            .into_iter()
            .zip(fresh)
            .filter_map(|(r, f)| f.then_some(r))
            .collect();
        let stored = new.len();
        self.file(tx, new).await?;
        Ok(stored)
    }

    /// File new readings: the batch's resources and their metrics read in
    /// one statement each, each resource's sample times written once, and
    /// every metric's points folded into its rollups together.
    async fn file(&self, tx: &mut Tx<'_>, readings: Vec<Reading>) -> Result<()> {
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
        let batch: Vec<measures::MetricPoints> = points
            .iter()
            .filter_map(|(metric, (policy, pts))| {
                Some(measures::MetricPoints {
                    metric,
                    policy: self.policies.get(policy.as_str())?,
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
        tx: &mut Tx<'_>,
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
            if let Some(found) = store::resources::get(tx, &self.db, &id).await? {
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
        tx: &mut Tx<'_>,
        current: Option<Resource>,
        r: &Reading,
    ) -> Result<Resource> {
        let s = &r.sample;
        let Some(old) = current else {
            let new = Resource {
                id: store::resources::resource_uuid(&s.resource_id),
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
            store::resources::insert(tx, &self.db, &new).await?;
            return Ok(new);
        };
        let mut attributes = old.attributes.clone();
        for (k, v) in &r.attributes {
            if !v.is_null() {
                attributes.insert(k.clone(), v.clone());
            }
        }
        // A resource keeps its owner: samples of other projects about it
        // (a download billed to the receiver) only fill a missing one.
        let project_id = old.project_id.clone().or(s.project_id.clone());
        let user_id = old.user_id.clone().or(s.user_id.clone());
        if attributes == old.attributes && project_id == old.project_id && user_id == old.user_id {
            return Ok(old);
        }
        let new = Resource {
            attributes,
            project_id,
            user_id,
            revision_start: s.recorded_at,
            ..old.clone()
        };
        store::resources::revise(tx, &self.db, &old, &new).await?;
        Ok(new)
    }

    /// A new metric `name` of a resource, with the rule-chosen archive
    /// policy.
    async fn create_metric(
        &self,
        tx: &mut Tx<'_>,
        resource: &Resource,
        name: &str,
        unit: Option<&str>,
        meter_type: Option<&str>,
    ) -> Result<Metric> {
        // As Ceilometer's publisher: a cumulative meter no rule claims is
        // filed under a `-rate` policy, so `rate:mean` answers for it.
        let default = &self.default_policy;
        let policy = match store::policies::rule_policy(&self.db, name).await? {
            Some(p) => p,
            None if meter_type == Some("cumulative") => self
                .policies
                .get(default)
                .map(|p| crate::archive::rate_policy_for(p).to_owned())
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
        store::metrics::insert(tx, &self.db, &m).await?;
        Ok(m)
    }
}
