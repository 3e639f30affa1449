//! Server creation: BUILD → schedule and claim → allocate ports → cache the
//! image → spawn → wait for `network-vif-plugged` → ACTIVE. Any failure
//! undoes what was done (VM destroyed, ports deleted or unbound, claim
//! released) and leaves the server in ERROR with a fault; a server deleted
//! during its build is unwound the same way and ends DELETED.

use super::boot_volumes::{prepare_volumes, release_volumes};
use super::{Saga, SagaCtx, Step};
use crate::clients::UserToken;
use crate::guest::{deallocate_ports, instance_spec, vif_of, NetworkInfo};
use crate::scheduler;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::bdms::Bdm;
use crate::store::{self, hosts, instances::Instance, instances::Vif};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde_json::json;
use std::time::{Duration, Instant};

pub const KIND: &str = "create_server";

pub struct CreateServer;

#[async_trait::async_trait]
impl Saga for CreateServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(Schedule),
            Box::new(AllocatePorts),
            Box::new(PrepareVolumes),
            Box::new(CacheImage),
            Box::new(Spawn),
            Box::new(WaitVifPlugged),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
            if i.task_state != Some(TaskState::Deleting) {
                i.vm_state = VmState::Active;
                i.task_state = None;
                i.power_state = PowerState::Running;
                i.launched_at = Some(store::now());
            }
            Ok(())
        })
        .await?;
        ctx.record_event("compute__do_build_and_run_instance", Ok(()))
            .await;
        if i.task_state != Some(TaskState::Deleting) {
            crate::usage_notifications::notify(&ctx.svc, "compute.instance.create.end", &i).await;
        }
        if i.task_state == Some(TaskState::Deleting) {
            // Deleted while the last step ran: delete it now.
            super::start(
                &ctx.svc,
                super::delete_server::KIND,
                &ctx.instance_id,
                json!({}),
            )
            .await?;
        }
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        let mut deleted_in_build = false;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
            if i.task_state == Some(TaskState::Deleting) {
                deleted_in_build = true;
                i.vm_state = VmState::Deleted;
                i.deleted = true;
                i.terminated_at = Some(store::now());
            } else {
                i.vm_state = VmState::Error;
                i.fault = Some(store::instances::Fault {
                    code: fault_code(error),
                    message: error.message().to_owned(),
                    created: store::now(),
                });
            }
            i.task_state = None;
            i.power_state = PowerState::NoState;
            i.host = None;
            i.node = None;
            Ok(())
        })
        .await?;
        ctx.record_event("compute__do_build_and_run_instance", Err(error))
            .await;
        if deleted_in_build {
            if let Some(g) =
                store::server_groups::of_instance(&ctx.svc.db, &ctx.instance_id).await?
            {
                store::server_groups::set_member(&ctx.svc.db, &g.id, &ctx.instance_id, false)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Stop the build when the server was deleted meanwhile.
async fn still_wanted(ctx: &SagaCtx, task_state: TaskState) -> Result<store::instances::Instance> {
    let i = store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
        if i.task_state == Some(TaskState::Deleting) || i.deleted {
            return Err(Error::Conflict(format!(
                "Instance {} was deleted during its build.",
                i.id
            )));
        }
        i.task_state = Some(task_state);
        Ok(())
    })
    .await?;
    Ok(i)
}

struct Schedule;

/// The hosts of a server group's other members, each by its claim so that
/// a member placed a moment ago counts (its `host` is written later).
async fn group_members(
    ctx: &SagaCtx,
    group: &store::server_groups::ServerGroup,
    own: &str,
) -> Result<Vec<String>> {
    let mut hosts_of_members = Vec::new();
    for m in group.members.iter().filter(|m| m.as_str() != own) {
        let claimed = hosts::get_claim(&ctx.svc.db, m, "instance").await?;
        let host = match claimed {
            Some((host, _)) => Some(host),
            None => store::instances::get(&ctx.svc.db, m)
                .await?
                .filter(|x| !x.deleted)
                .and_then(|x| x.host),
        };
        hosts_of_members.extend(host);
    }
    Ok(hosts_of_members)
}

/// Picks a host for the server and claims it, under its group's policy.
/// Members of a group are placed one at a time (`group_placement`), as
/// Nova adds each chosen host to the group before the next instance.
async fn place(ctx: &SagaCtx, i: &Instance) -> Result<String> {
    let group = store::server_groups::of_instance(&ctx.svc.db, &i.id).await?;
    let _one_at_a_time = match &group {
        Some(_) => Some(ctx.svc.group_placement.lock().await),
        None => None,
    };
    let (policy, member_hosts, per_host) = match &group {
        Some(g) => (
            g.policy.as_str(),
            group_members(ctx, g, &i.id).await?,
            // Anti-affinity: a host is full at `max_server_per_host`
            // members (2.64's rule; one without it).
            g.max_server_per_host.unwrap_or(1).max(1) as usize,
        ),
        None => ("", Vec::new(), 1),
    };
    let full: Vec<String> = member_hosts
        .iter()
        .filter(|h| member_hosts.iter().filter(|x| x == h).count() >= per_host)
        .cloned()
        .collect();
    let (ignore, only): (&[String], Option<&[String]>) = match policy {
        "anti-affinity" | "soft-anti-affinity" => (&full, None),
        "affinity" | "soft-affinity" if !member_hosts.is_empty() => (&[], Some(&member_hosts)),
        _ => (&[], None),
    };
    let req = scheduler::Request {
        flavor: &i.flavor,
        availability_zone: i.requested_availability_zone.as_deref(),
        image_properties: &i.image_properties,
        ignore_hosts: ignore,
        only_hosts: only,
        host: i.requested_host.as_deref(),
        node: i.requested_node.as_deref(),
    };
    let placed = scheduler::select_and_claim(&ctx.svc, &i.id, "instance", &req).await;
    // The soft policies only prefer: with no host that honours them, any
    // host will do (Nova's soft (anti-)affinity weighers rank the members'
    // hosts last, or first, among all).
    let placed = match placed {
        Err(_) if policy.starts_with("soft-") => {
            let anywhere = scheduler::Request {
                ignore_hosts: &[],
                only_hosts: None,
                ..req
            };
            scheduler::select_and_claim(&ctx.svc, &i.id, "instance", &anywhere).await
        }
        placed => placed,
    };
    Ok(placed?.host)
}

#[async_trait::async_trait]
impl Step for Schedule {
    fn name(&self) -> &'static str {
        "schedule"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = still_wanted(ctx, TaskState::Scheduling).await?;
        let host = match hosts::get_claim(&ctx.svc.db, &i.id, "instance").await? {
            Some((host, _)) => host,
            None => place(ctx, &i).await?,
        };
        let zone = hosts::get_service(&ctx.svc.db, &host, scheduler::COMPUTE_BINARY)
            .await?
            .map(|s| s.zone)
            .unwrap_or_else(|| ctx.svc.config.compute.default_availability_zone.clone());
        store::instances::update(&ctx.svc.db, &i.id, |i| {
            i.host = Some(host.clone());
            i.node = Some(host.clone());
            i.availability_zone = zone.clone();
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        hosts::release(&ctx.svc.db, &ctx.instance_id, "instance").await?;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |i| {
            i.host = None;
            i.node = None;
            Ok(())
        })
        .await?;
        Ok(())
    }
}

struct AllocatePorts;

#[async_trait::async_trait]
impl Step for AllocatePorts {
    fn name(&self) -> &'static str {
        "allocate_ports"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = still_wanted(ctx, TaskState::Networking).await?;
        let net = &ctx.svc.network;
        let host = i.host.clone().unwrap_or_default();
        let owner = format!("compute:{}", i.availability_zone);
        // Ports made by an earlier, interrupted run of this step.
        let existing = net.list("ports", &[("device_id", i.id.as_str())]).await?;
        let requested = crate::guest::resolve_networks(&ctx.svc, &i).await?;
        let mut vifs = Vec::new();
        let mut sg_ids: Option<(Vec<String>, bool)> = None;
        for r in requested {
            if let Some(port_id) = &r.port_id {
                let port = net
                    .update_port(
                        port_id,
                        json!({"device_id": i.id, "device_owner": owner, "binding:host_id": host}),
                    )
                    .await?
                    .ok_or_else(|| {
                        Error::BadRequest(format!("Port {port_id} could not be found."))
                    })?;
                let net =
                    network_info(ctx, port["network_id"].as_str().unwrap_or_default()).await?;
                vifs.push(Vif {
                    tag: r.tag.clone(),
                    ..vif_of(&port, &net, false)
                });
                continue;
            }
            let network_id = r.network_id.clone().unwrap_or_default();
            let name = network_info(ctx, &network_id).await?;
            let reuse = existing.iter().find(|p| {
                p["network_id"] == network_id.as_str()
                    && !vifs.iter().any(|v: &Vif| p["id"] == v.port_id.as_str())
            });
            if let Some(p) = reuse {
                vifs.push(Vif {
                    tag: r.tag.clone(),
                    ..vif_of(p, &name, true)
                });
                continue;
            }
            if sg_ids.is_none() {
                sg_ids = Some(security_group_ids(ctx, &i).await?);
            }
            let (mut ids, default_missing) = sg_ids.clone().unwrap_or_default();
            let mut body = json!({
                "network_id": network_id, "device_id": i.id, "device_owner": owner,
                "binding:host_id": host, "project_id": i.project_id,
            });
            // Without the key Neutron applies (and creates) the project's default group.
            if !default_missing {
                body["security_groups"] = json!(ids);
            }
            if let Some(ip) = &r.fixed_ip {
                body["fixed_ips"] = json!([{ "ip_address": ip }]);
            }
            let mut port = net.create_port(body).await?;
            if default_missing && !ids.is_empty() {
                ids.extend(
                    port["security_groups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|g| g.as_str().map(str::to_owned)),
                );
                let id = port["id"].as_str().unwrap_or_default().to_owned();
                if let Some(p) = net
                    .update_port(&id, json!({ "security_groups": ids }))
                    .await?
                {
                    port = p;
                }
            }
            vifs.push(Vif {
                tag: r.tag.clone(),
                ..vif_of(&port, &name, true)
            });
        }
        store::instances::update(&ctx.svc.db, &i.id, |i| {
            i.network_info = vifs.clone();
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let i = store::instances::get(&ctx.svc.db, &ctx.instance_id)
            .await?
            .ok_or_else(|| Error::Internal("instance record vanished".into()))?;
        deallocate_ports(&ctx.svc, &i).await
    }
}

async fn network_info(ctx: &SagaCtx, id: &str) -> Result<NetworkInfo> {
    let n = ctx
        .svc
        .network
        .get("network", id)
        .await?
        .ok_or_else(|| Error::BadRequest(format!("Network {id} could not be found.")))?;
    Ok(NetworkInfo {
        name: n["name"].as_str().unwrap_or(id).to_owned(),
        mtu: n["mtu"].as_u64().and_then(|m| u32::try_from(m).ok()),
    })
}

/// Nova's fault codes: 500, except what the request itself got wrong.
fn fault_code(e: &Error) -> i64 {
    match e.status().as_u16() {
        400 | 404 | 409 => 400,
        _ => 500,
    }
}

/// The ids of the security groups named at boot, in the server's project.
/// The ids of the named groups, and whether `default` was named but does
/// not exist yet (Neutron makes it when a port of the project needs it).
async fn security_group_ids(
    ctx: &SagaCtx,
    i: &store::instances::Instance,
) -> Result<(Vec<String>, bool)> {
    let groups = ctx
        .svc
        .network
        .list("security-groups", &[("project_id", i.project_id.as_str())])
        .await?;
    let mut ids = Vec::new();
    let mut default_missing = false;
    for name in &i.security_groups {
        let found = groups
            .iter()
            .find(|g| g["name"] == name.as_str() || g["id"] == name.as_str());
        match found {
            Some(g) => ids.push(g["id"].as_str().unwrap_or_default().to_owned()),
            None if name == "default" => default_missing = true,
            None => {
                return Err(Error::BadRequest(format!(
                    "Security group {name} not found for project {}.",
                    i.project_id
                )))
            }
        }
    }
    Ok((ids, default_missing))
}

/// Boot from volume: the mappings' volumes made, waited for and
/// attached (their connection_info recorded for the spawn).
struct PrepareVolumes;

#[async_trait::async_trait]
impl Step for PrepareVolumes {
    fn name(&self) -> &'static str {
        "prepare_volumes"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let rows: Vec<Bdm> = ctx.param("block_devices")?;
        if rows.is_empty() {
            return Ok(());
        }
        still_wanted(ctx, TaskState::BlockDeviceMapping).await?;
        let caller: Option<UserToken> = ctx.param("user_token")?;
        let caller = caller.ok_or_else(|| {
            Error::Internal("The boot's token was not kept; its volumes cannot be made.".into())
        })?;
        prepare_volumes(ctx, &rows, &caller).await
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let caller: Option<UserToken> = ctx.param("user_token")?;
        release_volumes(ctx, caller.as_ref()).await
    }
}

struct CacheImage;

#[async_trait::async_trait]
impl Step for CacheImage {
    fn name(&self) -> &'static str {
        "cache_image"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = still_wanted(ctx, TaskState::BlockDeviceMapping).await?;
        if i.image_ref.is_empty() {
            // Booted from a volume: no image disk to make.
            return Ok(());
        }
        let host = i.host.clone().unwrap_or_default();
        ctx.svc
            .agent(
                &host,
                AgentRequest::CacheImage {
                    image_id: i.image_ref.clone(),
                },
            )
            .await?;
        Ok(())
    }

    /// The cache is shared by every instance of the image: nothing to undo.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct Spawn;

#[async_trait::async_trait]
impl Step for Spawn {
    fn name(&self) -> &'static str {
        "spawn"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = still_wanted(ctx, TaskState::Spawning).await?;
        let host = i.host.clone().unwrap_or_default();
        let config_drive = ctx.config_drive(&i).await?;
        ctx.svc
            .agent(
                &host,
                AgentRequest::Spawn {
                    instance: instance_spec(&i),
                    config_drive,
                },
            )
            .await?;
        Ok(())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let i = store::instances::get(&ctx.svc.db, &ctx.instance_id)
            .await?
            .ok_or_else(|| Error::Internal("instance record vanished".into()))?;
        if let Some(host) = &i.host {
            ctx.svc
                .agent(
                    host,
                    AgentRequest::Destroy {
                        instance_id: i.id.clone(),
                    },
                )
                .await?;
        }
        Ok(())
    }
}

struct WaitVifPlugged;

/// Whether `network-vif-plugged` arrived for every port (an error when
/// one says the plugging failed).
async fn plugged_by_events(ctx: &SagaCtx, i: &store::instances::Instance) -> Result<bool> {
    let events = store::instances::external_events(&ctx.svc.db, &i.id).await?;
    let mut all = true;
    for v in &i.network_info {
        let got = events
            .iter()
            .rev()
            .find(|(name, tag, _)| name == "network-vif-plugged" && tag == &v.port_id);
        match got {
            Some((_, _, status)) if status == "failed" => {
                return Err(Error::Internal(format!(
                    "Port {} failed to plug (network-vif-plugged failed).",
                    v.port_id
                )))
            }
            Some(_) => {}
            None => all = false,
        }
    }
    Ok(all)
}

/// Whether the networking API reports every port of the instance ACTIVE.
async fn ports_active(ctx: &SagaCtx, i: &store::instances::Instance) -> Result<bool> {
    for v in &i.network_info {
        match ctx.svc.network.get("port", &v.port_id).await? {
            Some(p) if p["status"] == "ACTIVE" => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

#[async_trait::async_trait]
impl Step for WaitVifPlugged {
    fn name(&self) -> &'static str {
        "wait_vif_plugged"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = still_wanted(ctx, TaskState::Spawning).await?;
        let cfg = &ctx.svc.config.compute;
        if cfg.vif_plugging_timeout == 0
            || (cfg.driver == "fake" && cfg.fake_skip_vif_wait)
            || i.network_info.is_empty()
        {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(cfg.vif_plugging_timeout);
        let mut last_look = Instant::now();
        loop {
            if plugged_by_events(ctx, &i).await? {
                return Ok(());
            }
            // An event the networking API sent while this service was down
            // is lost; a port it reports ACTIVE is plugged all the same.
            if last_look.elapsed() >= Duration::from_secs(2) {
                last_look = Instant::now();
                if ports_active(ctx, &i).await? {
                    return Ok(());
                }
                // Deleted meanwhile: stop waiting, the delete unwinds us.
                still_wanted(ctx, TaskState::Spawning).await?;
            }
            let now = Instant::now();
            if now >= deadline {
                if cfg.vif_plugging_is_fatal {
                    return Err(Error::Internal(format!(
                        "Timeout waiting for network-vif-plugged for instance {} after {} seconds.",
                        i.id, cfg.vif_plugging_timeout
                    )));
                }
                tracing::warn!(instance = %i.id, "timeout waiting for vif plugging; continuing");
                return Ok(());
            }
            let wait = (deadline - now).min(Duration::from_millis(500));
            let _ = tokio::time::timeout(wait, ctx.svc.events.notified()).await;
        }
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
