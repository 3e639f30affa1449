//! `/servers/{id}/os-volume_attachments`: list, show, attach, update
//! (swap, refused here) and detach a server's volumes. Fields that came
//! with a microversion (`tag` 2.49, `delete_on_termination` 2.79) are
//! refused below it as Nova's schema does; the views change where Nova's
//! did (2.70, 2.79, 2.89).

use super::body::BoolOrString;
use super::{ApiVersion, Svc};
use crate::service::servers::volumes::VolumeAttachRequest;
use crate::store::{bdms::Bdm, instances::Instance};
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
pub struct AttachFields {
    #[serde(rename = "volumeId")]
    pub volume_id: String,
    #[serde(default)]
    pub device: Option<String>,
    /// From 2.49.
    #[serde(default)]
    #[schemars(length(max = 60))]
    pub tag: Option<String>,
    /// From 2.79.
    #[serde(default)]
    pub delete_on_termination: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    #[serde(rename = "volumeAttachment")]
    pub volume_attachment: AttachFields,
}

/// `PUT`: the volume to swap to, and from 2.85 the attachment's fields
/// (as its view shows them; only `delete_on_termination` may change).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFields {
    #[serde(rename = "volumeId")]
    pub volume_id: String,
    #[serde(default)]
    pub delete_on_termination: Option<BoolOrString>,
    #[serde(default, deserialize_with = "super::body::present")]
    pub device: Option<Option<String>>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default, rename = "serverId")]
    pub server_id: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
}

impl UpdateFields {
    /// The fields given besides `volumeId` (refused before 2.85).
    fn others(&self) -> Option<&'static str> {
        [
            (
                "delete_on_termination",
                self.delete_on_termination.is_some(),
            ),
            ("device", self.device.is_some()),
            ("tag", self.tag.is_some()),
            ("serverId", self.server_id.is_some()),
            ("id", self.id.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }

    /// 2.85: the fields that must match the attachment as it is, and the
    /// new `delete_on_termination` (a strict boolean), if given.
    fn checked(&self, i: &Instance, b: &Bdm) -> Result<Option<bool>> {
        let immutable = |field: &str| {
            Err(Error::BadRequest(format!(
                "The {field} property is not mutable"
            )))
        };
        if self.id.as_ref().is_some_and(|id| *id != b.volume_id) {
            return immutable("id");
        }
        if self.server_id.as_ref().is_some_and(|s| *s != i.id) {
            return immutable("serverId");
        }
        if self
            .device
            .as_ref()
            .is_some_and(|d| d.as_deref() != Some(b.device_name.as_str()))
        {
            return immutable("device");
        }
        if self.tag.is_some() && self.tag != b.tag {
            return immutable("tag");
        }
        match &self.delete_on_termination {
            None => Ok(None),
            Some(BoolOrString::Bool(v)) => Ok(Some(*v)),
            Some(BoolOrString::Text(t)) => match t.to_ascii_lowercase().as_str() {
                "1" | "t" | "true" | "on" | "y" | "yes" => Ok(Some(true)),
                "0" | "f" | "false" | "off" | "n" | "no" => Ok(Some(false)),
                _ => Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute delete_on_termination. Value: {t}. '{t}' is not a 'boolean'"
                ))),
            },
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(rename = "volumeAttachment")]
    pub volume_attachment: UpdateFields,
}

fn unexpected(field: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input for field/attribute volumeAttachment. Value: {{...}}. Additional properties are not allowed ('{field}' was unexpected)"
    ))
}

fn check_uuid(field: &str, value: &str) -> Result<()> {
    uuid::Uuid::parse_str(value).map(|_| ()).map_err(|_| {
        Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {value}. '{value}' is not a 'uuid'"
        ))
    })
}

impl AttachFields {
    fn into_request(self, version: ApiVersion) -> Result<VolumeAttachRequest> {
        if self.tag.is_some() && version < (2, 49) {
            return Err(unexpected("tag"));
        }
        if self.delete_on_termination.is_some() && version < (2, 79) {
            return Err(unexpected("delete_on_termination"));
        }
        check_uuid("volumeId", &self.volume_id)?;
        if let Some(t) = &self.tag {
            if t.chars().count() > 60 || t.contains('/') || t.contains(',') {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute tag. Value: {t}."
                )));
            }
        }
        Ok(VolumeAttachRequest {
            volume_id: self.volume_id,
            device: self.device,
            tag: self.tag,
            delete_on_termination: self.delete_on_termination.unwrap_or(false),
            multiattach_allowed: version >= (2, 60),
            shelved_allowed: version >= (2, 20),
        })
    }
}

/// Nova's `volumeAttachment` view at `version`.
pub fn attachment_view(version: ApiVersion, i: &Instance, b: &Bdm) -> Value {
    let mut v = json!({"serverId": i.id, "volumeId": b.volume_id, "device": b.device_name});
    if version < (2, 89) {
        v["id"] = json!(b.volume_id);
    }
    if version >= (2, 70) {
        v["tag"] = json!(b.tag);
    }
    if version >= (2, 79) {
        v["delete_on_termination"] = json!(b.delete_on_termination);
    }
    if version >= (2, 89) {
        v["attachment_id"] = json!(b.attachment_id);
        v["bdm_uuid"] = json!(b.id);
    }
    v
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-volumes-attachments:index")
        .await?;
    let views: Vec<Value> = svc
        .volume_attachments(&i)
        .into_iter()
        .map(|b| attachment_view(version, &i, b))
        .collect();
    Ok(ok(json!({ "volumeAttachments": views })))
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, volume)): Path<(String, String)>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-volumes-attachments:show")
        .await?;
    let b = svc.volume_attachment(&i, &volume)?;
    Ok(ok(
        json!({ "volumeAttachment": attachment_view(version, &i, b) }),
    ))
}

pub async fn attach(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<AttachBody>,
) -> Result<Response> {
    let req = body.volume_attachment.into_request(version)?;
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-volumes-attachments:create")
        .await?;
    let b = svc.attach_volume(&ctx, &i, req).await?;
    Ok(ok(
        json!({ "volumeAttachment": attachment_view(version, &i, &b) }),
    ))
}

/// `PUT`: before 2.85 only a swap (admin); from 2.85 the attachment's
/// `delete_on_termination` changes (project member), and a different
/// `volumeId` is a swap. Swapping needs a driver that copies a guest's
/// disk while it runs; it is refused (501) once the request is checked.
pub async fn update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, volume)): Path<(String, String)>,
    Json(body): Json<UpdateBody>,
) -> Result<Response> {
    let fields = body.volume_attachment;
    check_uuid("volumeId", &fields.volume_id)?;
    let since_2_85 = version >= (2, 85);
    if let Some(field) = fields.others().filter(|_| !since_2_85) {
        return Err(unexpected(field));
    }
    let swap = !since_2_85 || fields.volume_id != volume;
    let i = svc.visible_instance(&ctx, &id).await?;
    let rule = if swap { "swap" } else { "update" };
    svc.authorize_project(
        &ctx,
        &format!("os_compute_api:os-volumes-attachments:{rule}"),
        &i.project_id,
    )?;
    let b = svc.volume_attachment(&i, &volume)?;
    if since_2_85 {
        if let Some(delete) = fields.checked(&i, b)? {
            crate::store::bdms::update(&svc.db, &b.id, |b| b.delete_on_termination = delete)
                .await?;
        }
    }
    if swap {
        return Err(Error::NotImplemented(
            "Swapping the volume of a server is not supported by this cloud.".into(),
        ));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn detach(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, volume)): Path<(String, String)>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-volumes-attachments:delete")
        .await?;
    svc.detach_volume(&ctx, &i, &volume, version >= (2, 20))
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOL: &str = "1f0c6a54-54a4-4a9b-8b7e-4c1d1f7b7a11";

    fn parse(v: Value, version: ApiVersion) -> Result<VolumeAttachRequest> {
        let b: AttachBody =
            serde_json::from_value(v).map_err(|e| Error::BadRequest(e.to_string()))?;
        b.volume_attachment.into_request(version)
    }

    #[test]
    fn fields_come_with_their_microversions() {
        let v21 = ApiVersion(2, 1);
        let r = parse(
            json!({"volumeAttachment": {"volumeId": VOL, "device": "/dev/vdc"}}),
            v21,
        )
        .unwrap();
        assert_eq!(r.device.as_deref(), Some("/dev/vdc"));
        assert!(parse(
            json!({"volumeAttachment": {"volumeId": VOL, "tag": "t"}}),
            v21
        )
        .is_err());
        assert_eq!(
            parse(
                json!({"volumeAttachment": {"volumeId": VOL, "tag": "t"}}),
                ApiVersion(2, 49)
            )
            .unwrap()
            .tag
            .as_deref(),
            Some("t")
        );
        let dot = json!({"volumeAttachment": {"volumeId": VOL, "delete_on_termination": true}});
        assert!(parse(dot.clone(), ApiVersion(2, 78)).is_err());
        assert!(parse(dot, ApiVersion(2, 79)).unwrap().delete_on_termination);
        assert!(parse(json!({"volumeAttachment": {"volumeId": "nope"}}), v21).is_err());
        assert!(parse(json!({"volumeAttachment": {}}), v21).is_err());
        assert!(parse(json!({"volumeAttachment": {"volumeId": VOL, "x": 1}}), v21).is_err());
    }

    #[test]
    fn views_change_where_nova_changed_them() {
        let i = Instance {
            id: "srv".into(),
            ..Default::default()
        };
        let b = Bdm {
            id: "bdm".into(),
            volume_id: VOL.into(),
            device_name: "/dev/vdb".into(),
            attachment_id: Some("att".into()),
            tag: Some("t".into()),
            delete_on_termination: true,
            ..Default::default()
        };
        let v = attachment_view(ApiVersion(2, 1), &i, &b);
        assert_eq!(
            v,
            json!({"id": VOL, "serverId": "srv", "volumeId": VOL, "device": "/dev/vdb"})
        );
        let v = attachment_view(ApiVersion(2, 70), &i, &b);
        assert_eq!(v["tag"], "t");
        assert!(v.get("delete_on_termination").is_none());
        let v = attachment_view(ApiVersion(2, 79), &i, &b);
        assert_eq!(v["delete_on_termination"], true);
        let v = attachment_view(ApiVersion(2, 89), &i, &b);
        assert!(v.get("id").is_none());
        assert_eq!(v["attachment_id"], "att");
        assert_eq!(v["bdm_uuid"], "bdm");
    }
}
