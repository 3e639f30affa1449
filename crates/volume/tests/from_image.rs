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

/// `os-reimage` (3.68): the image's data and metadata replace the
/// volume's; an `available` volume returns to `available`, a `reserved`
/// one (a server's attachment without a connection, as Nova's 2.93
/// rebuild leaves it) only with `reimage_reserved`, and returns to
/// `reserved`; before 3.68 there is no such action.
#[tokio::test]
async fn reimage_writes_the_image_over_the_volume() {
    let (c, base) = common::start_with_images("reimage").await;
    let demo = c.user("demo", "demo").await;
    let a = qcow2(&c.kit.dir, "a.qcow2", "1G", Some(0x42));
    let a = image(&c, &base, &demo, "qcow2", &a).await;
    let b = qcow2(&c.kit.dir, "b.qcow2", "1G", Some(0x17));
    let b = image(&c, &base, &demo, "qcow2", &b).await;
    let vol = c.volume(&demo, json!({"imageRef": a, "size": 1})).await;
    let path = format!("/volumes/{vol}");
    let action = format!("{path}/action");
    let reimage = |img: &str, reserved: bool| {
        Some(json!({"os-reimage": {"image_id": img, "reimage_reserved": reserved}}))
    };
    let (st, v) = c
        .call_at(&demo, "3.67", Method::POST, &action, reimage(&b, false))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = c
        .call_at(&demo, "3.68", Method::POST, &action, reimage(&b, false))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let v = c.wait(&demo, &path, "volume", "available").await;
    assert_eq!(v["volume_image_metadata"]["image_id"], b.as_str());
    assert!(common::has_pattern(&c.volume_file(&vol), 0x17));
    assert!(temporaries(&c).is_empty());

    // A server's reservation (no connector), and a second one of the same
    // server while the volume is held (Cinder's override).
    let server = uuid::Uuid::new_v4().to_string();
    let attach = Some(json!({"attachment": {"volume_uuid": vol, "instance_uuid": server}}));
    let (st, first) = c
        .call_at(&demo, "3.44", Method::POST, "/attachments", attach.clone())
        .await;
    assert_eq!(st, StatusCode::OK, "{first}");
    let (st, v) = c
        .call_at(&demo, "3.44", Method::POST, "/attachments", attach.clone())
        .await;
    assert_eq!(st, StatusCode::OK, "same server again: {v}");
    let other = Some(json!({"attachment": {"volume_uuid": vol,
        "instance_uuid": uuid::Uuid::new_v4().to_string()}}));
    let (st, v) = c
        .call_at(&demo, "3.44", Method::POST, "/attachments", other)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "another server: {v}");
    let first = first["attachment"]["id"].as_str().unwrap();
    let (st, v) = c
        .call_at(
            &demo,
            "3.44",
            Method::DELETE,
            &format!("/attachments/{first}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    c.wait(&demo, &path, "volume", "reserved").await;
    let (st, v) = c
        .call_at(&demo, "3.68", Method::POST, &action, reimage(&a, false))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "reserved needs the flag: {v}");
    let (st, v) = c
        .call_at(&demo, "3.68", Method::POST, &action, reimage(&a, true))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let v = c.wait(&demo, &path, "volume", "reserved").await;
    assert_eq!(v["volume_image_metadata"]["image_id"], a.as_str());
    assert!(common::has_pattern(&c.volume_file(&vol), 0x42));
    // An image too big for the volume is refused before anything moves.
    let big = qcow2(&c.kit.dir, "big.qcow2", "2G", None);
    let big = image(&c, &base, &demo, "qcow2", &big).await;
    let (st, v) = c
        .call_at(&demo, "3.68", Method::POST, &action, reimage(&big, true))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = c.call(&demo, Method::GET, &path, None).await;
    assert_eq!(v["volume"]["status"], "reserved");
}

/// As Cinder, an attachment is completed without a connector (Nova's
/// volume of a shelved-offloaded server: `in-use`, nothing exported) and
/// connected later by an update with one, staying attached.
// The cloud's name is short: the export's QMP socket lives under the test
// directory, whose name carries the process id, and a UNIX socket path
// must fit in 108 bytes.
#[tokio::test]
async fn an_attachment_completed_without_a_connector_is_connected_later() {
    let (c, _) = common::start_with_images("late-conn").await;
    let demo = c.user("demo", "demo").await;
    let vol = c.volume(&demo, json!({"size": 1})).await;
    let server = uuid::Uuid::new_v4().to_string();
    let body = Some(json!({"attachment": {"volume_uuid": vol, "instance_uuid": server}}));
    let (st, a) = c
        .call_at(&demo, "3.44", Method::POST, "/attachments", body)
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    let aid = a["attachment"]["id"].as_str().unwrap().to_owned();
    let complete = Some(json!({"os-complete": null}));
    let (st, v) = c
        .call_at(
            &demo,
            "3.44",
            Method::POST,
            &format!("/attachments/{aid}/action"),
            complete,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let path = format!("/volumes/{vol}");
    c.wait(&demo, &path, "volume", "in-use").await;
    let connector = json!({"host": "compute1", "ip": "127.0.0.1", "initiator": null,
        "platform": "x86_64", "os_type": "linux", "multipath": false});
    let (st, a) = c
        .call_at(
            &demo,
            "3.44",
            Method::PUT,
            &format!("/attachments/{aid}"),
            Some(json!({"attachment": {"connector": connector}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(
        a["attachment"]["connection_info"]["driver_volume_type"],
        "nbd"
    );
    assert_eq!(a["attachment"]["status"], "attached");
    let (_, v) = c.call(&demo, Method::GET, &path, None).await;
    assert_eq!(v["volume"]["status"], "in-use");
    // Detached, the export's daemon goes (it would outlive the test).
    let (st, left) = c
        .call_at(
            &demo,
            "3.44",
            Method::DELETE,
            &format!("/attachments/{aid}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{left}");
    let (_, v) = c.call(&demo, Method::GET, &path, None).await;
    assert_eq!(v["volume"]["status"], "available");
}
