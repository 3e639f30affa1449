//! The body of `POST /servers` as Nova's v2.1 schema has it: the typed
//! form the API extracts (a wrong type or an unknown field is a 400 naming
//! it) and `create_servers` validates further.

use crate::api::body::{BoolOrString, IntOrString};
use schemars::JsonSchema;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, JsonSchema)]
pub struct CreateServerBody {
    pub server: ServerCreate,
    /// Nova takes the hints under either name; openstacksdk sends the
    /// second.
    #[serde(
        default,
        rename = "os:scheduler_hints",
        alias = "OS-SCH-HNT:scheduler_hints"
    )]
    pub scheduler_hints: Option<SchedulerHints>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerCreate {
    #[schemars(length(min = 1, max = 255), regex(pattern = r"\S"))]
    pub name: String,
    /// Absent or empty when the image comes as a block device mapping.
    #[serde(default, rename = "imageRef")]
    pub image_ref: Option<IntOrString>,
    #[serde(rename = "flavorRef")]
    pub flavor_ref: IntOrString,
    #[serde(default, rename = "adminPass")]
    pub admin_pass: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "crate::api::body::optional_metadata")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub networks: Option<Networks>,
    /// Accepted and ignored: every disk here is `MANUAL`.
    #[serde(default, rename = "OS-DCF:diskConfig")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub disk_config: Option<IgnoredAny>,
    /// From 2.19; `null` or absent for none.
    #[serde(default, deserialize_with = "crate::api::body::present")]
    #[schemars(length(max = 255))]
    pub description: Option<Option<String>>,
    #[serde(default, rename = "accessIPv4")]
    pub access_ip_v4: Option<String>,
    #[serde(default, rename = "accessIPv6")]
    pub access_ip_v6: Option<String>,
    /// Accepted and ignored (file injection is not supported).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub personality: Option<IgnoredAny>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub user_data: Option<String>,
    #[serde(default)]
    pub security_groups: Option<Vec<SecurityGroupRef>>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// From 2.74 (admin): the host to boot on, the scheduler's filters
    /// still applied.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub host: Option<String>,
    /// From 2.74 (admin): the hypervisor (node) to boot on.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub hypervisor_hostname: Option<String>,
    #[serde(default)]
    pub config_drive: Option<BoolOrString>,
    #[serde(default)]
    pub min_count: Option<IntOrString>,
    #[serde(default)]
    pub max_count: Option<IntOrString>,
    #[serde(default)]
    pub return_reservation_id: Option<BoolOrString>,
    /// Volumes (v1 mappings) are refused: only `null` passes.
    #[serde(default)]
    #[schemars(with = "()")]
    pub block_device_mapping: Option<IgnoredAny>,
    #[serde(default)]
    pub block_device_mapping_v2: Option<Vec<BlockDeviceMapping>>,
    /// Set by the API from the version (2.60): whether a multiattach
    /// volume may be booted from.
    #[serde(skip)]
    #[schemars(skip)]
    pub multiattach_allowed: bool,
    /// Set by the API from the version (2.72): whether a port with a
    /// resource request (a minimum-bandwidth QoS policy) may be given.
    #[serde(skip)]
    #[schemars(skip)]
    pub resource_request_allowed: bool,
    /// From 2.63: certificate ids trusted to have signed the image.
    #[serde(default)]
    #[schemars(length(min = 1, max = 50))]
    pub trusted_image_certificates: Option<Vec<String>>,
    /// From 2.90: the guest's host name (an FQDN from 2.94).
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub hostname: Option<String>,
    /// From 2.52: server tags (at most 50).
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub tags: Option<Vec<String>>,
}

/// `"auto"`, `"none"` or a list of networks and ports.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Networks {
    #[schemars(extend("enum" = ["auto", "none"]))]
    Keyword(String),
    List(Vec<NetworkRequest>),
}

/// One network of a server: Nova's schema allows nothing else.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkRequest {
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub port: Option<String>,
    #[serde(default)]
    pub fixed_ip: Option<String>,
    /// A device tag (2.32, and from 2.42) the metadata service lists.
    #[serde(default)]
    #[schemars(length(max = 60), regex(pattern = r"^[^,/]*$"))]
    pub tag: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct SecurityGroupRef {
    pub name: String,
}

/// A v2 mapping: a local image or blank disk, or a volume (an existing
/// one, or one made from an image, a snapshot or nothing).
#[derive(Deserialize, JsonSchema)]
pub struct BlockDeviceMapping {
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub destination_type: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub boot_index: Option<IntOrString>,
    #[serde(default)]
    pub volume_size: Option<IntOrString>,
    #[serde(default)]
    pub delete_on_termination: Option<BoolOrString>,
    #[serde(default)]
    pub device_name: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    /// Accepted and ignored (every disk is virtio).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub disk_bus: Option<IgnoredAny>,
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub device_type: Option<IgnoredAny>,
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub guest_format: Option<IgnoredAny>,
    #[serde(default)]
    pub volume_type: Option<String>,
}

/// Only the server group is honoured by the scheduler; every hint is
/// kept with the server (2.100 shows them).
#[derive(Deserialize, JsonSchema)]
pub struct SchedulerHints {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl SchedulerHints {
    /// The hints as Nova's request spec keeps them: each value a list of
    /// strings.
    pub fn as_lists(&self) -> BTreeMap<String, serde_json::Value> {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut out: BTreeMap<String, serde_json::Value> = self
            .other
            .iter()
            .map(|(k, v)| {
                let items: Vec<String> = match v {
                    serde_json::Value::Array(a) => a.iter().map(text).collect(),
                    one => vec![text(one)],
                };
                (k.clone(), serde_json::json!(items))
            })
            .collect();
        if let Some(g) = &self.group {
            out.insert("group".into(), serde_json::json!([g]));
        }
        out
    }
}
