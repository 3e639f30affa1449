//! The derived meters Ceilometer's compute agent published through its
//! `rate_of_change` transformers (pipeline.yaml of the seed era): `cpu_util`
//! in % from the cumulative `cpu` nanoseconds, and `….rate` per second from
//! the cumulative disk and network counters, with the per-instance disk
//! totals (`disk.read.bytes.rate`, …) summed over the guest's devices.
//!
//! The compute hosts publish cumulative counters only; the rates are made
//! here, on ingest, from each counter and the previous sample of the same
//! resource and meter (this batch's, else the store's), so a restart of
//! either side loses nothing. A counter that went down was reset (a guest
//! restart): the new value is the increase since the reset, as
//! Ceilometer's transformer counts it, never a negative rate.

use crate::meters::{MeterType, Reading};
use crate::store::sqlite::{err, Tx};
use ferrostack_core::Result;
use ferrostack_db::{Db, DbResultExt, RowExt};
use sqlx::Row;
use std::collections::HashMap;

/// One transformation: a cumulative meter, the gauge it gives, its unit,
/// and the per-instance total it adds to (disk devices).
struct Rule {
    source: &'static str,
    target: &'static str,
    unit: &'static str,
    instance_total: Option<&'static str>,
}

const fn rule(source: &'static str, target: &'static str, unit: &'static str) -> Rule {
    Rule {
        source,
        target,
        unit,
        instance_total: None,
    }
}

const fn device(
    source: &'static str,
    target: &'static str,
    unit: &'static str,
    total: &'static str,
) -> Rule {
    Rule {
        source,
        target,
        unit,
        instance_total: Some(total),
    }
}

const RULES: &[Rule] = &[
    rule("cpu", "cpu_util", "%"),
    rule("disk.read.bytes", "disk.read.bytes.rate", "B/s"),
    rule("disk.read.requests", "disk.read.requests.rate", "request/s"),
    rule("disk.write.bytes", "disk.write.bytes.rate", "B/s"),
    rule(
        "disk.write.requests",
        "disk.write.requests.rate",
        "request/s",
    ),
    device(
        "disk.device.read.bytes",
        "disk.device.read.bytes.rate",
        "B/s",
        "disk.read.bytes.rate",
    ),
    device(
        "disk.device.read.requests",
        "disk.device.read.requests.rate",
        "request/s",
        "disk.read.requests.rate",
    ),
    device(
        "disk.device.write.bytes",
        "disk.device.write.bytes.rate",
        "B/s",
        "disk.write.bytes.rate",
    ),
    device(
        "disk.device.write.requests",
        "disk.device.write.requests.rate",
        "request/s",
        "disk.write.requests.rate",
    ),
    rule(
        "network.incoming.bytes",
        "network.incoming.bytes.rate",
        "B/s",
    ),
    rule(
        "network.incoming.packets",
        "network.incoming.packets.rate",
        "packet/s",
    ),
    rule(
        "network.outgoing.bytes",
        "network.outgoing.bytes.rate",
        "B/s",
    ),
    rule(
        "network.outgoing.packets",
        "network.outgoing.packets.rate",
        "packet/s",
    ),
];

fn rule_for(meter: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.source == meter)
}

/// Whether a meter is one of the derived ones (the dashboard and the
/// tests name them).
pub fn is_derived(meter: &str) -> bool {
    RULES
        .iter()
        .any(|r| r.target == meter || r.instance_total == Some(meter))
}

/// The last counter reading seen per (resource, meter) within one
/// `record` call, in front of the store.
#[derive(Default)]
pub struct Previous {
    seen: HashMap<(String, String), (i64, f64)>,
}

impl Previous {
    async fn get(
        &mut self,
        tx: &mut Tx<'_>,
        db: &Db,
        resource: &str,
        meter: &str,
        before: i64,
    ) -> Result<Option<(i64, f64)>> {
        const SQL: &str = "SELECT ts, volume FROM samples WHERE resource_id = ? AND meter = ? AND ts < ? ORDER BY ts DESC LIMIT 1";
        let key = (resource.to_owned(), meter.to_owned());
        if let Some(p) = self.seen.get(&key).filter(|p| p.0 < before) {
            return Ok(Some(*p));
        }
        match tx {
            Tx::Any(conn) => {
                let row = sqlx::query(&db.sql(SQL))
                    .bind(resource)
                    .bind(meter)
                    .bind(before)
                    .fetch_optional(&mut **conn)
                    .await
                    .db()?;
                Ok(row.map(|r| (r.int("ts"), r.try_get::<f64, _>("volume").unwrap_or(0.0))))
            }
            Tx::Sqlite(conn) => {
                use rusqlite::OptionalExtension;
                conn.prepare_cached(SQL)
                    .and_then(|mut q| {
                        q.query_row((resource, meter, before), |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()
                    })
                    .map_err(err)
            }
        }
    }

    fn remember(&mut self, resource: &str, meter: &str, ts: i64, v: f64) {
        let e = self
            .seen
            .entry((resource.to_owned(), meter.to_owned()))
            .or_insert((ts, v));
        if ts >= e.0 {
            *e = (ts, v);
        }
    }
}

/// The increase per second from `prev` to `(ts, v)`; a counter below its
/// previous value was reset and counts from zero.
pub fn per_second(prev: (i64, f64), ts: i64, v: f64) -> Option<f64> {
    let dt = (ts - prev.0) as f64 / 1e6;
    if dt <= 0.0 {
        return None;
    }
    let delta = if v >= prev.1 { v - prev.1 } else { v };
    Some(delta / dt)
}

/// `cpu_util`: CPU nanoseconds per second over the guest's vCPUs, in %
/// (Ceilometer's scale `100.0 / (10**9 * (resource_metadata.cpu_number or 1))`).
fn cpu_percent(ns_per_s: f64, r: &Reading) -> f64 {
    let md = &r.sample.metadata;
    let vcpus = ["vcpus", "cpu_number"]
        .iter()
        .find_map(|k| md[*k].as_f64().filter(|n| *n >= 1.0))
        .unwrap_or(1.0);
    ns_per_s * 100.0 / (1e9 * vcpus)
}

fn gauge(from: &Reading, meter: &str, unit: &str, volume: f64) -> Reading {
    let mut r = from.clone();
    r.sample.id = uuid::Uuid::new_v5(
        &crate::meters::SAMPLE_NAMESPACE,
        format!("{}/{meter}", from.sample.id).as_bytes(),
    )
    .to_string();
    r.sample.meter = meter.to_owned();
    r.sample.kind = MeterType::Gauge;
    r.sample.unit = unit.to_owned();
    r.sample.volume = volume;
    r
}

/// One poll's total: its time, the sum so far and the reading it is
/// stamped like.
type Poll = (i64, f64, Reading);

/// The derived readings of one batch of readings.
pub async fn rates(
    conn: &mut Tx<'_>,
    db: &Db,
    prev: &mut Previous,
    readings: &[Reading],
) -> Result<Vec<Reading>> {
    let mut out = Vec::new();
    // (instance, total meter) → the polls' (time, sum, the reading the
    // total is stamped like); one poll's devices are read within a second.
    let mut totals: HashMap<(String, &'static str), Vec<Poll>> = HashMap::new();
    for r in readings {
        let s = &r.sample;
        let Some(rule) = rule_for(&s.meter).filter(|_| s.kind == MeterType::Cumulative) else {
            continue;
        };
        let before = prev.get(conn, db, &s.resource_id, &s.meter, s.ts).await?;
        prev.remember(&s.resource_id, &s.meter, s.ts, s.volume);
        let Some(rate) = before.and_then(|p| per_second(p, s.ts, s.volume)) else {
            continue;
        };
        let value = if rule.target == "cpu_util" {
            cpu_percent(rate, r)
        } else {
            rate
        };
        out.push(gauge(r, rule.target, rule.unit, value));
        let instance = s.metadata["instance_id"].as_str();
        if let (Some(total), Some(instance)) = (rule.instance_total, instance) {
            let polls = totals.entry((instance.to_owned(), total)).or_default();
            match polls.iter_mut().find(|p| (p.0 - s.ts).abs() < 1_000_000) {
                Some(p) => p.1 += rate,
                None => polls.push((s.ts, rate, r.clone())),
            }
        }
    }
    let flat = totals
        .into_iter()
        .flat_map(|((i, m), polls)| polls.into_iter().map(move |p| (i.clone(), m, p)));
    for (instance, meter, (_, sum, from)) in flat {
        let unit = if meter.contains("requests") {
            "request/s"
        } else {
            "B/s"
        };
        let mut g = gauge(&from, meter, unit, sum);
        g.sample.id = uuid::Uuid::new_v5(
            &crate::meters::SAMPLE_NAMESPACE,
            format!("{}/{instance}/{meter}", from.sample.id).as_bytes(),
        )
        .to_string();
        g.sample.resource_id = instance;
        g.resource_type = "instance";
        g.attributes = Default::default();
        out.push(g);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_per_second_survive_a_counter_reset() {
        assert_eq!(per_second((0, 100.0), 2_000_000, 300.0), Some(100.0));
        // Reset: 50 counted since it, never negative.
        assert_eq!(per_second((0, 1000.0), 1_000_000, 50.0), Some(50.0));
        assert_eq!(per_second((5, 1.0), 5, 2.0), None);
    }

    #[test]
    fn derived_meters_are_named_as_ceilometer_named_them() {
        assert!(is_derived("cpu_util"));
        assert!(is_derived("disk.read.bytes.rate"));
        assert!(is_derived("network.incoming.bytes.rate"));
        assert!(!is_derived("cpu"));
        assert_eq!(rule_for("cpu").map(|r| r.unit), Some("%"));
    }
}
