//! `/v3/auth/*`: token issue, validate, check, revoke; the caller's catalog,
//! projects, domains and system scope.

use super::{enforce, list_links, ok, Query, Svc};
use crate::auth_request::AuthRequest;
use crate::service::Scope;
use crate::store;
use crate::store::revocations::RevocationEvent;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter, HeaderParam};
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/auth/tokens",
            get(validate_token)
                .head(check_token)
                .delete(revoke_token)
                .post(issue_token)
                .header(Method::GET, SUBJECT_TOKEN)
                .header(Method::HEAD, SUBJECT_TOKEN)
                .header(Method::DELETE, SUBJECT_TOKEN),
        )
        .route("/auth/catalog", get(auth_catalog))
        .route("/auth/projects", get(auth_projects))
        .route("/auth/domains", get(auth_domains))
        .route("/auth/system", get(auth_system))
}

/// The token a validate, check or revoke is about (`subject` reads it).
const SUBJECT_TOKEN: HeaderParam = HeaderParam {
    name: "X-Subject-Token",
    required: true,
    description: "The token to validate, check or revoke",
};

fn subject(headers: &HeaderMap) -> Result<String> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| Error::BadRequest("The X-Subject-Token header is required.".into()))
}

fn with_subject(mut resp: Response, token: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp
}

async fn issue_token(
    State(svc): State<Svc>,
    q: Query,
    Json(AuthRequest { auth }): Json<AuthRequest>,
) -> Result<Response> {
    let (token, payload) = svc.authenticate(&auth).await?;
    let doc = svc
        .token_body(&payload, !q.contains_key("nocatalog"))
        .await?;
    Ok(with_subject(
        (StatusCode::CREATED, axum::Json(doc)).into_response(),
        &token,
    ))
}

async fn validate_token(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    headers: HeaderMap,
    q: Query,
) -> Result<Response> {
    let token = subject(&headers)?;
    let payload = svc.validate_payload(&token)?;
    enforce(
        &svc,
        &ctx,
        "identity:validate_token",
        json!({"token": {"user_id": payload.u.0}}),
    )?;
    let doc = svc
        .token_body(&payload, !q.contains_key("nocatalog"))
        .await?;
    Ok(with_subject(ok(doc), &token))
}

async fn check_token(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    headers: HeaderMap,
) -> Result<Response> {
    let token = subject(&headers)?;
    let payload = svc.validate_payload(&token)?;
    enforce(
        &svc,
        &ctx,
        "identity:check_token",
        json!({"token": {"user_id": payload.u.0}}),
    )?;
    Ok(with_subject(StatusCode::OK.into_response(), &token))
}

async fn revoke_token(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    headers: HeaderMap,
) -> Result<Response> {
    let token = subject(&headers)?;
    let payload = svc.validate_payload(&token)?;
    enforce(
        &svc,
        &ctx,
        "identity:revoke_token",
        json!({"token": {"user_id": payload.u.0}}),
    )?;
    svc.revoke(RevocationEvent {
        audit_id: Some(payload.a[0].clone()),
        ..Default::default()
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn auth_catalog(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let scoped = ctx.project_id.is_some() || ctx.domain_id.is_some() || ctx.system_scope;
    if !scoped {
        return Err(Error::Forbidden(
            "The service catalog requires a scoped token.".into(),
        ));
    }
    let cat = svc.catalog_json(ctx.project_id.as_deref(), true).await?;
    Ok(ok(
        json!({"catalog": cat, "links": list_links(&svc, "auth/catalog")}),
    ))
}

/// Projects the caller has a role on (directly, by group or inherited), enabled only.
pub async fn user_projects(svc: &Svc, user_id: &str) -> Result<Vec<store::projects::Project>> {
    // One read of the user's assignments and of the domains, not one per project.
    let assignments = svc.actor_assignments(user_id).await?;
    let domains: std::collections::HashMap<String, store::projects::Project> =
        store::projects::list(&svc.db, true)
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
    let mut out = Vec::new();
    for p in store::projects::list(&svc.db, false).await? {
        let Some(d) = domains.get(&p.domain_id).filter(|_| p.enabled) else {
            continue;
        };
        let s = Scope::Project(p.clone(), d.clone());
        if !svc.role_ids_in(&assignments, &s).await?.is_empty() {
            out.push(p);
        }
    }
    Ok(out)
}

async fn auth_projects(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let ps = user_projects(&svc, &ctx.user_id).await?;
    let views: Vec<Value> = ps
        .iter()
        .map(|p| super::projects::project_view(&svc, p))
        .collect();
    Ok(ok(
        json!({"projects": views, "links": list_links(&svc, "auth/projects")}),
    ))
}

async fn auth_domains(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let mut views = Vec::new();
    for d in store::projects::list(&svc.db, true).await? {
        if d.enabled
            && !svc
                .direct_role_ids(&ctx.user_id, &Scope::Domain(d.clone()))
                .await?
                .is_empty()
        {
            views.push(super::projects::domain_view(&svc, &d));
        }
    }
    Ok(ok(
        json!({"domains": views, "links": list_links(&svc, "auth/domains")}),
    ))
}

async fn auth_system(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let has = !svc
        .direct_role_ids(&ctx.user_id, &Scope::System)
        .await?
        .is_empty();
    let system: Vec<Value> = if has {
        vec![json!({"all": true})]
    } else {
        vec![]
    };
    Ok(ok(
        json!({"system": system, "links": list_links(&svc, "auth/system")}),
    ))
}
