//! The image service as the compute side uses it (as the `nova` service
//! user): image records, streamed downloads into the cache and streamed
//! snapshot uploads — image data never sits whole in memory.

use ferrostack_core::service_client::{
    file_body, transfer_timeout, ServiceClient, DOWNLOAD_TIMEOUT,
};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

#[derive(Clone)]
pub struct ImageClient {
    pub client: Arc<ServiceClient>,
    /// The image API's root (`http://host:9292`).
    pub base: String,
}

/// What went wrong talking to the image service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Failed(String),
}

impl From<ferrostack_core::Error> for ImageApiError {
    fn from(e: ferrostack_core::Error) -> Self {
        ImageApiError::Failed(e.message().to_owned())
    }
}

pub type Result<T> = std::result::Result<T, ImageApiError>;

/// Map the image service's answer to its JSON body (`None` for 404).
async fn answer(what: &str, resp: reqwest::Response) -> Result<Option<Value>> {
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(Some(Value::Null));
    }
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(Some(serde_json::from_str(&text).unwrap_or(Value::Null)));
    }
    let text: String = text.chars().take(300).collect();
    let message = format!("{what} failed ({status}): {}", text.trim());
    Err(match status.as_u16() {
        400 | 413 | 415 => ImageApiError::BadRequest(message),
        403 => ImageApiError::Forbidden(message),
        409 => ImageApiError::Conflict(message),
        _ => ImageApiError::Failed(message),
    })
}

impl ImageClient {
    pub async fn get(&self, id: &str) -> Result<Option<Value>> {
        let url = format!("{}/v2/images/{id}", self.base);
        let resp = self.client.send(|h| h.get(&url)).await?;
        answer("image show", resp).await
    }

    /// Create an image record with the caller's token (so the caller owns it).
    pub async fn create_as(&self, token: &str, body: &Value) -> Result<Value> {
        let url = format!("{}/v2/images", self.base);
        let resp = self
            .client
            .http()
            .post(&url)
            .header("x-auth-token", token)
            .json(body)
            .send()
            .await
            .map_err(|e| ImageApiError::Failed(format!("image service unreachable: {e}")))?;
        answer("image create", resp)
            .await?
            .ok_or_else(|| ImageApiError::Failed("image create answered 404".into()))
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        let url = format!("{}/v2/images/{id}", self.base);
        let resp = self.client.send(|h| h.delete(&url)).await?;
        answer("image delete", resp).await.map(|_| ())
    }

    /// Every image the `nova` user can see (for backup rotation).
    pub async fn list(&self, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        let url = format!("{}/v2/images", self.base);
        let resp = self.client.send(|h| h.get(&url).query(query)).await?;
        Ok(answer("image list", resp)
            .await?
            .and_then(|v| v["images"].as_array().cloned())
            .unwrap_or_default())
    }

    /// Stream the image's data into `dest` (created or truncated).
    pub async fn download(&self, id: &str, dest: &Path) -> Result<u64> {
        let url = format!("{}/v2/images/{id}/file", self.base);
        let mut resp = self
            .client
            .send(|h| h.get(&url).timeout(DOWNLOAD_TIMEOUT))
            .await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            return Err(ImageApiError::BadRequest(format!(
                "Image {id} has no data."
            )));
        }
        if !status.is_success() {
            return match answer("image download", resp).await? {
                None => Err(ImageApiError::NotFound(format!(
                    "Image {id} could not be found."
                ))),
                Some(_) => Err(ImageApiError::Failed(format!(
                    "image {id} download failed: HTTP {status}"
                ))),
            };
        }
        let fail =
            |e: std::io::Error| ImageApiError::Failed(format!("writing {}: {e}", dest.display()));
        let mut file = tokio::fs::File::create(dest).await.map_err(fail)?;
        let mut written = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ImageApiError::Failed(format!("image {id} download broke off: {e}")))?
        {
            file.write_all(&chunk).await.map_err(fail)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(fail)?;
        file.sync_all().await.map_err(fail)?;
        Ok(written)
    }

    /// Stream a file as the image's data (`PUT /v2/images/{id}/file`).
    pub async fn upload_file(&self, id: &str, path: &Path) -> Result<()> {
        let url = format!("{}/v2/images/{id}/file", self.base);
        let len = tokio::fs::metadata(path)
            .await
            .map_err(|e| ImageApiError::Failed(format!("reading {}: {e}", path.display())))?
            .len();
        let resp = self
            .client
            .send(|h| {
                // Each attempt (a retry after a token refresh) opens the file anew.
                h.put(&url)
                    .timeout(transfer_timeout(len))
                    .header("content-type", "application/octet-stream")
                    .header("content-length", len)
                    .body(file_body(path.to_owned()))
            })
            .await?;
        answer("image upload", resp).await.map(|_| ())
    }
}
