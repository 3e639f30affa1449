//! Rebuild: the guest is destroyed and built again from the instance's
//! (new) image with its ports and flavor: destroy → (2.93, volume-backed:
//! re-image the root volume through Cinder, connect it again) → cache the
//! image → spawn → power off again if the server was stopped. Each step is
//! idempotent, so a restart resumes where it was; a failure leaves the
//! server in ERROR with the reason.

use super::attach_volume::connector;
use super::{Saga, SagaCtx, Step};
use crate::guest::instance_spec;
use crate::states::{PowerState, TaskState, VmState};
use crate::store::{self, bdms, bdms::Bdm, instances::Fault};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::Deserialize;

pub const KIND: &str = "rebuild_server";

#[derive(Debug, Deserialize)]
struct Params {
    /// The server was SHUTOFF: it stays so after its rebuild, as in Nova.
    #[serde(default)]
    stopped: bool,
    /// 2.93: a volume-backed server's root volume is to be re-imaged (with
    /// another image or its own).
    #[serde(default)]
    reimage: bool,
    /// The image the root volume is to get (with `reimage`).
    #[serde(default)]
    image_id: Option<String>,
}

pub struct RebuildServer;

#[async_trait::async_trait]
impl Saga for RebuildServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![
            Box::new(DestroyGuest),
            Box::new(ReimageVolume),
            Box::new(ConnectRootVolume),
            Box::new(CacheImage),
            Box::new(SpawnGuest),
            Box::new(KeepStopped),
        ]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let stopped = ctx.params::<Params>()?.stopped;
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.task_state = None;
            if stopped {
                x.vm_state = VmState::Stopped;
                x.power_state = PowerState::Shutdown;
            } else {
                x.vm_state = VmState::Active;
                x.power_state = PowerState::Running;
            }
            x.fault = None;
            x.launched_at = Some(store::now());
            Ok(())
        })
        .await?;
        ctx.record_event("compute_rebuild_instance", Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            x.task_state = None;
            x.vm_state = VmState::Error;
            x.power_state = PowerState::NoState;
            x.fault = Some(Fault::of(error));
            Ok(())
        })
        .await?;
        ctx.record_event("compute_rebuild_instance", Err(error))
            .await;
        Ok(())
    }
}

async fn set_task(ctx: &SagaCtx, task: TaskState) -> Result<store::instances::Instance> {
    store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
        x.task_state = Some(task);
        Ok(())
    })
    .await
}

struct DestroyGuest;

#[async_trait::async_trait]
impl Step for DestroyGuest {
    fn name(&self) -> &'static str {
        "destroy_guest"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        store::console_tokens::delete_for_instance(&ctx.svc.db, &ctx.instance_id).await?;
        ctx.agent(AgentRequest::Destroy {
            instance_id: ctx.instance_id.clone(),
        })
        .await
    }

    /// The old guest is gone for good; a failed rebuild ends in ERROR.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

/// The root volume's mapping of a volume-backed server.
async fn root_bdm(ctx: &SagaCtx) -> Result<Bdm> {
    ctx.instance()
        .await?
        .bdms
        .into_iter()
        .find(|b| b.boot_index == Some(0) && !b.volume_id.is_empty())
        .ok_or_else(|| Error::Internal("the server has no root volume".into()))
}

/// Nova's fault when the re-image failed.
fn reimage_failed() -> Error {
    Error::Unavailable("Failed to rebuild volume backed instance.".into())
}

/// 2.93's re-image of the root volume, after the guest is gone, as Nova's
/// `_rebuild_volume_backed_instance`: a new attachment with no connection
/// (the volume stays held), the old one deleted (the export goes, the
/// volume `reserved`), then Cinder's `os-reimage` (3.68), waited for until
/// the volume is `reserved` again with the new image (`error`: the
/// rebuild fails, the server in ERROR with Nova's fault). Each part is
/// found done on a second run: the mapping without connection, no other
/// attachment, the volume's image.
struct ReimageVolume;

#[async_trait::async_trait]
impl Step for ReimageVolume {
    fn name(&self) -> &'static str {
        "reimage_volume"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        let Some(image) = p.image_id.filter(|_| p.reimage) else {
            return Ok(());
        };
        set_task(ctx, TaskState::RebuildBlockDeviceMapping).await?;
        let root = root_bdm(ctx).await?;
        if root.connection_info.is_some() {
            swap_attachment(ctx, &root).await?;
        }
        let root = root_bdm(ctx).await?;
        let volumes = &ctx.svc.volume;
        for a in volumes
            .attachments_of(&root.volume_id, &ctx.instance_id)
            .await?
        {
            let id = a["id"].as_str().unwrap_or_default();
            if Some(id) != root.attachment_id.as_deref() {
                volumes.delete_attachment(id).await?;
            }
        }
        reimage_and_wait(ctx, &root.volume_id, &image).await
    }

    /// The volume's data is the new image's whatever happens next; a
    /// failed rebuild leaves the server in ERROR, to be rebuilt again.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

/// Give the root mapping a new attachment without a connection (one
/// left by an interrupted run is taken again), recorded before the old
/// one is deleted.
async fn swap_attachment(ctx: &SagaCtx, root: &Bdm) -> Result<()> {
    let volumes = &ctx.svc.volume;
    let existing = volumes
        .attachments_of(&root.volume_id, &ctx.instance_id)
        .await?;
    let spare = existing
        .iter()
        .filter_map(|a| a["id"].as_str())
        .find(|id| Some(*id) != root.attachment_id.as_deref())
        .map(str::to_owned);
    let new = match spare {
        Some(id) => id,
        None => volumes
            .create_attachment(&root.volume_id, &ctx.instance_id)
            .await?["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Internal("Cinder returned an attachment without an id".into()))?,
    };
    bdms::update(&ctx.svc.db, &root.id, |b| {
        b.attachment_id = Some(new);
        b.connection_info = None;
    })
    .await?;
    Ok(())
}

/// `os-reimage` once per run (Cinder moves the volume to `downloading` as
/// it accepts it), then wait (as Nova, up to 20 s a GiB) for the volume to
/// be `reserved` again with the image. The image may be the one the
/// volume has (2.93 re-images whatever the image), so only the request of
/// this run says the volume was re-imaged; a run repeated after a crash
/// asks again, which writes the same data. A run that finds Cinder still
/// `downloading` waits for it.
async fn reimage_and_wait(ctx: &SagaCtx, volume_id: &str, image: &str) -> Result<()> {
    let volumes = &ctx.svc.volume;
    let mut asked = false;
    let mut deadline = None;
    loop {
        let v = volumes
            .get_volume(volume_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("Volume {volume_id} could not be found.")))?;
        let has_image = v["volume_image_metadata"]["image_id"] == image;
        match v["status"].as_str().unwrap_or_default() {
            "reserved" if asked && has_image => return Ok(()),
            "reserved" if !asked => {
                volumes.reimage(volume_id, image).await?;
                asked = true;
                continue;
            }
            "downloading" => asked = true,
            "reserved" => {}
            _ => return Err(reimage_failed()),
        }
        let size = v["size"].as_u64().unwrap_or(1).max(1);
        let until = *deadline.get_or_insert_with(|| {
            tokio::time::Instant::now() + std::time::Duration::from_secs(20 * size + 40)
        });
        if tokio::time::Instant::now() >= until {
            return Err(reimage_failed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The re-imaged root volume connected to the host again (attachment
/// update with the connector, `os-complete`: `in-use`), so the spawn
/// boots from it.
struct ConnectRootVolume;

#[async_trait::async_trait]
impl Step for ConnectRootVolume {
    fn name(&self) -> &'static str {
        "connect_root_volume"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if !ctx.params::<Params>()?.reimage {
            return Ok(());
        }
        let root = root_bdm(ctx).await?;
        if root.connection_info.is_some() {
            return Ok(());
        }
        let attachment = root
            .attachment_id
            .clone()
            .ok_or_else(|| Error::Internal("the root volume has no attachment".into()))?;
        let connector = connector(ctx, &root.device_name).await?;
        let volumes = &ctx.svc.volume;
        let a = volumes.update_attachment(&attachment, connector).await?;
        let info = a["connection_info"].clone();
        if info.is_null() {
            return Err(Error::Internal(format!(
                "Cinder gave no connection_info for volume {}.",
                root.volume_id
            )));
        }
        volumes.complete_attachment(&attachment).await?;
        bdms::update(&ctx.svc.db, &root.id, |b| b.connection_info = Some(info)).await?;
        Ok(())
    }

    /// A connection does no harm to a server left in ERROR; its delete
    /// or next rebuild lets go of it.
    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct CacheImage;

#[async_trait::async_trait]
impl Step for CacheImage {
    fn name(&self) -> &'static str {
        "cache_image"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = set_task(ctx, TaskState::RebuildBlockDeviceMapping).await?;
        if i.image_ref.is_empty() {
            // Volume-backed: no image disk to make.
            return Ok(());
        }
        ctx.agent(AgentRequest::CacheImage {
            image_id: i.image_ref.clone(),
        })
        .await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}

struct SpawnGuest;

#[async_trait::async_trait]
impl Step for SpawnGuest {
    fn name(&self) -> &'static str {
        "spawn"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let i = set_task(ctx, TaskState::RebuildSpawning).await?;
        let config_drive = ctx.config_drive(&i).await?;
        ctx.agent(AgentRequest::Spawn {
            instance: instance_spec(&i),
            config_drive,
        })
        .await
    }

    /// Leave no half-built guest behind.
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        ctx.agent(AgentRequest::Destroy {
            instance_id: ctx.instance_id.clone(),
        })
        .await
    }
}

struct KeepStopped;

#[async_trait::async_trait]
impl Step for KeepStopped {
    fn name(&self) -> &'static str {
        "keep_stopped"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        if !ctx.params::<Params>()?.stopped {
            return Ok(());
        }
        ctx.agent(AgentRequest::PowerOff {
            instance_id: ctx.instance_id.clone(),
        })
        .await
    }

    async fn undo(&self, _ctx: &SagaCtx) -> Result<()> {
        Ok(())
    }
}
