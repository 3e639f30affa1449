//! Nova's legacy unversioned usage notifications for metering:
//! `compute.instance.create.end`, `compute.instance.delete.end` and the
//! periodic `compute.instance.exists` (Nova's `instance_usage_audit`), with
//! the payload fields Ceilometer's meters read (`instance_id`,
//! `tenant_id`, `vcpus`, `memory_mb`, `root_gb`, …).

use crate::service::ComputeService;
use crate::store::{self, instances::Instance};
use ferrostack_db::lease::Periodic;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Nova's default `instance_usage_audit_period`: an hour.
pub const AUDIT_PERIOD: Duration = Duration::from_secs(3600);

/// Publish one usage notification about `i` (best effort).
pub async fn notify(svc: &ComputeService, event: &str, i: &Instance) {
    let payload = json!({
        "instance_id": i.id,
        "tenant_id": i.project_id,
        "user_id": i.user_id,
        "display_name": i.name,
        "host": i.host,
        "instance_type": i.flavor.name,
        "instance_flavor_id": i.flavor.id,
        "vcpus": i.flavor.vcpus,
        "memory_mb": i.flavor.ram,
        "root_gb": i.flavor.disk,
        "ephemeral_gb": i.flavor.ephemeral,
        "disk_gb": i.flavor.disk + i.flavor.ephemeral,
        "image_ref_url": i.image_ref,
        "state": format!("{:?}", i.vm_state).to_lowercase(),
        "created_at": i.created_at,
        "launched_at": i.launched_at,
        "deleted_at": i.terminated_at,
    });
    let publisher = format!("compute.{}", svc.config.common.host);
    if let Err(e) = svc.bus.notify(&publisher, event, payload).await {
        tracing::warn!(instance = %i.id, event, error = %e, "notification not sent");
    }
}

/// `compute.instance.exists` for every live instance each audit period,
/// by one controller at a time (the lease `periodic:compute-usage-audit`).
pub fn spawn_audit(svc: &Arc<ComputeService>) {
    let weak = Arc::downgrade(svc);
    let mut lease = Periodic::new(
        &svc.db,
        "compute-usage-audit",
        &svc.config.common.host,
        AUDIT_PERIOD,
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(AUDIT_PERIOD);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(svc) = weak.upgrade() else { return };
            if !lease.turn().await {
                continue;
            }
            if let Err(e) = audit(&svc, 500).await {
                tracing::warn!(error = %e, "instance usage audit failed");
            }
        }
    });
}

/// One audit period's notifications, read `page` instances at a time (so
/// the audit's memory does not grow with the cloud).
pub async fn audit(svc: &ComputeService, page: usize) -> ferrostack_core::Result<()> {
    let mut after = None;
    loop {
        let scope = store::instances::ListScope {
            project: None,
            deleted: &[false],
            after,
            name_contains: None,
        };
        let (found, more) =
            store::instances::scan(&svc.db, &scope, |_| true, |_| true, page).await?;
        for i in &found {
            notify(svc, "compute.instance.exists", i).await;
        }
        let next = match found.last() {
            Some(last) if more => store::instances::position_of(&svc.db, &last.id).await?,
            _ => None,
        };
        if next.is_none() {
            return Ok(());
        }
        after = next;
    }
}
