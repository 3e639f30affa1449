//! Aodh's alarms: a gnocchi_resources_threshold alarm goes to `alarm`
//! when its resource's metric breaches the threshold, POSTs Aodh's body to
//! its alarm action (a listener here), comes back to `ok` when the figures
//! drop; state and history through the API; project scoping and 400s.

use axum::routing::post;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// A cloud with the telemetry service's Gnocchi and Aodh APIs on it.
struct Telemetry {
    cloud: ferrostack_testkit::TestCloud,
    svc: Arc<ferrostack_telemetry::service::TelemetryService>,
    gnocchi: ferrostack_testkit::Api,
    aodh: ferrostack_testkit::Api,
}

impl Telemetry {
    async fn start(name: &str) -> Telemetry {
        let cloud = ferrostack_testkit::start(name, |_| {}).await;
        let svc = ferrostack_telemetry::open(&cloud.config, cloud.bus.clone())
            .await
            .unwrap();
        let auth = cloud.auth_uri();
        let serve = |router| async {
            ferrostack_testkit::Api::new(ferrostack_testkit::serve(router).await)
        };
        let gnocchi = serve(ferrostack_telemetry::api::gnocchi_router(
            svc.clone(),
            cloud.validator.clone(),
            &auth,
        ))
        .await;
        let aodh = serve(ferrostack_telemetry::api::aodh_router(
            svc.clone(),
            cloud.validator.clone(),
            &auth,
        ))
        .await;
        Telemetry {
            cloud,
            svc,
            gnocchi,
            aodh,
        }
    }
}

#[tokio::test]
async fn a_threshold_alarm_fires_its_http_action_and_returns_to_ok() {
    let Telemetry {
        cloud,
        svc,
        gnocchi,
        aodh,
    } = Telemetry::start("telemetry-alarms").await;
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let listener = ferrostack_testkit::serve(axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                "ok"
            }
        }),
    ))
    .await;
    let demo = cloud.token("demo", "demo").await;
    let admin = cloud.token("admin", "admin").await;
    let project = cloud.project_of(&demo).await;

    let vm = "7a1e0c3d-3333-4333-8333-000000000001";
    gnocchi
        .ok(Method::POST, "/v1/resource/instance", &demo, Some(json!({"id": vm, "project_id": project, "metrics": {"cpu_util": {"archive_policy_name": "high"}}})))
        .await;
    let now = chrono::Utc::now().timestamp();
    let iso = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();
    let measures_path = format!("/v1/resource/instance/{vm}/metric/cpu_util/measures");
    let post_measures = |points: Vec<(i64, f64)>| {
        let body: Vec<Value> = points
            .iter()
            .map(|(t, v)| json!({"timestamp": iso(*t), "value": v}))
            .collect();
        gnocchi.call(
            Method::POST,
            &measures_path,
            &demo,
            Some(Value::Array(body)),
        )
    };
    assert_eq!(
        post_measures(vec![(now - 3, 95.0), (now - 2, 97.0), (now - 1, 99.0)])
            .await
            .0,
        202
    );

    let (s, body) = aodh
        .call(
            Method::POST,
            "/v2/alarms",
            &demo,
            Some(json!({"name": "busy", "type": "threshold"})),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    let alarm = aodh
        .ok(Method::POST, "/v2/alarms", &demo, Some(json!({
            "name": "busy", "type": "gnocchi_resources_threshold",
            "alarm_actions": [format!("{listener}/hook")], "ok_actions": [format!("{listener}/hook")],
            "gnocchi_resources_threshold_rule": {"metric": "cpu_util", "resource_id": vm, "resource_type": "instance",
                "aggregation_method": "mean", "granularity": 1, "evaluation_periods": 2, "threshold": 50, "comparison_operator": "gt"},
        })))
        .await;
    assert_eq!(alarm["state"], "insufficient data");
    let id = alarm["alarm_id"].as_str().unwrap().to_owned();

    ferrostack_telemetry::alarms::evaluate_all(&svc, now)
        .await
        .unwrap();
    assert_eq!(
        aodh.ok(Method::GET, &format!("/v2/alarms/{id}/state"), &demo, None)
            .await,
        "alarm"
    );
    {
        let got = received.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["current"], "alarm");
        assert_eq!(got[0]["previous"], "insufficient data");
        assert_eq!(got[0]["alarm_name"], "busy");
    }
    // Unchanged: no second action (repeat_actions is off).
    ferrostack_telemetry::alarms::evaluate_all(&svc, now)
        .await
        .unwrap();
    assert_eq!(received.lock().unwrap().len(), 1);

    // The guest calms down: back to ok.
    assert_eq!(
        post_measures(vec![(now + 1, 3.0), (now + 2, 4.0)]).await.0,
        202
    );
    ferrostack_telemetry::alarms::evaluate_all(&svc, now + 3)
        .await
        .unwrap();
    assert_eq!(
        aodh.ok(Method::GET, &format!("/v2/alarms/{id}"), &demo, None)
            .await["state"],
        "ok"
    );
    assert_eq!(received.lock().unwrap()[1]["current"], "ok");
    let history = aodh
        .ok(
            Method::GET,
            &format!("/v2/alarms/{id}/history"),
            &demo,
            None,
        )
        .await;
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["state transition", "state transition", "creation"]);

    // Manual state, scoping, listing, delete.
    assert_eq!(
        aodh.ok(
            Method::PUT,
            &format!("/v2/alarms/{id}/state"),
            &demo,
            Some(json!("alarm"))
        )
        .await,
        "alarm"
    );
    let (s, _) = aodh
        .call(
            Method::PUT,
            &format!("/v2/alarms/{id}/state"),
            &demo,
            Some(json!("bogus")),
        )
        .await;
    assert_eq!(s, 400);
    // An update that changes the state is a manual transition; the reason
    // it carries is read-only.
    let mut whole = aodh
        .ok(Method::GET, &format!("/v2/alarms/{id}"), &demo, None)
        .await;
    whole["state"] = json!("ok");
    whole["state_reason"] = json!("Oops!");
    let updated = aodh
        .ok(Method::PUT, &format!("/v2/alarms/{id}"), &demo, Some(whole))
        .await;
    assert_eq!(updated["state"], "ok");
    assert_eq!(updated["state_reason"], "Manually set via API");
    let shown = aodh
        .ok(Method::GET, &format!("/v2/alarms/{id}"), &demo, None)
        .await;
    assert_eq!(shown["state"], "ok");
    assert_eq!(shown["state_reason"], "Manually set via API");
    let other = cloud.token("admin", "admin").await;
    let listed = aodh
        .ok(
            Method::GET,
            "/v2/alarms?q.field=name&q.value=busy",
            &other,
            None,
        )
        .await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "admin sees every project"
    );
    let alt = cloud.token("demo", "invisible_to_admin").await;
    let (s, _) = aodh
        .call(Method::GET, &format!("/v2/alarms/{id}"), &alt, None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        aodh.ok(Method::GET, "/v2/alarms", &alt, None).await,
        json!([])
    );
    let (s, _) = aodh
        .call(Method::DELETE, &format!("/v2/alarms/{id}"), &admin, None)
        .await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn an_event_alarm_fires_on_its_projects_matching_notification() {
    let Telemetry { cloud, aodh, .. } = Telemetry::start("telemetry-event-alarms").await;
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let listener = ferrostack_testkit::serve(axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                "ok"
            }
        }),
    ))
    .await;
    let demo = cloud.token("demo", "demo").await;
    let admin = cloud.token("admin", "admin").await;
    let project = cloud.project_of(&demo).await;
    let admin_project = cloud.project_of(&admin).await;
    let alarm = aodh
        .ok(Method::POST, "/v2/alarms", &demo, Some(json!({
            "name": "image-up", "type": "event",
            "event_rule": {"event_type": "image.*", "query": [{"field": "traits.name", "op": "eq", "value": "watched", "type": "string"}]},
            "alarm_actions": [format!("{listener}/hook")],
        })))
        .await;
    let id = alarm["alarm_id"].as_str().unwrap().to_owned();
    assert_eq!(alarm["description"], "Alarm when image.* event occurred.");
    let bus = &cloud.bus;
    // Another project's event, and an unwatched name: nothing.
    bus.notify(
        "image.localhost",
        "image.upload",
        json!({"id": "i1", "owner": admin_project, "name": "watched", "size": 1}),
    )
    .await
    .unwrap();
    bus.notify(
        "image.localhost",
        "image.upload",
        json!({"id": "i2", "owner": project, "name": "other", "size": 1}),
    )
    .await
    .unwrap();
    bus.notify(
        "image.localhost",
        "image.upload",
        json!({"id": "i3", "owner": project, "name": "watched", "size": 1}),
    )
    .await
    .unwrap();
    for _ in 0..100 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["current"], "alarm");
    assert!(got[0]["reason"].as_str().unwrap().contains("image.upload"));
    let state = aodh
        .ok(Method::GET, &format!("/v2/alarms/{id}/state"), &demo, None)
        .await;
    assert_eq!(state, "alarm");

    // Complex queries, as aodhclient's `alarm show --name` sends them.
    let found = aodh
        .ok(
            Method::POST,
            "/v2/query/alarms",
            &demo,
            Some(json!({"filter": "{\"=\": {\"name\": \"image-up\"}}"})),
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["alarm_id"], id.as_str());
    let none = aodh
        .ok(
            Method::POST,
            "/v2/query/alarms",
            &admin,
            Some(json!({"filter": "{\"=\": {\"name\": \"nope\"}}"})),
        )
        .await;
    assert_eq!(none, json!([]));
    let hist = aodh
        .ok(
            Method::POST,
            "/v2/query/alarms/history",
            &demo,
            Some(json!({"filter": format!("{{\"=\": {{\"alarm_id\": \"{id}\"}}}}")})),
        )
        .await;
    assert_eq!(hist.as_array().unwrap().len(), 2, "{hist}");
    let (status, _) = aodh
        .call(
            Method::POST,
            "/v2/query/alarms",
            &demo,
            Some(json!({"filter": "{not json"})),
        )
        .await;
    assert_eq!(status, 400);
}

/// Alarm lists sort on several keys, page after a marker (the alarm id) and
/// limit, as Aodh's; an unknown marker is a 400.
#[tokio::test]
async fn alarm_lists_sort_page_after_a_marker_and_limit() {
    let Telemetry { cloud, aodh, .. } = Telemetry::start("telemetry-alarm-pages").await;
    let demo = cloud.token("demo", "demo").await;
    let mut made = Vec::new();
    for name in ["pages-b", "pages-a", "pages-b", "pages-a"] {
        let a = aodh
            .ok(
                Method::POST,
                "/v2/alarms",
                &demo,
                Some(json!({"name": name, "type": "event",
                            "event_rule": {"event_type": "compute.instance.*"}})),
            )
            .await;
        made.push((name, a["alarm_id"].as_str().unwrap().to_owned()));
    }
    made.sort();
    let listed = |v: Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    a["alarm_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let want: Vec<(String, String)> = made
        .iter()
        .map(|(n, i)| (n.to_string(), i.clone()))
        .collect();
    let sorted = "/v2/alarms?sort=name:asc&sort=alarm_id:asc";
    assert_eq!(
        listed(aodh.ok(Method::GET, sorted, &demo, None).await),
        want
    );
    let first_two = aodh
        .ok(Method::GET, &format!("{sorted}&limit=2"), &demo, None)
        .await;
    assert_eq!(listed(first_two), want[..2]);
    let after = aodh
        .ok(
            Method::GET,
            &format!("{sorted}&marker={}", want[1].1),
            &demo,
            None,
        )
        .await;
    assert_eq!(listed(after), want[2..]);
    let (s, body) = aodh
        .call(Method::GET, &format!("{sorted}&marker=nope"), &demo, None)
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.to_string().contains("Marker nope not found"), "{body}");
}

/// `gnocchi_aggregation_by_metrics_threshold`: metrics by id aggregated
/// across; a metric that does not exist leaves the alarm without data;
/// Aodh's refusals (bad severity, state, enabled; time constraints, which
/// are not built) and duplicate actions kept once.
#[tokio::test]
async fn an_alarm_over_metrics_by_id_aggregates_across_them() {
    let Telemetry {
        cloud,
        svc,
        gnocchi,
        aodh,
    } = Telemetry::start("telemetry-by-metrics").await;
    let demo = cloud.token("demo", "demo").await;
    let now = chrono::Utc::now().timestamp();
    let iso = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();
    let mut ids = Vec::new();
    for value in [40.0, 80.0] {
        let m = gnocchi
            .ok(
                Method::POST,
                "/v1/metric",
                &demo,
                Some(json!({"archive_policy_name": "high"})),
            )
            .await;
        let id = m["id"].as_str().unwrap().to_owned();
        let points = json!([{"timestamp": iso(now - 1), "value": value}]);
        let (s, _) = gnocchi
            .call(
                Method::POST,
                &format!("/v1/metric/{id}/measures"),
                &demo,
                Some(points),
            )
            .await;
        assert_eq!(s, 202);
        ids.push(id);
    }
    let alarm = |metrics: Value, threshold: f64| {
        json!({"name": "across", "type": "gnocchi_aggregation_by_metrics_threshold",
               "alarm_actions": ["log://", "log://"],
               "gnocchi_aggregation_by_metrics_threshold_rule": {"metrics": metrics,
                   "aggregation_method": "mean", "granularity": 1, "threshold": threshold,
                   "comparison_operator": "gt"}})
    };
    // The mean across the two metrics is 60: above 50, not above 70.
    let above = aodh
        .ok(
            Method::POST,
            "/v2/alarms",
            &demo,
            Some(alarm(json!(ids), 50.0)),
        )
        .await;
    assert_eq!(above["alarm_actions"], json!(["log:"]), "kept once");
    let below = aodh
        .ok(
            Method::POST,
            "/v2/alarms",
            &demo,
            Some(alarm(json!(ids), 70.0)),
        )
        .await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let unknown = aodh
        .ok(
            Method::POST,
            "/v2/alarms",
            &demo,
            Some(alarm(json!([ids[0], missing]), 1.0)),
        )
        .await;
    ferrostack_telemetry::alarms::evaluate_all(&svc, now)
        .await
        .unwrap();
    let state = |a: &Value| format!("/v2/alarms/{}", a["alarm_id"].as_str().unwrap());
    let shown = aodh.ok(Method::GET, &state(&above), &demo, None).await;
    assert_eq!(shown["state"], "alarm", "{shown}");
    let shown = aodh.ok(Method::GET, &state(&below), &demo, None).await;
    assert_eq!(shown["state"], "ok", "{shown}");
    let shown = aodh.ok(Method::GET, &state(&unknown), &demo, None).await;
    // No data: it stays where it started (no transition, no action).
    assert_eq!(shown["state"], "insufficient data", "{shown}");

    for (key, value) in [
        ("severity", json!("dire")),
        ("state", json!("burning")),
        ("enabled", json!("yes")),
        (
            "time_constraints",
            json!([{"name": "tc", "start": "* 11 * * *", "duration": 10}]),
        ),
    ] {
        let mut body = alarm(json!(ids), 1.0);
        body[key] = value;
        let (s, err) = aodh
            .call(Method::POST, "/v2/alarms", &demo, Some(body))
            .await;
        assert_eq!(s, 400, "{key}: {err}");
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
    let (s, _) = aodh
        .call(
            Method::POST,
            "/v2/alarms",
            &demo,
            Some(alarm(json!([]), 1.0)),
        )
        .await;
    assert_eq!(s, 400, "an empty metrics list");
}
