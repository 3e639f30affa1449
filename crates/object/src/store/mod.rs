//! The object database: accounts, containers and object records (what is
//! listed), and the data files that may have lost their record (what a
//! restart cleans). Listings page with `name > marker ... ORDER BY name
//! LIMIT n` on the primary key, so they never scan a directory or a whole
//! container. Names compare byte-wise: SQLite's default; PostgreSQL needs
//! the `C` collation and MySQL a `_bin` one for Swift's order.

pub mod accounts;
pub mod containers;
pub mod objects;

use ferrostack_db::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "object_initial",
    sql: "
CREATE TABLE accounts (name VARCHAR(255) PRIMARY KEY, meta TEXT NOT NULL, created_us BIGINT NOT NULL);
CREATE TABLE containers (account VARCHAR(255) NOT NULL, name VARCHAR(256) NOT NULL, meta TEXT NOT NULL, object_count BIGINT NOT NULL, bytes_used BIGINT NOT NULL, created_us BIGINT NOT NULL, modified_us BIGINT NOT NULL, PRIMARY KEY (account, name));
CREATE TABLE objects (account VARCHAR(255) NOT NULL, container VARCHAR(256) NOT NULL, name VARCHAR(1024) NOT NULL, data_id VARCHAR(36) NOT NULL, kind VARCHAR(8) NOT NULL, size BIGINT NOT NULL, etag VARCHAR(64) NOT NULL, content_type VARCHAR(256) NOT NULL, modified_us BIGINT NOT NULL, delete_at BIGINT, meta TEXT NOT NULL, PRIMARY KEY (account, container, name));
CREATE INDEX objects_delete_at ON objects (delete_at);
CREATE INDEX objects_data ON objects (data_id);
CREATE TABLE loose_data (data_id VARCHAR(36) PRIMARY KEY, created_us BIGINT NOT NULL)
",
}];

/// Microseconds since the epoch: Swift's timestamps, to the microsecond.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Swift's `X-Timestamp`: seconds with five decimals.
pub fn timestamp(us: i64) -> String {
    format!(
        "{}.{:05}",
        us.div_euclid(1_000_000),
        us.rem_euclid(1_000_000) / 10
    )
}

/// Metadata as stored: lowercase header name → value.
pub type Meta = std::collections::BTreeMap<String, String>;

pub(crate) fn meta_of(text: &str) -> Meta {
    serde_json::from_str(text).unwrap_or_default()
}

pub(crate) fn meta_text(meta: &Meta) -> String {
    serde_json::to_string(meta).unwrap_or_else(|_| "{}".into())
}

/// The smallest string greater than every string starting with `prefix`
/// (None: there is none, the prefix is all U+10FFFF).
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1).or_else(|| {
            // Skip the surrogate gap.
            (last as u32 == 0xD7FF).then_some('\u{E000}')
        }) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Which rows a listing wants, in Swift's terms.
#[derive(Clone, Debug, Default)]
pub struct ListRange {
    pub marker: Option<String>,
    pub end_marker: Option<String>,
    pub prefix: Option<String>,
    pub reverse: bool,
    pub limit: usize,
}

impl ListRange {
    /// `(where-clause, binds)` for a `name` column: after the marker,
    /// before the end marker, within the prefix, in order.
    pub(crate) fn clauses(&self) -> (String, Vec<String>) {
        let mut sql = String::new();
        let mut binds = Vec::new();
        let (after, before) = if self.reverse { ("<", ">") } else { (">", "<") };
        if let Some(m) = self.marker.as_ref().filter(|m| !m.is_empty()) {
            sql.push_str(&format!(" AND name {after} ?"));
            binds.push(m.clone());
        }
        if let Some(m) = self.end_marker.as_ref().filter(|m| !m.is_empty()) {
            sql.push_str(&format!(" AND name {before} ?"));
            binds.push(m.clone());
        }
        if let Some(p) = self.prefix.as_ref().filter(|p| !p.is_empty()) {
            sql.push_str(" AND name >= ?");
            binds.push(p.clone());
            if let Some(hi) = prefix_upper_bound(p) {
                sql.push_str(" AND name < ?");
                binds.push(hi);
            }
        }
        let order = if self.reverse { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY name {order} LIMIT {}", self.limit));
        (sql, binds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_upper_bound("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_upper_bound(""), None);
    }
}
