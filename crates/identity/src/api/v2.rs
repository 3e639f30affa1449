//! Identity v2.0, for the seed's legacy clients (`keystone token-get`,
//! `keystone tenant-list`): token issue and validation, tenants, and the
//! admin listings of users and roles. Users and tenants live in the default domain.

use super::*;
use crate::auth_request::{
    Auth, DomainRef, Identity, PasswordMethod, ProjectRef, ScopeRequest, ScopeTarget, TokenMethod,
    UserRef,
};
use crate::store;
use crate::token::TokenPayload;
use axum::extract::{Path, State};
use axum::response::Response;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use schemars::JsonSchema;
use serde::Deserialize;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v2.0/tokens", post(v2_issue_token))
        .route("/v2.0/tokens/{id}", get(v2_validate_token))
        .route("/v2.0/tenants", get(v2_list_tenants))
        .route("/v2.0/users", get(v2_list_users))
        .route("/v2.0/OS-KSADM/roles", get(v2_list_roles))
        .route("/v2.0/OS-KSADM/services", get(v2_list_services))
}

fn tenant_view(p: &store::projects::Project) -> Value {
    json!({"id": p.id, "name": p.name, "enabled": p.enabled, "description": p.description})
}

/// The v2 `access` document for a token.
async fn access(svc: &Svc, token: &str, p: &TokenPayload) -> Result<Value> {
    let cat = svc.catalog().await?;
    let project_id = p.p.as_ref().map(|x| x.0.as_str());
    let mut catalog = Vec::new();
    if project_id.is_some() {
        for s in cat.iter() {
            // One v2 endpoint per region, with the three interfaces folded in.
            let mut regions: Vec<(Option<String>, Value)> = Vec::new();
            for (id, iface, region, url) in &s.endpoints {
                let Some(url) = crate::service::substitute(url, project_id) else {
                    continue;
                };
                let key = match iface.as_str() {
                    "public" => "publicURL",
                    "internal" => "internalURL",
                    _ => "adminURL",
                };
                match regions.iter_mut().find(|(r, _)| r == region) {
                    Some((_, v)) => v[key] = json!(url),
                    None => regions.push((
                        region.clone(),
                        json!({"id": id, "region": region, key: url}),
                    )),
                }
            }
            catalog.push(json!({"type": s.service_type, "name": s.name,
                "endpoints": regions.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "endpoints_links": []}));
        }
    }
    let issued = chrono::DateTime::from_timestamp_micros(p.i).unwrap_or_default();
    let expires = chrono::DateTime::from_timestamp_micros(p.e).unwrap_or_default();
    let mut tok = json!({
        "id": token,
        "issued_at": ferrostack_core::time::iso_micros(issued),
        "expires": ferrostack_core::time::iso_seconds(expires),
        "audit_ids": p.a,
    });
    if let Some(pp) = &p.p {
        let desc = svc
            .project(&pp.0)
            .await
            .map(|x| x.description)
            .unwrap_or_default();
        tok["tenant"] = json!({"id": pp.0, "name": pp.1, "enabled": true, "description": desc});
    }
    let is_admin = p.r.iter().any(|(_, n)| n == "admin");
    Ok(json!({"access": {
        "token": tok,
        "serviceCatalog": catalog,
        "user": {"id": p.u.0, "name": p.u.1, "username": p.u.1,
                 "roles": p.r.iter().map(|(_, n)| json!({"name": n})).collect::<Vec<_>>(), "roles_links": []},
        "metadata": {"is_admin": is_admin as i32, "roles": p.r.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>()},
    }}))
}

/// `POST /v2.0/tokens`: `passwordCredentials` or `token`, and
/// `tenantName`/`tenantId`.
#[derive(Deserialize, JsonSchema)]
struct V2TokenRequest {
    auth: V2Auth,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct V2Auth {
    password_credentials: Option<V2PasswordCredentials>,
    token: Option<TokenMethod>,
    tenant_id: Option<String>,
    tenant_name: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct V2PasswordCredentials {
    user_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The default domain, where v2.0 names users and tenants.
fn default_domain_ref() -> Option<DomainRef> {
    Some(DomainRef {
        id: Some("default".into()),
        name: None,
    })
}

/// The v3 `auth` document a v2.0 request means.
fn as_v3(auth: V2Auth) -> Result<Auth> {
    let identity = if let Some(pc) = auth.password_credentials {
        let user = match (pc.user_id, pc.username) {
            (Some(id), _) => UserRef {
                id: Some(id),
                password: pc.password,
                ..Default::default()
            },
            (None, Some(name)) => UserRef {
                name: Some(name),
                domain: default_domain_ref(),
                password: pc.password,
                ..Default::default()
            },
            _ => return Err(Error::BadRequest("Invalid input for field 'auth.passwordCredentials': username or userId is required.".into())),
        };
        Identity {
            methods: vec!["password".into()],
            password: Some(PasswordMethod { user }),
            ..Default::default()
        }
    } else if let Some(t) = auth.token {
        Identity {
            methods: vec!["token".into()],
            token: Some(t),
            ..Default::default()
        }
    } else {
        return Err(Error::BadRequest(
            "Invalid input for field 'auth': passwordCredentials or token is required.".into(),
        ));
    };
    let project = match (auth.tenant_id, auth.tenant_name) {
        (Some(id), _) => Some(ProjectRef {
            id: Some(id),
            ..Default::default()
        }),
        (None, Some(name)) => Some(ProjectRef {
            name: Some(name),
            domain: default_domain_ref(),
            ..Default::default()
        }),
        _ => None,
    };
    let scope = match project {
        Some(project) => ScopeRequest::Target(ScopeTarget {
            project: Some(project),
            ..Default::default()
        }),
        None => ScopeRequest::Named("unscoped".into()),
    };
    Ok(Auth {
        identity,
        scope: Some(scope),
    })
}

async fn v2_issue_token(
    State(svc): State<Svc>,
    Json(V2TokenRequest { auth }): Json<V2TokenRequest>,
) -> Result<Response> {
    let v3 = as_v3(auth)?;
    let (token, payload) = svc.authenticate(&v3).await?;
    Ok(ok(access(&svc, &token, &payload).await?))
}

async fn v2_validate_token(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let p = svc.validate_payload(&id)?;
    enforce(
        &svc,
        &ctx,
        "identity:validate_token",
        json!({"token": {"user_id": p.u.0}}),
    )?;
    Ok(ok(access(&svc, &id, &p).await?))
}

/// Tenants: all of them for whoever may list projects (an admin: the seed's
/// `keystone tenant-list`), else the caller's own.
async fn v2_list_tenants(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let list = if svc.policy.check("identity:list_projects", &ctx, &json!({})) {
        store::projects::list(&svc.db, false).await?
    } else {
        super::auth::user_projects(&svc, &ctx.user_id).await?
    };
    let views: Vec<Value> = list.iter().map(tenant_view).collect();
    Ok(ok(json!({"tenants": views, "tenants_links": []})))
}

async fn v2_list_users(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_users", json!({}))?;
    let views: Vec<Value> = store::users::list(&svc.db)
        .await?
        .iter()
        .map(|u| {
            json!({"id": u.id, "name": u.name, "username": u.name, "enabled": u.enabled,
                   "email": u.extra.get("email"), "tenantId": u.default_project_id})
        })
        .collect();
    Ok(ok(json!({"users": views, "users_links": []})))
}

async fn v2_list_roles(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_roles", json!({}))?;
    let views: Vec<Value> = store::roles::list(&svc.db)
        .await?
        .iter()
        .filter(|r| r.domain().is_none())
        .map(|r| json!({"id": r.id, "name": r.name, "description": r.description}))
        .collect();
    Ok(ok(json!({"roles": views, "roles_links": []})))
}

/// `keystone service-list`.
async fn v2_list_services(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_services", json!({}))?;
    let views: Vec<Value> = store::catalog::list_services(&svc.db)
        .await?
        .iter()
        .map(|s| {
            json!({"id": s.id, "name": s.name(), "type": s.service_type,
                   "description": s.extra.get("description").cloned().unwrap_or(Value::Null)})
        })
        .collect();
    Ok(ok(json!({"OS-KSADM:services": views})))
}
