//! Private types and their access list, per-type quotas, retype, the
//! bootable and read-only flags, the summary, and the usage notifications.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn private_types_per_type_quotas_and_retype() {
    let c = common::start("type-access").await;
    let demo = c.user("demo", "demo").await;
    let admin = c.user("admin", "admin").await;
    let body = json!({"volume_type": {"name": "gold", "os-volume-type-access:is_public": false}});
    let (st, t) = c.call(&admin, Method::POST, "/types", Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let gold = t["volume_type"]["id"].as_str().unwrap().to_owned();

    // Invisible and unusable until granted.
    let (_, l) = c.call(&demo, Method::GET, "/types", None).await;
    assert!(!l["volume_types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == gold));
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1, "volume_type": "gold"}})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let add = json!({"addProjectAccess": {"project": demo.project}});
    let path = format!("/types/{gold}/action");
    let (st, _) = c.call(&demo, Method::POST, &path, Some(add.clone())).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = c.call(&admin, Method::POST, &path, Some(add.clone())).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = c.call(&admin, Method::POST, &path, Some(add)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (_, a) = c
        .call(
            &admin,
            Method::GET,
            &format!("/types/{gold}/os-volume-type-access"),
            None,
        )
        .await;
    assert_eq!(
        a["volume_type_access"],
        json!([{"volume_type_id": gold, "project_id": demo.project}])
    );
    let (_, l) = c.call(&demo, Method::GET, "/types", None).await;
    assert!(l["volume_types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == gold));

    // One gold volume allowed.
    let quota = json!({"quota_set": {"volumes_gold": 1, "backups": 3}});
    let (st, q) = c
        .call(
            &admin,
            Method::PUT,
            &format!("/os-quota-sets/{}", demo.project),
            Some(quota),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{q}");
    assert_eq!(q["quota_set"]["volumes_gold"], 1);
    assert_eq!(q["quota_set"]["backups"], 3);
    let bad = json!({"quota_set": {"volumes_nope": 1}});
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            &format!("/os-quota-sets/{}", demo.project),
            Some(bad),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    c.volume(&demo, json!({"size": 1, "volume_type": "gold"}))
        .await;
    let (st, e) = c
        .call(
            &demo,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1, "volume_type": gold}})),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        e["overLimit"]["message"]
            .as_str()
            .unwrap()
            .contains("'volumes_gold'"),
        "{e}"
    );

    // Retype a default volume into gold: over the gold quota too.
    let plain = c.volume(&demo, json!({"size": 1})).await;
    let retype = json!({"os-retype": {"new_type": "gold", "migration_policy": "never"}});
    let action = format!("/volumes/{plain}/action");
    let (st, _) = c
        .call(&demo, Method::POST, &action, Some(retype.clone()))
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let (st, _) = c
        .call(
            &admin,
            Method::PUT,
            &format!("/os-quota-sets/{}", demo.project),
            Some(json!({"quota_set": {"volumes_gold": -1}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = c.call(&demo, Method::POST, &action, Some(retype)).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, v) = c
        .call(&demo, Method::GET, &format!("/volumes/{plain}"), None)
        .await;
    assert_eq!(v["volume"]["volume_type"], "gold");
    let (_, d) = c
        .call(
            &demo,
            Method::GET,
            &format!("/os-quota-sets/{}/defaults", demo.project),
            None,
        )
        .await;
    assert_eq!(d["quota_set"]["volumes_gold"], -1);
    assert_eq!(d["quota_set"]["backups"], 10);
    assert_eq!(d["quota_set"]["per_volume_gigabytes"], -1);

    // Revoked: invisible again.
    let rm = json!({"removeProjectAccess": {"project": demo.project}});
    let (st, _) = c.call(&admin, Method::POST, &path, Some(rm.clone())).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = c.call(&admin, Method::POST, &path, Some(rm)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = c
        .call(&demo, Method::GET, &format!("/types/{gold}"), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn flags_summary_and_notifications() {
    let c = common::start("flags").await;
    let mut notes = c.kit.bus.subscribe_notifications().await.unwrap();
    let demo = c.user("demo", "demo").await;
    let vol = c.volume(&demo, json!({"size": 2})).await;
    let action = format!("/volumes/{vol}/action");
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            &action,
            Some(json!({"os-set_bootable": {"bootable": "True"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            &action,
            Some(json!({"os-update_readonly_flag": {"readonly": true}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, v) = c
        .call(&demo, Method::GET, &format!("/volumes/{vol}"), None)
        .await;
    assert_eq!(v["volume"]["bootable"], "true");
    assert_eq!(v["volume"]["metadata"]["readonly"], "True");
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            &action,
            Some(json!({"os-set_bootable": {"bootable": "maybe"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    c.volume(&demo, json!({"size": 3})).await;
    let (st, s) = c.call(&demo, Method::GET, "/volumes/summary", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s,
        json!({"volume-summary": {"total_size": 5, "total_count": 2}})
    );

    let (_, snap) = c
        .call(
            &demo,
            Method::POST,
            "/snapshots",
            Some(json!({"snapshot": {"volume_id": vol}})),
        )
        .await;
    let snap = snap["snapshot"]["id"].as_str().unwrap().to_owned();
    c.wait(
        &demo,
        &format!("/snapshots/{snap}"),
        "snapshot",
        "available",
    )
    .await;
    let (_, b) = c
        .call(
            &demo,
            Method::POST,
            "/backups",
            Some(json!({"backup": {"volume_id": vol}})),
        )
        .await;
    let backup = b["backup"]["id"].as_str().unwrap().to_owned();
    c.wait(&demo, &format!("/backups/{backup}"), "backup", "available")
        .await;
    let (st, _) = c
        .call(&demo, Method::DELETE, &format!("/snapshots/{snap}"), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    c.wait(&demo, &format!("/snapshots/{snap}"), "snapshot", "deleted")
        .await;
    ferrostack_volume::audit::emit_exists(&c.svc).await.unwrap();

    let mut events = Vec::new();
    while let Ok(n) = notes.try_recv() {
        let about = |k: &str| {
            n.payload[k].as_str()
                == Some(&*match k {
                    "snapshot_id" => snap.clone(),
                    "backup_id" => backup.clone(),
                    _ => vol.clone(),
                })
        };
        if about("snapshot_id")
            || about("backup_id")
            || (n.event_type == "volume.exists" && about("volume_id"))
        {
            events.push(n.event_type.clone());
        }
    }
    for e in [
        "snapshot.create.start",
        "snapshot.create.end",
        "backup.create.start",
        "backup.create.end",
        "snapshot.delete.start",
        "snapshot.delete.end",
        "volume.exists",
        "backup.exists",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} missing from {events:?}");
    }
}
