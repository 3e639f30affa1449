//! Archive policies and archive policy rules.

use crate::archive::{self, ArchivePolicy, Level, Method};
use ferrostack_core::Result;
use ferrostack_db::{Db, DbResultExt, RowExt};
use serde_json::{json, Value};
use sqlx::any::AnyRow;

fn from_row(r: &AnyRow) -> ArchivePolicy {
    let definition = r
        .json("definition")
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| Level {
                    granularity: l[0].as_i64().unwrap_or(1),
                    timespan: l[1].as_i64().unwrap_or(1),
                })
                .collect()
        })
        .unwrap_or_default();
    let aggregation_methods = r
        .json("aggregation_methods")
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().and_then(Method::parse))
                .collect()
        })
        .unwrap_or_default();
    ArchivePolicy {
        name: r.str("name"),
        back_window: r.int("back_window"),
        definition,
        aggregation_methods,
    }
}

pub async fn insert(db: &Db, p: &ArchivePolicy) -> Result<()> {
    let definition: Vec<Value> = p
        .definition
        .iter()
        .map(|l| json!([l.granularity, l.timespan]))
        .collect();
    let methods: Vec<String> = p.aggregation_methods.iter().map(|a| a.name()).collect();
    sqlx::query(&db.sql(
        "INSERT INTO archive_policies (name, back_window, definition, aggregation_methods) VALUES (?, ?, ?, ?)",
    ))
    .bind(&p.name)
    .bind(p.back_window)
    .bind(Value::from(definition).to_string())
    .bind(json!(methods).to_string())
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn update_definition(db: &Db, p: &ArchivePolicy) -> Result<()> {
    let definition: Vec<Value> = p
        .definition
        .iter()
        .map(|l| json!([l.granularity, l.timespan]))
        .collect();
    sqlx::query(&db.sql("UPDATE archive_policies SET definition = ? WHERE name = ?"))
        .bind(Value::from(definition).to_string())
        .bind(&p.name)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn get(db: &Db, name: &str) -> Result<Option<ArchivePolicy>> {
    let row = sqlx::query(&db.sql("SELECT * FROM archive_policies WHERE name = ?"))
        .bind(name)
        .fetch_optional(&db.pool)
        .await
        .db()?;
    Ok(row.as_ref().map(from_row))
}

pub async fn list(db: &Db) -> Result<Vec<ArchivePolicy>> {
    let rows = sqlx::query("SELECT * FROM archive_policies ORDER BY name")
        .fetch_all(&db.pool)
        .await
        .db()?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn delete(db: &Db, name: &str) -> Result<bool> {
    let n = sqlx::query(&db.sql("DELETE FROM archive_policies WHERE name = ?"))
        .bind(name)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected();
    Ok(n > 0)
}

pub async fn in_use(db: &Db, name: &str) -> Result<bool> {
    let metric =
        sqlx::query(&db.sql("SELECT id FROM metrics WHERE archive_policy_name = ? LIMIT 1"))
            .bind(name)
            .fetch_optional(&db.pool)
            .await
            .db()?;
    let rule = sqlx::query(
        &db.sql("SELECT name FROM archive_policy_rules WHERE archive_policy_name = ? LIMIT 1"),
    )
    .bind(name)
    .fetch_optional(&db.pool)
    .await
    .db()?;
    Ok(metric.is_some() || rule.is_some())
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub metric_pattern: String,
    pub archive_policy_name: String,
}

impl Rule {
    pub fn view(&self) -> Value {
        json!({"name": self.name, "metric_pattern": self.metric_pattern, "archive_policy_name": self.archive_policy_name})
    }

    /// fnmatch with `*` only, as the patterns Gnocchi's rules use.
    pub fn matches(&self, metric: &str) -> bool {
        glob(&self.metric_pattern, metric)
    }
}

/// `*` globs (archive policy rules, event types).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    glob(pattern, s)
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

fn rule_row(r: &AnyRow) -> Rule {
    Rule {
        name: r.str("name"),
        metric_pattern: r.str("metric_pattern"),
        archive_policy_name: r.str("archive_policy_name"),
    }
}

pub async fn insert_rule(db: &Db, r: &Rule) -> Result<()> {
    sqlx::query(&db.sql(
        "INSERT INTO archive_policy_rules (name, metric_pattern, archive_policy_name) VALUES (?, ?, ?)",
    ))
    .bind(&r.name)
    .bind(&r.metric_pattern)
    .bind(&r.archive_policy_name)
    .execute(&db.pool)
    .await
    .db()?;
    Ok(())
}

pub async fn rules(db: &Db) -> Result<Vec<Rule>> {
    let rows = sqlx::query("SELECT * FROM archive_policy_rules ORDER BY name")
        .fetch_all(&db.pool)
        .await
        .db()?;
    Ok(rows.iter().map(rule_row).collect())
}

pub async fn rename_rule(db: &Db, name: &str, new_name: &str) -> Result<bool> {
    let n = sqlx::query(&db.sql("UPDATE archive_policy_rules SET name = ? WHERE name = ?"))
        .bind(new_name)
        .bind(name)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected();
    Ok(n > 0)
}

pub async fn delete_rule(db: &Db, name: &str) -> Result<bool> {
    let n = sqlx::query(&db.sql("DELETE FROM archive_policy_rules WHERE name = ?"))
        .bind(name)
        .execute(&db.pool)
        .await
        .db()?
        .rows_affected();
    Ok(n > 0)
}

/// The policy for a new metric: the rule with the longest pattern that
/// matches its name (Gnocchi's choice), else `fallback`.
pub async fn policy_for(db: &Db, metric: &str, fallback: &str) -> Result<String> {
    Ok(rule_policy(db, metric)
        .await?
        .unwrap_or_else(|| fallback.to_owned()))
}

/// The policy the longest matching rule names, if any rule matches.
pub async fn rule_policy(db: &Db, metric: &str) -> Result<Option<String>> {
    let mut rules = rules(db).await?;
    rules.sort_by_key(|r| std::cmp::Reverse(r.metric_pattern.len()));
    Ok(rules
        .into_iter()
        .find(|r| r.matches(metric))
        .map(|r| r.archive_policy_name))
}

/// Create Gnocchi's default policies and rule once.
pub async fn seed(db: &Db) -> Result<()> {
    for p in archive::defaults() {
        if get(db, &p.name).await?.is_none() {
            insert(db, &p).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_patterns() {
        assert!(super::glob("*", "cpu"));
        assert!(super::glob("disk.*", "disk.read.bytes"));
        assert!(!super::glob("disk.*", "cpu"));
        assert!(super::glob("a*c*e", "abcde"));
    }
}
