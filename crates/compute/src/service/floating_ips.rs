//! Nova's proxies to the networking API: floating IPs and their pools
//! (`os-floating-ips`, `os-floating-ip-pools`, the `addFloatingIp` /
//! `removeFloatingIp` server actions) and the read-only `os-networks` /
//! `os-tenant-networks`.

use super::ComputeService;
use crate::store::instances::Instance;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::collections::HashMap;

fn fip_not_found(id: &str) -> Error {
    Error::NotFound(format!("Floating IP {id} could not be found"))
}

impl ComputeService {
    /// External networks: the floating IP pools.
    pub async fn floating_pools(&self) -> Result<Vec<Value>> {
        self.network
            .list("networks", &[("router:external", "true")])
            .await
    }

    /// Nova's view of a floating IP: the pool is the network's name, the
    /// instance the device of the port it is bound to.
    async fn floating_view(&self, fip: &Value, pools: &HashMap<String, String>) -> Result<Value> {
        let net = fip["floating_network_id"].as_str().unwrap_or_default();
        let pool = match pools.get(net) {
            Some(n) => json!(n),
            None => match self.network.get("network", net).await? {
                Some(n) => n["name"].clone(),
                None => json!(net),
            },
        };
        let instance = match fip["port_id"].as_str() {
            Some(p) => self
                .network
                .get("port", p)
                .await?
                .and_then(|port| port["device_id"].as_str().map(str::to_owned))
                .filter(|d| !d.is_empty()),
            None => None,
        };
        Ok(json!({
            "id": fip["id"], "ip": fip["floating_ip_address"], "pool": pool,
            "fixed_ip": fip["fixed_ip_address"], "instance_id": instance,
        }))
    }

    async fn pool_names(&self) -> Result<HashMap<String, String>> {
        Ok(self
            .floating_pools()
            .await?
            .iter()
            .map(|n| {
                (
                    n["id"].as_str().unwrap_or_default().to_owned(),
                    n["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// The caller's project's floating IPs.
    pub async fn floating_ips(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let project = ctx.project_id.clone().unwrap_or_default();
        let pools = self.pool_names().await?;
        let mut out = Vec::new();
        for f in self
            .network
            .list("floatingips", &[("project_id", project.as_str())])
            .await?
        {
            out.push(self.floating_view(&f, &pools).await?);
        }
        Ok(out)
    }

    /// A floating IP the caller may see (its project's; admins any).
    async fn visible_fip(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let f = self
            .network
            .get("floatingip", id)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| fip_not_found(id))?;
        if !self.is_admin(ctx) && f["project_id"].as_str() != ctx.project_id.as_deref() {
            return Err(fip_not_found(id));
        }
        Ok(f)
    }

    pub async fn floating_ip(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let f = self.visible_fip(ctx, id).await?;
        self.floating_view(&f, &self.pool_names().await?).await
    }

    /// Allocate a floating IP from `pool` (an external network's name or
    /// id; the first external network when none is given).
    pub async fn allocate_floating_ip(
        &self,
        ctx: &AuthContext,
        pool: Option<&str>,
    ) -> Result<Value> {
        let pools = self.floating_pools().await?;
        let net = match pool {
            Some(p) => pools.iter().find(|n| n["name"] == p || n["id"] == p),
            None => pools.first(),
        }
        .ok_or_else(|| {
            Error::NotFound(format!(
                "Floating IP pool not found: {}",
                pool.unwrap_or("default")
            ))
        })?;
        let project = ctx.project_id.clone().unwrap_or_default();
        let f = self
            .network
            .create(
                "floatingip",
                json!({"floating_network_id": net["id"], "project_id": project}),
            )
            .await
            .map_err(|e| match e {
                Error::Conflict(m) => {
                    Error::Forbidden(format!("No more floating IPs available: {m}"))
                }
                other => other,
            })?;
        self.floating_view(&f, &self.pool_names().await?).await
    }

    pub async fn release_floating_ip(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.visible_fip(ctx, id).await?;
        if !self.network.delete("floatingip", id).await? {
            return Err(fip_not_found(id));
        }
        Ok(())
    }

    /// The caller's floating IP with this address.
    async fn fip_by_address(&self, ctx: &AuthContext, address: &str) -> Result<Value> {
        let not_found = || Error::NotFound(format!("floating IP not found for address {address}"));
        let found = self
            .network
            .list("floatingips", &[("floating_ip_address", address)])
            .await?
            .into_iter()
            .find(|f| f["floating_ip_address"] == address)
            .ok_or_else(not_found)?;
        if !self.is_admin(ctx) && found["project_id"].as_str() != ctx.project_id.as_deref() {
            return Err(not_found());
        }
        Ok(found)
    }

    /// `addFloatingIp`: bind the address to the instance's port holding
    /// `fixed` (or its first port with an IPv4 address).
    pub async fn add_floating_ip(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        address: &str,
        fixed: Option<&str>,
    ) -> Result<()> {
        let fip = self.fip_by_address(ctx, address).await?;
        let vif = i
            .network_info
            .iter()
            .find(|v| match fixed {
                Some(f) => v.ips.iter().any(|(a, _)| a == f),
                None => v.ips.iter().any(|(_, ver)| *ver == 4),
            })
            .ok_or_else(|| match fixed {
                Some(f) => Error::BadRequest(format!(
                    "Specified fixed address '{f}' not found in instance {}",
                    i.id
                )),
                None => Error::BadRequest(format!(
                    "No nw_info cache associated with instance {}",
                    i.id
                )),
            })?;
        let fixed_ip = match fixed {
            Some(f) => f.to_owned(),
            None => vif
                .ips
                .iter()
                .find(|(_, ver)| *ver == 4)
                .map(|(a, _)| a.clone())
                .unwrap_or_default(),
        };
        // A port already holding another floating IP of the same pool.
        let taken = self
            .network
            .list("floatingips", &[("port_id", vif.port_id.as_str())])
            .await?
            .into_iter()
            .any(|f| {
                f["id"] != fip["id"]
                    && f["port_id"] == vif.port_id.as_str()
                    && f["floating_network_id"] == fip["floating_network_id"]
            });
        if taken {
            return Err(Error::BadRequest(format!(
                "Unable to associate floating IP {address} to fixed IP {fixed_ip} for instance {}. Port {} already has a floating IP.",
                i.id, vif.port_id
            )));
        }
        let id = fip["id"].as_str().unwrap_or_default();
        self.network
            .update(
                "floatingip",
                id,
                json!({"port_id": vif.port_id, "fixed_ip_address": fixed_ip}),
            )
            .await
            .map_err(|e| match e {
                Error::Conflict(m) | Error::Internal(m) => Error::BadRequest(format!(
                    "Unable to associate floating IP {address} to fixed IP {fixed_ip} for instance {}: {m}",
                    i.id
                )),
                other => other,
            })?
            // The networking API answers 404 for the port or when no router
            // joins the port's subnet to the floating IP's network.
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Unable to associate floating IP {address} to fixed IP {fixed_ip} for instance {}: the external network is not reachable from the port's subnet.",
                    i.id
                ))
            })?;
        self.refresh_network_info(&i.id).await?;
        Ok(())
    }

    /// `removeFloatingIp`: unbind the address, which must be bound to this
    /// instance.
    pub async fn remove_floating_ip(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        address: &str,
    ) -> Result<()> {
        let fip = self.fip_by_address(ctx, address).await?;
        let bound_here = match fip["port_id"].as_str() {
            Some(p) => i.network_info.iter().any(|v| v.port_id == p),
            None => false,
        };
        if !bound_here {
            return Err(Error::Conflict(format!(
                "Floating IP {address} is not associated with instance {}.",
                i.id
            )));
        }
        let id = fip["id"].as_str().unwrap_or_default();
        self.network
            .update("floatingip", id, json!({"port_id": null}))
            .await?
            .ok_or_else(|| fip_not_found(id))?;
        self.refresh_network_info(&i.id).await?;
        Ok(())
    }

    /// Networks as `os-networks` / `os-tenant-networks` show them: those the
    /// caller's project may use (admins: all).
    pub async fn nova_networks(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let project = ctx.project_id.clone().unwrap_or_default();
        let nets = self.network.list("networks", &[]).await?;
        let subnets = self.network.list("subnets", &[]).await?;
        Ok(nets
            .into_iter()
            .filter(|n| {
                self.is_admin(ctx)
                    || n["shared"] == true
                    || n["project_id"].as_str() == Some(project.as_str())
            })
            .map(|n| {
                let cidr = subnets
                    .iter()
                    .filter(|s| s["network_id"] == n["id"])
                    .find_map(|s| s["cidr"].as_str().map(str::to_owned));
                json!({"id": n["id"], "label": n["name"], "cidr": cidr, "project_id": n["project_id"]})
            })
            .collect())
    }
}
