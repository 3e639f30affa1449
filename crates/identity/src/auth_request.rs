//! The `auth` document of `POST /v3/auth/tokens` as types (v2.0's
//! `POST /v2.0/tokens` is translated into it). A document of the wrong
//! shape is refused by the JSON extractor with a 400 naming the field;
//! what the types cannot say (one of `id` or `name`, the method's section
//! present) the service checks.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// `{"auth": …}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AuthRequest {
    pub auth: Auth,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Auth {
    pub identity: Identity,
    /// Absent: the user's default project if it may use it, else unscoped.
    pub scope: Option<ScopeRequest>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Identity {
    /// The first one authenticates; the others are recorded in the token.
    pub methods: Vec<String>,
    pub password: Option<PasswordMethod>,
    pub token: Option<TokenMethod>,
    pub application_credential: Option<AppCredMethod>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PasswordMethod {
    pub user: UserRef,
}

/// A user by `id`, or by `name` in a `domain`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UserRef {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain: Option<DomainRef>,
    pub password: Option<String>,
}

/// A domain by `id` or by `name`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DomainRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TokenMethod {
    pub id: String,
}

/// An application credential by `id`, or by `name` with its `user`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AppCredMethod {
    pub id: Option<String>,
    pub name: Option<String>,
    pub user: Option<UserRef>,
    pub secret: String,
}

/// `"unscoped"`, or an object naming a project, a domain or the system.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ScopeRequest {
    Target(ScopeTarget),
    Named(String),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ScopeTarget {
    pub project: Option<ProjectRef>,
    pub domain: Option<DomainRef>,
    pub system: Option<SystemScope>,
    /// Trust-scoped tokens are refused; the content is never read.
    #[serde(rename = "OS-TRUST:trust")]
    pub trust: Option<Value>,
}

/// A project by `id`, or by `name` in a `domain`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ProjectRef {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain: Option<DomainRef>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SystemScope {
    #[serde(default)]
    pub all: bool,
}
