//! The control plane's side of the agents' messages: heartbeats (service
//! rows and compute nodes) and power-state reports, from which the
//! records are corrected as Nova's `_sync_power_states` does.

use crate::agent::driver::power;
use crate::service::{ComputeService, CONDUCTOR_TOPIC};
use crate::store::{self, hosts::ComputeNode};
use ferrostack_bus::RpcMessage;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;

/// Answer the agents on the conductor topic.
pub async fn serve(svc: Arc<ComputeService>) -> std::result::Result<(), ferrostack_bus::BusError> {
    let mut rx = svc.bus.serve(CONDUCTOR_TOPIC).await?;
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let svc = svc.clone();
            tokio::spawn(async move {
                let RpcMessage { method, args } = inc.message.clone();
                let result = match method.as_str() {
                    "report_state" => report_state(&svc, &args).await,
                    "sync_power_states" => sync_power_states(&svc, &args).await,
                    other => Err(Error::BadRequest(format!("unknown method {other}"))),
                };
                inc.respond(result.map(|_| Value::Null).map_err(|e| e.to_string()));
            });
        }
    });
    Ok(())
}

async fn report_state(svc: &ComputeService, a: &Value) -> Result<()> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let host = s(&a["host"]);
    if host.is_empty() {
        return Err(Error::BadRequest("report_state without a host".into()));
    }
    store::hosts::heartbeat(
        &svc.db,
        &host,
        &s(&a["binary"]),
        &s(&a["topic"]),
        &s(&a["zone"]),
    )
    .await?;
    let n = &a["node"];
    if n.is_object() {
        store::hosts::report_node(
            &svc.db,
            &ComputeNode {
                host: host.clone(),
                hypervisor_hostname: s(&n["hypervisor_hostname"]),
                hypervisor_type: s(&n["hypervisor_type"]),
                hypervisor_version: n["hypervisor_version"].as_i64().unwrap_or(0),
                host_ip: s(&n["host_ip"]),
                cpu_info: s(&n["cpu_info"]),
                vcpus: n["vcpus"].as_i64().unwrap_or(0),
                memory_mb: n["memory_mb"].as_i64().unwrap_or(0),
                local_gb: n["local_gb"].as_i64().unwrap_or(0),
                running_vms: n["running_vms"].as_i64().unwrap_or(0),
                ..Default::default()
            },
        )
        .await?;
    }
    Ok(())
}

/// Correct the records of a host's instances from what its driver reports.
/// Instances with an operation in progress are left alone; a guest that is
/// missing reads as NOSTATE; an ACTIVE server whose guest shut down becomes
/// SHUTOFF; a SHUTOFF server whose guest runs is powered off again.
pub async fn sync_power_states(svc: &ComputeService, a: &Value) -> Result<()> {
    let host = a["host"].as_str().unwrap_or_default();
    let states = a["states"].as_object().cloned().unwrap_or_default();
    for i in store::instances::on_host(&svc.db, host).await? {
        if i.task_state.is_some() || i.vm_state == "building" {
            continue;
        }
        let actual = states
            .get(&i.id)
            .and_then(Value::as_i64)
            .unwrap_or(power::NOSTATE);
        if actual == i.power_state {
            continue;
        }
        let stop_guest = i.vm_state == "stopped" && actual == power::RUNNING;
        store::instances::update(&svc.db, &i.id, |x| {
            if x.task_state.is_some() {
                return Ok(());
            }
            x.power_state = actual;
            if x.vm_state == "active" && (actual == power::SHUTDOWN || actual == power::CRASHED) {
                x.vm_state = "stopped".into();
            }
            Ok(())
        })
        .await?;
        tracing::info!(instance = %i.id, db = i.power_state, hypervisor = actual, "power state corrected");
        if stop_guest {
            let _ = svc
                .agent_call(host, "power_off", json!({"instance_id": i.id}))
                .await;
            store::instances::update(&svc.db, &i.id, |x| {
                x.power_state = power::SHUTDOWN;
                Ok(())
            })
            .await?;
        }
    }
    Ok(())
}
