//! The collector's write path on every engine (SQLite, and MariaDB and
//! PostgreSQL when reachable): the rollups and rate rollups a few batches
//! fold into (new buckets inserted, existing ones merged by each engine's
//! upsert, late points counted in the measures only), and a redelivered
//! notification counted once.

use ferrostack_telemetry::meters::{MeterType, Reading};
use ferrostack_telemetry::query::{Cond, Field, Op, Value as QValue};
use ferrostack_telemetry::service::{Batch, TelemetryService};
use ferrostack_telemetry::stats;
use ferrostack_telemetry::store::{self, measures, measures::Series, samples::Sample};

fn cpu(minute: i64, base: i64) -> Reading {
    Reading {
        sample: Sample {
            id: format!("cpu-{minute}"),
            meter: "cpu".into(),
            kind: MeterType::Cumulative,
            unit: "ns".into(),
            volume: (minute * 1_000_000_000) as f64,
            user_id: Some("u".into()),
            project_id: Some("p".into()),
            resource_id: "vm-engines".into(),
            ts: (base + minute * 60) * 1_000_000,
            recorded_at: 0,
            source: "openstack".into(),
            metadata: serde_json::json!({}),
        },
        resource_type: "instance",
        attributes: Default::default(),
    }
}

fn batch(id: &str, minutes: &[i64], base: i64) -> Vec<Batch> {
    vec![Batch {
        message_id: Some(id.into()),
        readings: minutes.iter().map(|m| cpu(*m, base)).collect(),
    }]
}

async fn metric_id(svc: &TelemetryService, name: &str) -> String {
    let all = store::metrics::list_with_owner(&svc.db, Some(name))
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "one {name} metric");
    all[0].0.id.clone()
}

async fn hourly(svc: &TelemetryService, series: Series, metric: &str) -> measures::Acc {
    let rows = measures::read_one(&svc.db, series, metric, 3600, None, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one hourly bucket");
    rows[0].1
}

#[tokio::test]
async fn batches_fold_into_rollups_on_every_engine() {
    let hour = chrono::Utc::now().timestamp() / 3600 * 3600 - 2 * 3600;
    for db in ferrostack_db::testing::test_databases("telemetry_engines").await {
        let backend = db.backend;
        eprintln!("telemetry write path against {backend:?}");
        db.migrate(&store::migrations(backend)).await.unwrap();
        let config = ferrostack_core::config::Config::default();
        let svc = TelemetryService::new(db, config).await.unwrap();
        let first: Vec<i64> = (0..10).collect();
        assert_eq!(svc.record(batch("m1", &first, hour)).await.unwrap(), 19);
        // Out of order within the batch; minute 4.5 is late for the rates.
        let second = [25, 12, 10, 11];
        assert_eq!(svc.record(batch("m2", &second, hour)).await.unwrap(), 8);
        let mut late = cpu(4, hour);
        late.sample.id = "cpu-late".into();
        late.sample.ts += 30_000_000;
        late.sample.volume = 4.5e9;
        let third = vec![Batch {
            message_id: Some("m3".into()),
            readings: vec![late],
        }];
        svc.record(third).await.unwrap();
        // A redelivery adds nothing.
        assert_eq!(svc.record(batch("m1", &first, hour)).await.unwrap(), 0);

        let cpu_metric = metric_id(&svc, "cpu").await;
        let m = hourly(&svc, Series::Measures, &cpu_metric).await;
        assert_eq!(m.count, 15, "{backend:?}");
        let minutes_sum: i64 = first.iter().chain(&second).sum();
        assert_eq!(m.sum, minutes_sum as f64 * 1e9 + 4.5e9, "{backend:?}");
        assert_eq!((m.min, m.max), (0.0, 25e9), "{backend:?}");
        assert_eq!((m.first_ts, m.first), (hour * 1_000_000, 0.0));
        assert_eq!((m.last_ts, m.last), ((hour + 25 * 60) * 1_000_000, 25e9));
        let by_minute = measures::read_one(&svc.db, Series::Measures, &cpu_metric, 60, None, None)
            .await
            .unwrap();
        assert_eq!(by_minute.len(), 14, "minute 4 holds two points");

        // The differences: minutes 0..9 give 9, then 10, 11, 12, 25 continue
        // from 9 (the late point is not among them).
        let r = hourly(&svc, Series::Rates, &cpu_metric).await;
        assert_eq!(r.count, 13, "{backend:?}");
        assert_eq!(r.sum, 25e9, "{backend:?}");
        assert_eq!((r.min, r.max), (1e9, 13e9), "{backend:?}");

        // Statistics from the rollups, summed by the engine.
        let q = stats::StatsQuery {
            meter: "cpu".into(),
            conds: vec![Cond {
                field: Field::Timestamp,
                op: Op::Ge,
                value: QValue::Int(hour * 1_000_000),
            }],
            period: 3600,
            groupby: vec![],
            scope: None,
        };
        let st = stats::statistics(&svc, &q).await.unwrap();
        assert_eq!(st.len(), 1, "{backend:?}");
        assert_eq!(st[0]["count"], 15, "{backend:?}");
        assert_eq!(st[0]["sum"].as_f64(), Some(m.sum), "{backend:?}");
        assert_eq!(st[0]["max"].as_f64(), Some(25e9), "{backend:?}");
        assert_eq!(st[0]["duration"].as_f64(), Some(1500.0), "{backend:?}");
        // Ten-minute periods over the 1-minute buckets: several buckets
        // to a period, each period from the range's start.
        let ten = stats::StatsQuery { period: 600, ..q };
        let st = stats::statistics(&svc, &ten).await.unwrap();
        let counts: Vec<i64> = st.iter().map(|s| s["count"].as_i64().unwrap()).collect();
        assert_eq!(counts, [11, 3, 1], "{backend:?}");
        assert_eq!(
            st[2]["period_start"],
            store::iso_naive((hour + 1200) * 1_000_000)
        );
        assert_eq!(st[0]["max"].as_f64(), Some(9e9), "{backend:?}");

        let util = metric_id(&svc, "cpu_util").await;
        let u = hourly(&svc, Series::Measures, &util).await;
        assert_eq!(
            u.count, 14,
            "cpu_util (one from the late point), {backend:?}"
        );
    }
}
