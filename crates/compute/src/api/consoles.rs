//! `POST /servers/{id}/remote-consoles` (2.6): one API for every console
//! protocol, replacing the `os-get*Console` actions (which 2.6 removes).
//! This cloud serves VNC through noVNC; every other protocol Nova knows
//! answers as Nova does when it is not configured: 400, unavailable.
//! `GET /os-console-auth-tokens/{token}` tells an admin what a console
//! token opens (before 2.31 only RDP tokens, which this cloud never makes).

use super::{ApiVersion, Svc};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// What a console token opens, for admins: Nova's `os-console-auth-tokens`.
pub async fn auth_token_show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(token): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-console-auth-tokens")?;
    let now = chrono::Utc::now().timestamp();
    let found = crate::store::console_tokens::find(&svc.db, &token, now)
        .await?
        .ok_or_else(|| Error::NotFound("Token not found".into()))?;
    if version < (2, 31) && found.console_type != "rdp-html5" {
        return Err(Error::Unauthorized(
            "The requested console type details are not accessible".into(),
        ));
    }
    let target: ferrostack_hypervisor::ConsoleTarget =
        serde_json::from_str(&found.target).map_err(Error::internal)?;
    let (host, port, path) = match target {
        ferrostack_hypervisor::ConsoleTarget::Tcp { host, port } => (host, Some(port), None),
        ferrostack_hypervisor::ConsoleTarget::Unix { path } => {
            (found.host, None, Some(path.display().to_string()))
        }
    };
    let mut console = json!({
        "instance_uuid": found.instance_id, "host": host, "port": port,
        "internal_access_path": path,
    });
    if version >= (2, 99) {
        // For SPICE's TLS port; no console here has one.
        console["tls_port"] = serde_json::Value::Null;
    }
    Ok(axum::Json(json!({ "console": console })).into_response())
}

/// `POST /servers/{id}/remote-consoles`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteConsoleBody {
    remote_console: RemoteConsoleRequest,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RemoteConsoleRequest {
    /// `mks` from 2.8.
    #[schemars(extend("enum" = ["vnc", "spice", "rdp", "serial", "mks"]))]
    protocol: String,
    /// `webmks` from 2.8, `spice-direct` from 2.99.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["novnc", "xvpvnc", "rdp-html5", "spice-html5", "spice-direct", "serial", "webmks"]))]
    console_type: String,
}

/// Nova's schema of `version`: the protocols and types it accepts.
fn check_schema(r: &RemoteConsoleRequest, version: ApiVersion) -> Result<()> {
    let mut protocols = vec!["vnc", "spice", "rdp", "serial"];
    let mut types = vec!["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"];
    if version >= (2, 8) {
        protocols.push("mks");
        types.push("webmks");
    }
    if version >= (2, 99) {
        types.push("spice-direct");
    }
    let one_of = |field: &str, value: &str, allowed: &[&str]| {
        if allowed.contains(&value) {
            return Ok(());
        }
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {value}. '{value}' is not one of {allowed:?}"
        )))
    };
    one_of("protocol", &r.protocol, &protocols)?;
    one_of("type", &r.console_type, &types)
}

/// The method did not exist before `since`: Nova's plain 404.
pub fn not_before(version: ApiVersion, since: (u32, u32)) -> Result<()> {
    if version < since {
        return Err(Error::NotFound("The resource could not be found.".into()));
    }
    Ok(())
}

/// The method was removed after `until`: Nova's plain 404.
pub fn not_after(version: ApiVersion, until: (u32, u32)) -> Result<()> {
    if version > until {
        return Err(Error::NotFound("The resource could not be found.".into()));
    }
    Ok(())
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(id): Path<String>,
    Json(body): Json<RemoteConsoleBody>,
) -> Result<Response> {
    not_before(version, (2, 6))?;
    let request = body.remote_console;
    check_schema(&request, version)?;
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-remote-consoles")
        .await?;
    let (protocol, console_type) = (request.protocol, request.console_type);
    if protocol != "vnc" {
        // No SPICE, RDP, serial or MKS proxy in this cloud.
        return Err(Error::BadRequest(format!(
            "Unavailable console type {console_type}."
        )));
    }
    let console = svc.vnc_console(&ctx, &i, &console_type).await?;
    Ok(axum::Json(json!({"remote_console": {
        "protocol": protocol, "type": console_type, "url": console["url"],
    }}))
    .into_response())
}
