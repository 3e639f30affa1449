//! The telemetry APIs end to end: notifications on the bus become meters
//! (`/v2/meters`), scoped per project; statistics over rollups agree with
//! those over raw samples; Ceilometer's 404 and 400s; Gnocchi's archive
//! policies, metrics, measures, resources with history and search.

use ferrostack_bus::Notification;
use ferrostack_telemetry::service::Batch;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

struct Env {
    cloud: ferrostack_testkit::TestCloud,
    svc: std::sync::Arc<ferrostack_telemetry::TelemetryService>,
    ceilo: ferrostack_testkit::Api,
    gnocchi: ferrostack_testkit::Api,
    admin: String,
    demo: String,
    admin_project: String,
    demo_project: String,
}

async fn env(name: &str) -> Env {
    let cloud = ferrostack_testkit::start(name, |_| {}).await;
    let svc = ferrostack_telemetry::open(&cloud.config, cloud.bus.clone())
        .await
        .expect("telemetry");
    let auth = cloud.auth_uri();
    let c = ferrostack_testkit::serve(ferrostack_telemetry::api::ceilometer_router(
        svc.clone(),
        cloud.validator.clone(),
        &auth,
    ))
    .await;
    let g = ferrostack_testkit::serve(ferrostack_telemetry::api::gnocchi_router(
        svc.clone(),
        cloud.validator.clone(),
        &auth,
    ))
    .await;
    let admin = cloud.token("admin", "admin").await;
    let demo = cloud.token("demo", "demo").await;
    let admin_project = cloud.project_of(&admin).await;
    let demo_project = cloud.project_of(&demo).await;
    Env {
        cloud,
        svc,
        ceilo: ferrostack_testkit::Api::new(c),
        gnocchi: ferrostack_testkit::Api::new(g),
        admin,
        demo,
        admin_project,
        demo_project,
    }
}

async fn eventually(
    api: &ferrostack_testkit::Api,
    path: &str,
    token: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let v = api.ok(Method::GET, path, token, None).await;
        if want(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never satisfied the condition");
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n.dedup();
    n
}

#[tokio::test]
async fn notifications_become_scoped_meters_and_ceilometer_errors() {
    let e = env("telemetry-meters").await;
    let bus = &e.cloud.bus;
    bus.notify("image.localhost", "image.upload", json!({"id": "6f6a4e88-0000-4000-8000-000000000001", "owner": e.admin_project, "size": 13_287_936, "name": "cirros"})).await.unwrap();
    bus.notify("compute.host", "compute.instance.create.end", json!({"instance_id": "6f6a4e88-0000-4000-8000-0000000000aa", "tenant_id": e.demo_project, "user_id": "u", "vcpus": 1, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0, "display_name": "vm1"})).await.unwrap();
    bus.notify("network.host", "floatingip.create.end", json!({"floatingip": {"id": "6f6a4e88-0000-4000-8000-0000000000f1", "project_id": e.demo_project}})).await.unwrap();
    bus.notify("volume.host", "volume.create.end", json!({"volume_id": "6f6a4e88-0000-4000-8000-0000000000b1", "tenant_id": e.demo_project, "size": 2})).await.unwrap();

    let all = eventually(&e.ceilo, "/v2/meters", &e.admin, |v| {
        v.as_array().unwrap().len() >= 9
    })
    .await;
    for want in [
        "image.size",
        "instance",
        "vcpus",
        "memory",
        "disk.root.size",
        "ip.floating",
        "volume.size",
    ] {
        assert!(
            names(&all).contains(&want.to_owned()),
            "{want} missing from {all}"
        );
    }
    let image = all
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "image.size")
        .unwrap();
    assert_eq!(image["type"], "gauge");
    assert_eq!(image["unit"], "B");
    assert_eq!(image["project_id"], e.admin_project.as_str());

    // demo sees only its project's meters and resources.
    let mine = e.ceilo.ok(Method::GET, "/v2/meters", &e.demo, None).await;
    assert!(!names(&mine).contains(&"image.size".to_owned()), "{mine}");
    assert!(names(&mine).contains(&"ip.floating".to_owned()));
    let resources = e
        .ceilo
        .ok(Method::GET, "/v2/resources", &e.demo, None)
        .await;
    assert!(resources
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["project_id"] == e.demo_project.as_str()));
    assert_eq!(resources.as_array().unwrap().len(), 3, "{resources}");

    let samples = e
        .ceilo
        .ok(Method::GET, "/v2/meters/memory", &e.demo, None)
        .await;
    assert_eq!(samples[0]["counter_volume"], 512.0);
    assert_eq!(samples[0]["counter_unit"], "MB");

    // Unknown meters are 404, malformed queries 400, in Ceilometer's words.
    let (s, body) = e
        .ceilo
        .call(Method::GET, "/v2/meters/no.such.meter", &e.admin, None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        body["error_message"]["faultstring"],
        "Meter no.such.meter Not Found"
    );
    let (s, body) = e
        .ceilo
        .call(
            Method::GET,
            "/v2/meters/image.size?q.field=resource_id&q.op=foo&q.value=x",
            &e.admin,
            None,
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        body["error_message"]["faultstring"]
            .as_str()
            .unwrap()
            .starts_with("Invalid input for field/attribute op. Value: 'foo'."),
        "{body}"
    );
    let (s, _) = e
        .ceilo
        .call(
            Method::GET,
            "/v2/samples?q.field=bogus&q.value=1",
            &e.admin,
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = e
        .ceilo
        .call(
            Method::GET,
            "/v2/meters/memory/statistics?period=-1",
            &e.admin,
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = e
        .ceilo
        .call(
            Method::GET,
            "/v2/meters/memory/statistics?groupby=bogus",
            &e.admin,
            None,
        )
        .await;
    assert_eq!(s, 400);
    // A non-admin asking for another project's samples is refused.
    let q = format!("/v2/samples?q.field=project_id&q.value={}", e.admin_project);
    let (s, _) = e.ceilo.call(Method::GET, &q, &e.demo, None).await;
    assert_eq!(s, 401);

    // The Gnocchi side sees the same resources, with their metrics.
    let vm = e
        .gnocchi
        .ok(
            Method::GET,
            "/v1/resource/instance/6f6a4e88-0000-4000-8000-0000000000aa",
            &e.demo,
            None,
        )
        .await;
    assert_eq!(vm["display_name"], "vm1");
    assert!(vm["metrics"]["vcpus"].is_string());
    let prom = e
        .gnocchi
        .http
        .get(format!("{}/metrics", e.gnocchi.base))
        .header("x-auth-token", &e.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        prom.contains(&format!(
            "ceilometer_memory{{project_id=\"{}\"",
            e.demo_project
        )),
        "{prom}"
    );
    assert!(prom.contains("# TYPE ceilometer_image_size gauge"));
}

#[tokio::test]
async fn a_notification_seen_twice_is_counted_once() {
    let e = env("telemetry-idempotent").await;
    let n = Notification {
        message_id: "3c1f8a4e-1111-4111-8111-000000000001".into(),
        publisher_id: "volume.host".into(),
        event_type: "volume.exists".into(),
        priority: "INFO".into(),
        // Recent: samples past `sample_retention_days` are expired at start.
        timestamp: chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string(),
        payload: json!({"volume_id": "v1", "tenant_id": e.demo_project, "size": 5}),
    };
    for _ in 0..3 {
        let readings = ferrostack_telemetry::meters::from_notification(&n);
        e.svc
            .record(vec![Batch {
                message_id: Some(n.message_id.clone()),
                readings,
            }])
            .await
            .unwrap();
    }
    // After a restart (a new service on the same database) too.
    let again = ferrostack_telemetry::open(&e.cloud.config, e.cloud.bus.clone())
        .await
        .unwrap();
    again
        .record(vec![Batch {
            message_id: Some(n.message_id.clone()),
            readings: ferrostack_telemetry::meters::from_notification(&n),
        }])
        .await
        .unwrap();
    let stats = e
        .ceilo
        .ok(
            Method::GET,
            "/v2/meters/volume.size/statistics",
            &e.admin,
            None,
        )
        .await;
    assert_eq!(stats[0]["count"], 1, "{stats}");
    assert_eq!(stats[0]["sum"], 5.0);
}

#[tokio::test]
async fn statistics_from_rollups_match_raw_samples() {
    let e = env("telemetry-stats").await;
    let base = chrono::Utc::now().timestamp() / 3600 * 3600 - 3 * 3600;
    let mut posted = Vec::new();
    for i in 0..180 {
        let ts = chrono::DateTime::from_timestamp(base + i * 60 + 7, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        posted.push(json!({"counter_name": "cpu", "counter_type": "cumulative", "counter_unit": "ns", "counter_volume": i as f64 * 10.0, "resource_id": if i % 2 == 0 { "vm-a" } else { "vm-b" }, "timestamp": ts}));
    }
    let back = e
        .ceilo
        .ok(
            Method::POST,
            "/v2/meters/cpu",
            &e.demo,
            Some(Value::Array(posted)),
        )
        .await;
    assert_eq!(back.as_array().unwrap().len(), 180);
    assert_eq!(back[0]["project_id"], e.demo_project.as_str());
    let start = chrono::DateTime::from_timestamp(base, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    // Aligned start: rollups; a metadata condition forces raw samples.
    let fast = e.ceilo.ok(Method::GET, &format!("/v2/meters/cpu/statistics?period=3600&q.field=timestamp&q.op=ge&q.value={start}&groupby=resource_id"), &e.demo, None).await;
    let raw = e.ceilo.ok(Method::GET, &format!("/v2/meters/cpu/statistics?period=3600&q.field=timestamp&q.op=ge&q.value={start}&q.field=metadata.none&q.op=ne&q.value=x&groupby=resource_id"), &e.demo, None).await;
    assert_eq!(fast.as_array().unwrap().len(), 6, "{fast}");
    assert_eq!(fast, raw);
    let first = &fast[0];
    assert_eq!(first["count"], 30);
    assert_eq!(first["period"], 3600);
    assert_eq!(first["groupby"]["resource_id"], "vm-a");
    assert_eq!(first["min"], 0.0);
    assert_eq!(first["max"], 580.0);
    assert_eq!(first["avg"], 290.0);
    // Without a period: one statistic over everything.
    let one = e
        .ceilo
        .ok(Method::GET, "/v2/meters/cpu/statistics", &e.demo, None)
        .await;
    assert_eq!(one[0]["count"], 180);
    assert_eq!(one[0]["unit"], "ns");
    let samples = e
        .ceilo
        .ok(
            Method::GET,
            "/v2/samples?q.field=resource_id&q.value=vm-b&q.field=meter&q.value=cpu&limit=5",
            &e.demo,
            None,
        )
        .await;
    assert_eq!(samples.as_array().unwrap().len(), 5);
    assert_eq!(samples[0]["volume"], 1790.0);
}

#[tokio::test]
async fn gnocchi_policies_metrics_measures_resources() {
    let e = env("telemetry-gnocchi").await;
    let g = &e.gnocchi;
    let low = g
        .ok(Method::GET, "/v1/archive_policy/low", &e.demo, None)
        .await;
    assert_eq!(
        low["definition"],
        json!([{"granularity": "0:05:00", "points": 8640, "timespan": "30 days, 0:00:00"}])
    );
    assert_eq!(
        low["aggregation_methods"],
        json!(["mean", "min", "max", "sum", "std", "count"])
    );
    let high = g
        .ok(Method::GET, "/v1/archive_policy/high", &e.demo, None)
        .await;
    assert_eq!(
        high["definition"][0],
        json!({"granularity": "0:00:01", "points": 3600, "timespan": "1:00:00"})
    );
    let (s, _) = g
        .call(
            Method::POST,
            "/v1/archive_policy",
            &e.demo,
            Some(json!({"name": "x", "definition": [{"granularity": "1s", "points": 10}]})),
        )
        .await;
    assert_eq!(s, 403);
    let p = g.ok(Method::POST, "/v1/archive_policy", &e.admin, Some(json!({"name": "tiny", "definition": [{"granularity": "1s", "timespan": "1 hour"}, {"granularity": 60, "points": 60}], "aggregation_methods": ["-std", "+last"]}))).await;
    assert_eq!(p["definition"][1]["timespan"], "1:00:00");
    g.ok(
        Method::POST,
        "/v1/archive_policy_rule",
        &e.admin,
        Some(json!({"name": "cpu-tiny", "metric_pattern": "cpu*", "archive_policy_name": "tiny"})),
    )
    .await;

    let m = g
        .ok(
            Method::POST,
            "/v1/metric",
            &e.demo,
            Some(json!({"name": "cpu.util", "unit": "%"})),
        )
        .await;
    assert_eq!(m["archive_policy"]["name"], "tiny");
    let id = m["id"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp() / 60 * 60;
    let iso = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();
    let measures = json!([{"timestamp": iso(now), "value": 1.0}, {"timestamp": iso(now + 1), "value": 3.0}, {"timestamp": iso(now + 2), "value": 8.0}]);
    let r = g
        .http
        .post(format!("{}/v1/metric/{id}/measures", g.base))
        .header("x-auth-token", &e.demo)
        .json(&measures)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let got = g
        .ok(
            Method::GET,
            &format!("/v1/metric/{id}/measures"),
            &e.demo,
            None,
        )
        .await;
    assert_eq!(
        got[0],
        json!([
            chrono::DateTime::from_timestamp(now, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S+00:00")
                .to_string(),
            60.0,
            4.0
        ])
    );
    assert_eq!(
        got.as_array().unwrap().len(),
        4,
        "one minute bucket and three seconds: {got}"
    );
    let last = g
        .ok(
            Method::GET,
            &format!("/v1/metric/{id}/measures?aggregation=last&granularity=60"),
            &e.demo,
            None,
        )
        .await;
    assert_eq!(last, json!([[got[0][0].clone(), 60.0, 8.0]]));
    let (s, _) = g
        .call(
            Method::GET,
            &format!("/v1/metric/{id}/measures?aggregation=std"),
            &e.demo,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, body) = g
        .call(
            Method::POST,
            &format!("/v1/metric/{id}/measures"),
            &e.demo,
            Some(json!([{"timestamp": "never", "value": 1}])),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    // Another project does not see the metric.
    let (s, _) = g
        .call(
            Method::GET,
            &format!("/v1/metric/{id}"),
            &e.cloud.token("admin", "demo").await,
            None,
        )
        .await;
    assert_eq!(s, 200, "admins see every metric");

    // Resources: create with a metric, update (a new revision), history, search.
    let rid = "5d0f4c8e-2222-4222-8222-000000000001";
    let made = g.ok(Method::POST, "/v1/resource/instance", &e.demo, Some(json!({"id": rid, "project_id": e.demo_project, "display_name": "a", "metrics": {"cpu": {"archive_policy_name": "low"}}}))).await;
    assert_eq!(made["display_name"], "a");
    let (s, _) = g
        .call(
            Method::POST,
            "/v1/resource/instance",
            &e.demo,
            Some(json!({"id": rid, "project_id": e.demo_project})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = g
        .call(
            Method::POST,
            "/v1/resource/instance",
            &e.demo,
            Some(json!({"id": "x", "bogus": 1})),
        )
        .await;
    assert_eq!(s, 400);
    g.ok(
        Method::PATCH,
        &format!("/v1/resource/instance/{rid}"),
        &e.demo,
        Some(json!({"display_name": "b"})),
    )
    .await;
    let hist = g
        .ok(
            Method::GET,
            &format!("/v1/resource/instance/{rid}/history"),
            &e.demo,
            None,
        )
        .await;
    assert_eq!(hist.as_array().unwrap().len(), 2);
    assert_eq!(hist[0]["display_name"], "a");
    assert_eq!(hist[1]["display_name"], "b");
    assert!(hist[0]["revision_end"].is_string() && hist[1]["revision_end"].is_null());
    let found = g
        .ok(
            Method::POST,
            "/v1/search/resource/instance",
            &e.demo,
            Some(json!({"and": [{"=": {"display_name": "b"}}, {"like": {"id": "5d0f%"}}]})),
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let batch = json!({rid: {"cpu": [{"timestamp": iso(now), "value": 42.0}], "new.one": {"archive_policy_name": "low", "measures": [{"timestamp": iso(now), "value": 1.0}]}}});
    let r = g
        .http
        .post(format!(
            "{}/v1/batch/resources/metrics/measures?create_metrics=true",
            g.base
        ))
        .header("x-auth-token", &e.demo)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let cpu = g
        .ok(
            Method::GET,
            &format!("/v1/resource/instance/{rid}/metric/cpu/measures"),
            &e.demo,
            None,
        )
        .await;
    assert_eq!(cpu[0][2], 42.0);
    let agg = g
        .ok(
            Method::POST,
            "/v1/aggregates",
            &e.demo,
            Some(json!({"operations": format!("(metric {id} max)")})),
        )
        .await;
    assert_eq!(agg["measures"][id]["max"][0][2], 8.0);
    let (s, _) = g
        .call(
            Method::DELETE,
            &format!("/v1/resource/instance/{rid}"),
            &e.admin,
            None,
        )
        .await;
    assert_eq!(s, 204);
}
