//! The volume database: schema and queries per resource.

pub mod operations;
pub mod quotas;
pub mod types;
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
];

pub fn now_str() -> String {
    ferrostack_core::time::iso_seconds(chrono::Utc::now())
}
