//! EC2 credentials (`openstack ec2 credentials create`) looked up in the
//! identity service: what an S3 request's access key stands for. Apart
//! from the S3 handlers so that the object service can own the cache
//! without importing them.

use super::error::S3Error;
use axum::http::StatusCode;
use ferrostack_core::auth::{AuthContext, NamedRef};
use ferrostack_core::service_client::{ServiceClient, ServiceCredentials};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// An EC2 credential as the identity service keeps it.
#[derive(Clone)]
pub(crate) struct Credential {
    pub(crate) secret: String,
    pub(crate) ctx: Arc<AuthContext>,
}

/// Looks up EC2 credentials in the identity service as the `swift`
/// service user (Keystone keys them by the SHA-256 of the access key),
/// with the user's roles in the credential's project; cached briefly.
pub struct Ec2Credentials {
    client: ServiceClient,
    base: String,
    cache: Mutex<HashMap<String, (Instant, Credential)>>,
}

impl Ec2Credentials {
    pub fn new(cfg: &ferrostack_core::config::Config) -> Self {
        let creds = ServiceCredentials::for_user(cfg, "swift");
        Ec2Credentials {
            base: creds.auth_url.trim_end_matches('/').to_owned(),
            client: ServiceClient::new(creds),
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn get_json(&self, url: String) -> Result<serde_json::Value, S3Error> {
        let r = self
            .client
            .send(|h| h.get(url.clone()))
            .await
            .map_err(|_| S3Error::internal())?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(S3Error::new(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            ));
        }
        if !r.status().is_success() {
            return Err(S3Error::internal());
        }
        r.json().await.map_err(|_| S3Error::internal())
    }

    pub(crate) async fn lookup(&self, access: &str) -> Result<Credential, S3Error> {
        if let Some((at, c)) = self.cache.lock().await.get(access) {
            if at.elapsed() < Duration::from_secs(30) {
                return Ok(c.clone());
            }
        }
        let id = hex(&Sha256::digest(access.as_bytes()));
        let doc = self
            .get_json(format!("{}/credentials/{id}", self.base))
            .await?;
        let cred = &doc["credential"];
        let blob: serde_json::Value =
            serde_json::from_str(cred["blob"].as_str().unwrap_or("{}")).unwrap_or_default();
        let (user, project) = (
            cred["user_id"].as_str().unwrap_or_default(),
            cred["project_id"].as_str().unwrap_or_default(),
        );
        let roles = self
            .get_json(format!(
                "{}/role_assignments?user.id={user}&scope.project.id={project}&effective&include_names",
                self.base
            ))
            .await?;
        let roles = roles["role_assignments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| NamedRef {
                id: a["role"]["id"].as_str().unwrap_or_default().into(),
                name: a["role"]["name"].as_str().unwrap_or_default().into(),
            })
            .collect();
        let ctx = AuthContext {
            user_id: user.into(),
            project_id: Some(project.into()),
            roles,
            ..Default::default()
        };
        let c = Credential {
            secret: blob["secret"].as_str().unwrap_or_default().into(),
            ctx: Arc::new(ctx),
        };
        self.cache
            .lock()
            .await
            .insert(access.into(), (Instant::now(), c.clone()));
        Ok(c)
    }
}

/// Lower-case hex of bytes (key ids, signatures, payload hashes).
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
