//! Glance v2 as the volume service calls it: records read as the caller
//! (so Glance decides what the caller may see), data streamed in and out
//! as the `cinder` service user (so a resumed operation needs no user
//! token).

use ferrostack_core::service_client::{
    file_body, transfer_timeout, ServiceClient, ServiceCredentials, DOWNLOAD_TIMEOUT,
};
use ferrostack_core::{Error, Result};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Glance v2 as the volume service calls it.
pub struct ImageClient {
    pub client: Arc<ServiceClient>,
    pub base: String,
}

impl ImageClient {
    pub fn new(config: &ferrostack_core::config::Config) -> ImageClient {
        ImageClient {
            client: Arc::new(ServiceClient::new(ServiceCredentials::for_user(
                config, "cinder",
            ))),
            base: config.public_url(config.image.port),
        }
    }

    /// An image's record as the caller sees it (`None`: not found or not visible).
    pub async fn show_as(&self, token: &str, id: &str) -> Result<Option<Value>> {
        let url = format!("{}/v2/images/{id}", self.base);
        let resp = self
            .client
            .http()
            .get(&url)
            .header("x-auth-token", token)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("image service unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        Ok(Some(resp.json().await.map_err(Error::internal)?))
    }

    /// Stream an image's data into `dest`.
    pub async fn download(&self, id: &str, dest: &Path) -> Result<()> {
        let url = format!("{}/v2/images/{id}/file", self.base);
        let mut resp = self
            .client
            .send(|h| h.get(&url).timeout(DOWNLOAD_TIMEOUT))
            .await?;
        if !resp.status().is_success() {
            return Err(Error::Internal(format!(
                "image {id} download failed: HTTP {}",
                resp.status()
            )));
        }
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(Error::internal)?;
        while let Some(chunk) = resp.chunk().await.map_err(Error::internal)? {
            file.write_all(&chunk).await.map_err(Error::internal)?;
        }
        file.flush().await.map_err(Error::internal)
    }

    /// Create an image record (owned by `owner`) as the service user.
    pub async fn create(&self, body: &Value) -> Result<Value> {
        let url = format!("{}/v2/images", self.base);
        let resp = self.client.send(|h| h.post(&url).json(body)).await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(Error::BadRequest(format!(
                "The image service refused the image ({status}): {v}"
            )));
        }
        Ok(v)
    }

    /// Upload `src` as image `id`'s data (streamed from the file).
    pub async fn upload(&self, id: &str, src: &Path) -> Result<()> {
        let url = format!("{}/v2/images/{id}/file", self.base);
        let size = tokio::fs::metadata(src)
            .await
            .map_err(Error::internal)?
            .len();
        let resp = self
            .client
            .send(|h| {
                h.put(&url)
                    .timeout(transfer_timeout(size))
                    .header("content-type", "application/octet-stream")
                    .body(file_body(src.to_owned()))
            })
            .await?;
        if !resp.status().is_success() {
            return Err(Error::Internal(format!(
                "image {id} upload failed: HTTP {}",
                resp.status()
            )));
        }
        Ok(())
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        let url = format!("{}/v2/images/{id}", self.base);
        self.client.send(|h| h.delete(&url)).await.map(|_| ())
    }
}

/// qemu's name of a Glance disk format, for those that are disks.
pub fn qemu_format(disk_format: &str) -> Option<&'static str> {
    Some(match disk_format {
        "raw" | "iso" => "raw",
        "qcow2" => "qcow2",
        "vmdk" => "vmdk",
        "vdi" => "vdi",
        "vhd" => "vpc",
        "vhdx" => "vhdx",
        _ => return None,
    })
}
