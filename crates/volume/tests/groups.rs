//! Generic volume groups (3.11–3.20): group types and specs, groups of
//! volumes, group snapshots, groups made from a group snapshot or another
//! group, status resets, and the `groups` quota.

mod common;

use common::{Cloud, User};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const V: &str = "3.20";

async fn call(
    c: &Cloud,
    u: &User,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    c.call_at(u, V, method, path, body).await
}

/// A new id from a 202/200 answer's `key.id`.
fn id_of(v: &Value, key: &str) -> String {
    v[key]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

async fn volume_in(c: &Cloud, u: &User, vtype: &str, group: &str) -> String {
    let body = json!({"volume": {"size": 1, "volume_type": vtype, "group_id": group}});
    let (st, v) = call(c, u, Method::POST, "/volumes", Some(body)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["volume"]["group_id"], group);
    let id = id_of(&v, "volume");
    c.wait(u, &format!("/volumes/{id}"), "volume", "available")
        .await;
    id
}

async fn group_volumes(c: &Cloud, u: &User, group: &str) -> Vec<Value> {
    let (_, l) = call(c, u, Method::GET, "/volumes/detail", None).await;
    l["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["group_id"] == group)
        .cloned()
        .collect()
}

#[tokio::test]
async fn group_types_and_their_specs_are_admin_managed() {
    let c = common::start("group-types").await;
    let admin = c.user("admin", "admin").await;
    let demo = c.user("demo", "demo").await;
    let body = json!({"group_type": {"name": "gt", "description": "d",
        "group_specs": {"consistent_group_snapshot_enabled": "<is> False"}}});
    let (st, _) = call(&c, &demo, Method::POST, "/group_types", Some(body.clone())).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, t) = call(&c, &admin, Method::POST, "/group_types", Some(body.clone())).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{t}");
    let gt = id_of(&t, "group_type");
    assert_eq!(t["group_type"]["is_public"], true);
    let (st, _) = call(&c, &admin, Method::POST, "/group_types", Some(body)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    // Before 3.11 there are no group types.
    let (st, _) = c
        .call_at(&admin, "3.10", Method::GET, "/group_types", None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Readers see public types, without their specs.
    let (_, l) = call(&c, &demo, Method::GET, "/group_types", None).await;
    assert_eq!(l["group_types"][0]["name"], "gt");
    assert!(l["group_types"][0].get("group_specs").is_none(), "{l}");

    let specs = format!("/group_types/{gt}/group_specs");
    let (st, s) = call(
        &c,
        &admin,
        Method::POST,
        &specs,
        Some(json!({"group_specs": {"k1": "v1", "k2": "v2"}})),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(s["group_specs"], json!({"k1": "v1", "k2": "v2"}));
    let (st, s) = call(
        &c,
        &admin,
        Method::PUT,
        &format!("{specs}/k2"),
        Some(json!({"k2": "v2b"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s, json!({"k2": "v2b"}));
    let (_, all) = call(&c, &admin, Method::GET, &specs, None).await;
    assert_eq!(all["group_specs"]["k2"], "v2b");
    assert_eq!(
        all["group_specs"]["consistent_group_snapshot_enabled"],
        "<is> False"
    );
    let (st, _) = call(&c, &admin, Method::DELETE, &format!("{specs}/k1"), None).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = call(&c, &admin, Method::GET, &format!("{specs}/k1"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, u) = call(
        &c,
        &admin,
        Method::PUT,
        &format!("/group_types/{gt}"),
        Some(json!({"group_type": {"name": "gt2", "is_public": false}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    let (_, l) = call(&c, &demo, Method::GET, "/group_types", None).await;
    assert!(
        l["group_types"].as_array().unwrap().is_empty(),
        "private now: {l}"
    );
    let (_, l) = call(
        &c,
        &admin,
        Method::GET,
        "/group_types?is_public=None&sort=name:asc",
        None,
    )
    .await;
    assert_eq!(l["group_types"][0]["name"], "gt2");
    let (st, _) = call(
        &c,
        &admin,
        Method::DELETE,
        &format!("/group_types/{gt}"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = call(&c, &admin, Method::GET, &format!("/group_types/{gt}"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn groups_hold_volumes_snapshot_together_and_copy() {
    let c = common::start("groups").await;
    let admin = c.user("admin", "admin").await;
    let (_, t) = call(
        &c,
        &admin,
        Method::POST,
        "/types",
        Some(json!({"volume_type": {"name": "fast"}})),
    )
    .await;
    let vtype = id_of(&t, "volume_type");
    let (_, gt) = call(
        &c,
        &admin,
        Method::POST,
        "/group_types",
        Some(json!({"group_type": {"name": "generic"}})),
    )
    .await;
    let gtype = id_of(&gt, "group_type");
    let body = json!({"group": {"name": "g1", "group_type": gtype, "volume_types": [vtype]}});
    let (st, g) = call(&c, &admin, Method::POST, "/groups", Some(body)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{g}");
    let group = id_of(&g, "group");
    let g = c
        .wait_at(&admin, V, &format!("/groups/{group}"), "group", "available")
        .await;
    assert_eq!(g["group_type"], gtype.as_str());
    assert_eq!(g["volume_types"], json!([vtype]));

    // A volume of another type does not join; two of the group's type do.
    let wrong = json!({"volume": {"size": 1, "group_id": group}});
    let (st, e) = call(&c, &admin, Method::POST, "/volumes", Some(wrong)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let v1 = volume_in(&c, &admin, &vtype, &group).await;
    let v2 = volume_in(&c, &admin, &vtype, &group).await;
    let (st, _) = c
        .call_at(&admin, "3.12", Method::GET, &format!("/volumes/{v1}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);

    // Out and back in, renamed on the way.
    let path = format!("/groups/{group}");
    let upd = json!({"group": {"name": "renamed", "remove_volumes": v2}});
    let (st, _) = call(&c, &admin, Method::PUT, &path, Some(upd)).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(group_volumes(&c, &admin, &group).await.len(), 1);
    let (st, _) = call(
        &c,
        &admin,
        Method::PUT,
        &path,
        Some(json!({"group": {"add_volumes": v2}})),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    // The volume ids are in the view from 3.25, asked for.
    let listed = format!("{path}?list_volume=True");
    let (_, g) = c.call_at(&admin, "3.25", Method::GET, &listed, None).await;
    assert_eq!(g["group"]["name"], "renamed");
    assert_eq!(g["group"]["volumes"].as_array().unwrap().len(), 2, "{g}");

    // A group snapshot: one snapshot per volume, available when they are.
    let (st, gs) = call(
        &c,
        &admin,
        Method::POST,
        "/group_snapshots",
        Some(json!({"group_snapshot": {"group_id": group, "name": "gs"}})),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{gs}");
    assert_eq!(gs["group_snapshot"]["group_type_id"], gtype.as_str());
    let gsid = id_of(&gs, "group_snapshot");
    c.wait_at(
        &admin,
        V,
        &format!("/group_snapshots/{gsid}"),
        "group_snapshot",
        "available",
    )
    .await;
    let (_, snaps) = call(&c, &admin, Method::GET, "/snapshots/detail", None).await;
    let mut taken: Vec<String> = snaps["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["volume_id"].as_str().unwrap().to_owned())
        .collect();
    taken.sort();
    let mut both = vec![v1.clone(), v2.clone()];
    both.sort();
    assert_eq!(taken, both);
    // A group with a group snapshot is not deleted.
    let del = json!({"delete": {"delete-volumes": true}});
    let (st, _) = call(
        &c,
        &admin,
        Method::POST,
        &format!("{path}/action"),
        Some(del.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Groups made from the group snapshot and from the group.
    let mut copies = Vec::new();
    for src in [
        json!({"group_snapshot_id": gsid}),
        json!({"source_group_id": group}),
    ] {
        let mut body = src.clone();
        body["name"] = json!("copy");
        let (st, g2) = call(
            &c,
            &admin,
            Method::POST,
            "/groups/action",
            Some(json!({"create-from-src": body})),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{g2}");
        let g2 = id_of(&g2, "group");
        let shown = c
            .wait_at(&admin, V, &format!("/groups/{g2}"), "group", "available")
            .await;
        assert_eq!(shown["volume_types"], json!([vtype]));
        let vols = group_volumes(&c, &admin, &g2).await;
        assert_eq!(vols.len(), 2, "{vols:?}");
        assert!(vols.iter().all(|v| v["status"] == "available"));
        copies.push(g2);
    }

    // Reset status (admin only), then delete the snapshot and the groups.
    let demo = c.user("demo", "demo").await;
    let reset = json!({"reset_status": {"status": "error"}});
    let (st, _) = call(
        &c,
        &demo,
        Method::POST,
        &format!("/group_snapshots/{gsid}/action"),
        Some(reset.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "not demo's");
    let (st, _) = call(
        &c,
        &admin,
        Method::POST,
        &format!("/group_snapshots/{gsid}/action"),
        Some(reset.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, s) = call(
        &c,
        &admin,
        Method::GET,
        &format!("/group_snapshots/{gsid}"),
        None,
    )
    .await;
    assert_eq!(s["group_snapshot"]["status"], "error");
    let (st, _) = call(
        &c,
        &admin,
        Method::DELETE,
        &format!("/group_snapshots/{gsid}"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    c.wait_at(
        &admin,
        V,
        &format!("/group_snapshots/{gsid}"),
        "group_snapshot",
        "deleted",
    )
    .await;
    let no = json!({"delete": {"delete-volumes": false}});
    let (st, _) = call(
        &c,
        &admin,
        Method::POST,
        &format!("{path}/action"),
        Some(no),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "it still has volumes");
    for g in std::iter::once(&group).chain(copies.iter()) {
        let (st, e) = call(
            &c,
            &admin,
            Method::POST,
            &format!("/groups/{g}/action"),
            Some(del.clone()),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{e}");
        c.wait_at(&admin, V, &format!("/groups/{g}"), "group", "deleted")
            .await;
    }
    for v in [&v1, &v2] {
        c.wait(&admin, &format!("/volumes/{v}"), "volume", "deleted")
            .await;
    }
    let (_, l) = call(&c, &admin, Method::GET, "/groups/detail", None).await;
    assert!(l["groups"].as_array().unwrap().is_empty(), "{l}");
}

#[tokio::test]
async fn the_groups_quota_limits_a_project() {
    let c = common::start("group-quota").await;
    let admin = c.user("admin", "admin").await;
    let (_, gt) = call(
        &c,
        &admin,
        Method::POST,
        "/group_types",
        Some(json!({"group_type": {"name": "q"}})),
    )
    .await;
    let gtype = id_of(&gt, "group_type");
    let quota = json!({"quota_set": {"groups": 1}});
    let (st, q) = call(
        &c,
        &admin,
        Method::PUT,
        &format!("/os-quota-sets/{}", admin.project),
        Some(quota),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{q}");
    let body = json!({"group": {"group_type": gtype, "volume_types": ["__DEFAULT__"]}});
    let (st, _) = call(&c, &admin, Method::POST, "/groups", Some(body.clone())).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, e) = call(&c, &admin, Method::POST, "/groups", Some(body)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    let (_, u) = call(
        &c,
        &admin,
        Method::GET,
        &format!("/os-quota-sets/{}?usage=true", admin.project),
        None,
    )
    .await;
    assert_eq!(u["quota_set"]["groups"]["in_use"], 1, "{u}");
}
