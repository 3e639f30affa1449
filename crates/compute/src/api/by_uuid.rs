//! 2.53: services and hypervisors are named by UUID. A service is updated
//! with `PUT /os-services/{uuid}` and a body of what changes (no more
//! `enable`/`disable`/`force-down` paths); the hypervisor list takes
//! `hypervisor_hostname_pattern` and `with_servers` in place of the old
//! `/search` and `/servers` paths.

use super::{query_get, ApiVersion, Svc};
use crate::scheduler::COMPUTE_BINARY;
use crate::store::{self, hosts::ComputeNode, hosts::ServiceRow};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

/// The service `id` names (a UUID: anything else is Nova's 400).
pub async fn service(svc: &Svc, id: &str) -> Result<ServiceRow> {
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(Error::BadRequest(format!("Invalid uuid {id}")));
    }
    store::hosts::list_services(&svc.db)
        .await?
        .into_iter()
        .find(|s| s.uuid == id)
        .ok_or_else(|| Error::NotFound(format!("Service {id} could not be found.")))
}

/// Apply a 2.53 update: `status` (with an optional `disabled_reason` when
/// disabling) and `forced_down`, to a compute service only.
pub async fn update_service(
    svc: &Svc,
    s: ServiceRow,
    body: ServiceUpdateBody,
) -> Result<ServiceRow> {
    if body.host.is_some() || body.binary.is_some() {
        let field = if body.host.is_some() {
            "host"
        } else {
            "binary"
        };
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute service. Additional properties are not allowed ('{field}' was unexpected)"
        )));
    }
    let disable = match body.status.as_deref() {
        None => None,
        Some("enabled") => Some(false),
        Some("disabled") => Some(true),
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute status. Value: {other}. '{other}' is not one of ['enabled', 'disabled']"
            )))
        }
    };
    if body.disabled_reason.is_some() && disable != Some(true) {
        return Err(Error::BadRequest(
            "Specifying 'disabled_reason' with status other than 'disabled' is invalid.".into(),
        ));
    }
    if disable.is_none() && body.forced_down.is_none() {
        return Err(Error::BadRequest(
            "No updates were requested. Fields 'status' or 'forced_down' should be specified."
                .into(),
        ));
    }
    if s.binary != COMPUTE_BINARY {
        return Err(Error::BadRequest(format!(
            "Updating a {} service is not supported. Only nova-compute services can be updated.",
            s.binary
        )));
    }
    let disabled = disable.map(|d| (d, body.disabled_reason.filter(|_| d)));
    store::hosts::update_service(&svc.db, s.id, disabled, body.forced_down).await?;
    store::hosts::get_service_by_id(&svc.db, s.id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Service {} could not be found.", s.uuid)))
}

/// `with_servers` as Nova's boolean query parameter.
pub fn with_servers(q: &[(String, String)]) -> Result<bool> {
    match query_get(q, "with_servers")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => Ok(false),
        Some("true" | "1" | "yes" | "on" | "t" | "y") => Ok(true),
        Some("false" | "0" | "no" | "off" | "f" | "n") => Ok(false),
        Some(v) => Err(Error::BadRequest(format!(
            "Invalid input for query parameters with_servers. Value: {v}. Invalid boolean"
        ))),
    }
}

/// Keep the hypervisors whose hostname contains the list's
/// `hypervisor_hostname_pattern` (none matching is Nova's 404; paging a
/// pattern search is refused).
pub fn filter_by_pattern(
    rows: &mut Vec<(ComputeNode, Option<ServiceRow>)>,
    q: &[(String, String)],
) -> Result<()> {
    let Some(pattern) = query_get(q, "hypervisor_hostname_pattern") else {
        return Ok(());
    };
    if query_get(q, "limit").is_some() || query_get(q, "marker").is_some() {
        return Err(Error::BadRequest(
            "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.".into(),
        ));
    }
    rows.retain(|(n, _)| n.hypervisor_hostname.contains(pattern));
    if rows.is_empty() {
        return Err(Error::NotFound(format!(
            "No hypervisor matching '{pattern}' could be found."
        )));
    }
    Ok(())
}

/// The `servers` of a hypervisor's view (each one's `uuid` and `name`),
/// left out when it runs none, as Nova's.
/// The servers on a hypervisor (`with_servers`); before 2.75 the key is
/// left out when there are none.
pub async fn add_servers(
    svc: &Svc,
    view: &mut Value,
    host: &str,
    version: ApiVersion,
) -> Result<()> {
    let servers: Vec<Value> = store::instances::on_host(&svc.db, host)
        .await?
        .iter()
        .map(|i| json!({"uuid": i.id, "name": i.instance_name}))
        .collect();
    if !servers.is_empty() || version >= (2, 75) {
        view["servers"] = json!(servers);
    }
    Ok(())
}

/// The body of `PUT /os-services/{action}` (`host`, `binary`) and, from
/// 2.53, of `PUT /os-services/{uuid}` (`status`, `disabled_reason`,
/// `forced_down`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceUpdateBody {
    #[serde(default)]
    pub(super) host: Option<String>,
    #[serde(default)]
    pub(super) binary: Option<String>,
    /// From 2.53: `enabled` or `disabled`.
    #[serde(default)]
    #[schemars(extend("enum" = ["enabled", "disabled", null]))]
    pub(super) status: Option<String>,
    /// `disable-log-reason`'s reason (from 2.53: with `status: disabled`).
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub(super) disabled_reason: Option<String>,
    /// `force-down`'s state.
    #[serde(default)]
    pub(super) forced_down: Option<bool>,
}
