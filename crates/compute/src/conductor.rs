//! The control plane's side of the agents' messages: heartbeats (service
//! rows and compute nodes) and power-state reports, from which the
//! records are corrected as Nova's `_sync_power_states` does.

use crate::service::{ComputeService, CONDUCTOR_TOPIC};
use crate::states::{PowerState, VmState};
use crate::store::{self, hosts::ComputeNode};
use ferrostack_compute_agent::protocol::{
    open_envelope, AgentRequest, ConductorRequest, ServiceReport,
};
use ferrostack_core::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Answer the agents on the conductor topic.
pub async fn serve(svc: Arc<ComputeService>) -> std::result::Result<(), ferrostack_bus::BusError> {
    let mut rx = svc.bus.serve(CONDUCTOR_TOPIC).await?;
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let svc = svc.clone();
            tokio::spawn(async move {
                let result = match open_envelope::<ConductorRequest>(&inc.message) {
                    Ok(ConductorRequest::ReportState(r)) => report_state(&svc, &r).await,
                    Ok(ConductorRequest::SyncPowerStates { host, states }) => {
                        sync_power_states(&svc, &host, &states).await
                    }
                    Err(e) => Err(Error::BadRequest(e)),
                };
                inc.respond(result.map(|_| Value::Null).map_err(|e| e.to_string()));
            });
        }
    });
    Ok(())
}

async fn report_state(svc: &ComputeService, r: &ServiceReport) -> Result<()> {
    if r.host.is_empty() {
        return Err(Error::BadRequest("report_state without a host".into()));
    }
    store::hosts::heartbeat(&svc.db, &r.host, &r.binary, &r.topic, &r.zone).await?;
    let h = &r.resources;
    store::hosts::report_node(
        &svc.db,
        &ComputeNode {
            host: r.host.clone(),
            hypervisor_hostname: h.hypervisor_hostname.clone(),
            hypervisor_type: h.hypervisor_type.clone(),
            hypervisor_version: h.hypervisor_version,
            host_ip: r.host_ip.clone(),
            cpu_info: h.cpu_info.clone(),
            vcpus: h.vcpus,
            memory_mb: h.memory_mb,
            local_gb: h.local_gb,
            running_vms: r.running_vms,
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Correct the records of a host's instances from what its driver reports.
/// Instances with an operation in progress are left alone; a guest that is
/// missing reads as NOSTATE; an ACTIVE server whose guest shut down (or
/// whose QEMU died: the driver reports SHUTDOWN) becomes SHUTOFF; a SHUTOFF server whose guest runs is
/// powered off again.
pub async fn sync_power_states(
    svc: &ComputeService,
    host: &str,
    states: &BTreeMap<String, PowerState>,
) -> Result<()> {
    destroy_evacuated(svc, host, states).await?;
    for i in store::instances::on_host(&svc.db, host).await? {
        if i.task_state.is_some() || i.vm_state == VmState::Building {
            continue;
        }
        let actual = states.get(&i.id).copied().unwrap_or(PowerState::NoState);
        if actual == i.power_state {
            continue;
        }
        let stop_guest = i.vm_state == VmState::Stopped && actual == PowerState::Running;
        store::instances::update(&svc.db, &i.id, |x| {
            if x.task_state.is_some() {
                return Ok(());
            }
            x.power_state = actual;
            // A missing guest (NOSTATE) is only logged, as Nova does: the
            // hypervisor may be restarting.
            let gone = matches!(actual, PowerState::Shutdown | PowerState::Crashed);
            if x.vm_state == VmState::Active && gone {
                x.vm_state = VmState::Stopped;
            }
            Ok(())
        })
        .await?;
        tracing::info!(instance = %i.id, db = ?i.power_state, hypervisor = ?actual, "power state corrected");
        if stop_guest {
            let _ = svc
                .agent(
                    host,
                    AgentRequest::PowerOff {
                        instance_id: i.id.clone(),
                    },
                )
                .await;
            store::instances::update(&svc.db, &i.id, |x| {
                x.power_state = PowerState::Shutdown;
                Ok(())
            })
            .await?;
        }
    }
    Ok(())
}

/// A host that comes back after its servers were evacuated still has
/// their old guests: each one it reports whose evacuation from it is
/// `done` is destroyed there and the migration becomes `completed`, as
/// Nova's compute does at start (`_destroy_evacuated_instances`).
pub async fn destroy_evacuated(
    svc: &ComputeService,
    host: &str,
    states: &BTreeMap<String, PowerState>,
) -> Result<()> {
    for m in store::migrations::evacuated_from(&svc.db, host).await? {
        if !states.contains_key(&m.instance_uuid) {
            continue;
        }
        let moved = store::instances::get(&svc.db, &m.instance_uuid)
            .await?
            .is_none_or(|i| i.host.as_deref() != Some(host));
        if !moved {
            continue;
        }
        tracing::info!(instance = %m.instance_uuid, host, "destroying the guest evacuated from this host");
        svc.agent(
            host,
            AgentRequest::Destroy {
                instance_id: m.instance_uuid.clone(),
            },
        )
        .await?;
        store::migrations::set_status_of(&svc.db, m.id, "completed").await?;
    }
    Ok(())
}
