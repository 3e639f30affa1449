//! rescue and unrescue with Nova's checks. No driver here can boot a
//! guest from a rescue image with its own disk attached (the `Driver`
//! contract has no rescue), so once the checks pass the answer is Nova's
//! for such a driver: 501 "The requested functionality is not
//! supported." — the server left as it was. A volume-backed server is
//! refused before that as Nova refuses it: before 2.87 always, from 2.87
//! because no host reports the `COMPUTE_RESCUE_BFV` capability.

use super::conflict_state;
use crate::service::ComputeService;
use crate::states::VmState;
use crate::store::instances::Instance;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};

/// `rescue`'s arguments; `volume_backed_allowed` is the version's (2.87).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RescueArgs {
    pub admin_pass: Option<String>,
    pub image_ref: Option<String>,
    pub volume_backed_allowed: bool,
}

const NOT_SUPPORTED: &str = "The requested functionality is not supported.";

impl ComputeService {
    pub(super) fn rescue(&self, ctx: &AuthContext, i: &Instance, args: &RescueArgs) -> Result<()> {
        self.check_lock(ctx, i)?;
        let allowed = [VmState::Active, VmState::Stopped, VmState::Error];
        if i.task_state.is_some() || !allowed.contains(&i.vm_state) {
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
        Err(Error::NotImplemented(NOT_SUPPORTED.into()))
    }

    /// Nothing is ever rescued here, so this meets Nova's state check.
    pub(super) fn unrescue(&self, ctx: &AuthContext, i: &Instance) -> Result<()> {
        self.check_lock(ctx, i)?;
        if i.vm_state != VmState::Rescued {
            return Err(conflict_state("unrescue", i));
        }
        Err(Error::NotImplemented(NOT_SUPPORTED.into()))
    }
}
