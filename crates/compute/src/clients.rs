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

/// Cinder's error bodies: `{"badRequest": {"message": …, "code": 400}}`.
async fn volume_answer(what: &str, resp: reqwest::Response) -> Result<Option<Value>> {
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(Some(body));
    }
    let message = body
        .as_object()
        .and_then(|o| o.values().find_map(|v| v["message"].as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    Err(match status.as_u16() {
        400 => Error::BadRequest(message),
        403 => Error::Forbidden(message),
        409 => Error::Conflict(message),
        413 => Error::Forbidden(message),
        _ => Error::Internal(format!("{what} failed ({status}): {message}")),
    })
}

/// The block storage API (Cinder v3) as the `nova` service user, which
/// holds the admin role: the URL names the service user's own project
/// (Cinder refuses another), and admin rights reach every project's
/// volumes. The attachment calls ask for microversion 3.44.
pub struct VolumeClient {
    pub client: Arc<ServiceClient>,
    /// `http://host:8776` (no `/v3`).
    pub base: String,
    /// Identity's `/v3`, to learn the service user's project.
    pub auth_url: String,
    project: tokio::sync::OnceCell<String>,
}

const ATTACHMENTS_VERSION: &str = "volume 3.44";

/// A user's token and project, for the calls Nova makes as the user
/// (a boot's volumes belong to the user's project).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct UserToken {
    pub token: String,
    pub project_id: String,
}

impl VolumeClient {
    pub fn new(client: Arc<ServiceClient>, base: String, auth_url: String) -> Self {
        VolumeClient {
            client,
            base,
            auth_url,
            project: tokio::sync::OnceCell::new(),
        }
    }

    /// The service user's project id (from its token, once).
    async fn project(&self) -> Result<String> {
        self.project
            .get_or_try_init(|| async {
                let token = self.client.token().await?;
                let resp = self
                    .client
                    .http()
                    .get(format!("{}/auth/tokens?nocatalog", self.auth_url))
                    .header("x-auth-token", &token)
                    .header("x-subject-token", &token)
                    .send()
                    .await
                    .map_err(|e| Error::Unavailable(format!("identity unreachable: {e}")))?;
                let body: Value = resp.json().await.map_err(Error::internal)?;
                body["token"]["project"]["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::Unavailable("service token has no project".into()))
            })
            .await
            .cloned()
    }

    async fn url(&self, path: &str) -> Result<String> {
        Ok(format!("{}/v3/{}/{path}", self.base, self.project().await?))
    }

    /// `GET` a volume; `None` when it does not exist.
    pub async fn get_volume(&self, id: &str) -> Result<Option<Value>> {
        let url = self.url(&format!("volumes/{id}")).await?;
        let resp = self.client.send(|h| h.get(&url)).await?;
        Ok(volume_answer("volume show", resp)
            .await?
            .map(|v| v["volume"].clone()))
    }

    /// `GET` a volume with the caller's token (what the caller may see).
    pub async fn get_volume_as(
        &self,
        token: &str,
        project: &str,
        id: &str,
    ) -> Result<Option<Value>> {
        let url = format!("{}/v3/{project}/volumes/{id}", self.base);
        let resp = self
            .client
            .http()
            .get(&url)
            .header("x-auth-token", token)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("volume service unreachable: {e}")))?;
        Ok(volume_answer("volume show", resp)
            .await?
            .map(|v| v["volume"].clone()))
    }

    /// A call to the caller's project's block storage API with the
    /// caller's token (Nova's `os-volumes`/`os-snapshots` proxy acts as
    /// the user); `None` on 404.
    pub async fn call_as(
        &self,
        caller: &UserToken,
        method: reqwest::Method,
        path: &str,
        query: &[(String, String)],
        body: Option<Value>,
    ) -> Result<Option<Value>> {
        let url = format!("{}/v3/{}/{path}", self.base, caller.project_id);
        let mut req = self
            .client
            .http()
            .request(method, &url)
            .query(query)
            .header("x-auth-token", &caller.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("volume service unreachable: {e}")))?;
        volume_answer(path, resp).await
    }

    /// The volume's size in GiB; `None` when it does not exist.
    pub async fn volume_size(&self, id: &str) -> Result<Option<u64>> {
        Ok(self.get_volume(id).await?.and_then(|v| v["size"].as_u64()))
    }

    /// `POST /volumes` as the caller (boot from volume: the volume is the
    /// caller's project's); the new volume.
    pub async fn create_volume_as(&self, caller: &UserToken, volume: Value) -> Result<Value> {
        let url = format!("{}/v3/{}/volumes", self.base, caller.project_id);
        let resp = self
            .client
            .http()
            .post(&url)
            .header("x-auth-token", &caller.token)
            .json(&json!({ "volume": volume }))
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("volume service unreachable: {e}")))?;
        volume_answer("volume create", resp)
            .await?
            .map(|v| v["volume"].clone())
            .ok_or_else(|| Error::Internal("volume create returned 404".into()))
    }

    /// The id of the caller's volume named `name`, if there is one.
    pub async fn find_volume_as(&self, caller: &UserToken, name: &str) -> Result<Option<String>> {
        let url = format!("{}/v3/{}/volumes", self.base, caller.project_id);
        let resp = self
            .client
            .http()
            .get(&url)
            .query(&[("name", name)])
            .header("x-auth-token", &caller.token)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("volume service unreachable: {e}")))?;
        Ok(volume_answer("volume list", resp).await?.and_then(|v| {
            v["volumes"]
                .as_array()?
                .iter()
                .find(|x| x["name"] == name)
                .and_then(|x| x["id"].as_str().map(str::to_owned))
        }))
    }

    /// Delete a volume; one already gone is fine.
    pub async fn delete_volume(&self, id: &str) -> Result<()> {
        let url = self.url(&format!("volumes/{id}")).await?;
        let resp = self.client.send(|h| h.delete(&url)).await?;
        volume_answer("volume delete", resp).await.map(|_| ())
    }

    /// Delete a volume once Cinder has let go of it (a detach may take a
    /// moment to show); one already gone is fine.
    pub async fn delete_volume_when_free(&self, id: &str) -> Result<()> {
        let mut last = None;
        for _ in 0..20 {
            match self.delete_volume(id).await {
                Ok(()) => return Ok(()),
                Err(e @ (Error::BadRequest(_) | Error::Conflict(_))) => last = Some(e),
                Err(e) => return Err(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(last.unwrap_or_else(|| Error::Internal(format!("Volume {id} was not deleted."))))
    }

    async fn attachments_call(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>> {
        let url = self.url(path).await?;
        let resp = self
            .client
            .send(|h| {
                let r = h
                    .request(method.clone(), &url)
                    .header("openstack-api-version", ATTACHMENTS_VERSION);
                match &body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await?;
        volume_answer(what, resp).await
    }

    /// `POST /attachments`: the volume is reserved for the instance.
    pub async fn create_attachment(&self, volume_id: &str, instance_id: &str) -> Result<Value> {
        let body = json!({"attachment": {"volume_uuid": volume_id, "instance_uuid": instance_id}});
        self.attachments_call(
            "attachment create",
            reqwest::Method::POST,
            "attachments",
            Some(body),
        )
        .await?
        .map(|v| v["attachment"].clone())
        .ok_or_else(|| Error::NotFound(format!("Volume {volume_id} could not be found.")))
    }

    /// `PUT /attachments/{id}` with the host's connector: the connection_info.
    pub async fn update_attachment(&self, id: &str, connector: Value) -> Result<Value> {
        let body = json!({"attachment": {"connector": connector}});
        self.attachments_call(
            "attachment update",
            reqwest::Method::PUT,
            &format!("attachments/{id}"),
            Some(body),
        )
        .await?
        .map(|v| v["attachment"].clone())
        .ok_or_else(|| Error::NotFound(format!("Attachment {id} could not be found.")))
    }

    /// `os-complete`: the volume becomes `in-use`.
    pub async fn complete_attachment(&self, id: &str) -> Result<()> {
        self.attachments_call(
            "attachment complete",
            reqwest::Method::POST,
            &format!("attachments/{id}/action"),
            Some(json!({"os-complete": null})),
        )
        .await?
        .ok_or_else(|| Error::NotFound(format!("Attachment {id} could not be found.")))
        .map(|_| ())
    }

    /// The attachments of `volume_id` to `instance_id` (every status), as
    /// the attachments API lists them (`id`, `status`, …).
    pub async fn attachments_of(&self, volume_id: &str, instance_id: &str) -> Result<Vec<Value>> {
        let path =
            format!("attachments?all_tenants=1&volume_id={volume_id}&instance_id={instance_id}");
        let v = self
            .attachments_call("attachment list", reqwest::Method::GET, &path, None)
            .await?
            .unwrap_or_default();
        Ok(v["attachments"].as_array().cloned().unwrap_or_default())
    }

    /// `os-reimage` (volume API 3.68) of a `reserved` volume: Cinder
    /// writes the image over it (`downloading`, then `reserved` again).
    pub async fn reimage(&self, volume_id: &str, image_id: &str) -> Result<()> {
        let url = self.url(&format!("volumes/{volume_id}/action")).await?;
        let body = json!({"os-reimage": {"image_id": image_id, "reimage_reserved": true}});
        let resp = self
            .client
            .send(|h| {
                h.post(&url)
                    .header("openstack-api-version", "volume 3.68")
                    .json(&body)
            })
            .await?;
        volume_answer("volume re-image", resp)
            .await?
            .map(|_| ())
            .ok_or_else(|| Error::NotFound(format!("Volume {volume_id} could not be found.")))
    }

    /// `os-update_snapshot_status` (what Nova's host reports of an
    /// assisted snapshot); `None` when Cinder has no such snapshot.
    pub async fn update_snapshot_status(&self, id: &str, status: &str) -> Result<Option<Value>> {
        let url = self.url(&format!("snapshots/{id}/action")).await?;
        let body = json!({"os-update_snapshot_status": {"status": status}});
        let resp = self.client.send(|h| h.post(&url).json(&body)).await?;
        volume_answer("snapshot status update", resp).await
    }

    /// `DELETE /attachments/{id}`; one already gone is fine.
    pub async fn delete_attachment(&self, id: &str) -> Result<()> {
        self.attachments_call(
            "attachment delete",
            reqwest::Method::DELETE,
            &format!("attachments/{id}"),
            None,
        )
        .await
        .map(|_| ())
    }
}

/// The `attachment_id` of `volume`'s attachment to `instance_id`, if any
/// (Cinder's volume view lists them), so a create that crashed before
/// its answer was recorded is found again.
pub fn attachment_of(volume: &Value, instance_id: &str) -> Option<String> {
    volume["attachments"]
        .as_array()?
        .iter()
        .find(|a| a["server_id"] == instance_id)
        .and_then(|a| a["attachment_id"].as_str().or(a["id"].as_str()))
        .map(str::to_owned)
}
