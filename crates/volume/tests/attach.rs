//! Attaching volumes end to end: the attachments API and the legacy
//! actions over real `qemu-storage-daemon` NBD exports, read and written
//! with `qemu-io`; a restart that keeps an attached export and removes a
//! stale one; extend while attached; services and pools.

use ferrostack_core::config::Config;
use ferrostack_volume::VolumeService;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Cloud {
    kit: ferrostack_testkit::TestCloud,
    url: String,
    svc: Arc<VolumeService>,
    http: reqwest::Client,
}

struct User {
    token: String,
    project: String,
}

/// A volume service over a fresh identity; `tune` adjusts its configuration.
async fn start(name: &str, tune: impl Fn(&mut Config)) -> Cloud {
    let mut kit = ferrostack_testkit::start(&format!("vattach-{name}"), |_| {}).await;
    kit.config.volume.export_state_dir = kit.dir.join("x").display().to_string();
    kit.config.service_auth.auth_url = kit.auth_uri();
    tune(&mut kit.config);
    let (url, svc) = serve(&kit).await;
    Cloud {
        kit,
        url,
        svc,
        http: reqwest::Client::new(),
    }
}

/// The service on the test's data directory, as `open` starts it
/// (migrations, resumed operations, export reconcile).
async fn serve(kit: &ferrostack_testkit::TestCloud) -> (String, Arc<VolumeService>) {
    let mut cfg = kit.config.clone();
    cfg.volume.database_url = format!("sqlite://{}/volume.sqlite?mode=rwc", kit.dir.display());
    let svc = ferrostack_volume::open(&cfg, kit.bus.clone())
        .await
        .unwrap();
    let url = ferrostack_testkit::serve(ferrostack_volume::api::router(
        svc.clone(),
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    (url, svc)
}

impl Cloud {
    async fn user(&self, name: &str, project: &str) -> User {
        let token = self.kit.token(name, project).await;
        let project = self.kit.project_of(&token).await;
        User { token, project }
    }

    /// `method /v3/{project}{path}` at microversion `version`.
    async fn call(
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

    async fn volume(&self, u: &User, id: &str) -> Value {
        let (st, v) = self
            .call(u, "3.48", Method::GET, &format!("/volumes/{id}"), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["volume"].clone()
    }

    async fn wait_status(&self, u: &User, id: &str, status: &str) -> Value {
        for _ in 0..200 {
            let v = self.volume(u, id).await;
            if v["status"] == status {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("volume {id} never became {status}");
    }

    /// A new `available` volume of `size` GiB.
    async fn new_volume(&self, u: &User, size: i64) -> String {
        let (st, v) = self
            .call(
                u,
                "3.0",
                Method::POST,
                "/volumes",
                Some(json!({"volume": {"size": size}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let id = v["volume"]["id"].as_str().unwrap().to_owned();
        self.wait_status(u, &id, "available").await;
        id
    }

    /// The connector of a compute host: this host (a unix socket) or another.
    fn connector(&self, local: bool) -> Value {
        let host = if local {
            self.kit.config.common.host.clone()
        } else {
            "compute-elsewhere".into()
        };
        json!({"host": host, "ip": "127.0.0.1", "initiator": null, "platform": "x86_64",
               "os_type": "linux", "multipath": false, "mountpoint": "/dev/vdb"})
    }

    fn export_dir(&self, id: &str) -> PathBuf {
        self.kit.config.volume_export_dir().join(id)
    }
}

/// The NBD URI of a `connection_info`.
fn nbd_uri(info: &Value) -> String {
    let d = &info["data"];
    let export = d["export"].as_str().unwrap();
    match d["socket"].as_str() {
        Some(s) => format!("nbd+unix:///{export}?socket={s}"),
        None => format!(
            "nbd://{}:{}/{export}",
            d["host"].as_str().unwrap(),
            d["port"]
        ),
    }
}

/// `qemu-io` on an NBD URI: its output, or the failure.
async fn qemu_io(uri: &str, cmd: &str) -> Result<String, String> {
    let out = tokio::process::Command::new("qemu-io")
        .args(["-f", "raw", "-c", cmd, uri])
        .output()
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() && !text.contains("failed") && !text.contains("Pattern verification") {
        Ok(text)
    } else {
        Err(text)
    }
}

/// The size in bytes an NBD client sees.
async fn nbd_size(uri: &str) -> u64 {
    let out = tokio::process::Command::new("qemu-img")
        .args(["info", "--output=json", uri])
        .output()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    v["virtual-size"].as_u64().unwrap()
}

/// Whether a process runs (a zombie no init reaped does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|t| !t.trim_start().starts_with('Z'))
    })
}

/// The pid of a volume's storage daemon, when it runs.
fn daemon_pid(c: &Cloud, id: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(c.export_dir(id).join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (String::from_utf8_lossy(&cmd).contains("qemu-storage-daemon") && alive(pid)).then_some(pid)
}

const GIB: u64 = 1 << 30;

#[tokio::test]
async fn attachments_api_exports_over_nbd_and_detaches() {
    let c = start("flow", |_| {}).await;
    let mut notes = c.kit.bus.subscribe_notifications().await.unwrap();
    let demo = c.user("demo", "demo").await;
    let id = c.new_volume(&demo, 1).await;
    let server = uuid::Uuid::new_v4().to_string();

    // Before 3.27 there is no attachments API.
    let body = json!({"attachment": {"volume_uuid": id, "instance_uuid": server}});
    let (st, _) = c
        .call(
            &demo,
            "3.26",
            Method::POST,
            "/attachments",
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Reserve without a connector.
    let (st, a) = c
        .call(
            &demo,
            "3.44",
            Method::POST,
            "/attachments",
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(a["attachment"]["status"], "reserved");
    assert_eq!(a["attachment"]["instance"], server.as_str());
    assert_eq!(a["attachment"]["connection_info"], Value::Null);
    let aid = a["attachment"]["id"].as_str().unwrap().to_owned();
    let v = c.volume(&demo, &id).await;
    assert_eq!(v["status"], "reserved");
    assert!(
        v.get("attach_status").is_none(),
        "not in Cinder's volume view"
    );
    assert!(daemon_pid(&c, &id).is_none(), "nothing exported yet");

    // A second attachment of a reserved volume for another server is
    // refused, as Cinder (the same server may: Nova's attachment swap).
    let other = json!({"attachment": {"volume_uuid": id,
        "instance_uuid": uuid::Uuid::new_v4().to_string()}});
    let (st, e) = c
        .call(&demo, "3.44", Method::POST, "/attachments", Some(other))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["badRequest"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid volume: "));
    // The connector of this host: a unix socket.
    let (st, a) = c
        .call(
            &demo,
            "3.44",
            Method::PUT,
            &format!("/attachments/{aid}"),
            Some(json!({"attachment": {"connector": c.connector(true)}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    let info = a["attachment"]["connection_info"].clone();
    assert_eq!(info["driver_volume_type"], "nbd");
    assert_eq!(info["data"]["access_mode"], "rw");
    assert!(info["data"]["socket"].is_string(), "{info}");
    assert!(
        info["data"]["export"].as_str().unwrap().len() >= 32,
        "≥128 bits"
    );
    assert_eq!(c.volume(&demo, &id).await["status"], "attaching");
    let uri = nbd_uri(&info);
    qemu_io(&uri, "write -P 0xab 0 64k").await.unwrap();
    qemu_io(&uri, "read -P 0xab 0 64k").await.unwrap();
    assert_eq!(nbd_size(&uri).await, GIB);
    // A wrong export name opens nothing.
    let wrong = uri.replace(info["data"]["export"].as_str().unwrap(), "guess");
    assert!(qemu_io(&wrong, "read 0 512").await.is_err());

    // The same connector again: the same export (idempotent).
    let (_, again) = c
        .call(
            &demo,
            "3.44",
            Method::PUT,
            &format!("/attachments/{aid}"),
            Some(json!({"attachment": {"connector": c.connector(true)}})),
        )
        .await;
    assert_eq!(again["attachment"]["connection_info"], info);

    let complete = format!("/attachments/{aid}/action");
    let (st, _) = c
        .call(
            &demo,
            "3.44",
            Method::POST,
            &complete,
            // cinderclient sends the attachment's id (Nova sends null).
            Some(json!({"os-complete": aid})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let v = c.volume(&demo, &id).await;
    assert_eq!(v["status"], "in-use");
    assert_eq!(v["shared_targets"], false);
    assert!(v["service_uuid"].is_string());
    let att = &v["attachments"][0];
    assert_eq!(att["server_id"], server.as_str());
    assert_eq!(att["attachment_id"], aid.as_str());
    assert_eq!(att["volume_id"], id.as_str());
    assert_eq!(att["id"], id.as_str());
    assert_eq!(att["device"], "/dev/vdb");
    assert_eq!(att["host_name"], c.kit.config.common.host.as_str());
    assert!(att["attached_at"].is_string());

    // Lists and filters.
    let (_, l) = c
        .call(
            &demo,
            "3.44",
            Method::GET,
            &format!("/attachments?volume_id={id}"),
            None,
        )
        .await;
    assert_eq!(l["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(l["attachments"][0]["status"], "attached");
    let (_, l) = c
        .call(
            &demo,
            "3.44",
            Method::GET,
            "/attachments/detail?status=reserved",
            None,
        )
        .await;
    assert_eq!(l["attachments"].as_array().unwrap().len(), 0);
    let (_, l) = c
        .call(&demo, "3.44", Method::GET, "/attachments/detail", None)
        .await;
    assert_eq!(l["attachments"][0]["attach_mode"], "rw");
    let admin = c.user("admin", "admin").await;
    let (_, l) = c
        .call(&admin, "3.44", Method::GET, "/attachments", None)
        .await;
    assert_eq!(
        l["attachments"].as_array().unwrap().len(),
        0,
        "admin's own project"
    );
    let (_, l) = c
        .call(
            &admin,
            "3.44",
            Method::GET,
            "/attachments?all_tenants=1",
            None,
        )
        .await;
    assert_eq!(l["attachments"].as_array().unwrap().len(), 1);

    // An attached volume cannot be deleted.
    let (st, _) = c
        .call(
            &demo,
            "3.44",
            Method::DELETE,
            &format!("/volumes/{id}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Detach: the export and its daemon go, the volume is available.
    let pid = daemon_pid(&c, &id).expect("daemon runs");
    let (st, left) = c
        .call(
            &demo,
            "3.44",
            Method::DELETE,
            &format!("/attachments/{aid}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{left}");
    assert_eq!(left, json!({"attachments": []}));
    let v = c.volume(&demo, &id).await;
    assert_eq!(v["status"], "available");
    assert_eq!(v["attachments"], json!([]));
    assert!(!alive(pid), "daemon stopped");
    assert!(!c.export_dir(&id).exists(), "export files removed");
    assert!(qemu_io(&uri, "read 0 512").await.is_err());
    let (st, _) = c
        .call(
            &demo,
            "3.44",
            Method::GET,
            &format!("/attachments/{aid}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // The data written through the export is in the volume.
    let mut events = Vec::new();
    while let Ok(n) = notes.try_recv() {
        events.push(n.event_type);
    }
    for e in [
        "volume.attach.start",
        "volume.attach.end",
        "volume.detach.start",
        "volume.detach.end",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
}

#[tokio::test]
async fn attachment_with_connector_over_tcp_and_refusals() {
    let c = start("tcp", |cfg| {
        cfg.volume.export_port_range = "21809:21830".into()
    })
    .await;
    let demo = c.user("demo", "demo").await;
    let id = c.new_volume(&demo, 1).await;
    let server = uuid::Uuid::new_v4().to_string();
    // `mode` only from 3.54, and only rw/ro.
    let with_mode = |m: &str| {
        json!({"attachment": {"volume_uuid": id, "instance_uuid": server, "mode": m,
                              "connector": c.connector(false)}})
    };
    let (st, _) = c
        .call(
            &demo,
            "3.53",
            Method::POST,
            "/attachments",
            Some(with_mode("ro")),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(
            &demo,
            "3.54",
            Method::POST,
            "/attachments",
            Some(with_mode("rx")),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(
            &demo,
            "3.54",
            Method::POST,
            "/attachments",
            Some(json!({"attachment": {"volume_uuid": "not-a-uuid"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Another host's connector: TCP on the management address, a port of the range.
    let (st, a) = c
        .call(
            &demo,
            "3.54",
            Method::POST,
            "/attachments",
            Some(with_mode("ro")),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(a["attachment"]["status"], "attaching");
    assert_eq!(a["attachment"]["attach_mode"], "ro");
    let info = &a["attachment"]["connection_info"];
    assert_eq!(info["data"]["host"], "127.0.0.1");
    let port = info["data"]["port"].as_u64().unwrap();
    assert!((21809..=21830).contains(&port), "{port}");
    assert_eq!(info["data"]["access_mode"], "ro");
    let uri = nbd_uri(info);
    assert_eq!(nbd_size(&uri).await, GIB);
    assert!(
        qemu_io(&uri, "write 0 512").await.is_err(),
        "read-only export"
    );
    let aid = a["attachment"]["id"].as_str().unwrap().to_owned();

    // Another project sees no such attachment.
    let admin = c.user("admin", "admin").await;
    let other = User {
        token: c.kit.token("admin", "demo").await,
        project: demo.project.clone(),
    };
    let (st, _) = c
        .call(
            &admin,
            "3.44",
            Method::GET,
            &format!("/attachments/{aid}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "admins see every attachment");
    drop(other);
    let demo_in_admin = User {
        token: demo.token.clone(),
        project: admin.project.clone(),
    };
    let (st, _) = c
        .call(
            &demo_in_admin,
            "3.44",
            Method::GET,
            &format!("/attachments/{aid}"),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "the URL's project must be the token's"
    );

    let (st, _) = c
        .call(
            &demo,
            "3.44",
            Method::DELETE,
            &format!("/attachments/{aid}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(c.volume(&demo, &id).await["status"], "available");
    assert!(qemu_io(&uri, "read 0 512").await.is_err(), "port closed");
}

/// `POST /volumes/{id}/action` with one action.
async fn act(c: &Cloud, u: &User, id: &str, body: Value) -> (StatusCode, Value) {
    c.call(
        u,
        "3.0",
        Method::POST,
        &format!("/volumes/{id}/action"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn legacy_attach_actions_follow_cinders_states() {
    let c = start("legacy", |_| {}).await;
    let demo = c.user("demo", "demo").await;
    let id = c.new_volume(&demo, 1).await;
    let server = uuid::Uuid::new_v4().to_string();

    let (st, _) = act(&c, &demo, &id, json!({"os-reserve": {}})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(c.volume(&demo, &id).await["status"], "attaching");
    let (st, _) = act(&c, &demo, &id, json!({"os-unreserve": null})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(c.volume(&demo, &id).await["status"], "available");

    // Nova's legacy flow: reserve, initialize_connection, attach.
    act(&c, &demo, &id, json!({"os-reserve": null})).await;
    let (st, e) = act(&c, &demo, &id, json!({"os-initialize_connection": {}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (st, ci) = act(
        &c,
        &demo,
        &id,
        json!({"os-initialize_connection": {"connector": c.connector(true)}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{ci}");
    let uri = nbd_uri(&ci["connection_info"]);
    qemu_io(&uri, "write -P 0x5a 1M 4k").await.unwrap();
    let (st, e) = act(
        &c,
        &demo,
        &id,
        json!({"os-attach": {"instance_uuid": server, "host_name": "h", "mountpoint": "/dev/vdb"}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (st, e) = act(
        &c,
        &demo,
        &id,
        json!({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb", "mode": "xx"}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (st, _) = act(
        &c,
        &demo,
        &id,
        json!({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb", "mode": "rw"}}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let v = c.volume(&demo, &id).await;
    assert_eq!(v["status"], "in-use");
    assert_eq!(v["attachments"][0]["server_id"], server.as_str());
    let aid = v["attachments"][0]["attachment_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Reserving an in-use volume: Cinder's words.
    let (st, e) = act(&c, &demo, &id, json!({"os-reserve": {}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        e["badRequest"]["message"],
        "Invalid volume: Volume status must be available to reserve, but the current status is: in-use."
    );
    // A member may not force a detach.
    let (st, _) = act(
        &c,
        &demo,
        &id,
        json!({"os-force_detach": {"attachment_id": aid}}),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    act(&c, &demo, &id, json!({"os-begin_detaching": {}})).await;
    assert_eq!(c.volume(&demo, &id).await["status"], "detaching");
    let (st, _) = act(&c, &demo, &id, json!({"os-begin_detaching": {}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "only from in-use");
    act(&c, &demo, &id, json!({"os-roll_detaching": {}})).await;
    assert_eq!(c.volume(&demo, &id).await["status"], "in-use");
    act(&c, &demo, &id, json!({"os-begin_detaching": {}})).await;
    let (st, _) = act(
        &c,
        &demo,
        &id,
        json!({"os-terminate_connection": {"connector": c.connector(true)}}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert!(!c.export_dir(&id).exists(), "export removed");
    let (st, e) = act(
        &c,
        &demo,
        &id,
        json!({"os-detach": {"attachment_id": "nope"}}),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
    let (st, _) = act(&c, &demo, &id, json!({"os-detach": {"attachment_id": aid}})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let v = c.volume(&demo, &id).await;
    assert_eq!(v["status"], "available");
    assert_eq!(v["attachments"], json!([]));

    // Attached directly (as tempest does), then force-detached by an admin.
    act(
        &c,
        &demo,
        &id,
        json!({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}}),
    )
    .await;
    assert_eq!(c.volume(&demo, &id).await["status"], "in-use");
    let admin = c.user("admin", "admin").await;
    let admin_here = User {
        token: c.kit.token("admin", "demo").await,
        project: demo.project.clone(),
    };
    drop(admin);
    let (st, e) = act(&c, &admin_here, &id, json!({"os-force_detach": {}})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    assert_eq!(c.volume(&demo, &id).await["status"], "available");
    // Now it can be deleted.
    let (st, _) = c
        .call(
            &demo,
            "3.0",
            Method::DELETE,
            &format!("/volumes/{id}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
}

/// Attach `id` to a new server through the attachments API; its connection.
async fn attach(c: &Cloud, u: &User, id: &str, server: &str) -> Value {
    let body = json!({"attachment": {"volume_uuid": id, "instance_uuid": server,
                                     "connector": c.connector(true)}});
    let (st, a) = c
        .call(u, "3.44", Method::POST, "/attachments", Some(body))
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    let aid = a["attachment"]["id"].as_str().unwrap();
    let (st, _) = c
        .call(
            u,
            "3.44",
            Method::POST,
            &format!("/attachments/{aid}/action"),
            Some(json!({"os-complete": null})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    a["attachment"]["connection_info"].clone()
}

#[tokio::test]
async fn restart_keeps_attached_exports_and_removes_stale_ones() {
    let mut c = start("restart", |_| {}).await;
    let demo = c.user("demo", "demo").await;
    let kept = c.new_volume(&demo, 1).await;
    let stale = c.new_volume(&demo, 1).await;
    let info = attach(&c, &demo, &kept, &uuid::Uuid::new_v4().to_string()).await;
    let uri = nbd_uri(&info);
    qemu_io(&uri, "write -P 0x11 0 4k").await.unwrap();
    // An export no attachment records (a connection never attached).
    act(
        &c,
        &demo,
        &stale,
        json!({"os-initialize_connection": {"connector": c.connector(true)}}),
    )
    .await;
    let stale_pid = daemon_pid(&c, &stale).expect("stale daemon");
    // A detach the restart interrupted after it recorded `detaching`.
    let halfway = c.new_volume(&demo, 1).await;
    attach(&c, &demo, &halfway, &uuid::Uuid::new_v4().to_string()).await;
    ferrostack_db::sqlx::query(
        &c.svc
            .db
            .sql("UPDATE attachments SET attach_status = 'detaching' WHERE volume_id = ?"),
    )
    .bind(&halfway)
    .execute(&c.svc.db.pool)
    .await
    .unwrap();
    // The kept volume's daemon died with the host's process tree.
    let pid = daemon_pid(&c, &kept).expect("daemon");
    // SAFETY: signals the test's own storage daemon.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    for _ in 0..100 {
        if daemon_pid(&c, &kept).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A new service process on the same database and state directory.
    let (url, svc) = serve(&c.kit).await;
    c.url = url;
    c.svc = svc;
    assert!(daemon_pid(&c, &kept).is_some(), "dead daemon restarted");
    qemu_io(&uri, "read -P 0x11 0 4k")
        .await
        .expect("same export name and socket");
    assert!(!c.export_dir(&stale).exists(), "stale export removed");
    assert!(!alive(stale_pid));
    assert_eq!(c.volume(&demo, &kept).await["status"], "in-use");
    let v = c.volume(&demo, &halfway).await;
    assert_eq!(v["status"], "available", "interrupted detach finished");
    assert_eq!(v["attachments"], json!([]));
    assert!(!c.export_dir(&halfway).exists());

    // A restart with the daemon alive leaves it as it is.
    let pid = daemon_pid(&c, &kept).unwrap();
    let (url, svc) = serve(&c.kit).await;
    c.url = url;
    c.svc = svc;
    assert_eq!(daemon_pid(&c, &kept), Some(pid));
    let aid = c.volume(&demo, &kept).await["attachments"][0]["attachment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(
        &demo,
        "3.44",
        Method::DELETE,
        &format!("/attachments/{aid}"),
        None,
    )
    .await;
    assert!(daemon_pid(&c, &kept).is_none());
}

/// A stand-in for compute's `os-server-external-events`: what it was sent.
async fn fake_nova() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/v2.1/os-server-external-events",
        axum::routing::post(
            move |h: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                let v = h["openstack-api-version"].to_str().unwrap().to_owned();
                s.lock().unwrap().push((v, body.clone()));
                (axum::http::StatusCode::OK, axum::Json(body))
            },
        ),
    );
    (ferrostack_testkit::serve(app).await, seen)
}

#[tokio::test]
async fn extend_in_use_grows_what_the_nbd_client_sees_and_tells_compute() {
    let (nova, seen) = fake_nova().await;
    let c = start("extend", |cfg| cfg.volume.nova_url = format!("{nova}/v2.1")).await;
    let demo = c.user("demo", "demo").await;
    let id = c.new_volume(&demo, 1).await;
    let server = uuid::Uuid::new_v4().to_string();
    let info = attach(&c, &demo, &id, &server).await;
    let uri = nbd_uri(&info);
    qemu_io(&uri, "write -P 0x77 0 4k").await.unwrap();

    let extend = json!({"os-extend": {"new_size": 2}});
    let (st, e) = c
        .call(
            &demo,
            "3.41",
            Method::POST,
            &format!("/volumes/{id}/action"),
            Some(extend.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("in-use"));
    let (st, e) = c
        .call(
            &demo,
            "3.42",
            Method::POST,
            &format!("/volumes/{id}/action"),
            Some(extend),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    let v = c.wait_status(&demo, &id, "in-use").await;
    assert_eq!(v["size"], 2);
    assert_eq!(
        nbd_size(&uri).await,
        2 * GIB,
        "the connected client sees the new size"
    );
    qemu_io(&uri, "read -P 0x77 0 4k").await.unwrap();
    qemu_io(&uri, "write -P 0x78 1536M 4k").await.unwrap();
    for _ in 0..100 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "compute 2.51");
    assert_eq!(
        seen[0].1,
        json!({"events": [{"name": "volume-extended", "server_uuid": server, "tag": id}]})
    );

    // An admin's reset to available/detached forgets the attachment and export.
    let admin_here = User {
        token: c.kit.token("admin", "demo").await,
        project: demo.project.clone(),
    };
    let reset = json!({"os-reset_status": {"status": "available", "attach_status": "detached"}});
    let (st, e) = act(&c, &admin_here, &id, reset).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    let v = c.volume(&demo, &id).await;
    assert_eq!(v["status"], "available");
    assert_eq!(v["attachments"], json!([]));
    assert!(daemon_pid(&c, &id).is_none() && !c.export_dir(&id).exists());
}

#[tokio::test]
async fn services_and_pools_for_admins() {
    let c = start("services", |cfg| cfg.volume.capacity_gb = 50).await;
    let demo = c.user("demo", "demo").await;
    let admin = c.user("admin", "admin").await;
    c.new_volume(&demo, 3).await;
    let (st, _) = c
        .call(&demo, "3.0", Method::GET, "/os-services", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, s) = c
        .call(&admin, "3.49", Method::GET, "/os-services", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let list = s["services"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{s}");
    let host = &c.kit.config.common.host;
    let vol = list
        .iter()
        .find(|x| x["binary"] == "cinder-volume")
        .unwrap();
    assert_eq!(vol["host"], format!("{host}@file").as_str());
    assert_eq!(vol["state"], "up");
    assert_eq!(vol["status"], "enabled");
    assert_eq!(vol["zone"], "nova");
    assert_eq!(vol["backend_state"], "up");
    assert!(list
        .iter()
        .any(|x| x["binary"] == "cinder-scheduler" && x["host"] == host.as_str()));
    let (_, s) = c
        .call(
            &admin,
            "3.0",
            Method::GET,
            "/os-services?binary=cinder-scheduler",
            None,
        )
        .await;
    assert_eq!(s["services"].as_array().unwrap().len(), 1);
    assert!(
        s["services"][0].get("cluster").is_none(),
        "cluster from 3.7"
    );
    // Cinder's host filter: the host matches its backends too, a backend
    // its pools.
    for (filter, want) in [
        (host.clone(), 2),
        (format!("{host}@file"), 1),
        (format!("{host}@file%23file"), 0),
        (format!("{host}x"), 0),
    ] {
        let (_, s) = c
            .call(
                &admin,
                "3.0",
                Method::GET,
                &format!("/os-services?host={filter}"),
                None,
            )
            .await;
        assert_eq!(s["services"].as_array().unwrap().len(), want, "{filter}");
    }

    let (st, _) = c
        .call(
            &demo,
            "3.0",
            Method::GET,
            "/scheduler-stats/get_pools",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, p) = c
        .call(
            &admin,
            "3.0",
            Method::GET,
            "/scheduler-stats/get_pools",
            None,
        )
        .await;
    assert_eq!(p, json!({"pools": [{"name": format!("{host}@file#file")}]}));
    let (_, p) = c
        .call(
            &admin,
            "3.0",
            Method::GET,
            "/scheduler-stats/get_pools?detail=true",
            None,
        )
        .await;
    let cap = &p["pools"][0]["capabilities"];
    assert_eq!(cap["total_capacity_gb"], 50);
    assert_eq!(cap["allocated_capacity_gb"], 3);
    assert_eq!(cap["free_capacity_gb"], 47);
    assert_eq!(cap["thin_provisioning_support"], true);
    assert_eq!(cap["storage_protocol"], "nbd");
}

/// A type's QoS specs reach the export: a `back-end` limit throttles the
/// daemon's reads (QEMU throttle group), a `front-end` one is handed to
/// compute in `connection_info.data.qos_specs` and the daemon is not
/// throttled; a limit QEMU could not apply is refused when set.
#[tokio::test]
async fn qos_specs_throttle_the_export_or_go_to_compute() {
    let c = start("qos", |_| {}).await;
    let admin = c.user("admin", "admin").await;
    let (st, _) = c
        .call(
            &admin,
            "3.0",
            Method::POST,
            "/qos-specs",
            Some(json!({"qos_specs": {"name": "bad", "read_bytes_sec": "fast"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let mut infos = Vec::new();
    for (name, consumer, key, value) in [
        ("slow", "back-end", "read_bytes_sec", "1048576"),
        ("fe", "front-end", "total_iops_sec", "500"),
    ] {
        let body = json!({"qos_specs": {"name": name, "consumer": consumer, key: value}});
        let (st, q) = c
            .call(&admin, "3.0", Method::POST, "/qos-specs", Some(body))
            .await;
        assert_eq!(st, StatusCode::OK, "{q}");
        let qos = q["qos_specs"]["id"].as_str().unwrap().to_owned();
        let (st, t) = c
            .call(
                &admin,
                "3.0",
                Method::POST,
                "/types",
                Some(json!({"volume_type": {"name": name}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{t}");
        let vtype = t["volume_type"]["id"].as_str().unwrap();
        let path = format!("/qos-specs/{qos}/associate?vol_type_id={vtype}");
        let (st, _) = c.call(&admin, "3.0", Method::GET, &path, None).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let (st, v) = c
            .call(
                &admin,
                "3.0",
                Method::POST,
                "/volumes",
                Some(json!({"volume": {"size": 1, "volume_type": name}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let id = v["volume"]["id"].as_str().unwrap().to_owned();
        c.wait_status(&admin, &id, "available").await;
        let body = json!({"attachment": {"volume_uuid": id, "connector": c.connector(true),
            "instance_uuid": uuid::Uuid::new_v4().to_string()}});
        let (st, a) = c
            .call(&admin, "3.44", Method::POST, "/attachments", Some(body))
            .await;
        assert_eq!(st, StatusCode::OK, "{a}");
        infos.push((id, a["attachment"]["connection_info"].clone()));
    }

    let (slow, info) = &infos[0];
    assert!(info["data"].get("qos_specs").is_none(), "{info}");
    let cmdline =
        std::fs::read(format!("/proc/{}/cmdline", daemon_pid(&c, slow).unwrap())).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("x-bps-read=1048576"));
    let uri = nbd_uri(info);
    qemu_io(&uri, "write -P 0x5a 0 4M").await.unwrap();
    // A throttle delays the requests after the one that used the budget up.
    let began = std::time::Instant::now();
    for mib in 0..4 {
        let read = format!("read -P 0x5a {mib}M 1M");
        qemu_io(&uri, &read).await.unwrap();
    }
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(2000),
        "4 MiB at 1 MiB/s read in {took:?}"
    );

    let (fe, info) = &infos[1];
    assert_eq!(info["data"]["qos_specs"], json!({"total_iops_sec": "500"}));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", daemon_pid(&c, fe).unwrap())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("throttle"));
    for (id, _) in &infos {
        c.svc.exporter.unexport(id).await.unwrap();
        assert!(daemon_pid(&c, id).is_none(), "the export's daemon is gone");
    }
}
