//! Server operations beyond the microversion walks: `changePassword`.

use super::*;

/// `changePassword` as nova-libvirt answers it for a guest without the
/// QEMU guest agent: 409 (after the lock and state checks), the attempt
/// an instance action with its failed event; a malformed body is 400.
pub(super) async fn change_password_without_a_guest_agent(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "pw", &image, &net).await;
    c.wait_status(&demo, &id, "ACTIVE").await;
    let change = json!({"changePassword": {"adminPass": "s3cret"}});
    for bad in [
        json!({"changePassword": {}}),
        json!({"changePassword": {"adminPass": "x", "user": "root"}}),
        json!({"changePassword": {"adminPass": 7}}),
    ] {
        let (s, v) = c.action(&demo, &id, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (s, v) = c.action(&demo, &id, change.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        v["conflictingRequest"]["message"],
        "QEMU guest agent is not enabled"
    );
    let actions = c
        .ok(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            &admin,
            None,
        )
        .await;
    let action = &actions["instanceActions"][0];
    assert_eq!(action["action"], "changePassword");
    let req = action["request_id"].as_str().unwrap();
    let shown = c
        .ok_at(
            "2.51",
            Method::GET,
            &format!("/servers/{id}/os-instance-actions/{req}"),
            &admin,
            None,
        )
        .await;
    let event = &shown["instanceAction"]["events"][0];
    assert_eq!(
        (&event["event"], &event["result"]),
        (&json!("compute_set_admin_password"), &json!("Error"))
    );
    let (s, _) = c.action(&demo, &id, json!({"os-stop": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    c.wait_status(&demo, &id, "SHUTOFF").await;
    let (s, v) = c.action(&demo, &id, change.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("vm_state stopped"), "{v}");
    let (s, _) = c.action(&admin, &id, json!({"lock": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = c.action(&demo, &id, change).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("locked"), "{v}");
}
