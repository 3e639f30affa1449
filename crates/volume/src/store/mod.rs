//! The volume database: schema and queries per resource.

pub mod attachments;
pub mod backups;
pub mod encryption;
pub mod groups;
pub mod messages;
pub mod operations;
pub mod qos;
pub mod quota_classes;
pub mod quotas;
pub mod services;
pub mod snapshots;
pub mod transfers;
pub mod type_access;
pub mod types;
pub mod usage;
pub mod volumes;

use ferrostack_db::Migration;

/// The id of the `__DEFAULT__` volume type every deployment has (Cinder
/// makes one at its first migration, as here).
pub const DEFAULT_TYPE_ID: &str = "a1b2c3d4-0000-4000-8000-00000000d3fa";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
    version: 1,
    name: "volume_initial",
    sql: "
CREATE TABLE volumes (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, name VARCHAR(255), description TEXT, size BIGINT NOT NULL, status VARCHAR(30) NOT NULL, volume_type_id VARCHAR(36) NOT NULL, availability_zone VARCHAR(255) NOT NULL, bootable BIGINT NOT NULL, metadata TEXT NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX volumes_project ON volumes (project_id);
CREATE TABLE volume_types (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255) NOT NULL, description TEXT, is_public BIGINT NOT NULL, extra_specs TEXT NOT NULL, created_at VARCHAR(32) NOT NULL);
CREATE UNIQUE INDEX volume_types_name ON volume_types (name);
INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at) VALUES ('a1b2c3d4-0000-4000-8000-00000000d3fa', '__DEFAULT__', 'Default Volume Type', 1, '{}', '2026-01-01T00:00:00');
CREATE TABLE quotas (project_id VARCHAR(64) NOT NULL, resource VARCHAR(64) NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, resource));
CREATE TABLE quota_locks (project_id VARCHAR(64) PRIMARY KEY, generation BIGINT NOT NULL);
CREATE TABLE operations (id VARCHAR(36) PRIMARY KEY, kind VARCHAR(30) NOT NULL, volume_id VARCHAR(36) NOT NULL, state VARCHAR(20) NOT NULL, error TEXT, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX operations_state ON operations (state)
",
    },
    Migration {
        version: 2,
        name: "volume_operation_params",
        sql: "ALTER TABLE operations ADD COLUMN params TEXT",
    },
    Migration {
        version: 3,
        name: "volume_attachments",
        sql: attachments::SCHEMA,
    },
    Migration {
        version: 4,
        name: "volume_data",
        sql: "
ALTER TABLE volumes ADD COLUMN snapshot_id VARCHAR(36);
ALTER TABLE volumes ADD COLUMN source_volid VARCHAR(36);
ALTER TABLE volumes ADD COLUMN image_metadata TEXT;
CREATE TABLE snapshots (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, volume_id VARCHAR(36) NOT NULL, name VARCHAR(255), description TEXT, size BIGINT NOT NULL, status VARCHAR(30) NOT NULL, metadata TEXT NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX snapshots_project ON snapshots (project_id);
CREATE INDEX snapshots_volume ON snapshots (volume_id);
CREATE TABLE backups (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, volume_id VARCHAR(36) NOT NULL, name VARCHAR(255), description TEXT, size BIGINT NOT NULL, status VARCHAR(30) NOT NULL, fail_reason TEXT, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX backups_project ON backups (project_id);
CREATE TABLE transfers (id VARCHAR(36) PRIMARY KEY, volume_id VARCHAR(36) NOT NULL, project_id VARCHAR(64) NOT NULL, name VARCHAR(255), salt VARCHAR(64) NOT NULL, crypt_hash VARCHAR(128) NOT NULL, created_at VARCHAR(32) NOT NULL);
CREATE UNIQUE INDEX transfers_volume ON transfers (volume_id);
CREATE TABLE volume_type_access (volume_type_id VARCHAR(36) NOT NULL, project_id VARCHAR(64) NOT NULL, PRIMARY KEY (volume_type_id, project_id))
",
    },
    Migration {
        version: 5,
        name: "volume_qos_specs",
        sql: qos::SCHEMA,
    },
    Migration {
        version: 6,
        name: "volume_quota_classes",
        sql: quota_classes::SCHEMA,
    },
    Migration {
        version: 7,
        name: "volume_services_frozen",
        sql: services::FROZEN_SCHEMA,
    },
    Migration {
        version: 8,
        name: "volume_backup_chains",
        sql: backups::SCHEMA_V8,
    },
    Migration {
        version: 9,
        name: "volume_snapshot_progress",
        sql: snapshots::PROGRESS_SCHEMA,
    },
    Migration {
        version: 10,
        name: "volume_user_messages",
        sql: messages::SCHEMA,
    },
    Migration {
        version: 11,
        name: "volume_type_encryption",
        sql: encryption::SCHEMA,
    },
    Migration {
        version: 12,
        name: "volume_groups",
        sql: groups::SCHEMA,
    },
];

/// The rows of `table` (a name from this module, never input) of one
/// project or of all (`None`), newest first, as every list shows them.
pub async fn newest_first(
    db: &ferrostack_db::Db,
    table: &'static str,
    project_id: Option<&str>,
) -> ferrostack_core::Result<Vec<ferrostack_db::sqlx::any::AnyRow>> {
    use ferrostack_db::{sqlx, DbResultExt};
    let order = "ORDER BY created_at DESC, id DESC";
    match project_id {
        Some(p) => {
            let sql = format!("SELECT * FROM {table} WHERE project_id = ? {order}");
            sqlx::query(&db.sql(&sql)).bind(p).fetch_all(&db.pool).await
        }
        None => {
            let sql = format!("SELECT * FROM {table} {order}");
            sqlx::query(&sql).fetch_all(&db.pool).await
        }
    }
    .db()
}

/// A database failure as the service's error (a 500 whose detail is
/// logged, never shown).
pub fn db_err(e: impl std::fmt::Display) -> ferrostack_core::Error {
    ferrostack_core::Error::Internal(e.to_string())
}

pub fn now_str() -> String {
    ferrostack_core::time::iso_seconds(chrono::Utc::now())
}
