//! What the metadata service and config drives tell a guest, from the
//! instance record and what the networking API says of its ports
//! (subnets, routes, DNS, floating IPs).

use super::ComputeService;
use crate::store::{self, instances::Instance};
use ferrostack_core::{Error, Result};
use ferrostack_metadata::{FixedIp, InstanceMetadata, MetadataSource, NetworkInterface, PublicKey};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub use crate::store::instances::sanitize_hostname;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on" | "y" | "t"
    )
}

impl ComputeService {
    /// Whether the instance gets a config drive.
    pub fn has_config_drive(&self, i: &Instance) -> bool {
        truthy(&i.config_drive) || self.config.compute.force_config_drive
    }

    /// The admin password a saga carries to the guest: Nova writes the
    /// `adminPass` it answered with onto the config drive (`admin_pass` in
    /// `meta_data.json`), never into the metadata service, so only a
    /// server with a config drive gets it.
    pub fn admin_pass_for_guest(&self, i: &Instance, admin_pass: &str) -> Option<String> {
        (self.config.compute.enable_instance_password && self.has_config_drive(i))
            .then(|| admin_pass.to_owned())
    }

    /// Whether the instance gets a config drive, and what is on it.
    pub async fn config_drive_for(
        &self,
        i: &Instance,
        admin_pass: Option<&str>,
    ) -> Result<Option<Box<InstanceMetadata>>> {
        if !self.has_config_drive(i) {
            return Ok(None);
        }
        let mut md = self.instance_metadata(i).await?;
        md.admin_pass = admin_pass.map(str::to_owned);
        Ok(Some(Box::new(md)))
    }

    /// Everything a guest is told about itself.
    pub async fn instance_metadata(&self, i: &Instance) -> Result<InstanceMetadata> {
        let mut interfaces = Vec::new();
        let mut floating_ips = Vec::new();
        let mut subnets: HashMap<String, Value> = HashMap::new();
        for v in &i.network_info {
            let Some(port) = self.network.get("port", &v.port_id).await? else {
                continue;
            };
            let mut fixed_ips = Vec::new();
            for ip in port["fixed_ips"].as_array().into_iter().flatten() {
                let subnet_id = ip["subnet_id"].as_str().unwrap_or_default().to_owned();
                if !subnets.contains_key(&subnet_id) {
                    let s = self
                        .network
                        .get("subnet", &subnet_id)
                        .await?
                        .unwrap_or(Value::Null);
                    subnets.insert(subnet_id.clone(), s);
                }
                let s = &subnets[&subnet_id];
                let address = ip["ip_address"].as_str().unwrap_or_default().to_owned();
                fixed_ips.push(FixedIp {
                    version: if address.contains(':') { 6 } else { 4 },
                    address,
                    subnet_id: subnet_id.clone(),
                    cidr: s["cidr"].as_str().unwrap_or_default().to_owned(),
                    gateway: s["gateway_ip"].as_str().map(str::to_owned),
                    enable_dhcp: s["enable_dhcp"].as_bool().unwrap_or(true),
                    ipv6_address_mode: s["ipv6_address_mode"].as_str().map(str::to_owned),
                    dns_nameservers: strings(&s["dns_nameservers"]),
                    host_routes: s["host_routes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| {
                            Some((
                                r["destination"].as_str()?.to_owned(),
                                r["nexthop"].as_str()?.to_owned(),
                            ))
                        })
                        .collect(),
                });
            }
            interfaces.push(NetworkInterface {
                port_id: v.port_id.clone(),
                network_id: v.network_id.clone(),
                mac_address: v.mac_address.clone(),
                mtu: v.mtu,
                vif_type: port["binding:vif_type"]
                    .as_str()
                    .filter(|t| !t.is_empty() && *t != "unbound")
                    .unwrap_or("bridge")
                    .to_owned(),
                fixed_ips,
            });
            for fip in self
                .network
                .list("floatingips", &[("port_id", v.port_id.as_str())])
                .await?
            {
                if let Some(a) = fip["floating_ip_address"].as_str() {
                    floating_ips.push(a.to_owned());
                }
            }
        }
        let public_keys = match (&i.key_name, &i.key_data) {
            (Some(name), Some(data)) => vec![PublicKey {
                name: name.clone(),
                key_type: if data.starts_with("-----BEGIN CERTIFICATE") {
                    "x509".into()
                } else {
                    "ssh".into()
                },
                data: data.clone(),
            }],
            _ => Vec::new(),
        };
        Ok(InstanceMetadata {
            uuid: i.id.clone(),
            name: i.name.clone(),
            hostname: i.hostname(),
            project_id: i.project_id.clone(),
            availability_zone: i.availability_zone.clone(),
            launch_index: i.launch_index,
            reservation_id: i.reservation_id.clone(),
            instance_name: i.instance_name.clone(),
            flavor_name: i.flavor.name.clone(),
            image_id: i.image_ref.clone(),
            created_at: i.created_at.clone(),
            meta: i.metadata.clone(),
            public_keys,
            user_data_b64: i.user_data.clone(),
            interfaces,
            floating_ips,
            security_groups: i.security_groups.clone(),
            vendor_data: self.vendor_data(),
            root_device_name: Some("/dev/vda".into()),
            // Only a config drive carries it (see `config_drive_for`).
            admin_pass: None,
        })
    }

    /// The operator's static vendor data (`[metadata] vendordata_jsonfile_path`).
    fn vendor_data(&self) -> Value {
        let path = &self.config.metadata.vendordata_jsonfile_path;
        if path.is_empty() {
            return Value::Object(Default::default());
        }
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| {
                tracing::warn!(path = %path, "vendor data is not a JSON object; serving {{}}");
                Value::Object(Default::default())
            })
    }

    /// A live instance by id (deleted ones are not served).
    async fn live_instance(&self, id: &str) -> Result<Option<Instance>> {
        Ok(store::instances::get(&self.db, id)
            .await?
            .filter(|i| !i.deleted))
    }
}

/// The compute service as the metadata API's source of instances.
pub struct ComputeMetadataSource(pub Arc<ComputeService>);

fn source_err(e: Error) -> String {
    e.message().to_owned()
}

#[async_trait::async_trait]
impl MetadataSource for ComputeMetadataSource {
    async fn instance(&self, id: &str) -> std::result::Result<Option<InstanceMetadata>, String> {
        let Some(i) = self.0.live_instance(id).await.map_err(source_err)? else {
            return Ok(None);
        };
        self.0
            .instance_metadata(&i)
            .await
            .map(Some)
            .map_err(source_err)
    }

    async fn password(&self, id: &str) -> std::result::Result<Option<String>, String> {
        Ok(self
            .0
            .live_instance(id)
            .await
            .map_err(source_err)?
            .and_then(|i| i.guest_password))
    }

    async fn set_password(&self, id: &str, password: &str) -> std::result::Result<bool, String> {
        let mut stored = false;
        store::instances::update(&self.0.db, id, |x| {
            stored = false;
            if x.guest_password.is_none() {
                x.guest_password = Some(password.to_owned());
                stored = true;
            }
            Ok(())
        })
        .await
        .map_err(source_err)?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_names_from_display_names() {
        assert_eq!(super::sanitize_hostname("vm1", "x"), "vm1");
        assert_eq!(
            super::sanitize_hostname("My Server_1.a", "x"),
            "my-server-1-a"
        );
        assert_eq!(super::sanitize_hostname("!!!", "abc"), "server-abc");
        assert_eq!(super::sanitize_hostname(&"a".repeat(100), "x").len(), 63);
    }
}
