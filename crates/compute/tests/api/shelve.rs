//! shelve, shelveOffload and unshelve as Nova answers them: the states
//! they run in, the snapshot image, the offload's freed host, quotas,
//! instance actions, 2.77's availability zone and deleting a shelved
//! server; and the versions after it (2.78's topology, 2.80's migration
//! owners).

use super::*;

async fn act(c: &Cloud, version: &str, tok: &str, id: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/servers/{id}/action");
    c.nova_at(version, Method::POST, &path, tok, Some(body))
        .await
}

/// Wait for `want` with no task state.
async fn settled(c: &Cloud, tok: &str, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.wait_status(tok, id, want).await;
        if s["OS-EXT-STS:task_state"].is_null() {
            return s;
        }
        assert!(Instant::now() < deadline, "task stuck: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "shelf", &image, &net).await;
    let active = settled(c, &admin, &id, "ACTIVE").await;
    let zone = active["OS-EXT-AZ:availability_zone"]
        .as_str()
        .unwrap()
        .to_owned();

    // Wrong states and the admin-only offload.
    let (s, v) = act(c, "2.1", &demo, &id, json!({"unshelve": null})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["conflictingRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("unshelve"));
    let (s, _) = act(c, "2.1", &demo, &id, json!({"shelveOffload": null})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = act(c, "2.1", &admin, &id, json!({"shelveOffload": null})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // shelve: the snapshot, then the offload (Nova's shelved_offload_time 0).
    let (s, v) = act(c, "2.1", &demo, &id, json!({"shelve": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let shelved = settled(c, &admin, &id, "SHELVED_OFFLOADED").await;
    assert!(shelved["OS-EXT-SRV-ATTR:host"].is_null(), "{shelved}");
    assert!(shelved["OS-EXT-SRV-ATTR:hypervisor_hostname"].is_null());
    assert_eq!(shelved["OS-EXT-STS:vm_state"], "shelved_offloaded");
    assert_eq!(c.claims_of(&id).await, 0, "claim released");
    assert!(c.driver.guest(&id).is_none(), "guest destroyed");
    assert_eq!(c.ports_of(&admin, &id).await.len(), 1, "port kept");
    let imgs = images_named(c, &admin, "shelf-shelved").await;
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    assert_eq!(imgs[0]["status"], "active");
    assert_eq!(imgs[0]["instance_uuid"], id.as_str());
    let (s, _) = act(c, "2.1", &demo, &id, json!({"shelve": null})).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // An offloaded server still counts against the quota.
    let l = c.ok(Method::GET, "/limits", &demo, None).await;
    assert_eq!(l["limits"]["absolute"]["totalInstancesUsed"], 1, "{l}");
    assert_eq!(l["limits"]["absolute"]["totalCoresUsed"], 1, "{l}");

    // 2.77: the zone must be one that is up; refused before it is read
    // at 2.76 only as an ignored body.
    let bad = json!({"unshelve": {"availability_zone": "nowhere"}});
    let (s, v) = act(c, "2.77", &demo, &id, bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = act(c, "2.77", &demo, &id, json!({"unshelve": {"zone": "x"}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let body = json!({"unshelve": {"availability_zone": zone}});
    let (s, v) = act(c, "2.77", &demo, &id, body.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let back = settled(c, &admin, &id, "ACTIVE").await;
    assert!(!back["OS-EXT-SRV-ATTR:host"].is_null());
    assert_eq!(back["image"]["id"], image.as_str(), "image_ref kept");
    assert_eq!(c.claims_of(&id).await, 1);
    assert!(c.driver.guest(&id).is_some(), "guest spawned");
    assert!(images_named(c, &admin, "shelf-shelved").await.is_empty());
    let e = last_event(c, &admin, &id, "unshelve").await;
    assert_eq!(e["event"], "compute_unshelve_instance", "{e}");
    assert_eq!(e["result"], "Success", "{e}");
    let e = last_event(c, &admin, &id, "shelve").await;
    assert_eq!(e["result"], "Success", "{e}");
    // At 2.76 the body is not read: the state is what refuses it.
    let (s, v) = act(c, "2.76", &demo, &id, json!({"unshelve": {"zone": "x"}})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // A stopped server shelves too; deleting it takes its snapshot.
    let (s, _) = act(c, "2.1", &demo, &id, json!({"os-stop": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    settled(c, &demo, &id, "SHUTOFF").await;
    let (s, _) = act(c, "2.1", &demo, &id, json!({"shelve": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    settled(c, &demo, &id, "SHELVED_OFFLOADED").await;
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&demo, &id, "GONE").await;
    assert!(images_named(c, &admin, "shelf-shelved").await.is_empty());
    assert!(c.ports_of(&admin, &id).await.is_empty());
}

/// 2.78: `GET /servers/{id}/topology`, 404 before it; a guest with no
/// NUMA topology (every guest here) has no nodes and no page size, as
/// Nova answers; another project's server is a 404.
pub(super) async fn topology_from_2_78(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "topo", &image, &net).await;
    settled(c, &demo, &id, "ACTIVE").await;
    let path = format!("/servers/{id}/topology");
    let (s, _) = c.nova_at("2.77", Method::GET, &path, &demo, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let v = c.ok_at("2.78", Method::GET, &path, &demo, None).await;
    assert_eq!(v, json!({"nodes": [], "pagesize_kb": null}));
    let v = c.ok_at("2.78", Method::GET, &path, &admin, None).await;
    assert_eq!(v["nodes"], json!([]));
    let theirs = c.boot(&admin, "admins", &image, &net).await;
    let path = format!("/servers/{theirs}/topology");
    let (s, _) = c.nova_at("2.78", Method::GET, &path, &demo, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c
        .nova_at("2.78", Method::GET, "/servers/nope/topology", &demo, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// 2.80: a migration keeps who asked for it; `os-migrations` shows
/// `user_id` and `project_id` and filters on them from 2.80 only.
pub(super) async fn migrations_by_owner_from_2_80(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "moved", &image, &net).await;
    let shown = settled(c, &demo, &id, "ACTIVE").await;
    let (user, project) = (shown["user_id"].clone(), shown["tenant_id"].clone());
    let (s, v) = act(c, "2.1", &demo, &id, json!({"resize": {"flavorRef": "2"}})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    settled(c, &demo, &id, "VERIFY_RESIZE").await;
    let list = |v: &str, q: String| {
        let path = format!("/os-migrations{q}");
        let admin = admin.clone();
        let v = v.to_owned();
        async move { c.ok_at(&v, Method::GET, &path, &admin, None).await["migrations"].clone() }
    };
    let m = list("2.80", String::new()).await;
    assert_eq!(m[0]["user_id"], user, "{m}");
    assert_eq!(m[0]["project_id"], project, "{m}");
    let m = list("2.79", String::new()).await;
    assert!(
        m[0].get("user_id").is_none() && m[0].get("project_id").is_none(),
        "{m}"
    );
    let u = user.as_str().unwrap();
    let p = project.as_str().unwrap();
    assert_eq!(
        list("2.80", format!("?user_id={u}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        list("2.80", format!("?project_id={p}&user_id={u}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(list("2.80", "?user_id=someone".into())
        .await
        .as_array()
        .unwrap()
        .is_empty());
    assert!(list("2.80", "?project_id=elsewhere".into())
        .await
        .as_array()
        .unwrap()
        .is_empty());
    // Not read before 2.80.
    assert_eq!(
        list("2.79", "?user_id=someone".into())
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
