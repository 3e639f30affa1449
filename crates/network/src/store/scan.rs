//! Reading a kind's documents a chunk at a time, in a stable order, from a
//! position: what a list page needs without loading every document of the
//! kind (10,000 ports are 7.7 MiB of JSON, parsed per request before).
//!
//! The order is the creation order (`seq`, ties broken by `id`) or the id;
//! either is served by an index on `(kind, seq)` or the primary key. The
//! indexed columns narrow the rows when a list filters on them.

use super::{with_rev, Kind, LookupColumn};
use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};
use serde_json::Value;

/// The order a scan walks the rows in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Creation order: Neutron's answer when no `sort_key` is given.
    Created,
    /// By id (`sort_key=id`).
    Id,
}

/// Where a row sits in either order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub seq: i64,
    pub id: String,
}

/// What a scan reads: a kind, an order and direction, and the indexed
/// narrowing the request allows. Every narrowing is also checked by the
/// list's own filters, so it only saves reading rows, never changes the
/// answer.
#[derive(Clone, Debug)]
pub struct Scan {
    pub kind: Kind,
    pub order: Order,
    pub descending: bool,
    pub lookup: Option<(LookupColumn, String)>,
    pub project_id: Option<String>,
    /// Ports holding this fixed IP (`fixed_ips=ip_address=…`).
    pub fixed_ip: Option<String>,
}

impl Scan {
    fn sql(&self, after: Option<&Position>) -> String {
        let mut sql = String::from("SELECT body, rev, seq, id FROM resources WHERE kind = ?");
        match &self.lookup {
            Some((LookupColumn::Parent, _)) => sql.push_str(" AND parent_id = ?"),
            Some((LookupColumn::Device, _)) => sql.push_str(" AND device_id = ?"),
            Some((LookupColumn::Host, _)) => sql.push_str(" AND host_id = ?"),
            None => {}
        }
        if self.project_id.is_some() {
            sql.push_str(" AND project_id = ?");
        }
        if self.fixed_ip.is_some() {
            sql.push_str(" AND id IN (SELECT port_id FROM ip_allocations WHERE ip_address = ?)");
        }
        let (cmp, dir) = if self.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if after.is_some() {
            match self.order {
                Order::Created => {
                    sql.push_str(&format!(" AND (seq {cmp} ? OR (seq = ? AND id {cmp} ?))"))
                }
                Order::Id => sql.push_str(&format!(" AND id {cmp} ?")),
            }
        }
        match self.order {
            Order::Created => sql.push_str(&format!(" ORDER BY seq {dir}, id {dir}")),
            Order::Id => sql.push_str(&format!(" ORDER BY id {dir}")),
        }
        sql.push_str(" LIMIT ?");
        sql
    }

    /// Up to `n` documents after `after` (from the start without it), each
    /// with its position.
    pub async fn chunk(
        &self,
        db: &Db,
        after: Option<&Position>,
        n: usize,
    ) -> Result<Vec<(Position, Value)>> {
        let sql = self.sql(after);
        let sql = db.sql(&sql);
        let mut q = sqlx::query(&sql).bind(self.kind.as_str());
        if let Some((_, value)) = &self.lookup {
            q = q.bind(value);
        }
        if let Some(p) = &self.project_id {
            q = q.bind(p);
        }
        if let Some(ip) = &self.fixed_ip {
            q = q.bind(ip);
        }
        if let Some(pos) = after {
            q = match self.order {
                Order::Created => q.bind(pos.seq).bind(pos.seq).bind(&pos.id),
                Order::Id => q.bind(&pos.id),
            };
        }
        let rows = q.bind(n as i64).fetch_all(&db.pool).await.db()?;
        Ok(rows
            .iter()
            .map(|r| {
                let pos = Position {
                    seq: r.int("seq"),
                    id: r.str("id"),
                };
                (pos, with_rev(r))
            })
            .collect())
    }
}

/// The position of one document, if it exists (a list's `marker`).
pub async fn position_of(db: &Db, kind: Kind, id: &str) -> Result<Option<Position>> {
    Ok(
        sqlx::query(&db.sql("SELECT seq, id FROM resources WHERE kind = ? AND id = ?"))
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .db()?
            .map(|r| Position {
                seq: r.int("seq"),
                id: r.str("id"),
            }),
    )
}

/// The documents of a kind with one of these ids (in no particular order).
pub async fn get_many(db: &Db, kind: Kind, ids: &[&str]) -> Result<Vec<Value>> {
    in_list(db, kind, "id", ids).await
}

/// The documents of a kind whose parent (a port's or subnet's network, a
/// rule's security group) is one of these.
pub async fn children_of(db: &Db, kind: Kind, parents: &[&str]) -> Result<Vec<Value>> {
    in_list(db, kind, "parent_id", parents).await
}

/// `column IN (…)`, a few hundred values at a time, in creation order.
async fn in_list(db: &Db, kind: Kind, column: &str, values: &[&str]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for part in values.chunks(500) {
        let marks = vec!["?"; part.len()].join(", ");
        let sql = format!(
            "SELECT body, rev FROM resources WHERE kind = ? AND {column} IN ({marks}) ORDER BY seq, id"
        );
        let sql = db.sql(&sql);
        let mut q = sqlx::query(&sql).bind(kind.as_str());
        for v in part {
            q = q.bind(*v);
        }
        out.extend(q.fetch_all(&db.pool).await.db()?.iter().map(with_rev));
    }
    Ok(out)
}

/// The ports holding one fixed IP address (on any network).
pub async fn ports_with_ip(db: &Db, ip: &str) -> Result<Vec<Value>> {
    Ok(sqlx::query(&db.sql(
        "SELECT body, rev FROM resources WHERE kind = 'port' AND id IN (SELECT port_id FROM ip_allocations WHERE ip_address = ?) ORDER BY seq, id",
    ))
    .bind(ip)
    .fetch_all(&db.pool)
    .await
    .db()?
    .iter()
    .map(with_rev)
    .collect())
}
