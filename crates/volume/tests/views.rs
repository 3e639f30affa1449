//! The per-call shapes of Cinder's views (create and update answer without
//! the attributes its extensions add to show and detail), the `groups`
//! quota, type and extra spec updates, and snapshot listing (sort, 404 on
//! an unknown marker, a next link on every full page).

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn has(v: &Value, key: &str) -> bool {
    v.as_object().unwrap().contains_key(key)
}

#[tokio::test]
async fn create_and_update_answer_without_extension_attributes() {
    let c = common::start("views").await;
    let admin = c.user("admin", "admin").await;
    let (st, v) = c
        .call(
            &admin,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_owned();
    for k in ["os-vol-host-attr:host", "os-vol-tenant-attr:tenant_id"] {
        assert!(!has(&v["volume"], k), "create shows {k}");
    }
    let shown = c
        .wait(&admin, &format!("/volumes/{vol}"), "volume", "available")
        .await;
    for k in [
        "os-vol-host-attr:host",
        "os-vol-tenant-attr:tenant_id",
        "os-vol-mig-status-attr:migstat",
        "os-vol-mig-status-attr:name_id",
    ] {
        assert!(has(&shown, k), "show lacks {k}");
    }
    let (st, u) = c
        .call(
            &admin,
            Method::PUT,
            &format!("/volumes/{vol}"),
            Some(json!({"volume": {"name": "renamed"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["volume"]["name"], "renamed");
    assert!(!has(&u["volume"], "os-vol-host-attr:host"));

    // Snapshots: create and update plain, show and detail extended.
    let (st, s) = c
        .call(
            &admin,
            Method::POST,
            "/snapshots",
            Some(json!({"snapshot": {"volume_id": vol, "name": "s"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{s}");
    let snap = s["snapshot"]["id"].as_str().unwrap().to_owned();
    assert!(!has(
        &s["snapshot"],
        "os-extended-snapshot-attributes:progress"
    ));
    let shown = c
        .wait(
            &admin,
            &format!("/snapshots/{snap}"),
            "snapshot",
            "available",
        )
        .await;
    assert_eq!(shown["os-extended-snapshot-attributes:progress"], "100%");
    let (_, u) = c
        .call(
            &admin,
            Method::PUT,
            &format!("/snapshots/{snap}"),
            Some(json!({"snapshot": {"name": "s2"}})),
        )
        .await;
    assert_eq!(u["snapshot"]["name"], "s2");
    assert!(!has(
        &u["snapshot"],
        "os-extended-snapshot-attributes:project_id"
    ));
    let (_, l) = c.call(&admin, Method::GET, "/snapshots", None).await;
    assert!(!has(
        &l["snapshots"][0],
        "os-extended-snapshot-attributes:progress"
    ));
    let (_, l) = c.call(&admin, Method::GET, "/snapshots/detail", None).await;
    assert!(has(
        &l["snapshots"][0],
        "os-extended-snapshot-attributes:progress"
    ));

    // A null volume is no volume at all.
    let (st, _) = c
        .call(
            &admin,
            Method::POST,
            "/snapshots",
            Some(json!({"snapshot": {"volume_id": null}})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn snapshot_listing_sorts_and_pages_as_cinder() {
    let c = common::start("snap-list").await;
    let demo = c.user("demo", "demo").await;
    let vol = c.volume(&demo, json!({"size": 1})).await;
    let mut ids = Vec::new();
    for name in ["b", "a"] {
        let (st, s) = c
            .call(
                &demo,
                Method::POST,
                "/snapshots",
                Some(json!({"snapshot": {"volume_id": vol, "name": name}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{s}");
        let id = s["snapshot"]["id"].as_str().unwrap().to_owned();
        c.wait(&demo, &format!("/snapshots/{id}"), "snapshot", "available")
            .await;
        ids.push(id);
    }
    let (_, l) = c
        .call(
            &demo,
            Method::GET,
            "/snapshots?sort_key=name&sort_dir=asc",
            None,
        )
        .await;
    let names: Vec<&str> = l["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let (st, _) = c
        .call(&demo, Method::GET, "/snapshots?sort_key=bogus", None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let bogus = "/snapshots?marker=5a1a5a1a-0000-4000-8000-000000000000";
    let (st, _) = c.call(&demo, Method::GET, bogus, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A full last page still links to the next (empty) one, as Cinder does.
    let (_, l) = c.call(&demo, Method::GET, "/snapshots?limit=2", None).await;
    assert_eq!(l["snapshots"].as_array().unwrap().len(), 2);
    assert_eq!(l["snapshots_links"][0]["rel"], "next");
    let (_, l) = c.call(&demo, Method::GET, "/snapshots?limit=3", None).await;
    assert!(!has(&l, "snapshots_links"));
}

#[tokio::test]
async fn quotas_types_and_extra_specs_update() {
    let c = common::start("type-update").await;
    let admin = c.user("admin", "admin").await;
    let path = format!("/os-quota-sets/{}", admin.project);
    let (_, q) = c.call(&admin, Method::GET, &path, None).await;
    assert_eq!(q["quota_set"]["groups"], 10);
    let (st, q) = c
        .call(
            &admin,
            Method::PUT,
            &path,
            Some(json!({"quota_set": {"groups": 3}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{q}");
    assert_eq!(q["quota_set"]["groups"], 3);

    let body = json!({"volume_type": {"name": "t1", "extra_specs": {"k": "v"}}});
    let (_, t) = c.call(&admin, Method::POST, "/types", Some(body)).await;
    let id = t["volume_type"]["id"].as_str().unwrap().to_owned();
    let update = json!({"volume_type": {"name": "t2", "description": "d", "is_public": false}});
    let (st, u) = c
        .call(&admin, Method::PUT, &format!("/types/{id}"), Some(update))
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["volume_type"]["name"], "t2");
    assert_eq!(u["volume_type"]["is_public"], false);
    assert!(!has(&u["volume_type"], "os-volume-type-access:is_public"));
    let (_, s) = c
        .call(&admin, Method::GET, &format!("/types/{id}"), None)
        .await;
    assert_eq!(s["volume_type"]["description"], "d");
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            &format!("/types/{id}"),
            Some(json!({"volume_type": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let spec = format!("/types/{id}/extra_specs/k");
    let (st, e) = c
        .call(&admin, Method::PUT, &spec, Some(json!({"k": "v2"})))
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e, json!({"k": "v2"}));
    let (_, e) = c.call(&admin, Method::GET, &spec, None).await;
    assert_eq!(e["k"], "v2");
    for bad in [
        json!({"other": "x"}),
        json!({"k": "a", "j": "b"}),
        Value::Null,
    ] {
        let (st, _) = c.call(&admin, Method::PUT, &spec, Some(bad)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
    }
    let missing = "/types/5a1a5a1a-0000-4000-8000-000000000000/extra_specs/k";
    let (st, _) = c
        .call(&admin, Method::PUT, missing, Some(json!({"k": "v"})))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_actions_image_metadata_and_inherited_bootable() {
    let c = common::start("admin-actions").await;
    let demo = c.user("demo", "demo").await;
    let admin = c.user("admin", "admin").await;
    let vol = c.volume(&demo, json!({"size": 1})).await;

    // Image metadata: set merges and answers the whole, unset one key.
    let action = format!("/volumes/{vol}/action");
    let set = json!({"os-set_image_metadata": {"metadata": {"image_name": "i", "k": "v"}}});
    let (st, m) = c.call(&demo, Method::POST, &action, Some(set)).await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(m["metadata"], json!({"image_name": "i", "k": "v"}));
    let unset = json!({"os-unset_image_metadata": {"key": "k"}});
    let (st, _) = c
        .call(&demo, Method::POST, &action, Some(unset.clone()))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = c.call(&demo, Method::POST, &action, Some(unset)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let show = json!({"os-show_image_metadata": {}});
    let (_, m) = c.call(&demo, Method::POST, &action, Some(show)).await;
    assert_eq!(m["metadata"], json!({"image_name": "i"}));
    let (_, v) = c
        .call(&demo, Method::GET, &format!("/volumes/{vol}"), None)
        .await;
    assert_eq!(v["volume"]["volume_image_metadata"]["image_name"], "i");

    // A clone takes the source's bootable flag and image metadata.
    let boot = json!({"os-set_bootable": {"bootable": true}});
    let (st, _) = c.call(&demo, Method::POST, &action, Some(boot)).await;
    assert!(st.is_success());
    let clone = c.volume(&demo, json!({"source_volid": vol})).await;
    let (_, v) = c
        .call(&demo, Method::GET, &format!("/volumes/{clone}"), None)
        .await;
    assert_eq!(v["volume"]["bootable"], "true");
    assert_eq!(v["volume"]["volume_image_metadata"]["image_name"], "i");

    // A snapshot reset to `creating` is still force-deletable.
    let (_, s) = c
        .call(
            &demo,
            Method::POST,
            "/snapshots",
            Some(json!({"snapshot": {"volume_id": vol}})),
        )
        .await;
    let snap = s["snapshot"]["id"].as_str().unwrap().to_owned();
    let path = format!("/snapshots/{snap}");
    c.wait(&demo, &path, "snapshot", "available").await;
    let saction = format!("{path}/action");
    let reset = json!({"os-reset_status": {"status": "creating"}});
    let (st, _) = c.call(&admin, Method::POST, &saction, Some(reset)).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = c.call(&demo, Method::DELETE, &path, None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let force = json!({"os-force_delete": {}});
    let (st, _) = c.call(&admin, Method::POST, &saction, Some(force)).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    c.wait(&demo, &path, "snapshot", "deleted").await;

    // Backups: an admin resets the status, to available or error only.
    let (_, b) = c
        .call(
            &demo,
            Method::POST,
            "/backups",
            Some(json!({"backup": {"volume_id": vol}})),
        )
        .await;
    let backup = b["backup"]["id"].as_str().unwrap().to_owned();
    let bpath = format!("/backups/{backup}");
    c.wait(&demo, &bpath, "backup", "available").await;
    let baction = format!("{bpath}/action");
    let reset = json!({"os-reset_status": {"status": "error"}});
    let (st, _) = c
        .call(&demo, Method::POST, &baction, Some(reset.clone()))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = c.call(&admin, Method::POST, &baction, Some(reset)).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    c.wait(&demo, &bpath, "backup", "error").await;
    let bad = json!({"os-reset_status": {"status": "creating"}});
    let (st, _) = c.call(&admin, Method::POST, &baction, Some(bad)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
