//! The request schemas and views Nova changed from 2.32 on, each checked
//! at the versions on either side of its change.

use super::*;

/// Every change from 2.32 to the maximum, in version order.
pub(super) async fn walk(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "tagged", &image, &net).await;
    c.wait_status(&demo, &id, "ACTIVE").await;

    device_tags_2_32_and_2_42(c, &demo, &image, &net).await;
    networks_required_from_2_37(c, &demo, &image, &net).await;
    status_filter_from_2_38(c, &demo).await;
    hypervisor_pages_from_2_33(c, &admin).await;
    live_migration_checks_after_the_answer_from_2_34(c, &admin, &id).await;
    key_pair_pages_from_2_35(c, &demo).await;
    proxies_and_network_quotas_gone_from_2_36(c, &admin, &demo).await;
    usage_pages_from_2_40(c, &admin, &id).await;
    aggregate_uuid_from_2_41(c, &admin).await;
    floating_ip_actions_gone_from_2_44(c, &demo, &id).await;
    create_image_answers_the_id_from_2_45(c, &demo, &id).await;
    embedded_flavor_from_2_47(c, &admin, &demo, &id).await;
    standard_diagnostics_from_2_48(c, &admin, &id).await;
    interface_tags_from_2_49(c, &demo, &id, &net).await;
    quota_classes_from_2_50(c, &admin).await;
    action_events_for_everyone_from_2_51(c, &demo, &id).await;
    tags_at_create_from_2_52(c, &demo, &image, &net).await;
    services_by_uuid_from_2_53(c, &admin).await;
    hypervisors_by_uuid_from_2_53(c, &admin, &id).await;
    key_name_at_rebuild_from_2_54(c, &demo, &id, &image).await;
    flavor_description_from_2_55(c, &admin).await;
    migrate_to_a_host_from_2_56(c, &admin, &id).await;
    user_data_at_rebuild_and_no_personality_from_2_57(c, &admin, &demo, &id, &image, &net).await;
    instance_action_pages_from_2_58(c, &demo, &id).await;
    migration_pages_from_2_59(c, &admin, &id).await;
    // 2.60 (multiattach) has nothing to show here: the volume service
    // makes no multiattach volume (crates/compute/tests/volumes.rs checks
    // the gate with its fake volume service).
    flavor_extra_specs_from_2_61(c, &admin, &demo).await;
    event_hosts_from_2_62(c, &admin, &demo, &id).await;
    trusted_certificates_from_2_63(c, &demo, &image, &net).await;
    server_group_policy_and_rules_from_2_64(c, &demo, &image, &net).await;
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

/// 2.32 added device tags to networks and block devices; 2.33–2.41 lost
/// them; 2.42 brought them back. A tag has no `/` or `,`.
async fn device_tags_2_32_and_2_42(c: &Cloud, demo: &str, image: &str, net: &str) {
    let tagged = json!({"name": "t", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net, "tag": "nic1"}]});
    for (version, want) in [
        ("2.31", StatusCode::BAD_REQUEST),
        ("2.32", StatusCode::ACCEPTED),
        ("2.33", StatusCode::BAD_REQUEST),
        ("2.41", StatusCode::BAD_REQUEST),
        ("2.42", StatusCode::ACCEPTED),
    ] {
        let (s, v) = create_at(c, version, demo, tagged.clone()).await;
        assert_eq!(s, want, "network tag at {version}: {v}");
        if s == StatusCode::ACCEPTED {
            let id = v["server"]["id"].as_str().unwrap();
            c.wait_status(demo, id, "ACTIVE").await;
            let (s, _) = c
                .nova(Method::DELETE, &format!("/servers/{id}"), demo, None)
                .await;
            assert_eq!(s, StatusCode::NO_CONTENT);
        }
    }
    let bad = json!({"name": "t", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net, "tag": "a/b"}]});
    let (s, v) = create_at(c, "2.42", demo, bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let bdm = json!({"name": "t", "imageRef": image, "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [{"source_type": "image", "destination_type": "local",
            "uuid": image, "boot_index": 0, "tag": "root"}]});
    let (s, v) = create_at(c, "2.41", demo, bdm).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a block device tag at 2.41: {v}"
    );
}

/// 2.37: `networks` is required, `auto` and `none` are allowed, a
/// network's `uuid` must be a UUID.
async fn networks_required_from_2_37(c: &Cloud, demo: &str, image: &str, net: &str) {
    let bare = json!({"name": "n", "imageRef": image, "flavorRef": "1"});
    let (s, v) = create_at(c, "2.37", demo, bare).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("'networks' is a required property"));
    let none = json!({"name": "n", "imageRef": image, "flavorRef": "1", "networks": "none"});
    let (s, v) = create_at(c, "2.36", demo, none.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a keyword before 2.37: {v}");
    let (s, v) = create_at(c, "2.37", demo, none).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_owned();
    let shown = c.wait_status(demo, &id, "ACTIVE").await;
    assert_eq!(shown["addresses"], json!({}), "no network");
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let short = json!({"name": "n", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": &net[..8]}]});
    let (s, v) = create_at(c, "2.37", demo, short).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let extra = json!({"name": "n", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net, "color": "red"}]});
    let (s, v) = create_at(c, "2.1", demo, extra).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an unknown network field: {v}");
}

/// 2.38: an unknown `status` filter is a 400, not an empty list.
async fn status_filter_from_2_38(c: &Cloud, demo: &str) {
    let path = "/servers?status=SLEEPING";
    let v = c.ok_at("2.37", Method::GET, path, demo, None).await;
    assert_eq!(v["servers"], json!([]));
    let (s, v) = c.nova_at("2.38", Method::GET, path, demo, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let v = c
        .ok_at("2.38", Method::GET, "/servers?status=active", demo, None)
        .await;
    assert!(!v["servers"].as_array().unwrap().is_empty());
}

/// 2.33: hypervisor lists page (`limit`, `marker`, `hypervisors_links`).
async fn hypervisor_pages_from_2_33(c: &Cloud, admin: &str) {
    for path in ["/os-hypervisors", "/os-hypervisors/detail"] {
        let paged = format!("{path}?limit=1");
        let v = c.ok_at("2.32", Method::GET, &paged, admin, None).await;
        assert!(v.get("hypervisors_links").is_none(), "before 2.33");
        let v = c.ok_at("2.33", Method::GET, &paged, admin, None).await;
        assert_eq!(v["hypervisors"].as_array().unwrap().len(), 1);
        let next = v["hypervisors_links"][0]["href"].as_str().unwrap();
        let id = v["hypervisors"][0]["id"].to_string();
        assert!(next.ends_with(&format!("limit=1&marker={id}")), "{next}");
        let after = format!("{path}?marker={id}");
        let v = c.ok_at("2.33", Method::GET, &after, admin, None).await;
        assert_eq!(v["hypervisors"], json!([]), "one hypervisor here");
        let (s, _) = c
            .nova_at(
                "2.33",
                Method::GET,
                &format!("{path}?marker=999"),
                admin,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = c
            .nova_at(
                "2.33",
                Method::GET,
                &format!("{path}?limit=-1"),
                admin,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}

/// 2.34: a live migration no host can take is accepted, then fails (a
/// failed instance action, an `error` migration); the server runs on.
async fn live_migration_checks_after_the_answer_from_2_34(c: &Cloud, admin: &str, id: &str) {
    let path = format!("/servers/{id}/action");
    let body = json!({"os-migrateLive": {"host": null, "block_migration": "auto"}});
    let (s, v) = c
        .nova_at("2.33", Method::POST, &path, admin, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = c
        .nova_at("2.34", Method::POST, &path, admin, Some(body))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.wait_status(admin, id, "ACTIVE").await;
    let actions = c
        .ok(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            admin,
            None,
        )
        .await;
    let live = actions["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "live-migration")
        .expect("a live-migration action")
        .clone();
    let req = live["request_id"].as_str().unwrap();
    let shown = c
        .ok(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions/{req}"),
            admin,
            None,
        )
        .await;
    assert_eq!(shown["instanceAction"]["events"][0]["result"], "Error");
    let migrations = c
        .ok_at("2.23", Method::GET, "/os-migrations", admin, None)
        .await;
    assert!(migrations["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["instance_uuid"] == id
            && m["migration_type"] == "live-migration"
            && m["status"] == "error"));
}

/// 2.35: key pair lists page by name.
async fn key_pair_pages_from_2_35(c: &Cloud, demo: &str) {
    for name in ["kp-b", "kp-a"] {
        c.ok_at(
            "2.35",
            Method::POST,
            "/os-keypairs",
            demo,
            Some(json!({"keypair": {"name": name}})),
        )
        .await;
    }
    let v = c
        .ok_at("2.34", Method::GET, "/os-keypairs?limit=1", demo, None)
        .await;
    assert_eq!(
        v["keypairs"].as_array().unwrap().len(),
        2,
        "no paging before 2.35"
    );
    let v = c
        .ok_at("2.35", Method::GET, "/os-keypairs?limit=1", demo, None)
        .await;
    assert_eq!(v["keypairs"].as_array().unwrap().len(), 1);
    assert_eq!(v["keypairs"][0]["keypair"]["name"], "kp-a");
    assert!(v["keypairs_links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with("marker=kp-a"));
    let v = c
        .ok_at("2.35", Method::GET, "/os-keypairs?marker=kp-a", demo, None)
        .await;
    assert_eq!(v["keypairs"][0]["keypair"]["name"], "kp-b");
    assert_eq!(v["keypairs"].as_array().unwrap().len(), 1);
    let (s, _) = c
        .nova_at("2.35", Method::GET, "/os-keypairs?marker=nope", demo, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// 2.36: the image, network and volume proxies answer 404 and the
/// nova-network quotas and limits are gone; 2.39 drops `maxImageMeta`;
/// 2.43 removes `os-hosts`; quota classes trade the network quotas for
/// the server group ones at 2.50.
async fn proxies_and_network_quotas_gone_from_2_36(c: &Cloud, admin: &str, demo: &str) {
    for path in [
        "/images",
        "/os-networks",
        "/os-tenant-networks",
        "/os-floating-ips",
        "/os-floating-ip-pools",
        "/os-security-groups",
        "/os-volumes",
        "/os-snapshots",
    ] {
        // (No volume service runs here: its proxies answer 503 before 2.36.)
        let (s, v) = c.nova_at("2.35", Method::GET, path, demo, None).await;
        assert_ne!(s, StatusCode::NOT_FOUND, "{path} at 2.35: {v}");
        let (s, v) = c.nova_at("2.36", Method::GET, path, demo, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path} at 2.36: {v}");
        assert_eq!(v["itemNotFound"]["code"], 404);
    }
    let (s, _) = c
        .nova_at("2.42", Method::GET, "/os-hosts", admin, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = c
        .nova_at("2.43", Method::GET, "/os-hosts", admin, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let limits = |v: &Value| v["limits"]["absolute"].clone();
    let old = limits(&c.ok_at("2.35", Method::GET, "/limits", demo, None).await);
    let mid = limits(&c.ok_at("2.36", Method::GET, "/limits", demo, None).await);
    let new = limits(&c.ok_at("2.39", Method::GET, "/limits", demo, None).await);
    for key in [
        "maxSecurityGroups",
        "maxTotalFloatingIps",
        "totalFloatingIpsUsed",
    ] {
        assert!(old.get(key).is_some() && mid.get(key).is_none(), "{key}");
    }
    assert!(mid.get("maxImageMeta").is_some() && new.get("maxImageMeta").is_none());
    assert!(new.get("maxTotalInstances").is_some());

    let path = "/os-quota-sets/demo";
    let old = c.ok_at("2.35", Method::GET, path, admin, None).await;
    let new = c.ok_at("2.36", Method::GET, path, admin, None).await;
    assert!(old["quota_set"].get("floating_ips").is_some());
    assert!(new["quota_set"].get("floating_ips").is_none());
    assert!(new["quota_set"].get("security_group_rules").is_none());
    assert!(new["quota_set"].get("server_groups").is_some());
    let change = Some(json!({"quota_set": {"floating_ips": 5}}));
    let (s, v) = c.nova_at("2.36", Method::PUT, path, admin, change).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let detail = c
        .ok_at("2.36", Method::GET, &format!("{path}/detail"), admin, None)
        .await;
    assert!(detail["quota_set"].get("security_groups").is_none());

    let class = c
        .ok_at(
            "2.1",
            Method::GET,
            "/os-quota-class-sets/default",
            admin,
            None,
        )
        .await;
    assert!(class["quota_class_set"].get("server_groups").is_none());
    assert!(class["quota_class_set"].get("floating_ips").is_some());
}

/// 2.40: usage reports page by server.
async fn usage_pages_from_2_40(c: &Cloud, admin: &str, id: &str) {
    let server = c
        .ok(Method::GET, &format!("/servers/{id}"), admin, None)
        .await;
    let project = server["server"]["tenant_id"].as_str().unwrap().to_owned();
    let start = "start=2000-01-01T00:00:00";
    let path = format!("/os-simple-tenant-usage?{start}&limit=1");
    let v = c.ok_at("2.39", Method::GET, &path, admin, None).await;
    assert!(v.get("tenant_usages_links").is_none());
    let v = c.ok_at("2.40", Method::GET, &path, admin, None).await;
    assert_eq!(v["tenant_usages"].as_array().unwrap().len(), 1);
    let next = v["tenant_usages_links"][0]["href"].as_str().unwrap();
    assert!(next.contains("marker="), "{next}");
    let show = format!("/os-simple-tenant-usage/{project}?{start}&limit=1");
    let v = c.ok_at("2.40", Method::GET, &show, admin, None).await;
    assert_eq!(
        v["tenant_usage"]["server_usages"].as_array().unwrap().len(),
        1
    );
    assert!(v["tenant_usage_links"][0]["href"].as_str().is_some());
    let (s, _) = c
        .nova_at(
            "2.40",
            Method::GET,
            &format!("{show}&marker=nope"),
            admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// 2.41: aggregates show their `uuid`.
async fn aggregate_uuid_from_2_41(c: &Cloud, admin: &str) {
    let body = Some(json!({"aggregate": {"name": "agg-uuid"}}));
    let made = c
        .ok_at("2.41", Method::POST, "/os-aggregates", admin, body)
        .await;
    let uuid = made["aggregate"]["uuid"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::try_parse(&uuid).is_ok(), "{uuid}");
    let path = format!("/os-aggregates/{}", made["aggregate"]["id"]);
    let shown = c.ok_at("2.41", Method::GET, &path, admin, None).await;
    assert_eq!(shown["aggregate"]["uuid"], uuid.as_str());
    let old = c.ok_at("2.40", Method::GET, &path, admin, None).await;
    assert!(old["aggregate"].get("uuid").is_none());
    let listed = c
        .ok_at("2.41", Method::GET, "/os-aggregates", admin, None)
        .await;
    assert_eq!(listed["aggregates"][0]["uuid"], uuid.as_str());
}

/// 2.44: `addFloatingIp` / `removeFloatingIp` are gone (404).
async fn floating_ip_actions_gone_from_2_44(c: &Cloud, demo: &str, id: &str) {
    let path = format!("/servers/{id}/action");
    let body = json!({"addFloatingIp": {"address": "172.24.4.99"}});
    // Before 2.44 the action runs and finds no such floating IP.
    let (_, old) = c
        .nova_at("2.43", Method::POST, &path, demo, Some(body.clone()))
        .await;
    let (s, new) = c
        .nova_at("2.44", Method::POST, &path, demo, Some(body))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        new["itemNotFound"]["message"],
        "The resource could not be found."
    );
    assert_ne!(old, new, "served before 2.44: {old}");
}

/// 2.45: createImage answers `{"image_id"}` and no `Location`.
async fn create_image_answers_the_id_from_2_45(c: &Cloud, demo: &str, id: &str) {
    let url = format!("{}/v2.1/servers/{id}/action", c.compute);
    let resp = c
        .http
        .post(url)
        .header("x-auth-token", demo)
        .header("openstack-api-version", "compute 2.45")
        .json(&json!({"createImage": {"name": "snap-2.45"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.headers().get("location").is_none());
    let v: Value = resp.json().await.unwrap();
    let image = v["image_id"].as_str().unwrap();
    assert!(uuid::Uuid::try_parse(image).is_ok(), "{v}");
    // The snapshot is uploaded once the server has no task left.
    wait_idle(c, demo, id).await;
}

/// Wait for the server to be ACTIVE with no task (an action finished).
async fn wait_idle(c: &Cloud, tok: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.wait_status(tok, id, "ACTIVE").await;
        if s["OS-EXT-STS:task_state"].is_null() {
            return s;
        }
        assert!(Instant::now() < deadline, "still busy: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 2.47: the server's flavor is embedded (its sizes and extra specs as
/// the server got them) instead of linked.
async fn embedded_flavor_from_2_47(c: &Cloud, admin: &str, demo: &str, id: &str) {
    let path = format!("/servers/{id}");
    let old = c.ok_at("2.46", Method::GET, &path, demo, None).await;
    assert_eq!(old["server"]["flavor"]["id"], "1");
    let new = c.ok_at("2.47", Method::GET, &path, demo, None).await;
    let f = &new["server"]["flavor"];
    assert!(f.get("id").is_none() && f.get("links").is_none(), "{f}");
    assert_eq!(f["original_name"], "m1.tiny");
    assert_eq!(
        (f["vcpus"].as_i64(), f["ram"].as_i64()),
        (Some(1), Some(512))
    );
    assert_eq!((f["disk"].as_i64(), f["swap"].as_i64()), (Some(1), Some(0)));
    assert_eq!(f["ephemeral"], 0);
    assert_eq!(f["extra_specs"], json!({}));
    let listed = c
        .ok_at(
            "2.47",
            Method::GET,
            "/servers/detail?all_tenants=1",
            admin,
            None,
        )
        .await;
    assert_eq!(listed["servers"][0]["flavor"]["original_name"], "m1.tiny");
    let renamed = c
        .ok_at(
            "2.47",
            Method::PUT,
            &path,
            demo,
            Some(json!({"server": {"name": "tagged"}})),
        )
        .await;
    assert_eq!(renamed["server"]["flavor"]["original_name"], "m1.tiny");
    // Update and rebuild answer the tags too (since 2.26).
    assert!(renamed["server"]["tags"].is_array(), "{renamed}");
}

/// 2.48: diagnostics in Nova's standard form.
async fn standard_diagnostics_from_2_48(c: &Cloud, admin: &str, id: &str) {
    let path = format!("/servers/{id}/diagnostics");
    let old = c.ok_at("2.47", Method::GET, &path, admin, None).await;
    assert!(old.get("memory").is_some());
    let d = c.ok_at("2.48", Method::GET, &path, admin, None).await;
    assert_eq!(d["state"], "running");
    assert_eq!(d["driver"], "libvirt");
    assert_eq!(d["num_cpus"], 1);
    assert_eq!(d["num_nics"], 1);
    assert_eq!(d["memory_details"]["maximum"], 512);
    assert_eq!(d["cpu_details"].as_array().unwrap().len(), 1);
    let nic = &d["nic_details"][0];
    assert!(nic["mac_address"].as_str().unwrap().contains(':'));
    assert_eq!(nic["rx_rate"], Value::Null);
    assert_eq!(d["disk_details"].as_array().unwrap().len(), 1);
    assert!(d["uptime"].as_i64().unwrap() >= 0);
}

/// 2.49: a tag on an attached interface (a device tag).
async fn interface_tags_from_2_49(c: &Cloud, demo: &str, id: &str, net: &str) {
    let path = format!("/servers/{id}/os-interface");
    let body = |tag: &str| Some(json!({"interfaceAttachment": {"net_id": net, "tag": tag}}));
    let (s, v) = c
        .nova_at("2.48", Method::POST, &path, demo, body("nic2"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = c
        .nova_at("2.49", Method::POST, &path, demo, body("a,b"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let v = c
        .ok_at("2.49", Method::POST, &path, demo, body("nic2"))
        .await;
    let port = v["interfaceAttachment"]["port_id"].as_str().unwrap();
    let (s, _) = c
        .nova(Method::DELETE, &format!("{path}/{port}"), demo, None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

/// 2.50: quota classes show the server group quotas, not the network ones.
async fn quota_classes_from_2_50(c: &Cloud, admin: &str) {
    let path = "/os-quota-class-sets/default";
    let old = c.ok_at("2.49", Method::GET, path, admin, None).await;
    let new = c.ok_at("2.50", Method::GET, path, admin, None).await;
    assert!(old["quota_class_set"].get("server_groups").is_none());
    assert!(old["quota_class_set"].get("floating_ips").is_some());
    assert!(new["quota_class_set"].get("server_group_members").is_some());
    assert!(new["quota_class_set"].get("floating_ips").is_none());
    let change = Some(json!({"quota_class_set": {"server_groups": 12}}));
    let (s, _) = c
        .nova_at("2.49", Method::PUT, path, admin, change.clone())
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v = c.ok_at("2.50", Method::PUT, path, admin, change).await;
    assert_eq!(v["quota_class_set"]["server_groups"], 12);
    let change = Some(json!({"quota_class_set": {"security_groups": 12}}));
    let (s, _) = c.nova_at("2.50", Method::PUT, path, admin, change).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// 2.51: an instance action's events are shown to its owner too (no
/// tracebacks; the events rule is admin's).
async fn action_events_for_everyone_from_2_51(c: &Cloud, demo: &str, id: &str) {
    let list = c
        .ok(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            demo,
            None,
        )
        .await;
    let create = list["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "create")
        .unwrap();
    let req = create["request_id"].as_str().unwrap();
    let path = format!("/servers/{id}/os-instance-actions/{req}");
    let old = c.ok_at("2.50", Method::GET, &path, demo, None).await;
    assert!(old["instanceAction"].get("events").is_none());
    let new = c.ok_at("2.51", Method::GET, &path, demo, None).await;
    let events = new["instanceAction"]["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{new}");
    assert!(events.iter().all(|e| e.get("traceback").is_none()));
}

/// 2.52: tags at create.
async fn tags_at_create_from_2_52(c: &Cloud, demo: &str, image: &str, net: &str) {
    let server = json!({"name": "t", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}], "tags": ["blue", "web"]});
    let (s, v) = create_at(c, "2.51", demo, server.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let mut bad = server.clone();
    bad["tags"] = json!(["a/b"]);
    let (s, v) = create_at(c, "2.52", demo, bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = create_at(c, "2.52", demo, server).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().unwrap();
    let shown = c
        .ok_at("2.52", Method::GET, &format!("/servers/{id}"), demo, None)
        .await;
    assert_eq!(shown["server"]["tags"], json!(["blue", "web"]));
    let listed = c
        .ok_at("2.52", Method::GET, "/servers?tags=blue,web", demo, None)
        .await;
    assert_eq!(listed["servers"][0]["id"], id);
    c.wait_status(demo, id, "ACTIVE").await;
}

/// 2.53: services are named by UUID, and updated by one at
/// `PUT /os-services/{uuid}` with what changes.
async fn services_by_uuid_from_2_53(c: &Cloud, admin: &str) {
    let old = c
        .ok_at(
            "2.52",
            Method::GET,
            "/os-services?binary=nova-compute",
            admin,
            None,
        )
        .await;
    assert!(old["services"][0]["id"].is_i64());
    let new = c
        .ok_at(
            "2.53",
            Method::GET,
            "/os-services?binary=nova-compute",
            admin,
            None,
        )
        .await;
    let uuid = new["services"][0]["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::try_parse(&uuid).is_ok());
    let path = format!("/os-services/{uuid}");
    let put = |body: Value| c.nova_at("2.53", Method::PUT, &path, admin, Some(body));
    let (s, v) = put(json!({"status": "disabled", "disabled_reason": "maintenance"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["service"]["status"], "disabled");
    assert_eq!(v["service"]["disabled_reason"], "maintenance");
    assert_eq!(v["service"]["id"], uuid.as_str());
    let (s, v) = put(json!({"status": "enabled"})).await;
    assert_eq!(
        (s, &v["service"]["status"]),
        (StatusCode::OK, &json!("enabled"))
    );
    assert_eq!(v["service"]["disabled_reason"], Value::Null);
    let (s, v) = put(json!({"forced_down": true})).await;
    assert_eq!(
        (s, &v["service"]["forced_down"]),
        (StatusCode::OK, &json!(true))
    );
    let (s, v) = put(json!({"forced_down": false})).await;
    assert_eq!((s, &v["service"]["state"]), (StatusCode::OK, &json!("up")));
    for bad in [
        json!({}),
        json!({"status": "enabled", "disabled_reason": "x"}),
        json!({"status": "sleeping"}),
        json!({"host": "compute1", "binary": "nova-compute"}),
    ] {
        let (s, v) = put(bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let body = Some(json!({"host": "compute1", "binary": "nova-compute"}));
    let (s, _) = c
        .nova_at("2.53", Method::PUT, "/os-services/disable", admin, body)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no action paths from 2.53");
    let other = format!("/os-services/{}", uuid::Uuid::new_v4());
    let (s, _) = c
        .nova_at(
            "2.53",
            Method::PUT,
            &other,
            admin,
            Some(json!({"forced_down": false})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c.nova_at("2.53", Method::DELETE, &other, admin, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c
        .nova_at("2.53", Method::DELETE, "/os-services/1", admin, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// 2.53: hypervisors are named by UUID; the list filters by hostname and
/// shows servers (`/search` and `/servers` are gone).
async fn hypervisors_by_uuid_from_2_53(c: &Cloud, admin: &str, server: &str) {
    let old = c
        .ok_at("2.52", Method::GET, "/os-hypervisors", admin, None)
        .await;
    let number = old["hypervisors"][0]["id"].clone();
    let name = old["hypervisors"][0]["hypervisor_hostname"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(number.is_i64());
    let new = c
        .ok_at("2.53", Method::GET, "/os-hypervisors/detail", admin, None)
        .await;
    let h = &new["hypervisors"][0];
    let uuid = h["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::try_parse(&uuid).is_ok());
    assert!(uuid::Uuid::try_parse(h["service"]["id"].as_str().unwrap()).is_ok());
    let show = format!("/os-hypervisors/{uuid}?with_servers=true");
    let v = c.ok_at("2.53", Method::GET, &show, admin, None).await;
    let servers = v["hypervisor"]["servers"].as_array().unwrap();
    assert!(servers.iter().any(|s| s["uuid"] == server), "{v}");
    let (s, _) = c
        .nova_at(
            "2.53",
            Method::GET,
            &format!("/os-hypervisors/{number}"),
            admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let uptime = format!("/os-hypervisors/{uuid}/uptime");
    let v = c.ok_at("2.53", Method::GET, &uptime, admin, None).await;
    assert_eq!(v["hypervisor"]["id"], uuid.as_str());
    let pattern = format!(
        "/os-hypervisors?hypervisor_hostname_pattern={}&with_servers=1",
        &name[..name.len() - 1]
    );
    let v = c.ok_at("2.53", Method::GET, &pattern, admin, None).await;
    assert_eq!(v["hypervisors"][0]["id"], uuid.as_str());
    assert!(v["hypervisors"][0]["servers"].is_array());
    let (s, _) = c
        .nova_at(
            "2.53",
            Method::GET,
            "/os-hypervisors?hypervisor_hostname_pattern=nowhere",
            admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c
        .nova_at(
            "2.53",
            Method::GET,
            &format!("{pattern}&limit=1"),
            admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let search = format!("/os-hypervisors/{name}/search");
    let (s, _) = c.nova_at("2.52", Method::GET, &search, admin, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = c.nova_at("2.53", Method::GET, &search, admin, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let paged = c
        .ok_at("2.53", Method::GET, "/os-hypervisors?limit=1", admin, None)
        .await;
    let next = paged["hypervisors_links"][0]["href"].as_str().unwrap();
    assert!(next.ends_with(&format!("marker={uuid}")), "{next}");
}

async fn rebuild_at(
    c: &Cloud,
    version: &str,
    tok: &str,
    id: &str,
    rebuild: Value,
) -> (StatusCode, Value) {
    let path = format!("/servers/{id}/action");
    c.nova_at(
        version,
        Method::POST,
        &path,
        tok,
        Some(json!({ "rebuild": rebuild })),
    )
    .await
}

/// 2.54: rebuild sets (or, with `null`, removes) the key pair; its answer
/// shows `key_name`.
async fn key_name_at_rebuild_from_2_54(c: &Cloud, demo: &str, id: &str, image: &str) {
    let (s, v) = rebuild_at(
        c,
        "2.53",
        demo,
        id,
        json!({"imageRef": image, "key_name": "kp-a"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = rebuild_at(
        c,
        "2.54",
        demo,
        id,
        json!({"imageRef": image, "key_name": "nope"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = rebuild_at(
        c,
        "2.54",
        demo,
        id,
        json!({"imageRef": image, "key_name": "kp-a"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["server"]["key_name"], "kp-a");
    let shown = wait_idle(c, demo, id).await;
    assert_eq!(shown["key_name"], "kp-a");
    let (s, v) = rebuild_at(
        c,
        "2.54",
        demo,
        id,
        json!({"imageRef": image, "key_name": null}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["server"]["key_name"], Value::Null);
    let shown = wait_idle(c, demo, id).await;
    assert_eq!(shown["key_name"], Value::Null);
    let (s, v) = rebuild_at(c, "2.53", demo, id, json!({"imageRef": image})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert!(v["server"].get("key_name").is_none());
    wait_idle(c, demo, id).await;
}

/// 2.55: flavors have a description (at create, in every view, and the
/// one thing `PUT /flavors/{id}` changes).
async fn flavor_description_from_2_55(c: &Cloud, admin: &str) {
    let body = |d: &str| {
        Some(
            json!({"flavor": {"name": format!("described-{d}"), "ram": 64,
        "vcpus": 1, "disk": 1, "description": d}}),
        )
    };
    let (s, v) = c
        .nova_at("2.54", Method::POST, "/flavors", admin, body("a"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let made = c
        .ok_at("2.55", Method::POST, "/flavors", admin, body("small"))
        .await;
    assert_eq!(made["flavor"]["description"], "small");
    let id = made["flavor"]["id"].as_str().unwrap().to_owned();
    let path = format!("/flavors/{id}");
    let change = Some(json!({"flavor": {"description": "tiny"}}));
    let (s, _) = c
        .nova_at("2.54", Method::PUT, &path, admin, change.clone())
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let v = c.ok_at("2.55", Method::PUT, &path, admin, change).await;
    assert_eq!(v["flavor"]["description"], "tiny");
    let (s, _) = c
        .nova_at(
            "2.55",
            Method::PUT,
            &path,
            admin,
            Some(json!({"flavor": {"name": "x"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let old = c.ok_at("2.54", Method::GET, &path, admin, None).await;
    assert!(old["flavor"].get("description").is_none());
    let listed = c.ok_at("2.55", Method::GET, "/flavors", admin, None).await;
    let mine = listed["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["description"], "tiny");
    let detail = c
        .ok_at("2.55", Method::GET, "/flavors/detail", admin, None)
        .await;
    assert!(detail["flavors"][0].get("description").is_some());
}

/// 2.56: a cold migration may name its host (before, a host is ignored).
async fn migrate_to_a_host_from_2_56(c: &Cloud, admin: &str, id: &str) {
    let path = format!("/servers/{id}/action");
    let body = Some(json!({"migrate": {"host": "nowhere"}}));
    let (s, old) = c
        .nova_at("2.55", Method::POST, &path, admin, body.clone())
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        old["badRequest"]["message"]
            .as_str()
            .unwrap()
            .starts_with("No valid host"),
        "{old}"
    );
    let (s, new) = c.nova_at("2.56", Method::POST, &path, admin, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        new["badRequest"]["message"],
        "Compute host nowhere could not be found."
    );
}

/// 2.57: rebuild sets `user_data` (and answers it); `personality` is
/// refused at create and rebuild; the file injection quotas and limits go.
async fn user_data_at_rebuild_and_no_personality_from_2_57(
    c: &Cloud,
    admin: &str,
    demo: &str,
    id: &str,
    image: &str,
    net: &str,
) {
    let data = "ZWNobyBoaQ==";
    let (s, v) = rebuild_at(
        c,
        "2.56",
        demo,
        id,
        json!({"imageRef": image, "user_data": data}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let files = json!([{"path": "/etc/motd", "contents": "aGk="}]);
    let (s, v) = rebuild_at(
        c,
        "2.57",
        demo,
        id,
        json!({"imageRef": image, "personality": files}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = rebuild_at(
        c,
        "2.57",
        demo,
        id,
        json!({"imageRef": image, "user_data": "not base64!"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = rebuild_at(
        c,
        "2.57",
        demo,
        id,
        json!({"imageRef": image, "user_data": data}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["server"]["user_data"], data);
    wait_idle(c, demo, id).await;
    let shown = c
        .ok_at("2.57", Method::GET, &format!("/servers/{id}"), admin, None)
        .await;
    assert_eq!(shown["server"]["OS-EXT-SRV-ATTR:user_data"], data);
    let server = json!({"name": "p", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}], "personality": files});
    let (s, v) = create_at(c, "2.57", demo, server).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let limits = c.ok_at("2.57", Method::GET, "/limits", demo, None).await;
    assert!(limits["limits"]["absolute"].get("maxPersonality").is_none());
    let old = c.ok_at("2.56", Method::GET, "/limits", demo, None).await;
    assert!(old["limits"]["absolute"]
        .get("maxPersonalitySize")
        .is_some());
    let q = c
        .ok_at("2.57", Method::GET, "/os-quota-sets/demo", admin, None)
        .await;
    assert!(q["quota_set"].get("injected_files").is_none());
    assert!(q["quota_set"].get("instances").is_some());
    let change = Some(json!({"quota_set": {"injected_files": 3}}));
    let (s, _) = c
        .nova_at("2.57", Method::PUT, "/os-quota-sets/demo", admin, change)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let class = c
        .ok_at(
            "2.57",
            Method::GET,
            "/os-quota-class-sets/default",
            admin,
            None,
        )
        .await;
    assert!(class["quota_class_set"]
        .get("injected_file_path_bytes")
        .is_none());
}

/// 2.58: instance actions show `updated_at`, page by request id and filter
/// on `changes-since`.
async fn instance_action_pages_from_2_58(c: &Cloud, demo: &str, id: &str) {
    let path = format!("/servers/{id}/os-instance-actions");
    let all = c.ok_at("2.58", Method::GET, &path, demo, None).await;
    let actions = all["instanceActions"].as_array().unwrap().clone();
    assert!(actions.len() > 3, "{all}");
    assert!(actions.iter().all(|a| a["updated_at"].is_string()));
    let old = c
        .ok_at("2.57", Method::GET, &format!("{path}?limit=1"), demo, None)
        .await;
    assert_eq!(
        old["instanceActions"].as_array().unwrap().len(),
        actions.len()
    );
    assert!(old["instanceActions"][0].get("updated_at").is_none());
    let page = c
        .ok_at("2.58", Method::GET, &format!("{path}?limit=2"), demo, None)
        .await;
    assert_eq!(page["instanceActions"].as_array().unwrap(), &actions[..2]);
    let marker = actions[1]["request_id"].as_str().unwrap();
    assert!(page["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(&format!("marker={marker}")));
    let next = c
        .ok_at(
            "2.58",
            Method::GET,
            &format!("{path}?marker={marker}"),
            demo,
            None,
        )
        .await;
    assert_eq!(next["instanceActions"].as_array().unwrap(), &actions[2..]);
    let (s, v) = c
        .nova_at(
            "2.58",
            Method::GET,
            &format!("{path}?marker=nope"),
            demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let future = c
        .ok_at(
            "2.58",
            Method::GET,
            &format!("{path}?changes-since=2999-01-01T00:00:00Z"),
            demo,
            None,
        )
        .await;
    assert_eq!(future["instanceActions"], json!([]));
    let (s, _) = c
        .nova_at(
            "2.58",
            Method::GET,
            &format!("{path}?changes-since=yesterday"),
            demo,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let req = actions[0]["request_id"].as_str().unwrap();
    let shown = c
        .ok_at("2.58", Method::GET, &format!("{path}/{req}"), demo, None)
        .await;
    assert_eq!(
        shown["instanceAction"]["updated_at"],
        actions[0]["updated_at"]
    );
}

/// 2.59: migrations show a `uuid`, page by it (newest first) and filter on
/// `changes-since`.
async fn migration_pages_from_2_59(c: &Cloud, admin: &str, id: &str) {
    let all = c
        .ok_at("2.59", Method::GET, "/os-migrations", admin, None)
        .await;
    let list = all["migrations"].as_array().unwrap().clone();
    assert!(!list.is_empty());
    assert!(list
        .iter()
        .all(|m| uuid::Uuid::try_parse(m["uuid"].as_str().unwrap()).is_ok()));
    assert!(list.iter().any(|m| m["instance_uuid"] == id));
    let old = c
        .ok_at("2.58", Method::GET, "/os-migrations", admin, None)
        .await;
    assert!(old["migrations"][0].get("uuid").is_none());
    let page = c
        .ok_at("2.59", Method::GET, "/os-migrations?limit=1", admin, None)
        .await;
    assert_eq!(page["migrations"][0], list[0]);
    let marker = list[0]["uuid"].as_str().unwrap();
    assert!(page["migrations_links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(marker));
    let rest = c
        .ok_at(
            "2.59",
            Method::GET,
            &format!("/os-migrations?marker={marker}"),
            admin,
            None,
        )
        .await;
    assert_eq!(rest["migrations"].as_array().unwrap(), &list[1..]);
    let (s, _) = c
        .nova_at(
            "2.59",
            Method::GET,
            "/os-migrations?marker=nope",
            admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let none = c
        .ok_at(
            "2.59",
            Method::GET,
            "/os-migrations?changes-since=2999-01-01T00:00:00Z",
            admin,
            None,
        )
        .await;
    assert_eq!(none["migrations"], json!([]));
}

/// 2.61: a flavor's detail views carry its extra specs.
async fn flavor_extra_specs_from_2_61(c: &Cloud, admin: &str, demo: &str) {
    let specs = Some(json!({"extra_specs": {"hw:cpu_policy": "shared"}}));
    c.ok(Method::POST, "/flavors/2/os-extra_specs", admin, specs)
        .await;
    let old = c.ok_at("2.60", Method::GET, "/flavors/2", demo, None).await;
    assert!(old["flavor"].get("extra_specs").is_none());
    let new = c.ok_at("2.61", Method::GET, "/flavors/2", demo, None).await;
    assert_eq!(
        new["flavor"]["extra_specs"],
        json!({"hw:cpu_policy": "shared"})
    );
    let detail = c
        .ok_at("2.61", Method::GET, "/flavors/detail", demo, None)
        .await;
    assert!(detail["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["extra_specs"].is_object()));
    let brief = c.ok_at("2.61", Method::GET, "/flavors", demo, None).await;
    assert!(brief["flavors"][0].get("extra_specs").is_none());
}

/// 2.62: an action's events name their host (to admins) and its hash.
async fn event_hosts_from_2_62(c: &Cloud, admin: &str, demo: &str, id: &str) {
    let list = c
        .ok(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            demo,
            None,
        )
        .await;
    let create = list["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "create")
        .unwrap()
        .clone();
    let path = format!(
        "/servers/{id}/os-instance-actions/{}",
        create["request_id"].as_str().unwrap()
    );
    let old = c.ok_at("2.61", Method::GET, &path, admin, None).await;
    assert!(old["instanceAction"]["events"][0].get("hostId").is_none());
    let mine = c.ok_at("2.62", Method::GET, &path, demo, None).await;
    let e = &mine["instanceAction"]["events"][0];
    assert_eq!(e["hostId"].as_str().unwrap().len(), 56, "{e}");
    assert!(e.get("host").is_none());
    let all = c.ok_at("2.62", Method::GET, &path, admin, None).await;
    let e = &all["instanceAction"]["events"][0];
    assert_eq!(e["host"], "compute1");
    let server = c
        .ok_at("2.62", Method::GET, &format!("/servers/{id}"), demo, None)
        .await;
    assert_eq!(e["hostId"], server["server"]["hostId"]);
}

/// 2.63: trusted image certificates at create and rebuild, shown in the
/// views (not for volume-backed servers).
async fn trusted_certificates_from_2_63(c: &Cloud, demo: &str, image: &str, net: &str) {
    let server = json!({"name": "signed", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}], "trusted_image_certificates": ["cert-a", "cert-b"]});
    let (s, v) = create_at(c, "2.62", demo, server.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let mut twice = server.clone();
    twice["trusted_image_certificates"] = json!(["cert-a", "cert-a"]);
    let (s, v) = create_at(c, "2.63", demo, twice).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let mut volume_backed = server.clone();
    volume_backed.as_object_mut().unwrap().remove("imageRef");
    volume_backed["block_device_mapping_v2"] = json!([{"source_type": "volume",
        "destination_type": "volume", "uuid": uuid::Uuid::new_v4().to_string(), "boot_index": 0}]);
    let (s, v) = create_at(c, "2.63", demo, volume_backed).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("volume-backed"));
    let (s, v) = create_at(c, "2.63", demo, server).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_owned();
    wait_idle(c, demo, &id).await;
    let path = format!("/servers/{id}");
    let shown = c.ok_at("2.63", Method::GET, &path, demo, None).await;
    assert_eq!(
        shown["server"]["trusted_image_certificates"],
        json!(["cert-a", "cert-b"])
    );
    let old = c.ok_at("2.62", Method::GET, &path, demo, None).await;
    assert!(old["server"].get("trusted_image_certificates").is_none());
    let (s, v) = rebuild_at(
        c,
        "2.62",
        demo,
        &id,
        json!({"imageRef": image, "trusted_image_certificates": null}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = rebuild_at(
        c,
        "2.63",
        demo,
        &id,
        json!({"imageRef": image, "trusted_image_certificates": null}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["server"]["trusted_image_certificates"], Value::Null);
    wait_idle(c, demo, &id).await;
    let listed = c
        .ok_at(
            "2.63",
            Method::GET,
            "/servers/detail?name=signed",
            demo,
            None,
        )
        .await;
    assert_eq!(
        listed["servers"][0]["trusted_image_certificates"],
        Value::Null
    );
}

/// 2.64: a server group has one `policy` and `rules`; anti-affinity's
/// `max_server_per_host` lets that many members share a host (the
/// scheduler holds to it: here one host, so the next member fails).
async fn server_group_policy_and_rules_from_2_64(c: &Cloud, demo: &str, image: &str, net: &str) {
    let create = |version: &'static str, group: Value| {
        c.nova_at(
            version,
            Method::POST,
            "/os-server-groups",
            demo,
            Some(json!({ "server_group": group })),
        )
    };
    let (s, v) = create("2.63", json!({"name": "g", "policy": "anti-affinity"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = create("2.64", json!({"name": "g", "policies": ["anti-affinity"]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let rules = json!({"max_server_per_host": 2});
    let (s, v) = create(
        "2.64",
        json!({"name": "g", "policy": "affinity", "rules": rules}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = create(
        "2.64",
        json!({"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = create(
        "2.64",
        json!({"name": "g", "policy": "anti-affinity", "rules": rules}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let g = &v["server_group"];
    assert_eq!(
        (&g["policy"], &g["rules"]),
        (&json!("anti-affinity"), &rules)
    );
    assert!(g.get("policies").is_none() && g.get("metadata").is_none());
    let id = g["id"].as_str().unwrap().to_owned();
    let old = c
        .ok_at(
            "2.63",
            Method::GET,
            &format!("/os-server-groups/{id}"),
            demo,
            None,
        )
        .await;
    assert_eq!(old["server_group"]["policies"], json!(["anti-affinity"]));
    let (s, v) = create("2.64", json!({"name": "plain", "policy": "soft-affinity"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["server_group"]["rules"], json!({}));

    let mut members = Vec::new();
    for n in 0..3 {
        let body = json!({"server": {"name": format!("member-{n}"), "imageRef": image,
            "flavorRef": "1", "networks": [{"uuid": net}]}, "os:scheduler_hints": {"group": id}});
        let (s, v) = c
            .nova_at("2.64", Method::POST, "/servers", demo, Some(body))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let member = v["server"]["id"].as_str().unwrap().to_owned();
        let want = if n < 2 { "ACTIVE" } else { "ERROR" };
        c.wait_status(demo, &member, want).await;
        members.push(member);
    }
    for m in members {
        let (s, _) = c
            .nova(Method::DELETE, &format!("/servers/{m}"), demo, None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
}
