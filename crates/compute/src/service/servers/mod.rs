//! Servers: creating them (`create`), deleting them, and their actions
//! (`actions`, one typed enum read from the body of `action_request`, the
//! long ones run as sagas), with Nova's state checks.

pub mod action_request;
pub mod actions;
pub mod assisted_snapshots;
pub mod boot_request;
pub mod boot_volumes;
pub mod change_password;
pub mod crash_dump;
pub mod create;
pub mod evacuate;
pub mod interfaces;
pub mod live_migrate;
pub mod migrate;
pub mod rescue;
pub mod resize;
pub mod shelve;
pub mod volumes;

use super::ComputeService;
use crate::saga;
use crate::states::TaskState;
use crate::store::{self, instances::Instance};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;

pub use actions::{ActionResult, ServerAction};
pub use create::{access_ip, normalized_access_ip};

pub fn conflict_state(action: &str, i: &Instance) -> Error {
    match &i.task_state {
        Some(t) => Error::Conflict(format!(
            "Cannot '{action}' instance {} while it is in task_state {t}",
            i.id
        )),
        None => Error::Conflict(format!(
            "Cannot '{action}' instance {} while it is in vm_state {}",
            i.id, i.vm_state
        )),
    }
}

pub(crate) fn bad(field: &str, msg: &str) -> Error {
    Error::BadRequest(format!("Invalid input for field/attribute {field}. {msg}"))
}

pub struct Created {
    pub instances: Vec<Instance>,
    pub admin_pass: String,
    pub reservation_id: String,
    pub return_reservation_id: bool,
}

impl ComputeService {
    /// Delete a server: a build in progress is told to stop (its saga
    /// unwinds and marks it deleted); otherwise the delete saga runs.
    pub async fn delete_server(self: &Arc<Self>, ctx: &AuthContext, id: &str) -> Result<()> {
        let i = self
            .authorized_instance(ctx, id, "os_compute_api:servers:delete")
            .await?;
        self.check_lock(ctx, &i)?;
        // Mark first, then look: a build that ends after the mark sees it
        // and deletes the server itself.
        store::instances::update(&self.db, id, |i| {
            i.task_state = Some(TaskState::Deleting);
            Ok(())
        })
        .await?;
        self.record_action(ctx, &i, "delete").await?;
        if self.saga_in_flight(id).await? {
            // The build may have passed its last look at the mark already:
            // once it ends, delete the server unless it did.
            let svc = self.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                if let Err(e) = svc.delete_after_build(&id).await {
                    tracing::warn!(instance = %id, error = %e, "delete after build failed");
                }
            });
        } else {
            saga::start(self, saga::delete_server::KIND, id, json!({})).await?;
        }
        Ok(())
    }

    async fn saga_in_flight(&self, id: &str) -> Result<bool> {
        Ok(store::sagas::for_instance(&self.db, id)
            .await?
            .iter()
            .any(|s| s.state == "running" || s.state == "unwinding"))
    }

    /// Wait for the sagas of an instance being deleted to end, then start
    /// its delete saga if it is still there and none was started.
    async fn delete_after_build(self: &Arc<Self>, id: &str) -> Result<()> {
        while self.saga_in_flight(id).await? {
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(500),
                self.saga_finished.notified(),
            )
            .await;
        }
        let Some(i) = store::instances::get(&self.db, id).await? else {
            return Ok(());
        };
        let deleting = store::sagas::for_instance(&self.db, id)
            .await?
            .iter()
            .any(|s| s.kind == saga::delete_server::KIND);
        if !i.deleted && i.task_state == Some(TaskState::Deleting) && !deleting {
            saga::start(self, saga::delete_server::KIND, id, json!({})).await?;
        }
        Ok(())
    }

    pub fn check_lock(&self, ctx: &AuthContext, i: &Instance) -> Result<()> {
        if i.locked && !self.is_admin(ctx) && i.locked_by.as_deref() != Some("owner") {
            return Err(Error::Conflict(format!("Instance {} is locked", i.id)));
        }
        if i.locked && !self.is_admin(ctx) && i.locked_by.as_deref() == Some("owner") {
            return Err(Error::Conflict(format!("Instance {} is locked", i.id)));
        }
        Ok(())
    }

    pub async fn record_action(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        action: &str,
    ) -> Result<String> {
        store::instances::action_start(
            &self.db,
            &i.id,
            action,
            &request_id(),
            &ctx.user_id,
            &i.project_id,
        )
        .await
    }

    /// Add or remove a security group on every port of the server.
    pub(crate) async fn change_security_group(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        group: &str,
        add: bool,
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        let groups = self
            .network
            .list("security-groups", &[("project_id", i.project_id.as_str())])
            .await?;
        let g = groups
            .iter()
            .find(|g| g["name"] == group || g["id"] == group)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "Security group {group} not found for project {}.",
                    i.project_id
                ))
            })?;
        let gid = g["id"].as_str().unwrap_or_default().to_owned();
        let gname = g["name"].as_str().unwrap_or(group).to_owned();
        let has = i.security_groups.iter().any(|n| n == &gname);
        if add && has {
            return Err(Error::BadRequest(format!(
                "Security group {gname} is already associated with the instance {}",
                i.id
            )));
        }
        if !add && !has {
            return Err(Error::BadRequest(format!(
                "Security group {gname} not associated with the instance {}",
                i.id
            )));
        }
        for v in &i.network_info {
            let Some(port) = self.network.get("port", &v.port_id).await? else {
                continue;
            };
            let mut ids: Vec<String> = port["security_groups"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            ids.retain(|x| x != &gid);
            if add {
                ids.push(gid.clone());
            }
            self.network
                .update_port(&v.port_id, json!({ "security_groups": ids }))
                .await?;
        }
        store::instances::update(&self.db, &i.id, |x| {
            x.security_groups.retain(|n| n != &gname);
            if add {
                x.security_groups.push(gname.clone());
            }
            Ok(())
        })
        .await?;
        self.record_action(
            ctx,
            i,
            if add {
                "addSecurityGroup"
            } else {
                "removeSecurityGroup"
            },
        )
        .await?;
        Ok(())
    }

    /// Delete the oldest backups of a server beyond `rotation`.
    pub(crate) async fn rotate_backups(&self, instance_id: &str, backup_type: &str, rotation: i64) {
        let url = format!("{}/v2/images", self.image.base);
        let Ok(resp) = self
            .image
            .client
            .send(|h| h.get(&url).query(&[("limit", "1000")]))
            .await
        else {
            return;
        };
        let Ok(body) = resp.json::<Value>().await else {
            return;
        };
        let mut backups: Vec<&Value> = body["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|img| {
                        img["instance_uuid"] == instance_id
                            && img["image_type"] == "backup"
                            && img["backup_type"] == backup_type
                    })
                    .collect()
            })
            .unwrap_or_default();
        backups.sort_by_key(|img| img["created_at"].as_str().unwrap_or("").to_owned());
        let excess = backups.len().saturating_sub(rotation as usize);
        for img in &backups[..excess] {
            if let Some(id) = img["id"].as_str() {
                let _ = self.image.delete(id).await;
            }
        }
    }

    /// Read the instance's ports' addresses and floating IPs again from the
    /// networking API (Nova's info cache refresh on `network-changed`).
    pub async fn refresh_network_info(&self, id: &str) -> Result<()> {
        let Some(i) = store::instances::get(&self.db, id).await? else {
            return Ok(());
        };
        let mut fresh = Vec::new();
        for v in &i.network_info {
            let mut v = v.clone();
            if let Some(port) = self.network.get("port", &v.port_id).await? {
                v.ips = crate::guest::vif_of(
                    &port,
                    &crate::guest::NetworkInfo {
                        name: v.network_name.clone(),
                        mtu: v.mtu,
                    },
                    v.created_by_compute,
                )
                .ips;
            }
            v.floating_ips = self
                .network
                .list("floatingips", &[("port_id", v.port_id.as_str())])
                .await?
                .iter()
                .filter_map(|f| f["floating_ip_address"].as_str().map(str::to_owned))
                .collect();
            fresh.push(v);
        }
        store::instances::update(&self.db, id, |x| {
            for v in x.network_info.iter_mut() {
                if let Some(f) = fresh.iter().find(|f| f.port_id == v.port_id) {
                    v.ips = f.ips.clone();
                    v.floating_ips = f.floating_ips.clone();
                }
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// The zones with at least one compute service, and whether any is up.
    pub async fn zones(&self) -> Result<Vec<(String, bool)>> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for s in store::hosts::list_services(&self.db).await? {
            if s.binary != crate::scheduler::COMPUTE_BINARY {
                continue;
            }
            let up = self.is_up(&s) && !s.disabled;
            match out.iter_mut().find(|(z, _)| *z == s.zone) {
                Some(e) => e.1 |= up,
                None => out.push((s.zone.clone(), up)),
            }
        }
        Ok(out)
    }
}

pub(crate) fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// The id of the request being served (as the API layer scoped it), so
/// instance actions carry the `x-openstack-request-id` the caller saw.
pub(crate) fn request_id() -> String {
    super::REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| format!("req-{}", uuid::Uuid::new_v4()))
}
