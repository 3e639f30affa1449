//! Rates: the derived meters made on ingest from cumulative counters
//! (`cpu_util`, `….rate`, restart-safe), Gnocchi's `rate:*` aggregation
//! methods carried across measure batches, and `/v1/aggregates` over
//! metric ids and over a resource search.

use reqwest::Method;
use serde_json::{json, Value};

struct Env {
    _cloud: ferrostack_testkit::TestCloud,
    ceilo: ferrostack_testkit::Api,
    gnocchi: ferrostack_testkit::Api,
    admin: String,
    demo: String,
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
        svc,
        cloud.validator.clone(),
        &auth,
    ))
    .await;
    let demo = cloud.token("demo", "demo").await;
    let admin = cloud.token("admin", "admin").await;
    Env {
        admin,
        _cloud: cloud,
        ceilo: ferrostack_testkit::Api::new(c),
        gnocchi: ferrostack_testkit::Api::new(g),
        demo,
    }
}

fn at(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

fn volumes(samples: &Value) -> Vec<f64> {
    let mut v: Vec<(String, f64)> = samples
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["timestamp"].as_str().unwrap().to_owned(),
                s["counter_volume"].as_f64().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().map(|x| x.1).collect()
}

#[tokio::test]
async fn cumulative_counters_give_ceilometers_derived_meters() {
    let e = env("telemetry-derived").await;
    let t0 = chrono::Utc::now().timestamp() - 600;
    let cpu = |dt: i64, ns: f64| json!({"counter_name": "cpu", "counter_type": "cumulative", "counter_unit": "ns", "counter_volume": ns, "resource_id": "vm-r", "timestamp": at(t0 + dt), "resource_metadata": {"vcpus": 2}});
    // Two batches: the second continues from the stored sample.
    e.ceilo
        .ok(
            Method::POST,
            "/v2/meters/cpu",
            &e.demo,
            Some(json!([cpu(0, 0.0), cpu(10, 10e9)])),
        )
        .await;
    // The guest restarted: its counter starts again.
    e.ceilo
        .ok(
            Method::POST,
            "/v2/meters/cpu",
            &e.demo,
            Some(json!([cpu(20, 1e9)])),
        )
        .await;
    let util = e
        .ceilo
        .ok(
            Method::GET,
            "/v2/meters/cpu_util?q.field=resource_id&q.value=vm-r",
            &e.demo,
            None,
        )
        .await;
    // 10 s of CPU in 10 s over 2 vCPUs; then 1 s since the reset.
    assert_eq!(volumes(&util), vec![50.0, 5.0], "{util}");
    assert_eq!(util[0]["counter_unit"], "%");
    assert_eq!(util[0]["counter_type"], "gauge");

    let disk = |dev: &str, dt: i64, b: f64| json!({"counter_name": "disk.device.read.bytes", "counter_type": "cumulative", "counter_unit": "B", "counter_volume": b, "resource_id": format!("vm-r-{dev}"), "timestamp": at(t0 + dt), "resource_metadata": {"instance_id": "vm-r", "name": dev}});
    e.ceilo
        .ok(
            Method::POST,
            "/v2/meters/disk.device.read.bytes",
            &e.demo,
            Some(json!([
                disk("vda", 0, 0.0),
                disk("vdb", 0, 0.0),
                disk("vda", 10, 4096.0),
                disk("vdb", 10, 1024.0)
            ])),
        )
        .await;
    let dev = e
        .ceilo
        .ok(
            Method::GET,
            "/v2/meters/disk.device.read.bytes.rate?q.field=resource_id&q.value=vm-r-vda",
            &e.demo,
            None,
        )
        .await;
    assert_eq!(volumes(&dev), vec![409.6], "{dev}");
    let total = e
        .ceilo
        .ok(
            Method::GET,
            "/v2/meters/disk.read.bytes.rate?q.field=resource_id&q.value=vm-r",
            &e.demo,
            None,
        )
        .await;
    assert_eq!(volumes(&total), vec![512.0], "{total}");
    assert_eq!(total[0]["counter_unit"], "B/s");

    // Gnocchi files the cumulative meter under a rate policy.
    let res = e
        .gnocchi
        .ok(Method::GET, "/v1/resource/generic/vm-r", &e.demo, None)
        .await;
    let metric = res["metrics"]["cpu"].as_str().unwrap().to_owned();
    let m = e
        .gnocchi
        .ok(Method::GET, &format!("/v1/metric/{metric}"), &e.demo, None)
        .await;
    let methods = m["archive_policy"]["aggregation_methods"].to_string();
    assert!(methods.contains("rate:mean"), "{m}");
}

fn series(v: &Value) -> Vec<(String, f64)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a series: {v}"))
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[2].as_f64().unwrap()))
        .collect()
}

fn iso(secs: i64) -> String {
    format!("{}+00:00", at(secs))
}

#[tokio::test]
async fn rate_aggregations_and_aggregates() {
    let e = env("telemetry-rates").await;
    let g = &e.gnocchi;
    let demo = e.demo.as_str();
    let policy = json!({"name": "minutely-rate", "definition": [{"granularity": 60, "timespan": "1 day"}], "aggregation_methods": ["mean", "rate:mean", "rate:last"]});
    let (status, _) = g
        .call(
            Method::POST,
            "/v1/archive_policy",
            &e.demo,
            Some(policy.clone()),
        )
        .await;
    assert_eq!(status, 403, "only admins make policies");
    let p = g
        .ok(Method::POST, "/v1/archive_policy", &e.admin, Some(policy))
        .await;
    assert_eq!(
        p["aggregation_methods"],
        json!(["mean", "rate:mean", "rate:last"])
    );
    let metric = |name: &str| json!({"archive_policy_name": "minutely-rate", "name": name});
    let m1 = g
        .ok(Method::POST, "/v1/metric", &e.demo, Some(metric("c1")))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let m2 = g
        .ok(Method::POST, "/v1/metric", &e.demo, Some(metric("c2")))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = chrono::Utc::now().timestamp() / 60 * 60 - 600;
    let pts = |list: &[(i64, f64)]| {
        json!(list
            .iter()
            .map(|(t, v)| json!({"timestamp": at(base + t), "value": v}))
            .collect::<Vec<_>>())
    };
    let post = |id: &str, body: Value| {
        let path = format!("/v1/metric/{id}/measures");
        async move { g.call(Method::POST, &path, demo, Some(body)).await.0 }
    };
    assert_eq!(
        post(&m1, pts(&[(0, 0.0), (10, 10.0), (20, 30.0)])).await,
        202
    );
    // The next batch's first difference is from the last measure before.
    assert_eq!(post(&m1, pts(&[(60, 40.0), (70, 100.0)])).await, 202);
    assert_eq!(post(&m2, pts(&[(0, 1.0), (60, 3.0)])).await, 202);
    let read = |agg: &str| {
        let path = format!("/v1/metric/{m1}/measures?aggregation={agg}");
        async move { g.ok(Method::GET, &path, demo, None).await }
    };
    let want = |a: f64, b: f64| vec![(iso(base), a), (iso(base + 60), b)];
    assert_eq!(series(&read("rate:mean").await), want(15.0, 35.0));
    assert_eq!(series(&read("rate:last").await), want(20.0, 60.0));
    let (status, body) = g
        .call(
            Method::GET,
            &format!("/v1/metric/{m1}/measures?aggregation=rate:max"),
            &e.demo,
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");

    // Aggregates across metrics, by id.
    let agg = |ops: String| async move {
        g.ok(
            Method::POST,
            "/v1/aggregates?details=true",
            demo,
            Some(json!({ "operations": ops })),
        )
        .await
    };
    let v = agg(format!(
        "(aggregate sum (metric (({m1} rate:mean) ({m2} mean))))"
    ))
    .await;
    assert_eq!(
        series(&v["measures"]["aggregated"]),
        want(16.0, 38.0),
        "{v}"
    );
    let v = agg(format!("(* 2 (metric {m2} mean))")).await;
    assert_eq!(series(&v["measures"][&m2]["mean"]), want(2.0, 6.0), "{v}");
    assert_eq!(v["references"][0]["id"], m2.as_str());
    let (status, _) = g
        .call(
            Method::POST,
            "/v1/aggregates",
            &e.demo,
            Some(json!({"operations": "(frobnicate (metric x mean))"})),
        )
        .await;
    assert_eq!(status, 400);

    // By metric name over the resources a query-string search selects.
    let s = |t: i64, v: f64| json!({"counter_name": "memory.usage", "counter_type": "gauge", "counter_unit": "MB", "counter_volume": v, "resource_id": "vm-s", "timestamp": at(base + t)});
    e.ceilo
        .ok(
            Method::POST,
            "/v2/meters/memory.usage",
            &e.demo,
            Some(json!([s(0, 100.0), s(60, 300.0)])),
        )
        .await;
    let v = g
        .ok(
            Method::POST,
            &format!("/v1/aggregates?granularity=60&start={}", at(base)),
            &e.demo,
            Some(json!({"operations": "(metric memory.usage mean)", "search": "original_resource_id=vm-s", "resource_type": "generic"})),
        )
        .await;
    let rid = v["references"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        series(&v["measures"][&rid]["memory.usage"]["mean"]),
        want(100.0, 300.0),
        "{v}"
    );
    let grouped = g
        .ok(
            Method::POST,
            "/v1/aggregates?groupby=project_id",
            &e.demo,
            Some(json!({"operations": "(aggregate max (metric memory.usage mean))", "search": {"=": {"original_resource_id": "vm-s"}}})),
        )
        .await;
    assert_eq!(
        grouped[0]["group"]["project_id"].as_str().map(str::len),
        Some(32)
    );
    assert_eq!(
        series(&grouped[0]["measures"]["measures"]["aggregated"])
            .last()
            .map(|p| p.1),
        Some(300.0)
    );
}
