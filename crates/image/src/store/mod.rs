//! The image database: schema and queries per resource.

pub mod images;
pub mod members;
pub mod metadefs;
pub mod tasks;

use ferrostack_db::Migration;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
    version: 1,
    name: "image_initial",
    sql: "
CREATE TABLE images (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255), status VARCHAR(30) NOT NULL, visibility VARCHAR(20) NOT NULL, protected BIGINT NOT NULL, os_hidden BIGINT NOT NULL, owner VARCHAR(255), size BIGINT, virtual_size BIGINT, checksum VARCHAR(32), os_hash_algo VARCHAR(64), os_hash_value VARCHAR(128), disk_format VARCHAR(20), container_format VARCHAR(20), min_disk BIGINT NOT NULL, min_ram BIGINT NOT NULL, tags TEXT, properties TEXT, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX images_owner ON images (owner);
CREATE TABLE image_members (image_id VARCHAR(36) NOT NULL, member VARCHAR(255) NOT NULL, status VARCHAR(20) NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (image_id, member))
",
    },
    Migration {
        version: 2,
        name: "image_tasks",
        sql: "
CREATE TABLE tasks (id VARCHAR(36) PRIMARY KEY, task_type VARCHAR(30) NOT NULL, status VARCHAR(30) NOT NULL, owner VARCHAR(255), image_id VARCHAR(36), request_id VARCHAR(64), user_id VARCHAR(64), input TEXT, result TEXT, message TEXT, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX tasks_image ON tasks (image_id)
",
    },
    Migration {
        version: 3,
        name: "image_metadefs",
        sql: "
CREATE TABLE metadef_namespaces (namespace VARCHAR(80) PRIMARY KEY, owner VARCHAR(255), body TEXT NOT NULL);
CREATE TABLE metadef_items (namespace VARCHAR(80) NOT NULL, kind VARCHAR(20) NOT NULL, name VARCHAR(255) NOT NULL, body TEXT NOT NULL, PRIMARY KEY (namespace, kind, name))
",
    },
    Migration {
        version: 4,
        name: "image_quota_locks",
        sql: "CREATE TABLE quota_locks (owner VARCHAR(255) PRIMARY KEY, generation BIGINT NOT NULL)",
    },
    Migration {
        version: 5,
        name: "image_upload_reservations",
        sql: "CREATE TABLE upload_reservations (image_id VARCHAR(36) PRIMARY KEY, owner VARCHAR(255) NOT NULL, bytes BIGINT NOT NULL)",
    },
];

pub fn now_str() -> String {
    ferrostack_core::time::iso_seconds(chrono::Utc::now())
}
