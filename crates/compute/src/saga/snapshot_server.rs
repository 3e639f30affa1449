//! createImage / createBackup: the host snapshots the guest's disk and
//! streams it into the image record made by the API call. A failure
//! deletes that record; a backup then rotates out the oldest backups of
//! its type beyond `rotation`.

use super::{Saga, SagaCtx, Step};
use crate::states::TaskState;
use crate::store;
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::{Error, Result};
use serde::Deserialize;

pub const KIND: &str = "snapshot_server";

#[derive(Debug, Deserialize)]
struct Params {
    image_id: String,
    /// createBackup: its type and how many of that type to keep.
    #[serde(default)]
    backup: Option<(String, i64)>,
}

pub struct SnapshotServer;

async fn clear_task(ctx: &SagaCtx) -> Result<()> {
    store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
        if matches!(
            x.task_state,
            Some(TaskState::ImageSnapshot | TaskState::ImageBackup | TaskState::ImageUploading)
        ) {
            x.task_state = None;
        }
        Ok(())
    })
    .await
    .map(|_| ())
}

#[async_trait::async_trait]
impl Saga for SnapshotServer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn steps(&self) -> Vec<Box<dyn Step>> {
        vec![Box::new(Upload)]
    }

    async fn succeeded(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        if let Some((backup_type, rotation)) = &p.backup {
            ctx.svc
                .rotate_backups(&ctx.instance_id, backup_type, *rotation)
                .await;
        }
        clear_task(ctx).await?;
        ctx.record_event("compute_snapshot_instance", Ok(())).await;
        Ok(())
    }

    async fn failed(&self, ctx: &SagaCtx, error: &Error) -> Result<()> {
        clear_task(ctx).await?;
        ctx.record_event("compute_snapshot_instance", Err(error))
            .await;
        Ok(())
    }
}

struct Upload;

#[async_trait::async_trait]
impl Step for Upload {
    fn name(&self) -> &'static str {
        "snapshot_and_upload"
    }

    async fn run(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        // Done before (a crash after the upload, before its record): an
        // active image takes no second upload, and needs none.
        if let Some(image) = ctx.svc.image.get(&p.image_id).await? {
            if image["status"] == "active" {
                return Ok(());
            }
        }
        store::instances::update(&ctx.svc.db, &ctx.instance_id, |x| {
            if matches!(
                x.task_state,
                Some(TaskState::ImageSnapshot | TaskState::ImageBackup)
            ) {
                x.task_state = Some(TaskState::ImageUploading);
            }
            Ok(())
        })
        .await?;
        // An upload interrupted by a restart left the image `saving` or
        // `queued`; the image service takes a new upload into `queued` only.
        ctx.agent(AgentRequest::Snapshot {
            instance_id: ctx.instance_id.clone(),
            image_id: p.image_id,
        })
        .await
    }

    /// The image record the API made is deleted (its data with it).
    async fn undo(&self, ctx: &SagaCtx) -> Result<()> {
        let p = ctx.params::<Params>()?;
        ctx.svc.image.delete(&p.image_id).await
    }
}
