//! unshelve. A SHELVED server still has its guest on its host: it is
//! powered on again. A SHELVED_OFFLOADED one is scheduled again (to the
//! zone asked for from 2.77), its host claimed, the shelved image cached
//! there and the guest spawned from it with the server's ports and
//! volumes; the shelved image is deleted once the server is ACTIVE. A
//! volume-backed server has no shelved image: it boots from its root
//! volume again (Nova's unshelve with no image). A
//! failure leaves the server as it was (offloaded: claim released, no
//! host, the half-built guest destroyed).

use super::attach_volume::connector;
use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::scheduler;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, bdms, hosts};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::Deserialize;
use serde_json::json;

pub const KIND: &str = "unshelve_server";

#[derive(Debug, Deserialize)]
struct Params {
    /// The server was SHELVED_OFFLOADED (else SHELVED, still on its host).
    offloaded: bool,
    /// 2.77: the zone to unshelve into (an offloaded server only).
    #[serde(default)]
    availability_zone: Option<String>,
    /// 2.91: `availability_zone: null` unpins the server from its zone.
    #[serde(default)]
    unpin: bool,
    /// 2.91 (admin): the host to unshelve on (the filters still run).
    #[serde(default)]
    host: Option<String>,
}

pub struct UnshelveServer;

impl UnshelveServer {
    fn event(offloaded: bool) -> &'static str {
        // Nova unshelves a SHELVED server by starting it.
        if offloaded {
            "compute_unshelve_instance"
        } else {
            "compute_start_instance"
        }
    }
}

#[async_trait::async_trait]
impl Saga for UnshelveServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(Schedule),
            Box::new(CacheImage),
            Box::new(ConnectVolumes),
            Box::new(Spawn),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        let mut image = None;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.vm_state = VmState::Active;
            x.power_state = PowerState::Running;
            x.task_state = None;
            image = x.shelved_image_id.take();
            x.shelved_at = None;
            x.shelved_host = None;
            Ok(())
        })
        .await?;
        // The snapshot has served; Nova deletes it after the unshelve.
        if let Some(id) = image {
            if let Err(e) = ctx.svc.image.delete(&id).await {
                tracing::warn!(instance = %ctx.instance_id, image = %id, error = %e, "shelved image not deleted");
            }
        }
        ctx.record_event(Self::event(p.offloaded), Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        let p = ctx.params::<Params>()?;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if x.task_state == Some(TaskState::Deleting) {
                return Ok(());
            }
            x.task_state = None;
            x.vm_state = if p.offloaded {
                VmState::ShelvedOffloaded
            } else {
                VmState::Shelved
            };
            Ok(())
        })
        .await?;
        ctx.record_event(Self::event(p.offloaded), Err(error)).await;
        Ok(())
    }
}

struct Schedule;

#[async_trait::async_trait]
impl Step for Schedule {
    fn name(&self) -> &'static str {
        "unshelve_schedule"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        if !p.offloaded {
            return Ok(());
        }
        let i = ctx.set_task(TaskState::Unshelving).await?;
        let zone = match (&p.availability_zone, p.unpin) {
            (Some(z), _) => Some(z.clone()),
            (None, true) => None,
            (None, false) => i.requested_availability_zone.clone(),
        };
        let host = match hosts::get_claim(&ctx.svc.db, &i.id, "instance").await? {
            Some((host, _)) => host,
            None => {
                let req = scheduler::Request {
                    flavor: &i.flavor,
                    availability_zone: zone.as_deref(),
                    image_properties: &i.image_properties,
                    ignore_hosts: &[],
                    only_hosts: None,
                    host: p.host.as_deref(),
                    node: None,
                };
                scheduler::select_and_claim(&ctx.svc, &i.id, "instance", &req)
                    .await?
                    .host
            }
        };
        let az = hosts::get_service(&ctx.svc.db, &host, scheduler::COMPUTE_BINARY)
            .await?
            .map(|s| s.zone)
            .unwrap_or_else(|| ctx.svc.config.compute.default_availability_zone.clone());
        store::instances::update(&ctx.svc.db, &i.id, |x| {
            x.host = Some(host.clone());
            x.node = Some(host.clone());
            x.availability_zone = az.clone();
            // 2.77: the zone asked for sticks, as Nova's request spec.
            if p.availability_zone.is_some() || p.unpin {
                x.requested_availability_zone = p.availability_zone.clone();
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        if !ctx.params::<Params>()?.offloaded {
            return Ok(());
        }
        hosts::release(&ctx.svc.db, &ctx.instance_id, "instance").await?;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.host = None;
            x.node = None;
            Ok(())
        })
        .await
        .map(|_| ())
    }
}

/// The shelved image an offloaded server is spawned from; `None` for a
/// volume-backed server, which boots from its volume.
async fn shelved_image(ctx: &SagaCtx) -> Result<(store::instances::Instance, Option<String>)> {
    let i = ctx.instance().await?;
    if i.image_ref.is_empty() {
        return Ok((i, None));
    }
    let image = i
        .shelved_image_id
        .clone()
        .ok_or_else(|| Error::Conflict(format!("Instance {} has no shelved image.", i.id)))?;
    Ok((i, Some(image)))
}

struct CacheImage;

#[async_trait::async_trait]
impl Step for CacheImage {
    fn name(&self) -> &'static str {
        "unshelve_cache_image"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if !ctx.params::<Params>()?.offloaded {
            return Ok(());
        }
        let (_, image) = shelved_image(ctx).await?;
        ctx.set_task(TaskState::Spawning).await?;
        match image {
            Some(image_id) => ctx.agent(AgentRequest::CacheImage { image_id }).await,
            None => Ok(()),
        }
    }

    /// The cache is shared by every guest of the image.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

/// Volumes attached while the server was offloaded (2.20) have a
/// completed attachment with no connection: it is updated with the new
/// host's connector (Cinder exports the volume) and the connection_info
/// recorded, so the spawn plugs them in (Nova's `_prep_block_device`).
struct ConnectVolumes;

#[async_trait::async_trait]
impl Step for ConnectVolumes {
    fn name(&self) -> &'static str {
        "unshelve_connect_volumes"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if !ctx.params::<Params>()?.offloaded {
            return Ok(());
        }
        let i = ctx.instance().await?;
        let unconnected = i
            .bdms
            .iter()
            .filter(|b| !b.volume_id.is_empty() && b.connection_info.is_none());
        for b in unconnected {
            let Some(attachment) = &b.attachment_id else {
                continue;
            };
            let connector = connector(ctx, &b.device_name).await?;
            let a = ctx
                .svc
                .volume
                .update_attachment(attachment, connector)
                .await?;
            let info = a["connection_info"].clone();
            if info.is_null() {
                return Err(Error::Internal(format!(
                    "Cinder gave no connection_info for volume {}.",
                    b.volume_id
                )));
            }
            ctx.svc.volume.complete_attachment(attachment).await?;
            bdms::update(&ctx.svc.db, &b.id, |x| x.connection_info = Some(info)).await?;
        }
        Ok(())
    }

    /// The connection stays: the server's other volumes keep theirs while
    /// it is offloaded too, and the next unshelve uses it as it is.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct Spawn;

#[async_trait::async_trait]
impl Step for Spawn {
    fn name(&self) -> &'static str {
        "unshelve_spawn"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if !ctx.params::<Params>()?.offloaded {
            ctx.set_task(TaskState::PoweringOn).await?;
            return ctx
                .agent(AgentRequest::PowerOn {
                    instance_id: ctx.instance_id.clone(),
                })
                .await;
        }
        let (i, image_id) = shelved_image(ctx).await?;
        let host = i.host.clone().unwrap_or_default();
        // Ports stay the server's; their binding follows it to a new host.
        let moved = i.shelved_host.as_deref() != Some(host.as_str());
        for v in i.network_info.iter().filter(|_| moved) {
            ctx.svc
                .network
                .update_port(&v.port_id, json!({"binding:host_id": host}))
                .await?;
        }
        let mut spec = instance_spec(&i);
        if let Some(image_id) = image_id {
            spec.image_id = image_id;
        }
        let config_drive = ctx.config_drive(&i).await?;
        ctx.agent(AgentRequest::Spawn {
            instance: spec,
            config_drive,
        })
        .await
    }

    /// Leave no half-built guest (an offloaded server has none); a
    /// SHELVED one is powered off again.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let offloaded = ctx.params::<Params>()?.offloaded;
        let i = ctx.instance().await?;
        if i.host.is_none() {
            return Ok(());
        }
        let request = if offloaded {
            AgentRequest::Destroy {
                instance_id: ctx.instance_id.clone(),
            }
        } else {
            AgentRequest::PowerOff {
                instance_id: ctx.instance_id.clone(),
            }
        };
        ctx.agent(request).await
    }
}
