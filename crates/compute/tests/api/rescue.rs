//! rescue and unrescue as Nova answers them, on the fake driver: the
//! rescue password (given or generated), RESCUE and back to ACTIVE, the
//! rescue image (the server's own or the one asked for), the states and
//! locks that refuse them, what a RESCUE server refuses, the instance
//! actions, a failed rescue, the policy, and deleting a rescued server.

use super::*;

async fn act(c: &Cloud, tok: &str, id: &str, body: Value) -> (StatusCode, Value) {
    c.nova(
        Method::POST,
        &format!("/servers/{id}/action"),
        tok,
        Some(body),
    )
    .await
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

/// The result of the latest event of the server's action `name`.
async fn event_result(c: &Cloud, tok: &str, id: &str, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = last_event(c, tok, id, name).await;
        if !e["finish_time"].is_null() {
            return e;
        }
        assert!(Instant::now() < deadline, "{name} never ended: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn rescue_and_unrescue(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let other_image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "rescued", &image, &net).await;
    settled(c, &demo, &id, "ACTIVE").await;

    // Not rescued: unrescue is the wrong state.
    let (s, v) = act(c, &demo, &id, json!({"unrescue": null})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // The password given comes back; the server's own image by default.
    let (s, v) = act(c, &demo, &id, json!({"rescue": {"adminPass": "s3cret!"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"adminPass": "s3cret!"}));
    let server = settled(c, &demo, &id, "RESCUE").await;
    assert_eq!(server["OS-EXT-STS:vm_state"], "rescued", "{server}");
    assert_eq!(server["OS-EXT-STS:power_state"], 1, "{server}");
    assert!(c.driver.guest(&id).unwrap().rescue.is_some());
    let e = event_result(c, &admin, &id, "rescue").await;
    assert_eq!(e["event"], "compute_rescue_instance", "{e}");
    assert_eq!(e["result"], "Success", "{e}");

    // What a RESCUE server refuses (tempest's negative rescue tests).
    for body in [
        json!({"rescue": null}),
        json!({"reboot": {"type": "HARD"}}),
        json!({"reboot": {"type": "SOFT"}}),
        json!({"os-stop": null}),
        json!({"os-start": null}),
        json!({"pause": null}),
        json!({"rebuild": {"imageRef": image}}),
        json!({"resize": {"flavorRef": "2"}}),
        json!({"shelve": null}),
    ] {
        let (s, v) = act(c, &demo, &id, body.clone()).await;
        assert_eq!(s, StatusCode::CONFLICT, "{body}: {v}");
    }

    // Locked by the admin: the owner may not unrescue.
    let (s, _) = act(c, &admin, &id, json!({"lock": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = act(c, &demo, &id, json!({"unrescue": null})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["conflictingRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("locked"));
    act(c, &admin, &id, json!({"unlock": null})).await;

    let (s, v) = act(c, &demo, &id, json!({"unrescue": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    settled(c, &demo, &id, "ACTIVE").await;
    assert!(c.driver.guest(&id).unwrap().rescue.is_none());
    let e = event_result(c, &admin, &id, "unrescue").await;
    assert_eq!(e["event"], "compute_unrescue_instance", "{e}");
    assert_eq!(e["result"], "Success", "{e}");

    // A generated password; another image; from SHUTOFF.
    act(c, &demo, &id, json!({"os-stop": null})).await;
    settled(c, &demo, &id, "SHUTOFF").await;
    let body = json!({"rescue": {"rescue_image_ref": other_image}});
    let (s, v) = act(c, &demo, &id, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["adminPass"].as_str().unwrap().len(), 12, "{v}");
    settled(c, &demo, &id, "RESCUE").await;
    assert_eq!(
        c.driver.guest(&id).unwrap().power_state,
        PowerState::Running
    );
    // Deleting a rescued server works and leaves no guest.
    let (s, _) = c
        .nova(Method::DELETE, &format!("/servers/{id}"), &demo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&demo, &id, "GONE").await;
    assert!(c.driver.guest(&id).is_none());
}

pub(super) async fn rescue_refusals(c: &Cloud) {
    let admin = c.token("admin", "admin").await;
    let demo = c.token("demo", "demo").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let id = c.boot(&demo, "refused", &image, &net).await;
    settled(c, &demo, &id, "ACTIVE").await;

    // An image that is not there, or not the caller's to see: Nova's
    // UnsupportedRescueImage.
    let missing = "7f4c3b52-8a51-4a0e-9a55-000000000000";
    let (s, v) = act(
        c,
        &demo,
        &id,
        json!({"rescue": {"rescue_image_ref": missing}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v["badRequest"]["message"],
        format!("Requested rescue image '{missing}' is not supported")
    );

    // PAUSED is not a state Nova rescues from.
    act(c, &demo, &id, json!({"pause": null})).await;
    settled(c, &demo, &id, "PAUSED").await;
    let (s, v) = act(c, &demo, &id, json!({"rescue": null})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    act(c, &demo, &id, json!({"unpause": null})).await;
    settled(c, &demo, &id, "ACTIVE").await;

    // Locked by the admin.
    act(c, &admin, &id, json!({"lock": null})).await;
    let (s, v) = act(c, &demo, &id, json!({"rescue": null})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    act(c, &admin, &id, json!({"unlock": null})).await;

    // A reader of the project may not rescue (os_compute_api:os-rescue).
    let reader = user_with_role(c, "rescue-reader", "reader").await;
    let (s, v) = act(c, &reader, &id, json!({"rescue": null})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        v["forbidden"]["message"],
        "Policy doesn't allow os_compute_api:os-rescue to be performed."
    );
    let (s, v) = act(c, &reader, &id, json!({"unrescue": null})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // The host fails the rescue: ERROR with the reason, the guest on its
    // own disk; a failed unrescue leaves RESCUE with the reason.
    c.driver.fail_next("rescue");
    let (s, _) = act(c, &demo, &id, json!({"rescue": null})).await;
    assert_eq!(s, StatusCode::OK);
    let server = settled(c, &admin, &id, "ERROR").await;
    assert!(
        server["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("injected rescue failure"),
        "{server}"
    );
    assert_eq!(
        event_result(c, &admin, &id, "rescue").await["result"],
        "Error"
    );
    assert!(c.driver.guest(&id).unwrap().rescue.is_none());
    // ERROR is rescued from (Nova's way out of it).
    let (s, _) = act(c, &demo, &id, json!({"rescue": null})).await;
    assert_eq!(s, StatusCode::OK);
    settled(c, &demo, &id, "RESCUE").await;
    c.driver.fail_next("unrescue");
    act(c, &demo, &id, json!({"unrescue": null})).await;
    assert_eq!(
        event_result(c, &admin, &id, "unrescue").await["result"],
        "Error"
    );
    settled(c, &demo, &id, "RESCUE").await;
    act(c, &demo, &id, json!({"unrescue": null})).await;
    settled(c, &demo, &id, "ACTIVE").await;
}
