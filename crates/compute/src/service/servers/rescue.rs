//! rescue and unrescue with Nova's checks (lock, state, volume-backed),
//! then a `rescue_server` / `unrescue_server` saga does the work on the
//! host: the guest boots from a disk made on the rescue image — the one
//! asked for in `rescue_image_ref`, else the server's own image — with
//! its own disk attached second. A volume-backed server is refused as
//! Nova refuses it: before 2.87 always, from 2.87 because no host reports
//! the `COMPUTE_RESCUE_BFV` capability.

use super::{conflict_state, random_password};
use crate::saga;
use crate::service::ComputeService;
use crate::states::{TaskState, VmState};
use crate::store::instances::Instance;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;

/// `rescue`'s arguments; `volume_backed_allowed` is the version's (2.87).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RescueArgs {
    pub admin_pass: Option<String>,
    pub image_ref: Option<String>,
    pub volume_backed_allowed: bool,
}

/// The states Nova rescues from.
const RESCUABLE: [VmState; 3] = [VmState::Active, VmState::Stopped, VmState::Error];

impl ComputeService {
    /// Start the rescue; the answer is Nova's body: the rescue password,
    /// unless `[compute] enable_instance_password` is off.
    pub(super) async fn rescue(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        args: &RescueArgs,
    ) -> Result<Value> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some() || !RESCUABLE.contains(&i.vm_state) || i.host.is_none() {
            return Err(conflict_state("rescue", i));
        }
        if i.image_ref.is_empty() {
            let reason = if args.volume_backed_allowed {
                "Host unable to rescue a volume-backed instance"
            } else {
                "Cannot rescue a volume-backed instance"
            };
            return Err(Error::BadRequest(format!(
                "Instance {} cannot be rescued: {reason}",
                i.id
            )));
        }
        let image_id = match &args.image_ref {
            Some(id) => self.rescue_image(ctx, id).await?,
            None => i.image_ref.clone(),
        };
        let password = args.admin_pass.clone().unwrap_or_else(random_password);
        self.begin_task(i, "rescue", &RESCUABLE, TaskState::Rescuing)
            .await?;
        let action_id = self.record_action(ctx, i, "rescue").await?;
        crate::usage_notifications::notify(self, "compute.instance.rescue.start", i).await;
        saga::start(
            self,
            saga::rescue_server::KIND,
            &i.id,
            json!({"action_id": action_id, "image_id": image_id, "was": i.vm_state}),
        )
        .await?;
        Ok(if self.config.compute.enable_instance_password {
            json!({ "adminPass": password })
        } else {
            json!({})
        })
    }

    /// The rescue image the caller asked for: one they can see, active,
    /// and not a snapshot of a volume-backed server (Nova's
    /// `UnsupportedRescueImage`, a 400, otherwise).
    async fn rescue_image(&self, ctx: &AuthContext, id: &str) -> Result<String> {
        let unsupported =
            || Error::BadRequest(format!("Requested rescue image '{id}' is not supported"));
        let image = match self.image_as(ctx, id).await {
            Ok(v) => v,
            Err(Error::BadRequest(_)) => return Err(unsupported()),
            Err(e) => return Err(e),
        };
        if image["status"] != "active" || image.get("block_device_mapping").is_some() {
            return Err(unsupported());
        }
        Ok(id.to_owned())
    }

    /// Start the unrescue: back to the server's own disk, ACTIVE.
    pub(super) async fn unrescue(self: &Arc<Self>, ctx: &AuthContext, i: &Instance) -> Result<()> {
        self.check_lock(ctx, i)?;
        if i.host.is_none() {
            return Err(conflict_state("unrescue", i));
        }
        self.begin_task(i, "unrescue", &[VmState::Rescued], TaskState::Unrescuing)
            .await?;
        let action_id = self.record_action(ctx, i, "unrescue").await?;
        crate::usage_notifications::notify(self, "compute.instance.unrescue.start", i).await;
        saga::start(
            self,
            saga::unrescue_server::KIND,
            &i.id,
            json!({ "action_id": action_id }),
        )
        .await?;
        Ok(())
    }
}
