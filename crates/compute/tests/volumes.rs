//! Volumes of servers end to end, in-process: identity (testkit), the
//! networking and image APIs, the compute API with a fake-driver agent,
//! and a test double of Cinder's volumes and attachments endpoints (the
//! wire format of the volume contract, microversion 3.44) that keeps its
//! volumes in memory. Attach, list, show, views per microversion, detach,
//! refusals, every attach/detach saga step failing and being undone,
//! server delete detaching, the `volume-extended` event, boot from volume.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode as AxStatus;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use ferrostack_compute::{ComputeAgent, ComputeService};
use ferrostack_hypervisor::fake::{FakeConfig, FakeDriver};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ----- the Cinder double -----

#[derive(Default)]
struct Cinder {
    volumes: HashMap<String, Value>,
    /// attachment id → (volume id, instance id, connector)
    attachments: HashMap<String, (String, String, Value)>,
    snapshots: HashMap<String, Value>,
    /// `os-reimage` leaves the volume `error` (a failed copy).
    fail_reimage: bool,
    /// How many `os-reimage`s were asked for.
    reimages: u32,
}

type Shared = Arc<Mutex<Cinder>>;

fn cinder_error(code: u16, message: &str) -> Response {
    let kind = if code == 404 {
        "itemNotFound"
    } else {
        "badRequest"
    };
    (
        AxStatus::from_u16(code).unwrap(),
        axum::Json(json!({ kind: {"message": message, "code": code} })),
    )
        .into_response()
}

fn volume_view(c: &Cinder, id: &str) -> Value {
    let mut v = c.volumes[id].clone();
    v["attachments"] = json!(c
        .attachments
        .iter()
        .filter(|(_, (vol, _, _))| vol == id)
        .map(
            |(a, (_, server, _))| json!({"attachment_id": a, "server_id": server, "volume_id": id})
        )
        .collect::<Vec<_>>());
    v
}

async fn volume_get(State(s): State<Shared>, Path((_, id)): Path<(String, String)>) -> Response {
    let c = s.lock().unwrap();
    if !c.volumes.contains_key(&id) {
        return cinder_error(404, "Volume could not be found.");
    }
    axum::Json(json!({"volume": volume_view(&c, &id)})).into_response()
}

async fn volume_list(
    State(s): State<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = s.lock().unwrap();
    let list: Vec<Value> = c
        .volumes
        .keys()
        .map(|id| volume_view(&c, id))
        .filter(|v| v["project_id"] == project.as_str())
        .filter(|v| q.get("name").is_none_or(|n| v["name"] == n.as_str()))
        .collect();
    axum::Json(json!({ "volumes": list })).into_response()
}

async fn volume_create(
    State(s): State<Shared>,
    Path(project): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let v = &body["volume"];
    let id = uuid::Uuid::new_v4().to_string();
    let size = v["size"].as_i64().unwrap_or(1);
    // Size 13 is the double's way of making a volume that fails.
    let status = if size == 13 { "error" } else { "available" };
    let vol = json!({"id": id, "name": v["name"], "size": size, "status": status,
        "project_id": project, "multiattach": false, "imageRef": v["imageRef"],
        "snapshot_id": v["snapshot_id"], "volume_type": v["volume_type"]});
    s.lock().unwrap().volumes.insert(id.clone(), vol.clone());
    (AxStatus::ACCEPTED, axum::Json(json!({ "volume": vol }))).into_response()
}

async fn volume_delete(State(s): State<Shared>, Path((_, id)): Path<(String, String)>) -> Response {
    let mut c = s.lock().unwrap();
    let Some(v) = c.volumes.get(&id) else {
        return cinder_error(404, "Volume could not be found.");
    };
    if v["status"] != "available" && v["status"] != "error" {
        return cinder_error(
            400,
            "Invalid volume: Volume status must be available or error.",
        );
    }
    c.volumes.remove(&id);
    AxStatus::ACCEPTED.into_response()
}

async fn attachment_create(
    State(s): State<Shared>,
    Path(_): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let a = &body["attachment"];
    let vol = a["volume_uuid"].as_str().unwrap_or_default().to_owned();
    let server = a["instance_uuid"].as_str().unwrap_or_default().to_owned();
    let mut c = s.lock().unwrap();
    let held = c.attachments.values().any(|a| a.0 == vol && a.1 == server);
    let Some(v) = c.volumes.get_mut(&vol) else {
        return cinder_error(404, "Volume could not be found.");
    };
    if held {
        // Cinder lets an instance holding the volume reserve it again.
    } else if v["status"] != "available" {
        return cinder_error(
            400,
            &format!("Invalid volume: Volume {vol} status must be available or downloading to reserve, but the current status is {}.", v["status"]),
        );
    }
    if !held {
        v["status"] = json!("reserved");
    }
    let id = uuid::Uuid::new_v4().to_string();
    c.attachments
        .insert(id.clone(), (vol.clone(), server.clone(), Value::Null));
    axum::Json(json!({"attachment": {"id": id, "volume_id": vol, "instance": server, "status": "reserved"}}))
        .into_response()
}

async fn attachment_update(
    State(s): State<Shared>,
    Path((_, id)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut c = s.lock().unwrap();
    let Some(a) = c.attachments.get_mut(&id) else {
        return cinder_error(404, "Attachment could not be found.");
    };
    a.2 = body["attachment"]["connector"].clone();
    let vol = a.0.clone();
    c.volumes.get_mut(&vol).unwrap()["status"] = json!("attaching");
    let info = json!({"driver_volume_type": "nbd",
        "data": {"export": format!("secret-{vol}"), "socket": "/run/nbd.sock", "access_mode": "rw"}});
    axum::Json(json!({"attachment": {"id": id, "volume_id": vol, "connection_info": info}}))
        .into_response()
}

async fn attachment_action(
    State(s): State<Shared>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let mut c = s.lock().unwrap();
    let Some(a) = c.attachments.get(&id) else {
        return cinder_error(404, "Attachment could not be found.");
    };
    let vol = a.0.clone();
    c.volumes.get_mut(&vol).unwrap()["status"] = json!("in-use");
    AxStatus::NO_CONTENT.into_response()
}

async fn attachment_delete(
    State(s): State<Shared>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let mut c = s.lock().unwrap();
    let Some((vol, _, _)) = c.attachments.remove(&id) else {
        return cinder_error(404, "Attachment could not be found.");
    };
    let left: Vec<bool> = c
        .attachments
        .values()
        .filter(|a| a.0 == vol)
        .map(|a| a.2.is_null())
        .collect();
    if let Some(v) = c.volumes.get_mut(&vol) {
        if left.is_empty() {
            v["status"] = json!("available");
        } else if left.iter().all(|unconnected| *unconnected) {
            v["status"] = json!("reserved");
        }
    }
    axum::Json(json!({"attachments": []})).into_response()
}

async fn snapshot_create(
    State(s): State<Shared>,
    Path(project): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let sn = &body["snapshot"];
    let mut c = s.lock().unwrap();
    let Some(vol) = sn["volume_id"].as_str().and_then(|v| c.volumes.get(v)) else {
        return cinder_error(404, "Volume could not be found.");
    };
    let id = uuid::Uuid::new_v4().to_string();
    let snap = json!({"id": id, "volume_id": sn["volume_id"], "size": vol["size"],
        "status": "available", "name": sn["name"], "description": sn["description"],
        "created_at": "2026-01-01T00:00:00.000000", "project_id": project});
    c.snapshots.insert(id, snap.clone());
    (AxStatus::ACCEPTED, axum::Json(json!({ "snapshot": snap }))).into_response()
}

async fn snapshot_list(State(s): State<Shared>, Path(project): Path<String>) -> Response {
    let c = s.lock().unwrap();
    let list: Vec<Value> = c
        .snapshots
        .values()
        .filter(|v| v["project_id"] == project.as_str())
        .cloned()
        .collect();
    axum::Json(json!({ "snapshots": list })).into_response()
}

async fn snapshot_get(State(s): State<Shared>, Path((_, id)): Path<(String, String)>) -> Response {
    match s.lock().unwrap().snapshots.get(&id) {
        Some(v) => axum::Json(json!({ "snapshot": v })).into_response(),
        None => cinder_error(404, "Snapshot could not be found."),
    }
}

async fn snapshot_delete(
    State(s): State<Shared>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    match s.lock().unwrap().snapshots.remove(&id) {
        Some(_) => AxStatus::ACCEPTED.into_response(),
        None => cinder_error(404, "Snapshot could not be found."),
    }
}

/// `GET /attachments?volume_id=&instance_id=`.
async fn attachment_list(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = s.lock().unwrap();
    let list: Vec<Value> = c
        .attachments
        .iter()
        .filter(|(_, a)| q.get("volume_id").is_none_or(|v| *v == a.0))
        .filter(|(_, a)| q.get("instance_id").is_none_or(|i| *i == a.1))
        .map(|(id, a)| json!({"id": id, "volume_id": a.0, "instance": a.1}))
        .collect();
    axum::Json(json!({ "attachments": list })).into_response()
}

/// `os-reimage` (3.68, a `reserved` volume with `reimage_reserved`): done
/// at once — `reserved` with the image's id — or `error` when told to fail.
async fn volume_action(
    State(s): State<Shared>,
    Path((_, id)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut c = s.lock().unwrap();
    let fail = c.fail_reimage;
    c.reimages += 1;
    let Some(v) = c.volumes.get_mut(&id) else {
        return cinder_error(404, "Volume could not be found.");
    };
    let r = &body["os-reimage"];
    if r.is_null() || v["status"] != "reserved" || r["reimage_reserved"] != true {
        return cinder_error(400, "Invalid volume.");
    }
    if fail {
        v["status"] = json!("error");
    } else {
        v["volume_image_metadata"] = json!({"image_id": r["image_id"]});
    }
    AxStatus::ACCEPTED.into_response()
}

/// `os-update_snapshot_status`: the status is recorded on the snapshot.
async fn snapshot_action(
    State(s): State<Shared>,
    Path((_, id)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut c = s.lock().unwrap();
    let Some(snap) = c.snapshots.get_mut(&id) else {
        return cinder_error(404, "Snapshot could not be found.");
    };
    snap["status"] = body["os-update_snapshot_status"]["status"].clone();
    AxStatus::ACCEPTED.into_response()
}

fn cinder_router(state: Shared) -> axum::Router {
    axum::Router::new()
        .route("/v3/{p}/volumes", get(volume_list).post(volume_create))
        .route("/v3/{p}/volumes/detail", get(volume_list))
        .route("/v3/{p}/snapshots", post(snapshot_create))
        .route("/v3/{p}/snapshots/detail", get(snapshot_list))
        .route(
            "/v3/{p}/snapshots/{id}",
            get(snapshot_get).delete(snapshot_delete),
        )
        .route(
            "/v3/{p}/volumes/{id}",
            get(volume_get).delete(volume_delete),
        )
        .route("/v3/{p}/snapshots/{id}/action", post(snapshot_action))
        .route("/v3/{p}/volumes/{id}/action", post(volume_action))
        .route(
            "/v3/{p}/attachments",
            post(attachment_create).get(attachment_list),
        )
        .route(
            "/v3/{p}/attachments/{id}",
            put(attachment_update).delete(attachment_delete),
        )
        .route("/v3/{p}/attachments/{id}/action", post(attachment_action))
        .with_state(state)
}

// ----- the cloud -----

struct Cloud {
    kit: ferrostack_testkit::TestCloud,
    compute: String,
    net: String,
    glance: String,
    svc: Arc<ComputeService>,
    agent: Arc<ComputeAgent>,
    driver: Arc<FakeDriver>,
    cinder: Shared,
    http: reqwest::Client,
}

async fn start(name: &str) -> Cloud {
    let kit = ferrostack_testkit::start(&format!("compute-volumes-{name}"), |_| {}).await;
    let dir = kit.dir.clone();
    let sqlite = |svc: &str| format!("sqlite://{}/{svc}.sqlite?mode=rwc", dir.display());
    let net_db = ferrostack_db::Db::connect(&sqlite("network"))
        .await
        .unwrap();
    net_db
        .migrate(ferrostack_network::store::MIGRATIONS)
        .await
        .unwrap();
    let network =
        ferrostack_network::NetworkService::new(net_db, kit.config.clone(), kit.bus.clone())
            .await
            .unwrap();
    let net = ferrostack_testkit::serve(ferrostack_network::api::router(
        network,
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    let img_db = ferrostack_db::Db::connect(&sqlite("image")).await.unwrap();
    img_db
        .migrate(ferrostack_image::store::MIGRATIONS)
        .await
        .unwrap();
    let image = ferrostack_image::ImageService::new(img_db, kit.config.clone(), kit.bus.clone())
        .await
        .unwrap();
    let glance = ferrostack_testkit::serve(ferrostack_image::api::router(
        image,
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    let cinder: Shared = Arc::default();
    let cinder_url = ferrostack_testkit::serve(cinder_router(cinder.clone())).await;

    let mut config = kit.config.clone();
    config.service_auth.auth_url = kit.auth_uri();
    config.compute.network_url = net.clone();
    config.compute.image_url = glance.clone();
    config.compute.volume_url = cinder_url;
    config.compute.rpc_timeout = 5;
    config.compute.report_interval = 1;
    config.compute.sync_power_state_interval = 3600;
    config.common.host = "compute1".into();
    config.compute.driver = "fake".into();
    config.compute.instances_path = dir.join("instances").display().to_string();
    let cdb = ferrostack_db::Db::connect(&sqlite("compute"))
        .await
        .unwrap();
    cdb.migrate(ferrostack_compute::store::MIGRATIONS)
        .await
        .unwrap();
    let svc = ComputeService::new(cdb, config.clone(), kit.bus.clone())
        .await
        .unwrap();
    ferrostack_compute::start(&svc).await.unwrap();
    let compute = ferrostack_testkit::serve(ferrostack_compute::api::router(
        svc.clone(),
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    let driver = Arc::new(FakeDriver::new(&FakeConfig {
        host: config.common.host.clone(),
        vcpus: config.compute.fake_vcpus,
        memory_mb: config.compute.fake_memory_mb,
        local_gb: config.compute.fake_local_gb,
    }));
    let agent = ComputeAgent::start(&config, kit.bus.clone(), driver.clone())
        .await
        .unwrap();
    Cloud {
        kit,
        compute,
        net,
        glance,
        svc,
        agent,
        driver,
        cinder,
        http: reqwest::Client::new(),
    }
}

impl Cloud {
    async fn call(
        &self,
        version: &str,
        m: Method,
        url: String,
        tok: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(m, url)
            .header("x-auth-token", tok)
            .header("openstack-api-version", format!("compute {version}"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let st = resp.status();
        (st, resp.json().await.unwrap_or(Value::Null))
    }

    async fn nova(
        &self,
        m: Method,
        path: &str,
        tok: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.nova_at("2.1", m, path, tok, body).await
    }

    async fn nova_at(
        &self,
        version: &str,
        m: Method,
        path: &str,
        tok: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}/v2.1{path}", self.compute);
        self.call(version, m, url, tok, body).await
    }

    async fn ok(&self, m: Method, path: &str, tok: &str, body: Option<Value>) -> Value {
        let (s, v) = self.nova(m.clone(), path, tok, body).await;
        assert!(s.is_success(), "{m} {path}: {s} {v}");
        v
    }

    async fn setup(&self) -> (String, String, String) {
        let admin = self.kit.token("admin", "admin").await;
        let (s, v) = self
            .call(
                "2.1",
                Method::POST,
                format!("{}/v2/images", self.glance),
                &admin,
                Some(json!({"name": "cirros", "disk_format": "raw", "container_format": "bare", "visibility": "public"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let image = v["id"].as_str().unwrap().to_owned();
        let r = self
            .http
            .put(format!("{}/v2/images/{image}/file", self.glance))
            .header("x-auth-token", &admin)
            .header("content-type", "application/octet-stream")
            .body(vec![7u8; 4096])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let (_, n) = self
            .call(
                "2.1",
                Method::POST,
                format!("{}/v2.0/networks", self.net),
                &admin,
                Some(json!({"network": {"name": "private", "shared": true}})),
            )
            .await;
        let net = n["network"]["id"].as_str().unwrap().to_owned();
        let (s, v) = self
            .call(
                "2.1",
                Method::POST,
                format!("{}/v2.0/subnets", self.net),
                &admin,
                Some(
                    json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.20.0.0/24"}}),
                ),
            )
            .await;
        assert!(s.is_success(), "{v}");
        (admin, image, net)
    }

    async fn boot(&self, tok: &str, name: &str, image: &str, net: &str) -> String {
        let v = self
            .ok(
                Method::POST,
                "/servers",
                tok,
                Some(
                    json!({"server": {"name": name, "imageRef": image, "flavorRef": "1",
                    "networks": [{"uuid": net}]}}),
                ),
            )
            .await;
        let id = v["server"]["id"].as_str().unwrap().to_owned();
        self.wait_status(tok, &id, "ACTIVE").await;
        id
    }

    async fn wait_status(&self, tok: &str, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, v) = self
                .nova(Method::GET, &format!("/servers/{id}"), tok, None)
                .await;
            if want == "GONE" && s == StatusCode::NOT_FOUND {
                return Value::Null;
            }
            if s.is_success()
                && v["server"]["status"] == want
                && v["server"]["OS-EXT-STS:task_state"].is_null()
            {
                return v["server"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "server {id} never reached {want}: {s} {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A volume in the double, in `project`, `available`.
    fn volume(&self, project: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.cinder.lock().unwrap().volumes.insert(
            id.clone(),
            json!({"id": id, "name": "v", "size": 1, "status": "available",
                   "project_id": project, "multiattach": false}),
        );
        id
    }

    fn volume_status(&self, id: &str) -> Option<String> {
        self.cinder
            .lock()
            .unwrap()
            .volumes
            .get(id)
            .map(|v| v["status"].as_str().unwrap().to_owned())
    }

    fn attachments_of(&self, volume: &str) -> Vec<(String, Value)> {
        self.cinder
            .lock()
            .unwrap()
            .attachments
            .values()
            .filter(|a| a.0 == volume)
            .map(|a| (a.1.clone(), a.2.clone()))
            .collect()
    }

    fn guest_volumes(&self, server: &str) -> Vec<ferrostack_hypervisor::VolumeAttachment> {
        self.driver
            .guest(server)
            .map(|g| g.spec.volumes)
            .unwrap_or_default()
    }

    async fn attach(&self, tok: &str, server: &str, volume: &str) -> (StatusCode, Value) {
        self.nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            tok,
            Some(json!({"volumeAttachment": {"volumeId": volume}})),
        )
        .await
    }

    async fn detach(&self, tok: &str, server: &str, volume: &str) -> (StatusCode, Value) {
        self.nova(
            Method::DELETE,
            &format!("/servers/{server}/os-volume_attachments/{volume}"),
            tok,
            None,
        )
        .await
    }

    async fn bdm_rows(&self, server: &str) -> usize {
        ferrostack_compute::store::bdms::of_instance(&self.svc.db, server)
            .await
            .unwrap()
            .len()
    }

    async fn project_of(&self, tok: &str) -> String {
        self.kit.project_of(tok).await
    }
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----- the tests -----

#[tokio::test]
async fn attach_list_show_detach() {
    let c = start("attach").await;
    let (admin, image, net) = c.setup().await;
    let mut notes = c.kit.bus.subscribe_notifications().await.unwrap();
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let vol = c.volume(&project);

    let (s, v) = c.attach(&demo, &server, &vol).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["volumeAttachment"],
        json!({"id": vol, "serverId": server, "volumeId": vol, "device": "/dev/vdb"})
    );
    assert_eq!(c.volume_status(&vol).as_deref(), Some("in-use"));
    let attachments = c.attachments_of(&vol);
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].0, server);
    assert_eq!(attachments[0].1["host"], "compute1");
    assert_eq!(attachments[0].1["mountpoint"], "/dev/vdb");
    let guest = c.guest_volumes(&server);
    assert_eq!(guest.len(), 1);
    assert_eq!(guest[0].volume_id, vol);
    assert_eq!(guest[0].device_name, "/dev/vdb");

    let list = c
        .ok(
            Method::GET,
            &format!("/servers/{server}/os-volume_attachments"),
            &demo,
            None,
        )
        .await;
    assert_eq!(list["volumeAttachments"].as_array().unwrap().len(), 1);
    let show = c
        .ok(
            Method::GET,
            &format!("/servers/{server}/os-volume_attachments/{vol}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(show["volumeAttachment"]["device"], "/dev/vdb");
    let srv = c
        .ok(Method::GET, &format!("/servers/{server}"), &demo, None)
        .await;
    assert_eq!(
        srv["server"]["os-extended-volumes:volumes_attached"],
        json!([{"id": vol}])
    );
    let (_, srv) = c
        .nova_at(
            "2.3",
            Method::GET,
            &format!("/servers/{server}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(
        srv["server"]["os-extended-volumes:volumes_attached"],
        json!([{"id": vol, "delete_on_termination": false}])
    );
    let (_, all) = c.nova(Method::GET, "/servers/detail", &demo, None).await;
    assert_eq!(
        all["servers"][0]["os-extended-volumes:volumes_attached"][0]["id"],
        vol
    );

    // A second volume gets the next device; a device asked for is honoured.
    let vol2 = c.volume(&project);
    let (s, v) = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &demo,
            Some(json!({"volumeAttachment": {"volumeId": vol2, "device": "/dev/vdf"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["volumeAttachment"]["device"], "/dev/vdf");

    let (s, v) = c.detach(&demo, &server, &vol).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(c.volume_status(&vol).as_deref(), Some("available"));
    assert!(c.attachments_of(&vol).is_empty());
    assert!(c.guest_volumes(&server).iter().all(|g| g.volume_id != vol));
    let (s, _) = c
        .nova(
            Method::GET,
            &format!("/servers/{server}/os-volume_attachments/{vol}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c.detach(&demo, &server, &vol).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The instance actions and the notifications.
    let actions = c
        .ok(
            Method::GET,
            &format!("/servers/{server}/os-instance-actions"),
            &demo,
            None,
        )
        .await;
    let names: Vec<&str> = actions["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        names.contains(&"attach_volume") && names.contains(&"detach_volume"),
        "{names:?}"
    );
    let mut events = Vec::new();
    while let Ok(n) = notes.try_recv() {
        events.push(n.event_type);
    }
    for e in [
        "instance.volume_attach.start",
        "instance.volume_attach.end",
        "instance.volume_detach.start",
        "instance.volume_detach.end",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} missing from {events:?}");
    }
    let _ = admin;
    c.agent.stop();
}

#[tokio::test]
async fn views_follow_the_microversion_and_policy() {
    let c = start("views").await;
    let (admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let vol = c.volume(&project);
    // `tag` and `delete_on_termination` came later than the versions served.
    for field in [json!({"tag": "t"}), json!({"delete_on_termination": true})] {
        let mut body = json!({"volumeAttachment": {"volumeId": vol}});
        let (k, val) = field.as_object().unwrap().iter().next().unwrap();
        body["volumeAttachment"][k] = val.clone();
        let (s, v) = c
            .nova_at(
                "2.31",
                Method::POST,
                &format!("/servers/{server}/os-volume_attachments"),
                &demo,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    }
    let (s, v) = c.attach(&demo, &server, "not-a-uuid").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &demo,
            Some(json!({"volumeAttachment": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = c.attach(&demo, &server, &vol).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = c
        .nova_at(
            "2.31",
            Method::GET,
            &format!("/servers/{server}/os-volume_attachments/{vol}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["volumeAttachment"]["id"], vol);
    assert!(v["volumeAttachment"].get("tag").is_none());
    // Swap: admin only, then refused as unsupported.
    let other = c.volume(&project);
    let swap = Some(json!({"volumeAttachment": {"volumeId": other}}));
    let path = format!("/servers/{server}/os-volume_attachments/{vol}");
    let (s, _) = c.nova(Method::PUT, &path, &demo, swap.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = c.nova(Method::PUT, &path, &admin, swap).await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{v}");
    c.agent.stop();
}

#[tokio::test]
async fn refusals_as_nova() {
    let c = start("refusals").await;
    let (admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let other = c.boot(&demo, "vm2", &image, &net).await;
    let vol = c.volume(&project);

    // Unknown volume: 404.
    let (s, v) = c
        .attach(&demo, &server, &uuid::Uuid::new_v4().to_string())
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // In use elsewhere without multiattach: 400.
    assert_eq!(c.attach(&demo, &other, &vol).await.0, StatusCode::OK);
    let (s, v) = c.attach(&demo, &server, &vol).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("Invalid volume"), "{v}");
    assert!(v.to_string().contains("status must be 'available'"), "{v}");
    // Already attached here: 400.
    let (s, _) = c.attach(&demo, &other, &vol).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // A device in use or malformed: 400.
    let vol2 = c.volume(&project);
    for device in ["/dev/vdb", "/dev/", "vdc"] {
        let (s, v) = c
            .nova(
                Method::POST,
                &format!("/servers/{other}/os-volume_attachments"),
                &demo,
                Some(json!({"volumeAttachment": {"volumeId": vol2, "device": device}})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{device}: {v}");
    }
    // Not attached: 404 on show and detach.
    let (s, _) = c.detach(&demo, &server, &vol2).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A server in a task state: 409.
    ferrostack_compute::store::instances::update(&c.svc.db, &server, |i| {
        i.task_state = Some(ferrostack_compute::states::TaskState::RebootingHard);
        Ok(())
    })
    .await
    .unwrap();
    let (s, v) = c.attach(&demo, &server, &vol2).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = c.detach(&demo, &other, &vol).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    ferrostack_compute::store::instances::update(&c.svc.db, &server, |i| {
        i.task_state = None;
        i.vm_state = ferrostack_compute::states::VmState::Error;
        Ok(())
    })
    .await
    .unwrap();
    let (s, v) = c.attach(&demo, &server, &vol2).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // A stopped server takes volumes.
    let (s, _) = c
        .nova(
            Method::POST,
            &format!("/servers/{other}/action"),
            &demo,
            Some(json!({"os-stop": null})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    c.wait_status(&demo, &other, "SHUTOFF").await;
    let (s, v) = c.attach(&demo, &other, &vol2).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let _ = admin;
    c.agent.stop();
}

/// Every attach step failing (each undo run twice) leaves the volume
/// available, no attachment, no mapping, nothing in the guest; every step
/// run twice ends as one run does.
#[tokio::test]
async fn attach_saga_steps_fail_and_are_undone() {
    let c = start("attach-saga").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let steps: Vec<&str> = ferrostack_compute::saga::saga_of("attach_volume")
        .unwrap()
        .steps()
        .iter()
        .map(|s| s.name())
        .collect();
    assert_eq!(steps.len(), 5);
    for step in &steps {
        let vol = c.volume(&project);
        c.svc.set_failpoint(Some(step));
        c.svc.set_failpoint(Some("undo_twice"));
        let (s, v) = c.attach(&demo, &server, &vol).await;
        c.svc.set_failpoint(None);
        assert!(s.is_client_error(), "{step}: {s} {v}");
        assert!(v.to_string().contains(step), "{step}: {v}");
        assert_eq!(
            c.volume_status(&vol).as_deref(),
            Some("available"),
            "{step}"
        );
        assert!(c.attachments_of(&vol).is_empty(), "{step}");
        assert_eq!(c.bdm_rows(&server).await, 0, "{step}");
        assert!(c.guest_volumes(&server).is_empty(), "{step}");

        c.svc.set_failpoint(Some(&format!("twice:{step}")));
        let (s, v) = c.attach(&demo, &server, &vol).await;
        c.svc.set_failpoint(None);
        assert_eq!(s, StatusCode::OK, "twice {step}: {v}");
        assert_eq!(
            c.volume_status(&vol).as_deref(),
            Some("in-use"),
            "twice {step}"
        );
        assert_eq!(c.attachments_of(&vol).len(), 1, "twice {step}");
        assert_eq!(c.guest_volumes(&server).len(), 1, "twice {step}");
        let (s, v) = c.detach(&demo, &server, &vol).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(c.bdm_rows(&server).await, 0);
    }
    c.agent.stop();
}

#[tokio::test]
async fn detach_saga_failures_leave_the_volume_attached() {
    let c = start("detach-saga").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let vol = c.volume(&project);
    assert_eq!(c.attach(&demo, &server, &vol).await.0, StatusCode::OK);
    for step in ["detach_on_host", "delete_attachment"] {
        c.svc.set_failpoint(Some(step));
        c.svc.set_failpoint(Some("undo_twice"));
        let (s, v) = c.detach(&demo, &server, &vol).await;
        c.svc.set_failpoint(None);
        assert!(s.is_client_error(), "{step}: {s} {v}");
        assert_eq!(c.volume_status(&vol).as_deref(), Some("in-use"), "{step}");
        assert_eq!(c.attachments_of(&vol).len(), 1, "{step}");
        assert_eq!(c.guest_volumes(&server).len(), 1, "{step}");
        let show = c
            .ok(
                Method::GET,
                &format!("/servers/{server}/os-volume_attachments/{vol}"),
                &demo,
                None,
            )
            .await;
        assert_eq!(show["volumeAttachment"]["volumeId"], vol);
    }
    for step in ["detach_on_host", "delete_attachment", "drop_mapping"] {
        c.svc.set_failpoint(Some(&format!("twice:{step}")));
    }
    let (s, v) = c.detach(&demo, &server, &vol).await;
    c.svc.set_failpoint(None);
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(c.volume_status(&vol).as_deref(), Some("available"));
    assert_eq!(c.bdm_rows(&server).await, 0);
    c.agent.stop();
}

#[tokio::test]
async fn server_delete_detaches_and_deletes_what_goes_with_it() {
    let c = start("delete").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let keep = c.volume(&project);
    let goes = c.volume(&project);
    assert_eq!(c.attach(&demo, &server, &keep).await.0, StatusCode::OK);
    assert_eq!(c.attach(&demo, &server, &goes).await.0, StatusCode::OK);
    // delete_on_termination is set through the API from 2.79 only.
    let rows = ferrostack_compute::store::bdms::of_instance(&c.svc.db, &server)
        .await
        .unwrap();
    let row = rows.iter().find(|b| b.volume_id == goes).unwrap();
    ferrostack_compute::store::bdms::update(&c.svc.db, &row.id, |b| b.delete_on_termination = true)
        .await
        .unwrap();
    let (_, srv) = c
        .nova_at(
            "2.3",
            Method::GET,
            &format!("/servers/{server}"),
            &demo,
            None,
        )
        .await;
    assert!(srv["server"]["os-extended-volumes:volumes_attached"]
        .as_array()
        .unwrap()
        .contains(&json!({"id": goes, "delete_on_termination": true})));
    // A failure in the middle (the delete resumes after a restart as
    // before): the step runs twice.
    c.svc.set_failpoint(Some("twice:detach_volumes"));
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{server}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&demo, &server, "GONE").await;
    c.svc.set_failpoint(None);
    assert_eq!(c.volume_status(&keep).as_deref(), Some("available"));
    assert!(c.attachments_of(&keep).is_empty());
    assert_eq!(
        c.volume_status(&goes),
        None,
        "the volume going with the server is deleted"
    );
    assert_eq!(c.bdm_rows(&server).await, 0);
    c.agent.stop();
}

/// 2.79: `delete_on_termination` given at attach (a boolean), answered
/// in the attach's view and in show and list from 2.79 (not before), and
/// obeyed by the server's delete.
#[tokio::test]
async fn delete_on_termination_at_attach_from_2_79() {
    let c = start("dot279").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let (keep, goes) = (c.volume(&project), c.volume(&project));
    let path = format!("/servers/{server}/os-volume_attachments");
    let body = |vol: &str, dot: Value| {
        Some(json!({"volumeAttachment": {"volumeId": vol, "delete_on_termination": dot}}))
    };
    let (s, v) = c
        .nova_at("2.78", Method::POST, &path, &demo, body(&goes, json!(true)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = c
        .nova_at(
            "2.79",
            Method::POST,
            &path,
            &demo,
            body(&goes, json!("maybe")),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = c
        .nova_at("2.79", Method::POST, &path, &demo, body(&goes, json!(true)))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["volumeAttachment"]["delete_on_termination"], true, "{v}");
    let (s, v) = c
        .nova_at(
            "2.79",
            Method::POST,
            &path,
            &demo,
            body(&keep, json!(false)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = c.nova_at("2.79", Method::GET, &path, &demo, None).await;
    let listed = v["volumeAttachments"].as_array().unwrap();
    let dot_of = |vol: &str| {
        listed.iter().find(|a| a["volumeId"] == vol).unwrap()["delete_on_termination"].clone()
    };
    assert_eq!((dot_of(&goes), dot_of(&keep)), (json!(true), json!(false)));
    let one = format!("{path}/{goes}");
    let (_, v) = c.nova_at("2.78", Method::GET, &one, &demo, None).await;
    assert!(
        v["volumeAttachment"].get("delete_on_termination").is_none(),
        "{v}"
    );
    let (_, v) = c.nova_at("2.79", Method::GET, &one, &demo, None).await;
    assert_eq!(v["volumeAttachment"]["delete_on_termination"], true, "{v}");
    for vol in [&goes, &keep] {
        let v = vol.clone();
        wait_for("attached", || {
            c.volume_status(&v).as_deref() == Some("in-use")
        })
        .await;
    }
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{server}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&demo, &server, "GONE").await;
    assert_eq!(c.volume_status(&keep).as_deref(), Some("available"));
    assert_eq!(c.volume_status(&goes), None, "deleted with the server");
    c.agent.stop();
}

#[tokio::test]
async fn volume_extended_event_reaches_the_guest() {
    let c = start("extend").await;
    let (admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let vol = c.volume(&project);
    assert_eq!(c.attach(&demo, &server, &vol).await.0, StatusCode::OK);
    c.cinder.lock().unwrap().volumes.get_mut(&vol).unwrap()["size"] = json!(3);
    // Cinder asks for 2.51; a version above the newest served is taken by
    // the events API too (Neutron sends whatever it knows).
    let above = ferrostack_compute::api::MAX_VERSION;
    let above = format!("{}.{}", above.0, above.1 + 1);
    let (s, v) = c
        .nova_at(
            &above,
            Method::POST,
            "/os-server-external-events",
            &admin,
            Some(
                json!({"events": [{"name": "volume-extended", "server_uuid": server, "tag": vol}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["events"][0]["code"], 200);
    let (s, _) = c
        .nova_at(&above, Method::GET, "/servers", &admin, None)
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_ACCEPTABLE,
        "only the events API stretches"
    );
    let want = format!("volume {vol} is now {} bytes", 3u64 << 30);
    wait_for("the guest to see the new size", || {
        c.driver
            .guest(&server)
            .is_some_and(|g| g.console.iter().any(|l| l == &want))
    })
    .await;
    // As Nova, the event is an `extend_volume` instance action.
    let (s, v) = c
        .nova(
            Method::GET,
            &format!("/servers/{server}/os-instance-actions"),
            &admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let actions = v["instanceActions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a["action"] == "extend_volume"),
        "{v}"
    );
    c.agent.stop();
}

async fn boot_bfv(c: &Cloud, tok: &str, net: &str, bdm: Value) -> (StatusCode, Value) {
    c.nova(
        Method::POST,
        "/servers",
        tok,
        Some(
            json!({"server": {"name": "bfv", "imageRef": "", "flavorRef": "1",
            "networks": [{"uuid": net}], "block_device_mapping_v2": [bdm]}}),
        ),
    )
    .await
}

#[tokio::test]
async fn boot_from_volume() {
    let c = start("bfv").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;

    // From an image: the volume is made in the caller's project, attached
    // as the root disk; it goes with the server.
    let (s, v) = boot_bfv(
        &c,
        &demo,
        &net,
        json!({"source_type": "image", "destination_type": "volume",
        "uuid": image, "boot_index": 0, "volume_size": 1, "delete_on_termination": true}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let server = v["server"]["id"].as_str().unwrap().to_owned();
    let srv = c.wait_status(&demo, &server, "ACTIVE").await;
    assert_eq!(srv["image"], "");
    let made = srv["os-extended-volumes:volumes_attached"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    {
        let cinder = c.cinder.lock().unwrap();
        let vol = &cinder.volumes[&made];
        assert_eq!(vol["project_id"], project.as_str());
        assert_eq!(vol["imageRef"], image.as_str());
        assert_eq!(vol["status"], "in-use");
    }
    let guest = c.guest_volumes(&server);
    assert_eq!(guest.len(), 1);
    assert_eq!(guest[0].boot_index, Some(0));
    assert_eq!(guest[0].device_name, "/dev/vda");
    // The root volume stays.
    let (s, _) = c.detach(&demo, &server, &made).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{server}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&demo, &server, "GONE").await;
    assert_eq!(c.volume_status(&made), None);

    // From an existing volume: it stays when the server goes.
    let vol = c.volume(&project);
    let (s, v) = boot_bfv(
        &c,
        &demo,
        &net,
        json!({"source_type": "volume", "destination_type": "volume",
        "uuid": vol, "boot_index": "0"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let server = v["server"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &server, "ACTIVE").await;
    assert_eq!(c.volume_status(&vol).as_deref(), Some("in-use"));
    assert_eq!(c.guest_volumes(&server)[0].volume_id, vol);
    c.nova(Method::DELETE, &format!("/servers/{server}"), &demo, None)
        .await;
    c.wait_status(&demo, &server, "GONE").await;
    assert_eq!(c.volume_status(&vol).as_deref(), Some("available"));
    assert!(c.attachments_of(&vol).is_empty());

    // A volume that ends in error: the server goes to ERROR, nothing attached.
    let (s, v) = boot_bfv(
        &c,
        &demo,
        &net,
        json!({"source_type": "blank", "destination_type": "volume",
        "boot_index": 0, "volume_size": 13, "delete_on_termination": true}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let server = v["server"]["id"].as_str().unwrap().to_owned();
    let srv = c.wait_status(&demo, &server, "ERROR").await;
    assert!(
        srv["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("Block Device Mapping is Invalid"),
        "{srv}"
    );
    assert_eq!(c.bdm_rows(&server).await, 0);
    assert!(
        c.cinder
            .lock()
            .unwrap()
            .volumes
            .values()
            .all(|v| v["size"] != 13),
        "the failed volume is deleted"
    );

    // An image boot with a blank data volume at boot: the image is device
    // 0; the volume gets the type asked for (2.67).
    let (s, v) = c
        .nova_at(
            "2.67",
            Method::POST,
            "/servers",
            &demo,
            Some(
                json!({"server": {"name": "data", "imageRef": image, "flavorRef": "1",
                "networks": [{"uuid": net}], "block_device_mapping_v2": [
                    {"source_type": "blank", "destination_type": "volume", "boot_index": 1,
                     "volume_size": 2, "delete_on_termination": true, "volume_type": "fast"}]}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let server = v["server"]["id"].as_str().unwrap().to_owned();
    let srv = c.wait_status(&demo, &server, "ACTIVE").await;
    assert_eq!(srv["image"]["id"], image.as_str());
    let guest = c.guest_volumes(&server);
    assert_eq!(guest.len(), 1);
    assert_eq!(guest[0].device_name, "/dev/vdb");
    assert_eq!(guest[0].boot_index, Some(1));
    let data = guest[0].volume_id.clone();
    assert_eq!(c.volume_status(&data).as_deref(), Some("in-use"));
    assert_eq!(
        c.cinder.lock().unwrap().volumes[&data]["volume_type"],
        "fast"
    );
    c.nova(Method::DELETE, &format!("/servers/{server}"), &demo, None)
        .await;
    c.wait_status(&demo, &server, "GONE").await;
    assert_eq!(c.volume_status(&data), None);

    // Requests Nova refuses.
    for bad in [
        json!({"source_type": "volume", "destination_type": "volume", "boot_index": 0}),
        json!({"source_type": "image", "destination_type": "volume", "uuid": image, "boot_index": 0}),
        json!({"source_type": "volume", "destination_type": "volume", "uuid": vol, "boot_index": 1}),
        json!({"source_type": "volume", "destination_type": "volume", "uuid": vol, "boot_index": "x"}),
        json!({"source_type": "volume", "destination_type": "volume", "uuid": uuid::Uuid::new_v4().to_string(), "boot_index": 0}),
    ] {
        let (s, v) = boot_bfv(&c, &demo, &net, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    c.agent.stop();
}

/// A service that stops right after any attach step (its record not
/// written) resumes the saga when it starts again: the volume ends
/// attached once, and the request that started it is answered.
#[tokio::test]
async fn attach_and_detach_resume_after_a_restart() {
    let c = Arc::new(start("restart").await);
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    for kind in ["attach_volume", "detach_volume"] {
        let steps: Vec<&str> = ferrostack_compute::saga::saga_of(kind)
            .unwrap()
            .steps()
            .iter()
            .map(|s| s.name())
            .collect();
        for step in steps {
            let vol = c.volume(&project);
            if kind == "detach_volume" {
                assert_eq!(c.attach(&demo, &server, &vol).await.0, StatusCode::OK);
            }
            c.svc.set_failpoint(Some(&format!("crash_after:{step}")));
            let request = {
                let (c, demo, server, vol) = (c.clone(), demo.clone(), server.clone(), vol.clone());
                tokio::spawn(async move {
                    if kind == "attach_volume" {
                        c.attach(&demo, &server, &vol).await
                    } else {
                        c.detach(&demo, &server, &vol).await
                    }
                })
            };
            // The saga stops after the step, as a process that died there.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let sagas = ferrostack_compute::store::sagas::for_instance(&c.svc.db, &server)
                    .await
                    .unwrap();
                let saga = sagas
                    .iter()
                    .rev()
                    .find(|s| s.kind == kind && s.state == "running");
                if let Some(s) = saga {
                    let steps = ferrostack_compute::store::sagas::steps(&c.svc.db, &s.id)
                        .await
                        .unwrap();
                    if steps.iter().any(|x| x.step == step && x.state == "started") {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "{kind}/{step}: never stopped");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.svc.set_failpoint(None);
            assert_eq!(
                ferrostack_compute::saga::resume_all(&c.svc).await.unwrap(),
                1
            );
            let (s, v) = request.await.unwrap();
            assert!(s.is_success(), "{kind}/{step}: {s} {v}");
            if kind == "attach_volume" {
                assert_eq!(c.volume_status(&vol).as_deref(), Some("in-use"), "{step}");
                assert_eq!(c.attachments_of(&vol).len(), 1, "{step}");
                assert!(c.guest_volumes(&server).iter().any(|g| g.volume_id == vol));
                assert_eq!(c.detach(&demo, &server, &vol).await.0, StatusCode::ACCEPTED);
            }
            assert_eq!(
                c.volume_status(&vol).as_deref(),
                Some("available"),
                "{kind}/{step}"
            );
            assert!(c.attachments_of(&vol).is_empty(), "{kind}/{step}");
            assert_eq!(c.bdm_rows(&server).await, 0, "{kind}/{step}");
            assert!(c.guest_volumes(&server).is_empty(), "{kind}/{step}");
        }
    }
    c.agent.stop();
}

/// Every spawn path carries the volumes: a rebuilt guest has them again.
#[tokio::test]
async fn a_rebuilt_server_keeps_its_volumes() {
    let c = start("rebuild").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let vol = c.volume(&project);
    assert_eq!(c.attach(&demo, &server, &vol).await.0, StatusCode::OK);
    let (s, v) = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/action"),
            &demo,
            Some(json!({"rebuild": {"imageRef": image}})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(&demo, &server, "ACTIVE").await;
    let guest = c.guest_volumes(&server);
    assert_eq!(guest.len(), 1, "{guest:?}");
    assert_eq!(guest[0].volume_id, vol);
    assert_eq!(guest[0].device_name, "/dev/vdb");
    c.agent.stop();
}

#[tokio::test]
async fn os_volumes_and_os_snapshots_proxy_to_cinder_as_the_caller() {
    let c = start("proxy").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;

    // Create: Nova's names in, Nova's camelCase view out (no unknown keys).
    let (s, v) = c
        .nova(
            Method::POST,
            "/os-volumes",
            &demo,
            Some(json!({"volume": {"size": "2", "display_name": "v1",
                "display_description": "d", "metadata": {"Type": "work"}}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_owned();
    let keys: Vec<&String> = v["volume"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 11, "{v}");
    assert_eq!(v["volume"]["displayName"], "v1");
    assert_eq!(v["volume"]["size"], 2);
    assert_eq!(v["volume"]["attachments"], json!([{}]));
    assert_eq!(
        c.cinder.lock().unwrap().volumes[&vol]["project_id"],
        project.as_str()
    );
    // Size missing, zero, or no number: 400 before Cinder is asked.
    for body in [
        json!({"volume": {"display_name": "x"}}),
        json!({"volume": {"size": 0}}),
        json!({"volume": {"size": "#$%"}}),
        json!({"volume": {"size": 1, "bogus": 1}}),
    ] {
        let (s, v) = c.nova(Method::POST, "/os-volumes", &demo, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    }
    let second = c.volume(&project);

    // Show, list (offset/limit), detail; an unknown id is 404.
    let (s, v) = c
        .nova(Method::GET, &format!("/os-volumes/{vol}"), &demo, None)
        .await;
    assert_eq!(
        (s, v["volume"]["id"].as_str()),
        (StatusCode::OK, Some(vol.as_str()))
    );
    let (_, all) = c.nova(Method::GET, "/os-volumes", &demo, None).await;
    assert_eq!(all["volumes"].as_array().unwrap().len(), 2, "{all}");
    let (_, one) = c
        .nova(
            Method::GET,
            "/os-volumes/detail?offset=1&limit=1",
            &demo,
            None,
        )
        .await;
    assert_eq!(one["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(one["volumes"][0]["id"], all["volumes"][1]["id"]);
    let missing = uuid::Uuid::new_v4().to_string();
    let (s, _) = c
        .nova(Method::GET, &format!("/os-volumes/{missing}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c
        .nova(
            Method::DELETE,
            &format!("/os-volumes/{missing}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An attached volume shows its server.
    let server = c.boot(&demo, "vm1", &image, &net).await;
    assert_eq!(c.attach(&demo, &server, &second).await.0, StatusCode::OK);
    let (_, v) = c
        .nova(Method::GET, &format!("/os-volumes/{second}"), &demo, None)
        .await;
    assert_eq!(
        v["volume"]["attachments"][0]["serverId"],
        server.as_str(),
        "{v}"
    );
    assert_eq!(v["volume"]["attachments"][0]["volumeId"], second.as_str());

    // Snapshots.
    let (s, v) = c
        .nova(
            Method::POST,
            "/os-snapshots",
            &demo,
            Some(json!({"snapshot": {"volume_id": vol, "display_name": "s1", "force": "true"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["snapshot"]["volumeId"], vol.as_str());
    assert_eq!(v["snapshot"]["size"], 2);
    assert_eq!(v["snapshot"]["displayName"], "s1");
    assert_eq!(v["snapshot"].as_object().unwrap().len(), 7, "{v}");
    let snap = v["snapshot"]["id"].as_str().unwrap().to_owned();
    let (_, list) = c
        .nova(Method::GET, "/os-snapshots/detail", &demo, None)
        .await;
    assert_eq!(list["snapshots"][0]["id"], snap.as_str());
    let (s, _) = c
        .nova(
            Method::DELETE,
            &format!("/os-snapshots/{snap}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = c
        .nova(Method::GET, &format!("/os-snapshots/{snap}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _) = c
        .nova(Method::DELETE, &format!("/os-volumes/{vol}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(c.volume_status(&vol).is_none());
}

#[tokio::test]
async fn boot_from_a_volume_cinder_says_is_not_bootable_is_refused() {
    let c = start("notbootable").await;
    let (_admin, _image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let vol = c.volume(&project);
    c.cinder.lock().unwrap().volumes.get_mut(&vol).unwrap()["bootable"] = json!("false");
    let bdm = json!({"source_type": "volume", "destination_type": "volume",
        "uuid": vol, "boot_index": "0", "delete_on_termination": false});
    let (s, v) = boot_bfv(&c, &demo, &net, bdm.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("is not bootable"), "{v}");
    assert_eq!(c.volume_status(&vol).as_deref(), Some("available"));
    // Bootable again: the boot goes ahead.
    c.cinder.lock().unwrap().volumes.get_mut(&vol).unwrap()["bootable"] = json!("true");
    let (s, v) = boot_bfv(&c, &demo, &net, bdm).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let server = v["server"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &server, "ACTIVE").await;
    c.agent.stop();
}

/// 2.60: a multiattach volume is refused before 2.60 (attach and boot),
/// accepted from it.
#[tokio::test]
async fn multiattach_volumes_from_2_60() {
    let c = start("multiattach").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let vol = c.volume(&project);
    c.cinder.lock().unwrap().volumes.get_mut(&vol).unwrap()["multiattach"] = json!(true);
    let path = format!("/servers/{server}/os-volume_attachments");
    let body = Some(json!({"volumeAttachment": {"volumeId": vol}}));
    let (s, v) = c
        .nova_at("2.59", Method::POST, &path, &demo, body.clone())
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("2.60"));
    let boot = json!({"server": {"name": "bfv", "flavorRef": "1", "networks": [{"uuid": net}],
        "block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume",
            "uuid": vol, "boot_index": 0}]}});
    let (s, v) = c
        .nova_at("2.59", Method::POST, "/servers", &demo, Some(boot))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("2.60"));
    let (s, v) = c.nova_at("2.60", Method::POST, &path, &demo, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// 2.85: `PUT` changes an attachment's `delete_on_termination` (other
/// fields must match what the view shows); before 2.85 a `PUT` is only a
/// swap. 2.89: the views name the attachment and the mapping, not `id`.
#[tokio::test]
async fn attachment_updates_from_2_85_and_ids_from_2_89() {
    let c = start("att285").await;
    let (admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let vol = c.volume(&project);
    assert_eq!(c.attach(&demo, &server, &vol).await.0, StatusCode::OK);
    let one = format!("/servers/{server}/os-volume_attachments/{vol}");
    let dot =
        |v: Value| Some(json!({"volumeAttachment": {"volumeId": vol, "delete_on_termination": v}}));
    let (s, v) = c
        .nova_at("2.84", Method::PUT, &one, &demo, dot(json!(true)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = c
        .nova_at("2.84", Method::PUT, &one, &admin, dot(json!(true)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a field 2.84's schema lacks");
    let (s, v) = c
        .nova_at("2.85", Method::PUT, &one, &demo, dot(json!("maybe")))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let moved = Some(json!({"volumeAttachment": {"volumeId": vol, "device": "/dev/vdz"}}));
    let (s, v) = c.nova_at("2.85", Method::PUT, &one, &demo, moved).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v.to_string().contains("device property is not mutable"),
        "{v}"
    );
    let (s, v) = c
        .nova_at("2.85", Method::PUT, &one, &demo, dot(json!(true)))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (_, v) = c.nova_at("2.85", Method::GET, &one, &demo, None).await;
    assert_eq!(v["volumeAttachment"]["delete_on_termination"], true, "{v}");
    assert_eq!(v["volumeAttachment"]["id"], vol.as_str());
    // A different volume is still a swap: admin's, then unsupported.
    let other = c.volume(&project);
    let swap = Some(json!({"volumeAttachment": {"volumeId": other}}));
    let (s, _) = c
        .nova_at("2.85", Method::PUT, &one, &demo, swap.clone())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = c.nova_at("2.85", Method::PUT, &one, &admin, swap).await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    // 2.89's view, in list and show.
    let (_, v) = c.nova_at("2.88", Method::GET, &one, &demo, None).await;
    assert!(v["volumeAttachment"].get("attachment_id").is_none(), "{v}");
    let (_, v) = c.nova_at("2.89", Method::GET, &one, &demo, None).await;
    let att = &v["volumeAttachment"];
    assert!(att.get("id").is_none(), "{v}");
    let attachment = att["attachment_id"].as_str().unwrap();
    assert!(c
        .cinder
        .lock()
        .unwrap()
        .attachments
        .contains_key(attachment));
    assert!(uuid::Uuid::parse_str(att["bdm_uuid"].as_str().unwrap()).is_ok());
    let list = format!("/servers/{server}/os-volume_attachments");
    let (_, v) = c.nova_at("2.89", Method::GET, &list, &demo, None).await;
    assert_eq!(v["volumeAttachments"][0]["attachment_id"], attachment);
    wait_for("attached", || {
        c.volume_status(&vol).as_deref() == Some("in-use")
    })
    .await;
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{server}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&demo, &server, "GONE").await;
    assert_eq!(
        c.volume_status(&vol),
        None,
        "deleted with the server (2.85's flag)"
    );
    c.agent.stop();
}

/// A volume-backed server: rescue refused before 2.87 and, from 2.87,
/// without a rescue image naming `hw_rescue_device` and `hw_rescue_bus`;
/// with one, a stable device rescue keeps its volume and adds the rescue
/// disk. Rebuild with its own image keeps its volume before 2.93 and
/// re-images it from 2.93; another image is refused before 2.93 and
/// re-imaged from 2.93; a failed re-image is ERROR with Nova's fault.
#[tokio::test]
async fn volume_backed_rescue_2_87_and_rebuild_2_93() {
    let c = start("bfv293").await;
    let (admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let (s, v) = boot_bfv(
        &c,
        &demo,
        &net,
        json!({"source_type": "image", "destination_type": "volume",
        "uuid": image, "boot_index": 0, "volume_size": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let server = v["server"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &server, "ACTIVE").await;
    let action = format!("/servers/{server}/action");
    stable_rescue_of_a_volume_backed_server(&c, &admin, &demo, &server).await;
    let rebuild = |img: &str| Some(json!({"rebuild": {"imageRef": img}}));
    let (s, v) = c
        .nova_at("2.92", Method::POST, &action, &demo, rebuild(&image))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["server"]["image"], "", "still volume-backed");
    c.wait_status(&demo, &server, "ACTIVE").await;
    assert_eq!(c.guest_volumes(&server).len(), 1);
    let other = {
        let (s, v) = c
            .call(
                "2.1",
                Method::POST,
                format!("{}/v2/images", c.glance),
                &admin,
                Some(json!({"name": "other", "disk_format": "raw", "container_format": "bare", "visibility": "public"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let r = c
            .http
            .put(format!("{}/v2/images/{id}/file", c.glance))
            .header("x-auth-token", &admin)
            .header("content-type", "application/octet-stream")
            .body(vec![9u8; 4096])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        id
    };
    let (s, v) = c
        .nova_at("2.92", Method::POST, &action, &demo, rebuild(&other))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v.to_string()
            .contains("different image for a volume-backed server"),
        "{v}"
    );
    c.wait_status(&demo, &server, "ACTIVE").await;
    let root = c.guest_volumes(&server)[0].volume_id.clone();
    let (s, v) = c
        .nova_at("2.93", Method::POST, &action, &demo, rebuild(&other))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["server"]["image"], "", "still volume-backed");
    c.wait_status(&demo, &server, "ACTIVE").await;
    let vol = c.cinder.lock().unwrap().volumes[&root].clone();
    assert_eq!(vol["volume_image_metadata"]["image_id"], other.as_str());
    assert_eq!(vol["status"], "in-use");
    let atts = c.attachments_of(&root);
    assert_eq!(atts.len(), 1, "the old attachment went: {atts:?}");
    assert_eq!(atts[0].1["host"], "compute1", "connected again");
    let guest = c.guest_volumes(&server);
    assert_eq!(guest.len(), 1);
    assert_eq!(guest[0].boot_index, Some(0));
    // Each re-image step run twice (a crash after its work) ends the same.
    let mut img = other.clone();
    for step in ["reimage_volume", "connect_root_volume"] {
        img = if img == image {
            other.clone()
        } else {
            image.clone()
        };
        c.svc.set_failpoint(Some(&format!("twice:{step}")));
        let (s, v) = c
            .nova_at("2.93", Method::POST, &action, &demo, rebuild(&img))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        c.wait_status(&demo, &server, "ACTIVE").await;
        c.svc.set_failpoint(None);
        let vol = c.cinder.lock().unwrap().volumes[&root].clone();
        assert_eq!(
            vol["volume_image_metadata"]["image_id"],
            img.as_str(),
            "{step}"
        );
        assert_eq!(vol["status"], "in-use", "{step}");
        assert_eq!(c.attachments_of(&root).len(), 1, "{step}");
        assert_eq!(c.guest_volumes(&server).len(), 1, "{step}");
    }
    // Rebuilt with its (new) own image: nothing to re-image at 2.92;
    // from 2.93 the root volume is re-imaged all the same (Nova).
    let before = c.cinder.lock().unwrap().reimages;
    let (s, v) = c
        .nova_at("2.92", Method::POST, &action, &demo, rebuild(&img))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(&demo, &server, "ACTIVE").await;
    assert_eq!(c.cinder.lock().unwrap().reimages, before, "kept at 2.92");
    let (s, v) = c
        .nova_at("2.93", Method::POST, &action, &demo, rebuild(&img))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(&demo, &server, "ACTIVE").await;
    assert_eq!(
        c.cinder.lock().unwrap().reimages,
        before + 1,
        "re-imaged at 2.93"
    );
    assert_eq!(c.volume_status(&root).as_deref(), Some("in-use"));
    assert_eq!(c.attachments_of(&root).len(), 1);
    assert_eq!(c.guest_volumes(&server).len(), 1);

    // Cinder's re-image fails: the server is ERROR with Nova's fault.
    c.cinder.lock().unwrap().fail_reimage = true;
    let (s, v) = c
        .nova_at("2.93", Method::POST, &action, &demo, rebuild(&image))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let failed = c.wait_status(&demo, &server, "ERROR").await;
    assert_eq!(
        failed["fault"]["message"],
        "Failed to rebuild volume backed instance."
    );
    assert_eq!(c.volume_status(&root).as_deref(), Some("error"));
    c.agent.stop();
}

/// 2.20: a shelved-offloaded server takes a volume (the mapping and a
/// completed attachment with no connection: the volume `in-use`, nothing
/// on a host) and gives one back; the unshelve connects it to the new
/// host and the guest has it. Before 2.20 both are 409.
#[tokio::test]
async fn volumes_of_a_shelved_offloaded_server_from_2_20() {
    let c = start("offloaded").await;
    let (_admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let action = format!("/servers/{server}/action");
    let (s, v) = c
        .nova(Method::POST, &action, &demo, Some(json!({"shelve": null})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(&demo, &server, "SHELVED_OFFLOADED").await;
    let (kept, gone) = (c.volume(&project), c.volume(&project));
    let attachments = format!("/servers/{server}/os-volume_attachments");
    let body = |vol: &str| Some(json!({"volumeAttachment": {"volumeId": vol}}));
    let (s, v) = c.attach(&demo, &server, &kept).await;
    assert_eq!(s, StatusCode::CONFLICT, "before 2.20: {v}");
    assert!(v.to_string().contains("shelved_offloaded"), "{v}");
    for vol in [&kept, &gone] {
        let (s, v) = c
            .nova_at("2.20", Method::POST, &attachments, &demo, body(vol))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(c.volume_status(vol).as_deref(), Some("in-use"));
        assert_eq!(c.attachments_of(vol)[0].1, Value::Null, "no connector");
    }
    let (s, v) = c.detach(&demo, &server, &gone).await;
    assert_eq!(s, StatusCode::CONFLICT, "before 2.20: {v}");
    let (s, v) = c
        .nova_at(
            "2.20",
            Method::DELETE,
            &format!("{attachments}/{gone}"),
            &demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(c.volume_status(&gone).as_deref(), Some("available"));
    assert!(c.attachments_of(&gone).is_empty());
    assert_eq!(c.bdm_rows(&server).await, 1);

    let (s, v) = c
        .nova(
            Method::POST,
            &action,
            &demo,
            Some(json!({"unshelve": null})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(&demo, &server, "ACTIVE").await;
    let guest = c.guest_volumes(&server);
    assert_eq!(guest.len(), 1, "{guest:?}");
    assert_eq!(guest[0].volume_id, kept);
    assert_eq!(c.attachments_of(&kept)[0].1["host"], "compute1");
    assert_eq!(c.volume_status(&kept).as_deref(), Some("in-use"));
    let show = c
        .ok(Method::GET, &format!("{attachments}/{kept}"), &demo, None)
        .await;
    assert!(show["volumeAttachment"]["device"].is_string(), "{show}");
    c.agent.stop();
}

/// `os-assisted-volume-snapshots` (admin): Nova's checks and answers; no
/// host here can snapshot an NBD-attached volume, so the snapshot Cinder
/// made is reported `error` (`error_deleting` for a delete).
#[tokio::test]
async fn assisted_volume_snapshots_as_nova_with_nbd_volumes() {
    let c = start("assisted").await;
    let (admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let project = c.project_of(&demo).await;
    let server = c.boot(&demo, "vm1", &image, &net).await;
    let vol = c.volume(&project);
    let (s, v) = c.attach(&demo, &server, &vol).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let snap = uuid::Uuid::new_v4().to_string();
    c.cinder.lock().unwrap().snapshots.insert(
        snap.clone(),
        json!({"id": snap, "volume_id": vol, "status": "creating", "project_id": project}),
    );
    let body = |vol: &str, kind: &str| {
        Some(json!({"snapshot": {"volume_id": vol, "create_info":
            {"snapshot_id": snap, "type": kind, "new_file": "new_file"}}}))
    };
    let path = "/os-assisted-volume-snapshots";
    let (s, v) = c.nova(Method::POST, path, &demo, body(&vol, "qcow2")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = c.nova(Method::POST, path, &admin, body(&vol, "raw")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let other = uuid::Uuid::new_v4().to_string();
    let (s, v) = c
        .nova(Method::POST, path, &admin, body(&other, "qcow2"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v.to_string().contains("No volume Block Device Mapping"),
        "{v}"
    );
    let (s, v) = c
        .nova(Method::POST, path, &admin, body(&vol, "qcow2"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"snapshot": {"id": snap, "volumeId": vol}}));
    let status = || c.cinder.lock().unwrap().snapshots[&snap]["status"].clone();
    wait_for("snapshot reported", || status() == "error").await;

    let info = serde_json::to_string(&json!({"volume_id": vol})).unwrap();
    let q = |k: &str| format!("{path}/{snap}?{k}={}", urlencoding(&info));
    let (s, v) = c.nova(Method::DELETE, &q("other"), &admin, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = c
        .nova_at(
            "2.75",
            Method::DELETE,
            &format!("{}&x=1", q("delete_info")),
            &admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "closed query at 2.75: {v}");
    let (s, v) = c
        .nova(Method::DELETE, &q("delete_info"), &admin, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    wait_for("delete reported", || status() == "error_deleting").await;
    c.agent.stop();
}

/// Percent-encoding of a query value (JSON here).
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Rescue of a volume-backed server: 400 before 2.87, and from 2.87
/// without a rescue image or with one lacking `hw_rescue_device` /
/// `hw_rescue_bus` (Nova's `Cannot rescue a volume-backed instance`); with
/// both, RESCUE with the root volume still attached and the rescue disk on
/// the device and bus asked for, then back to ACTIVE.
async fn stable_rescue_of_a_volume_backed_server(c: &Cloud, admin: &str, demo: &str, server: &str) {
    let action = format!("/servers/{server}/action");
    let image = |props: Value| async move {
        let mut body = json!({"name": "rescue", "disk_format": "raw",
            "container_format": "bare", "visibility": "public"});
        for (k, v) in props.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, v) = c
            .call(
                "2.1",
                Method::POST,
                format!("{}/v2/images", c.glance),
                admin,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let r = c
            .http
            .put(format!("{}/v2/images/{id}/file", c.glance))
            .header("x-auth-token", admin)
            .header("content-type", "application/octet-stream")
            .body(vec![5u8; 4096])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        id
    };
    // Rescued with no rescue image: the image its root volume was made
    // from, which names neither property.
    let plain = image(json!({})).await;
    let stable = image(json!({"hw_rescue_device": "disk", "hw_rescue_bus": "scsi"})).await;
    let bus_only = image(json!({"hw_rescue_bus": "usb"})).await;
    let rescue = |img: Option<&str>| match img {
        Some(i) => Some(json!({"rescue": {"rescue_image_ref": i}})),
        None => Some(json!({"rescue": null})),
    };
    for (version, img) in [
        ("2.86", None),
        ("2.86", Some(stable.as_str())),
        ("2.87", None),
        ("2.87", Some(plain.as_str())),
        ("2.87", Some(bus_only.as_str())),
    ] {
        let (s, v) = c
            .nova_at(version, Method::POST, &action, demo, rescue(img))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{version} {img:?}: {v}");
        assert!(
            v.to_string()
                .contains("Cannot rescue a volume-backed instance"),
            "{version}: {v}"
        );
    }
    let (s, v) = c
        .nova_at("2.87", Method::POST, &action, demo, rescue(Some(&stable)))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    c.wait_status(demo, server, "RESCUE").await;
    let guest = c.driver.guest(server).unwrap();
    let r = guest.rescue.expect("rescued");
    assert_eq!(r.device, Some(ferrostack_hypervisor::RescueDevice::Disk));
    assert_eq!(r.bus, Some(ferrostack_hypervisor::RescueBus::Scsi));
    assert_eq!(c.guest_volumes(server).len(), 1, "the root volume stays");
    let (s, v) = c
        .nova_at(
            "2.87",
            Method::POST,
            &action,
            demo,
            Some(json!({"unrescue": null})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(demo, server, "ACTIVE").await;
    assert!(c.driver.guest(server).unwrap().rescue.is_none());
}

/// Shelve of a volume-backed server, as Nova's: no snapshot image, the
/// guest shut down and removed, SHELVED_OFFLOADED at once with no host
/// and no `shelved_image_id`, the action's event Nova's
/// `compute_shelve_offload_instance`; the unshelve boots from the root
/// volume again. A failed offload leaves the server running as it was.
#[tokio::test]
async fn volume_backed_shelve_and_unshelve() {
    let c = start("bfvshelve").await;
    let (admin, image, net) = c.setup().await;
    let demo = c.kit.token("demo", "demo").await;
    let (s, v) = boot_bfv(
        &c,
        &demo,
        &net,
        json!({"source_type": "image", "destination_type": "volume",
        "uuid": image, "boot_index": 0, "volume_size": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let server = v["server"]["id"].as_str().unwrap().to_owned();
    c.wait_status(&demo, &server, "ACTIVE").await;
    let root = c.guest_volumes(&server)[0].volume_id.clone();
    let action = format!("/servers/{server}/action");
    let images = |tok: String| {
        let c = &c;
        async move {
            let (_, v) = c
                .call(
                    "2.1",
                    Method::GET,
                    format!("{}/v2/images", c.glance),
                    &tok,
                    None,
                )
                .await;
            v["images"].as_array().unwrap().len()
        }
    };
    let images_before = images(admin.clone()).await;
    let mut notes = c.kit.bus.subscribe_notifications().await.unwrap();

    // The offload fails on the host: back to ACTIVE and running.
    c.driver.fail_next("destroy");
    let (s, v) = c
        .nova(Method::POST, &action, &demo, Some(json!({"shelve": null})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let e = event_of(&c, &admin, &server, "shelve").await;
    assert_eq!(e["event"], "compute_shelve_offload_instance");
    assert_eq!(e["result"], "Error");
    let back = c.wait_status(&demo, &server, "ACTIVE").await;
    assert!(back["OS-EXT-STS:task_state"].is_null(), "{back}");
    assert_eq!(
        c.driver.guest(&server).unwrap().power_state,
        ferrostack_hypervisor::PowerState::Running
    );

    let (s, v) = c
        .nova(Method::POST, &action, &demo, Some(json!({"shelve": null})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let shelved = c.wait_status(&admin, &server, "SHELVED_OFFLOADED").await;
    assert!(shelved["OS-EXT-SRV-ATTR:host"].is_null(), "{shelved}");
    assert!(c.driver.guest(&server).is_none(), "the guest is gone");
    assert_eq!(
        images(admin.clone()).await,
        images_before,
        "no snapshot image"
    );
    let e = event_of(&c, &admin, &server, "shelve").await;
    assert_eq!(e["event"], "compute_shelve_offload_instance");
    assert_eq!(e["result"], "Success");
    let i = ferrostack_compute::store::instances::get(&c.svc.db, &server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i.shelved_image_id, None);
    assert_eq!(c.volume_status(&root).as_deref(), Some("in-use"));

    let (s, v) = c
        .nova(
            Method::POST,
            &action,
            &demo,
            Some(json!({"unshelve": null})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(&demo, &server, "ACTIVE").await;
    let g = c.driver.guest(&server).expect("spawned again");
    assert_eq!(g.spec.image_id, "", "boots from its volume");
    assert_eq!(g.spec.volumes.len(), 1);
    assert_eq!(g.spec.volumes[0].volume_id, root);
    assert_eq!(g.spec.volumes[0].boot_index, Some(0));
    let e = event_of(&c, &admin, &server, "unshelve").await;
    assert_eq!(e["result"], "Success");
    let mut events = Vec::new();
    while let Ok(n) = notes.try_recv() {
        events.push(n.event_type);
    }
    for e in [
        "compute.instance.shelve_offload.start",
        "compute.instance.shelve_offload.end",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} missing from {events:?}");
    }
    assert!(
        !events
            .iter()
            .any(|x| x.starts_with("compute.instance.shelve.")),
        "no shelve.start/end for a volume-backed server: {events:?}"
    );
    c.agent.stop();
}

/// The last event of the newest instance action `name`, once it ended.
async fn event_of(c: &Cloud, tok: &str, server: &str, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = c
            .ok(
                Method::GET,
                &format!("/servers/{server}/os-instance-actions"),
                tok,
                None,
            )
            .await;
        let req = list["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == name)
            .map(|a| a["request_id"].as_str().unwrap().to_owned());
        if let Some(req) = req {
            let v = c
                .ok(
                    Method::GET,
                    &format!("/servers/{server}/os-instance-actions/{req}"),
                    tok,
                    None,
                )
                .await;
            if let Some(e) = v["instanceAction"]["events"]
                .as_array()
                .and_then(|e| e.last())
            {
                if !e["finish_time"].is_null() {
                    return e.clone();
                }
            }
        }
        assert!(Instant::now() < deadline, "no ended {name} event in {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
