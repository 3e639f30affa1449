//! Glance's swift store, single-tenant: active images' data are objects
//! named by image id in one container (`glance`) of the image service's
//! own account, reached over the Swift API with its service-user token.
//! Bodies are streamed both ways (from the verified temporary file up, from
//! the object service's response down); nothing is held in memory.

use crate::backend::{DataStream, ImageData, Written};
use ferrostack_core::config::Config;
use ferrostack_core::service_client::{ServiceClient, ServiceCredentials};
use ferrostack_core::Error;
use futures::TryStreamExt;
use reqwest::{Method, StatusCode};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Data calls may take as long as a large image needs; the service client's
/// one-minute limit is for control calls.
const DATA_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

pub struct SwiftStore {
    client: ServiceClient,
    auth_url: String,
    /// Configured storage URL; empty means derived from the token.
    endpoint: String,
    /// `http://<public_host>:<object.port>`, for the derived storage URL.
    object_base: String,
    container: String,
    /// The container's URL once it is known to exist.
    container_url: OnceCell<String>,
}

fn store_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("The swift store could not {what}: {e}"))
}

impl SwiftStore {
    pub fn new(cfg: &Config) -> Self {
        SwiftStore {
            client: ServiceClient::new(ServiceCredentials::for_user(cfg, "glance")),
            auth_url: cfg.service_auth_url(),
            endpoint: cfg
                .image
                .swift_store_endpoint
                .trim_end_matches('/')
                .to_owned(),
            object_base: cfg.public_url(cfg.object.port),
            container: cfg.image.swift_store_container.clone(),
            container_url: OnceCell::new(),
        }
    }

    /// The account's storage URL: configured, or `AUTH_<project>` of the
    /// service token (as the catalog's `/v1/AUTH_$(tenant_id)s` gives it).
    async fn account_url(&self) -> Result<String, Error> {
        if !self.endpoint.is_empty() {
            return Ok(self.endpoint.clone());
        }
        let token = self.client.token().await?;
        let url = format!("{}/auth/tokens?nocatalog", self.auth_url);
        let resp = self
            .client
            .send(|h| h.get(&url).header("x-subject-token", &token))
            .await?;
        if !resp.status().is_success() {
            return Err(store_error("validate its token", resp.status()));
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| store_error("read its token", e))?;
        let project = body["token"]["project"]["id"]
            .as_str()
            .ok_or_else(|| store_error("find its project", "the token is not project-scoped"))?;
        Ok(format!("{}/v1/AUTH_{project}", self.object_base))
    }

    /// The container, created on first use (Glance's
    /// `swift_store_create_container_on_put`).
    async fn container_url(&self) -> Result<&str, Error> {
        self.container_url
            .get_or_try_init(|| async {
                let url = format!("{}/{}", self.account_url().await?, self.container);
                let resp = self.client.send(|h| h.put(&url)).await?;
                match resp.status() {
                    StatusCode::CREATED | StatusCode::ACCEPTED | StatusCode::NO_CONTENT => Ok(url),
                    s => Err(store_error("create its container", s)),
                }
            })
            .await
            .map(String::as_str)
    }

    /// One data call with the service token, once more with a fresh token
    /// after a 401; `body` builds the request body for each attempt.
    async fn data_call(
        &self,
        method: Method,
        url: &str,
        range: Option<String>,
        body: Option<&Written>,
    ) -> Result<reqwest::Response, Error> {
        for attempt in 0..2 {
            let token = self.client.token().await?;
            let mut req = self
                .client
                .http()
                .request(method.clone(), url)
                .timeout(DATA_TIMEOUT)
                .header("x-auth-token", token);
            if let Some(r) = &range {
                req = req.header("range", r);
            }
            if let Some(w) = body {
                let file = tokio::fs::File::open(&w.tmp)
                    .await
                    .map_err(Error::internal)?;
                let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
                req = req
                    .header("content-length", w.size)
                    .header("etag", &w.md5)
                    .header("content-type", "application/octet-stream")
                    .body(reqwest::Body::wrap_stream(stream));
            }
            let resp = req.send().await.map_err(|e| store_error("be reached", e))?;
            if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.client.invalidate().await;
                continue;
            }
            return Ok(resp);
        }
        unreachable!("the loop returns on its second pass")
    }
}

#[async_trait::async_trait]
impl ImageData for SwiftStore {
    async fn put(&self, id: &str, w: &Written) -> Result<(), Error> {
        let url = format!("{}/{id}", self.container_url().await?);
        let resp = self.data_call(Method::PUT, &url, None, Some(w)).await?;
        match resp.status() {
            StatusCode::CREATED => {
                let _ = tokio::fs::remove_file(&w.tmp).await;
                Ok(())
            }
            StatusCode::PAYLOAD_TOO_LARGE => Err(Error::PayloadTooLarge(format!(
                "Image exceeds the swift store's object size limit ({} bytes).",
                w.size
            ))),
            s => Err(store_error("store the image data", s)),
        }
    }

    async fn get(&self, id: &str, start: u64, len: u64, size: u64) -> Result<DataStream, Error> {
        let url = format!("{}/{id}", self.container_url().await?);
        let range = (len > 0 && (start > 0 || len < size))
            .then(|| format!("bytes={start}-{}", start + len - 1));
        let resp = self.data_call(Method::GET, &url, range, None).await?;
        match resp.status() {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {}
            StatusCode::NOT_FOUND => {
                return Err(Error::Unavailable(format!(
                    "The image data of {id} is not in the swift store."
                )))
            }
            s => return Err(store_error("read the image data", s)),
        }
        let stream = resp.bytes_stream().map_err(std::io::Error::other);
        Ok(Box::pin(stream) as DataStream)
    }

    async fn delete(&self, id: &str) -> Result<(), Error> {
        let url = format!("{}/{id}", self.container_url().await?);
        let resp = self.data_call(Method::DELETE, &url, None, None).await?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            s => Err(store_error("delete the image data", s)),
        }
    }
}
