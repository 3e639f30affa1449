//! What a guest learns about itself: the metadata service (Nova's metadata
//! API on 8775, reached through the network agents' signing proxy) and the
//! config drive (the same documents on an ISO 9660 volume labelled
//! `config-2`). Both render one [`InstanceMetadata`]; the control plane
//! fills it from its records, the compute agent writes the drive.
//!
//! - [`openstack`]: the OpenStack format (`/openstack/<version>/…`:
//!   `meta_data.json`, `network_data.json`, vendor data, user data).
//! - [`ec2`]: the EC2 format (`/<version>/meta-data/…`, `user-data`).
//! - [`lookup`]: a request path to a document or a listing, as Nova's
//!   `InstanceMetadata.lookup` resolves it.
//! - [`api`]: the HTTP service behind the signing proxy ([`router`]).
//! - [`signature`]: the proxy's `X-Instance-ID-Signature`.
//! - [`config_drive`]: the same documents on an ISO 9660 volume
//!   ([`build_config_drive`]).

pub mod api;
pub mod config_drive;
pub mod ec2;
pub mod lookup;
pub mod openstack;
pub mod signature;

pub use api::{router, MetadataSource};
pub use config_drive::build_config_drive;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A key pair injected into the guest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub name: String,
    /// `ssh` or `x509`.
    #[serde(rename = "type")]
    pub key_type: String,
    pub data: String,
}

/// One fixed address of a port, with what its subnet says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub address: String,
    /// 4 or 6.
    pub version: u8,
    pub subnet_id: String,
    /// The subnet's CIDR (`10.0.0.0/24`).
    pub cidr: String,
    pub gateway: Option<String>,
    pub enable_dhcp: bool,
    /// `slaac`, `dhcpv6-stateful`, … for IPv6 subnets.
    pub ipv6_address_mode: Option<String>,
    pub dns_nameservers: Vec<String>,
    /// Extra routes of the subnet: (destination CIDR, next hop).
    pub host_routes: Vec<(String, String)>,
}

/// One network interface of the guest (a Neutron port).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
    pub port_id: String,
    pub network_id: String,
    pub mac_address: String,
    pub mtu: Option<u32>,
    /// Neutron's `binding:vif_type` (`bridge`, `tap`, …): network_data.json's link type.
    pub vif_type: String,
    pub fixed_ips: Vec<FixedIp>,
}

/// Everything the metadata service and the config drive tell one guest.
///
/// Every field has a default when absent from its serialized form, so
/// messages of an older sender still decode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstanceMetadata {
    pub uuid: String,
    /// The server's display name.
    pub name: String,
    /// The guest's host name (Nova's `hostname`, from the display name).
    pub hostname: String,
    pub project_id: String,
    pub availability_zone: String,
    pub launch_index: i64,
    pub reservation_id: String,
    /// Nova's `instance-0000002a`; the EC2 id is derived from its number.
    pub instance_name: String,
    /// The flavor's name (EC2 `instance-type`).
    pub flavor_name: String,
    /// The image the guest booted from (EC2 `ami-id` is derived from it).
    pub image_id: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The server's metadata (`meta` in meta_data.json).
    pub meta: BTreeMap<String, String>,
    pub public_keys: Vec<PublicKey>,
    /// User data exactly as the API received it: base64 text.
    pub user_data_b64: Option<String>,
    pub interfaces: Vec<NetworkInterface>,
    /// Floating IPs associated with the guest's ports.
    pub floating_ips: Vec<String>,
    pub security_groups: Vec<String>,
    /// The operator's static vendor data (JSON object; `{}` when none).
    pub vendor_data: serde_json::Value,
    /// The root disk's device (`/dev/vda` when absent): EC2
    /// `block-device-mapping/ami` and `root`.
    pub root_device_name: Option<String>,
    /// The admin password Nova passes to a config drive only (`admin_pass`
    /// in its `meta_data.json`); the metadata service never shows it.
    pub admin_pass: Option<String>,
}

/// Python's lenient `b64decode` as Nova applies it to user data: padding
/// optional, whitespace (line breaks of wrapped base64) ignored.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl InstanceMetadata {
    /// The user data as the guest gets it: the decoded bytes (`None` when
    /// the server has none).
    pub fn user_data(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(text) = &self.user_data_b64 else {
            return Ok(None);
        };
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        LENIENT_BASE64
            .decode(compact)
            .map(Some)
            .map_err(|e| format!("user data is not base64: {e}"))
    }

    /// [`user_data`](Self::user_data) for rendering: undecodable user data
    /// (the compute API refuses it, so only a broken record has it) is
    /// logged and treated as none.
    pub(crate) fn user_data_lossy(&self) -> Option<Vec<u8>> {
        match self.user_data() {
            Ok(data) => data,
            Err(e) => {
                tracing::warn!(instance = %self.uuid, error = %e, "ignoring user data");
                None
            }
        }
    }

    /// The static vendor data as a JSON document (`{}` when unset).
    pub(crate) fn static_vendor_data(&self) -> serde_json::Value {
        if self.vendor_data.is_null() {
            serde_json::json!({})
        } else {
            self.vendor_data.clone()
        }
    }
}

/// An instance with two ports (IPv4 with DHCP, IPv6 SLAAC), a key, user
/// data and metadata, for the unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn two_port_instance() -> InstanceMetadata {
        InstanceMetadata {
            uuid: "8a1b7a26-6a3f-4f8c-9f3e-0d6f6c1e2b01".into(),
            name: "web 1".into(),
            hostname: "web-1".into(),
            project_id: "p-a".into(),
            availability_zone: "nova".into(),
            launch_index: 0,
            reservation_id: "r-abcd1234".into(),
            instance_name: "instance-0000002a".into(),
            flavor_name: "m1.tiny".into(),
            image_id: "3f1e3b4c-0000-4000-8000-000000000001".into(),
            created_at: "2024-01-02T03:04:05Z".into(),
            meta: BTreeMap::from([("role".to_owned(), "web".to_owned())]),
            public_keys: vec![PublicKey {
                name: "mykey".into(),
                key_type: "ssh".into(),
                data: "ssh-ed25519 AAAA mykey".into(),
            }],
            // "#cloud-config\nhostname: a\n"
            user_data_b64: Some("I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogYQo=".into()),
            interfaces: vec![
                NetworkInterface {
                    port_id: "11111111-2222-3333-4444-555555555555".into(),
                    network_id: "net-a".into(),
                    mac_address: "fa:16:3e:00:00:01".into(),
                    mtu: Some(1500),
                    vif_type: "bridge".into(),
                    fixed_ips: vec![FixedIp {
                        address: "10.0.0.5".into(),
                        version: 4,
                        subnet_id: "sub-a".into(),
                        cidr: "10.0.0.0/24".into(),
                        gateway: Some("10.0.0.1".into()),
                        enable_dhcp: true,
                        ipv6_address_mode: None,
                        dns_nameservers: vec!["10.0.0.53".into()],
                        host_routes: vec![],
                    }],
                },
                NetworkInterface {
                    port_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
                    network_id: "net-b".into(),
                    mac_address: "fa:16:3e:00:00:02".into(),
                    mtu: Some(1450),
                    vif_type: "other".into(),
                    fixed_ips: vec![FixedIp {
                        address: "fd00:1::f816:3eff:fe00:2".into(),
                        version: 6,
                        subnet_id: "sub-b".into(),
                        cidr: "fd00:1::/64".into(),
                        gateway: Some("fd00:1::1".into()),
                        enable_dhcp: true,
                        ipv6_address_mode: Some("slaac".into()),
                        dns_nameservers: vec!["fd00:1::53".into()],
                        host_routes: vec![("fd00:2::/64".into(), "fd00:1::fe".into())],
                    }],
                },
            ],
            floating_ips: vec!["172.24.4.10".into()],
            security_groups: vec!["default".into(), "web".into()],
            vendor_data: serde_json::Value::Null,
            root_device_name: None,
            admin_pass: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_decoded_leniently() {
        let mut md = InstanceMetadata::default();
        assert_eq!(md.user_data(), Ok(None));
        md.user_data_b64 = Some("I2Nsb3VkLWNvbmZp\nZwpob3N0bmFtZTogYQo=".into());
        assert_eq!(
            md.user_data().unwrap().unwrap(),
            b"#cloud-config\nhostname: a\n"
        );
        md.user_data_b64 = Some("I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogYQo".into());
        assert_eq!(
            md.user_data().unwrap().unwrap(),
            b"#cloud-config\nhostname: a\n"
        );
        md.user_data_b64 = Some("not base64!".into());
        assert!(md.user_data().is_err());
        assert_eq!(md.user_data_lossy(), None);
    }

    #[test]
    fn old_messages_decode() {
        let md: InstanceMetadata =
            serde_json::from_value(serde_json::json!({"uuid": "u", "name": "n"})).unwrap();
        assert_eq!(md.uuid, "u");
        assert_eq!(md.root_device_name, None);
    }
}
