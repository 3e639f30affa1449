//! `/os-keypairs`: list, import or generate, show, delete (per user; an
//! admin may name another user with `?user_id=`).

use super::{query_get, Query, Svc};
use crate::store;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

/// The user whose key pairs a request is about (the caller unless
/// `?user_id=` names another), once `os_compute_api:os-keypairs:<op>`
/// allows the caller on that user.
fn authorized_owner(
    svc: &Svc,
    ctx: &AuthContext,
    q: &[(String, String)],
    op: &str,
) -> Result<String> {
    let user = query_get(q, "user_id").unwrap_or(&ctx.user_id).to_owned();
    let rule = format!("os_compute_api:os-keypairs:{op}");
    crate::policy::authorize(&svc.policy, ctx, &rule, &json!({"user_id": user}))?;
    Ok(user)
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("Keypair {name} not found for user"))
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    let user = authorized_owner(&svc, &ctx, &q.0, "index")?;
    let list: Vec<Value> = store::catalog::list_keypairs(&svc.db, &user)
        .await?
        .into_iter()
        .map(|k| json!({"keypair": {"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint}}))
        .collect();
    Ok(axum::Json(json!({"keypairs": list})).into_response())
}

/// `POST /os-keypairs`.
#[derive(Deserialize, JsonSchema)]
pub struct CreateKeypairBody {
    keypair: CreateKeypair,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateKeypair {
    /// Letters, digits, spaces and `-_.@`, not at either end a space.
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9_.@-]([A-Za-z0-9 _.@-]*[A-Za-z0-9_.@-])?$")
    )]
    name: String,
    /// Imported when given; generated otherwise.
    #[serde(default)]
    public_key: Option<String>,
    /// `ssh` when absent.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["ssh", "x509", null]))]
    key_type: Option<String>,
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<CreateKeypairBody>,
) -> Result<Response> {
    authorized_owner(&svc, &ctx, &[], "create")?;
    let k = body.keypair;
    let (name, public_key) = (k.name.as_str(), k.public_key.as_deref());
    let key_type = k.key_type.as_deref().unwrap_or("ssh");
    let project = ctx.project_id.clone().unwrap_or_default();
    let (kp, private) = svc
        .create_keypair(&ctx.user_id, &project, name, public_key, key_type)
        .await?;
    let mut v = json!({"name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint, "user_id": kp.user_id});
    if let Some(p) = private {
        v["private_key"] = json!(p);
    }
    Ok(axum::Json(json!({"keypair": v})).into_response())
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response> {
    let user = authorized_owner(&svc, &ctx, &q.0, "show")?;
    let k = store::catalog::get_keypair(&svc.db, &user, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(axum::Json(json!({"keypair": {
        "id": k.id, "name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint,
        "user_id": k.user_id, "deleted": false, "created_at": k.created_at,
        "updated_at": null, "deleted_at": null,
    }}))
    .into_response())
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response> {
    let user = authorized_owner(&svc, &ctx, &q.0, "delete")?;
    if !store::catalog::delete_keypair(&svc.db, &user, &name).await? {
        return Err(not_found(&name));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}
