//! The store's figures (run by `bench/telemetry.sh`): samples ingested per
//! second through the collector's path (raw sample, resource, metric,
//! rollups) on one writer, a statistics query over `DAYS` of 1-minute data
//! (period 1 h, one resource and all of them grouped by resource) as
//! p50/p99, and the database's bytes per sample.
//!
//! Environment: RESOURCES (100), DAYS (30), BATCH (5000), QUERIES (50),
//! DB_URL (a fresh SQLite file in a temporary directory), METER (`cpu`, a
//! cumulative counter, from which `cpu_util` is derived on ingest as the
//! seed's compute agent did; any other name is a gauge with nothing
//! derived).

use ferrostack_telemetry::meters::{MeterType, Reading};
use ferrostack_telemetry::query::{Cond, Field, Op, Value as QValue};
use ferrostack_telemetry::service::Batch;
use ferrostack_telemetry::stats::{self, GroupBy, StatsQuery};
use ferrostack_telemetry::store::samples::Sample;
use std::time::Instant;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let resources = env("RESOURCES", 100);
    let days = env("DAYS", 30);
    let batch = env("BATCH", 5000) as usize;
    let queries = env("QUERIES", 50) as usize;
    let meter = std::env::var("METER").unwrap_or_else(|_| "cpu".into());
    let (kind, unit) = if meter == "cpu" {
        (MeterType::Cumulative, "ns")
    } else {
        (MeterType::Gauge, "MB")
    };
    let dir =
        std::env::temp_dir().join(format!("ferrostack-telemetry-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = ferrostack_core::config::Config::default();
    config.common.data_dir = dir.clone();
    config.telemetry.sample_retention_days = days as u64 + 1;
    if let Ok(url) = std::env::var("DB_URL") {
        config.telemetry.database_url = url;
    }
    let bus = ferrostack_bus::open("memory://").unwrap();
    let svc = ferrostack_telemetry::open(&config, bus).await.unwrap();

    let minutes = days * 1440;
    let end = chrono::Utc::now().timestamp() / 3600 * 3600;
    let start = end - minutes * 60;
    let total = resources * minutes;
    let mut pending = Vec::with_capacity(batch);
    let began = Instant::now();
    // Minute by minute, every resource: the order a collector sees.
    for m in 0..minutes {
        for r in 0..resources {
            let ts = (start + m * 60) * 1_000_000;
            pending.push(Reading {
                sample: Sample {
                    id: format!("{r}-{m}"),
                    meter: meter.clone(),
                    kind,
                    unit: unit.into(),
                    volume: (m * 1_000_000_000) as f64,
                    user_id: Some("u".into()),
                    project_id: Some(format!("p{}", r % 10)),
                    resource_id: format!("vm-{r:03}"),
                    ts,
                    recorded_at: 0,
                    source: "openstack".into(),
                    metadata: serde_json::json!({}),
                },
                resource_type: "instance",
                attributes: Default::default(),
            });
            if pending.len() == batch {
                let readings = std::mem::take(&mut pending);
                svc.record(vec![Batch {
                    message_id: None,
                    readings,
                }])
                .await
                .unwrap();
            }
        }
    }
    if !pending.is_empty() {
        svc.record(vec![Batch {
            message_id: None,
            readings: pending,
        }])
        .await
        .unwrap();
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "ingest: {total} {meter} samples in {secs:.1} s = {:.0} samples/s (one writer, batches of {batch})",
        total as f64 / secs
    );

    let from = chrono::DateTime::from_timestamp(start, 0)
        .unwrap()
        .timestamp_micros();
    let since = Cond {
        field: Field::Timestamp,
        op: Op::Ge,
        value: QValue::Int(from),
    };
    let one = Cond {
        field: Field::ResourceId,
        op: Op::Eq,
        value: QValue::Str(format!("vm-{:03}", resources / 2)),
    };
    for (label, conds, groupby) in [
        ("one resource", vec![since.clone(), one], vec![]),
        (
            &format!("{resources} resources grouped") as &str,
            vec![since.clone()],
            vec![GroupBy::ResourceId],
        ),
    ] {
        let q = StatsQuery {
            meter: meter.clone(),
            conds,
            period: 3600,
            groupby,
            scope: None,
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..queries {
            let t = Instant::now();
            rows = stats::statistics(&svc, &q).await.unwrap().len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "statistics over {days} days, period 1 h, {label}: {rows} rows, p50 {:.1} ms, p99 {:.1} ms",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "store: {bytes} bytes on disk = {:.0} bytes per sample (raw samples and rollups)",
        bytes as f64 / total as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
