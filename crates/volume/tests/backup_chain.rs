//! Backups beyond a full copy: incremental backups holding only the
//! changed blocks, backups of snapshots, the volume's metadata given back
//! on restore, update (3.9), and the export / import of a backup record.

mod common;

use common::{has_pattern, write_pattern, Cloud, User};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn backup(c: &Cloud, u: &User, body: Value) -> Value {
    let (st, b) = c
        .call(u, Method::POST, "/backups", Some(json!({ "backup": body })))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{b}");
    let id = b["backup"]["id"].as_str().unwrap().to_owned();
    c.wait(u, &format!("/backups/{id}"), "backup", "available")
        .await
}

async fn restore_new(c: &Cloud, u: &User, backup_id: &str) -> String {
    let (st, r) = c
        .call(
            u,
            Method::POST,
            &format!("/backups/{backup_id}/restore"),
            Some(json!({"restore": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    let id = r["restore"]["volume_id"].as_str().unwrap().to_owned();
    c.wait(u, &format!("/volumes/{id}"), "volume", "available")
        .await;
    id
}

fn qemu_img_json(args: &[&str], file: &std::path::Path) -> Value {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn backup_file(c: &Cloud, id: &str) -> std::path::PathBuf {
    c.kit
        .config
        .common
        .data_dir
        .join("backups")
        .join(format!("backup-{id}"))
}

#[tokio::test]
async fn incremental_backups_hold_the_changes_and_restore_the_whole() {
    let c = common::start("backup-incremental").await;
    let demo = c.user("demo", "demo").await;
    let vol = c
        .volume(&demo, json!({"size": 1, "metadata": {"k": "v"}}))
        .await;
    let (st, _) = c
        .call(
            &demo,
            Method::POST,
            "/backups",
            Some(json!({"backup": {"volume_id": vol, "incremental": true}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "no full backup to build on");
    write_pattern(&c.volume_file(&vol), 0x5a);
    let full = backup(&c, &demo, json!({"volume_id": vol})).await;
    let full_id = full["id"].as_str().unwrap().to_owned();
    assert_eq!(full["is_incremental"], false);
    write_pattern(&c.volume_file(&vol), 0x11);
    let inc = backup(&c, &demo, json!({"volume_id": vol, "incremental": true})).await;
    let inc_id = inc["id"].as_str().unwrap().to_owned();
    assert_eq!(inc["is_incremental"], true);
    let (_, f) = c
        .call(&demo, Method::GET, &format!("/backups/{full_id}"), None)
        .await;
    assert_eq!(f["backup"]["has_dependent_backups"], true);
    // The incremental file is the changed 64 KiB over the full one.
    let inc_file = backup_file(&c, &inc_id);
    let info = qemu_img_json(&["info", "--output=json"], &inc_file);
    assert_eq!(info["backing-filename"], json!(format!("backup-{full_id}")));
    let own: u64 = qemu_img_json(&["map", "--output=json"], &inc_file)
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["depth"] == 0 && e["data"] == true)
        .map(|e| e["length"].as_u64().unwrap())
        .sum();
    assert_eq!(
        own,
        64 * 1024,
        "only the changed block is in the incremental"
    );
    let (st, _) = c
        .call(&demo, Method::DELETE, &format!("/backups/{full_id}"), None)
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "a backup others build on stays"
    );

    let from_inc = restore_new(&c, &demo, &inc_id).await;
    assert!(has_pattern(&c.volume_file(&from_inc), 0x11));
    let (_, v) = c
        .call(&demo, Method::GET, &format!("/volumes/{from_inc}"), None)
        .await;
    assert_eq!(v["volume"]["metadata"], json!({"k": "v"}));
    let from_full = restore_new(&c, &demo, &full_id).await;
    assert!(has_pattern(&c.volume_file(&from_full), 0x5a));

    c.call(&demo, Method::DELETE, &format!("/backups/{inc_id}"), None)
        .await;
    c.wait(&demo, &format!("/backups/{inc_id}"), "backup", "deleted")
        .await;
    let (_, f) = c
        .call(&demo, Method::GET, &format!("/backups/{full_id}"), None)
        .await;
    assert_eq!(f["backup"]["has_dependent_backups"], false);
}

#[tokio::test]
async fn snapshot_backups_update_and_record_export_import() {
    let c = common::start("backup-snapshot").await;
    let demo = c.user("demo", "demo").await;
    let admin = c.user("admin", "admin").await;
    let vol = c.volume(&demo, json!({"size": 1})).await;
    write_pattern(&c.volume_file(&vol), 0x22);
    let (_, s) = c
        .call(
            &demo,
            Method::POST,
            "/snapshots",
            Some(json!({"snapshot": {"volume_id": vol}})),
        )
        .await;
    let snap = s["snapshot"]["id"].as_str().unwrap().to_owned();
    c.wait(
        &demo,
        &format!("/snapshots/{snap}"),
        "snapshot",
        "available",
    )
    .await;
    write_pattern(&c.volume_file(&vol), 0x33);
    let b = backup(&c, &demo, json!({"volume_id": vol, "snapshot_id": snap})).await;
    assert_eq!(b["snapshot_id"], json!(snap));
    let bid = b["id"].as_str().unwrap().to_owned();
    let (_, s) = c
        .call(&demo, Method::GET, &format!("/snapshots/{snap}"), None)
        .await;
    assert_eq!(s["snapshot"]["status"], "available");
    let restored = restore_new(&c, &demo, &bid).await;
    assert!(
        has_pattern(&c.volume_file(&restored), 0x22),
        "the snapshot's data, not the volume's"
    );

    // Update from 3.9 only.
    let path = format!("/backups/{bid}");
    let up = json!({"backup": {"name": "renamed", "description": "d"}});
    let (st, _) = c.call(&demo, Method::PUT, &path, Some(up.clone())).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, u) = c.call_at(&demo, "3.9", Method::PUT, &path, Some(up)).await;
    assert_eq!(
        (st, u["backup"]["name"].clone()),
        (StatusCode::OK, json!("renamed"))
    );

    // Export the record, import it under a new id: a second backup of the same data.
    let (st, e) = c
        .call(&admin, Method::GET, &format!("{path}/export_record"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let record = &e["backup-record"];
    assert!(record["backup_service"]
        .as_str()
        .unwrap()
        .starts_with("cinder.backup.drivers"));
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut fields: Value =
        serde_json::from_slice(&b64.decode(record["backup_url"].as_str().unwrap()).unwrap())
            .unwrap();
    let new_id = uuid::Uuid::new_v4().to_string();
    fields["id"] = json!(new_id);
    let import = json!({"backup-record": {"backup_service": record["backup_service"], "backup_url": b64.encode(fields.to_string())}});
    let (st, i) = c
        .call(
            &admin,
            Method::POST,
            "/backups/import_record",
            Some(import.clone()),
        )
        .await;
    assert_eq!(
        (st, i["backup"]["id"].clone()),
        (StatusCode::CREATED, json!(new_id)),
        "{i}"
    );
    let (st, _) = c
        .call(&admin, Method::POST, "/backups/import_record", Some(import))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "the id is taken");
    let from_import = restore_new(&c, &admin, &new_id).await;
    assert!(has_pattern(&c.volume_file(&from_import), 0x22));
    // A record naming a file outside the backup directory is refused.
    fields["id"] = json!(uuid::Uuid::new_v4().to_string());
    fields["service_metadata"] = json!("../volumes/x");
    let evil = json!({"backup-record": {"backup_service": record["backup_service"], "backup_url": b64.encode(fields.to_string())}});
    let (st, _) = c
        .call(&admin, Method::POST, "/backups/import_record", Some(evil))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = c
        .call(&demo, Method::GET, &format!("{path}/export_record"), None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Deleting the import leaves the original's data.
    c.call(&admin, Method::DELETE, &format!("/backups/{new_id}"), None)
        .await;
    c.wait(&admin, &format!("/backups/{new_id}"), "backup", "deleted")
        .await;
    assert!(backup_file(&c, &bid).exists());
}
