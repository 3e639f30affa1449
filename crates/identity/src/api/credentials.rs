//! `/v3/credentials` and the EC2 credentials of a user
//! (`/v3/users/{user_id}/credentials/OS-EC2`), which Keystone keeps in the
//! same store with type `ec2`.

use super::*;
use crate::store::documents::{self, Document, Table};
use crate::store::new_id;
use axum::extract::{Path, State};
use axum::response::Response;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use schemars::JsonSchema;
use serde::Deserialize;

/// `POST /v3/credentials`, `PATCH /v3/credentials/{id}`.
#[derive(Deserialize, JsonSchema)]
struct CredentialRequest {
    credential: CredentialFields,
}

#[derive(Deserialize, JsonSchema)]
struct CredentialFields {
    user_id: Option<String>,
    #[serde(rename = "type")]
    cred_type: Option<String>,
    /// Opaque to Keystone (for `ec2`, a JSON document as a string).
    blob: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    project_id: Option<Option<String>>,
    /// Attributes Keystone keeps as given.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `POST /v3/users/{id}/credentials/OS-EC2`.
#[derive(Deserialize, JsonSchema)]
struct CreateEc2Request {
    tenant_id: String,
}
use sha2::Digest;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/credentials",
            get(list_credentials).post(create_credential),
        )
        .route(
            "/credentials/{id}",
            get(show_credential)
                .patch(update_credential)
                .delete(delete_credential),
        )
        .route(
            "/users/{user_id}/credentials/OS-EC2",
            get(list_ec2_credentials).post(create_ec2_credential),
        )
        .route(
            "/users/{user_id}/credentials/OS-EC2/{access}",
            get(show_ec2_credential).delete(delete_ec2_credential),
        )
}

fn view(svc: &IdentityService, d: &Document) -> Value {
    let mut v = d.body.clone();
    v["id"] = json!(d.id);
    v["user_id"] = json!(d.owner_id);
    v["links"] = links(svc, &format!("credentials/{}", d.id));
    v
}

async fn get_cred(svc: &IdentityService, id: &str) -> Result<Document> {
    documents::get(&svc.db, Table::Credentials, id)
        .await?
        .ok_or_else(|| Error::not_found("credential", id))
}

async fn list_credentials(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    let admin = svc
        .policy
        .check("identity:list_credentials", &ctx, &json!({"target": {}}));
    let views: Vec<Value> = documents::list(
        &svc.db,
        Table::Credentials,
        q.get("user_id").map(String::as_str),
    )
    .await?
    .iter()
    .filter(|d| admin || d.owner_id == ctx.user_id)
    .filter(|d| {
        q.get("type")
            .is_none_or(|t| d.body["type"].as_str() == Some(t))
    })
    .map(|d| view(&svc, d))
    .collect();
    Ok(ok(
        json!({"credentials": views, "links": list_links(&svc, "credentials")}),
    ))
}

async fn create_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(CredentialRequest { credential: new }): Json<CredentialRequest>,
) -> Result<Response> {
    let user_id = required(new.user_id, "credential", "user_id")?;
    enforce(
        &svc,
        &ctx,
        "identity:create_credential",
        json!({"credential": {"user_id": user_id}}),
    )?;
    let cred_type = required(new.cred_type, "credential", "type")?;
    let blob = required(new.blob, "credential", "blob")?;
    let project_id = new.project_id.flatten();
    svc.user(&user_id).await?;
    // EC2 credentials are keyed by the hash of their access key, as Keystone does.
    let id = if cred_type == "ec2" {
        let parsed: Value = serde_json::from_str(&blob).map_err(|_| {
            Error::BadRequest(
                "Invalid input for field 'credential.blob': an ec2 blob must be JSON.".into(),
            )
        })?;
        let access = parsed["access"].as_str().ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field 'credential.blob': an ec2 blob needs 'access'.".into(),
            )
        })?;
        if project_id.is_none() {
            return Err(Error::BadRequest(
                "Invalid input for field 'credential.project_id': required for ec2 credentials."
                    .into(),
            ));
        }
        hex(&sha2::Sha256::digest(access.as_bytes()))
    } else {
        new_id()
    };
    if documents::get(&svc.db, Table::Credentials, &id)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(
            "Conflict occurred attempting to store credential - Duplicate ID.".into(),
        ));
    }
    let mut doc_body = extra_of(&new.extra, &[], json!({}));
    doc_body["type"] = json!(cred_type);
    doc_body["blob"] = json!(blob);
    doc_body["project_id"] = json!(project_id);
    let d = Document {
        id,
        owner_id: user_id,
        body: doc_body,
    };
    documents::put(&svc.db, Table::Credentials, &d).await?;
    Ok(created(json!({"credential": view(&svc, &d)})))
}

async fn show_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let d = get_cred(&svc, &id).await?;
    enforce(
        &svc,
        &ctx,
        "identity:get_credential",
        json!({"credential": {"user_id": d.owner_id}}),
    )?;
    Ok(ok(json!({"credential": view(&svc, &d)})))
}

async fn update_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(CredentialRequest {
        credential: changes,
    }): Json<CredentialRequest>,
) -> Result<Response> {
    let mut d = get_cred(&svc, &id).await?;
    enforce(
        &svc,
        &ctx,
        "identity:update_credential",
        json!({"credential": {"user_id": d.owner_id}}),
    )?;
    if let Some(u) = changes.user_id {
        svc.user(&u).await?;
        // The new owner must pass the same policy (CVE-2020-12691).
        enforce(
            &svc,
            &ctx,
            "identity:update_credential",
            json!({"credential": {"user_id": u}}),
        )?;
        d.owner_id = u;
    }
    if let Some(t) = changes.cred_type {
        d.body["type"] = json!(t);
    }
    if let Some(b) = changes.blob {
        d.body["blob"] = json!(b);
    }
    if let Some(p) = changes.project_id {
        d.body["project_id"] = json!(p);
    }
    d.body = extra_of(&changes.extra, &[], d.body.clone());
    documents::put(&svc.db, Table::Credentials, &d).await?;
    Ok(ok(json!({"credential": view(&svc, &d)})))
}

async fn delete_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let d = get_cred(&svc, &id).await?;
    enforce(
        &svc,
        &ctx,
        "identity:delete_credential",
        json!({"credential": {"user_id": d.owner_id}}),
    )?;
    documents::delete(&svc.db, Table::Credentials, &id).await?;
    Ok(no_content())
}

// ----- EC2 -----

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ec2_view(svc: &IdentityService, d: &Document) -> Value {
    let blob: Value = d.body["blob"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    json!({
        "user_id": d.owner_id,
        "tenant_id": d.body["project_id"],
        "access": blob["access"],
        "secret": blob["secret"],
        "trust_id": blob.get("trust_id").cloned().unwrap_or(Value::Null),
        "links": links(svc, &format!("users/{}/credentials/OS-EC2/{}", d.owner_id, blob["access"].as_str().unwrap_or(""))),
    })
}

async fn list_ec2_credentials(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(user_id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:ec2_list_credentials",
        json!({"credential": {"user_id": user_id}}),
    )?;
    svc.user(&user_id).await?;
    let views: Vec<Value> = documents::list(&svc.db, Table::Credentials, Some(&user_id))
        .await?
        .iter()
        .filter(|d| d.body["type"] == "ec2")
        .map(|d| ec2_view(&svc, d))
        .collect();
    Ok(ok(
        json!({"credentials": views, "links": list_links(&svc, &format!("users/{user_id}/credentials/OS-EC2"))}),
    ))
}

async fn create_ec2_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(user_id): Path<String>,
    Json(CreateEc2Request { tenant_id: tenant }): Json<CreateEc2Request>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:ec2_create_credential",
        json!({"credential": {"user_id": user_id}}),
    )?;
    svc.user(&user_id).await?;
    svc.project(&tenant).await?;
    let access = new_id();
    let secret = new_id();
    let blob = json!({"access": access, "secret": secret, "trust_id": null}).to_string();
    let d = Document {
        id: hex(&sha2::Sha256::digest(access.as_bytes())),
        owner_id: user_id,
        body: json!({"type": "ec2", "blob": blob, "project_id": tenant}),
    };
    documents::put(&svc.db, Table::Credentials, &d).await?;
    Ok(created(json!({"credential": ec2_view(&svc, &d)})))
}

async fn find_ec2(svc: &IdentityService, user_id: &str, access: &str) -> Result<Document> {
    let id = hex(&sha2::Sha256::digest(access.as_bytes()));
    documents::get(&svc.db, Table::Credentials, &id)
        .await?
        .filter(|d| d.owner_id == user_id && d.body["type"] == "ec2")
        .ok_or_else(|| Error::not_found("credential", access))
}

async fn show_ec2_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:ec2_get_credential",
        json!({"credential": {"user_id": user_id}}),
    )?;
    let d = find_ec2(&svc, &user_id, &access).await?;
    Ok(ok(json!({"credential": ec2_view(&svc, &d)})))
}

async fn delete_ec2_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:ec2_delete_credential",
        json!({"credential": {"user_id": user_id}}),
    )?;
    let d = find_ec2(&svc, &user_id, &access).await?;
    documents::delete(&svc.db, Table::Credentials, &d.id).await?;
    Ok(no_content())
}
