//! `/v3/users/{user_id}/application_credentials`.

use super::*;
use crate::service::Scope;
use crate::store::app_creds::AppCred;
use crate::store::documents::{self, Document, Table};
use crate::store::revocations::RevocationEvent;
use crate::store::{self, new_id};
use axum::extract::{Path, State};
use axum::response::Response;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use schemars::JsonSchema;
use serde::Deserialize;

/// `POST /v3/users/{id}/application_credentials`.
#[derive(Deserialize, JsonSchema)]
struct CreateAppCredRequest {
    application_credential: NewAppCred,
}

#[derive(Deserialize, JsonSchema)]
struct NewAppCred {
    name: String,
    description: Option<String>,
    /// A secret the user chose; one is generated otherwise.
    secret: Option<String>,
    expires_at: Option<String>,
    /// A subset of the user's roles on the project; none or empty: the
    /// roles of the token that creates it.
    roles: Option<Vec<RoleRef>>,
    unrestricted: Option<bool>,
    access_rules: Option<Vec<AccessRuleRequest>>,
}

#[derive(Deserialize, JsonSchema)]
struct RoleRef {
    id: Option<String>,
    name: Option<String>,
}

/// An existing rule by `id`, or a new one.
#[derive(Deserialize, JsonSchema)]
struct AccessRuleRequest {
    id: Option<String>,
    service: Option<String>,
    path: Option<String>,
    method: Option<String>,
}

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/users/{user_id}/access_rules", get(list_access_rules))
        .route(
            "/users/{user_id}/access_rules/{id}",
            get(show_access_rule).delete(delete_access_rule),
        )
        .route(
            "/users/{user_id}/application_credentials",
            get(list_application_credentials).post(create_application_credential),
        )
        .route(
            "/users/{user_id}/application_credentials/{id}",
            get(show_application_credential).delete(delete_application_credential),
        )
}

fn view(svc: &IdentityService, a: &AppCred) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "expires_at": a.expires_at,
        "unrestricted": a.unrestricted,
        "roles": a.roles,
        "access_rules": a.access_rules,
        "links": links(svc, &format!("users/{}/application_credentials/{}", a.user_id, a.id)),
    })
}

async fn get_cred(svc: &IdentityService, user_id: &str, id: &str) -> Result<AppCred> {
    store::app_creds::get(&svc.db, id)
        .await?
        .filter(|a| a.user_id == user_id)
        .ok_or_else(|| Error::not_found("application credential", id))
}

async fn list_application_credentials(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(user_id): Path<String>,
    q: Query,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_application_credentials",
        json!({"user_id": user_id}),
    )?;
    svc.user(&user_id).await?;
    let views: Vec<Value> = store::app_creds::list_for_user(&svc.db, &user_id)
        .await?
        .iter()
        .filter(|a| q.get("name").is_none_or(|n| &a.name == n))
        .map(|a| view(&svc, a))
        .collect();
    Ok(ok(json!({"application_credentials": views,
        "links": list_links(&svc, &format!("users/{user_id}/application_credentials"))})))
}

async fn create_application_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(user_id): Path<String>,
    Json(CreateAppCredRequest {
        application_credential: new,
    }): Json<CreateAppCredRequest>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:create_application_credential",
        json!({"user_id": user_id}),
    )?;
    if let Some(cid) = &ctx.application_credential_id {
        if store::app_creds::get(&svc.db, cid)
            .await?
            .is_some_and(|c| !c.unrestricted)
        {
            return Err(Error::Forbidden(
                "A restricted application credential cannot create another application credential."
                    .into(),
            ));
        }
    }
    let project_id = ctx.project_id.clone().ok_or_else(|| {
        Error::Forbidden("Application credentials need a project-scoped token.".into())
    })?;
    let name = checked_name(new.name, "application_credential", 255)?;
    if store::app_creds::list_for_user(&svc.db, &user_id)
        .await?
        .iter()
        .any(|a| a.name == name)
    {
        return Err(Error::Conflict(format!(
            "Conflict occurred attempting to store application_credential - Duplicate entry found with name {name}."
        )));
    }
    let expires_at = match new.expires_at {
        None => None,
        Some(s) => {
            let t = ferrostack_core::time::parse(&s).ok_or_else(|| {
                Error::BadRequest(format!("Invalid input for field 'application_credential.expires_at': '{s}' is not a timestamp."))
            })?;
            if t <= chrono::Utc::now() {
                return Err(Error::BadRequest("Invalid input for field 'application_credential.expires_at': it is in the past.".into()));
            }
            Some(ferrostack_core::time::iso_naive(t))
        }
    };
    // The roles the user has on the project: the credential may carry a subset.
    let project = svc.project(&project_id).await?;
    let domain = svc.domain(&project.domain_id).await?;
    let held = svc
        .effective_roles(&user_id, &Scope::Project(project, domain))
        .await?;
    let roles: Vec<(String, String)> = match new.roles.filter(|rs| !rs.is_empty()) {
        None => ctx
            .roles
            .iter()
            .map(|r| (r.id.clone(), r.name.clone()))
            .collect(),
        Some(rs) => {
            let mut out = Vec::new();
            for r in rs {
                let found = held
                    .iter()
                    .find(|(id, name)| r.id.as_ref() == Some(id) || r.name.as_ref() == Some(name));
                match found {
                    Some(x) => out.push(x.clone()),
                    None => {
                        let named = r.id.or(r.name).unwrap_or_default();
                        return Err(Error::BadRequest(format!(
                            "Cannot create an application credential with unassigned role {named} on project {project_id}."
                        )));
                    }
                }
            }
            out
        }
    };
    let secret = match new.secret {
        Some(s) => s,
        None => {
            use base64::Engine;
            let bytes: Vec<u8> = (0..48).map(|_| rand::random::<u8>()).collect();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        }
    };
    let cred = AppCred {
        id: new_id(),
        name,
        user_id: user_id.clone(),
        project_id: Some(project_id),
        secret_hash: svc.hash_password(&secret).await?,
        description: new.description,
        expires_at,
        unrestricted: new.unrestricted.unwrap_or(false),
        roles: Value::Array(
            roles
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name, "domain_id": null}))
                .collect(),
        ),
        access_rules: resolve_access_rules(&svc, &user_id, new.access_rules.unwrap_or_default())
            .await?,
    };
    store::app_creds::insert(&svc.db, &cred).await?;
    let mut v = view(&svc, &cred);
    v["secret"] = json!(secret);
    Ok(created(json!({"application_credential": v})))
}

async fn show_application_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:get_application_credential",
        json!({"user_id": user_id}),
    )?;
    let a = get_cred(&svc, &user_id, &id).await?;
    Ok(ok(json!({"application_credential": view(&svc, &a)})))
}

async fn delete_application_credential(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:delete_application_credential",
        json!({"user_id": user_id}),
    )?;
    get_cred(&svc, &user_id, &id).await?;
    store::app_creds::delete(&svc.db, &id).await?;
    svc.revoke(RevocationEvent {
        app_cred_id: Some(id),
        ..Default::default()
    })
    .await?;
    Ok(no_content())
}

// ----- access rules -----

/// Give every requested rule an id: an identical rule the user already has is
/// reused (as Keystone does), an `id` names an existing rule, else a new one
/// is stored.
async fn resolve_access_rules(
    svc: &Svc,
    user_id: &str,
    requested: Vec<AccessRuleRequest>,
) -> Result<Value> {
    if requested.is_empty() {
        return Ok(json!([]));
    }
    let existing = documents::list(&svc.db, Table::AccessRules, Some(user_id)).await?;
    let mut out = Vec::new();
    for r in requested {
        if let Some(id) = r.id.as_deref() {
            let d = existing
                .iter()
                .find(|d| d.id == id)
                .ok_or_else(|| Error::not_found("access rule", id))?;
            out.push(rule_body(&d.id, &d.body));
            continue;
        }
        let mut rule = json!({});
        for (field, value) in [
            ("service", &r.service),
            ("path", &r.path),
            ("method", &r.method),
        ] {
            let v = value.as_deref().ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for field 'application_credential.access_rules.{field}': required string."
                ))
            })?;
            rule[field] = json!(v);
        }
        if !matches!(
            rule["method"].as_str(),
            Some("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE")
        ) {
            return Err(Error::BadRequest(
                "Invalid input for field 'application_credential.access_rules.method': not an HTTP method.".into(),
            ));
        }
        let id = match existing.iter().find(|d| d.body == rule) {
            Some(d) => d.id.clone(),
            None => {
                let d = Document {
                    id: new_id(),
                    owner_id: user_id.to_owned(),
                    body: rule.clone(),
                };
                documents::put(&svc.db, Table::AccessRules, &d).await?;
                d.id
            }
        };
        out.push(rule_body(&id, &rule));
    }
    Ok(Value::Array(out))
}

fn rule_body(id: &str, body: &Value) -> Value {
    json!({"id": id, "service": body["service"], "path": body["path"], "method": body["method"]})
}

fn rule_view(svc: &IdentityService, d: &Document) -> Value {
    let mut v = rule_body(&d.id, &d.body);
    v["links"] = links(svc, &format!("users/{}/access_rules/{}", d.owner_id, d.id));
    v
}

async fn get_rule(svc: &IdentityService, user_id: &str, id: &str) -> Result<Document> {
    documents::get(&svc.db, Table::AccessRules, id)
        .await?
        .filter(|d| d.owner_id == user_id)
        .ok_or_else(|| Error::not_found("access rule", id))
}

async fn list_access_rules(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(user_id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_access_rules",
        json!({"user_id": user_id}),
    )?;
    let views: Vec<Value> = documents::list(&svc.db, Table::AccessRules, Some(&user_id))
        .await?
        .iter()
        .map(|d| rule_view(&svc, d))
        .collect();
    Ok(ok(
        json!({"access_rules": views, "links": list_links(&svc, &format!("users/{user_id}/access_rules"))}),
    ))
}

async fn show_access_rule(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:get_access_rule",
        json!({"user_id": user_id}),
    )?;
    let d = get_rule(&svc, &user_id, &id).await?;
    Ok(ok(json!({"access_rule": rule_view(&svc, &d)})))
}

/// A rule still used by an application credential cannot be deleted (403).
async fn delete_access_rule(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:delete_access_rule",
        json!({"user_id": user_id}),
    )?;
    get_rule(&svc, &user_id, &id).await?;
    let in_use = store::app_creds::list_for_user(&svc.db, &user_id)
        .await?
        .iter()
        .any(|c| {
            c.access_rules
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r["id"] == id.as_str()))
        });
    if in_use {
        return Err(Error::Forbidden(format!(
            "Access rule {id} is in use by an application credential."
        )));
    }
    documents::delete(&svc.db, Table::AccessRules, &id).await?;
    Ok(no_content())
}
