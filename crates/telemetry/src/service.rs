//! The service layer: recording readings (raw sample, resource revision,
//! metric, rollups — one transaction per batch, with the notification's
//! message id so a redelivery is a no-op), and the policy checks every
//! API operation goes through.

use crate::archive::ArchivePolicy;
pub use crate::meters::Batch;
use crate::record::Recorder;
use crate::store::sqlite::{SqliteFile, Tx};
use crate::store::{self, measures, metrics::Metric};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};
use ferrostack_db::{Db, DbResultExt};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct TelemetryService {
    pub db: Db,
    pub config: Config,
    pub policy: Policy,
    /// Archive policies by name, read once and refreshed on change.
    policies: Mutex<HashMap<String, ArchivePolicy>>,
    /// One writer at a time in this process: rollup rows are read-modify-
    /// written, and a single writer keeps SQLite free of busy retries.
    writer: tokio::sync::Mutex<()>,
    /// On SQLite with a file: its typed connections, the writer's and the
    /// summed reads' (`store::sqlite`).
    pub(crate) sqlite: Option<Arc<SqliteFile>>,
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
        let sqlite = SqliteFile::of(&db).await?.map(Arc::new);
        let svc = TelemetryService {
            db,
            config,
            policy,
            policies: Mutex::new(HashMap::new()),
            writer: tokio::sync::Mutex::new(()),
            sqlite,
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
        let recorder = self.recorder();
        self.write(move |tx| Box::pin(async move { recorder.record(tx, batches).await }))
            .await
    }

    /// What recording needs of the service, owned (see [`Self::write`]).
    fn recorder(&self) -> Recorder {
        Recorder {
            db: self.db.clone(),
            default_policy: self.config.telemetry.default_archive_policy.clone(),
            policies: self.policies.lock().unwrap().clone(),
        }
    }

    /// Run `work` in a write transaction, one writer at a time in this
    /// process (rollup rows are read-modify-written): on SQLite with a
    /// file, the writer's own connection on a blocking thread (its
    /// statements are blocking calls); elsewhere a pooled connection.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a, 'b> FnOnce(&'a mut Tx<'b>) -> BoxFuture<'a, Result<T>> + Send + 'static,
    {
        let _turn = self.writer.lock().await;
        let Some(sqlite) = self.sqlite.clone() else {
            let mut tx = self.db.pool.begin().await.db()?;
            let out = work(&mut Tx::Any(&mut tx)).await?;
            tx.commit().await.db()?;
            return Ok(out);
        };
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            sqlite.write(|conn| handle.block_on(work(&mut Tx::Sqlite(conn))))
        })
        .await
        .map_err(|e| Error::Internal(format!("telemetry writer: {e}")))?
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
        let (db, id, points) = (self.db.clone(), metric.id.clone(), points.to_vec());
        self.write(move |tx| {
            Box::pin(async move {
                measures::add(tx, &db, &id, &policy, &points).await?;
                Ok(())
            })
        })
        .await
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

/// The `{"project_id": …}` target of a JSON document.
pub fn target(project_id: Option<&str>) -> Value {
    json!({"project_id": project_id})
}
