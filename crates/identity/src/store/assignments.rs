//! Role assignments: (actor, target, role) with the actor a user or group and
//! the target a project, a domain or the system.

use ferrostack_core::Result;
use ferrostack_db::{sqlx, Db, DbResultExt, RowExt};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    UserProject,
    GroupProject,
    UserDomain,
    GroupDomain,
    UserSystem,
    GroupSystem,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UserProject => "UserProject",
            Kind::GroupProject => "GroupProject",
            Kind::UserDomain => "UserDomain",
            Kind::GroupDomain => "GroupDomain",
            Kind::UserSystem => "UserSystem",
            Kind::GroupSystem => "GroupSystem",
        }
    }
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "UserProject" => Kind::UserProject,
            "GroupProject" => Kind::GroupProject,
            "UserDomain" => Kind::UserDomain,
            "GroupDomain" => Kind::GroupDomain,
            "UserSystem" => Kind::UserSystem,
            "GroupSystem" => Kind::GroupSystem,
            _ => return None,
        })
    }
    pub fn is_group(self) -> bool {
        matches!(
            self,
            Kind::GroupProject | Kind::GroupDomain | Kind::GroupSystem
        )
    }
}

/// The system target's id, as Keystone names it.
pub const SYSTEM: &str = "system";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub kind: Kind,
    pub actor_id: String,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
}

pub async fn grant(db: &Db, a: &Assignment) -> Result<()> {
    if exists(db, a).await? {
        return Ok(());
    }
    sqlx::query(&db.sql("INSERT INTO assignments (kind, actor_id, target_id, role_id, inherited) VALUES (?, ?, ?, ?, ?)"))
        .bind(a.kind.as_str())
        .bind(&a.actor_id)
        .bind(&a.target_id)
        .bind(&a.role_id)
        .bind(a.inherited as i64)
        .execute(&db.pool)
        .await
        .db()?;
    Ok(())
}

pub async fn exists(db: &Db, a: &Assignment) -> Result<bool> {
    Ok(sqlx::query(&db.sql(
        "SELECT role_id FROM assignments WHERE kind = ? AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?",
    ))
    .bind(a.kind.as_str())
    .bind(&a.actor_id)
    .bind(&a.target_id)
    .bind(&a.role_id)
    .bind(a.inherited as i64)
    .fetch_optional(&db.pool)
    .await
    .db()?
    .is_some())
}

pub async fn revoke(db: &Db, a: &Assignment) -> Result<bool> {
    Ok(sqlx::query(&db.sql(
        "DELETE FROM assignments WHERE kind = ? AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?",
    ))
    .bind(a.kind.as_str())
    .bind(&a.actor_id)
    .bind(&a.target_id)
    .bind(&a.role_id)
    .bind(a.inherited as i64)
    .execute(&db.pool)
    .await
    .db()?
    .rows_affected()
        > 0)
}

/// Every assignment; callers filter (the table stays small next to users).
pub async fn list(db: &Db) -> Result<Vec<Assignment>> {
    Ok(
        sqlx::query("SELECT * FROM assignments ORDER BY kind, actor_id, target_id, role_id")
            .fetch_all(&db.pool)
            .await
            .db()?
            .iter()
            .filter_map(|r| {
                Some(Assignment {
                    kind: Kind::parse(&r.str("kind"))?,
                    actor_id: r.str("actor_id"),
                    target_id: r.str("target_id"),
                    role_id: r.str("role_id"),
                    inherited: r.flag("inherited"),
                })
            })
            .collect(),
    )
}

/// Assignments whose actor is one of `actors` (a user and its groups).
pub async fn list_for_actors(db: &Db, actors: &[String]) -> Result<Vec<Assignment>> {
    if actors.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; actors.len()].join(", ");
    let q = format!("SELECT * FROM assignments WHERE actor_id IN ({marks})");
    let sql = db.sql(&q);
    let mut query = sqlx::query(&sql);
    for a in actors {
        query = query.bind(a);
    }
    Ok(query
        .fetch_all(&db.pool)
        .await
        .db()?
        .iter()
        .filter_map(|r| {
            Some(Assignment {
                kind: Kind::parse(&r.str("kind"))?,
                actor_id: r.str("actor_id"),
                target_id: r.str("target_id"),
                role_id: r.str("role_id"),
                inherited: r.flag("inherited"),
            })
        })
        .collect())
}
