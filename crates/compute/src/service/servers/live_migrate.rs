//! Live migration: `os-migrateLive`'s destination and pre-checks (Nova's
//! conductor `LiveMigrationTask`: the scheduler's choice or the host
//! asked for, local disks only copied by a block migration), its records
//! (task `migrating`, the `live-migration` instance action and migration)
//! and the `live_migrate_server` saga's start; and a server's migrations
//! under way (2.22–2.24, 2.65): list, show, force-complete, abort.

use super::actions::LiveMigrateFields;
use super::migrate::MoveRequest;
use crate::guest::instance_spec;
use crate::saga::{self, live_migrate_server::LiveMigrateParams};
use crate::service::ComputeService;
use crate::states::{TaskState, VmState};
use crate::store::{self, instances::Instance, migrations::MigrationRow};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use std::sync::Arc;

/// The statuses of a live migration under way.
pub const IN_PROGRESS: &[&str] = &["queued", "preparing", "running", "post-migrating"];

/// Why a live migration cannot start (Nova's `MigrationPreCheckError`,
/// `InvalidSharedStorage`, `NoValidHost`): a 400 before 2.34, from 2.34
/// an accepted request whose migration ends in `error`.
struct PreCheckFailed(String);

impl ComputeService {
    /// `os-migrateLive` after the checks every move makes (state, lock,
    /// the host asked for exists and is not the server's).
    pub(crate) async fn live_migrate(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        host: Option<&str>,
        fields: &LiveMigrateFields,
    ) -> Result<()> {
        match self.live_destination(i, host, fields).await? {
            Ok((dest, block_migration)) => {
                self.start_live_migration(ctx, i, &dest, block_migration)
                    .await
            }
            Err(PreCheckFailed(why)) if fields.background_checks => {
                self.live_migration_failed(ctx, i, host.map(str::to_owned), &why)
                    .await
            }
            Err(PreCheckFailed(why)) => Err(Error::BadRequest(why)),
        }
    }

    /// Where the guest goes and whether its disks are copied, or why it
    /// cannot go.
    async fn live_destination(
        &self,
        i: &Instance,
        host: Option<&str>,
        fields: &LiveMigrateFields,
    ) -> Result<std::result::Result<(String, bool), PreCheckFailed>> {
        let spec = instance_spec(i);
        let local_disks = spec.boot_volume().is_none() || spec.ephemeral_gb > 0 || spec.swap_mb > 0;
        let block_migration = match fields
            .block_migration
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            Some(b) if b == "auto" => local_disks,
            Some(b) => matches!(b.as_str(), "true" | "1" | "yes" | "on" | "t" | "y"),
            None => local_disks,
        };
        let dest = match host.filter(|_| fields.skip_scheduler) {
            Some(forced) => {
                let up = store::hosts::get_service(&self.db, forced, "nova-compute")
                    .await?
                    .is_some_and(|s| self.is_up(&s) && !s.disabled);
                if !up {
                    return Ok(Err(PreCheckFailed(format!(
                        "Compute service of {forced} is unavailable at this time."
                    ))));
                }
                Some(forced.to_owned())
            }
            None => {
                let r = MoveRequest {
                    flavor: &i.flavor,
                    host,
                    same_host: false,
                };
                self.move_destination(i, &r).await?
            }
        };
        let no_host = || {
            PreCheckFailed("No valid host was found. No valid host found for live migrate".into())
        };
        let Some(dest) = dest else {
            return Ok(Err(no_host()));
        };
        if local_disks && !block_migration {
            // Nova's libvirt driver: no host shares instance storage here.
            // A host the scheduler chose is passed over for it: in the end
            // none is left.
            if host.is_none() {
                return Ok(Err(no_host()));
            }
            return Ok(Err(PreCheckFailed(format!(
                "{} is not on shared storage: Shared storage live-migration requires either \
                 shared storage or boot-from-volume with no local disks.",
                self.config.compute_instances_path().display()
            ))));
        }
        Ok(Ok((dest, block_migration)))
    }

    /// Record the live migration (task `migrating`, the instance action,
    /// the migration `queued`) and start its saga.
    async fn start_live_migration(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        dest: &str,
        block_migration: bool,
    ) -> Result<()> {
        let was = self
            .begin_task(
                i,
                "os-migrateLive",
                &[VmState::Active, VmState::Paused],
                TaskState::Migrating,
            )
            .await?;
        let action_id = self.record_action(ctx, i, "live-migration").await?;
        let source = i.host.clone().unwrap_or_default();
        let dest_ip = store::hosts::get_node(&self.db, dest)
            .await?
            .map(|n| n.host_ip)
            .filter(|ip| !ip.is_empty());
        let migration_id = store::migrations::add_migration(
            &self.db,
            &MigrationRow {
                instance_uuid: i.id.clone(),
                source_compute: Some(source.clone()),
                source_node: i.node.clone().or_else(|| Some(source.clone())),
                dest_compute: Some(dest.to_owned()),
                dest_node: Some(dest.to_owned()),
                dest_host: dest_ip,
                old_flavor_id: i.flavor.id.clone(),
                new_flavor_id: i.flavor.id.clone(),
                status: "queued".into(),
                migration_type: "live-migration".into(),
                user_id: Some(ctx.user_id.clone()),
                project_id: ctx.project_id.clone(),
                ..Default::default()
            },
        )
        .await?;
        let started = store::now();
        store::instances::action_event(
            &self.db,
            &action_id,
            "conductor_live_migrate_instance",
            &started,
            Ok(()),
        )
        .await?;
        let params = LiveMigrateParams {
            action_id,
            migration_id,
            source,
            dest: dest.to_owned(),
            block_migration,
            paused: was.vm_state == VmState::Paused,
        };
        let params = serde_json::to_value(&params)
            .map_err(|e| Error::Internal(format!("saga parameters: {e}")))?;
        saga::start(self, saga::live_migrate_server::KIND, &i.id, params).await?;
        Ok(())
    }

    /// 2.34's answer to a live migration that cannot start: accepted, then
    /// recorded as Nova's conductor records it (an `error` migration, a
    /// failed `conductor_live_migrate_instance` event); the server is left
    /// running where it is.
    async fn live_migration_failed(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        host: Option<String>,
        why: &str,
    ) -> Result<()> {
        let action_id = self.record_action(ctx, i, "live-migration").await?;
        store::migrations::add_migration(
            &self.db,
            &MigrationRow {
                instance_uuid: i.id.clone(),
                source_compute: i.host.clone(),
                source_node: i.node.clone().or_else(|| i.host.clone()),
                dest_host: host,
                old_flavor_id: i.flavor.id.clone(),
                new_flavor_id: i.flavor.id.clone(),
                status: "error".into(),
                migration_type: "live-migration".into(),
                user_id: Some(ctx.user_id.clone()),
                project_id: ctx.project_id.clone(),
                ..Default::default()
            },
        )
        .await?;
        let started = store::now();
        store::instances::action_event(
            &self.db,
            &action_id,
            "conductor_live_migrate_instance",
            &started,
            Err(why.into()),
        )
        .await
    }

    /// The server's live migrations under way (2.23).
    pub async fn live_migrations_of(&self, i: &Instance) -> Result<Vec<MigrationRow>> {
        Ok(store::migrations::list_migrations(&self.db)
            .await?
            .into_iter()
            .filter(|m| m.instance_uuid == i.id && m.migration_type == "live-migration")
            .filter(|m| IN_PROGRESS.contains(&m.status.as_str()))
            .collect())
    }

    /// Live migration `id` of the server, when it is under way.
    pub async fn live_migration_of(&self, i: &Instance, id: &str) -> Result<MigrationRow> {
        let not_found = || {
            Error::NotFound(format!(
                "In-progress live migration {id} is not found for server {}.",
                i.id
            ))
        };
        let id: i64 = id.parse().map_err(|_| not_found())?;
        store::migrations::get_of_instance(&self.db, &i.id, id)
            .await?
            .filter(|m| m.migration_type == "live-migration")
            .filter(|m| IN_PROGRESS.contains(&m.status.as_str()))
            .ok_or_else(not_found)
    }

    /// Nova's order of checks for force-complete and abort: the server
    /// live-migrating (409), the migration its own (404), then its status
    /// (400).
    async fn migration_for(&self, i: &Instance, id: &str, action: &str) -> Result<MigrationRow> {
        if i.task_state != Some(TaskState::Migrating) {
            // Nova checks the task state (`check_instance_state`) first.
            let state = i
                .task_state
                .map_or_else(|| "None".to_owned(), |t| t.to_string());
            return Err(Error::Conflict(format!(
                "Cannot '{action}' instance {} while it is in task_state {state}",
                i.id
            )));
        }
        let not_found = || {
            Error::NotFound(format!(
                "Migration {id} for instance {} could not be found.",
                i.id
            ))
        };
        let mid: i64 = id.parse().map_err(|_| not_found())?;
        store::migrations::get_of_instance(&self.db, &i.id, mid)
            .await?
            .ok_or_else(not_found)
    }

    /// `force_complete` (2.22): the source pauses the guest, so the copy
    /// converges; the destination resumes it. Only while `running`.
    pub async fn force_complete_live_migration(&self, i: &Instance, id: &str) -> Result<()> {
        let m = self.migration_for(i, id, "force_complete").await?;
        if m.status != "running" || m.migration_type != "live-migration" {
            return Err(Error::BadRequest(format!(
                "Migration {} state of instance {} is {}. Cannot force_complete while the \
                 migration is in this state.",
                m.id, i.id, m.status
            )));
        }
        let source = m.source_compute.clone().unwrap_or_default();
        self.agent(
            &source,
            AgentRequest::ForceCompleteLiveMigration {
                instance_id: i.id.clone(),
            },
        )
        .await?;
        Ok(())
    }

    /// Abort (2.24): while `running`, from 2.65 also `queued` or
    /// `preparing`. The saga passes it on to the source and rolls back;
    /// the migration ends `cancelled`, the guest running where it was.
    pub async fn abort_live_migration(
        &self,
        i: &Instance,
        id: &str,
        queued_too: bool,
    ) -> Result<()> {
        let m = self.migration_for(i, id, "abort live migration").await?;
        let allowed: &[&str] = if queued_too {
            &["queued", "preparing", "running"]
        } else {
            &["running"]
        };
        let refused = || {
            Error::BadRequest(format!(
                "Migration {} state of instance {} is {}. Cannot abort live migration while \
                 the migration is in this state.",
                m.id, i.id, m.status
            ))
        };
        if m.migration_type != "live-migration" || !allowed.contains(&m.status.as_str()) {
            return Err(refused());
        }
        if !store::migrations::request_abort(&self.db, m.id, allowed).await? {
            return Err(refused());
        }
        Ok(())
    }
}
