//! The volume API end to end, in-process with the identity service and the
//! file backend (`qemu-img`).

use ferrostack_core::config::Config;
use ferrostack_core::{Error, Result};
use ferrostack_volume::backend::{FileBackend, VolumeBackend};
use ferrostack_volume::VolumeService;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

struct Cloud {
    kit: ferrostack_testkit::TestCloud,
    url: String,
    svc: Arc<VolumeService>,
    http: reqwest::Client,
}

async fn sqlite(kit: &ferrostack_testkit::TestCloud) -> ferrostack_db::Db {
    let url = format!("sqlite://{}/volume.sqlite?mode=rwc", kit.dir.display());
    ferrostack_db::Db::connect(&url).await.unwrap()
}

/// Serve the volume API over `db` with `backend` (the file backend when `None`).
async fn serve(
    kit: ferrostack_testkit::TestCloud,
    db: ferrostack_db::Db,
    backend: Option<Arc<dyn VolumeBackend>>,
) -> Cloud {
    db.migrate(ferrostack_volume::store::MIGRATIONS)
        .await
        .unwrap();
    let backend = backend
        .unwrap_or_else(|| Arc::new(FileBackend::new(kit.config.volumes_dir(), "qcow2").unwrap()));
    let svc = VolumeService::new(db, kit.config.clone(), kit.bus.clone(), backend)
        .await
        .unwrap();
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

async fn start(name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("volume-{name}"), tune).await;
    let db = sqlite(&kit).await;
    serve(kit, db, None).await
}

/// A user with one token and the project it is scoped to.
struct User {
    token: String,
    project: String,
}

impl Cloud {
    async fn user(&self, name: &str, project: &str) -> User {
        let token = self.kit.token(name, project).await;
        let project = self.kit.project_of(&token).await;
        User { token, project }
    }

    /// `method /v3/{the user's project}{path}`: status, headers and JSON.
    async fn call(
        &self,
        u: &User,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/v3/{}{path}", self.url, u.project))
            .header("x-auth-token", &u.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, u: &User, body: Value) -> (StatusCode, Value) {
        self.call(u, Method::POST, "/volumes", Some(json!({"volume": body})))
            .await
    }

    /// Wait until the volume has `status` (or is gone, for `"deleted"`).
    async fn wait_status(&self, u: &User, id: &str, status: &str) -> Value {
        for _ in 0..200 {
            let (st, v) = self
                .call(u, Method::GET, &format!("/volumes/{id}"), None)
                .await;
            if status == "deleted" && st == StatusCode::NOT_FOUND {
                return v;
            }
            if v["volume"]["status"] == status {
                return v["volume"].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("volume {id} never became {status}");
    }
}

#[tokio::test]
async fn discovery_and_microversions() {
    let c = start("discovery", |_| {}).await;
    let r = c.http.get(format!("{}/", c.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MULTIPLE_CHOICES);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["versions"][0]["id"], "v3.0");
    assert_eq!(v["versions"][0]["min_version"], "3.0");
    assert_eq!(v["versions"][0]["version"], "3.71");
    let r = c.http.get(format!("{}/v3/", c.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let admin = c.user("admin", "admin").await;
    let path = format!("{}/v3/{}/volumes", c.url, admin.project);
    for (asked, status, served) in [
        ("volume 3.0", StatusCode::OK, "3.0"),
        ("volume latest", StatusCode::OK, "3.71"),
        ("volume 3.44", StatusCode::OK, "3.44"),
        ("volume 3.72", StatusCode::NOT_ACCEPTABLE, "3.0"),
        ("volume 2.0", StatusCode::NOT_ACCEPTABLE, "3.0"),
        ("volume 3.x", StatusCode::BAD_REQUEST, "3.0"),
        ("compute 2.90", StatusCode::OK, "3.0"),
    ] {
        let r = c
            .http
            .get(&path)
            .header("x-auth-token", &admin.token)
            .header("openstack-api-version", asked)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{asked}");
        assert_eq!(
            r.headers()["openstack-api-version"],
            format!("volume {served}").as_str()
        );
        assert_eq!(r.headers()["vary"], "OpenStack-API-Version");
        if status == StatusCode::NOT_ACCEPTABLE {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["notAcceptable"]["code"], 406);
        }
    }
}

#[tokio::test]
async fn volume_lifecycle_with_the_file_backend() {
    let c = start("lifecycle", |_| {}).await;
    let mut notes = c.kit.bus.subscribe_notifications().await.unwrap();
    let demo = c.user("demo", "demo").await;
    let (st, v) = c
        .create(
            &demo,
            json!({"size": 1, "name": "v1", "description": "first", "metadata": {"a": "1"},
                   "imageRef": null, "snapshot_id": null, "source_volid": null}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["volume"]["status"], "creating");
    assert_eq!(v["volume"]["volume_type"], "__DEFAULT__");
    assert!(v["volume"].get("os-vol-tenant-attr:tenant_id").is_none());
    let id = v["volume"]["id"].as_str().unwrap().to_owned();
    let shown = c.wait_status(&demo, &id, "available").await;
    assert_eq!(shown["size"], 1);
    // Cinder shows a project reader its volumes' project, not their host.
    assert_eq!(shown["os-vol-tenant-attr:tenant_id"], demo.project.as_str());
    assert!(shown.get("os-vol-host-attr:host").is_none());
    assert_eq!(shown["metadata"], json!({"a": "1"}));
    assert_eq!(shown["bootable"], "false");
    let file = c.kit.config.volumes_dir().join(format!("volume-{id}"));
    assert!(file.exists(), "the backend made {}", file.display());

    // A second volume, for lists.
    let (_, v2) = c.create(&demo, json!({"size": "2", "name": "v2"})).await;
    let id2 = v2["volume"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &id2, "available").await;
    let (_, list) = c.call(&demo, Method::GET, "/volumes", None).await;
    assert_eq!(list["volumes"].as_array().unwrap().len(), 2);
    assert!(list["volumes"][0].get("size").is_none(), "summary view");
    let (_, list) = c
        .call(&demo, Method::GET, "/volumes/detail?name=v1", None)
        .await;
    assert_eq!(list["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(list["volumes"][0]["id"], id);
    let (_, list) = c
        .call(
            &demo,
            Method::GET,
            "/volumes/detail?metadata={'a': '1'}",
            None,
        )
        .await;
    assert_eq!(list["volumes"].as_array().unwrap().len(), 1);
    let (_, list) = c
        .call(&demo, Method::GET, "/volumes/detail?sort=size:asc", None)
        .await;
    assert_eq!(list["volumes"][0]["id"], id);
    let (_, page) = c
        .call(&demo, Method::GET, "/volumes?sort=size:desc&limit=1", None)
        .await;
    assert_eq!(page["volumes"][0]["id"], id2);
    let next = page["volumes_links"][0]["href"].as_str().unwrap();
    assert!(next.contains(&format!("marker={id2}")), "{next}");
    let (_, page) = c
        .call(
            &demo,
            Method::GET,
            &format!("/volumes?sort=size:desc&limit=1&marker={id2}"),
            None,
        )
        .await;
    assert_eq!(page["volumes"][0]["id"], id);
    // Cinder links on from every full page, the last one too; the page
    // after it is empty and links nowhere.
    assert!(page.get("volumes_links").is_some());
    let (_, page) = c
        .call(
            &demo,
            Method::GET,
            &format!("/volumes?sort=size:desc&limit=1&marker={id}"),
            None,
        )
        .await;
    assert_eq!(page["volumes"], json!([]));
    assert!(page.get("volumes_links").is_none());
    let (st, _) = c
        .call(&demo, Method::GET, "/volumes?sort=bogus", None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Update and metadata.
    let (st, u) = c
        .call(
            &demo,
            Method::PUT,
            &format!("/volumes/{id}"),
            Some(json!({"volume": {"name": "renamed"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["volume"]["name"], "renamed");
    let meta = format!("/volumes/{id}/metadata");
    let (_, m) = c
        .call(
            &demo,
            Method::POST,
            &meta,
            Some(json!({"metadata": {"b": "2"}})),
        )
        .await;
    assert_eq!(m["metadata"], json!({"a": "1", "b": "2"}));
    let (_, m) = c
        .call(
            &demo,
            Method::PUT,
            &meta,
            Some(json!({"metadata": {"c": "3"}})),
        )
        .await;
    assert_eq!(m["metadata"], json!({"c": "3"}));
    let (_, m) = c
        .call(
            &demo,
            Method::PUT,
            &format!("{meta}/d"),
            Some(json!({"meta": {"d": "4"}})),
        )
        .await;
    assert_eq!(m["meta"], json!({"d": "4"}));
    let (_, m) = c.call(&demo, Method::GET, &format!("{meta}/d"), None).await;
    assert_eq!(m["meta"], json!({"d": "4"}));
    let (st, _) = c
        .call(&demo, Method::DELETE, &format!("{meta}/d"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, e) = c.call(&demo, Method::GET, &format!("{meta}/d"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");

    // Another project cannot see it; the admin sees it with the tenant attribute.
    let admin = c.user("admin", "admin").await;
    let (st, e) = c
        .call(&admin, Method::GET, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "admin reads any volume: {e}");
    assert_eq!(
        e["volume"]["os-vol-tenant-attr:tenant_id"],
        demo.project.as_str()
    );
    let (_, list) = c.call(&admin, Method::GET, "/volumes", None).await;
    assert_eq!(list["volumes"].as_array().unwrap().len(), 0);
    let (_, list) = c
        .call(&admin, Method::GET, "/volumes?all_tenants=1", None)
        .await;
    assert_eq!(list["volumes"].as_array().unwrap().len(), 2);
    let alt = User {
        token: demo.token.clone(),
        project: admin.project.clone(),
    };
    let (st, _) = c.call(&alt, Method::GET, "/volumes", None).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "URL project must be the token's"
    );

    // Extend: the record and the file grow; not to a smaller or equal size.
    let action = format!("/volumes/{id}/action");
    let (st, e) = c
        .call(
            &demo,
            Method::POST,
            &action,
            Some(json!({"os-extend": {"new_size": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("greater than current size"));
    let (st, e) = c
        .call(
            &demo,
            Method::POST,
            &action,
            Some(json!({"os-extend": {"new_size": 2}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    c.wait_status(&demo, &id, "available").await;
    let (_, shown) = c
        .call(&demo, Method::GET, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(shown["volume"]["size"], 2);
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json", &file.to_string_lossy()])
        .output()
        .unwrap();
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["virtual-size"], 2u64 << 30);
    let (st, _) = c
        .call(&demo, Method::POST, &action, Some(json!({"os-detach": {}})))
        .await;
    assert_eq!(
        st,
        StatusCode::ACCEPTED,
        "os-detach of a volume attached nowhere is a no-op, as Cinder's"
    );
    let (_, shown) = c
        .call(&demo, Method::GET, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(shown["volume"]["status"], "available");

    // Delete: the volume and its file go.
    let (st, _) = c
        .call(&demo, Method::DELETE, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let gone = c.wait_status(&demo, &id, "deleted").await;
    assert_eq!(gone["itemNotFound"]["code"], 404);
    assert!(!file.exists());

    // What metering reads: each operation's start and end, about this volume.
    let mut events = Vec::new();
    while let Ok(n) = notes.try_recv() {
        if n.payload["volume_id"] == id.as_str() {
            events.push(n.event_type);
        }
    }
    assert_eq!(
        events,
        [
            "volume.create.start",
            "volume.create.end",
            "volume.resize.start",
            "volume.resize.end",
            "volume.delete.start",
            "volume.delete.end",
        ]
    );
}

#[tokio::test]
async fn bad_input_is_refused_as_cinder_refuses_it() {
    let c = start("bad-input", |_| {}).await;
    let demo = c.user("demo", "demo").await;
    for size in [json!(0), json!(-1), json!("x"), json!(null)] {
        let (st, e) = c.create(&demo, json!({"size": size})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "size {size}: {e}");
        assert!(e["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("size"));
    }
    let (st, e) = c
        .create(&demo, json!({"size": 1, "volume_type": "nope"}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(
        e["itemNotFound"]["message"],
        "Volume type with name nope could not be found."
    );
    let (st, _) = c
        .create(&demo, json!({"size": 1, "availability_zone": "elsewhere"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c.create(&demo, json!({"size": 1, "backup_id": "x"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "backup_id is refused at 3.0");
    let (st, _) = c.call(&demo, Method::GET, "/volumes/nope", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// A volume that is not in a deletable state is refused (400) and kept.
#[tokio::test]
async fn delete_is_refused_while_creating() {
    let c = start("not-deletable", |_| {}).await;
    c.svc
        .paused
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let demo = c.user("demo", "demo").await;
    let (_, v) = c.create(&demo, json!({"size": 1})).await;
    let id = v["volume"]["id"].as_str().unwrap();
    let (st, e) = c
        .call(&demo, Method::DELETE, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["badRequest"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid volume"));
    let (st, e) = c
        .call(
            &demo,
            Method::POST,
            &format!("/volumes/{id}/action"),
            Some(json!({"os-extend": {"new_size": 3}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "no extend while creating: {e}");
}

/// A backend that fails every create (after leaving a partial file) and
/// every extend.
struct FailingBackend(FileBackend);

#[async_trait::async_trait]
impl VolumeBackend for FailingBackend {
    fn name(&self) -> &str {
        "failing"
    }
    async fn create(&self, id: &str, _size_gb: u64) -> Result<()> {
        std::fs::write(self.0.path(id), b"partial").unwrap();
        Err(Error::Internal("the disk is on fire".into()))
    }
    async fn delete(&self, id: &str) -> Result<()> {
        self.0.delete(id).await
    }
    async fn extend(&self, _id: &str, _size_gb: u64) -> Result<()> {
        Err(Error::Internal("the disk is full".into()))
    }
}

#[tokio::test]
async fn a_backend_failure_leaves_the_volume_in_error_and_no_file() {
    let kit = ferrostack_testkit::start("volume-failing", |_| {}).await;
    let db = sqlite(&kit).await;
    let file = FileBackend::new(kit.config.volumes_dir(), "raw").unwrap();
    let c = serve(kit, db, Some(Arc::new(FailingBackend(file)))).await;
    let demo = c.user("demo", "demo").await;
    let (_, v) = c.create(&demo, json!({"size": 1})).await;
    let id = v["volume"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &id, "error").await;
    assert!(!c
        .kit
        .config
        .volumes_dir()
        .join(format!("volume-{id}"))
        .exists());
    // A volume in error can be deleted.
    let (st, _) = c
        .call(&demo, Method::DELETE, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    c.wait_status(&demo, &id, "deleted").await;
}

/// A failed extend leaves `error_extending` at the old size (as Cinder),
/// so the gigabytes it asked for are no longer counted.
#[tokio::test]
async fn a_failed_extend_keeps_the_old_size() {
    let c = start("failing-extend", |_| {}).await;
    let demo = c.user("demo", "demo").await;
    let (_, v) = c.create(&demo, json!({"size": 1})).await;
    let id = v["volume"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &id, "available").await;
    // The same database and files, served with a backend whose extends fail.
    let file = FileBackend::new(c.kit.config.volumes_dir(), "qcow2").unwrap();
    let failing = VolumeService::new(
        c.svc.db.clone(),
        c.kit.config.clone(),
        c.kit.bus.clone(),
        Arc::new(FailingBackend(file)),
    )
    .await
    .unwrap();
    let url = ferrostack_testkit::serve(ferrostack_volume::api::router(
        failing,
        c.kit.validator.clone(),
        &c.kit.auth_uri(),
    ))
    .await;
    let r = c
        .http
        .post(format!("{url}/v3/{}/volumes/{id}/action", demo.project))
        .header("x-auth-token", &demo.token)
        .json(&json!({"os-extend": {"new_size": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let shown = c.wait_status(&demo, &id, "error_extending").await;
    assert_eq!(shown["size"], 1);
}

/// A create recorded by a service that stopped before running it is
/// finished by the next start: the volume becomes available, never stays
/// `creating`.
#[tokio::test]
async fn an_unfinished_create_is_finished_after_a_restart() {
    let c = start("restart", |_| {}).await;
    c.svc
        .paused
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let demo = c.user("demo", "demo").await;
    let (_, v) = c.create(&demo, json!({"size": 1})).await;
    let id = v["volume"]["id"].as_str().unwrap().to_owned();
    let (_, shown) = c
        .call(&demo, Method::GET, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(shown["volume"]["status"], "creating");
    // The "restarted" service: the same database and directory.
    let cfg = c.kit.config.clone();
    let restarted = ferrostack_volume::open(&cfg, c.kit.bus.clone())
        .await
        .unwrap();
    assert!(restarted.backend.name() == "file");
    c.wait_status(&demo, &id, "available").await;
    assert!(cfg.volumes_dir().join(format!("volume-{id}")).exists());
}

/// Quotas on a walk any engine runs: concurrent creates never overshoot.
async fn quota_walk(c: &Cloud) {
    let admin = c.user("admin", "admin").await;
    let demo = c.user("demo", "demo").await;
    let qpath = format!("/os-quota-sets/{}", demo.project);
    let (st, q) = c.call(&demo, Method::GET, &qpath, None).await;
    assert_eq!(st, StatusCode::OK, "{q}");
    assert_eq!(q["quota_set"]["volumes"], 10);
    let (st, _) = c
        .call(
            &demo,
            Method::PUT,
            &qpath,
            Some(json!({"quota_set": {"volumes": 2}})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "members do not set quotas");
    let (st, q) = c
        .call(
            &admin,
            Method::PUT,
            &qpath,
            Some(json!({"quota_set": {"volumes": 2, "gigabytes": 5}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{q}");
    assert_eq!(q["quota_set"]["volumes"], 2);
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            &qpath,
            Some(json!({"quota_set": {"bogus": 2}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, d) = c
        .call(&demo, Method::GET, &format!("{qpath}/defaults"), None)
        .await;
    assert_eq!(d["quota_set"]["volumes"], 10);

    let (st, e) = c.create(&demo, json!({"size": 6})).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    // An extend counts its added gigabytes against the same quota.
    let (_, big) = c.create(&demo, json!({"size": 4})).await;
    let big = big["volume"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &big, "available").await;
    let (st, e) = c
        .call(
            &demo,
            Method::POST,
            &format!("/volumes/{big}/action"),
            Some(json!({"os-extend": {"new_size": 6}})),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    c.call(&demo, Method::DELETE, &format!("/volumes/{big}"), None)
        .await;
    c.wait_status(&demo, &big, "deleted").await;
    assert!(e["overLimit"]["message"]
        .as_str()
        .unwrap()
        .contains("gigabytes"));
    let creates = (0..5).map(|_| c.create(&demo, json!({"size": 1})));
    // In flight together: the quota lock, not luck, keeps the count.
    let results = futures::future::join_all(creates).await;
    let accepted = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    let refused = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::PAYLOAD_TOO_LARGE)
        .count();
    assert_eq!((accepted, refused), (2, 3), "{results:?}");

    let (_, l) = c.call(&demo, Method::GET, "/limits", None).await;
    assert_eq!(l["limits"]["absolute"]["maxTotalVolumes"], 2);
    assert_eq!(l["limits"]["absolute"]["totalVolumesUsed"], 2);
    assert_eq!(l["limits"]["absolute"]["totalGigabytesUsed"], 2);
    let (_, u) = c
        .call(&demo, Method::GET, &format!("{qpath}?usage=true"), None)
        .await;
    assert_eq!(u["quota_set"]["volumes"]["in_use"], 2);
    let (st, _) = c.call(&admin, Method::DELETE, &qpath, None).await;
    assert_eq!(st, StatusCode::OK);
    let (_, q) = c.call(&demo, Method::GET, &qpath, None).await;
    assert_eq!(q["quota_set"]["volumes"], 10);
    let (_, z) = c
        .call(&demo, Method::GET, "/os-availability-zone", None)
        .await;
    assert_eq!(z["availabilityZoneInfo"][0]["zoneName"], "nova");
}

#[tokio::test]
async fn quotas_on_sqlite() {
    let c = start("quotas", |_| {}).await;
    quota_walk(&c).await;
}

/// The schema and the quota-locked create on MariaDB and PostgreSQL too.
#[tokio::test]
async fn quotas_on_mariadb_and_postgresql() {
    for db in ferrostack_db::testing::test_databases("volume_api")
        .await
        .into_iter()
        .skip(1)
    {
        let kit = ferrostack_testkit::start("volume-engines", |_| {}).await;
        let c = serve(kit, db, None).await;
        quota_walk(&c).await;
    }
}

#[tokio::test]
async fn volume_types_are_managed_by_admins() {
    let c = start("types", |_| {}).await;
    let admin = c.user("admin", "admin").await;
    let demo = c.user("demo", "demo").await;
    let (_, types) = c.call(&demo, Method::GET, "/types", None).await;
    assert_eq!(types["volume_types"][0]["name"], "__DEFAULT__");
    let body =
        json!({"volume_type": {"name": "fast", "extra_specs": {"volume_backend_name": "file"}}});
    let (st, _) = c
        .call(&demo, Method::POST, "/types", Some(body.clone()))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, t) = c
        .call(&admin, Method::POST, "/types", Some(body.clone()))
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let (st, _) = c.call(&admin, Method::POST, "/types", Some(body)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let tid = t["volume_type"]["id"].as_str().unwrap().to_owned();
    let specs = format!("/types/{tid}/extra_specs");
    let (st, s) = c
        .call(
            &admin,
            Method::POST,
            &specs,
            Some(json!({"extra_specs": {"k": "v"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let (_, s) = c.call(&demo, Method::GET, &specs, None).await;
    assert_eq!(
        s["extra_specs"],
        json!({"volume_backend_name": "file", "k": "v"})
    );
    let (_, s) = c
        .call(&demo, Method::GET, &format!("{specs}/k"), None)
        .await;
    assert_eq!(s, json!({"k": "v"}));
    let (st, _) = c
        .call(&admin, Method::DELETE, &format!("{specs}/k"), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);

    let (st, v) = c
        .create(&demo, json!({"size": 1, "volume_type": "fast"}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["volume"]["volume_type"], "fast");
    let (st, _) = c
        .call(&admin, Method::DELETE, &format!("/types/{tid}"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a type in use stays");
    let default = types["volume_types"][0]["id"].as_str().unwrap();
    let (st, _) = c
        .call(&admin, Method::DELETE, &format!("/types/{default}"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "the default type stays");
    let vid = v["volume"]["id"].as_str().unwrap();
    c.wait_status(&demo, vid, "available").await;
    c.call(&demo, Method::DELETE, &format!("/volumes/{vid}"), None)
        .await;
    c.wait_status(&demo, vid, "deleted").await;
    let (st, _) = c
        .call(&admin, Method::DELETE, &format!("/types/{tid}"), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = c
        .call(&demo, Method::GET, &format!("/types/{tid}"), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// An operator's `[volume] policy_file` replaces Cinder's defaults by name.
#[tokio::test]
async fn operator_policy_file_overrides_cinder_defaults() {
    let dir = std::env::temp_dir().join(format!("ferrostack-volume-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(&file, "\"volume:create\": \"role:admin\"\n").unwrap();
    let path = file.display().to_string();
    let c = start("policy", |cfg| cfg.volume.policy_file = path.clone()).await;
    let demo = c.user("demo", "demo").await;
    let (st, e) = c.create(&demo, json!({"size": 1})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(
        e["forbidden"]["message"],
        "Policy doesn't allow volume:create to be performed."
    );
    // Rules the file does not name keep Cinder's defaults.
    let (st, _) = c.call(&demo, Method::GET, "/volumes", None).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn openapi_document_is_public_and_matches_the_router() {
    let c = start("openapi", |_| {}).await;
    let (doc, operations) =
        ferrostack_testkit::assert_openapi_served(&c.url, &ferrostack_volume::openapi_document())
            .await;
    assert!(operations > 20, "{operations}");
    let create = &doc["paths"]["/v3/{project_id}/volumes"]["post"];
    assert_eq!(create["security"], json!([{"token": []}]));
}

/// Admin actions: `os-reset_status` sets the status the record shows;
/// `os-force_delete` deletes also what a plain delete refuses
/// (`error_deleting`); members may do neither.
#[tokio::test]
async fn admins_reset_status_and_force_delete() {
    let c = start("admin-actions", |_| {}).await;
    let demo = c.user("demo", "demo").await;
    let admin = c.user("admin", "admin").await;
    let (_, v) = c.create(&demo, json!({"size": 1})).await;
    let id = v["volume"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &id, "available").await;
    let action = format!("/volumes/{id}/action");
    let reset = |status: &str| Some(json!({"os-reset_status": {"status": status}}));
    let (st, _) = c
        .call(&demo, Method::POST, &action, reset("error_deleting"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, e) = c.call(&admin, Method::POST, &action, reset("bogus")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (st, e) = c
        .call(&admin, Method::POST, &action, reset("error_deleting"))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    c.wait_status(&demo, &id, "error_deleting").await;
    let (st, _) = c
        .call(&demo, Method::DELETE, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let force = Some(json!({"os-force_delete": null}));
    let (st, _) = c.call(&demo, Method::POST, &action, force.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, e) = c.call(&admin, Method::POST, &action, force).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    c.wait_status(&demo, &id, "deleted").await;
    assert!(!c
        .kit
        .config
        .volumes_dir()
        .join(format!("volume-{id}"))
        .exists());
}

/// From 3.23 a delete with `force=true` is the admin's force delete (what
/// openstacksdk and `openstack volume delete --force` send); below it the
/// flag means nothing, and a flag that is not a boolean is a 400.
#[tokio::test]
async fn delete_with_force_from_3_23_is_a_force_delete() {
    let c = start("delete-force", |_| {}).await;
    let demo = c.user("demo", "demo").await;
    let admin = c.user("admin", "admin").await;
    let (_, v) = c.create(&demo, json!({"size": 1})).await;
    let id = v["volume"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &id, "available").await;
    let (st, e) = c
        .call(
            &admin,
            Method::POST,
            &format!("/volumes/{id}/action"),
            Some(json!({"os-reset_status": {"status": "error_deleting"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    let delete = |u: &User, query: &str, version: &str| {
        c.http
            .delete(format!("{}/v3/{}/volumes/{id}?{query}", c.url, u.project))
            .header("x-auth-token", &u.token)
            .header("openstack-api-version", format!("volume {version}"))
            .send()
    };
    // 3.22: `force` is not a parameter; a plain delete of error_deleting is refused.
    let r = delete(&admin, "force=true", "3.22").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = delete(&admin, "force=maybe", "3.23").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = delete(&admin, "force=true&cascade=true", "3.23")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = delete(&demo, "force=true", "3.23").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = delete(&admin, "cascade=False&force=True", "3.23")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    c.wait_status(&demo, &id, "deleted").await;
}

/// The scheduler's filters on the one backend: a volume that does not fit
/// in `capacity_gb`, or whose type names another backend, goes to `error`
/// with no file; freed space takes the next one.
#[tokio::test]
async fn volumes_beyond_the_capacity_or_for_another_backend_go_to_error() {
    let c = start("capacity", |cfg| cfg.volume.capacity_gb = 2).await;
    let admin = c.user("admin", "admin").await;
    // A type bound to a backend this service does not have.
    let (st, t) = c
        .call(
            &admin,
            Method::POST,
            "/types",
            Some(json!({"volume_type": {"name": "elsewhere",
                "extra_specs": {"volume_backend_name": "lvm-far-away"}}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let (_, v) = c
        .create(&admin, json!({"size": 1, "volume_type": "elsewhere"}))
        .await;
    c.wait_status(&admin, v["volume"]["id"].as_str().unwrap(), "error")
        .await;

    let mut ids = Vec::new();
    for _ in 0..3 {
        let (st, v) = c.create(&admin, json!({"size": 1})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let id = v["volume"]["id"].as_str().unwrap().to_owned();
        let wanted = if ids.len() < 2 { "available" } else { "error" };
        c.wait_status(&admin, &id, wanted).await;
        ids.push(id);
    }
    let dir = c.kit.config.volumes_dir();
    assert!(!dir.join(format!("volume-{}", ids[2])).exists());
    let (st, _) = c
        .call(
            &admin,
            Method::DELETE,
            &format!("/volumes/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    c.wait_status(&admin, &ids[0], "deleted").await;
    let (_, v) = c.create(&admin, json!({"size": 1})).await;
    c.wait_status(&admin, v["volume"]["id"].as_str().unwrap(), "available")
        .await;
}
