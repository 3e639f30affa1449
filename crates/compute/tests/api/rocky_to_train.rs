//! The request schemas and views Nova changed from 2.65 on, each checked
//! at the versions on either side of its change. Where a version only
//! adds a key to a view, the [`KEYS_FROM`] table says where and from when.

use super::*;

/// Every change from 2.65 to the maximum, in version order.
pub(super) async fn walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "rocky", &image, &net).await;
    c.wait_status(&demo, &id, "ACTIVE").await;

    // 2.65 lets an abort reach a live migration still queued or
    // preparing; no live migration is ever in progress on one host, so
    // the abort meets the same 409 on both sides.
    for version in ["2.64", "2.65"] {
        let path = format!("/servers/{id}/migrations/1");
        let (s, v) = c
            .nova_at(version, Method::DELETE, &path, &admin, None)
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{version}: {v}");
    }
    keys_appear_where_nova_added_them(c, &demo, &id).await;
    changes_before_from_2_66(c, &admin, &demo, &id).await;
    volume_type_in_block_devices_from_2_67(c, &demo, &image, &net).await;
    no_forced_hosts_from_2_68(c, &admin, &id).await;
    // 2.69 (minimal views of servers in a down cell): this cloud has one
    // cell, never down, so every view is whole (the keys above).
    interface_tags_from_2_70(c, &demo, &image, &net).await;
    server_groups_in_show_update_and_rebuild_from_2_71(c, &demo, &image, &net).await;
    // 2.72 (ports with a resource request): the networking API makes no
    // such port; `create::check_resource_request` has the gate's unit test.
    locked_reason_and_filter_from_2_73(c, &demo, &id).await;
    host_and_node_at_create_from_2_74(c, &admin, &demo, &image, &net).await;
    unknown_query_parameters_refused_from_2_75(c, &admin, &demo).await;
    power_update_events_from_2_76(c, &admin, &demo, &id).await;
}

/// Keys a view gains at a version: (the path, the JSON pointer of the
/// object, the key, the last version without it, the first with it).
const KEYS_FROM: &[(&str, &str, &str, &str, &str)] = &[
    ("/servers/{id}", "/server", "server_groups", "2.70", "2.71"),
    ("/servers/{id}", "/server", "locked_reason", "2.72", "2.73"),
    (
        "/servers/detail",
        "/servers/0",
        "locked_reason",
        "2.72",
        "2.73",
    ),
    (
        "/servers/{id}/os-interface",
        "/interfaceAttachments/0",
        "tag",
        "2.69",
        "2.70",
    ),
];

/// Keys update and rebuild answers gain: the server's groups (2.71), the
/// lock's reason (2.73), and from 2.75 all of the show view.
const UPDATE_KEYS_FROM: &[(&str, &str, &str)] = &[
    ("server_groups", "2.70", "2.71"),
    ("locked_reason", "2.72", "2.73"),
    ("OS-EXT-STS:vm_state", "2.74", "2.75"),
    ("OS-EXT-AZ:availability_zone", "2.74", "2.75"),
    ("os-extended-volumes:volumes_attached", "2.74", "2.75"),
];

async fn keys_appear_where_nova_added_them(c: &Cloud, demo: &str, id: &str) {
    for (path, pointer, key, without, with) in KEYS_FROM {
        let path = path.replace("{id}", id);
        let old = c.ok_at(without, Method::GET, &path, demo, None).await;
        let new = c.ok_at(with, Method::GET, &path, demo, None).await;
        let (Some(old), Some(new)) = (old.pointer(pointer), new.pointer(pointer)) else {
            panic!("{path}: nothing at {pointer}");
        };
        assert!(old.get(*key).is_none(), "{key} in {path} at {without}");
        assert!(new.get(*key).is_some(), "no {key} in {path} at {with}");
    }
}

/// 2.66: `changes-before` (inclusive, on the last update) for server
/// lists, instance actions and migrations; ignored before; after
/// `changes-since` or a 400.
async fn changes_before_from_2_66(c: &Cloud, admin: &str, demo: &str, id: &str) {
    let long_ago = "2001-01-01T00:00:00Z";
    let lists = [
        ("/servers", "servers", demo),
        ("/servers/detail", "servers", demo),
        (
            &format!("/servers/{id}/os-instance-actions") as &str,
            "instanceActions",
            demo,
        ),
        ("/os-migrations", "migrations", admin),
    ];
    for (path, key, tok) in lists {
        let all = c.ok_at("2.66", Method::GET, path, tok, None).await[key].clone();
        let before = format!("{path}?changes-before={long_ago}");
        let old = c.ok_at("2.65", Method::GET, &before, tok, None).await;
        assert_eq!(old[key], all, "{path}: changes-before read at 2.65");
        let new = c.ok_at("2.66", Method::GET, &before, tok, None).await;
        assert_eq!(new[key], json!([]), "{path} changed before {long_ago}");
        let now = (chrono::Utc::now() + chrono::Duration::minutes(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let window = format!("{path}?changes-since={long_ago}&changes-before={now}");
        let v = c.ok_at("2.66", Method::GET, &window, tok, None).await;
        assert_eq!(
            v[key].as_array().map(Vec::len),
            all.as_array().map(Vec::len),
            "{path}"
        );
        let reversed = format!("{path}?changes-since={now}&changes-before={long_ago}");
        let (s, v) = c.nova_at("2.66", Method::GET, &reversed, tok, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        let bad = format!("{path}?changes-before=yesterday");
        let (s, v) = c.nova_at("2.66", Method::GET, &bad, tok, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
    }
    assert!(
        !c.ok_at("2.66", Method::GET, "/servers", demo, None).await["servers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// 2.67: `volume_type` in a block device mapping.
async fn volume_type_in_block_devices_from_2_67(c: &Cloud, demo: &str, image: &str, net: &str) {
    let server = json!({"name": "typed", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}],
        "block_device_mapping_v2": [{"source_type": "image", "destination_type": "local",
            "uuid": image, "boot_index": 0, "volume_type": "fast"}]});
    let (s, v) = create_at(c, "2.66", demo, server.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v.to_string().contains("'volume_type' was unexpected"),
        "{v}"
    );
    let (s, v) = create_at(c, "2.67", demo, server).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().unwrap();
    c.wait_status(demo, id, "ACTIVE").await;
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// 2.68: `force` is gone from evacuate and live migration.
async fn no_forced_hosts_from_2_68(c: &Cloud, admin: &str, id: &str) {
    let path = format!("/servers/{id}/action");
    let bodies = [
        json!({"evacuate": {"host": "compute1", "force": true}}),
        json!({"os-migrateLive": {"host": "compute1", "block_migration": "auto", "force": true}}),
    ];
    for body in bodies {
        let unexpected = "'force' was unexpected";
        let (_, v) = c
            .nova_at("2.67", Method::POST, &path, admin, Some(body.clone()))
            .await;
        assert!(!v.to_string().contains(unexpected), "{body} at 2.67: {v}");
        let (s, v) = c
            .nova_at("2.68", Method::POST, &path, admin, Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} at 2.68: {v}");
        assert!(v.to_string().contains(unexpected), "{v}");
    }
    c.wait_status(admin, id, "ACTIVE").await;
}

/// 2.70: the device tags of interfaces (given at create or at attach)
/// in the interface views.
async fn interface_tags_from_2_70(c: &Cloud, demo: &str, image: &str, net: &str) {
    let server = json!({"name": "nics", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net, "tag": "boot-nic"}]});
    let (s, v) = create_at(c, "2.70", demo, server).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_owned();
    c.wait_status(demo, &id, "ACTIVE").await;
    let path = format!("/servers/{id}/os-interface");
    let list = c.ok_at("2.70", Method::GET, &path, demo, None).await;
    assert_eq!(list["interfaceAttachments"][0]["tag"], "boot-nic");
    let attach = Some(json!({"interfaceAttachment": {"net_id": net, "tag": "hot"}}));
    let old = c
        .ok_at("2.69", Method::POST, &path, demo, attach.clone())
        .await;
    assert!(old["interfaceAttachment"].get("tag").is_none(), "{old}");
    let new = c.ok_at("2.70", Method::POST, &path, demo, attach).await;
    assert_eq!(new["interfaceAttachment"]["tag"], "hot");
    let port = new["interfaceAttachment"]["port_id"].as_str().unwrap();
    let one = format!("{path}/{port}");
    let shown = c.ok_at("2.70", Method::GET, &one, demo, None).await;
    assert_eq!(shown["interfaceAttachment"]["tag"], "hot");
    let shown = c.ok_at("2.69", Method::GET, &one, demo, None).await;
    assert!(shown["interfaceAttachment"].get("tag").is_none());
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// 2.71: the ids of the server's groups in show, update and rebuild.
async fn server_groups_in_show_update_and_rebuild_from_2_71(
    c: &Cloud,
    demo: &str,
    image: &str,
    net: &str,
) {
    let group = json!({"server_group": {"name": "g71", "policy": "affinity"}});
    let g = c
        .ok_at("2.64", Method::POST, "/os-server-groups", demo, Some(group))
        .await;
    let gid = g["server_group"]["id"].as_str().unwrap().to_owned();
    let (id, _, _) = c
        .create_server(
            demo,
            json!({"server": {"name": "grouped", "imageRef": image, "flavorRef": "1",
                "networks": [{"uuid": net}]}, "os:scheduler_hints": {"group": gid}}),
        )
        .await;
    c.wait_status(demo, &id, "ACTIVE").await;
    let path = format!("/servers/{id}");
    let rename = Some(json!({"server": {"name": "grouped2"}}));
    let rebuild = Some(json!({"rebuild": {"imageRef": image}}));
    let calls = [
        (Method::GET, path.clone(), None),
        (Method::PUT, path.clone(), rename),
        (Method::POST, format!("{path}/action"), rebuild),
    ];
    for (m, p, body) in calls {
        for (key, without, with) in UPDATE_KEYS_FROM {
            let old = c.ok_at(without, m.clone(), &p, demo, body.clone()).await;
            let key_in = |v: &Value| v["server"].get(*key).is_some();
            assert!(
                !key_in(&old) || m == Method::GET,
                "{key}: {m} {p} at {without}"
            );
            c.wait_status(demo, &id, "ACTIVE").await;
            let new = c.ok_at(with, m.clone(), &p, demo, body.clone()).await;
            assert!(key_in(&new), "{key}: {m} {p} at {with}: {new}");
            assert_eq!(new["server"]["server_groups"], json!([gid]), "{m} {p}");
            c.wait_status(demo, &id, "ACTIVE").await;
        }
    }
    // An admin's rebuild at 2.75 shows `user_data`, not the extended
    // attribute (tempest's 2.75 rebuild schema).
    let admin = c.token("admin", "admin").await;
    let rebuild = Some(json!({"rebuild": {"imageRef": image}}));
    let v = c
        .ok_at(
            "2.75",
            Method::POST,
            &format!("{path}/action"),
            &admin,
            rebuild,
        )
        .await;
    assert!(v["server"].get("user_data").is_some(), "{v}");
    assert!(
        v["server"].get("OS-EXT-SRV-ATTR:user_data").is_none(),
        "{v}"
    );
    assert!(v["server"].get("OS-EXT-SRV-ATTR:host").is_some(), "{v}");
    c.wait_status(demo, &id, "ACTIVE").await;
    let (s, _) = c.nova(Method::DELETE, &path, demo, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// 2.73: a reason given with the lock (read from 2.73 only), shown while
/// locked; `locked` filters lists.
async fn locked_reason_and_filter_from_2_73(c: &Cloud, demo: &str, id: &str) {
    let action = format!("/servers/{id}/action");
    let server = format!("/servers/{id}");
    let lock = |reason: &str| Some(json!({"lock": {"locked_reason": reason}}));
    let unlock = Some(json!({"unlock": null}));
    let (s, v) = c
        .nova_at("2.72", Method::POST, &action, demo, lock("ignored"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let v = c.ok_at("2.73", Method::GET, &server, demo, None).await;
    assert_eq!(
        (&v["server"]["locked"], &v["server"]["locked_reason"]),
        (&json!(true), &Value::Null)
    );
    c.ok_at("2.73", Method::POST, &action, demo, unlock.clone())
        .await;
    for bad in [
        json!({"lock": {"locked_reason": 7}}),
        json!({"lock": {"locked_reason": "x".repeat(256)}}),
        json!({"lock": {"why": "x"}}),
        json!({"lock": "x"}),
    ] {
        let (s, v) = c
            .nova_at("2.73", Method::POST, &action, demo, Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    c.ok_at("2.73", Method::POST, &action, demo, lock("maintenance"))
        .await;
    let v = c.ok_at("2.73", Method::GET, &server, demo, None).await;
    assert_eq!(v["server"]["locked_reason"], "maintenance");
    let ids = |v: &Value| -> Vec<String> {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let locked = c
        .ok_at("2.73", Method::GET, "/servers?locked=true", demo, None)
        .await;
    assert_eq!(ids(&locked), vec![id.to_owned()]);
    let open = c
        .ok_at("2.73", Method::GET, "/servers/detail?locked=0", demo, None)
        .await;
    assert!(!ids(&open).contains(&id.to_owned()));
    let old = c
        .ok_at("2.72", Method::GET, "/servers?locked=maybe", demo, None)
        .await;
    assert!(
        ids(&old).contains(&id.to_owned()),
        "the filter is not read at 2.72"
    );
    let (s, v) = c
        .nova_at("2.73", Method::GET, "/servers?locked=maybe", demo, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    c.ok_at("2.73", Method::POST, &action, demo, unlock).await;
    let v = c.ok_at("2.73", Method::GET, &server, demo, None).await;
    assert_eq!(
        (&v["server"]["locked"], &v["server"]["locked_reason"]),
        (&json!(false), &Value::Null)
    );
}

async fn create_at(c: &Cloud, version: &str, tok: &str, server: Value) -> (StatusCode, Value) {
    c.nova_at(
        version,
        Method::POST,
        "/servers",
        tok,
        Some(json!({ "server": server })),
    )
    .await
}

/// 2.74: an admin may name the host and node to boot on (the scheduler's
/// filters still run); each must exist, and neither goes with `zone:host`.
async fn host_and_node_at_create_from_2_74(
    c: &Cloud,
    admin: &str,
    demo: &str,
    image: &str,
    net: &str,
) {
    let hypervisors = c
        .ok(Method::GET, "/os-hypervisors/detail", admin, None)
        .await;
    let node = hypervisors["hypervisors"][0]["hypervisor_hostname"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = |extra: Value| {
        let mut s = json!({"name": "placed", "imageRef": image, "flavorRef": "1",
            "networks": [{"uuid": net}]});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    let both = server(json!({"host": "compute1", "hypervisor_hostname": node}));
    let (s, v) = create_at(c, "2.73", admin, both.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = create_at(c, "2.74", demo, both.clone()).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the destination is an admin's: {v}"
    );
    for extra in [
        json!({"host": "nowhere"}),
        json!({"hypervisor_hostname": "nowhere"}),
        json!({"host": "nowhere", "hypervisor_hostname": node}),
    ] {
        let (s, v) = create_at(c, "2.74", admin, server(extra)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            v["badRequest"]["message"],
            "Compute host nowhere could not be found."
        );
    }
    let zoned = server(json!({"host": "compute1", "availability_zone": "nova:compute1"}));
    let (s, v) = create_at(c, "2.74", admin, zoned).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = create_at(c, "2.74", admin, both).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_owned();
    let shown = c.wait_status(admin, &id, "ACTIVE").await;
    assert_eq!(shown["OS-EXT-SRV-ATTR:host"], "compute1");
    assert_eq!(shown["OS-EXT-SRV-ATTR:hypervisor_hostname"], node.as_str());
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), admin, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// 2.75: the queries Nova closed refuse a parameter they do not know;
/// flavors show no swap as 0 rather than "".
async fn unknown_query_parameters_refused_from_2_75(c: &Cloud, admin: &str, demo: &str) {
    let queries = [
        ("/servers?name=x&color=red", demo),
        ("/servers/detail?color=red", demo),
        ("/flavors?color=red", demo),
        ("/flavors/detail?color=red", demo),
        ("/os-keypairs?color=red", demo),
        ("/limits?color=red", demo),
        ("/os-quota-sets/demo?color=red", admin),
        ("/os-quota-sets/demo/detail?color=red", admin),
    ];
    for (path, tok) in queries {
        c.ok_at("2.74", Method::GET, path, tok, None).await;
        let (s, v) = c.nova_at("2.75", Method::GET, path, tok, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(v.to_string().contains("'color' was unexpected"), "{v}");
    }
    for known in [
        "/servers?name=x&locked=false&limit=1",
        "/flavors?minRam=1",
        "/limits",
    ] {
        c.ok_at("2.75", Method::GET, known, demo, None).await;
    }
    let old = c.ok_at("2.74", Method::GET, "/flavors/1", demo, None).await;
    let new = c.ok_at("2.75", Method::GET, "/flavors/1", demo, None).await;
    assert_eq!(
        (&old["flavor"]["swap"], &new["flavor"]["swap"]),
        (&json!(""), &json!(0))
    );
}

/// 2.76: `power-update` events (a power change made outside compute)
/// stop and start the server, recorded as instance actions.
async fn power_update_events_from_2_76(c: &Cloud, admin: &str, demo: &str, id: &str) {
    let event = |tag: Option<&str>| {
        let mut e = json!({"name": "power-update", "server_uuid": id});
        if let Some(t) = tag {
            e["tag"] = json!(t);
        }
        Some(json!({ "events": [e] }))
    };
    let path = "/os-server-external-events";
    let (s, v) = c
        .nova_at("2.75", Method::POST, path, admin, event(Some("POWER_OFF")))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let v = c
        .ok_at("2.76", Method::POST, path, admin, event(None))
        .await;
    assert_eq!(v["events"][0]["code"], 400, "the tag is required: {v}");
    c.wait_status(demo, id, "ACTIVE").await;
    let v = c
        .ok_at("2.76", Method::POST, path, admin, event(Some("POWER_OFF")))
        .await;
    assert_eq!(v["events"][0]["code"], 200, "{v}");
    let shown = c.wait_status(demo, id, "SHUTOFF").await;
    assert_eq!(shown["OS-EXT-STS:power_state"], 4);
    c.ok_at("2.76", Method::POST, path, admin, event(Some("POWER_ON")))
        .await;
    c.wait_status(demo, id, "ACTIVE").await;
    let actions = c
        .ok(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            demo,
            None,
        )
        .await;
    let names: Vec<&str> = actions["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(names.starts_with(&["start", "stop"]), "{names:?}");
}
