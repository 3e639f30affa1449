//! The compute database: instances (typed columns for what is filtered on,
//! the rest of the record as JSON), flavors, key pairs, quotas, services
//! and compute nodes, resource claims, sagas with their steps, instance
//! actions and external events, host aggregates and migration (resize)
//! records, block device mappings (`bdms.rs`), and the per-project rows
//! boots lock (`boot.rs`).

pub mod aggregates;
pub mod bdms;
pub mod boot;
pub mod catalog;
pub mod console_tokens;
pub mod hosts;
pub mod instances;
pub mod migrations;
pub mod sagas;
pub mod server_groups;

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, Migration, RowExt};

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "compute_initial",
    sql: "
CREATE TABLE instances (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, host VARCHAR(255), vm_state VARCHAR(32) NOT NULL, task_state VARCHAR(32), power_state BIGINT NOT NULL, deleted BIGINT NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL, seq BIGINT NOT NULL, rev BIGINT NOT NULL, body TEXT NOT NULL);
CREATE INDEX instances_project ON instances (project_id, deleted);
CREATE INDEX instances_host ON instances (host);
CREATE TABLE flavors (id VARCHAR(255) PRIMARY KEY, name VARCHAR(255) NOT NULL, ram BIGINT NOT NULL, vcpus BIGINT NOT NULL, disk BIGINT NOT NULL, ephemeral BIGINT NOT NULL, swap BIGINT NOT NULL, rxtx_factor VARCHAR(32) NOT NULL, is_public BIGINT NOT NULL, disabled BIGINT NOT NULL, description TEXT, extra_specs TEXT NOT NULL, seq BIGINT NOT NULL);
CREATE UNIQUE INDEX flavors_name ON flavors (name);
CREATE TABLE flavor_projects (flavor_id VARCHAR(255) NOT NULL, project_id VARCHAR(64) NOT NULL, PRIMARY KEY (flavor_id, project_id));
CREATE TABLE key_pairs (id BIGINT PRIMARY KEY, user_id VARCHAR(64) NOT NULL, name VARCHAR(255) NOT NULL, key_type VARCHAR(16) NOT NULL, public_key TEXT NOT NULL, fingerprint VARCHAR(255) NOT NULL, created_at VARCHAR(32) NOT NULL);
CREATE UNIQUE INDEX key_pairs_user_name ON key_pairs (user_id, name);
CREATE TABLE quotas (project_id VARCHAR(64) NOT NULL, resource VARCHAR(64) NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, resource));
CREATE TABLE services (id BIGINT PRIMARY KEY, host VARCHAR(255) NOT NULL, binary_name VARCHAR(64) NOT NULL, topic VARCHAR(64) NOT NULL, zone VARCHAR(255) NOT NULL, disabled BIGINT NOT NULL, disabled_reason TEXT, forced_down BIGINT NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32));
CREATE UNIQUE INDEX services_host_binary ON services (host, binary_name);
CREATE TABLE compute_nodes (id BIGINT PRIMARY KEY, host VARCHAR(255) NOT NULL, hypervisor_hostname VARCHAR(255) NOT NULL, hypervisor_type VARCHAR(64) NOT NULL, hypervisor_version BIGINT NOT NULL, host_ip VARCHAR(64) NOT NULL, cpu_info TEXT NOT NULL, vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL, local_gb BIGINT NOT NULL, vcpus_used BIGINT NOT NULL, memory_mb_used BIGINT NOT NULL, local_gb_used BIGINT NOT NULL, running_vms BIGINT NOT NULL, updated_at VARCHAR(32));
CREATE UNIQUE INDEX compute_nodes_host ON compute_nodes (host);
CREATE TABLE claims (instance_id VARCHAR(36) NOT NULL, purpose VARCHAR(16) NOT NULL, host VARCHAR(255) NOT NULL, vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL, disk_gb BIGINT NOT NULL, PRIMARY KEY (instance_id, purpose));
CREATE TABLE sagas (id VARCHAR(36) PRIMARY KEY, kind VARCHAR(32) NOT NULL, instance_id VARCHAR(36) NOT NULL, state VARCHAR(16) NOT NULL, params TEXT NOT NULL, error TEXT, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX sagas_state ON sagas (state);
CREATE TABLE saga_steps (saga_id VARCHAR(36) NOT NULL, step VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, state VARCHAR(16) NOT NULL, output TEXT, updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (saga_id, step));
CREATE TABLE instance_actions (id VARCHAR(36) PRIMARY KEY, instance_id VARCHAR(36) NOT NULL, action VARCHAR(64) NOT NULL, request_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, project_id VARCHAR(64) NOT NULL, start_time VARCHAR(32) NOT NULL, message TEXT, seq BIGINT NOT NULL);
CREATE INDEX instance_actions_instance ON instance_actions (instance_id);
CREATE TABLE instance_action_events (action_id VARCHAR(36) NOT NULL, event_name VARCHAR(64) NOT NULL, start_time VARCHAR(32) NOT NULL, finish_time VARCHAR(32), outcome VARCHAR(16), traceback TEXT, seq BIGINT NOT NULL);
CREATE INDEX instance_action_events_action ON instance_action_events (action_id);
CREATE TABLE external_events (instance_id VARCHAR(36) NOT NULL, name VARCHAR(64) NOT NULL, tag VARCHAR(255) NOT NULL, status VARCHAR(16) NOT NULL, received_at VARCHAR(32) NOT NULL, seq BIGINT NOT NULL);
CREATE INDEX external_events_instance ON external_events (instance_id)
",
}, Migration {
    version: 2,
    name: "compute_server_groups",
    sql: "CREATE TABLE server_groups (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255) NOT NULL, project_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, policy VARCHAR(32) NOT NULL, members TEXT NOT NULL, seq BIGINT NOT NULL)",
}, Migration {
    version: 3,
    name: "compute_aggregates_migrations",
    sql: "
CREATE TABLE aggregates (id BIGINT PRIMARY KEY, name VARCHAR(255) NOT NULL, hosts TEXT NOT NULL, metadata TEXT NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32));
CREATE UNIQUE INDEX aggregates_name ON aggregates (name);
CREATE TABLE migrations (id BIGINT PRIMARY KEY, instance_uuid VARCHAR(36) NOT NULL, source_compute VARCHAR(255), dest_compute VARCHAR(255), source_node VARCHAR(255), dest_node VARCHAR(255), dest_host VARCHAR(255), old_flavor_id VARCHAR(255) NOT NULL, new_flavor_id VARCHAR(255) NOT NULL, status VARCHAR(32) NOT NULL, migration_type VARCHAR(32) NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32));
CREATE INDEX migrations_instance ON migrations (instance_uuid)
",
}, Migration {
    version: 4,
    name: "compute_console_tokens",
    sql: "
CREATE TABLE console_auth_tokens (token_hash VARCHAR(64) PRIMARY KEY, console_type VARCHAR(32) NOT NULL, instance_id VARCHAR(36) NOT NULL, host VARCHAR(255) NOT NULL, target TEXT NOT NULL, access_url TEXT NOT NULL, expires_at BIGINT NOT NULL);
CREATE INDEX console_auth_tokens_instance ON console_auth_tokens (instance_id)
",
}, Migration {
    version: 5,
    name: "compute_quota_locks",
    sql: "CREATE TABLE quota_locks (project_id VARCHAR(64) PRIMARY KEY, generation BIGINT NOT NULL)",
}, Migration {
    version: 6,
    name: "compute_block_device_mappings",
    sql: bdms::MIGRATION_SQL,
}, Migration {
    version: 7,
    name: "compute_aggregate_uuids",
    sql: "ALTER TABLE aggregates ADD COLUMN uuid VARCHAR(36)",
}, Migration {
    version: 8,
    name: "compute_service_and_node_uuids",
    sql: "
ALTER TABLE services ADD COLUMN uuid VARCHAR(36);
ALTER TABLE compute_nodes ADD COLUMN uuid VARCHAR(36)
",
}, Migration {
    version: 9,
    name: "compute_migration_uuids",
    sql: "ALTER TABLE migrations ADD COLUMN uuid VARCHAR(36)",
}, Migration {
    version: 10,
    name: "compute_server_group_rules",
    sql: "ALTER TABLE server_groups ADD COLUMN max_server_per_host BIGINT",
}, Migration {
    version: 11,
    name: "compute_migration_owners",
    sql: "
ALTER TABLE migrations ADD COLUMN user_id VARCHAR(64);
ALTER TABLE migrations ADD COLUMN project_id VARCHAR(64)
",
}, Migration {
    version: 12,
    name: "compute_saga_owners",
    sql: "ALTER TABLE sagas ADD COLUMN owner VARCHAR(255)",
}, Migration {
    // What a server list filters on and quota usage sums, as columns, so
    // neither parses every instance's body (filled at start for older rows:
    // see `instances::backfill_list_columns`).
    version: 13,
    name: "compute_instance_list_columns",
    sql: "
ALTER TABLE instances ADD COLUMN name VARCHAR(255);
ALTER TABLE instances ADD COLUMN vcpus BIGINT;
ALTER TABLE instances ADD COLUMN memory_mb BIGINT;
CREATE INDEX instances_listing ON instances (deleted, seq);
CREATE INDEX instances_project_listing ON instances (project_id, deleted, seq)
",
}, Migration {
    // A live migration's progress as QEMU reports it (2.23's
    // `memory_*_bytes`, `disk_*_bytes`), and an abort asked for (2.24).
    version: 14,
    name: "compute_live_migration_progress",
    sql: "
ALTER TABLE migrations ADD COLUMN memory_total BIGINT;
ALTER TABLE migrations ADD COLUMN memory_processed BIGINT;
ALTER TABLE migrations ADD COLUMN memory_remaining BIGINT;
ALTER TABLE migrations ADD COLUMN disk_total BIGINT;
ALTER TABLE migrations ADD COLUMN disk_processed BIGINT;
ALTER TABLE migrations ADD COLUMN disk_remaining BIGINT;
ALTER TABLE migrations ADD COLUMN abort_requested BIGINT
",
}];

/// The tables whose rows gained a `uuid` (migrations 7–9; 2.41, 2.53 and
/// 2.59 show them).
const UUID_TABLES: &[&str] = &["aggregates", "services", "compute_nodes", "migrations"];

/// Give a uuid to the rows made before their table had the column (it is
/// added empty: SQL has no portable UUID function). Run once at start;
/// rows made since get theirs at insert.
pub async fn backfill_uuids(db: &Db) -> Result<()> {
    for table in UUID_TABLES {
        let missing = sqlx::query(&format!("SELECT id FROM {table} WHERE uuid IS NULL"))
            .fetch_all(&db.pool)
            .await
            .db()?;
        for r in missing {
            sqlx::query(&db.sql(&format!(
                "UPDATE {table} SET uuid = ? WHERE id = ? AND uuid IS NULL"
            )))
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(r.int("id"))
            .execute(&db.pool)
            .await
            .db()?;
        }
    }
    Ok(())
}

pub fn now() -> String {
    ferrostack_core::time::iso_seconds(chrono::Utc::now())
}

/// Microseconds since the epoch: a creation order that survives restarts.
/// A row's position in creation order: the time in microseconds, made
/// strictly increasing within the process (a boot of several servers
/// inserts them within one microsecond). Lists page on (seq, id), so a
/// tie between processes still pages correctly.
pub fn seq() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_micros();
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .expect("the closure always answers");
    now.max(prev + 1)
}

/// The next integer id of a table whose API ids are integers (services,
/// hypervisors, key pairs). Callers retry on a duplicate key.
pub async fn next_id(db: &Db, table: &str) -> Result<i64> {
    let r = sqlx::query(&format!("SELECT COALESCE(MAX(id), 0) AS n FROM {table}"))
        .fetch_one(&db.pool)
        .await
        .db()?;
    Ok(r.int("n") + 1)
}

pub use ferrostack_db::is_duplicate;
