//! `/v3/{project_id}/types/{id}/encryption`: a volume type's encryption
//! specs (admin). Show answers `{}` for a type without them, as Cinder.

use super::{check_url_project, Svc};
use crate::encryption::{not_encrypted, EncryptionSpecs};
use crate::store::encryption::Encryption;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v3/{project_id}/types/{id}/encryption",
            get(show_encryption).post(create_encryption),
        )
        .route(
            "/v3/{project_id}/types/{id}/encryption/{key}",
            get(show_encryption_item)
                .put(update_encryption)
                .delete(delete_encryption),
        )
}

/// Some(None) for an explicit `null`, None when absent.
fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, JsonSchema)]
pub struct EncryptionRequest {
    pub encryption: EncryptionBody,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionBody {
    pub provider: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub cipher: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub key_size: Option<Option<i64>>,
    pub control_location: Option<String>,
}

impl From<EncryptionBody> for EncryptionSpecs {
    fn from(b: EncryptionBody) -> Self {
        EncryptionSpecs {
            provider: b.provider,
            cipher: b.cipher,
            key_size: b.key_size,
            control_location: b.control_location,
        }
    }
}

fn view(e: &Encryption) -> Value {
    json!({
        "volume_type_id": e.volume_type_id,
        "encryption_id": e.encryption_id,
        "provider": e.provider,
        "cipher": e.cipher,
        "key_size": e.key_size,
        "control_location": e.control_location,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "deleted": false,
        "deleted_at": null,
    })
}

fn check(svc: &Svc, ctx: &AuthContext, project_id: &str, action: &str) -> Result<()> {
    check_url_project(ctx, project_id)?;
    svc.authorize(
        ctx,
        &format!("volume_extension:volume_type_encryption:{action}"),
        project_id,
    )
}

pub async fn show_encryption(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "get")?;
    let body = match svc.type_encryption(&id).await? {
        Some(e) => view(&e),
        None => json!({}),
    };
    Ok(axum::Json(body).into_response())
}

/// `GET .../encryption/{key}`: one field, `{key: value}`.
pub async fn show_encryption_item(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "get")?;
    let e = svc
        .type_encryption(&id)
        .await?
        .ok_or_else(|| not_encrypted(&id))?;
    let v = view(&e);
    let item = v
        .get(&key)
        .filter(|_| !matches!(key.as_str(), "deleted" | "deleted_at"))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "Volume type encryption for type {id} has no key {key}."
            ))
        })?;
    Ok(axum::Json(json!({ key: item })).into_response())
}

pub async fn create_encryption(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<EncryptionRequest>,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "create")?;
    let e = svc.create_encryption(&id, req.encryption.into()).await?;
    let body = json!({"encryption": {
        "volume_type_id": e.volume_type_id,
        "encryption_id": e.encryption_id,
        "provider": e.provider,
        "cipher": e.cipher,
        "key_size": e.key_size,
        "control_location": e.control_location,
    }});
    Ok(axum::Json(body).into_response())
}

/// Answers the fields it was given, as Cinder does.
pub async fn update_encryption(
    State(svc): State<Svc>,
    Path((project_id, id, encryption_id)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<Value>,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "update")?;
    let given = req.get("encryption").cloned().ok_or_else(|| {
        Error::BadRequest("Missing required element 'encryption' in request body.".into())
    })?;
    let body: EncryptionBody = serde_json::from_value(given.clone())
        .map_err(|e| Error::BadRequest(format!("Invalid input for the request body: {e}")))?;
    svc.update_encryption(&id, &encryption_id, body.into())
        .await?;
    Ok(axum::Json(json!({ "encryption": given })).into_response())
}

pub async fn delete_encryption(
    State(svc): State<Svc>,
    Path((project_id, id, encryption_id)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    check(&svc, &ctx, &project_id, "delete")?;
    svc.delete_encryption(&id, &encryption_id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
