//! `/v3/{project_id}/attachments` (3.27+): create (with or without a
//! connector), list and detail with filters, show, update with a connector
//! (→ `connection_info`), `os-complete` (3.44) and delete.

use super::listing::ListQuery;
use super::microversion::{require, ApiVersion};
use super::{check_url_project, Query, Svc};
use crate::attach::AttachRequest;
use crate::store::attachments::{self, Attachment};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v3/{project_id}/attachments",
            get(list_summary).post(create_attachment),
        )
        .route("/v3/{project_id}/attachments/detail", get(list_detail))
        .route(
            "/v3/{project_id}/attachments/{id}",
            get(show_attachment)
                .put(update_attachment)
                .delete(delete_attachment),
        )
        .route(
            "/v3/{project_id}/attachments/{id}/action",
            post(attachment_action),
        )
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateAttachmentRequest {
    pub attachment: CreateAttachment,
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateAttachment {
    /// The volume (Cinder's request names it `volume_uuid`, as cinderclient
    /// and Nova send it; the attachment view calls it `volume_id`).
    pub volume_uuid: String,
    pub instance_uuid: Option<String>,
    /// os-brick's connector of the host; when given the volume is
    /// connected at once and the answer carries `connection_info`.
    pub connector: Option<Map<String, Value>>,
    /// `rw` (default) or `ro`, from 3.54.
    pub mode: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateAttachmentRequest {
    pub attachment: UpdateAttachment,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateAttachment {
    pub connector: Map<String, Value>,
}

/// `POST /attachments/{id}/action`.
#[derive(Deserialize, JsonSchema)]
pub enum AttachmentAction {
    /// 3.44: the host finished connecting. Cinder ignores the value:
    /// Nova sends `null`, cinderclient (and so `openstack volume
    /// attachment complete`) the attachment's id.
    #[serde(rename = "os-complete")]
    Complete(#[allow(dead_code)] Value),
}

/// The list view (Cinder's `_normalize` without detail).
fn summary(a: &Attachment) -> Value {
    json!({
        "id": a.id,
        "status": a.status.as_str(),
        "instance": a.instance_uuid,
        "volume_id": a.volume_id,
    })
}

/// The detailed view.
pub fn detail(a: &Attachment) -> Value {
    let mut v = summary(a);
    v["attached_at"] = json!(a.attach_time);
    v["detached_at"] = json!(a.detach_time);
    v["attach_mode"] = json!(a.mode);
    v["connection_info"] = a.connection_info.clone().unwrap_or(Value::Null);
    v
}

fn check_uuid(field: &str, v: &str) -> Result<()> {
    uuid::Uuid::parse_str(v).map(|_| ()).map_err(|_| {
        Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {v}. '{v}' is not a 'uuid'"
        ))
    })
}

pub async fn create_attachment(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateAttachmentRequest>,
) -> Result<Response> {
    require(version, (3, 27))?;
    check_url_project(&ctx, &project_id)?;
    let r = req.attachment;
    check_uuid("volume_uuid", &r.volume_uuid)?;
    if let Some(i) = &r.instance_uuid {
        check_uuid("instance_uuid", i)?;
    }
    let mode = match (r.mode, version >= (3, 54)) {
        (None, _) => "rw".to_owned(),
        (Some(_), false) => {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute attachment. Additional properties are not allowed ('mode' was unexpected)".into(),
            ))
        }
        (Some(m), true) if m == "rw" || m == "ro" => m,
        (Some(m), true) => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute mode. Value: {m}. '{m}' is not one of ['rw', 'ro']"
            )))
        }
    };
    // The clients send `{}` for "no connector" (Cinder treats it so).
    let connector = r.connector.filter(|c| !c.is_empty()).map(Value::Object);
    let ask = AttachRequest {
        instance_uuid: r.instance_uuid,
        mode,
        ..Default::default()
    };
    let a = svc
        .attachment_create(&ctx, &r.volume_uuid, ask, connector)
        .await?;
    Ok(axum::Json(json!({"attachment": detail(&a)})).into_response())
}

/// The caller's attachments (all projects' for an admin asking
/// `all_tenants`), filtered, newest first, paged.
async fn listed(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    q: &[(String, String)],
) -> Result<Vec<Attachment>> {
    check_url_project(ctx, project_id)?;
    let query = ListQuery::new(q);
    let p = &query.params;
    let scope = query.scope(svc, ctx, project_id);
    let mut list = attachments::list(&svc.db, scope).await?;
    list.retain(|a| {
        p.get("volume_id").is_none_or(|v| a.volume_id == *v)
            && p.get("instance_id")
                .or(p.get("instance_uuid"))
                .is_none_or(|i| a.instance_uuid.as_deref() == Some(*i))
            && p.get("status")
                .or(p.get("attach_status"))
                .is_none_or(|s| a.status.as_str() == *s)
    });
    let (page, _) = query.page(list, svc.config.volume.osapi_max_limit, |a| a.id.as_str())?;
    Ok(page)
}

pub async fn list_summary(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 27))?;
    let page = listed(&svc, &ctx, &project_id, &q).await?;
    let body = json!({"attachments": page.iter().map(summary).collect::<Vec<_>>()});
    Ok(axum::Json(body).into_response())
}

pub async fn list_detail(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    require(version, (3, 27))?;
    let page = listed(&svc, &ctx, &project_id, &q).await?;
    let body = json!({"attachments": page.iter().map(detail).collect::<Vec<_>>()});
    Ok(axum::Json(body).into_response())
}

pub async fn show_attachment(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    require(version, (3, 27))?;
    check_url_project(&ctx, &project_id)?;
    let (a, _) = svc.visible_attachment(&ctx, &id).await?;
    Ok(axum::Json(json!({"attachment": detail(&a)})).into_response())
}

pub async fn update_attachment(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(req): Json<UpdateAttachmentRequest>,
) -> Result<Response> {
    require(version, (3, 27))?;
    check_url_project(&ctx, &project_id)?;
    let connector = Value::Object(req.attachment.connector);
    let a = svc.attachment_update(&ctx, &id, &connector).await?;
    Ok(axum::Json(json!({"attachment": detail(&a)})).into_response())
}

pub async fn delete_attachment(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    require(version, (3, 27))?;
    check_url_project(&ctx, &project_id)?;
    let left = svc.attachment_delete(&ctx, &id).await?;
    let body = json!({"attachments": left.iter().map(summary).collect::<Vec<_>>()});
    Ok(axum::Json(body).into_response())
}

pub async fn attachment_action(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    version: ApiVersion,
    Authenticated(ctx): Authenticated,
    Json(action): Json<AttachmentAction>,
) -> Result<Response> {
    require(version, (3, 44))?;
    check_url_project(&ctx, &project_id)?;
    match action {
        AttachmentAction::Complete(_) => svc.attachment_complete(&ctx, &id).await?,
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
