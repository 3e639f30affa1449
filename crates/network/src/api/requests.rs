//! Request bodies with a fixed shape, one type per operation, so that a
//! wrong type or a missing field is a 400 naming the field (core's `Json`).
//! Resource create and update bodies stay free-form JSON: their attributes
//! differ per resource kind and Neutron's own attribute validation (with
//! its messages) runs in the service; their schemas come from the same
//! attribute tables (`schemas`).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `PUT /routers/{id}/add_router_interface` and `…/remove_router_interface`.
#[derive(Deserialize, JsonSchema)]
pub struct RouterInterfaceRequest {
    pub subnet_id: Option<String>,
    pub port_id: Option<String>,
}

/// `PUT /{resources}/{id}/tags`.
#[derive(Deserialize, JsonSchema)]
pub struct TagsRequest {
    pub tags: Vec<String>,
}

/// `PUT /quotas/{project}`: resource name → limit (a number or a numeric
/// string, as Neutron accepts), plus `force`.
#[derive(Deserialize, JsonSchema)]
pub struct QuotaUpdateRequest {
    // A map, checked against the quota resources by the service, which
    // also generate its schema.
    #[schemars(schema_with = "super::schemas::quota_limits")]
    pub quota: Map<String, Value>,
}

/// `POST /agents/{id}/l3-routers`.
#[derive(Deserialize, JsonSchema)]
pub struct AddRouterToAgentRequest {
    pub router_id: String,
}

/// `POST /agents/{id}/dhcp-networks`.
#[derive(Deserialize, JsonSchema)]
pub struct AddNetworkToAgentRequest {
    pub network_id: String,
}

/// The resource an agent is asked to host.
pub trait HostedResource {
    fn hosted_id(&self) -> &str;
}

impl HostedResource for AddRouterToAgentRequest {
    fn hosted_id(&self) -> &str {
        &self.router_id
    }
}

impl HostedResource for AddNetworkToAgentRequest {
    fn hosted_id(&self) -> &str {
        &self.network_id
    }
}
