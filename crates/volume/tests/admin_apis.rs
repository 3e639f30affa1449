//! The admin APIs: QoS specs and their type associations, quota classes,
//! service enable/disable/freeze, hosts, capabilities, extensions, volume
//! type encryption, and user messages for a volume no backend takes.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn qos_specs_crud_keys_and_type_associations() {
    let c = common::start("qos").await;
    let admin = c.user("admin", "admin").await;
    let demo = c.user("demo", "demo").await;
    let body =
        json!({"qos_specs": {"name": "fast", "consumer": "front-end", "read_iops_sec": "2000"}});
    let (st, q) = c
        .call(&admin, Method::POST, "/qos-specs", Some(body.clone()))
        .await;
    assert_eq!(st, StatusCode::OK, "{q}");
    let id = q["qos_specs"]["id"].as_str().unwrap().to_owned();
    assert_eq!(q["qos_specs"]["specs"], json!({"read_iops_sec": "2000"}));
    assert_eq!(q["qos_specs"]["consumer"], "front-end");
    assert!(q["links"][0]["href"].as_str().unwrap().ends_with(&id));
    // Same name: 409; bad consumer: 400; members may not: 403.
    let (st, _) = c.call(&admin, Method::POST, "/qos-specs", Some(body)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let bad = json!({"qos_specs": {"name": "x", "consumer": "middle"}});
    let (st, _) = c.call(&admin, Method::POST, "/qos-specs", Some(bad)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c.call(&demo, Method::GET, "/qos-specs", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, l) = c.call(&admin, Method::GET, "/qos-specs", None).await;
    assert_eq!(l["qos_specs"], json!([q["qos_specs"]]));

    // Keys: set answers what it set, unset removes, an unknown key is 404.
    let path = format!("/qos-specs/{id}");
    let (st, s) = c
        .call(
            &admin,
            Method::PUT,
            &path,
            Some(json!({"qos_specs": {"iops_bytes": "500"}})),
        )
        .await;
    assert_eq!(
        (st, s),
        (StatusCode::OK, json!({"qos_specs": {"iops_bytes": "500"}}))
    );
    let (_, s) = c.call(&admin, Method::GET, &path, None).await;
    assert_eq!(s["qos_specs"]["specs"]["iops_bytes"], "500");
    let unset = format!("{path}/delete_keys");
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            &unset,
            Some(json!({"keys": ["iops_bytes"]})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            &unset,
            Some(json!({"keys": ["iops_bytes"]})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Associations with types; a type carries one specs; in-use specs
    // need force to go.
    let (_, t) = c
        .call(
            &admin,
            Method::POST,
            "/types",
            Some(json!({"volume_type": {"name": "gold"}})),
        )
        .await;
    let gold = t["volume_type"]["id"].as_str().unwrap().to_owned();
    let (st, _) = c
        .call(
            &admin,
            Method::GET,
            &format!("{path}/associate?vol_type_id={gold}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, a) = c
        .call(&admin, Method::GET, &format!("{path}/associations"), None)
        .await;
    assert_eq!(
        a["qos_associations"],
        json!([{"association_type": "volume_type", "id": gold, "name": "gold"}])
    );
    let (_, t) = c
        .call(&admin, Method::GET, &format!("/types/{gold}"), None)
        .await;
    assert_eq!(t["volume_type"]["qos_specs_id"], json!(id));
    let other = json!({"qos_specs": {"name": "slow"}});
    let (_, o) = c
        .call(&admin, Method::POST, "/qos-specs", Some(other))
        .await;
    let other_id = o["qos_specs"]["id"].as_str().unwrap();
    assert_eq!(o["qos_specs"]["consumer"], "back-end");
    let (st, _) = c
        .call(
            &admin,
            Method::GET,
            &format!("/qos-specs/{other_id}/associate?vol_type_id={gold}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(&admin, Method::GET, &format!("{path}/associate"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c.call(&admin, Method::DELETE, &path, None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(
            &admin,
            Method::GET,
            &format!("{path}/disassociate?vol_type_id={gold}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, a) = c
        .call(&admin, Method::GET, &format!("{path}/associations"), None)
        .await;
    assert_eq!(a["qos_associations"], json!([]));
    c.call(
        &admin,
        Method::GET,
        &format!("{path}/associate?vol_type_id={gold}"),
        None,
    )
    .await;
    let (st, _) = c
        .call(
            &admin,
            Method::GET,
            &format!("{path}/disassociate_all"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, t) = c
        .call(&admin, Method::GET, &format!("/types/{gold}"), None)
        .await;
    assert_eq!(t["volume_type"]["qos_specs_id"], Value::Null);
    c.call(
        &admin,
        Method::GET,
        &format!("{path}/associate?vol_type_id={gold}"),
        None,
    )
    .await;
    let (st, _) = c
        .call(&admin, Method::DELETE, &format!("{path}?force=True"), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = c.call(&admin, Method::GET, &path, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, t) = c
        .call(&admin, Method::GET, &format!("/types/{gold}"), None)
        .await;
    assert_eq!(t["volume_type"]["qos_specs_id"], Value::Null);
}

#[tokio::test]
async fn the_default_quota_class_is_every_projects_default() {
    let c = common::start("quota-class").await;
    let admin = c.user("admin", "admin").await;
    let demo = c.user("demo", "demo").await;
    let (st, d) = c
        .call(&admin, Method::GET, "/os-quota-class-sets/default", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["quota_class_set"]["id"], "default");
    assert_eq!(d["quota_class_set"]["volumes"], 10);
    let up = json!({"quota_class_set": {"volumes": 1, "backups": 3, "bogus": 5}});
    let (st, u) = c
        .call(
            &admin,
            Method::PUT,
            "/os-quota-class-sets/default",
            Some(up),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["quota_class_set"]["volumes"], 1);
    assert!(u["quota_class_set"].get("bogus").is_none());
    let (_, q) = c
        .call(
            &demo,
            Method::GET,
            &format!("/os-quota-sets/{}", demo.project),
            None,
        )
        .await;
    assert_eq!(
        (
            q["quota_set"]["volumes"].clone(),
            q["quota_set"]["backups"].clone()
        ),
        (json!(1), json!(3))
    );
    // The class default is enforced: a second volume is over quota.
    c.volume(&demo, json!({"size": 1})).await;
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let bad = json!({"quota_class_set": {"volumes": -2}});
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            "/os-quota-class-sets/default",
            Some(bad),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(&demo, Method::GET, "/os-quota-class-sets/default", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn services_hosts_capabilities_and_extensions() {
    let c = common::start("services").await;
    ferrostack_volume::attach::heartbeat(&c.svc).await.unwrap();
    let admin = c.user("admin", "admin").await;
    let (_, s) = c
        .call(
            &admin,
            Method::GET,
            "/os-services?binary=cinder-volume",
            None,
        )
        .await;
    let host = s["services"][0]["host"].as_str().unwrap().to_owned();
    assert_eq!(s["services"][0]["frozen"], false);

    let body = json!({"host": host, "binary": "cinder-volume", "disabled_reason": "maintenance"});
    let (st, r) = c
        .call(
            &admin,
            Method::PUT,
            "/os-services/disable-log-reason",
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (r["status"].clone(), r["disabled_reason"].clone()),
        (json!("disabled"), json!("maintenance"))
    );
    let (_, s) = c
        .call(
            &admin,
            Method::GET,
            "/os-services?binary=cinder-volume",
            None,
        )
        .await;
    assert_eq!(s["services"][0]["status"], "disabled");
    let no_reason = json!({"host": host, "binary": "cinder-volume", "disabled_reason": null});
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            "/os-services/disable-log-reason",
            Some(no_reason),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, r) = c
        .call(
            &admin,
            Method::PUT,
            "/os-services/enable",
            Some(json!({"host": host, "binary": "cinder-volume"})),
        )
        .await;
    assert_eq!(
        (st, r["status"].clone(), r["disabled_reason"].clone()),
        (StatusCode::OK, json!("enabled"), Value::Null)
    );
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            "/os-services/enable",
            Some(json!({"host": "nowhere", "binary": "cinder-volume"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            "/os-services/freeze",
            Some(json!({"host": "nowhere"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            "/os-services/freeze",
            Some(json!({"host": host})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, s) = c
        .call(
            &admin,
            Method::GET,
            "/os-services?binary=cinder-volume",
            None,
        )
        .await;
    assert_eq!(s["services"][0]["frozen"], true);
    c.call(
        &admin,
        Method::PUT,
        "/os-services/thaw",
        Some(json!({"host": host})),
    )
    .await;
    let (_, s) = c
        .call(
            &admin,
            Method::GET,
            "/os-services?binary=cinder-volume",
            None,
        )
        .await;
    assert_eq!(s["services"][0]["frozen"], false);
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            "/os-services/failover_host",
            Some(json!({"host": host})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // os-hosts: both services; a volume host's usage per project.
    let demo = c.user("demo", "demo").await;
    c.volume(&demo, json!({"size": 2})).await;
    let (_, h) = c.call(&admin, Method::GET, "/os-hosts", None).await;
    assert_eq!(h["hosts"].as_array().unwrap().len(), 2, "{h}");
    let (st, h) = c
        .call(&admin, Method::GET, &format!("/os-hosts/{host}"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{h}");
    assert_eq!(h["host"][0]["resource"]["project"], "(total)");
    assert_eq!(h["host"][0]["resource"]["total_volume_gb"], "2");
    assert_eq!(h["host"][1]["resource"]["project"], json!(demo.project));
    let (st, _) = c.call(&admin, Method::GET, "/os-hosts/nowhere", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Capabilities of the pool get_pools names, matching its stats.
    let (_, p) = c
        .call(
            &admin,
            Method::GET,
            "/scheduler-stats/get_pools?detail=true",
            None,
        )
        .await;
    let pool = p["pools"][0]["name"].as_str().unwrap();
    let (st, cap) = c
        .call(&admin, Method::GET, &format!("/capabilities/{pool}"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{cap}");
    for k in ["vendor_name", "volume_backend_name", "storage_protocol"] {
        assert_eq!(cap[k], p["pools"][0]["capabilities"][k], "{k}");
    }
    assert_eq!(
        cap["namespace"],
        json!(format!("OS::Storage::Capabilities::{host}"))
    );
    let (st, _) = c
        .call(&admin, Method::GET, "/capabilities/nowhere@x", None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, e) = c.call(&demo, Method::GET, "/extensions", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(e["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "Hosts"));
}

#[tokio::test]
async fn type_encryption_specs_and_encrypted_volumes_refused() {
    let c = common::start("encryption").await;
    let admin = c.user("admin", "admin").await;
    let (_, t) = c
        .call(
            &admin,
            Method::POST,
            "/types",
            Some(json!({"volume_type": {"name": "luks"}})),
        )
        .await;
    let tid = t["volume_type"]["id"].as_str().unwrap().to_owned();
    let path = format!("/types/{tid}/encryption");
    let (_, e) = c.call(&admin, Method::GET, &path, None).await;
    assert_eq!(e, json!({}));
    let body = json!({"encryption": {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256, "control_location": "front-end"}});
    let (st, e) = c
        .call(&admin, Method::POST, &path, Some(body.clone()))
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let eid = e["encryption"]["encryption_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _) = c.call(&admin, Method::POST, &path, Some(body)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let up = json!({"encryption": {"key_size": 128, "control_location": "back-end"}});
    let (st, u) = c
        .call(&admin, Method::PUT, &format!("{path}/{eid}"), Some(up))
        .await;
    assert_eq!(
        (st, u["encryption"]["key_size"].clone()),
        (StatusCode::OK, json!(128))
    );
    let (_, e) = c.call(&admin, Method::GET, &path, None).await;
    assert_eq!(
        (e["key_size"].clone(), e["control_location"].clone()),
        (json!(128), json!("back-end"))
    );
    let (_, item) = c
        .call(&admin, Method::GET, &format!("{path}/cipher"), None)
        .await;
    assert_eq!(item, json!({"cipher": "aes-xts-plain64"}));
    let bad = json!({"encryption": {"control_location": "middle"}});
    let (st, _) = c
        .call(&admin, Method::PUT, &format!("{path}/{eid}"), Some(bad))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // No encrypting backend: a volume of the type is refused, not written in clear.
    let (st, _) = c
        .call(
            &admin,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1, "volume_type": "luks"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(&admin, Method::DELETE, &format!("{path}/{eid}"), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, e) = c.call(&admin, Method::GET, &path, None).await;
    assert_eq!(e, json!({}));
}

#[tokio::test]
async fn a_volume_no_backend_takes_leaves_a_user_message() {
    let c = common::start("messages").await;
    let admin = c.user("admin", "admin").await;
    let demo = c.user("demo", "demo").await;
    let specs = json!({"volume_type": {"name": "bogus", "extra_specs": {"storage_protocol": "fc-nowhere"}}});
    c.call(&admin, Method::POST, "/types", Some(specs)).await;
    let (st, v) = c
        .call(
            &demo,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1, "volume_type": "bogus"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["volume"]["id"].as_str().unwrap().to_owned();
    c.wait(&demo, &format!("/volumes/{id}"), "volume", "error")
        .await;
    let (st, _) = c.call(&demo, Method::GET, "/messages", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "messages need 3.3");
    let (st, l) = c
        .call_at(&demo, "3.3", Method::GET, "/messages", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let m = l["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["resource_uuid"] == json!(id))
        .cloned()
        .expect("a message about the volume");
    assert_eq!(m["event_id"], "VOLUME_VOLUME_001_003");
    assert_eq!(m["message_level"], "ERROR");
    let mid = m["id"].as_str().unwrap();
    let path = format!("/messages/{mid}");
    // Another project's list leaves it out (an admin's too, without all_tenants).
    let (_, own) = c
        .call_at(&admin, "3.3", Method::GET, "/messages", None)
        .await;
    assert!(!own["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == json!(mid)));
    let (_, all) = c
        .call_at(&admin, "3.3", Method::GET, "/messages?all_tenants=1", None)
        .await;
    assert!(all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == json!(mid)));
    let (st, _) = c.call_at(&demo, "3.3", Method::GET, &path, None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = c.call_at(&demo, "3.3", Method::DELETE, &path, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = c.call_at(&demo, "3.3", Method::GET, &path, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
