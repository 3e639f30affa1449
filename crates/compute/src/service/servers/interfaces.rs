//! `os-interface`: a server's network interfaces, and attaching or
//! detaching one while the server runs (hot-plugged by the hypervisor) or
//! is stopped. An attach that fails on the host leaves no port behind.

use super::conflict_state;
use crate::guest::usable_networks;
use crate::guest::{vif_of, NetworkInfo};
use crate::service::ComputeService;
use crate::states::VmState;
use crate::store::{self, instances::Instance, instances::Vif};
use ferrostack_compute_agent::protocol::AgentRequest;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use ferrostack_hypervisor::VifSpec;
use serde_json::{json, Value};

/// What to attach: a port, or a new port on a network (with an address).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachRequest {
    pub port_id: Option<String>,
    pub net_id: Option<String>,
    pub fixed_ip: Option<String>,
    /// The device tag (2.49), kept with the interface.
    pub tag: Option<String>,
}

/// Nova's `interfaceAttachment` view of a port, with the device tag kept
/// for it (the API drops `tag` before 2.70).
pub fn attachment_view(port: &Value, tag: Option<&str>) -> Value {
    json!({
        "port_state": port["status"],
        "port_id": port["id"],
        "net_id": port["network_id"],
        "mac_addr": port["mac_address"],
        "fixed_ips": port["fixed_ips"].as_array().cloned().unwrap_or_default().iter()
            .map(|f| json!({"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]}))
            .collect::<Vec<_>>(),
        "tag": tag,
    })
}

/// The device tag kept for one of the server's ports.
fn tag_of<'a>(i: &'a Instance, port_id: &str) -> Option<&'a str> {
    i.network_info
        .iter()
        .find(|v| v.port_id == port_id)
        .and_then(|v| v.tag.as_deref())
}

/// Servers may change interfaces in these states (Nova's).
const ATTACHABLE: [VmState; 3] = [VmState::Active, VmState::Paused, VmState::Stopped];

impl ComputeService {
    /// The server's interfaces as the networking API sees their ports.
    pub async fn interfaces(&self, i: &Instance) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for v in &i.network_info {
            if let Some(p) = self.network.get("port", &v.port_id).await? {
                out.push(attachment_view(&p, v.tag.as_deref()));
            }
        }
        Ok(out)
    }

    /// One interface of the server; 404 when the port is not one of them.
    pub async fn interface(&self, i: &Instance, port_id: &str) -> Result<Value> {
        let not_attached = || {
            Error::NotFound(format!(
                "Port {port_id} is not attached to instance {}.",
                i.id
            ))
        };
        if !i.network_info.iter().any(|v| v.port_id == port_id) {
            return Err(not_attached());
        }
        let p = self
            .network
            .get("port", port_id)
            .await?
            .ok_or_else(not_attached)?;
        Ok(attachment_view(&p, tag_of(i, port_id)))
    }

    fn check_attachable(&self, ctx: &AuthContext, i: &Instance, action: &str) -> Result<String> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some() || !ATTACHABLE.contains(&i.vm_state) {
            return Err(conflict_state(action, i));
        }
        i.host.clone().ok_or_else(|| conflict_state(action, i))
    }

    /// Attach a port (or a new port on a network) to the server.
    pub async fn attach_interface(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        req: AttachRequest,
    ) -> Result<Value> {
        let host = self.check_attachable(ctx, i, "attach_interface")?;
        let owner = format!("compute:{}", i.availability_zone);
        let (port, created) = match &req.port_id {
            Some(pid) => {
                let p =
                    self.network.get("port", pid).await?.ok_or_else(|| {
                        Error::NotFound(format!("Port {pid} could not be found."))
                    })?;
                if !self.is_admin(ctx) && p["project_id"] != i.project_id.as_str() {
                    return Err(Error::NotFound(format!("Port {pid} could not be found.")));
                }
                let device = p["device_id"].as_str().unwrap_or_default();
                if !device.is_empty() {
                    return Err(Error::Conflict(format!("Port {pid} is still in use.")));
                }
                let bound = self
                    .network
                    .update_port(
                        pid,
                        json!({"device_id": i.id, "device_owner": owner, "binding:host_id": host}),
                    )
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("Port {pid} could not be found.")))?;
                (bound, false)
            }
            None => {
                let net_id = match &req.net_id {
                    Some(n) => n.clone(),
                    None => {
                        let nets = usable_networks(self, &i.project_id).await?;
                        match nets.as_slice() {
                            [one] => one["id"].as_str().unwrap_or_default().to_owned(),
                            [] => {
                                return Err(Error::BadRequest(
                                    "No network is available to attach an interface on.".into(),
                                ))
                            }
                            _ => {
                                return Err(Error::BadRequest(
                                    "Multiple possible networks found, use a Network ID to be more specific.".into(),
                                ))
                            }
                        }
                    }
                };
                if self.network.get("network", &net_id).await?.is_none() {
                    return Err(Error::NotFound(format!(
                        "Network {net_id} could not be found."
                    )));
                }
                let mut body = json!({
                    "network_id": net_id, "device_id": i.id, "device_owner": owner,
                    "binding:host_id": host, "project_id": i.project_id,
                });
                if let Some(ip) = &req.fixed_ip {
                    body["fixed_ips"] = json!([{ "ip_address": ip }]);
                }
                (self.network.create_port(body).await?, true)
            }
        };
        let port_id = port["id"].as_str().unwrap_or_default().to_owned();
        let network = self
            .network
            .get("network", port["network_id"].as_str().unwrap_or_default())
            .await?
            .unwrap_or(Value::Null);
        let vif = vif_of(
            &port,
            &NetworkInfo {
                name: network["name"].as_str().unwrap_or_default().to_owned(),
                mtu: network["mtu"].as_u64().and_then(|m| u32::try_from(m).ok()),
            },
            created,
        );
        let vif = Vif {
            tag: req.tag.clone(),
            ..vif
        };
        let plugged = self
            .agent(
                &host,
                AgentRequest::AttachInterface {
                    instance_id: i.id.clone(),
                    vif: VifSpec {
                        port_id: vif.port_id.clone(),
                        network_id: vif.network_id.clone(),
                        mac_address: vif.mac_address.clone(),
                        mtu: vif.mtu,
                    },
                },
            )
            .await;
        let recorded = match plugged {
            Ok(_) => {
                store::instances::update(&self.db, &i.id, |x| {
                    x.network_info.retain(|v| v.port_id != port_id);
                    x.network_info.push(vif.clone());
                    Ok(())
                })
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            self.release_port(&port_id, created).await;
            return Err(e);
        }
        self.record_action(ctx, i, "attach_interface").await?;
        Ok(attachment_view(&port, req.tag.as_deref()))
    }

    /// Detach one of the server's ports: unplugged on the host, then
    /// deleted (when compute made it) or unbound.
    pub async fn detach_interface(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        port_id: &str,
    ) -> Result<()> {
        let Some(vif) = i
            .network_info
            .iter()
            .find(|v| v.port_id == port_id)
            .cloned()
        else {
            return Err(Error::NotFound(format!(
                "Port {port_id} is not attached to instance {}.",
                i.id
            )));
        };
        let host = self.check_attachable(ctx, i, "detach_interface")?;
        self.agent(
            &host,
            AgentRequest::DetachInterface {
                instance_id: i.id.clone(),
                port_id: port_id.to_owned(),
            },
        )
        .await?;
        store::instances::update(&self.db, &i.id, |x| {
            x.network_info.retain(|v| v.port_id != port_id);
            Ok(())
        })
        .await?;
        self.release_port(port_id, vif.created_by_compute).await;
        self.record_action(ctx, i, "detach_interface").await?;
        Ok(())
    }

    /// Delete a port compute made, or give back one the user brought.
    async fn release_port(&self, port_id: &str, created_by_compute: bool) {
        let done = if created_by_compute {
            self.network.delete_port(port_id).await
        } else {
            self.network
                .update_port(
                    port_id,
                    json!({"device_id": "", "device_owner": "", "binding:host_id": ""}),
                )
                .await
                .map(|_| ())
        };
        if let Err(e) = done {
            tracing::warn!(port = %port_id, error = %e, "port not released");
        }
    }
}
