//! The request schemas and views Nova changed from 2.81 to 2.100, each
//! checked at the versions on either side of its change (the volume
//! changes, 2.85, 2.87's volume-backed rescue, 2.89 and 2.93, are in
//! `tests/volumes.rs`, which has a volume service).

use super::*;

/// Every change from 2.81 to the maximum, in version order.
pub(super) async fn walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "flamingo", &image, &net).await;
    c.wait_status(&demo, &id, "ACTIVE").await;
    image_precaching_on_aggregates_from_2_81(c, &admin, &image).await;
    accelerator_events_from_2_82(c, &admin, &id).await;
    instance_filters_for_everyone_from_2_83(c, &admin, &demo, &id).await;
    failed_event_details_from_2_84(c, &admin, &demo, &id).await;
    extra_specs_validated_from_2_86(c, &admin).await;
    rescue_from_2_87(c, &demo, &id).await;
    hypervisors_without_figures_from_2_88(c, &admin).await;
    hostnames_from_2_90_and_fqdns_from_2_94(c, &demo, &image, &net, &id).await;
    unshelve_to_a_host_from_2_91(c, &admin, &demo, &image, &net).await;
    key_pairs_imported_only_from_2_92(c, &demo).await;
    evacuate_at_2_94_and_2_95(c, &admin, &demo, &image, &net).await;
    keys_appear_where_nova_added_them(c, &demo, &id).await;
    image_properties_from_2_98(c, &admin, &demo, &net).await;
    shares_from_2_97(c, &demo, &id).await;
    spice_direct_and_token_queries_from_2_99(c, &admin, &demo, &id).await;
    scheduler_hints_from_2_100(c, &demo, &image, &net).await;
}

/// Keys a server view gains: (the path, the JSON pointer of the server,
/// the key, the last version without it, the first with it).
const KEYS_FROM: &[(&str, &str, &str, &str, &str)] = &[
    (
        "/servers/{id}",
        "/server",
        "OS-EXT-SRV-ATTR:hostname",
        "2.89",
        "2.90",
    ),
    (
        "/servers/detail",
        "/servers/0",
        "OS-EXT-SRV-ATTR:hostname",
        "2.89",
        "2.90",
    ),
    (
        "/servers/{id}",
        "/server",
        "pinned_availability_zone",
        "2.95",
        "2.96",
    ),
    (
        "/servers/detail",
        "/servers/0",
        "pinned_availability_zone",
        "2.95",
        "2.96",
    ),
    (
        "/servers/{id}",
        "/server/image",
        "properties",
        "2.97",
        "2.98",
    ),
    (
        "/servers/{id}",
        "/server",
        "scheduler_hints",
        "2.99",
        "2.100",
    ),
    (
        "/servers/detail",
        "/servers/0",
        "scheduler_hints",
        "2.99",
        "2.100",
    ),
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
    // Update and rebuild answer the same view.
    let path = format!("/servers/{id}");
    let v = c
        .ok_at(
            "2.100",
            Method::PUT,
            &path,
            demo,
            Some(json!({"server": {}})),
        )
        .await;
    for key in [
        "pinned_availability_zone",
        "scheduler_hints",
        "OS-EXT-SRV-ATTR:hostname",
    ] {
        assert!(v["server"].get(key).is_some(), "update at 2.100: no {key}");
    }
}

/// 2.81: `POST /os-aggregates/{id}/images` (404 before); 202 once the
/// request is checked, then each host's agent caches the images and a
/// progress notification per host says which it cached and which failed.
async fn image_precaching_on_aggregates_from_2_81(c: &Cloud, admin: &str, image: &str) {
    let agg = c
        .ok(
            Method::POST,
            "/os-aggregates",
            admin,
            Some(json!({"aggregate": {"name": "cached"}})),
        )
        .await["aggregate"]["id"]
        .as_i64()
        .unwrap();
    let action = format!("/os-aggregates/{agg}/action");
    let add = json!({"add_host": {"host": "compute1"}});
    c.ok(Method::POST, &action, admin, Some(add)).await;
    let path = format!("/os-aggregates/{agg}/images");
    let missing = uuid::Uuid::new_v4().to_string();
    let body = json!({"cache": [{"id": image}, {"id": missing}]});
    let (s, _) = c
        .nova_at("2.80", Method::POST, &path, admin, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let refusals = [
        json!({"cache": []}),
        json!({"cache": [{"id": "not-a-uuid"}]}),
        json!({"cache": [{"id": image}, {"id": image}]}),
        json!({"cache": [{"id": image, "name": "x"}]}),
    ];
    for bad in refusals {
        let (s, v) = c
            .nova_at("2.81", Method::POST, &path, admin, Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (s, _) = c
        .nova_at(
            "2.81",
            Method::POST,
            "/os-aggregates/999/images",
            admin,
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let demo = c.token("demo", "demo").await;
    let (s, _) = c
        .nova_at("2.81", Method::POST, &path, &demo, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut notes = c.kit.bus.subscribe_notifications().await.unwrap();
    let (s, v) = c
        .nova_at("2.81", Method::POST, &path, admin, Some(body))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let progress = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = notes.recv().await.unwrap();
            if n.event_type == "aggregate.cache_images.progress" {
                return n.payload;
            }
        }
    })
    .await
    .expect("a progress notification");
    assert_eq!(progress["host"], "compute1");
    assert_eq!(progress["images_cached"], json!([image]));
    assert_eq!(progress["images_failed"], json!([missing]));
}

/// 2.82: the `accelerator-request-bound` event name.
async fn accelerator_events_from_2_82(c: &Cloud, admin: &str, id: &str) {
    let body = json!({"events": [{"name": "accelerator-request-bound", "server_uuid": id,
        "tag": uuid::Uuid::new_v4().to_string()}]});
    let path = "/os-server-external-events";
    let (s, v) = c
        .nova_at("2.81", Method::POST, path, admin, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let v = c.ok_at("2.82", Method::POST, path, admin, Some(body)).await;
    assert_eq!(v["events"][0]["code"], 200, "{v}");
}

/// 2.83: the instance's own fields as list filters for everyone (an
/// admin had them at every version; others had them dropped unread).
async fn instance_filters_for_everyone_from_2_83(c: &Cloud, admin: &str, demo: &str, id: &str) {
    let listed = |v: &Value| -> Vec<String> {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let user = c
        .ok(Method::GET, &format!("/servers/{id}"), demo, None)
        .await["server"]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let filters = [
        ("vm_state=stopped", false),
        ("vm_state=active", true),
        ("power_state=4", false),
        ("power_state=1", true),
        ("availability_zone=elsewhere", false),
        ("availability_zone=nov", true),
        ("key_name=nokey", false),
        ("progress=^100$", true),
        ("progress=^0$", false),
        ("user_id=someone-else", false),
        (&format!("user_id={user}") as &str, true),
        ("task_state=deleting", false),
        ("created_at=1999", false),
        ("launched_at=20", true),
    ];
    for (filter, matches) in filters {
        let path = format!("/servers?{filter}");
        let old = c.ok_at("2.82", Method::GET, &path, demo, None).await;
        assert!(
            listed(&old).contains(&id.to_owned()),
            "{filter} read at 2.82"
        );
        let new = c.ok_at("2.83", Method::GET, &path, demo, None).await;
        assert_eq!(
            listed(&new).contains(&id.to_owned()),
            matches,
            "{filter} at 2.83"
        );
        // An admin's filter works at either version.
        let path = format!("/servers?all_tenants=1&{filter}");
        let old = c.ok_at("2.82", Method::GET, &path, admin, None).await;
        assert_eq!(
            listed(&old).contains(&id.to_owned()),
            matches,
            "admin {filter}"
        );
    }
}

/// 2.84: a failed event's `details` (its fault's message) in an
/// instance action, to admins.
async fn failed_event_details_from_2_84(c: &Cloud, admin: &str, demo: &str, id: &str) {
    let body = Some(json!({"trigger_crash_dump": null}));
    let action = format!("/servers/{id}/action");
    // A driver that fails the NMI fails the action's event.
    c.driver.fail_next("inject_nmi");
    let (s, v) = c.nova_at("2.17", Method::POST, &action, admin, body).await;
    assert!(s.is_success(), "{v}");
    let actions = c
        .ok_at(
            "2.84",
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            demo,
            None,
        )
        .await;
    let req = actions["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "trigger_crash_dump")
        .unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/servers/{id}/os-instance-actions/{req}");
    let event = |v: &Value| v["instanceAction"]["events"][0].clone();
    let old = c.ok_at("2.83", Method::GET, &path, admin, None).await;
    assert!(event(&old).get("details").is_none(), "{old}");
    let new = c.ok_at("2.84", Method::GET, &path, admin, None).await;
    assert_eq!(event(&new)["result"], "Error");
    assert!(
        event(&new)["details"]
            .as_str()
            .unwrap()
            .contains("injected inject_nmi failure"),
        "{new}"
    );
    let own = c.ok_at("2.84", Method::GET, &path, demo, None).await;
    assert!(
        event(&own).get("details").is_none(),
        "details are admin's: {own}"
    );
}

/// 2.86: extra specs of the namespaces Nova knows are validated.
async fn extra_specs_validated_from_2_86(c: &Cloud, admin: &str) {
    let path = "/flavors/1/os-extra_specs";
    let cases = [
        (json!({"hw:cpu_policy": "sometimes"}), false),
        (json!({"hw:no_such_key": "1"}), false),
        (json!({"hw:numa_nodes": "0"}), false),
        (
            json!({"hw:cpu_policy": "dedicated", "hw:numa_nodes": "1"}),
            true,
        ),
        (json!({"my:own": "anything", "plain": "x"}), true),
    ];
    for (specs, valid) in cases {
        let body = Some(json!({ "extra_specs": specs }));
        let (s, v) = c
            .nova_at("2.85", Method::POST, path, admin, body.clone())
            .await;
        assert_eq!(s, StatusCode::OK, "{specs} at 2.85: {v}");
        let (s, v) = c.nova_at("2.86", Method::POST, path, admin, body).await;
        assert_eq!(s.is_success(), valid, "{specs} at 2.86: {v}");
    }
    let one = "/flavors/1/os-extra_specs/hw:watchdog_action";
    let body = Some(json!({"hw:watchdog_action": "explode"}));
    let (s, _) = c
        .nova_at("2.85", Method::PUT, one, admin, body.clone())
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = c.nova_at("2.86", Method::PUT, one, admin, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

/// rescue at 2.86 and 2.87 (the same for an image-backed server): the
/// password back, RESCUE, unrescue back to ACTIVE; a rescue image that is
/// not there is Nova's 400, unrescue of a server not rescued its 409. The
/// 2.87 volume-backed answer is in `tests/volumes.rs`.
async fn rescue_from_2_87(c: &Cloud, demo: &str, id: &str) {
    let path = format!("/servers/{id}/action");
    for version in ["2.86", "2.87"] {
        let body = Some(json!({"rescue": {"rescue_image_ref": "nope"}}));
        let (s, _) = c.nova_at(version, Method::POST, &path, demo, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let unrescue = Some(json!({"unrescue": null}));
        let (s, _) = c
            .nova_at(version, Method::POST, &path, demo, unrescue.clone())
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let body = Some(json!({"rescue": {"adminPass": "pw"}}));
        let (s, v) = c.nova_at(version, Method::POST, &path, demo, body).await;
        assert_eq!(s, StatusCode::OK, "{version}: {v}");
        assert_eq!(v, json!({"adminPass": "pw"}));
        c.wait_status(demo, id, "RESCUE").await;
        let (s, v) = c
            .nova_at(version, Method::POST, &path, demo, unrescue)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{version}: {v}");
        c.wait_status(demo, id, "ACTIVE").await;
    }
}

/// 2.88: no resource figures in hypervisor views, `uptime` in them
/// instead; `statistics` and `/uptime` are gone.
async fn hypervisors_without_figures_from_2_88(c: &Cloud, admin: &str) {
    let old = c
        .ok_at("2.87", Method::GET, "/os-hypervisors/detail", admin, None)
        .await;
    let new = c
        .ok_at("2.88", Method::GET, "/os-hypervisors/detail", admin, None)
        .await;
    let (old, new) = (&old["hypervisors"][0], &new["hypervisors"][0]);
    for gone in [
        "vcpus",
        "memory_mb",
        "local_gb",
        "running_vms",
        "cpu_info",
        "free_ram_mb",
    ] {
        assert!(old.get(gone).is_some(), "{gone} at 2.87");
        assert!(new.get(gone).is_none(), "{gone} at 2.88");
    }
    assert!(old.get("uptime").is_none());
    assert!(new["uptime"].as_str().unwrap().contains(" up "), "{new}");
    let id = new["id"].as_str().unwrap();
    let shown = c
        .ok_at(
            "2.88",
            Method::GET,
            &format!("/os-hypervisors/{id}"),
            admin,
            None,
        )
        .await;
    assert!(shown["hypervisor"]["uptime"].is_string());
    for path in [
        "/os-hypervisors/statistics".to_owned(),
        format!("/os-hypervisors/{id}/uptime"),
    ] {
        c.ok_at("2.87", Method::GET, &path, admin, None).await;
        let (s, _) = c.nova_at("2.88", Method::GET, &path, admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
}

/// 2.90: `hostname` at create, update and rebuild (one label), shown to
/// everyone; 2.94: an FQDN.
async fn hostnames_from_2_90_and_fqdns_from_2_94(
    c: &Cloud,
    demo: &str,
    image: &str,
    net: &str,
    id: &str,
) {
    let server = |hostname: &str| {
        json!({"server": {"name": "named", "imageRef": image, "flavorRef": "1",
            "networks": [{"uuid": net}], "hostname": hostname}})
    };
    let (s, v) = create_at(c, "2.89", demo, server("db1")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = create_at(c, "2.90", demo, server("db1.example.org")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an FQDN at 2.90: {v}");
    let mut many = server("db1");
    many["server"]["max_count"] = json!(2);
    let (s, v) = create_at(c, "2.90", demo, many).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = create_at(c, "2.90", demo, server("db1")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let made = v["server"]["id"].as_str().unwrap().to_owned();
    let shown = c.wait_status(demo, &made, "ACTIVE").await;
    assert!(
        shown.get("OS-EXT-SRV-ATTR:hostname").is_none(),
        "admin's before 2.90"
    );
    let path = format!("/servers/{made}");
    let v = c.ok_at("2.90", Method::GET, &path, demo, None).await;
    assert_eq!(v["server"]["OS-EXT-SRV-ATTR:hostname"], "db1");
    // A rename keeps the host name, as in Nova.
    let rename = Some(json!({"server": {"name": "renamed"}}));
    let v = c.ok_at("2.90", Method::PUT, &path, demo, rename).await;
    assert_eq!(v["server"]["OS-EXT-SRV-ATTR:hostname"], "db1");
    let fqdn = Some(json!({"server": {"hostname": "db2.example.org"}}));
    let (s, _) = c
        .nova_at("2.93", Method::PUT, &path, demo, fqdn.clone())
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v = c.ok_at("2.94", Method::PUT, &path, demo, fqdn).await;
    assert_eq!(v["server"]["OS-EXT-SRV-ATTR:hostname"], "db2.example.org");
    let rebuild = |h: &str| Some(json!({"rebuild": {"imageRef": image, "hostname": h}}));
    let action = format!("{path}/action");
    let (s, _) = c
        .nova_at("2.89", Method::POST, &action, demo, rebuild("db3"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v = c
        .ok_at("2.90", Method::POST, &action, demo, rebuild("db3"))
        .await;
    assert_eq!(v["server"]["OS-EXT-SRV-ATTR:hostname"], "db3");
    c.wait_status(demo, &made, "ACTIVE").await;
    // The old server's host name is its sanitized name; filters from 2.90.
    let v = c
        .ok_at("2.90", Method::GET, &format!("/servers/{id}"), demo, None)
        .await;
    assert_eq!(v["server"]["OS-EXT-SRV-ATTR:hostname"], "flamingo");
    let list = |v: &Value| v["servers"].as_array().unwrap().len();
    let q = "/servers?hostname=db3";
    assert!(list(&c.ok_at("2.89", Method::GET, q, demo, None).await) >= 2);
    assert_eq!(list(&c.ok_at("2.90", Method::GET, q, demo, None).await), 1);
    let (s, _) = c.nova(Method::DELETE, &path, demo, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
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

/// 2.91: unshelve to a host (admin; offloaded servers only; a host in
/// the zone the server is pinned to), and `availability_zone: null`
/// unpins the server.
async fn unshelve_to_a_host_from_2_91(c: &Cloud, admin: &str, demo: &str, image: &str, net: &str) {
    let zone = "nova";
    let body = json!({"server": {"name": "pinned", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}], "availability_zone": zone}});
    let (id, _, _) = c.create_server(demo, body).await;
    settled(c, demo, &id, "ACTIVE").await;
    let action = format!("/servers/{id}/action");
    let act = |version: &'static str, tok: &str, body: Value| {
        let (action, tok) = (action.clone(), tok.to_owned());
        async move {
            c.nova_at(version, Method::POST, &action, &tok, Some(body))
                .await
        }
    };
    let to_host = json!({"unshelve": {"host": "compute1"}});
    let (s, v) = act("2.91", admin, to_host.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "not shelved: {v}");
    let (s, _) = act("2.1", demo, json!({"shelve": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    settled(c, demo, &id, "SHELVED_OFFLOADED").await;
    let (s, v) = act("2.90", admin, to_host.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("'host' was unexpected"), "{v}");
    let (s, _) = act("2.91", demo, to_host.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "unshelve_to_host is admin's");
    let (s, v) = act("2.91", admin, json!({"unshelve": {"host": "nowhere"}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let elsewhere = json!({"unshelve": {"host": "compute1", "availability_zone": "other"}});
    let (s, v) = act("2.91", admin, elsewhere).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no such zone: {v}");
    let (s, v) = act(
        "2.77",
        demo,
        json!({"unshelve": {"availability_zone": null}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "null is 2.91's: {v}");
    let path = format!("/servers/{id}");
    let pinned = c.ok_at("2.96", Method::GET, &path, demo, None).await;
    assert_eq!(pinned["server"]["pinned_availability_zone"], zone);
    let unpin = json!({"unshelve": {"availability_zone": null, "host": "compute1"}});
    let (s, v) = act("2.91", admin, unpin).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let back = settled(c, admin, &id, "ACTIVE").await;
    assert_eq!(back["OS-EXT-SRV-ATTR:host"], "compute1");
    let unpinned = c.ok_at("2.96", Method::GET, &path, demo, None).await;
    assert_eq!(unpinned["server"]["pinned_availability_zone"], Value::Null);
    let (s, _) = c.nova(Method::DELETE, &path, demo, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(demo, &id, "GONE").await;
}

/// 2.92: a key pair must be imported; `@` and `.` allowed in names.
async fn key_pairs_imported_only_from_2_92(c: &Cloud, demo: &str) {
    let path = "/os-keypairs";
    let generate = Some(json!({"keypair": {"name": "made"}}));
    let v = c
        .ok_at("2.91", Method::POST, path, demo, generate.clone())
        .await;
    let public = v["keypair"]["public_key"].as_str().unwrap().to_owned();
    let (s, v) = c.nova_at("2.92", Method::POST, path, demo, generate).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let dotted = Some(json!({"keypair": {"name": "me@host.x", "public_key": public}}));
    let (s, _) = c
        .nova_at("2.91", Method::POST, path, demo, dotted.clone())
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v = c.ok_at("2.92", Method::POST, path, demo, dotted).await;
    assert_eq!(v["keypair"]["name"], "me@host.x");
}

/// 2.95 stops an evacuated server at its destination; with one compute
/// host an evacuation never reaches one (Nova's NoValidHost), so the
/// answer and the outcome are the same on both sides.
async fn evacuate_at_2_94_and_2_95(c: &Cloud, admin: &str, demo: &str, image: &str, net: &str) {
    let services = c
        .ok_at(
            "2.53",
            Method::GET,
            "/os-services?binary=nova-compute",
            admin,
            None,
        )
        .await;
    let service = services["services"][0]["id"].clone();
    let down = |forced: bool| Some(json!({"forced_down": forced}));
    let path = format!("/os-services/{}", service.as_str().unwrap());
    for version in ["2.94", "2.95"] {
        let id = c.boot(demo, "evacuee", image, net).await;
        c.wait_status(demo, &id, "ACTIVE").await;
        c.ok_at("2.53", Method::PUT, &path, admin, down(true)).await;
        let action = format!("/servers/{id}/action");
        let body = Some(json!({"evacuate": {}}));
        let (s, v) = c.nova_at(version, Method::POST, &action, admin, body).await;
        assert_eq!(s, StatusCode::OK, "{version}: {v}");
        let srv = c.wait_status(admin, &id, "ERROR").await;
        assert!(srv["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("No valid host"));
        c.ok_at("2.53", Method::PUT, &path, admin, down(false))
            .await;
        let (s, _) = c
            .nova(Method::DELETE, &format!("/servers/{id}"), demo, None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        c.wait_status(demo, &id, "GONE").await;
    }
}

/// 2.97: no share is ever attached (no virtiofs host, no Manila).
async fn shares_from_2_97(c: &Cloud, demo: &str, id: &str) {
    let path = format!("/servers/{id}/shares");
    let share = uuid::Uuid::new_v4().to_string();
    let (s, _) = c.nova_at("2.96", Method::GET, &path, demo, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let v = c.ok_at("2.97", Method::GET, &path, demo, None).await;
    assert_eq!(v, json!({"shares": []}));
    let (s, _) = c
        .nova_at("2.97", Method::GET, &format!("{path}?x=1"), demo, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the query is closed");
    let one = format!("{path}/{share}");
    let (s, _) = c.nova_at("2.97", Method::GET, &one, demo, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let attach = Some(json!({"share": {"share_id": share, "tag": "data"}}));
    let (s, v) = c
        .nova_at("2.97", Method::POST, &path, demo, attach.clone())
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "the server runs: {v}");
    c.action(demo, id, json!({"os-stop": null})).await;
    c.wait_status(demo, id, "SHUTOFF").await;
    let (s, v) = c.nova_at("2.97", Method::POST, &path, demo, attach).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("not configured correctly"), "{v}");
    let bad = Some(json!({"share": {"share_id": "nope"}}));
    let (s, _) = c.nova_at("2.97", Method::POST, &path, demo, bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = c.nova_at("2.97", Method::DELETE, &one, demo, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    c.action(demo, id, json!({"os-start": null})).await;
    c.wait_status(demo, id, "ACTIVE").await;
}

/// 2.98: the image's properties Nova knows, in the server's `image`.
async fn image_properties_from_2_98(c: &Cloud, admin: &str, demo: &str, net: &str) {
    let image = c.image(admin).await;
    let patch = json!([
        {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
        {"op": "add", "path": "/os_distro", "value": "debian"},
        {"op": "add", "path": "/my_own", "value": "x"},
    ]);
    let r = c
        .http
        .patch(format!("{}/v2/images/{image}", c.glance))
        .header("x-auth-token", admin)
        .header(
            "content-type",
            "application/openstack-images-v2.1-json-patch",
        )
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let id = c.boot(demo, "props", &image, net).await;
    c.wait_status(demo, &id, "ACTIVE").await;
    let path = format!("/servers/{id}");
    let v = c.ok_at("2.98", Method::GET, &path, demo, None).await;
    assert_eq!(
        v["server"]["image"]["properties"],
        json!({"hw_disk_bus": "virtio", "os_distro": "debian"})
    );
    let v = c
        .ok_at("2.98", Method::GET, "/servers/detail", demo, None)
        .await;
    let mine = v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str());
    assert_eq!(mine.unwrap()["image"]["properties"]["os_distro"], "debian");
    let (s, _) = c.nova(Method::DELETE, &path, demo, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// 2.99: `spice-direct` (unavailable here, as the other non-VNC types),
/// `tls_port` in console tokens, whose query is closed.
async fn spice_direct_and_token_queries_from_2_99(c: &Cloud, admin: &str, demo: &str, id: &str) {
    let path = format!("/servers/{id}/remote-consoles");
    let body = |t: &str| Some(json!({"remote_console": {"protocol": "spice", "type": t}}));
    let (s, v) = c
        .nova_at("2.98", Method::POST, &path, demo, body("spice-direct"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("is not one of"), "schema: {v}");
    let (s, v) = c
        .nova_at("2.99", Method::POST, &path, demo, body("spice-direct"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v.to_string()
            .contains("Unavailable console type spice-direct"),
        "{v}"
    );
    // The fake driver has no console: a token as the VNC console stores one.
    let token = ferrostack_compute::store::console_tokens::ConsoleToken {
        console_type: "novnc".into(),
        instance_id: id.to_owned(),
        host: "compute1".into(),
        target: serde_json::to_string(&ferrostack_hypervisor::ConsoleTarget::Tcp {
            host: "127.0.0.1".into(),
            port: 5901,
        })
        .unwrap(),
        access_url: "http://proxy/vnc_auto.html?token=t299".into(),
        expires_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 600,
    };
    ferrostack_compute::store::console_tokens::insert(&c.svc.db, "t299", &token)
        .await
        .unwrap();
    let tokens = "/os-console-auth-tokens/t299".to_owned();
    let old = c.ok_at("2.98", Method::GET, &tokens, admin, None).await;
    assert!(old["console"].get("tls_port").is_none());
    let new = c.ok_at("2.99", Method::GET, &tokens, admin, None).await;
    assert_eq!(new["console"]["tls_port"], Value::Null);
    assert_eq!(new["console"]["instance_uuid"], id);
    let odd = format!("{tokens}?odd=1");
    c.ok_at("2.98", Method::GET, &odd, admin, None).await;
    let (s, _) = c.nova_at("2.99", Method::GET, &odd, admin, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// 2.100: the scheduler hints given at create, each a list as Nova's
/// request spec keeps them; `{}` for a server created without.
async fn scheduler_hints_from_2_100(c: &Cloud, demo: &str, image: &str, net: &str) {
    let body = json!({"server": {"name": "hinted", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}]},
        "os:scheduler_hints": {"same_host": [], "query": "[\"=\", \"$free_ram_mb\", 1024]",
            "cidr": "/24", "build_near_host_ip": "10.0.0.1"}});
    let (id, _, _) = c.create_server(demo, body).await;
    c.wait_status(demo, &id, "ACTIVE").await;
    let path = format!("/servers/{id}");
    let v = c.ok_at("2.100", Method::GET, &path, demo, None).await;
    assert_eq!(
        v["server"]["scheduler_hints"],
        json!({"same_host": [], "query": ["[\"=\", \"$free_ram_mb\", 1024]"],
            "cidr": ["/24"], "build_near_host_ip": ["10.0.0.1"]})
    );
    let rebuild = Some(json!({"rebuild": {"imageRef": image}}));
    let v = c
        .ok_at(
            "2.100",
            Method::POST,
            &format!("{path}/action"),
            demo,
            rebuild,
        )
        .await;
    assert_eq!(v["server"]["scheduler_hints"]["cidr"], json!(["/24"]));
    c.wait_status(demo, &id, "ACTIVE").await;
    let v = c
        .ok_at("2.100", Method::GET, "/servers/detail", demo, None)
        .await;
    for s in v["servers"].as_array().unwrap() {
        let want = if s["id"] == id.as_str() { 4 } else { 0 };
        assert_eq!(
            s["scheduler_hints"].as_object().map(|h| h.len()),
            Some(want),
            "{s}"
        );
    }
}

/// `POST /servers` at `version`.
async fn create_at(c: &Cloud, version: &str, tok: &str, body: Value) -> (StatusCode, Value) {
    c.nova_at(version, Method::POST, "/servers", tok, Some(body))
        .await
}
