//! The telemetry database: Gnocchi's indexer (resource types, resources and
//! their history, metrics, archive policies and rules), the rollups that
//! are its time-series storage, and Ceilometer's raw samples.

pub mod alarms;
pub mod measures;
pub mod metrics;
pub mod policies;
pub mod resources;
pub mod samples;
pub mod sqlite;

use ferrostack_db::{Backend, Migration};

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "telemetry_initial",
    sql: "
CREATE TABLE archive_policies (name VARCHAR(255) PRIMARY KEY, back_window BIGINT NOT NULL, definition TEXT NOT NULL, aggregation_methods TEXT NOT NULL);
CREATE TABLE archive_policy_rules (name VARCHAR(255) PRIMARY KEY, metric_pattern VARCHAR(255) NOT NULL, archive_policy_name VARCHAR(255) NOT NULL);
CREATE TABLE resource_types (name VARCHAR(255) PRIMARY KEY, attributes TEXT NOT NULL, state VARCHAR(32) NOT NULL);
CREATE TABLE resources (id VARCHAR(64) PRIMARY KEY, type VARCHAR(255) NOT NULL, original_resource_id VARCHAR(255) NOT NULL, project_id VARCHAR(255), user_id VARCHAR(255), created_by_project_id VARCHAR(255) NOT NULL, created_by_user_id VARCHAR(255) NOT NULL, started_at BIGINT NOT NULL, ended_at BIGINT, revision BIGINT NOT NULL, revision_start BIGINT NOT NULL, attributes TEXT NOT NULL, first_sample BIGINT, last_sample BIGINT, metadata TEXT);
CREATE INDEX resources_project ON resources (project_id);
CREATE INDEX resources_type ON resources (type);
CREATE TABLE resource_history (id VARCHAR(64) NOT NULL, revision BIGINT NOT NULL, type VARCHAR(255) NOT NULL, project_id VARCHAR(255), user_id VARCHAR(255), started_at BIGINT NOT NULL, ended_at BIGINT, revision_start BIGINT NOT NULL, revision_end BIGINT NOT NULL, attributes TEXT NOT NULL, PRIMARY KEY (id, revision));
CREATE TABLE metrics (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255), resource_id VARCHAR(64), archive_policy_name VARCHAR(255) NOT NULL, unit VARCHAR(64), meter_type VARCHAR(16), created_by_project_id VARCHAR(255) NOT NULL, created_by_user_id VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX metrics_resource_name ON metrics (resource_id, name);
CREATE INDEX metrics_name ON metrics (name);
CREATE TABLE rollups (metric_id VARCHAR(36) NOT NULL, granularity BIGINT NOT NULL, bucket BIGINT NOT NULL, cnt BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL, sumsq DOUBLE PRECISION NOT NULL, vmin DOUBLE PRECISION NOT NULL, vmax DOUBLE PRECISION NOT NULL, first_ts BIGINT NOT NULL, first_v DOUBLE PRECISION NOT NULL, last_ts BIGINT NOT NULL, last_v DOUBLE PRECISION NOT NULL, PRIMARY KEY (metric_id, granularity, bucket));
CREATE TABLE samples (id VARCHAR(64) PRIMARY KEY, meter VARCHAR(255) NOT NULL, type VARCHAR(16) NOT NULL, unit VARCHAR(64) NOT NULL, volume DOUBLE PRECISION NOT NULL, user_id VARCHAR(255), project_id VARCHAR(255), resource_id VARCHAR(255) NOT NULL, ts BIGINT NOT NULL, recorded_at BIGINT NOT NULL, source VARCHAR(64) NOT NULL, metadata TEXT NOT NULL);
CREATE INDEX samples_meter_ts ON samples (meter, ts);
CREATE INDEX samples_resource_ts ON samples (resource_id, ts);
CREATE INDEX samples_ts ON samples (ts);
CREATE TABLE processed_messages (message_id VARCHAR(64) PRIMARY KEY, processed_at BIGINT NOT NULL);
CREATE INDEX processed_messages_at ON processed_messages (processed_at)
",
}, Migration {
    version: 2,
    name: "telemetry_alarms",
    sql: "
CREATE TABLE alarms (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255) NOT NULL, body TEXT NOT NULL);
CREATE INDEX alarms_project ON alarms (project_id);
CREATE TABLE alarm_history (event_id VARCHAR(36) PRIMARY KEY, alarm_id VARCHAR(36) NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL);
CREATE INDEX alarm_history_alarm ON alarm_history (alarm_id, seq)
",
}, Migration {
    version: 3,
    name: "telemetry_rates",
    sql: "
CREATE TABLE rate_rollups (metric_id VARCHAR(36) NOT NULL, granularity BIGINT NOT NULL, bucket BIGINT NOT NULL, cnt BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL, sumsq DOUBLE PRECISION NOT NULL, vmin DOUBLE PRECISION NOT NULL, vmax DOUBLE PRECISION NOT NULL, first_ts BIGINT NOT NULL, first_v DOUBLE PRECISION NOT NULL, last_ts BIGINT NOT NULL, last_v DOUBLE PRECISION NOT NULL, PRIMARY KEY (metric_id, granularity, bucket));
CREATE TABLE metric_heads (metric_id VARCHAR(36) PRIMARY KEY, ts BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL)
",
}, Migration {
    // Raw samples keyed by (time, id), no longer by the random id alone:
    // inserts land at the index's end instead of a random page each
    // (bench/telemetry.sh: ARCHITECTURE.md's figures). The time index is
    // the key's prefix now.
    version: 4,
    name: "telemetry_samples_by_time",
    sql: "
CREATE TABLE samples_by_time (id VARCHAR(64) NOT NULL, meter VARCHAR(255) NOT NULL, type VARCHAR(16) NOT NULL, unit VARCHAR(64) NOT NULL, volume DOUBLE PRECISION NOT NULL, user_id VARCHAR(255), project_id VARCHAR(255), resource_id VARCHAR(255) NOT NULL, ts BIGINT NOT NULL, recorded_at BIGINT NOT NULL, source VARCHAR(64) NOT NULL, metadata TEXT NOT NULL);
INSERT INTO samples_by_time (id, meter, type, unit, volume, user_id, project_id, resource_id, ts, recorded_at, source, metadata) SELECT id, meter, type, unit, volume, user_id, project_id, resource_id, ts, recorded_at, source, metadata FROM samples;
DROP TABLE samples;
ALTER TABLE samples_by_time RENAME TO samples;
CREATE UNIQUE INDEX samples_ts_id ON samples (ts, id);
CREATE INDEX samples_meter_ts ON samples (meter, ts);
CREATE INDEX samples_resource_ts ON samples (resource_id, ts)
",
}];

/// The migrations for `backend`: [`MIGRATIONS`] and the engine-specific
/// ones after them.
pub fn migrations(backend: Backend) -> Vec<Migration> {
    let mut all = MIGRATIONS.to_vec();
    all.push(Migration {
        version: 5,
        name: "telemetry_rollups_clustered",
        sql: match backend {
            Backend::Sqlite => CLUSTERED_ROLLUPS_SQLITE,
            // InnoDB keeps rows in primary-key order already; PostgreSQL's
            // heap has no such layout to choose.
            _ => "",
        },
    });
    all
}

/// Rollups stored in key order on SQLite (`WITHOUT ROWID`): a rowid table
/// holds each row in insertion order and its key again in the primary-key
/// index (48 of the ~160 bytes a rollup row cost), and a metric's buckets
/// at one granularity lay on as many pages as they had rows (a month of
/// hourly buckets: 720 page reads); in key order they are adjacent.
const CLUSTERED_ROLLUPS_SQLITE: &str = "
CREATE TABLE rollups_clustered (metric_id VARCHAR(36) NOT NULL, granularity BIGINT NOT NULL, bucket BIGINT NOT NULL, cnt BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL, sumsq DOUBLE PRECISION NOT NULL, vmin DOUBLE PRECISION NOT NULL, vmax DOUBLE PRECISION NOT NULL, first_ts BIGINT NOT NULL, first_v DOUBLE PRECISION NOT NULL, last_ts BIGINT NOT NULL, last_v DOUBLE PRECISION NOT NULL, PRIMARY KEY (metric_id, granularity, bucket)) WITHOUT ROWID;
INSERT INTO rollups_clustered (metric_id, granularity, bucket, cnt, total, sumsq, vmin, vmax, first_ts, first_v, last_ts, last_v) SELECT metric_id, granularity, bucket, cnt, total, sumsq, vmin, vmax, first_ts, first_v, last_ts, last_v FROM rollups;
DROP TABLE rollups;
ALTER TABLE rollups_clustered RENAME TO rollups;
CREATE TABLE rate_rollups_clustered (metric_id VARCHAR(36) NOT NULL, granularity BIGINT NOT NULL, bucket BIGINT NOT NULL, cnt BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL, sumsq DOUBLE PRECISION NOT NULL, vmin DOUBLE PRECISION NOT NULL, vmax DOUBLE PRECISION NOT NULL, first_ts BIGINT NOT NULL, first_v DOUBLE PRECISION NOT NULL, last_ts BIGINT NOT NULL, last_v DOUBLE PRECISION NOT NULL, PRIMARY KEY (metric_id, granularity, bucket)) WITHOUT ROWID;
INSERT INTO rate_rollups_clustered (metric_id, granularity, bucket, cnt, total, sumsq, vmin, vmax, first_ts, first_v, last_ts, last_v) SELECT metric_id, granularity, bucket, cnt, total, sumsq, vmin, vmax, first_ts, first_v, last_ts, last_v FROM rate_rollups;
DROP TABLE rate_rollups;
ALTER TABLE rate_rollups_clustered RENAME TO rate_rollups
";

/// Microseconds since the epoch: the store's time unit.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// `2026-01-01T00:00:00.000000` (Ceilometer's naive UTC form) and
/// `2026-01-01T00:00:00+00:00` (Gnocchi's) from microseconds.
pub fn iso_naive(us: i64) -> String {
    use chrono::{Datelike, Timelike};
    // Fields written directly: a month of hourly statistics formats
    // hundreds of thousands of these, and strftime parses its pattern
    // each time.
    let t = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_micros()
    )
}

pub fn iso_utc(us: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    if us % 1_000_000 == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// A timestamp as the APIs accept it: ISO 8601 with or without a zone
/// (naive is UTC), or seconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(f) = s.parse::<f64>() {
        return Some((f * 1e6) as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, fmt) {
            return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn naive_times_keep_six_fraction_digits() {
        assert_eq!(
            super::iso_naive(1_700_000_000_000_456),
            "2023-11-14T22:13:20.000456"
        );
        assert_eq!(super::iso_naive(0), "1970-01-01T00:00:00.000000");
    }
}
