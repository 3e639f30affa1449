//! What the host and the networking API need to know of an instance:
//! the spec its hypervisor builds it from, the networks it asked for, its
//! ports' VIF view, and giving its ports back. Sagas and the service layer
//! both build on these.

use crate::service::ComputeService;
use crate::store::bdms::Bdm;
use crate::store::instances::{Instance, RequestedNetwork, Vif};
use ferrostack_core::{Error, Result};
use ferrostack_hypervisor::{InstanceSpec, VifSpec, VolumeAttachment};
use serde_json::{json, Value};

/// What the agent needs to build a guest.
pub fn instance_spec(i: &Instance) -> InstanceSpec {
    let f = &i.flavor;
    InstanceSpec {
        id: i.id.clone(),
        name: i.name.clone(),
        instance_name: i.instance_name.clone(),
        vcpus: f.vcpus.max(1) as u32,
        memory_mb: f.ram.max(1) as u64,
        root_gb: f.disk.max(0) as u64,
        ephemeral_gb: f.ephemeral.max(0) as u64,
        swap_mb: f.swap.max(0) as u64,
        image_id: i.image_ref.clone(),
        image_properties: i
            .image_properties
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| k.starts_with("hw_") || k.starts_with("os_"))
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        vifs: i
            .network_info
            .iter()
            .map(|v| VifSpec {
                port_id: v.port_id.clone(),
                network_id: v.network_id.clone(),
                mac_address: v.mac_address.clone(),
                mtu: v.mtu,
            })
            .collect(),
        volumes: volumes_of(i),
    }
}

/// The instance's attached volumes as the hypervisor needs them: every
/// mapping that has its connection_info (the boot volume has boot index 0).
pub fn volumes_of(i: &Instance) -> Vec<VolumeAttachment> {
    i.bdms.iter().filter_map(volume_attachment).collect()
}

/// One mapping as the hypervisor's attachment, once Cinder has given
/// its connection_info.
pub fn volume_attachment(b: &Bdm) -> Option<VolumeAttachment> {
    let connection = serde_json::from_value(b.connection_info.clone()?).ok()?;
    Some(VolumeAttachment {
        volume_id: b.volume_id.clone(),
        connection,
        device_name: b.device_name.clone(),
        boot_index: b.boot_index,
    })
}

/// The VIF view of a Neutron port.
pub fn vif_of(port: &Value, network: &NetworkInfo, created_by_compute: bool) -> Vif {
    Vif {
        port_id: port["id"].as_str().unwrap_or_default().into(),
        network_id: port["network_id"].as_str().unwrap_or_default().into(),
        network_name: network.name.clone(),
        mtu: network.mtu,
        mac_address: port["mac_address"].as_str().unwrap_or_default().into(),
        ips: port["fixed_ips"]
            .as_array()
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| ip["ip_address"].as_str())
                    .map(|a| (a.to_owned(), if a.contains(':') { 6 } else { 4 }))
                    .collect()
            })
            .unwrap_or_default(),
        created_by_compute,
        floating_ips: Vec::new(),
        tag: None,
    }
}

/// What a guest's interface needs to know of its network.
pub struct NetworkInfo {
    pub name: String,
    pub mtu: Option<u32>,
}

/// Networks a server of this project may attach to (own or shared, not external).
pub async fn usable_networks(svc: &ComputeService, project: &str) -> Result<Vec<Value>> {
    Ok(svc
        .network
        .list("networks", &[])
        .await?
        .into_iter()
        .filter(|n| {
            (n["project_id"] == project || n["shared"] == true) && n["router:external"] != true
        })
        .collect())
}

/// The networks to attach: those requested, or for "auto" the one usable
/// network (none when there is none; ambiguous when there are several).
pub async fn resolve_networks(svc: &ComputeService, i: &Instance) -> Result<Vec<RequestedNetwork>> {
    match &i.requested_networks {
        Some(list) => Ok(list.clone()),
        None => {
            let nets = usable_networks(svc, &i.project_id).await?;
            match nets.len() {
                0 => Ok(Vec::new()),
                1 => Ok(vec![RequestedNetwork {
                    network_id: nets[0]["id"].as_str().map(str::to_owned),
                    ..Default::default()
                }]),
                _ => Err(Error::Conflict(
                    "Multiple possible networks found, use a Network ID to be more specific."
                        .into(),
                )),
            }
        }
    }
}

/// Delete the ports compute created for a server and unbind the ones the
/// caller brought (idempotent: works from what the network API reports).
pub async fn deallocate_ports(svc: &ComputeService, i: &Instance) -> Result<()> {
    let user_ports: Vec<String> = i
        .requested_networks
        .iter()
        .flatten()
        .filter_map(|r| r.port_id.clone())
        .collect();
    for p in svc
        .network
        .list("ports", &[("device_id", i.id.as_str())])
        .await?
    {
        let id = p["id"].as_str().unwrap_or_default();
        if user_ports.iter().any(|u| u == id) {
            svc.network
                .update_port(
                    id,
                    json!({"device_id": "", "device_owner": "", "binding:host_id": ""}),
                )
                .await?;
        } else {
            svc.network.delete_port(id).await?;
        }
    }
    Ok(())
}
