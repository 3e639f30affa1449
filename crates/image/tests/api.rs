//! The image API end to end, in-process with the identity service.
//!
//! Each resource has its walk (`*_walk`): a named test runs it on SQLite,
//! and `walks_on_mariadb_and_postgresql` runs every walk in sequence on the
//! server engines, so each engine is covered without a cloud per walk.

use ferrostack_core::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Arc;

struct Cloud {
    kit: ferrostack_testkit::TestCloud,
    image: String,
    http: reqwest::Client,
    svc: Arc<ferrostack_image::ImageService>,
    bus: ferrostack_bus::SharedBus,
    store_dir: PathBuf,
}

async fn start(db: ferrostack_db::Db, name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("image-{name}"), tune).await;
    serve_image(kit, db).await
}

/// A cloud whose image database is SQLite in its data directory (no
/// server engine is touched).
async fn start_on_sqlite(name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("image-{name}"), tune).await;
    let url = format!("sqlite://{}/image.sqlite?mode=rwc", kit.dir.display());
    let db = ferrostack_db::Db::connect(&url).await.unwrap();
    serve_image(kit, db).await
}

async fn serve_image(kit: ferrostack_testkit::TestCloud, db: ferrostack_db::Db) -> Cloud {
    db.migrate(ferrostack_image::store::MIGRATIONS)
        .await
        .unwrap();
    let svc = ferrostack_image::ImageService::new(db, kit.config.clone(), kit.bus.clone())
        .await
        .unwrap();
    let image = ferrostack_testkit::serve(ferrostack_image::api::router(
        svc.clone(),
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    Cloud {
        image,
        http: reqwest::Client::new(),
        svc,
        bus: kit.bus.clone(),
        store_dir: kit.config.image_store_dir(),
        kit,
    }
}

impl Cloud {
    async fn token(&self, user: &str, project: &str) -> String {
        self.kit.token(user, project).await
    }

    async fn call(
        &self,
        m: Method,
        path: &str,
        tok: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.image))
            .header("x-auth-token", tok);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let st = r.status();
        let text = r.text().await.unwrap();
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn patch(&self, id: &str, tok: &str, ops: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .patch(format!("{}/v2/images/{id}", self.image))
            .header("x-auth-token", tok)
            .header(
                "content-type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(ops.to_string())
            .send()
            .await
            .unwrap();
        let st = r.status();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    async fn upload(&self, id: &str, tok: &str, data: Vec<u8>) -> StatusCode {
        self.http
            .put(format!("{}/v2/images/{id}/file", self.image))
            .header("x-auth-token", tok)
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `PUT /v2/images/{id}/stage` (no content type, as glanceclient sends it).
    async fn stage(&self, id: &str, tok: &str, data: Vec<u8>) -> StatusCode {
        self.http
            .put(format!("{}/v2/images/{id}/stage", self.image))
            .header("x-auth-token", tok)
            .body(data)
            .send()
            .await
            .unwrap()
            .status()
    }

    fn files(&self, sub: &str) -> Vec<String> {
        std::fs::read_dir(self.store_dir.join(sub))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn qcow2_bytes(virtual_size: u64, len: usize) -> Vec<u8> {
    let mut h = vec![7u8; len];
    h[..512].fill(0);
    h[0..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    h[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    h
}

/// `POST /v2/images` as `tok`; the new image's id.
async fn create_image(c: &Cloud, tok: &str, body: Value) -> String {
    let (st, img) = c.call(Method::POST, "/v2/images", tok, Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{img}");
    img["id"].as_str().unwrap().to_owned()
}

/// The image's status, polled until it is `want` (or the wait ends).
async fn wait_for_status(c: &Cloud, tok: &str, id: &str, want: &str) -> String {
    let mut status = String::new();
    for _ in 0..100 {
        status = c
            .call(Method::GET, &format!("/v2/images/{id}"), tok, None)
            .await
            .1["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    status
}

/// An active public qcow2 image of admin's, and its data.
async fn uploaded_public_image(c: &Cloud, admin: &str) -> (String, Vec<u8>) {
    let id = create_image(
        c,
        admin,
        json!({"name": "cirros", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}),
    )
    .await;
    let data = qcow2_bytes(1 << 30, 300_000);
    assert_eq!(
        c.upload(&id, admin, data.clone()).await,
        StatusCode::NO_CONTENT
    );
    (id, data)
}

/// Every notification event type published since `notes` subscribed.
fn events(
    notes: &mut tokio::sync::broadcast::Receiver<ferrostack_bus::Notification>,
) -> Vec<String> {
    let mut events = Vec::new();
    while let Ok(n) = notes.try_recv() {
        events.push(n.event_type);
    }
    events
}

/// Version discovery and the schemas glanceclient reads, without a token.
async fn discovery_walk(c: &Cloud) {
    // Discovery answers 300 with v2 CURRENT.
    let r = c.http.get(format!("{}/", c.image)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MULTIPLE_CHOICES);
    let versions: Value = r.json().await.unwrap();
    assert_eq!(versions["versions"][0]["status"], "CURRENT");
    for (path, status) in [
        ("/versions", StatusCode::OK),
        ("/v2/schemas/image", StatusCode::OK),
        ("/v2/schemas/members", StatusCode::OK),
        ("/v2/schemas/metadefs/namespace", StatusCode::OK),
        ("/v2/schemas/metadefs/nothing", StatusCode::NOT_FOUND),
    ] {
        let r = c
            .http
            .get(format!("{}{path}", c.image))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
}

/// Create, upload qcow2, download with hashes and ranges.
async fn upload_and_download_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let mut notes = c.bus.subscribe_notifications().await.unwrap();
    let (st, img) = c
        .call(Method::POST, "/v2/images", &admin, Some(json!({"name": "cirros", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"})))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{img}");
    assert_eq!(img["status"], "queued");
    let id = img["id"].as_str().unwrap().to_owned();
    let data = qcow2_bytes(1 << 30, 300_000);
    assert_eq!(
        c.upload(&id, &admin, data.clone()).await,
        StatusCode::NO_CONTENT
    );
    let (_, img) = c
        .call(Method::GET, &format!("/v2/images/{id}"), &admin, None)
        .await;
    assert_eq!(img["status"], "active");
    assert_eq!(img["size"], 300_000);
    assert_eq!(img["virtual_size"], 1u64 << 30);
    assert_eq!(img["os_hash_algo"], "sha512");
    let sha = sha2::Sha512::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert_eq!(img["os_hash_value"], sha.as_str());
    let r = c
        .http
        .get(format!("{}/v2/images/{id}/file", c.image))
        .header("x-auth-token", &demo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        data,
        "a public image downloads for demo"
    );
    let r = c
        .http
        .get(format!("{}/v2/images/{id}/file", c.image))
        .header("x-auth-token", &admin)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().to_vec(), data[100..200].to_vec());
    assert_eq!(
        c.upload(&id, &admin, vec![1, 2, 3]).await,
        StatusCode::CONFLICT,
        "an active image takes no new data"
    );
    // Notifications reached the bus.
    let events = events(&mut notes);
    for e in ["image.create", "image.upload"] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
}

/// Declared qcow2, raw uploaded: 400, back to queued, no file left.
async fn wrong_format_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let bad_id = create_image(
        c,
        &admin,
        json!({"name": "liar", "disk_format": "qcow2", "container_format": "bare"}),
    )
    .await;
    assert_eq!(
        c.upload(&bad_id, &admin, vec![0u8; 4096]).await,
        StatusCode::BAD_REQUEST
    );
    let (_, bad) = c
        .call(Method::GET, &format!("/v2/images/{bad_id}"), &admin, None)
        .await;
    assert_eq!(bad["status"], "queued");
    assert!(c.files(".tmp").is_empty());
    assert!(!c.files("").contains(&bad_id));
}

/// Metadata by JSON patch; read-only and reserved attributes refused.
async fn json_patch_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let mut notes = c.bus.subscribe_notifications().await.unwrap();
    let id = create_image(
        c,
        &admin,
        json!({"name": "cirros", "disk_format": "qcow2", "container_format": "bare"}),
    )
    .await;
    let (st, v) = c.patch(&id, &admin, json!([{"op": "add", "path": "/hw_disk_bus", "value": "virtio"}, {"op": "replace", "path": "/name", "value": "cirros-0.6"}])).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["hw_disk_bus"], "virtio");
    assert_eq!(v["name"], "cirros-0.6");
    assert_eq!(
        c.patch(
            &id,
            &admin,
            json!([{"op": "replace", "path": "/size", "value": 1}])
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.patch(
            &id,
            &admin,
            json!([{"op": "add", "path": "/os_glance_x", "value": "1"}])
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.patch(&id, &admin, json!([{"op": "remove", "path": "/nope"}]))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        c.patch(
            &id,
            &admin,
            json!([{"op": "replace", "path": "/min_ram", "value": -1}])
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    // An owner wider than its column is refused before the database sees it.
    let (st, v) = c
        .patch(
            &id,
            &admin,
            json!([{"op": "replace", "path": "/owner", "value": "o".repeat(256)}]),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let events = events(&mut notes);
    assert!(
        events.iter().any(|x| x == "image.update"),
        "image.update in {events:?}"
    );
}

/// Visibility: demo cannot see a private image, cannot publicize.
async fn visibility_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    create_image(
        c,
        &admin,
        json!({"name": "cirros-0.6", "visibility": "public"}),
    )
    .await;
    let pid = create_image(
        c,
        &admin,
        json!({"name": "secret", "visibility": "private"}),
    )
    .await;
    assert_eq!(
        c.call(Method::GET, &format!("/v2/images/{pid}"), &demo, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = c.call(Method::GET, "/v2/images", &demo, None).await;
    let names: Vec<&str> = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(
        names.contains(&"cirros-0.6") && !names.contains(&"secret"),
        "{names:?}"
    );
    assert_eq!(
        c.call(
            Method::POST,
            "/v2/images",
            &demo,
            Some(json!({"name": "mine", "visibility": "public"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}

/// Sharing: a member sees the image, lists it after accepting.
async fn members_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let sid = create_image(
        c,
        &admin,
        json!({"name": "shared-one", "visibility": "shared"}),
    )
    .await;
    let demo_project = c.kit.project_of(&demo).await;
    let (st, m) = c
        .call(
            Method::POST,
            &format!("/v2/images/{sid}/members"),
            &admin,
            Some(json!({"member": demo_project})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "pending");
    let listed = |v: &Value| {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == sid.as_str())
    };
    assert!(!listed(
        &c.call(Method::GET, "/v2/images", &demo, None).await.1
    ));
    assert_eq!(
        c.call(Method::GET, &format!("/v2/images/{sid}"), &demo, None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        c.call(
            Method::PUT,
            &format!("/v2/images/{sid}/members/{demo_project}"),
            &admin,
            Some(json!({"status": "accepted"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "only the member answers"
    );
    let (st, _) = c
        .call(
            Method::PUT,
            &format!("/v2/images/{sid}/members/{demo_project}"),
            &demo,
            Some(json!({"status": "accepted"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(listed(
        &c.call(Method::GET, "/v2/images", &demo, None).await.1
    ));
}

/// Protected images are not deleted; deactivated ones are not downloaded by others.
async fn protection_and_deactivation_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let (id, _) = uploaded_public_image(c, &admin).await;
    assert_eq!(
        c.patch(
            &id,
            &admin,
            json!([{"op": "replace", "path": "/protected", "value": true}])
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("/v2/images/{id}"), &admin, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.patch(
            &id,
            &admin,
            json!([{"op": "replace", "path": "/protected", "value": false}])
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        c.call(
            Method::POST,
            &format!("/v2/images/{id}/actions/deactivate"),
            &admin,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::GET, &format!("/v2/images/{id}/file"), &demo, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.call(
            Method::POST,
            &format!("/v2/images/{id}/actions/reactivate"),
            &admin,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
}

/// glance-direct import: stage, import, task succeeds.
async fn import_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let iid = create_image(
        c,
        &admin,
        json!({"name": "imported", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    assert_eq!(
        c.stage(&iid, &admin, vec![9u8; 5000]).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::GET, &format!("/v2/images/{iid}"), &admin, None)
            .await
            .1["status"],
        "uploading"
    );
    let (st, _) = c
        .call(
            Method::POST,
            &format!("/v2/images/{iid}/import"),
            &admin,
            Some(json!({"method": {"name": "glance-direct"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(wait_for_status(c, &admin, &iid, "active").await, "active");
    // The task records its success just after the image turns active.
    let mut tasks = serde_json::Value::Null;
    for _ in 0..250 {
        tasks = c
            .call(
                Method::GET,
                &format!("/v2/images/{iid}/tasks"),
                &admin,
                None,
            )
            .await
            .1;
        if tasks["tasks"][0]["status"] == "success" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(tasks["tasks"][0]["status"], "success");
    assert!(
        !c.files(".staging").contains(&iid),
        "the staged data is consumed"
    );
}

/// Delete removes the data.
async fn delete_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let mut notes = c.bus.subscribe_notifications().await.unwrap();
    let (id, _) = uploaded_public_image(c, &admin).await;
    assert!(c.files("").contains(&id));
    assert_eq!(
        c.call(Method::DELETE, &format!("/v2/images/{id}"), &admin, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert!(!c.files("").contains(&id));
    assert_eq!(
        c.call(Method::GET, &format!("/v2/images/{id}"), &admin, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let events = events(&mut notes);
    assert!(
        events.iter().any(|x| x == "image.delete"),
        "image.delete in {events:?}"
    );
}

/// Metadata definitions: a namespace with what it holds, each resource's
/// create, rename and delete, and the bodies each one refuses.
async fn metadefs_walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let ns_path = "/v2/metadefs/namespaces/OS::Walk";
    let (st, ns) = c
        .call(
            Method::POST,
            "/v2/metadefs/namespaces",
            &admin,
            Some(json!({
                "namespace": "OS::Walk", "display_name": "Walk", "visibility": "public",
                "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "walk_"}],
                "properties": {"cores": {"title": "Cores", "type": "integer", "minimum": 1}},
                "objects": [{"name": "CPU", "required": ["cores"],
                             "properties": {"cores": {"title": "Cores", "type": "integer"}}}],
                "tags": [{"name": "fast"}],
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ns}");
    assert_eq!(ns["display_name"], "Walk");
    assert_eq!(ns["visibility"], "public");
    assert_eq!(ns["properties"]["cores"]["minimum"], 1, "{ns}");
    assert_eq!(ns["properties"]["cores"]["name"], "cores");
    assert_eq!(ns["objects"][0]["properties"]["cores"]["type"], "integer");
    assert_eq!(ns["tags"][0]["name"], "fast");
    assert_eq!(
        ns["resource_type_associations"][0]["prefix"], "walk_",
        "{ns}"
    );
    assert_eq!(
        c.call(
            Method::POST,
            "/v2/metadefs/namespaces",
            &admin,
            Some(json!({"namespace": "OS::Walk"}))
        )
        .await
        .0,
        StatusCode::CONFLICT
    );

    // Properties: created, renamed, refused onto another's name.
    let props = format!("{ns_path}/properties");
    let (st, p) = c
        .call(
            Method::POST,
            &props,
            &admin,
            Some(json!({"name": "ram", "title": "RAM", "type": "integer", "maximum": 64})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    assert_eq!(p["maximum"], 64);
    let (st, p) = c
        .call(
            Method::PUT,
            &format!("{props}/ram"),
            &admin,
            Some(json!({"name": "memory", "title": "Memory", "type": "integer"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["name"], "memory");
    assert_eq!(
        c.call(
            Method::PUT,
            &format!("{props}/memory"),
            &admin,
            Some(json!({"name": "cores", "title": "Cores", "type": "integer"}))
        )
        .await
        .0,
        StatusCode::CONFLICT,
        "a rename does not replace another property"
    );
    let (_, list) = c.call(Method::GET, &props, &admin, None).await;
    let mut names: Vec<&String> = list["properties"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["cores", "memory"]);

    // Objects and tags alike.
    let objects = format!("{ns_path}/objects");
    let (st, o) = c
        .call(
            Method::POST,
            &objects,
            &admin,
            Some(json!({"name": "Disk", "description": "a disk"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{o}");
    assert_eq!(o["self"], format!("{objects}/Disk"));
    assert_eq!(
        c.call(
            Method::PUT,
            &format!("{objects}/Disk"),
            &admin,
            Some(json!({"name": "CPU"}))
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    let tags = format!("{ns_path}/tags");
    assert_eq!(
        c.call(Method::POST, &format!("{tags}/slow"), &admin, None)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        c.call(
            Method::PUT,
            &format!("{tags}/slow"),
            &admin,
            Some(json!({"name": "fast"}))
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    let (st, t) = c
        .call(
            Method::POST,
            &tags,
            &admin,
            Some(json!({"tags": [{"name": "a"}, {"name": "b"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let (_, t) = c.call(Method::GET, &tags, &admin, None).await;
    assert_eq!(t["tags"].as_array().unwrap().len(), 2, "{t}");
    assert_eq!(
        c.call(
            Method::POST,
            &tags,
            &admin,
            Some(json!({"tags": [{"name": "a"}, {"name": "a"}]}))
        )
        .await
        .0,
        StatusCode::CONFLICT
    );

    // Bodies and names the types refuse: 400 naming the field, on every
    // engine before the database sees them.
    let long = "n".repeat(256);
    for (m, path, body, field) in [
        (
            Method::POST,
            "/v2/metadefs/namespaces".to_owned(),
            json!({"namespace": "n".repeat(81)}),
            "namespace",
        ),
        (
            Method::POST,
            "/v2/metadefs/namespaces".to_owned(),
            json!({"namespace": "OS::Other", "visibility": "everyone"}),
            "visibility",
        ),
        (
            Method::POST,
            "/v2/metadefs/namespaces".to_owned(),
            json!({"namespace": "OS::Other", "properties": {long.clone(): {"title": "t", "type": "string"}}}),
            "properties",
        ),
        (
            Method::POST,
            props.clone(),
            json!({"name": "x", "title": "X", "type": "text"}),
            "type",
        ),
        (
            Method::POST,
            props.clone(),
            json!({"name": "x", "type": "string"}),
            "title",
        ),
        (Method::POST, objects.clone(), json!({"name": ""}), "name"),
        (
            Method::POST,
            format!("{ns_path}/resource_types"),
            json!({"prefix": "p_"}),
            "name",
        ),
        (Method::POST, format!("{tags}/{long}"), Value::Null, "name"),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (st, v) = c.call(m, &path, &admin, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(v.to_string().contains(field), "{path}: {v}");
    }

    // Renamed, then deleted with all it holds.
    let (st, ns) = c
        .call(
            Method::PUT,
            ns_path,
            &admin,
            Some(json!({"namespace": "OS::Walked", "description": null})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{ns}");
    assert_eq!(ns["namespace"], "OS::Walked");
    assert_eq!(ns["display_name"], "Walk", "kept when not given");
    let (st, ns) = c
        .call(
            Method::GET,
            "/v2/metadefs/namespaces/OS::Walked",
            &admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(ns["properties"]["memory"].is_object(), "{ns}");
    assert_eq!(
        c.call(
            Method::DELETE,
            "/v2/metadefs/namespaces/OS::Walked",
            &admin,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::GET, &props, &admin, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn discovery_and_schemas_are_public() {
    discovery_walk(&start_on_sqlite("discovery", |_| {}).await).await;
}

#[tokio::test]
async fn images_upload_and_download_with_hashes_and_ranges() {
    upload_and_download_walk(&start_on_sqlite("updown", |_| {}).await).await;
}

#[tokio::test]
async fn data_of_the_wrong_format_is_refused() {
    wrong_format_walk(&start_on_sqlite("format", |_| {}).await).await;
}

#[tokio::test]
async fn images_change_by_json_patch() {
    json_patch_walk(&start_on_sqlite("patch", |_| {}).await).await;
}

#[tokio::test]
async fn private_images_stay_hidden() {
    visibility_walk(&start_on_sqlite("visibility", |_| {}).await).await;
}

#[tokio::test]
async fn members_see_shared_images() {
    members_walk(&start_on_sqlite("members", |_| {}).await).await;
}

#[tokio::test]
async fn protected_and_deactivated_images() {
    protection_and_deactivation_walk(&start_on_sqlite("protect", |_| {}).await).await;
}

#[tokio::test]
async fn glance_direct_import_runs_a_task() {
    import_walk(&start_on_sqlite("import", |_| {}).await).await;
}

#[tokio::test]
async fn deleting_an_image_removes_its_data() {
    delete_walk(&start_on_sqlite("delete", |_| {}).await).await;
}

#[tokio::test]
async fn metadata_definitions() {
    metadefs_walk(&start_on_sqlite("metadefs", |_| {}).await).await;
}

/// Every walk, in sequence, on each server engine that is reachable (the
/// named tests above cover SQLite): one cloud per engine.
#[tokio::test]
async fn walks_on_mariadb_and_postgresql() {
    for (i, db) in ferrostack_db::testing::test_databases("image")
        .await
        .into_iter()
        .enumerate()
    {
        if db.backend == ferrostack_db::Backend::Sqlite {
            continue;
        }
        eprintln!("image API against {:?}", db.backend);
        let c = start(db, &format!("db{i}"), |_| {}).await;
        discovery_walk(&c).await;
        upload_and_download_walk(&c).await;
        wrong_format_walk(&c).await;
        json_patch_walk(&c).await;
        visibility_walk(&c).await;
        members_walk(&c).await;
        protection_and_deactivation_walk(&c).await;
        import_walk(&c).await;
        delete_walk(&c).await;
        metadefs_walk(&c).await;
    }
}

#[tokio::test]
async fn quotas_answer_413_and_leave_no_data() {
    for (i, db) in ferrostack_db::testing::test_databases("image_quota")
        .await
        .into_iter()
        .enumerate()
    {
        quota_case(db, i).await;
    }
}

async fn quota_case(db: ferrostack_db::Db, i: usize) {
    let c = start(db, &format!("quota{i}"), |cfg| {
        cfg.image.user_storage_quota = 10_000;
        cfg.image.image_count_quota = 3;
    })
    .await;
    let admin = c.token("admin", "admin").await;
    let (_, a) = c
        .call(
            Method::POST,
            "/v2/images",
            &admin,
            Some(json!({"name": "a", "disk_format": "raw", "container_format": "bare"})),
        )
        .await;
    let a = a["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.upload(&a, &admin, vec![1u8; 6000]).await,
        StatusCode::NO_CONTENT
    );
    let (_, b) = c
        .call(
            Method::POST,
            "/v2/images",
            &admin,
            Some(json!({"name": "b", "disk_format": "raw", "container_format": "bare"})),
        )
        .await;
    let b = b["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.upload(&b, &admin, vec![1u8; 6000]).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        c.call(Method::GET, &format!("/v2/images/{b}"), &admin, None)
            .await
            .1["status"],
        "queued"
    );
    assert!(c.files(".tmp").is_empty());
    assert_eq!(
        c.call(
            Method::POST,
            "/v2/images",
            &admin,
            Some(json!({"name": "c"}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        c.call(
            Method::POST,
            "/v2/images",
            &admin,
            Some(json!({"name": "d"}))
        )
        .await
        .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// Data staged for glance-direct counts against the storage quota as
/// uploads do, on every engine: a stage past the quota is 413 and leaves
/// nothing staged, a stage and an upload cannot together pass it, and the
/// staged bytes are counted until the import stores them (then once, as
/// the image's size) or the image is deleted, across a restart too.
#[tokio::test]
async fn staged_data_counts_against_the_storage_quota() {
    for (i, db) in ferrostack_db::testing::test_databases("image_stage_quota")
        .await
        .into_iter()
        .enumerate()
    {
        staging_quota_case(db, i).await;
    }
}

async fn staging_quota_case(db: ferrostack_db::Db, i: usize) {
    let c = start(db.clone(), &format!("stage-quota{i}"), |cfg| {
        cfg.image.user_storage_quota = 10_000;
    })
    .await;
    let demo = c.token("demo", "demo").await;
    let raw = |name: &str| json!({"name": name, "disk_format": "raw", "container_format": "bare"});
    let a = create_image(&c, &demo, raw("a")).await;

    // Past the quota, declared or streamed: 413, nothing staged or left over.
    assert_eq!(
        c.stage(&a, &demo, vec![1u8; 12_000]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "engine {i}"
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![1u8; 6_000]), Ok(vec![1u8; 6_000])];
    let r = c
        .http
        .put(format!("{}/v2/images/{a}/stage", c.image))
        .header("x-auth-token", &demo)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "engine {i}");
    assert_eq!(wait_for_status(&c, &demo, &a, "queued").await, "queued");
    assert!(c.files(".staging").is_empty(), "{:?}", c.files(".staging"));
    assert!(c.files(".tmp").is_empty(), "{:?}", c.files(".tmp"));

    // Staged within the quota, it leaves no room for an upload past it,
    // also once the service has restarted.
    assert_eq!(
        c.stage(&a, &demo, vec![1u8; 6_000]).await,
        StatusCode::NO_CONTENT
    );
    let b = create_image(&c, &demo, raw("b")).await;
    assert_eq!(
        c.upload(&b, &demo, vec![2u8; 6_000]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "engine {i}: 6,000 staged + 6,000 uploaded in a 10,000-byte quota"
    );
    let cut = create_image(&c, &demo, raw("cut")).await;
    ferrostack_image::store::images::transition(&c.svc.db, &cut, &["queued"], "uploading")
        .await
        .unwrap();
    ferrostack_image::ImageService::new(db, c.svc.config.clone(), c.bus.clone())
        .await
        .unwrap();
    assert_eq!(
        c.upload(&b, &demo, vec![2u8; 6_000]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "engine {i}: the staged bytes are reserved again at start"
    );
    assert_eq!(
        c.call(Method::GET, &format!("/v2/images/{cut}"), &demo, None)
            .await
            .1["status"],
        "queued",
        "a staging cut short by a restart leaves the image queued"
    );

    // The import stores the staged bytes and ends their reservation: they
    // are counted once, so 4,000 more fit exactly.
    let (st, v) = c
        .call(
            Method::POST,
            &format!("/v2/images/{a}/import"),
            &demo,
            Some(json!({"method": {"name": "glance-direct"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(wait_for_status(&c, &demo, &a, "active").await, "active");
    assert_eq!(
        c.upload(&b, &demo, vec![2u8; 4_000]).await,
        StatusCode::NO_CONTENT,
        "engine {i}"
    );

    // Deleting a staged image ends its reservation.
    assert_eq!(
        c.call(Method::DELETE, &format!("/v2/images/{b}"), &demo, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let staged = create_image(&c, &demo, raw("staged")).await;
    assert_eq!(
        c.stage(&staged, &demo, vec![3u8; 4_000]).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("/v2/images/{staged}"), &demo, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert!(c.files(".staging").is_empty(), "{:?}", c.files(".staging"));
    let d = create_image(&c, &demo, raw("d")).await;
    assert_eq!(
        c.upload(&d, &demo, vec![4u8; 4_000]).await,
        StatusCode::NO_CONTENT,
        "engine {i}: a deleted image's staged bytes are no longer counted"
    );
}

/// An upload cut off by the client, and a process that died mid-upload:
/// neither leaves an active image nor a stray file.
#[tokio::test]
async fn interrupted_uploads_leave_nothing_behind() {
    let c = start_on_sqlite("crash", |_| {}).await;
    let db = c.svc.db.clone();
    let admin = c.token("admin", "admin").await;
    let (_, img) = c
        .call(
            Method::POST,
            "/v2/images",
            &admin,
            Some(json!({"name": "cut", "disk_format": "raw", "container_format": "bare"})),
        )
        .await;
    let id = img["id"].as_str().unwrap().to_owned();

    // The client goes away after sending part of the declared length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(vec![1u8; 65536]),
        Err(std::io::Error::other("client crashed")),
    ];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let _ = c
        .http
        .put(format!("{}/v2/images/{id}/file", c.image))
        .header("x-auth-token", &admin)
        .header("content-type", "application/octet-stream")
        .header("content-length", "1000000")
        .body(body)
        .send()
        .await;
    let mut status = String::new();
    for _ in 0..100 {
        status = c
            .call(Method::GET, &format!("/v2/images/{id}"), &admin, None)
            .await
            .1["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status == "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "queued");
    assert!(c.files(".tmp").is_empty(), "{:?}", c.files(".tmp"));

    // A process that died mid-upload: the record says saving, a partial
    // temporary file and an orphan data file are on disk.
    ferrostack_image::store::images::transition(&c.svc.db, &id, &["queued"], "saving")
        .await
        .unwrap();
    std::fs::write(
        c.store_dir.join(".tmp").join(format!("{id}.partial")),
        b"half",
    )
    .unwrap();
    std::fs::write(c.store_dir.join("0000-orphan"), b"nobody's").unwrap();
    let restarted = ferrostack_image::ImageService::new(db, c.svc.config.clone(), c.bus.clone())
        .await
        .unwrap();
    let img = ferrostack_image::store::images::get(&restarted.db, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(img.status, "queued");
    assert!(c.files(".tmp").is_empty());
    assert!(!c.files("").contains(&"0000-orphan".to_owned()));
    // And it can be uploaded again.
    assert_eq!(
        c.upload(&id, &admin, vec![5u8; 1000]).await,
        StatusCode::NO_CONTENT
    );
}

/// A user with only `role` on the `demo` project (password `admin_pass`);
/// returns a token scoped to it.
async fn token_with_only(c: &Cloud, user: &str, role: &str) -> String {
    let admin = c.token("admin", "admin").await;
    let identity = |m: Method, path: &str, body: Option<Value>| {
        let mut req = c
            .http
            .request(m, format!("{}{path}", c.kit.identity_url))
            .header("x-auth-token", &admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, v) = identity(
        Method::POST,
        "/v3/users",
        Some(json!({"user": {"name": user, "password": "admin_pass", "domain_id": "default"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let user_id = v["user"]["id"].as_str().unwrap().to_owned();
    let (_, v) = identity(Method::GET, "/v3/projects?name=demo", None).await;
    let project = v["projects"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) = identity(Method::GET, &format!("/v3/roles?name={role}"), None).await;
    let role_id = v["roles"][0]["id"].as_str().unwrap().to_owned();
    let (st, _) = identity(
        Method::PUT,
        &format!("/v3/projects/{project}/users/{user_id}/roles/{role_id}"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    c.token(user, "demo").await
}

/// Glance's secure-RBAC defaults through the policy engine: a project
/// reader reads but does not write; a member writes its project's images.
#[tokio::test]
async fn readers_read_and_members_write() {
    let c = start_on_sqlite("rbac", |_| {}).await;
    let reader = token_with_only(&c, "rbac_reader", "reader").await;
    let member = c.token("demo", "demo").await;
    let new_image = json!({"name": "r", "disk_format": "raw", "container_format": "bare"});

    let (st, v) = c
        .call(Method::POST, "/v2/images", &reader, Some(new_image.clone()))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v.to_string().contains("add_image"),
        "Glance's 403 names the rule: {v}"
    );
    let (st, img) = c
        .call(Method::POST, "/v2/images", &member, Some(new_image))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{img}");
    let id = img["id"].as_str().unwrap().to_owned();

    // The reader sees the project's image but cannot change it.
    let (st, v) = c.call(Method::GET, "/v2/images", &reader, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["images"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id.as_str()));
    let path = format!("/v2/images/{id}");
    assert_eq!(
        c.call(Method::GET, &path, &reader, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        c.upload(&id, &reader, vec![1; 512]).await,
        StatusCode::FORBIDDEN
    );
    let (st, _) = c
        .patch(
            &id,
            &reader,
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        c.call(Method::DELETE, &path, &reader, None).await.0,
        StatusCode::FORBIDDEN
    );

    // The member can; making it public stays an admin's (publicize_image).
    assert_eq!(
        c.upload(&id, &member, vec![1; 512]).await,
        StatusCode::NO_CONTENT
    );
    let (st, _) = c
        .patch(
            &id,
            &member,
            json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = c
        .patch(
            &id,
            &member,
            json!([{"op": "replace", "path": "/visibility", "value": "community"}]),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        c.call(Method::DELETE, &path, &member, None).await.0,
        StatusCode::NO_CONTENT
    );

    // Metadefs and tasks are admins'.
    let ns = json!({"namespace": "OS::Rbac", "visibility": "public"});
    assert_eq!(
        c.call(Method::POST, "/v2/metadefs/namespaces", &member, Some(ns))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.call(Method::GET, "/v2/tasks", &member, None).await.0,
        StatusCode::FORBIDDEN
    );
}

/// An operator's `[image] policy_file`, read at service start, replaces
/// Glance's default; one that does not parse refuses start.
#[tokio::test]
async fn operator_policy_file_overrides_glance_defaults() {
    let dir = std::env::temp_dir().join(format!("ferrostack-image-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(
        &file,
        "# readers may create images here\n\"add_image\": \"role:admin or (role:reader and project_id:%(project_id)s)\"\n\"delete_image\": \"role:admin\"\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let c = start_on_sqlite("policy", |cfg| cfg.image.policy_file = path.clone()).await;
    let reader = token_with_only(&c, "policy_reader", "reader").await;
    let member = c.token("demo", "demo").await;
    let (st, img) = c
        .call(
            Method::POST,
            "/v2/images",
            &reader,
            Some(json!({"name": "by-reader"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{img}");
    let path = format!("/v2/images/{}", img["id"].as_str().unwrap());
    assert_eq!(
        c.call(Method::DELETE, &path, &member, None).await.0,
        StatusCode::FORBIDDEN
    );
    // Rules the file does not name keep Glance's defaults.
    assert_eq!(
        c.upload(img["id"].as_str().unwrap(), &reader, vec![1; 8])
            .await,
        StatusCode::FORBIDDEN
    );

    std::fs::write(&file, "\"add_image\": \"role:admin or (\"\n").unwrap();
    let mut cfg = c.kit.config.clone();
    cfg.image.policy_file = file.display().to_string();
    let db = c.svc.db.clone();
    let err = match ferrostack_image::ImageService::new(db, cfg, c.bus.clone()).await {
        Ok(_) => panic!("a broken policy file must refuse start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("add_image"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Request bodies of a fixed shape are typed: a wrong one is a 400 that
/// names the field.
#[tokio::test]
async fn malformed_bodies_answer_400_naming_the_field() {
    let c = start_on_sqlite("bodies", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let (st, v) = c
        .call(
            Method::POST,
            "/v2/images",
            &admin,
            Some(json!(["not", "an", "object"])),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (_, img) = c
        .call(
            Method::POST,
            "/v2/images",
            &admin,
            Some(json!({"name": "s", "visibility": "shared"})),
        )
        .await;
    let id = img["id"].as_str().unwrap();
    for (path, body, field) in [
        (
            format!("/v2/images/{id}/members"),
            json!({"member": 42}),
            "member",
        ),
        (format!("/v2/images/{id}/members"), json!({}), "member"),
        (
            format!("/v2/images/{id}/import"),
            json!({"method": "glance-direct"}),
            "method",
        ),
        ("/v2/tasks".to_owned(), json!({"input": {}}), "type"),
    ] {
        let (st, v) = c.call(Method::POST, &path, &admin, Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(v.to_string().contains(field), "{path}: {v}");
    }
    let (st, v) = c
        .call(
            Method::PUT,
            &format!("/v2/images/{id}/members/someone"),
            &admin,
            Some(json!({"status": true})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("status"), "{v}");
}

/// Concurrent creates never pass the image count quota together, on every
/// engine: the count and the insert are one step under the owner's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_exceed_the_image_count_quota() {
    for (i, db) in ferrostack_db::testing::test_databases("image_count_race")
        .await
        .into_iter()
        .enumerate()
    {
        let c = std::sync::Arc::new(
            start(db, &format!("count-race{i}"), |cfg| {
                cfg.image.image_count_quota = 3
            })
            .await,
        );
        let demo = c.token("demo", "demo").await;
        let racing: Vec<_> = (0..12)
            .map(|n| {
                let (c, demo) = (c.clone(), demo.clone());
                tokio::spawn(async move {
                    c.call(
                        Method::POST,
                        "/v2/images",
                        &demo,
                        Some(json!({"name": format!("r{n}")})),
                    )
                    .await
                    .0
                })
            })
            .collect();
        let mut created = 0;
        for r in racing {
            let status = r.await.unwrap();
            assert!(
                status == StatusCode::CREATED || status == StatusCode::PAYLOAD_TOO_LARGE,
                "engine {i}: {status}"
            );
            created += usize::from(status == StatusCode::CREATED);
        }
        assert_eq!(created, 3, "engine {i}");
    }
}

/// Concurrent uploads never pass the storage quota together, on every
/// engine: each reserves its room under the owner's lock before writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_never_exceed_the_storage_quota() {
    for (i, db) in ferrostack_db::testing::test_databases("image_bytes_race")
        .await
        .into_iter()
        .enumerate()
    {
        let c = std::sync::Arc::new(
            start(db, &format!("bytes-race{i}"), |cfg| {
                cfg.image.user_storage_quota = 10_000
            })
            .await,
        );
        let demo = c.token("demo", "demo").await;
        let mut ids = Vec::new();
        for n in 0..4 {
            let (_, img) = c
                .call(
                    Method::POST,
                    "/v2/images",
                    &demo,
                    Some(json!({"name": format!("u{n}"), "disk_format": "raw", "container_format": "bare"})),
                )
                .await;
            ids.push(img["id"].as_str().unwrap().to_owned());
        }
        let racing: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let (c, demo) = (c.clone(), demo.clone());
                tokio::spawn(async move { c.upload(&id, &demo, vec![7u8; 4000]).await })
            })
            .collect();
        let mut stored = 0;
        for r in racing {
            let status = r.await.unwrap();
            assert!(
                status == StatusCode::NO_CONTENT || status == StatusCode::PAYLOAD_TOO_LARGE,
                "engine {i}: {status}"
            );
            stored += usize::from(status == StatusCode::NO_CONTENT);
        }
        assert_eq!(
            stored, 2,
            "engine {i}: 4,000-byte uploads into a 10,000-byte quota"
        );
    }
}

/// The document is served without a token and describes what the router
/// serves (testkit's checks), with the typed body of a known operation.
#[tokio::test]
async fn openapi_document_is_public_and_matches_the_router() {
    let c = start_on_sqlite("openapi", |_| {}).await;
    let (doc, operations) =
        ferrostack_testkit::assert_openapi_served(&c.image, &ferrostack_image::openapi_document())
            .await;
    let add_member = &doc["paths"]["/v2/images/{id}/members"]["post"];
    assert_eq!(add_member["security"], json!([{"token": []}]));
    assert_eq!(
        add_member["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AddMemberRequest"
    );
    assert!(doc["components"]["schemas"]["AddMemberRequest"].is_object());

    assert_eq!(operations, 62, "the image API's operations");
}

/// A cloud whose image data goes to the object service (`[image] store =
/// swift`), served beside it on its own port.
async fn start_with_swift_store(name: &str) -> Cloud {
    let mut kit = ferrostack_testkit::start(&format!("image-{name}"), |_| {}).await;
    kit.config.service_auth.auth_url = kit.auth_uri();
    let object = ferrostack_object::open(&kit.config).await.unwrap();
    let object_url = ferrostack_testkit::serve(ferrostack_object::api::router(
        object,
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    kit.config.object.port = object_url.rsplit(':').next().unwrap().parse().unwrap();
    kit.config.image.store = "swift".into();
    let url = format!("sqlite://{}/image.sqlite?mode=rwc", kit.dir.display());
    let db = ferrostack_db::Db::connect(&url).await.unwrap();
    serve_image(kit, db).await
}

/// `GET` (or another method) on the glance account's `glance` container,
/// as the glance service user.
async fn glance_container(c: &Cloud, method: Method, suffix: &str) -> reqwest::Response {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "glance", "domain": {"id": "default"}, "password": "service_pass"}}},
        "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}});
    let r = c
        .http
        .post(format!("{}/v3/auth/tokens", c.kit.identity_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let tok = r.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let project = c.kit.project_of(&tok).await;
    let base = c.kit.config.public_url(c.kit.config.object.port);
    c.http
        .request(method, format!("{base}/v1/AUTH_{project}/glance{suffix}"))
        .header("x-auth-token", tok)
        .send()
        .await
        .unwrap()
}

/// With the swift store the data lands as an object named by the image id in
/// the `glance` container (nothing in the filesystem store), downloads whole
/// and by range, and goes when the image is deleted.
#[tokio::test]
async fn swift_store_keeps_image_data_in_the_glance_container() {
    let c = start_with_swift_store("swift").await;
    let admin = c.token("admin", "admin").await;
    let id = create_image(
        &c,
        &admin,
        json!({"name": "in-swift", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        c.upload(&id, &admin, data.clone()).await,
        StatusCode::NO_CONTENT
    );
    let (_, img) = c
        .call(Method::GET, &format!("/v2/images/{id}"), &admin, None)
        .await;
    assert_eq!(img["status"], "active");
    assert_eq!(img["size"], 3_000_000);
    assert!(
        c.files("").is_empty(),
        "no data in the filesystem store: {:?}",
        c.files("")
    );
    assert!(c.files(".tmp").is_empty(), "the temporary file is consumed");

    let listing = glance_container(&c, Method::GET, "").await;
    assert_eq!(listing.status(), StatusCode::OK);
    assert_eq!(listing.text().await.unwrap().trim(), id);
    let head = glance_container(&c, Method::HEAD, &format!("/{id}")).await;
    assert_eq!(head.headers()["content-length"], "3000000");
    assert_eq!(head.headers()["etag"], img["checksum"].as_str().unwrap());

    let whole = c
        .http
        .get(format!("{}/v2/images/{id}/file", c.image))
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), &data[..]);
    let part = c
        .http
        .get(format!("{}/v2/images/{id}/file", c.image))
        .header("x-auth-token", &admin)
        .header("range", "bytes=1000000-1000099")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        "bytes 1000000-1000099/3000000"
    );
    assert_eq!(
        part.bytes().await.unwrap().as_ref(),
        &data[1_000_000..1_000_100]
    );

    let (st, _) = c
        .call(Method::DELETE, &format!("/v2/images/{id}"), &admin, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let gone = glance_container(&c, Method::HEAD, &format!("/{id}")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}
