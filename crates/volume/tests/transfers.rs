//! Volume transfers and backups end to end.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_transfer_moves_the_volume_with_the_right_key_only() {
    let c = common::start("transfers").await;
    let demo = c.user("demo", "demo").await;
    let admin = c.user("admin", "admin").await;
    let vol = c.volume(&demo, json!({"size": 1})).await;
    let (st, t) = c
        .call(
            &demo,
            Method::POST,
            "/os-volume-transfer",
            Some(json!({"transfer": {"volume_id": vol, "name": "t"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{t}");
    let id = t["transfer"]["id"].as_str().unwrap().to_owned();
    let key = t["transfer"]["auth_key"].as_str().unwrap().to_owned();
    let (_, v) = c
        .call(&demo, Method::GET, &format!("/volumes/{vol}"), None)
        .await;
    assert_eq!(v["volume"]["status"], "awaiting-transfer");
    let (_, l) = c
        .call(&demo, Method::GET, "/os-volume-transfer/detail", None)
        .await;
    assert_eq!(l["transfers"][0]["id"], id);
    assert!(l["transfers"][0].get("auth_key").is_none());

    let path = format!("/os-volume-transfer/{id}/accept");
    let (st, e) = c
        .call(
            &admin,
            Method::POST,
            &path,
            Some(json!({"accept": {"auth_key": "wrong"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        e["badRequest"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid auth key"),
        "{e}"
    );
    let (st, a) = c
        .call(
            &admin,
            Method::POST,
            &path,
            Some(json!({"accept": {"auth_key": key}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{a}");
    assert_eq!(a["transfer"]["volume_id"], vol);
    let (st, _) = c
        .call(&demo, Method::GET, &format!("/volumes/{vol}"), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = c
        .call(&admin, Method::GET, &format!("/volumes/{vol}"), None)
        .await;
    assert_eq!(v["volume"]["status"], "available");
    assert_eq!(v["volume"]["os-vol-tenant-attr:tenant_id"], admin.project);
    let (_, q) = c
        .call(
            &admin,
            Method::GET,
            &format!("/os-quota-sets/{}?usage=true", demo.project),
            None,
        )
        .await;
    assert_eq!(q["quota_set"]["volumes"]["in_use"], 0);
    let (st, _) = c
        .call(
            &demo,
            Method::GET,
            &format!("/os-volume-transfer/{id}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A withdrawn offer gives the volume back.
    let (_, t) = c
        .call(
            &admin,
            Method::POST,
            "/volume-transfers",
            Some(json!({"transfer": {"volume_id": vol}})),
        )
        .await;
    let id = t["transfer"]["id"].as_str().unwrap().to_owned();
    let (st, _) = c
        .call(
            &admin,
            Method::DELETE,
            &format!("/volume-transfers/{id}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, v) = c
        .call(&admin, Method::GET, &format!("/volumes/{vol}"), None)
        .await;
    assert_eq!(v["volume"]["status"], "available");
}

#[tokio::test]
async fn a_backup_restores_its_data_to_a_new_and_an_existing_volume() {
    let c = common::start("backups").await;
    let demo = c.user("demo", "demo").await;
    let vol = c.volume(&demo, json!({"size": 1})).await;
    common::write_pattern(&c.volume_file(&vol), 0x5a);
    let (st, b) = c
        .call(
            &demo,
            Method::POST,
            "/backups",
            Some(json!({"backup": {"volume_id": vol, "name": "b1"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{b}");
    let id = b["backup"]["id"].as_str().unwrap().to_owned();
    let shown = c
        .wait(&demo, &format!("/backups/{id}"), "backup", "available")
        .await;
    assert_eq!(shown["size"], 1);
    assert_eq!(shown["volume_id"], vol);
    let (_, v) = c
        .call(&demo, Method::GET, &format!("/volumes/{vol}"), None)
        .await;
    assert_eq!(v["volume"]["status"], "available");

    let (st, r) = c
        .call(
            &demo,
            Method::POST,
            &format!("/backups/{id}/restore"),
            Some(json!({"restore": {"name": "restored"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    let new = r["restore"]["volume_id"].as_str().unwrap().to_owned();
    c.wait(&demo, &format!("/volumes/{new}"), "volume", "available")
        .await;
    assert!(common::has_pattern(&c.volume_file(&new), 0x5a));

    common::write_pattern(&c.volume_file(&vol), 0x11);
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            &format!("/backups/{id}/restore"),
            Some(json!({"restore": {"volume_id": vol}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    c.wait(&demo, &format!("/backups/{id}"), "backup", "available")
        .await;
    c.wait(&demo, &format!("/volumes/{vol}"), "volume", "available")
        .await;
    assert!(common::has_pattern(&c.volume_file(&vol), 0x5a));

    let (_, q) = c
        .call(
            &demo,
            Method::GET,
            &format!("/os-quota-sets/{}?usage=true", demo.project),
            None,
        )
        .await;
    assert_eq!(q["quota_set"]["backups"]["in_use"], 1);
    assert_eq!(q["quota_set"]["backup_gigabytes"]["in_use"], 1);

    let (st, _) = c
        .call(&demo, Method::DELETE, &format!("/backups/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    c.wait(&demo, &format!("/backups/{id}"), "backup", "deleted")
        .await;
    let dir = c.kit.config.common.data_dir.join("backups");
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

/// Backups and transfers list as volumes do: sorted, `limit` pages with a
/// next link carrying the query, `marker` continues, an unknown marker is
/// a 404 and a bad limit a 400.
#[tokio::test]
async fn backups_and_transfers_page_with_markers_and_next_links() {
    let c = common::start("transfer-paging").await;
    let demo = c.user("demo", "demo").await;
    let mut backups = Vec::new();
    let mut transfers = Vec::new();
    for i in 0..3 {
        let vol = c.volume(&demo, json!({"size": 1})).await;
        let (st, b) = c
            .call(
                &demo,
                Method::POST,
                "/backups",
                Some(json!({"backup": {"volume_id": vol, "name": format!("b{i}")}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{b}");
        let id = b["backup"]["id"].as_str().unwrap().to_owned();
        c.wait(&demo, &format!("/backups/{id}"), "backup", "available")
            .await;
        backups.push(id);
        let other = c.volume(&demo, json!({"size": 1})).await;
        let (st, t) = c
            .call(
                &demo,
                Method::POST,
                "/volume-transfers",
                Some(json!({"transfer": {"volume_id": other, "name": format!("t{i}")}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{t}");
        transfers.push(t["transfer"]["id"].as_str().unwrap().to_owned());
    }
    for (path, key, ids, name) in [
        ("/backups/detail", "backups", &backups, "b"),
        ("/volume-transfers", "transfers", &transfers, "t"),
    ] {
        let (st, p1) = c
            .call(
                &demo,
                Method::GET,
                &format!("{path}?sort=name:asc&limit=2"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{p1}");
        let names: Vec<_> = p1[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].clone())
            .collect();
        assert_eq!(
            names,
            [json!(format!("{name}0")), json!(format!("{name}1"))],
            "{p1}"
        );
        let next = p1[format!("{key}_links")][0]["href"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(next.contains(&format!("marker={}", ids[1])), "{next}");
        assert!(next.contains("sort=name%3Aasc"), "{next}");
        let (_, p2) = c
            .call(
                &demo,
                Method::GET,
                &format!("{path}?sort=name:asc&limit=2&marker={}", ids[1]),
                None,
            )
            .await;
        assert_eq!(p2[key].as_array().unwrap().len(), 1, "{p2}");
        assert_eq!(p2[key][0]["id"], json!(ids[2]));
        assert!(p2.get(format!("{key}_links")).is_none(), "{p2}");
        let (st, _) = c
            .call(
                &demo,
                Method::GET,
                &format!("{path}?marker=5a1a5a1a-0000-4000-8000-000000000000"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = c
            .call(&demo, Method::GET, &format!("{path}?limit=x"), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
    }
}
