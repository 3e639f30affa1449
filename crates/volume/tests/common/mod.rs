//! The harness the data tests share: the volume API in-process with the
//! identity service and the file backend (`qemu-img`), and data checks
//! with `qemu-io`.
#![allow(dead_code)]

use ferrostack_volume::backend::FileBackend;
use ferrostack_volume::VolumeService;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Cloud {
    pub kit: ferrostack_testkit::TestCloud,
    pub url: String,
    pub svc: Arc<VolumeService>,
    pub http: reqwest::Client,
}

pub struct User {
    pub token: String,
    pub project: String,
}

pub async fn start(name: &str) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("volume-{name}"), |_| {}).await;
    serve(kit).await
}

/// The volume API with an image service next to it (its port in the
/// config the volume service reads); the image service's URL.
pub async fn start_with_images(name: &str) -> (Cloud, String) {
    let mut kit = ferrostack_testkit::start(&format!("volume-{name}"), |_| {}).await;
    let url = format!("sqlite://{}/image.sqlite?mode=rwc", kit.dir.display());
    let db = ferrostack_db::Db::connect(&url).await.unwrap();
    db.migrate(ferrostack_image::store::MIGRATIONS)
        .await
        .unwrap();
    let images = ferrostack_image::ImageService::new(db, kit.config.clone(), kit.bus.clone())
        .await
        .unwrap();
    let image_url = ferrostack_testkit::serve(ferrostack_image::api::router(
        images,
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    kit.config.image.port = image_url.rsplit(':').next().unwrap().parse().unwrap();
    kit.config.service_auth.auth_url = kit.auth_uri();
    (serve(kit).await, image_url)
}

/// A volume service over the kit's volume database (a restarted one when
/// called again).
pub async fn service(kit: &ferrostack_testkit::TestCloud) -> Arc<VolumeService> {
    let url = format!("sqlite://{}/volume.sqlite?mode=rwc", kit.dir.display());
    let db = ferrostack_db::Db::connect(&url).await.unwrap();
    db.migrate(ferrostack_volume::store::MIGRATIONS)
        .await
        .unwrap();
    let backend = Arc::new(FileBackend::new(kit.config.volumes_dir(), "qcow2").unwrap());
    VolumeService::new(db, kit.config.clone(), kit.bus.clone(), backend)
        .await
        .unwrap()
}

async fn serve(kit: ferrostack_testkit::TestCloud) -> Cloud {
    let svc = service(&kit).await;
    let url = ferrostack_testkit::serve(ferrostack_volume::api::router(
        svc.clone(),
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    Cloud {
        kit,
        url,
        svc,
        http: reqwest::Client::new(),
    }
}

impl Cloud {
    pub async fn user(&self, name: &str, project: &str) -> User {
        let token = self.kit.token(name, project).await;
        let project = self.kit.project_of(&token).await;
        User { token, project }
    }

    pub async fn call(
        &self,
        u: &User,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_at(u, "3.0", method, path, body).await
    }

    /// [`Cloud::call`] at a microversion.
    pub async fn call_at(
        &self,
        u: &User,
        version: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/v3/{}{path}", self.url, u.project))
            .header("x-auth-token", &u.token)
            .header("openstack-api-version", format!("volume {version}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// Wait until `GET path` shows `key.status == status` (or 404 for "deleted").
    pub async fn wait(&self, u: &User, path: &str, key: &str, status: &str) -> Value {
        self.wait_at(u, "3.0", path, key, status).await
    }

    /// [`Cloud::wait`] at a microversion.
    pub async fn wait_at(
        &self,
        u: &User,
        version: &str,
        path: &str,
        key: &str,
        status: &str,
    ) -> Value {
        for _ in 0..400 {
            let (st, v) = self.call_at(u, version, Method::GET, path, None).await;
            if status == "deleted" && st == StatusCode::NOT_FOUND {
                return v;
            }
            if v[key]["status"] == status {
                return v[key].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ops: Vec<(String, String)> = ferrostack_db::sqlx::query_as::<_, (String, String)>(
            "SELECT kind, COALESCE(error, state) FROM operations",
        )
        .fetch_all(&self.svc.db.pool)
        .await
        .unwrap_or_default();
        let (_, last) = self.call_at(u, version, Method::GET, path, None).await;
        panic!("{path} never became {status}: {last} (operations: {ops:?})");
    }

    pub async fn volume(&self, u: &User, body: Value) -> String {
        let (st, v) = self
            .call(u, Method::POST, "/volumes", Some(json!({ "volume": body })))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let id = v["volume"]["id"].as_str().unwrap().to_owned();
        self.wait(u, &format!("/volumes/{id}"), "volume", "available")
            .await;
        id
    }

    pub fn volume_file(&self, id: &str) -> PathBuf {
        self.kit.config.volumes_dir().join(format!("volume-{id}"))
    }
}

/// Write 64 KiB of `pattern` at offset 0 of a qcow2 file.
pub fn write_pattern(file: &PathBuf, pattern: u8) {
    let out = std::process::Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", &format!("write -P {pattern} 0 64k")])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the first 64 KiB of a qcow2 file are `pattern`.
pub fn has_pattern(file: &PathBuf, pattern: u8) -> bool {
    let out = std::process::Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", &format!("read -P {pattern} 0 64k")])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    out.status.success() && !text.contains("Pattern verification failed")
}
