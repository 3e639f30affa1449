//! `/os-keypairs`: list, import or generate (import only from 2.92), show,
//! delete (per user; from
//! 2.10 an admin may name another user with `?user_id=`, or `user_id` in
//! the body of a create). From 2.2 a key pair has
//! a `type` (`ssh` or `x509`) in the request and every view, create
//! answers 201 and delete 204.

use super::{query_get, ApiVersion, Query, Svc};
use crate::store;
use crate::store::catalog::KeyPair;
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
/// `named`, from 2.10, names another), once
/// `os_compute_api:os-keypairs:<op>` allows the caller on that user.
fn authorized_owner(
    svc: &Svc,
    ctx: &AuthContext,
    version: ApiVersion,
    named: Option<&str>,
    op: &str,
) -> Result<String> {
    // Before 2.10 Nova ignores `user_id`.
    let named = named.filter(|_| version >= (2, 10));
    let user = named.unwrap_or(&ctx.user_id).to_owned();
    let rule = format!("os_compute_api:os-keypairs:{op}");
    crate::policy::authorize(&svc.policy, ctx, &rule, &json!({"user_id": user}))?;
    Ok(user)
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("Keypair {name} not found for user"))
}

/// The `type` the views carry from 2.2.
fn with_type(mut view: Value, k: &KeyPair, version: ApiVersion) -> Value {
    if version >= (2, 2) {
        view["type"] = json!(k.key_type);
    }
    view
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    q: Query,
) -> Result<Response> {
    let user = authorized_owner(&svc, &ctx, version, query_get(&q.0, "user_id"), "index")?;
    let mut pairs = store::catalog::list_keypairs(&svc.db, &user).await?;
    // From 2.35 a page: `limit`, `marker` the name of the last pair seen.
    let mut limit = None;
    if version >= (2, 35) {
        pairs.sort_by(|a, b| a.name.cmp(&b.name));
        (pairs, limit) = super::page_of(pairs, |k| k.name.as_str(), &q.0)?;
    }
    let last = pairs.last().map(|k| k.name.clone());
    let count = pairs.len();
    let list: Vec<Value> = pairs
        .into_iter()
        .map(|k| {
            let view =
                json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint});
            json!({"keypair": with_type(view, &k, version)})
        })
        .collect();
    let mut body = json!({ "keypairs": list });
    if let Some(l) = super::next_page_link(&svc, "os-keypairs", &q.0, limit, count, last) {
        body["keypairs_links"] = l;
    }
    Ok(axum::Json(body).into_response())
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
    /// The owner, when an admin creates for another user (from 2.10).
    #[serde(default)]
    user_id: Option<String>,
    /// `ssh` when absent; accepted from microversion 2.2.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["ssh", "x509", null]))]
    key_type: Option<String>,
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Json(body): Json<CreateKeypairBody>,
) -> Result<Response> {
    let k = body.keypair;
    // Nova's schemas allow no property other than theirs.
    for (field, since, given) in [
        ("type", (2, 2), k.key_type.is_some()),
        ("user_id", (2, 10), k.user_id.is_some()),
    ] {
        if given && version < since {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute keypair. Additional properties are not allowed ('{field}' was unexpected)"
            )));
        }
    }
    // 2.92 allows `@` and `.` in names, and no longer generates keys.
    if version < (2, 92) && k.name.contains(['@', '.']) {
        let n = &k.name;
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute name. Value: {n}. '{n}' does not match '^[_\\- a-zA-Z0-9]+$'"
        )));
    }
    if version >= (2, 92) && k.public_key.is_none() {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute keypair. 'public_key' is a required property".into(),
        ));
    }
    let owner = authorized_owner(&svc, &ctx, version, k.user_id.as_deref(), "create")?;
    let (name, public_key) = (k.name.as_str(), k.public_key.as_deref());
    let key_type = k.key_type.as_deref().unwrap_or("ssh");
    let project = ctx.project_id.clone().unwrap_or_default();
    let (kp, private) = svc
        .create_keypair(&owner, &project, name, public_key, key_type)
        .await?;
    let mut v = json!({"name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint, "user_id": kp.user_id});
    if let Some(p) = private {
        v["private_key"] = json!(p);
    }
    let status = if version >= (2, 2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let v = with_type(v, &kp, version);
    Ok((status, axum::Json(json!({"keypair": v}))).into_response())
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response> {
    let user = authorized_owner(&svc, &ctx, version, query_get(&q.0, "user_id"), "show")?;
    let k = store::catalog::get_keypair(&svc.db, &user, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let view = json!({
        "id": k.id, "name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint,
        "user_id": k.user_id, "deleted": false, "created_at": k.created_at,
        "updated_at": null, "deleted_at": null,
    });
    Ok(axum::Json(json!({"keypair": with_type(view, &k, version)})).into_response())
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    version: ApiVersion,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response> {
    let user = authorized_owner(&svc, &ctx, version, query_get(&q.0, "user_id"), "delete")?;
    if !store::catalog::delete_keypair(&svc.db, &user, &name).await? {
        return Err(not_found(&name));
    }
    Ok(if version >= (2, 2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    }
    .into_response())
}
