//! The host's image cache against a real image service and `qemu-img`:
//! a qcow2 image is converted to raw once and served from the cache after
//! that (even when the image service no longer has it); data that is not
//! a bootable disk, or not in the format its record declares, is refused
//! with a reason and leaves nothing in the cache.

use ferrostack_compute_agent::image_cache::{CacheError, ImageCache};
use ferrostack_compute_agent::image_client::ImageClient;
use ferrostack_core::service_client::{ServiceClient, ServiceCredentials};
use ferrostack_hypervisor::DiskFormat;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Glance {
    kit: ferrostack_testkit::TestCloud,
    url: String,
    token: String,
}

async fn glance() -> Glance {
    let kit = ferrostack_testkit::start("agent-image-cache", |_| {}).await;
    let db = ferrostack_db::Db::connect(&format!(
        "sqlite://{}/image.sqlite?mode=rwc",
        kit.dir.display()
    ))
    .await
    .unwrap();
    db.migrate(ferrostack_image::store::MIGRATIONS)
        .await
        .unwrap();
    let image = ferrostack_image::ImageService::new(db, kit.config.clone(), kit.bus.clone())
        .await
        .unwrap();
    let url = ferrostack_testkit::serve(ferrostack_image::api::router(
        image,
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    let token = kit.token("admin", "admin").await;
    Glance { kit, url, token }
}

impl Glance {
    async fn upload(&self, disk_format: &str, data: Vec<u8>) -> String {
        let http = &self.kit.http;
        let v: Value = http
            .post(format!("{}/v2/images", self.url))
            .header("x-auth-token", &self.token)
            .json(&json!({"name": "t", "disk_format": disk_format,
                          "container_format": "bare", "visibility": "public"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["id"].as_str().unwrap().to_owned();
        let r = http
            .put(format!("{}/v2/images/{id}/file", self.url))
            .header("x-auth-token", &self.token)
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "{}",
            r.text().await.unwrap()
        );
        id
    }

    async fn delete(&self, id: &str) {
        let r = self
            .kit
            .http
            .delete(format!("{}/v2/images/{id}", self.url))
            .header("x-auth-token", &self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }

    fn cache(&self, dir: &Path) -> ImageCache {
        let mut config = self.kit.config.clone();
        config.service_auth.auth_url = self.kit.auth_uri();
        let client = ImageClient {
            client: Arc::new(ServiceClient::new(ServiceCredentials::for_user(
                &config, "nova",
            ))),
            base: self.url.clone(),
        };
        ImageCache::new(dir.to_owned(), client, PathBuf::from("qemu-img"))
    }
}

fn qemu_img_present() -> bool {
    let ok = std::process::Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("FERROSTACK_TEST_REQUIRE_QEMU").as_deref() == Ok("1") {
        panic!("qemu-img is not installed (scripts/setup-host.sh installs qemu-utils)");
    }
    ok
}

/// A qcow2 made by qemu-img whose first sector is `sector`.
fn qcow2_with(dir: &Path, sector: &[u8]) -> Vec<u8> {
    let raw = dir.join("src.raw");
    let mut data = sector.to_vec();
    data.resize(1 << 20, 0);
    std::fs::write(&raw, &data).unwrap();
    let out = dir.join("src.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

fn boot_sector() -> Vec<u8> {
    let mut s = vec![0u8; 512];
    s[0] = 0xEB;
    s[1] = 0xFE;
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn images_are_fetched_checked_and_converted_once() {
    if !qemu_img_present() {
        eprintln!("SKIP: qemu-img is not installed");
        return;
    }
    let g = glance().await;
    let work = g.kit.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let cache_dir = g.kit.dir.join("_base");
    let cache = g.cache(&cache_dir);

    // A bootable qcow2: cached as raw, with the same first sector.
    let id = g.upload("qcow2", qcow2_with(&work, &boot_sector())).await;
    let cached = cache.fetch(&id).await.unwrap();
    assert_eq!(cached.format, DiskFormat::Raw);
    assert_eq!(cached.path, cache_dir.join(&id));
    let data = std::fs::read(&cached.path).unwrap();
    assert_eq!(&data[..512], &boot_sector()[..]);
    assert_eq!(data.len(), 1 << 20);
    // Never downloaded again: the image service may even have lost it.
    g.delete(&id).await;
    assert_eq!(cache.fetch(&id).await.unwrap(), cached);

    // Not bootable: refused, with the reason, and nothing cached.
    let blank = g.upload("qcow2", qcow2_with(&work, &[0u8; 512])).await;
    match cache.fetch(&blank).await {
        Err(CacheError::InvalidImage(m)) => assert!(m.contains("not a bootable disk"), "{m}"),
        other => panic!("blank image: {other:?}"),
    }
    // qcow2 data uploaded as `raw` (which the image service accepts: any
    // bytes are a raw disk) is not handed to guests as raw.
    let disguised = g.upload("raw", qcow2_with(&work, &boot_sector())).await;
    match cache.fetch(&disguised).await {
        Err(CacheError::InvalidImage(m)) => {
            assert!(m.contains("declared 'raw' but its data is 'qcow2'"), "{m}")
        }
        other => panic!("disguised image: {other:?}"),
    }
    // A missing image is the image service's answer, not a host problem.
    assert!(matches!(
        cache.fetch("00000000-0000-0000-0000-000000000000").await,
        Err(CacheError::Api(_))
    ));
    assert_eq!(
        entries(&cache_dir),
        vec![id.clone()],
        "only the good image is cached"
    );

    // Aging out keeps what guests use and what is recent.
    let base = cache_dir.join(&id);
    assert!(cache
        .age_out(std::slice::from_ref(&base), std::time::Duration::ZERO)
        .await
        .is_empty());
    assert!(cache
        .age_out(&[], std::time::Duration::from_secs(3600))
        .await
        .is_empty());
    assert_eq!(
        cache.age_out(&[], std::time::Duration::ZERO).await,
        vec![id]
    );
    assert!(entries(&cache_dir).is_empty());
}
