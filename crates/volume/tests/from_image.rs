//! Volumes from images and volumes uploaded to images, with the image
//! service running next to the volume service.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Create an active image of `disk_format` from the file at `data` as `u`.
async fn image(
    c: &common::Cloud,
    base: &str,
    u: &common::User,
    disk_format: &str,
    data: &Path,
) -> String {
    let r = c
        .http
        .post(format!("{base}/v2/images"))
        .header("x-auth-token", &u.token)
        .json(&json!({"name": "img", "disk_format": disk_format, "container_format": "bare", "hw_disk_bus": "virtio"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .http
        .put(format!("{base}/v2/images/{id}/file"))
        .header("x-auth-token", &u.token)
        .header("content-type", "application/octet-stream")
        .body(std::fs::read(data).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    id
}

fn qcow2(dir: &Path, name: &str, size: &str, pattern: Option<u8>) -> std::path::PathBuf {
    let p = dir.join(name);
    let ok = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&p)
        .arg(size)
        .status()
        .unwrap();
    assert!(ok.success());
    if let Some(b) = pattern {
        common::write_pattern(&p, b);
    }
    p
}

fn temporaries(c: &common::Cloud) -> Vec<String> {
    std::fs::read_dir(c.kit.config.volumes_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|f| f.ends_with(".tmp"))
        .collect()
}

#[tokio::test]
async fn a_volume_from_an_image_has_its_data_and_metadata() {
    let (c, base) = common::start_with_images("from-image").await;
    let demo = c.user("demo", "demo").await;
    let data = qcow2(&c.kit.dir, "disk.qcow2", "1G", Some(0x42));
    let img = image(&c, &base, &demo, "qcow2", &data).await;

    let vol = c.volume(&demo, json!({"imageRef": img, "size": 1})).await;
    assert!(common::has_pattern(&c.volume_file(&vol), 0x42));
    let (_, v) = c
        .call(&demo, Method::GET, &format!("/volumes/{vol}"), None)
        .await;
    let v = &v["volume"];
    assert_eq!(v["bootable"], "true");
    assert_eq!(v["volume_image_metadata"]["image_id"], img);
    assert_eq!(v["volume_image_metadata"]["image_name"], "img");
    assert_eq!(v["volume_image_metadata"]["disk_format"], "qcow2");
    assert_eq!(v["volume_image_metadata"]["hw_disk_bus"], "virtio");
    assert!(temporaries(&c).is_empty());

    // Too small for the image's 2 GiB virtual size; not a disk; unknown.
    let big = qcow2(&c.kit.dir, "big.qcow2", "2G", None);
    let big = image(&c, &base, &demo, "qcow2", &big).await;
    let (st, e) = c
        .call(
            &demo,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"imageRef": big, "size": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        e["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("Size of specified image 2 GB is larger than volume size 1 GB."),
        "{e}"
    );
    let kernel = image(&c, &base, &demo, "aki", &data).await;
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"imageRef": kernel, "size": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"imageRef": "nope", "size": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Uploaded back as a new image.
    let (st, u) = c
        .call(
            &demo,
            Method::POST,
            &format!("/volumes/{vol}/action"),
            Some(json!({"os-volume_upload_image": {"image_name": "back", "disk_format": "qcow2"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{u}");
    let new = u["os-volume_upload_image"]["image_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.wait(&demo, &format!("/volumes/{vol}"), "volume", "available")
        .await;
    let mut status = Value::Null;
    for _ in 0..100 {
        let r = c
            .http
            .get(format!("{base}/v2/images/{new}"))
            .header("x-auth-token", &demo.token)
            .send()
            .await
            .unwrap();
        let i: Value = r.json().await.unwrap();
        status = i["status"].clone();
        if status == "active" {
            assert_eq!(i["disk_format"], "qcow2");
            assert_eq!(i["owner"], demo.project);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "active");
    // And a volume made from that image has the data again.
    let again = c.volume(&demo, json!({"imageRef": new})).await;
    assert!(common::has_pattern(&c.volume_file(&again), 0x42));
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_create_from_an_image_finishes_it() {
    let (c, base) = common::start_with_images("from-image-restart").await;
    let demo = c.user("demo", "demo").await;
    let data = qcow2(&c.kit.dir, "disk.qcow2", "1G", Some(0x33));
    let img = image(&c, &base, &demo, "qcow2", &data).await;

    // The service stops right after recording the create, mid-download.
    c.svc.paused.store(true, Ordering::SeqCst);
    let (st, v) = c
        .call(
            &demo,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"imageRef": img, "size": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let vol = v["volume"]["id"].as_str().unwrap().to_owned();
    let partial = c.kit.config.volumes_dir().join(format!(".image-{vol}.tmp"));
    std::fs::write(&partial, b"half an image").unwrap();

    let restarted = common::service(&c.kit).await;
    assert_eq!(
        ferrostack_volume::operation::resume_all(&restarted)
            .await
            .unwrap(),
        1
    );
    c.wait(&demo, &format!("/volumes/{vol}"), "volume", "available")
        .await;
    assert!(common::has_pattern(&c.volume_file(&vol), 0x33));
    assert!(temporaries(&c).is_empty(), "{:?}", temporaries(&c));
}
