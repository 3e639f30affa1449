//! The identity database: schema (migrations) and one module of queries per
//! resource. Queries use `?` placeholders (rewritten for PostgreSQL by
//! [`Db::sql`]) and the portable column conventions of `ferrostack-db`.

pub mod app_creds;
pub mod assignments;
pub mod catalog;
pub mod documents;
pub mod groups;
pub mod projects;
pub mod revocations;
pub mod roles;
pub mod users;

use ferrostack_db::Migration;

/// Domains are stored as projects with `is_domain = 1` under this pseudo-domain,
/// as Keystone does, so names are unique per parent in one index.
pub const DOMAIN_ROOT: &str = "<<keystone.domain.root>>";
/// `domain_id` of global (not domain-specific) roles.
pub const NULL_DOMAIN: &str = "<<null>>";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
    version: 1,
    name: "identity_initial",
    sql: "
CREATE TABLE projects (id VARCHAR(64) PRIMARY KEY, name VARCHAR(64) NOT NULL, domain_id VARCHAR(64) NOT NULL, parent_id VARCHAR(64), description TEXT, enabled BIGINT NOT NULL, is_domain BIGINT NOT NULL, extra TEXT, created_at VARCHAR(32));
CREATE UNIQUE INDEX projects_domain_name ON projects (domain_id, name);
CREATE TABLE project_tags (project_id VARCHAR(64) NOT NULL, name VARCHAR(255) NOT NULL, PRIMARY KEY (project_id, name));
CREATE TABLE users (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, domain_id VARCHAR(64) NOT NULL, enabled BIGINT NOT NULL, default_project_id VARCHAR(64), password_hash VARCHAR(255), password_expires_at VARCHAR(32), options TEXT, extra TEXT, created_at VARCHAR(32));
CREATE UNIQUE INDEX users_domain_name ON users (domain_id, name);
CREATE TABLE identity_groups (id VARCHAR(64) PRIMARY KEY, name VARCHAR(64) NOT NULL, domain_id VARCHAR(64) NOT NULL, description TEXT, extra TEXT);
CREATE UNIQUE INDEX identity_groups_domain_name ON identity_groups (domain_id, name);
CREATE TABLE group_members (group_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, PRIMARY KEY (group_id, user_id));
CREATE TABLE roles (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, domain_id VARCHAR(64) NOT NULL, description TEXT, options TEXT, extra TEXT);
CREATE UNIQUE INDEX roles_name_domain ON roles (name, domain_id);
CREATE TABLE implied_roles (prior_role_id VARCHAR(64) NOT NULL, implied_role_id VARCHAR(64) NOT NULL, PRIMARY KEY (prior_role_id, implied_role_id));
CREATE TABLE assignments (kind VARCHAR(16) NOT NULL, actor_id VARCHAR(64) NOT NULL, target_id VARCHAR(64) NOT NULL, role_id VARCHAR(64) NOT NULL, inherited BIGINT NOT NULL, PRIMARY KEY (kind, actor_id, target_id, role_id, inherited));
CREATE TABLE regions (id VARCHAR(255) PRIMARY KEY, description TEXT, parent_region_id VARCHAR(255), extra TEXT);
CREATE TABLE services (id VARCHAR(64) PRIMARY KEY, service_type VARCHAR(255) NOT NULL, enabled BIGINT NOT NULL, extra TEXT);
CREATE TABLE endpoints (id VARCHAR(64) PRIMARY KEY, service_id VARCHAR(64) NOT NULL, interface VARCHAR(8) NOT NULL, url TEXT NOT NULL, region_id VARCHAR(255), enabled BIGINT NOT NULL, extra TEXT);
CREATE TABLE application_credentials (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, user_id VARCHAR(64) NOT NULL, project_id VARCHAR(64), secret_hash VARCHAR(255) NOT NULL, description TEXT, expires_at VARCHAR(32), unrestricted BIGINT NOT NULL, roles TEXT, access_rules TEXT, created_at VARCHAR(32));
CREATE UNIQUE INDEX application_credentials_user_name ON application_credentials (user_id, name);
CREATE TABLE revocation_events (id VARCHAR(64) PRIMARY KEY, audit_id VARCHAR(64), user_id VARCHAR(64), project_id VARCHAR(64), domain_id VARCHAR(64), role_id VARCHAR(64), app_cred_id VARCHAR(64), issued_before BIGINT NOT NULL, revoked_at BIGINT NOT NULL)
",
    },
    Migration {
        version: 2,
        name: "identity_documents",
        sql: "
CREATE TABLE credentials (id VARCHAR(64) PRIMARY KEY, owner_id VARCHAR(64) NOT NULL, body TEXT NOT NULL);
CREATE TABLE policies (id VARCHAR(64) PRIMARY KEY, owner_id VARCHAR(64) NOT NULL, body TEXT NOT NULL);
CREATE TABLE oauth_consumers (id VARCHAR(64) PRIMARY KEY, owner_id VARCHAR(64) NOT NULL, body TEXT NOT NULL);
CREATE TABLE endpoint_groups (id VARCHAR(64) PRIMARY KEY, owner_id VARCHAR(64) NOT NULL, body TEXT NOT NULL);
CREATE TABLE project_endpoint_groups (id VARCHAR(64) PRIMARY KEY, owner_id VARCHAR(64) NOT NULL, body TEXT NOT NULL);
CREATE TABLE domain_configs (id VARCHAR(64) PRIMARY KEY, owner_id VARCHAR(64) NOT NULL, body TEXT NOT NULL);
CREATE TABLE access_rules (id VARCHAR(64) PRIMARY KEY, owner_id VARCHAR(64) NOT NULL, body TEXT NOT NULL)
",
    },
];

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn now_str() -> String {
    ferrostack_core::time::iso_micros(chrono::Utc::now())
}

pub fn b(v: bool) -> i64 {
    v as i64
}

/// Merge a JSON object of free-form attributes into `obj` (Keystone echoes
/// unknown attributes back).
pub fn merge_extra(obj: &mut serde_json::Value, extra: &serde_json::Value) {
    if let (Some(o), Some(e)) = (obj.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}
