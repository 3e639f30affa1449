//! Server lists read page by page from the database (issue 12): at most
//! `max_limit` servers per answer with a `next` link, a marker continuing
//! where the page ended, a name regex read from the name column, and
//! quota usage counted from columns rather than every instance's body.

use super::*;

fn names(v: &Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn next_query(v: &Value) -> Option<String> {
    let href = v["servers_links"][0]["href"].as_str()?;
    Some(href.split_once('?').unwrap().1.to_owned())
}

#[tokio::test]
async fn pages_of_max_limit_markers_name_regex_and_usage() {
    let c = start("server_lists", |cfg| cfg.compute.max_limit = 3).await;
    let demo = c.token("demo", "demo").await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let body = json!({"server": {"name": "pg", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net}], "min_count": 5, "max_count": 5,
        "return_reservation_id": true}});
    c.ok(Method::POST, "/servers", &demo, Some(body)).await;
    let mut ids = Vec::new();
    let mut path = "/servers".to_owned();
    loop {
        let page = c.ok(Method::GET, &path, &demo, None).await;
        ids.extend(
            page["servers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        match next_query(&page) {
            Some(q) => path = format!("/servers?{q}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 5);
    for id in &ids {
        c.wait_status(&demo, id, "ACTIVE").await;
    }

    // No limit, or a larger one, gets max_limit servers, newest first,
    // and a link to the rest.
    for path in ["/servers", "/servers?limit=10", "/servers/detail"] {
        let first = c.ok(Method::GET, path, &demo, None).await;
        assert_eq!(names(&first), ["pg-5", "pg-4", "pg-3"], "{path}");
        let rest = next_query(&first).expect("a next link");
        assert!(rest.contains("marker="), "{rest}");
        let base = path.split('?').next().unwrap();
        let second = c
            .ok(Method::GET, &format!("{base}?{rest}"), &demo, None)
            .await;
        assert_eq!(names(&second), ["pg-2", "pg-1"], "{path} then {rest}");
        assert!(next_query(&second).is_none(), "{second}");
    }
    let two = c.ok(Method::GET, "/servers?limit=2", &demo, None).await;
    assert_eq!(names(&two), ["pg-5", "pg-4"]);

    // A regex on names (Nova's `name` filter searches), paged the same way.
    let picked = c
        .ok(Method::GET, "/servers?name=^pg-[24]$", &demo, None)
        .await;
    assert_eq!(names(&picked), ["pg-4", "pg-2"]);
    // Paged one at a time: the brief list reads the name column in chunks
    // (the page and one more, then larger ones) and the next page goes on
    // from the marker.
    let first = c
        .ok(Method::GET, "/servers?name=^pg-[24]$&limit=1", &demo, None)
        .await;
    assert_eq!(names(&first), ["pg-4"]);
    let rest = next_query(&first).expect("a next link");
    let second = c
        .ok(Method::GET, &format!("/servers?{rest}"), &demo, None)
        .await;
    assert_eq!(names(&second), ["pg-2"]);
    assert!(next_query(&second).is_none(), "{second}");
    // A filter on more than the name reads the bodies: the same pages.
    let active = c
        .ok(Method::GET, "/servers?status=ACTIVE&limit=2", &demo, None)
        .await;
    assert_eq!(names(&active), ["pg-5", "pg-4"]);
    let rest = next_query(&active).expect("a next link");
    assert!(rest.contains("status=ACTIVE"), "{rest}");
    let shutoff = c
        .ok(Method::GET, "/servers?status=SHUTOFF", &demo, None)
        .await;
    assert_eq!(shutoff["servers"], json!([]));
    let none = c
        .ok(Method::GET, "/servers?name=.*.*.*.*.*.*x", &demo, None)
        .await;
    assert_eq!(none["servers"], json!([]));
    let (s, v) = c
        .nova(Method::GET, "/servers?marker=no-such-server", &demo, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("marker [no-such-server] not found"));

    // Usage is summed from columns: five m1.tiny (1 vCPU, 512 MiB each).
    let project = c.kit.project_of(&demo).await;
    let q = c
        .ok(
            Method::GET,
            &format!("/os-quota-sets/{project}/detail"),
            &demo,
            None,
        )
        .await;
    assert_eq!(q["quota_set"]["instances"]["in_use"], 5);
    assert_eq!(q["quota_set"]["cores"]["in_use"], 5);
    assert_eq!(q["quota_set"]["ram"]["in_use"], 5 * 512);

    // The hourly usage audit pages too: each server once, two at a time.
    let mut notes = c.kit.bus.subscribe_notifications().await.unwrap();
    ferrostack_compute::usage_notifications::audit(&c.svc, 2)
        .await
        .unwrap();
    // On RabbitMQ (the CI's second Rust run) notifications arrive a
    // moment later: wait for them, up to a deadline.
    let mut audited = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while audited.len() < ids.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, notes.recv()).await {
            Ok(Ok(n)) if n.event_type == "compute.instance.exists" => audited.push(
                n.payload["instance_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    // Nothing more than once either.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(n) = notes.try_recv() {
        if n.event_type == "compute.instance.exists" {
            audited.push(
                n.payload["instance_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    audited.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(audited, want);
    c.agent.stop();
}
