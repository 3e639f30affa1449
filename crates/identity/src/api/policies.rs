//! `/v3/policies` (opaque policy blobs) and `/v3/OS-OAUTH1/consumers`.

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

/// `POST /v3/policies`, `PATCH /v3/policies/{id}`.
#[derive(Deserialize, JsonSchema)]
struct PolicyRequest {
    policy: PolicyFields,
}

#[derive(Deserialize, JsonSchema)]
struct PolicyFields {
    /// The policy document, opaque to Keystone.
    blob: Option<String>,
    /// Its media type (`application/json`, …).
    #[serde(rename = "type")]
    policy_type: Option<String>,
    /// Attributes Keystone keeps as given.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `POST /v3/OS-OAUTH1/consumers`, `PATCH …/consumers/{id}`.
#[derive(Deserialize, JsonSchema)]
struct ConsumerRequest {
    consumer: ConsumerFields,
}

#[derive(Deserialize, JsonSchema)]
struct ConsumerFields {
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    description: Option<Option<String>>,
    /// Never the client's to choose or change.
    secret: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/policies", get(list_policies).post(create_policy))
        .route(
            "/policies/{id}",
            get(show_policy).patch(update_policy).delete(delete_policy),
        )
        .route(
            "/OS-OAUTH1/consumers",
            get(list_consumers).post(create_consumer),
        )
        .route(
            "/OS-OAUTH1/consumers/{id}",
            get(show_consumer)
                .patch(update_consumer)
                .delete(delete_consumer),
        )
}

fn doc_view(svc: &IdentityService, path: &str, d: &Document) -> Value {
    let mut v = d.body.clone();
    v["id"] = json!(d.id);
    v["links"] = links(svc, &format!("{path}/{}", d.id));
    if let Some(o) = v.as_object_mut() {
        o.remove("secret_hash");
    }
    v
}

async fn get_doc(svc: &IdentityService, t: Table, kind: &str, id: &str) -> Result<Document> {
    documents::get(&svc.db, t, id)
        .await?
        .ok_or_else(|| Error::not_found(kind, id))
}

async fn list_policies(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_policies", json!({}))?;
    let views: Vec<Value> = documents::list(&svc.db, Table::Policies, None)
        .await?
        .iter()
        .filter(|d| {
            q.get("type")
                .is_none_or(|t| d.body["type"].as_str() == Some(t))
        })
        .map(|d| doc_view(&svc, "policies", d))
        .collect();
    Ok(ok(
        json!({"policies": views, "links": list_links(&svc, "policies")}),
    ))
}

async fn create_policy(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(PolicyRequest { policy: new }): Json<PolicyRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_policy", json!({}))?;
    let mut body = extra_of(&new.extra, &[], json!({}));
    body["blob"] = json!(required(new.blob, "policy", "blob")?);
    body["type"] = json!(required(new.policy_type, "policy", "type")?);
    let d = Document {
        id: new_id(),
        owner_id: String::new(),
        body,
    };
    documents::put(&svc.db, Table::Policies, &d).await?;
    Ok(created(json!({"policy": doc_view(&svc, "policies", &d)})))
}

async fn show_policy(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_policy", json!({}))?;
    let d = get_doc(&svc, Table::Policies, "policy", &id).await?;
    Ok(ok(json!({"policy": doc_view(&svc, "policies", &d)})))
}

async fn update_policy(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(PolicyRequest { policy: changes }): Json<PolicyRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_policy", json!({}))?;
    let mut d = get_doc(&svc, Table::Policies, "policy", &id).await?;
    if let Some(blob) = changes.blob {
        d.body["blob"] = json!(blob);
    }
    if let Some(t) = changes.policy_type {
        d.body["type"] = json!(t);
    }
    d.body = extra_of(&changes.extra, &[], d.body.clone());
    documents::put(&svc.db, Table::Policies, &d).await?;
    Ok(ok(json!({"policy": doc_view(&svc, "policies", &d)})))
}

async fn delete_policy(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_policy", json!({}))?;
    get_doc(&svc, Table::Policies, "policy", &id).await?;
    documents::delete(&svc.db, Table::Policies, &id).await?;
    Ok(no_content())
}

// ----- OAuth1 consumers -----

async fn list_consumers(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_consumers", json!({}))?;
    let views: Vec<Value> = documents::list(&svc.db, Table::OauthConsumers, None)
        .await?
        .iter()
        .map(|d| doc_view(&svc, "OS-OAUTH1/consumers", d))
        .collect();
    Ok(ok(
        json!({"consumers": views, "links": list_links(&svc, "OS-OAUTH1/consumers")}),
    ))
}

async fn create_consumer(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(ConsumerRequest { consumer: new }): Json<ConsumerRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_consumer", json!({}))?;
    let secret = new_id();
    let mut doc_body = extra_of(&new.extra, &[], json!({}));
    doc_body["description"] = json!(new.description.flatten());
    doc_body["secret_hash"] = json!(svc.hash_password(&secret).await?);
    let d = Document {
        id: new_id(),
        owner_id: String::new(),
        body: doc_body,
    };
    documents::put(&svc.db, Table::OauthConsumers, &d).await?;
    let mut v = doc_view(&svc, "OS-OAUTH1/consumers", &d);
    v["secret"] = json!(secret);
    Ok(created(json!({"consumer": v})))
}

async fn show_consumer(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_consumer", json!({}))?;
    let d = get_doc(&svc, Table::OauthConsumers, "consumer", &id).await?;
    Ok(ok(
        json!({"consumer": doc_view(&svc, "OS-OAUTH1/consumers", &d)}),
    ))
}

async fn update_consumer(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(ConsumerRequest { consumer: changes }): Json<ConsumerRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_consumer", json!({}))?;
    if changes.secret.is_some() {
        return Err(Error::BadRequest(
            "Invalid input for field 'consumer.secret': it cannot be changed.".into(),
        ));
    }
    let mut d = get_doc(&svc, Table::OauthConsumers, "consumer", &id).await?;
    if let Some(description) = changes.description {
        d.body["description"] = json!(description);
    }
    d.body = extra_of(&changes.extra, &[], d.body.clone());
    documents::put(&svc.db, Table::OauthConsumers, &d).await?;
    Ok(ok(
        json!({"consumer": doc_view(&svc, "OS-OAUTH1/consumers", &d)}),
    ))
}

async fn delete_consumer(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_consumer", json!({}))?;
    get_doc(&svc, Table::OauthConsumers, "consumer", &id).await?;
    documents::delete(&svc.db, Table::OauthConsumers, &id).await?;
    Ok(no_content())
}
