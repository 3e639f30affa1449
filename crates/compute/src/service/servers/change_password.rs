//! `changePassword`: Nova sets the password through the guest's agent.
//! As nova-libvirt does, a server whose image does not declare the QEMU
//! guest agent (`hw_qemu_guest_agent=yes`) answers 409; no driver here
//! talks to a guest agent yet, so one that declares it answers 501, as a
//! driver without `set_admin_password`. Either way the attempt is an
//! instance action with its failed event.

use super::conflict_state;
use crate::service::ComputeService;
use crate::states::VmState;
use crate::store::{self, instances::Instance};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};

/// What the guest answers to a password change.
fn refusal(i: &Instance) -> Error {
    let agent = i.image_properties["hw_qemu_guest_agent"]
        .as_str()
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1"));
    if agent {
        Error::NotImplemented("Unable to set password on instance".into())
    } else {
        Error::Conflict("QEMU guest agent is not enabled".into())
    }
}

impl ComputeService {
    pub(super) async fn change_password(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        _password: &str,
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some() || i.vm_state != VmState::Active {
            return Err(conflict_state("changePassword", i));
        }
        let action_id = self.record_action(ctx, i, "changePassword").await?;
        let started = store::now();
        let err = refusal(i);
        store::instances::action_event(
            &self.db,
            &action_id,
            "compute_set_admin_password",
            &started,
            Err(err.message().to_owned()),
        )
        .await?;
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_guest_agent_decides_409_or_501() {
        let mut i = Instance::default();
        assert!(
            matches!(refusal(&i), Error::Conflict(m) if m == "QEMU guest agent is not enabled")
        );
        i.image_properties = json!({"hw_qemu_guest_agent": "yes"});
        assert!(matches!(refusal(&i), Error::NotImplemented(_)));
        i.image_properties = json!({"hw_qemu_guest_agent": "no"});
        assert!(matches!(refusal(&i), Error::Conflict(_)));
    }
}
