//! Service-to-service calls with a service token, as Nova calls Neutron and
//! Glance: a service user authenticates once, the token is cached and renewed
//! before it expires (or after a 401), and every call carries it.
//! [`RemoteTokenValidator`] is the keystonemiddleware equivalent for services
//! that do not run the identity service in-process.

use crate::auth::{AuthContext, NamedRef, TokenValidator};
use crate::error::Error;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Clone, Debug)]
pub struct ServiceCredentials {
    /// e.g. `http://127.0.0.1:5000/v3`
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub user_domain_id: String,
    pub project_domain_id: String,
}

impl ServiceCredentials {
    /// The deployment's service user `username` (`nova`, `neutron`, …):
    /// `[service_auth]` password when set, else the identity bootstrap's.
    pub fn for_user(cfg: &crate::config::Config, username: &str) -> ServiceCredentials {
        let password = if cfg.service_auth.password.is_empty() {
            cfg.identity.service_password.clone()
        } else {
            cfg.service_auth.password.clone()
        };
        ServiceCredentials {
            auth_url: cfg.service_auth_url(),
            username: username.into(),
            password,
            project_name: cfg.service_auth.project_name.clone(),
            user_domain_id: cfg.service_auth.user_domain_id.clone(),
            project_domain_id: cfg.service_auth.project_domain_id.clone(),
        }
    }
}

struct CachedToken {
    token: String,
    renew_at: Instant,
}

pub struct ServiceClient {
    http: reqwest::Client,
    creds: ServiceCredentials,
    token: Mutex<Option<CachedToken>>,
}

impl ServiceClient {
    pub fn new(creds: ServiceCredentials) -> Self {
        ServiceClient {
            // A call answers within a minute; one that streams data sets
            // its own, longer, limit on its request.
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("reqwest client"),
            creds,
            token: Mutex::new(None),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A valid service token, issuing a new one when none is cached or it is
    /// about to expire.
    pub async fn token(&self) -> Result<String, Error> {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            if Instant::now() < t.renew_at {
                return Ok(t.token.clone());
            }
        }
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.creds.username,
                "domain": {"id": self.creds.user_domain_id},
                "password": self.creds.password}}},
            "scope": {"project": {"name": self.creds.project_name,
                                  "domain": {"id": self.creds.project_domain_id}}}}});
        let resp = self
            .http
            .post(format!("{}/auth/tokens?nocatalog", self.creds.auth_url))
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("identity service unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(Error::Unavailable(format!(
                "service user {} could not authenticate: HTTP {}",
                self.creds.username,
                resp.status()
            )));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Unavailable("identity returned no X-Subject-Token".into()))?
            .to_owned();
        // Renew well before the (default one hour) expiry.
        *guard = Some(CachedToken {
            token: token.clone(),
            renew_at: Instant::now() + Duration::from_secs(1800),
        });
        Ok(token)
    }

    /// Forget the cached token (after a 401 from a peer).
    pub async fn invalidate(&self) {
        *self.token.lock().await = None;
    }

    /// Send `req` with the service token, retrying once with a fresh token on 401.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let resp = build(&self.http)
                .header("x-auth-token", token)
                .send()
                .await
                .map_err(|e| Error::Unavailable(format!("service call failed: {e}")))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.invalidate().await;
                continue;
            }
            return Ok(resp);
        }
        unreachable!("the loop returns on its second pass")
    }
}

/// Validates user tokens by asking the identity service, caching answers for
/// a short time as keystonemiddleware does.
pub struct RemoteTokenValidator {
    client: ServiceClient,
    cache: Mutex<HashMap<String, (Instant, AuthContext)>>,
    ttl: Duration,
}

impl RemoteTokenValidator {
    pub fn new(client: ServiceClient, ttl: Duration) -> Self {
        RemoteTokenValidator {
            client,
            cache: Mutex::new(HashMap::new()),
            ttl,
        }
    }
}

#[async_trait::async_trait]
impl TokenValidator for RemoteTokenValidator {
    async fn validate(&self, token: &str) -> Result<AuthContext, Error> {
        if let Some((at, ctx)) = self.cache.lock().await.get(token) {
            if at.elapsed() < self.ttl {
                return Ok(ctx.clone());
            }
        }
        let auth_url = self.client.creds.auth_url.clone();
        let resp = self
            .client
            .send(|http| {
                http.get(format!("{auth_url}/auth/tokens?nocatalog"))
                    .header("x-subject-token", token)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(Error::Unauthorized(
                "The request you have made requires authentication.".into(),
            ));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| Error::Unavailable(format!("bad token validation answer: {e}")))?;
        let ctx = context_from_token_body(&body["token"]);
        let mut cache = self.cache.lock().await;
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(token.to_owned(), (Instant::now(), ctx.clone()));
        Ok(ctx)
    }
}

/// Build an [`AuthContext`] from a v3 token document.
pub fn context_from_token_body(t: &Value) -> AuthContext {
    let s = |v: &Value| v.as_str().map(str::to_owned);
    AuthContext {
        user_id: s(&t["user"]["id"]).unwrap_or_default(),
        user_name: s(&t["user"]["name"]).unwrap_or_default(),
        user_domain_id: s(&t["user"]["domain"]["id"]).unwrap_or_default(),
        user_domain_name: s(&t["user"]["domain"]["name"]).unwrap_or_default(),
        project_id: s(&t["project"]["id"]),
        project_name: s(&t["project"]["name"]),
        project_domain_id: s(&t["project"]["domain"]["id"]),
        project_domain_name: s(&t["project"]["domain"]["name"]),
        domain_id: s(&t["domain"]["id"]),
        domain_name: s(&t["domain"]["name"]),
        system_scope: t.get("system").is_some(),
        roles: t["roles"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| NamedRef {
                        id: s(&r["id"]).unwrap_or_default(),
                        name: s(&r["name"]).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        methods: t["methods"]
            .as_array()
            .map(|m| m.iter().filter_map(&s).collect())
            .unwrap_or_default(),
        audit_ids: t["audit_ids"]
            .as_array()
            .map(|m| m.iter().filter_map(&s).collect())
            .unwrap_or_default(),
        issued_at: s(&t["issued_at"]).unwrap_or_default(),
        expires_at: s(&t["expires_at"]).unwrap_or_default(),
        application_credential_id: s(&t["application_credential"]["id"]),
        access_rules: t["application_credential"]["access_rules"]
            .as_array()
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| crate::auth::AccessRule {
                        service: s(&r["service"]).unwrap_or_default(),
                        path: s(&r["path"]).unwrap_or_default(),
                        method: s(&r["method"]).unwrap_or_default(),
                    })
                    .collect()
            }),
        is_admin_project: t["is_admin_project"].as_bool().unwrap_or(false),
        token: String::new(),
    }
}

/// How long a download of data from another service may take in all (its
/// size is known only at its end).
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long an upload of `bytes` to another service may take: a minute, and
/// a second per MiB (the image service hashes what it stores; a debug
/// build on a loaded host moves a GiB in well over a minute).
pub fn transfer_timeout(bytes: u64) -> Duration {
    Duration::from_secs(60 + bytes / (1 << 20))
}

/// A file as a request body, streamed in 256 KiB chunks and opened when
/// first read (so a request sent again opens it again).
pub fn file_body(path: std::path::PathBuf) -> reqwest::Body {
    use futures::StreamExt;
    let stream = futures::stream::once(async move { tokio::fs::File::open(path).await })
        .map(|opened| match opened {
            Ok(file) => tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).left_stream(),
            Err(e) => futures::stream::once(async move { Err(e) }).right_stream(),
        })
        .flatten();
    reqwest::Body::wrap_stream(stream)
}
