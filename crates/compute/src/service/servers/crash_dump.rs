//! `trigger_crash_dump` (2.17): an NMI sent to the guest, which a guest
//! configured for it answers with a kernel crash dump. Nova's checks
//! (lock, state, a running guest), the `trigger_crash_dump` instance
//! action, then the host's agent `InjectNmi`; what the driver says is the
//! action's `compute_trigger_crash_dump` event, as Nova's compute manager
//! records it, and never changes the 202 (Nova casts the request).

use super::conflict_state;
use crate::service::ComputeService;
use crate::states::{PowerState, VmState};
use crate::store::{self, instances::Instance};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};

/// The states Nova sends a crash dump in.
const DUMPABLE: [VmState; 5] = [
    VmState::Active,
    VmState::Paused,
    VmState::Rescued,
    VmState::Resized,
    VmState::Error,
];

impl ComputeService {
    /// Nova's checks, then the NMI through the host's agent.
    pub(super) async fn trigger_crash_dump(&self, ctx: &AuthContext, i: &Instance) -> Result<()> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some() || !DUMPABLE.contains(&i.vm_state) {
            return Err(conflict_state("trigger_crash_dump", i));
        }
        // Nova's InstanceNotReady: only a running guest takes an NMI.
        let Some(host) = i
            .host
            .clone()
            .filter(|_| i.power_state == PowerState::Running)
        else {
            return Err(Error::Conflict(format!("Instance {} is not ready.", i.id)));
        };
        let action_id = self.record_action(ctx, i, "trigger_crash_dump").await?;
        let started = store::now();
        let sent = self
            .agent(
                &host,
                AgentRequest::InjectNmi {
                    instance_id: i.id.clone(),
                },
            )
            .await;
        if let Err(e) = &sent {
            tracing::warn!("trigger_crash_dump of {}: {}", i.id, e.message());
        }
        store::instances::action_event(
            &self.db,
            &action_id,
            "compute_trigger_crash_dump",
            &started,
            sent.map(|_| ()).map_err(|e| e.message().to_owned()),
        )
        .await
    }
}
