//! `/servers/{id}/os-interface`: list, show, attach and detach a server's
//! network interfaces. The request body is typed: unknown fields, both a
//! port and a network, or addresses without a network answer 400.

use super::{ApiVersion, Svc};
use crate::service::servers::interfaces::AttachRequest;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedIpRequest {
    pub ip_address: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InterfaceAttachment {
    pub port_id: Option<String>,
    pub net_id: Option<String>,
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    /// From 2.49: a device tag, kept with the interface (its view shows
    /// it from 2.70).
    #[serde(default)]
    #[schemars(length(max = 60), regex(pattern = r"^[^,/]*$"))]
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    #[serde(rename = "interfaceAttachment", default)]
    pub interface_attachment: Option<InterfaceAttachment>,
}

impl InterfaceAttachment {
    fn into_request(self) -> Result<AttachRequest> {
        if self.port_id.is_some() && self.net_id.is_some() {
            return Err(Error::BadRequest(
                "Must not input both network_id and port_id".into(),
            ));
        }
        let ips = self.fixed_ips.unwrap_or_default();
        if !ips.is_empty() && self.net_id.is_none() {
            return Err(Error::BadRequest(
                "Must input network_id when request IP address".into(),
            ));
        }
        if ips.len() > 1 {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute fixed_ips. Only one address may be requested."
                    .into(),
            ));
        }
        let fixed_ip = match ips.into_iter().next() {
            Some(f) => {
                f.ip_address.parse::<std::net::IpAddr>().map_err(|_| {
                    Error::BadRequest(format!(
                        "Invalid input for field/attribute ip_address. Value: {}. '{}' is not a 'ip-address'",
                        f.ip_address, f.ip_address
                    ))
                })?;
                Some(f.ip_address)
            }
            None => None,
        };
        Ok(AttachRequest {
            port_id: self.port_id,
            net_id: self.net_id,
            fixed_ip,
            tag: self.tag,
        })
    }
}

fn ok(v: serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// An interface as the version shows it: its `tag` from 2.70.
fn versioned(mut view: Value, version: ApiVersion) -> Value {
    if version < (2, 70) {
        if let Some(o) = view.as_object_mut() {
            o.remove("tag");
        }
    }
    view
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-attach-interfaces:list")
        .await?;
    let list: Vec<Value> = svc
        .interfaces(&i)
        .await?
        .into_iter()
        .map(|v| versioned(v, version))
        .collect();
    Ok(ok(json!({ "interfaceAttachments": list })))
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, port)): Path<(String, String)>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-attach-interfaces:show")
        .await?;
    let view = versioned(svc.interface(&i, &port).await?, version);
    Ok(ok(json!({ "interfaceAttachment": view })))
}

pub async fn attach(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<AttachBody>,
) -> Result<Response> {
    let attachment = body.interface_attachment.unwrap_or_default();
    if let Some(tag) = &attachment.tag {
        if version < (2, 49) {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute interfaceAttachment. Additional properties are not allowed ('tag' was unexpected)".into(),
            ));
        }
        super::create_schema::check_device_tag(tag)?;
    }
    let req = attachment.into_request()?;
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-attach-interfaces:create")
        .await?;
    let view = svc.attach_interface(&ctx, &i, req).await?;
    Ok(ok(
        json!({ "interfaceAttachment": versioned(view, version) }),
    ))
}

pub async fn detach(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, port)): Path<(String, String)>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-attach-interfaces:delete")
        .await?;
    svc.detach_interface(&ctx, &i, &port).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<AttachRequest> {
        let b: AttachBody =
            serde_json::from_value(v).map_err(|e| Error::BadRequest(e.to_string()))?;
        b.interface_attachment.unwrap_or_default().into_request()
    }

    #[test]
    fn attach_requests_are_checked() {
        assert_eq!(
            parse(json!({"interfaceAttachment": {"port_id": "p"}}))
                .unwrap()
                .port_id
                .as_deref(),
            Some("p")
        );
        let r = parse(json!({"interfaceAttachment": {"net_id": "n", "fixed_ips": [{"ip_address": "10.0.0.9"}]}})).unwrap();
        assert_eq!(r.fixed_ip.as_deref(), Some("10.0.0.9"));
        assert!(parse(json!({"interfaceAttachment": {"port_id": "p", "net_id": "n"}})).is_err());
        assert!(
            parse(json!({"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.0.0.9"}]}}))
                .is_err()
        );
        assert!(parse(
            json!({"interfaceAttachment": {"net_id": "n", "fixed_ips": [{"ip_address": "x"}]}})
        )
        .is_err());
        assert!(parse(json!({"interfaceAttachment": {"nic": "x"}})).is_err());
        assert_eq!(parse(json!({})).unwrap(), AttachRequest::default());
    }
}
