//! The power actions — reboot, stop, start, pause, unpause, suspend,
//! resume — as a one-step saga: the agent does it (idempotently, so a
//! restart simply asks again), then the server takes its new state. A
//! failure clears the task state and records why; a failed reboot leaves
//! the server in ERROR, as Nova does.

use super::{Saga, SagaCtx, Step};
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, instances::Fault};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use ferrostack_hypervisor::RebootKind;
use serde::{Deserialize, Serialize};

pub const KIND: &str = "power_action";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "kind", rename_all = "snake_case")]
pub enum PowerAction {
    Reboot(RebootKind),
    Stop,
    Start,
    Pause,
    Unpause,
    Suspend,
    Resume,
}

impl PowerAction {
    /// The instance action's name (`openstack server event list`).
    pub fn name(self) -> &'static str {
        match self {
            PowerAction::Reboot(_) => "reboot",
            PowerAction::Stop => "stop",
            PowerAction::Start => "start",
            PowerAction::Pause => "pause",
            PowerAction::Unpause => "unpause",
            PowerAction::Suspend => "suspend",
            PowerAction::Resume => "resume",
        }
    }

    /// The states Nova allows the action in.
    pub fn allowed_states(self) -> &'static [VmState] {
        use VmState::*;
        match self {
            PowerAction::Reboot(RebootKind::Soft) => &[Active],
            PowerAction::Reboot(RebootKind::Hard) => &[Active, Stopped, Paused, Suspended, Error],
            PowerAction::Stop => &[Active, Error],
            PowerAction::Start => &[Stopped],
            PowerAction::Pause => &[Active],
            PowerAction::Unpause => &[Paused],
            PowerAction::Suspend => &[Active],
            PowerAction::Resume => &[Suspended],
        }
    }

    pub fn task_state(self) -> TaskState {
        match self {
            PowerAction::Reboot(RebootKind::Soft) => TaskState::Rebooting,
            PowerAction::Reboot(RebootKind::Hard) => TaskState::RebootingHard,
            PowerAction::Stop => TaskState::PoweringOff,
            PowerAction::Start => TaskState::PoweringOn,
            PowerAction::Pause => TaskState::Pausing,
            PowerAction::Unpause => TaskState::Unpausing,
            PowerAction::Suspend => TaskState::Suspending,
            PowerAction::Resume => TaskState::Resuming,
        }
    }

    fn request(self, instance_id: String) -> AgentRequest {
        match self {
            PowerAction::Reboot(kind) => AgentRequest::Reboot { instance_id, kind },
            PowerAction::Stop => AgentRequest::PowerOff { instance_id },
            PowerAction::Start => AgentRequest::PowerOn { instance_id },
            PowerAction::Pause => AgentRequest::Pause { instance_id },
            PowerAction::Unpause => AgentRequest::Unpause { instance_id },
            PowerAction::Suspend => AgentRequest::Suspend { instance_id },
            PowerAction::Resume => AgentRequest::Resume { instance_id },
        }
    }

    /// Where the server ends when the action succeeded.
    fn outcome(self) -> (VmState, PowerState) {
        match self {
            PowerAction::Stop => (VmState::Stopped, PowerState::Shutdown),
            PowerAction::Pause => (VmState::Paused, PowerState::Paused),
            PowerAction::Suspend => (VmState::Suspended, PowerState::Suspended),
            PowerAction::Reboot(_)
            | PowerAction::Start
            | PowerAction::Unpause
            | PowerAction::Resume => (VmState::Active, PowerState::Running),
        }
    }

    /// The instance action event Nova records.
    fn event(self) -> &'static str {
        match self {
            PowerAction::Reboot(_) => "compute_reboot_instance",
            PowerAction::Stop => "compute_stop_instance",
            PowerAction::Start => "compute_start_instance",
            PowerAction::Pause => "compute_pause_instance",
            PowerAction::Unpause => "compute_unpause_instance",
            PowerAction::Suspend => "compute_suspend_instance",
            PowerAction::Resume => "compute_resume_instance",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Params {
    action: PowerAction,
}

pub struct PowerActionSaga;

#[async_trait::async_trait]
impl Saga for PowerActionSaga {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![Box::new(OnHost)]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let action = ctx.params::<Params>()?.action;
        let (vm, power) = action.outcome();
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.task_state = None;
            x.vm_state = vm;
            x.power_state = power;
            Ok(())
        })
        .await?;
        ctx.record_event(action.event(), Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        let action = ctx.params::<Params>()?.action;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.task_state = None;
            if matches!(action, PowerAction::Reboot(_)) {
                x.vm_state = VmState::Error;
                x.fault = Some(Fault::of(error));
            }
            Ok(())
        })
        .await?;
        ctx.record_event(action.event(), Err(error)).await;
        Ok(())
    }
}

struct OnHost;

#[async_trait::async_trait]
impl Step for OnHost {
    fn name(&self) -> &'static str {
        "on_host"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let action = ctx.params::<Params>()?.action;
        ctx.agent(action.request(ctx.instance_id.clone())).await
    }

    /// The guest's state is whatever the host made of it; the power-state
    /// sync reconciles the record.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_serialize_for_the_saga_record() {
        let v = serde_json::to_value(PowerAction::Reboot(RebootKind::Hard)).unwrap();
        assert_eq!(v, serde_json::json!({"action": "reboot", "kind": "HARD"}));
        let back: PowerAction = serde_json::from_value(v).unwrap();
        assert_eq!(back, PowerAction::Reboot(RebootKind::Hard));
        let stop = serde_json::to_value(PowerAction::Stop).unwrap();
        assert_eq!(stop, serde_json::json!({"action": "stop"}));
    }
}
