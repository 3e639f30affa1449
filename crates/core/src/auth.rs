//! Token authentication shared by every service: the middleware validates
//! `X-Auth-Token` once per request and exposes who is calling to handlers.

use crate::error::Error;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

/// Who is calling, and in which scope, as carried by a validated token.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
    pub system_scope: bool,
    pub roles: Vec<NamedRef>,
    pub methods: Vec<String>,
    pub audit_ids: Vec<String>,
    pub issued_at: String,
    pub expires_at: String,
    pub application_credential_id: Option<String>,
    /// True when the project is the deployment's admin project (Keystone's
    /// `is_admin_project`), which the default policies treat as cloud admin.
    pub is_admin_project: bool,
    /// An application credential's access rules: when present, only
    /// matching requests are allowed (Keystone's access rules).
    #[serde(default)]
    pub access_rules: Option<Vec<AccessRule>>,
    /// The raw token, so a service can forward it (e.g. Nova to Glance).
    #[serde(skip)]
    pub token: String,
}

/// One application-credential access rule: a service type, a request path
/// where `*` matches one segment and `**` any number, and an HTTP method.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessRule {
    pub service: String,
    pub path: String,
    pub method: String,
}

impl AccessRule {
    pub fn allows(&self, service: &str, method: &str, path: &str) -> bool {
        self.service == service
            && self.method.eq_ignore_ascii_case(method)
            && path_matches(&self.path, path)
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let split = |x: &str| -> Vec<String> {
        x.trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (p, s) = (split(pattern), split(path));
    go(
        &p.iter().map(String::as_str).collect::<Vec<_>>(),
        &s.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

impl AuthContext {
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.name.eq_ignore_ascii_case(name))
    }
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }
    pub fn role_names(&self) -> Vec<&str> {
        self.roles.iter().map(|r| r.name.as_str()).collect()
    }
}

/// Validates tokens. The identity service implements it locally; other
/// services use a remote implementation that asks identity with a service token.
#[async_trait::async_trait]
pub trait TokenValidator: Send + Sync {
    async fn validate(&self, token: &str) -> Result<AuthContext, Error>;
}

pub type SharedValidator = Arc<dyn TokenValidator>;

/// The outcome of validating the request's token, stored by [`auth_layer`].
#[derive(Clone)]
struct TokenOutcome(Result<Arc<AuthContext>, Error>);

/// What [`auth_layer`] needs: the validator and the service type of the API
/// it guards (for application-credential access rules).
#[derive(Clone)]
pub struct AuthLayer {
    pub validator: SharedValidator,
    pub service_type: &'static str,
}

/// Validates `X-Auth-Token` when present. Failure is not answered here: the
/// handlers that need a caller use [`Authenticated`], which turns it into 401,
/// while public routes (version discovery, token issue) never look. A token
/// from an application credential with access rules only passes for
/// requests a rule allows.
pub async fn auth_layer(State(layer): State<AuthLayer>, mut req: Request, next: Next) -> Response {
    if let Some(value) = req.headers().get("x-auth-token") {
        let outcome = match value.to_str() {
            Ok(token) if !token.is_empty() => layer.validator.validate(token).await.and_then(|mut ctx| {
                if let Some(rules) = &ctx.access_rules {
                    let (method, path) = (req.method().as_str(), req.uri().path());
                    if !rules.iter().any(|r| r.allows(layer.service_type, method, path)) {
                        return Err(Error::Unauthorized(
                            "The request you have made is not permitted by the application credential's access rules.".into(),
                        ));
                    }
                }
                ctx.token = token.to_owned();
                Ok(Arc::new(ctx))
            }),
            _ => Err(Error::Unauthorized(
                "The request you have made requires authentication.".into(),
            )),
        };
        req.extensions_mut().insert(TokenOutcome(outcome));
    }
    next.run(req).await
}

/// Extractor for handlers that require a valid token.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Arc<AuthContext>);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        match parts.extensions.get::<TokenOutcome>() {
            Some(TokenOutcome(Ok(ctx))) => Ok(Authenticated(ctx.clone())),
            Some(TokenOutcome(Err(e))) => Err(e.clone()),
            None => Err(Error::Unauthorized(
                "The request you have made requires authentication.".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rule_paths() {
        let r = AccessRule {
            service: "image".into(),
            path: "/v2/images/*".into(),
            method: "GET".into(),
        };
        assert!(r.allows("image", "GET", "/v2/images/abc"));
        assert!(!r.allows("image", "GET", "/v2/images/abc/file"));
        assert!(!r.allows("image", "DELETE", "/v2/images/abc"));
        assert!(!r.allows("network", "GET", "/v2/images/abc"));
        let any = AccessRule {
            service: "compute".into(),
            path: "/v2.1/servers/**".into(),
            method: "GET".into(),
        };
        assert!(any.allows("compute", "GET", "/v2.1/servers/x/ips"));
        assert!(any.allows("compute", "GET", "/v2.1/servers"));
    }
}
