//! unrescue: the rescued guest is stopped, its rescue disk removed and it
//! is started from its own disk again; the server is then ACTIVE. The one
//! step is idempotent on the host, so it has nothing to undo: a failure
//! leaves the server RESCUED with the reason as its fault (Nova reverts
//! the task state and records the fault), and unrescue may be asked again.

use super::{Saga, SagaCtx, Step};
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, instances::Fault};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};

pub const KIND: &str = "unrescue_server";

const EVENT: &str = "compute_unrescue_instance";

pub struct UnrescueServer;

#[async_trait::async_trait]
impl Saga for UnrescueServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![Box::new(UnrescueGuest)]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.task_state = None;
            x.vm_state = VmState::Active;
            x.power_state = PowerState::Running;
            Ok(())
        })
        .await?;
        ctx.record_event(EVENT, Ok(())).await;
        crate::usage_notifications::notify(&ctx.svc, "compute.instance.unrescue.end", &i).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.task_state = None;
            x.fault = Some(Fault::of(error));
            Ok(())
        })
        .await?;
        ctx.record_event(EVENT, Err(error)).await;
        Ok(())
    }
}

struct UnrescueGuest;

#[async_trait::async_trait]
impl Step for UnrescueGuest {
    fn name(&self) -> &'static str {
        "unrescue_guest"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        ctx.agent(AgentRequest::Unrescue {
            instance_id: ctx.instance_id.clone(),
        })
        .await
    }

    /// The guest is on whichever disk the host got it to; another
    /// unrescue finishes the job.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
