//! The compute service's calls to the networking and image APIs, made as
//! the `nova` service user (as Nova calls Neutron and Glance).

use ferrostack_core::service_client::ServiceClient;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;

/// Map a peer's answer to our error (or its JSON body).
async fn answer(what: &str, resp: reqwest::Response) -> Result<Option<Value>> {
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(Some(Value::Null));
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(Some(body));
    }
    let message = body["NeutronError"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    let message = format!("{what} failed ({status}): {message}");
    Err(match status.as_u16() {
        400 => Error::BadRequest(message),
        403 => Error::Forbidden(message),
        409 => Error::Conflict(message),
        _ => Error::Internal(message),
    })
}

#[derive(Clone)]
pub struct NetworkClient {
    pub client: Arc<ServiceClient>,
    pub base: String,
}

impl NetworkClient {
    pub async fn get(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        let url = format!("{}/v2.0/{kind}s/{id}", self.base);
        let resp = self.client.send(|h| h.get(&url)).await?;
        Ok(answer(&format!("GET {kind} {id}"), resp)
            .await?
            .map(|v| v[kind].clone()))
    }

    pub async fn list(&self, plural: &str, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        let url = format!("{}/v2.0/{plural}", self.base);
        let resp = self.client.send(|h| h.get(&url).query(query)).await?;
        Ok(answer(&format!("GET {plural}"), resp)
            .await?
            // `security-groups` in the path, `security_groups` in the body.
            .and_then(|v| v[plural.replace('-', "_")].as_array().cloned())
            .unwrap_or_default())
    }

    pub async fn create_port(&self, port: Value) -> Result<Value> {
        let url = format!("{}/v2.0/ports", self.base);
        let body = json!({ "port": port });
        let resp = self.client.send(|h| h.post(&url).json(&body)).await?;
        answer("port create", resp)
            .await?
            .map(|v| v["port"].clone())
            .ok_or_else(|| Error::BadRequest("Network not found.".into()))
    }

    pub async fn update_port(&self, id: &str, port: Value) -> Result<Option<Value>> {
        let url = format!("{}/v2.0/ports/{id}", self.base);
        let body = json!({ "port": port });
        let resp = self.client.send(|h| h.put(&url).json(&body)).await?;
        Ok(answer("port update", resp)
            .await?
            .map(|v| v["port"].clone()))
    }

    /// `POST /v2.0/{kind}s` with `{kind: body}`; the created resource.
    pub async fn create(&self, kind: &str, body: Value) -> Result<Value> {
        let url = format!("{}/v2.0/{kind}s", self.base);
        let body = json!({ kind: body });
        let resp = self.client.send(|h| h.post(&url).json(&body)).await?;
        answer(&format!("{kind} create"), resp)
            .await?
            .map(|v| v[kind].clone())
            .ok_or_else(|| Error::NotFound(format!("{kind} create: not found")))
    }

    /// `PUT /v2.0/{kind}s/{id}`; `None` when it does not exist.
    pub async fn update(&self, kind: &str, id: &str, body: Value) -> Result<Option<Value>> {
        let url = format!("{}/v2.0/{kind}s/{id}", self.base);
        let body = json!({ kind: body });
        let resp = self.client.send(|h| h.put(&url).json(&body)).await?;
        Ok(answer(&format!("{kind} update"), resp)
            .await?
            .map(|v| v[kind].clone()))
    }

    /// `DELETE /v2.0/{kind}s/{id}`; false when it did not exist.
    pub async fn delete(&self, kind: &str, id: &str) -> Result<bool> {
        let url = format!("{}/v2.0/{kind}s/{id}", self.base);
        let resp = self.client.send(|h| h.delete(&url)).await?;
        Ok(answer(&format!("{kind} delete"), resp).await?.is_some())
    }

    /// Delete a port; one already gone is fine.
    pub async fn delete_port(&self, id: &str) -> Result<()> {
        let url = format!("{}/v2.0/ports/{id}", self.base);
        let resp = self.client.send(|h| h.delete(&url)).await?;
        answer("port delete", resp).await.map(|_| ())
    }
}

#[derive(Clone)]
pub struct ImageClient {
    pub client: Arc<ServiceClient>,
    pub base: String,
}

impl ImageClient {
    pub async fn get(&self, id: &str) -> Result<Option<Value>> {
        let url = format!("{}/v2/images/{id}", self.base);
        let resp = self.client.send(|h| h.get(&url)).await?;
        answer("image show", resp).await
    }

    /// Create an image record as the caller (so the caller owns the snapshot).
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
            .map_err(|e| Error::Unavailable(format!("image service unreachable: {e}")))?;
        answer("image create", resp)
            .await?
            .ok_or_else(|| Error::Internal("image create returned 404".into()))
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        let url = format!("{}/v2/images/{id}", self.base);
        let resp = self.client.send(|h| h.delete(&url)).await?;
        answer("image delete", resp).await.map(|_| ())
    }

    /// Download the image data into `dest` (via a temporary file).
    pub async fn download(&self, id: &str, dest: &std::path::Path) -> Result<()> {
        let url = format!("{}/v2/images/{id}/file", self.base);
        let mut resp = self.client.send(|h| h.get(&url)).await?;
        if !resp.status().is_success() && resp.status() != reqwest::StatusCode::NO_CONTENT {
            return Err(Error::Internal(format!(
                "image {id} download failed: HTTP {}",
                resp.status()
            )));
        }
        let tmp = dest.with_extension(format!("part-{}", uuid::Uuid::new_v4()));
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(Error::internal)?;
        }
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(Error::internal)?;
        use tokio::io::AsyncWriteExt;
        let result: Result<()> = async {
            while let Some(chunk) = resp.chunk().await.map_err(Error::internal)? {
                file.write_all(&chunk).await.map_err(Error::internal)?;
            }
            file.flush().await.map_err(Error::internal)?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, dest).await.map_err(Error::internal)
    }

    pub async fn upload(&self, id: &str, data: Vec<u8>) -> Result<()> {
        let url = format!("{}/v2/images/{id}/file", self.base);
        let resp = self
            .client
            .send(|h| {
                h.put(&url)
                    .header("content-type", "application/octet-stream")
                    .body(data.clone())
            })
            .await?;
        answer("image upload", resp).await.map(|_| ())
    }
}
