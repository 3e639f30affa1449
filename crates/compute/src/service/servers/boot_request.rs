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
    #[serde(default, rename = "os:scheduler_hints")]
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
}

/// `"auto"`, `"none"` or a list of networks and ports.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Networks {
    #[schemars(extend("enum" = ["auto", "none"]))]
    Keyword(String),
    List(Vec<NetworkRequest>),
}

#[derive(Deserialize, JsonSchema)]
pub struct NetworkRequest {
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub port: Option<String>,
    #[serde(default)]
    pub fixed_ip: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct SecurityGroupRef {
    pub name: String,
}

/// A v2 mapping; only a local image or blank disk is bootable here.
#[derive(Deserialize, JsonSchema)]
pub struct BlockDeviceMapping {
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub destination_type: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
}

/// Only the server group is honoured; other hints are accepted.
#[derive(Deserialize, JsonSchema)]
pub struct SchedulerHints {
    #[serde(default)]
    pub group: Option<String>,
}
