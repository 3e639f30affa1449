//! The create saga's part of boot from volume: each mapping template of
//! `service/servers/boot_volumes.rs` made real — the volume made through
//! Cinder (image, snapshot or blank source) as the user, waited for until
//! `available`, then attached (attachment create, the host's connector,
//! complete) — and given back when the create unwinds.

use super::attach_volume::{connector, create_attachment, delete_attachment};
use super::SagaCtx;
use crate::clients::UserToken;
use crate::store::bdms::{self, Bdm, BdmState, SourceType};
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The create saga's volume step: every mapping's row, volume and
/// attachment (each part found again when an earlier run made it).
pub async fn prepare_volumes(ctx: &SagaCtx, rows: &[Bdm], caller: &UserToken) -> Result<()> {
    let mut taken: Vec<String> = Vec::new();
    for row in rows {
        let mut row = row.clone();
        if let Some(existing) = bdms::get(&ctx.svc.db, &row.id).await? {
            row = existing;
        } else {
            if row.device_name.is_empty() || taken.contains(&row.device_name) {
                if row.boot_index == Some(0) {
                    row.device_name = "/dev/vda".into();
                }
                if row.device_name.is_empty() || taken.contains(&row.device_name) {
                    let mut t = taken.clone();
                    if !rows.iter().any(|b| b.boot_index == Some(0)) {
                        t.push("/dev/vda".into());
                    }
                    row.device_name = bdms::next_device(&t).unwrap_or_default();
                }
            }
            bdms::insert(&ctx.svc.db, &row).await?;
        }
        taken.push(row.device_name.clone());
        if row.volume_id.is_empty() {
            let id = make_volume(ctx, &row, caller).await?;
            row = bdms::update(&ctx.svc.db, &row.id, |b| b.volume_id = id.clone())
                .await?
                .unwrap_or(row);
        }
        wait_available(ctx, &row.volume_id).await?;
        attach_for_boot(ctx, row).await?;
    }
    Ok(())
}

/// The name a volume boot from volume makes carries (to find it again).
fn volume_name(row: &Bdm) -> String {
    format!("{}-blockdevice-{}", row.instance_id, row.id)
}

/// Create the mapping's volume through Cinder, unless it exists.
async fn make_volume(ctx: &SagaCtx, row: &Bdm, caller: &UserToken) -> Result<String> {
    let name = volume_name(row);
    if let Some(v) = ctx.svc.volume.find_volume_as(caller, &name).await? {
        return Ok(v);
    }
    let i = ctx.instance().await?;
    let mut body = json!({
        "name": name, "size": row.volume_size,
        "availability_zone": null,
        "metadata": {"created_for_instance": i.id, "project_id": i.project_id},
    });
    if let Some(t) = &row.volume_type {
        body["volume_type"] = json!(t);
    }
    match row.source_type {
        SourceType::Image => body["imageRef"] = json!(row.source_id),
        SourceType::Snapshot => body["snapshot_id"] = json!(row.source_id),
        _ => {}
    }
    let v = ctx.svc.volume.create_volume_as(caller, body).await?;
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Internal("Cinder returned a volume without an id".into()))
}

/// Wait (bounded) for a volume to be `available`; `error` (or the
/// deadline) fails the build as Nova does.
async fn wait_available(ctx: &SagaCtx, id: &str) -> Result<()> {
    let limit = Duration::from_secs(ctx.svc.config.compute.long_rpc_timeout.max(60));
    let deadline = Instant::now() + limit;
    let aborted = |why: String| {
        Error::BadRequest(format!(
            "Build of instance {} aborted: Block Device Mapping is Invalid: {why}",
            ctx.instance_id
        ))
    };
    loop {
        let v = ctx
            .svc
            .volume
            .get_volume(id)
            .await?
            .ok_or_else(|| aborted(format!("volume {id} could not be found.")))?;
        let status = v["status"].as_str().unwrap_or_default();
        if status == "available" || already_ours(&v, &ctx.instance_id) {
            return Ok(());
        }
        if status == "error" || status.starts_with("error") {
            return Err(aborted(format!("volume {id} is in status {status}.")));
        }
        if Instant::now() >= deadline {
            return Err(aborted(format!(
                "volume {id} did not become available within {} seconds; its status is {status}.",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether the volume is attached (or being attached) to this instance.
fn already_ours(v: &Value, instance_id: &str) -> bool {
    crate::clients::attachment_of(v, instance_id).is_some()
}

/// Attachment create, update with the host's connector, complete: the
/// row gets its attachment and connection_info (the spawn plugs it).
async fn attach_for_boot(ctx: &SagaCtx, row: Bdm) -> Result<()> {
    if row.state == BdmState::Attached && row.connection_info.is_some() {
        return Ok(());
    }
    let attachment = match &row.attachment_id {
        Some(a) => a.clone(),
        None => {
            let a = create_attachment(ctx, &row.volume_id).await?;
            bdms::update(&ctx.svc.db, &row.id, |b| b.attachment_id = Some(a.clone())).await?;
            a
        }
    };
    let c = connector(ctx, &row.device_name).await?;
    let a = ctx.svc.volume.update_attachment(&attachment, c).await?;
    let info = a["connection_info"].clone();
    if info.is_null() {
        return Err(Error::Internal(format!(
            "Cinder gave no connection_info for volume {}.",
            row.volume_id
        )));
    }
    ctx.svc.volume.complete_attachment(&attachment).await?;
    bdms::update(&ctx.svc.db, &row.id, |b| {
        b.connection_info = Some(info.clone());
        b.state = BdmState::Attached;
    })
    .await?;
    Ok(())
}

/// Undo [`prepare_volumes`]: every row's attachment deleted, the volumes
/// marked to go with the server deleted (as Nova cleans up a failed
/// build), the rows dropped.
pub async fn release_volumes(ctx: &SagaCtx, caller: Option<&UserToken>) -> Result<()> {
    for b in bdms::of_instance(&ctx.svc.db, &ctx.instance_id).await? {
        delete_attachment(ctx, &b).await?;
        let mut volume = Some(b.volume_id.clone()).filter(|v| !v.is_empty());
        if let (None, Some(caller)) = (&volume, caller) {
            // A create whose id was not recorded: found by its name.
            volume = ctx
                .svc
                .volume
                .find_volume_as(caller, &volume_name(&b))
                .await?;
        }
        if let Some(v) = volume.filter(|_| b.delete_on_termination) {
            ctx.svc.volume.delete_volume_when_free(&v).await?;
        }
        bdms::delete(&ctx.svc.db, &b.id).await?;
    }
    Ok(())
}
