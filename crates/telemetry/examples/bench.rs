//! The store's figures (run by `bench/telemetry.sh`): samples ingested per
//! second through the collector's path (raw sample, resource, metric,
//! rollups) on one writer, statistics queries over `DAYS` of 1-minute data
//! (period 1 h: one resource, all resources together, all of them grouped
//! by resource) as p50/p99, the process's resident memory after the
//! ingest, and the database's bytes per sample, each with
//! the issue's target beside it (≥ 50,000 samples/s; ≤ 50 ms for the
//! query over all resources).
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
    let cpu_before = cpu_seconds();
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
    let cpu = cpu_seconds() - cpu_before;
    let rate = total as f64 / secs;
    println!(
        "build {}, database {:?}; {total} {meter} samples = {resources} resources x {days} days of 1-minute samples",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        svc.db.backend
    );
    println!(
        "ingest     {} samples/s in {secs:.1} s, one writer, batches of {batch} (target >= 50,000) {}",
        thousands(rate),
        verdict(rate >= 50_000.0)
    );
    println!(
        "           {cpu:.1} s of CPU (user + system, every thread of the process) over the {secs:.1} s: {:.2} cores busy",
        cpu / secs
    );
    println!(
        "memory     {} (the bench's process: writer and its page cache, the pool, the batch)",
        rss()
    );
    let (p50, p99) = time_queries(&svc, &meter, start, resources, days, queries).await;
    println!(
        "statistics over {days} days of {resources} resources together, p50 {p50:.1} ms (target <= 50 ms) {}, p99 {p99:.1} ms {}",
        verdict(p50 <= 50.0),
        verdict(p99 <= 50.0)
    );
    let bytes = store_bytes(&svc.db, &dir).await;
    println!(
        "store      {} bytes = {:.0} bytes per sample (raw samples, derived samples, rollups, indexes)",
        thousands(bytes as f64),
        bytes as f64 / total as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CPU time of the process so far (user + system, all threads), from
/// `/proc/self/stat` in clock ticks of 1/100 s (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are
    // the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// The process's resident memory after the ingest and its peak, from
/// `/proc/self/status` (Linux; empty elsewhere).
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map(|kib| format!("{:.0} MiB", kib / 1024.0))
            .unwrap_or_else(|| "?".into())
    };
    format!("RSS {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(met: bool) -> &'static str {
    if met {
        "ok"
    } else {
        "NOT MET"
    }
}

/// Time the statistics queries (period 1 h over the days); the p50 and
/// p99 of the one over all resources (no grouping), the issue's query.
async fn time_queries(
    svc: &ferrostack_telemetry::TelemetryService,
    meter: &str,
    start: i64,
    resources: i64,
    days: i64,
    queries: usize,
) -> (f64, f64) {
    let since = Cond {
        field: Field::Timestamp,
        op: Op::Ge,
        value: QValue::Int(start * 1_000_000),
    };
    let one = Cond {
        field: Field::ResourceId,
        op: Op::Eq,
        value: QValue::Str(format!("vm-{:03}", resources / 2)),
    };
    let all = format!("{resources} resources together");
    let grouped = format!("{resources} resources grouped by resource");
    let cases = [
        ("one resource", vec![since.clone(), one], vec![]),
        (all.as_str(), vec![since.clone()], vec![]),
        (grouped.as_str(), vec![since], vec![GroupBy::ResourceId]),
    ];
    let mut issue = (f64::NAN, f64::NAN);
    for (label, conds, groupby) in cases {
        let q = StatsQuery {
            meter: meter.to_owned(),
            conds,
            period: 3600,
            groupby,
            scope: None,
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..queries {
            let t = Instant::now();
            rows = stats::statistics(svc, &q).await.unwrap().len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        if label == all {
            issue = (p50, p99);
        }
        println!(
            "  query over {days} days, period 1 h, {label}: {rows} statistics, p50 {p50:.1} ms, p99 {p99:.1} ms"
        );
    }
    issue
}

/// The database's size: the SQLite files in the data directory (or the
/// `DB_URL` file with its WAL), else the engine's own count.
async fn store_bytes(db: &ferrostack_db::Db, dir: &std::path::Path) -> u64 {
    use ferrostack_db::Backend;
    let sql = match db.backend {
        Backend::Sqlite => {
            let url = std::env::var("DB_URL").unwrap_or_default();
            let file = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            let files: Vec<std::path::PathBuf> = if file.is_empty() {
                std::fs::read_dir(dir)
                    .unwrap()
                    .filter_map(|e| Some(e.ok()?.path()))
                    .collect()
            } else {
                vec![file.clone().into(), format!("{file}-wal").into()]
            };
            return files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum();
        }
        Backend::Postgres => "SELECT CAST(pg_database_size(current_database()) AS BIGINT) AS n",
        Backend::MySql => "SELECT CAST(SUM(data_length + index_length) AS SIGNED) AS n FROM information_schema.tables WHERE table_schema = DATABASE()",
    };
    let row = ferrostack_db::sqlx::query(sql)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    ferrostack_db::sqlx::Row::try_get::<i64, _>(&row, "n").unwrap_or(0) as u64
}
