//! `evacuate`: rebuild a server of a failed compute host on another one.
//! Nova accepts it only once the source host's service is down; the
//! `evacuate_server` saga (started in `migrate.rs`) rebuilds it where the
//! scheduler chooses. With no other host to take the guest, Nova's
//! conductor meets NoValidHost: the migration record ends in `error` and
//! the server in ERROR with the fault.

use super::{conflict_state, random_password, ActionResult};
use crate::service::ComputeService;
use crate::states::VmState;
use crate::store::{self, instances::Instance};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::json;
use std::sync::Arc;

/// What an evacuate asks for (the API layer checked the fields its
/// microversion allows).
#[derive(Clone, Debug, PartialEq)]
pub struct EvacuateArgs {
    /// The destination; the scheduler chooses when absent.
    pub host: Option<String>,
    /// Whether the disks are on shared storage: given (and required)
    /// before 2.14, absent from 2.14.
    pub on_shared_storage: Option<bool>,
    pub admin_pass: Option<String>,
    /// From 2.29: place on `host` without the scheduler's check (here the
    /// scheduler's filters still run on the host asked for).
    pub force: Option<bool>,
    /// From 2.95 the server is stopped at its destination (the API layer
    /// sets it by the request's version).
    pub stop_at_destination: bool,
}

const NO_VALID_HOST: &str = "No valid host was found. No valid host found for evacuate";

impl ComputeService {
    pub(super) async fn evacuate(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        args: EvacuateArgs,
    ) -> Result<ActionResult> {
        let shared = args.on_shared_storage.unwrap_or(false);
        if shared && args.admin_pass.is_some() {
            return Err(Error::BadRequest(
                "admin password can't be changed on existing disk".into(),
            ));
        }
        if let Some(want) = &args.host {
            let nodes = store::hosts::list_nodes(&self.db).await?;
            if !nodes.iter().any(|n| &n.host == want) {
                return Err(Error::NotFound(format!(
                    "Compute host {want} could not be found."
                )));
            }
            if i.host.as_deref() == Some(want.as_str()) {
                return Err(Error::BadRequest(
                    "The target host can't be the same one.".into(),
                ));
            }
        }
        let allowed = [VmState::Active, VmState::Stopped, VmState::Error];
        if i.task_state.is_some() || !allowed.contains(&i.vm_state) {
            return Err(conflict_state("evacuate", i));
        }
        let source = i.host.clone().unwrap_or_default();
        let service = store::hosts::get_service(&self.db, &source, "nova-compute").await?;
        if service.as_ref().is_some_and(|s| self.is_up(s)) {
            return Err(Error::BadRequest(format!(
                "Compute service of {source} is still in use."
            )));
        }
        // The password a rebuild on another host sets (Nova answers it
        // before 2.14; the API layer drops it from 2.14).
        let password = match args.admin_pass.clone() {
            Some(p) => Some(p),
            None if !shared && self.config.compute.enable_instance_password => {
                Some(random_password())
            }
            None => None,
        };
        let answer = ActionResult::Json(
            200,
            match &password {
                Some(p) => json!({ "adminPass": p }),
                None => json!({}),
            },
        );
        if self.start_evacuation(ctx, i, &args, password).await? {
            return Ok(answer);
        }
        let action_id = self.record_action(ctx, i, "evacuate").await?;
        store::migrations::add_migration(
            &self.db,
            &store::migrations::MigrationRow {
                instance_uuid: i.id.clone(),
                source_compute: i.host.clone(),
                source_node: i.node.clone().or_else(|| i.host.clone()),
                dest_host: args.host.clone(),
                old_flavor_id: i.flavor.id.clone(),
                new_flavor_id: i.flavor.id.clone(),
                status: "error".into(),
                migration_type: "evacuation".into(),
                user_id: Some(ctx.user_id.clone()),
                project_id: ctx.project_id.clone(),
                ..Default::default()
            },
        )
        .await?;
        let started = store::now();
        store::instances::update(&self.db, &i.id, |x| {
            x.vm_state = VmState::Error;
            x.task_state = None;
            x.fault = Some(store::instances::Fault {
                code: 400,
                message: NO_VALID_HOST.into(),
                created: store::now(),
            });
            Ok(())
        })
        .await?;
        store::instances::action_event(
            &self.db,
            &action_id,
            "conductor_rebuild_instance",
            &started,
            Err(NO_VALID_HOST.into()),
        )
        .await?;
        Ok(answer)
    }
}
