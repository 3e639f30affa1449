//! The identity calls a login needs: authenticate (password or application
//! credential), list the user's projects, rescope to one, revoke on logout.

use crate::session::{Identity, ProjectRef};
use ferrostack_core::error::Error;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// How the user proves who they are.
pub enum Credentials {
    Password {
        domain: String,
        user: String,
        password: String,
    },
    ApplicationCredential {
        id: String,
        secret: String,
    },
}

/// A scoped token with what the session keeps of it.
pub struct Scoped {
    pub token: String,
    pub identity: Identity,
    pub catalog: HashMap<String, String>,
    pub lifetime: Duration,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: String,
    user: Named,
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Named>,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
    #[serde(default)]
    methods: Vec<String>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    name: String,
    domain: Option<Box<Named>>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    kind: String,
    endpoints: Vec<Endpoint>,
}

#[derive(Deserialize)]
struct Endpoint {
    interface: String,
    url: String,
}

#[derive(Deserialize)]
struct ProjectList {
    projects: Vec<ProjectItem>,
}

#[derive(Deserialize)]
struct ProjectItem {
    id: String,
    name: String,
    domain_id: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

pub struct Keystone {
    auth_url: String,
    http: reqwest::Client,
}

impl Keystone {
    pub fn new(auth_url: String, http: reqwest::Client) -> Keystone {
        Keystone {
            auth_url: auth_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// Log in and scope to `project` (a name or id; else the token's own
    /// project, else the first the user has).
    pub async fn login(&self, creds: &Credentials, project: Option<&str>) -> Result<Scoped, Error> {
        let identity = match creds {
            Credentials::Password {
                domain,
                user,
                password,
            } => json!({"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": domain}, "password": password}}}),
            Credentials::ApplicationCredential { id, secret } => json!({
                "methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret}}),
        };
        let (token, first) = self.issue(json!({"auth": {"identity": identity}})).await?;
        if matches!(creds, Credentials::ApplicationCredential { .. }) {
            // Bound to its project; it cannot be rescoped.
            return self.scoped(token, first, None).await;
        }
        let projects = self.projects(&token).await?;
        let current = first.token.project.as_ref().map(|p| p.id.clone());
        let wanted = match project.filter(|p| !p.is_empty()) {
            Some(p) => projects
                .iter()
                .find(|x| x.id == p || x.name == p)
                .ok_or_else(|| {
                    Error::Unauthorized(format!("You have no role on the project '{p}'."))
                })?,
            None => projects
                .iter()
                .find(|x| Some(&x.id) == current.as_ref())
                .or_else(|| projects.first())
                .ok_or_else(|| Error::Unauthorized("You have no role on any project.".into()))?,
        };
        let wanted = wanted.id.clone();
        if Some(&wanted) == current.as_ref() {
            return self.scoped(token, first, Some(projects)).await;
        }
        self.rescope(&token, &wanted, projects).await
    }

    /// A token for `project_id` from an existing token (the project switcher).
    pub async fn rescope(
        &self,
        token: &str,
        project_id: &str,
        projects: Vec<ProjectRef>,
    ) -> Result<Scoped, Error> {
        let (scoped, body) = self
            .issue(json!({"auth": {
                "identity": {"methods": ["token"], "token": {"id": token}},
                "scope": {"project": {"id": project_id}}}}))
            .await?;
        self.scoped(scoped, body, Some(projects)).await
    }

    /// Revoke `token` (logout); failures only logged, the session ends anyway.
    pub async fn revoke(&self, token: &str) {
        let sent = self
            .http
            .delete(format!("{}/auth/tokens", self.auth_url))
            .header("x-auth-token", token)
            .header("x-subject-token", token)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!("token revocation on logout failed: {e}");
        }
    }

    async fn scoped(
        &self,
        token: String,
        body: TokenBody,
        projects: Option<Vec<ProjectRef>>,
    ) -> Result<Scoped, Error> {
        let info = body.token;
        let project = info.project.ok_or_else(|| {
            Error::Unauthorized("The credentials give no project-scoped token.".into())
        })?;
        let project = ProjectRef {
            id: project.id,
            name: project.name,
            domain_id: project.domain.map(|d| d.id).unwrap_or_default(),
        };
        let projects = projects.unwrap_or_else(|| vec![project.clone()]);
        let (user_domain_id, user_domain_name) =
            info.user.domain.map(|d| (d.id, d.name)).unwrap_or_default();
        let lifetime = chrono::DateTime::parse_from_rfc3339(&info.expires_at)
            .ok()
            .and_then(|t| {
                (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .ok()
            })
            .unwrap_or(Duration::from_secs(3600));
        let catalog = info
            .catalog
            .into_iter()
            .filter_map(|e| {
                let url = e
                    .endpoints
                    .into_iter()
                    .find(|p| p.interface == "public")?
                    .url;
                Some((e.kind, url.trim_end_matches('/').to_owned()))
            })
            .collect();
        Ok(Scoped {
            token,
            identity: Identity {
                user_id: info.user.id,
                user_name: info.user.name,
                user_domain_id,
                user_domain_name,
                project,
                roles: info.roles.into_iter().map(|r| r.name).collect(),
                projects,
                method: info.methods.first().cloned().unwrap_or_default(),
            },
            catalog,
            lifetime,
        })
    }

    /// POST /auth/tokens: the token and its body, or the identity
    /// service's refusal in words a person understands.
    async fn issue(&self, body: Value) -> Result<(String, TokenBody), Error> {
        let resp = self
            .http
            .post(format!("{}/auth/tokens", self.auth_url))
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("The identity service is unreachable: {e}")))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Error::Unauthorized(
                "Invalid credentials: the domain, user name or password is wrong.".into(),
            ));
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(upstream_error(status, &text));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Unavailable("The identity service returned no token.".into()))?
            .to_owned();
        let body = resp
            .json::<TokenBody>()
            .await
            .map_err(|e| Error::Unavailable(format!("Unreadable identity answer: {e}")))?;
        Ok((token, body))
    }

    async fn projects(&self, token: &str) -> Result<Vec<ProjectRef>, Error> {
        let resp = self
            .http
            .get(format!("{}/auth/projects", self.auth_url))
            .header("x-auth-token", token)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("The identity service is unreachable: {e}")))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(upstream_error(status, &text));
        }
        let list = resp
            .json::<ProjectList>()
            .await
            .map_err(|e| Error::Unavailable(format!("Unreadable identity answer: {e}")))?;
        let mut projects: Vec<ProjectRef> = list
            .projects
            .into_iter()
            .filter(|p| p.enabled)
            .map(|p| ProjectRef {
                id: p.id,
                name: p.name,
                domain_id: p.domain_id,
            })
            .collect();
        projects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(projects)
    }
}

/// An identity error answer as our error, keeping Keystone's message.
fn upstream_error(status: reqwest::StatusCode, text: &str) -> Error {
    let message = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("The identity service answered HTTP {status}."));
    match status.as_u16() {
        400 => Error::BadRequest(message),
        403 => Error::Forbidden(message),
        404 => Error::NotFound(message),
        s if s >= 500 => Error::Unavailable(message),
        _ => Error::Status(
            axum::http::StatusCode::from_u16(status.as_u16())
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
            message,
        ),
    }
}
