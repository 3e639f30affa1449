//! The legacy attach actions of `POST /volumes/{id}/action` (`os-reserve`,
//! `os-initialize_connection`, `os-attach`, `os-detach`, …), their request
//! bodies, and what attachments add to the volume view (`attachments` and
//! the versioned fields).

use super::microversion::ApiVersion;
use super::Svc;
use crate::attach::AttachRequest;
use crate::store::attachments::AttachStatus;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// `os-initialize_connection` / `os-terminate_connection`.
#[derive(Deserialize, JsonSchema)]
pub struct ConnectorBody {
    pub connector: Option<Map<String, Value>>,
}

/// `os-attach`: to an instance or to a host, never both.
#[derive(Deserialize, JsonSchema)]
pub struct AttachBody {
    pub instance_uuid: Option<String>,
    pub host_name: Option<String>,
    pub mountpoint: Option<String>,
    /// `rw` (default) or `ro`.
    pub mode: Option<String>,
}

/// `os-detach` / `os-force_detach`.
#[derive(Deserialize, JsonSchema)]
pub struct DetachBody {
    pub attachment_id: Option<String>,
    pub connector: Option<Map<String, Value>>,
}

/// An attach action, as `volumes::volume_action` hands it over.
pub enum Legacy {
    Reserve,
    Unreserve,
    BeginDetaching,
    RollDetaching,
    InitializeConnection(ConnectorBody),
    TerminateConnection(ConnectorBody),
    Attach(AttachBody),
    Detach(Option<DetachBody>, bool),
}

fn connector_of(b: ConnectorBody) -> Result<Value> {
    b.connector.map(Value::Object).ok_or_else(|| {
        Error::BadRequest("Invalid input received: Must specify 'connector'.".into())
    })
}

fn attach_request(b: AttachBody) -> Result<AttachRequest> {
    let mode = b.mode.unwrap_or_else(|| "rw".into());
    if mode != "rw" && mode != "ro" {
        return Err(Error::BadRequest(
            "Invalid request to attach volume with an invalid mode. Attaching mode should be 'rw' or 'ro'".into(),
        ));
    }
    match (&b.instance_uuid, &b.host_name) {
        (Some(i), Some(h)) => {
            return Err(Error::BadRequest(format!(
                "Invalid request to attach volume to an instance {i} and a host {h} simultaneously"
            )))
        }
        (None, None) => {
            return Err(Error::BadRequest(
                "Invalid request to attach volume to an invalid target".into(),
            ))
        }
        (Some(i), None) if uuid::Uuid::parse_str(i).is_err() => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute instance_uuid. Value: {i}. '{i}' is not a 'uuid'"
            )))
        }
        _ => {}
    }
    Ok(AttachRequest {
        instance_uuid: b.instance_uuid,
        host_name: b.host_name,
        mountpoint: b.mountpoint,
        mode,
    })
}

/// Run one legacy action: 202, or 200 with the connection for
/// `os-initialize_connection`.
pub async fn run(svc: &Svc, ctx: &AuthContext, id: &str, action: Legacy) -> Result<Response> {
    match action {
        Legacy::Reserve => svc.reserve(ctx, id).await?,
        Legacy::Unreserve => svc.unreserve(ctx, id).await?,
        Legacy::BeginDetaching => svc.begin_detaching(ctx, id).await?,
        Legacy::RollDetaching => svc.roll_detaching(ctx, id).await?,
        Legacy::InitializeConnection(b) => {
            let info = svc
                .initialize_connection(ctx, id, &connector_of(b)?)
                .await?;
            return Ok(axum::Json(json!({ "connection_info": info })).into_response());
        }
        Legacy::TerminateConnection(b) => {
            connector_of(b)?;
            svc.terminate_connection(ctx, id).await?
        }
        Legacy::Attach(b) => svc.attach(ctx, id, attach_request(b)?).await?,
        Legacy::Detach(b, force) => {
            // The connector is Cinder's hint for the driver's terminate;
            // an NBD export needs none.
            let aid = b.and_then(|b| {
                drop(b.connector);
                b.attachment_id
            });
            svc.detach(ctx, id, aid.as_deref(), force).await?
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Fill in what attachments and the microversion add to volume views:
/// `attachments` (the attached ones, as Cinder lists them) and the
/// versioned fields (3.13 `group_id`, 3.48 `shared_targets` /
/// `service_uuid`, …). The attachment's own `attach_status` is in the
/// attachments API: Cinder's volume view has none (tempest's schema
/// refuses unknown keys).
pub async fn decorate(svc: &Svc, version: ApiVersion, views: &mut [&mut Value]) -> Result<()> {
    let ids: Vec<String> = views
        .iter()
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let by_volume = svc.attachments_by_volume(&refs).await?;
    let service_uuid = service_uuid(svc);
    for view in views.iter_mut() {
        let id = view["id"].as_str().unwrap_or_default().to_owned();
        let atts = by_volume.get(&id).map(Vec::as_slice).unwrap_or_default();
        view["attachments"] = atts
            .iter()
            .filter(|a| a.status == AttachStatus::Attached)
            .map(|a| {
                json!({
                    "server_id": a.instance_uuid,
                    "attachment_id": a.id,
                    "attached_at": a.attach_time,
                    "host_name": a.attached_host,
                    "volume_id": a.volume_id,
                    "device": a.mountpoint,
                    "id": a.volume_id,
                })
            })
            .collect();
        if version < (3, 13) {
            if let Some(o) = view.as_object_mut() {
                o.remove("group_id");
            }
        }
        if version >= (3, 48) {
            view["shared_targets"] = json!(false);
            view["service_uuid"] = json!(service_uuid);
        }
        if version >= (3, 63) {
            if let Some(t) = view.get("volume_type").cloned() {
                let types = svc.type_names().await?;
                let tid = types.iter().find(|(_, n)| json!(n) == t).map(|(i, _)| i);
                view["volume_type_id"] = json!(tid);
            }
        }
        if version >= (3, 64) {
            view["encryption_key_id"] = Value::Null;
        }
        if version >= (3, 65) {
            view["consumes_quota"] = json!(true);
        }
    }
    Ok(())
}

/// The volume service's id (Cinder's `service_uuid`): stable per host and
/// backend, derived from them.
fn service_uuid(svc: &Svc) -> String {
    let name = format!(
        "cinder-volume:{}@{}",
        svc.config.common.host,
        svc.backend.name()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}
