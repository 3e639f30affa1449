//! 2.97's `/servers/{id}/shares`: Manila shares mounted in a guest over
//! virtiofs. No compute host here reports virtiofs with file-backed
//! memory (Nova's `COMPUTE_STORAGE_VIRTIO_FS` and `COMPUTE_MEM_BACKING_FILE`
//! traits), and there is no shared file system service, so nothing is
//! ever attached: a server's list is empty, a share is never found, and
//! an attach meets the refusal Nova gives such a host (after its state
//! check), before it would ask Manila.

use super::{ApiVersion, Svc};
use crate::states::VmState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// `POST /servers/{id}/shares`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachShareBody {
    share: ShareFields,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ShareFields {
    #[schemars(extend("format" = "uuid"))]
    share_id: String,
    /// The mount tag (the share's id when absent).
    #[serde(default)]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[a-zA-Z0-9-]*$"))]
    tag: Option<String>,
}

fn not_found(share: &str) -> Error {
    Error::NotFound(format!("Share {share} could not be found."))
}

fn conflict(i: &crate::store::instances::Instance, action: &str) -> Error {
    Error::Conflict(format!(
        "Cannot '{action}' instance {} while it is in vm_state {}",
        i.id, i.vm_state
    ))
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Response> {
    super::consoles::not_before(version, (2, 97))?;
    svc.authorized_instance(&ctx, &id, "os_compute_api:os-server-shares:index")
        .await?;
    Ok(axum::Json(json!({"shares": []})).into_response())
}

pub async fn attach(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<AttachShareBody>,
) -> Result<Response> {
    super::consoles::not_before(version, (2, 97))?;
    let share = body.share;
    if uuid::Uuid::parse_str(&share.share_id).is_err() {
        let v = &share.share_id;
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute share_id. Value: {v}. '{v}' is not a 'uuid'"
        )));
    }
    let tag_ok = |t: &String| {
        (1..=255).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if let Some(t) = share.tag.as_ref().filter(|t| !tag_ok(t)) {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute tag. Value: {t}. '{t}' does not match '^[a-zA-Z0-9-]*$'"
        )));
    }
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-shares:create")
        .await?;
    if i.vm_state != VmState::Stopped {
        return Err(conflict(&i, "create share"));
    }
    Err(Error::Conflict(
        "Feature not supported because either compute or instance are not configured correctly."
            .into(),
    ))
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, share)): Path<(String, String)>,
) -> Result<Response> {
    super::consoles::not_before(version, (2, 97))?;
    svc.authorized_instance(&ctx, &id, "os_compute_api:os-server-shares:show")
        .await?;
    Err(not_found(&share))
}

pub async fn detach(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path((id, share)): Path<(String, String)>,
) -> Result<Response> {
    super::consoles::not_before(version, (2, 97))?;
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-server-shares:delete")
        .await?;
    if !matches!(i.vm_state, VmState::Stopped | VmState::Error) {
        return Err(conflict(&i, "delete share"));
    }
    Err(not_found(&share))
}
