//! Who may do what, as Swift's keystoneauth decides it: the owner of an
//! account (a user with an operator role in its project) and a reseller
//! admin may do anything; anyone else only what a container's ACLs grant.
//! The two role rules are policy rules of the shared engine, so an
//! operator's `[object] policy_file` can change them; the ACL grammar is
//! Swift's own.

use crate::store::Meta;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::Error;
use serde_json::json;
use std::sync::Arc;

/// The account prefix (keystoneauth's `reseller_prefix`).
pub const RESELLER_PREFIX: &str = "AUTH_";

/// The policy of the object API: `swift_owner` and `reseller_admin`.
pub fn policy(cfg: &Config) -> Result<Policy, String> {
    let roles: Vec<String> = cfg
        .object
        .operator_roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| format!("role:{r}"))
        .collect();
    let owner = format!("({}) and project_id:%(project_id)s", roles.join(" or "));
    let reseller = format!("role:{}", cfg.object.reseller_admin_role);
    let path = (!cfg.object.policy_file.is_empty())
        .then(|| std::path::PathBuf::from(&cfg.object.policy_file));
    Policy::new(&[("swift_owner", &owner), ("reseller_admin", &reseller)])
        .with_file(path.as_deref())
}

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No token; the `Referer` it sent, if any.
    Anonymous {
        referrer: Option<String>,
    },
    User(Arc<AuthContext>),
    /// A valid temporary URL for this one object.
    TempUrl,
}

/// What a request does, for the ACL check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// GET/HEAD of an object.
    ReadObject,
    /// GET/HEAD of a container (its listing).
    ListContainer,
    /// PUT/POST/DELETE/COPY of an object.
    WriteObject,
    /// Anything on an account, or a container's PUT/POST/DELETE.
    Manage,
}

/// How the caller got in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Owner or reseller admin: everything, including ACL headers.
    Owner,
    /// Reseller admin (may also set account quotas).
    Reseller,
    /// Through a container ACL or a temp URL: the operation only.
    Acl,
}

/// The project id an account belongs to.
pub fn project_of(account: &str) -> Option<&str> {
    account
        .strip_prefix(RESELLER_PREFIX)
        .filter(|p| !p.is_empty())
}

/// Decide. `container_meta` is the container's metadata when the request
/// names an existing container. Anonymous callers refused get 401, known
/// ones 403.
pub fn authorize(
    policy: &Policy,
    caller: &Caller,
    account: &str,
    op: Op,
    container_meta: Option<&Meta>,
) -> Result<Grant, Error> {
    let user = match caller {
        Caller::TempUrl => return Ok(Grant::Acl),
        Caller::User(ctx) => Some(ctx.as_ref()),
        Caller::Anonymous { .. } => None,
    };
    if let Some(ctx) = user {
        if policy.check("reseller_admin", ctx, &json!({})) {
            return Ok(Grant::Reseller);
        }
        if let Some(project) = project_of(account) {
            if policy.check("swift_owner", ctx, &json!({"project_id": project})) {
                return Ok(Grant::Owner);
            }
        }
    }
    if let Some(meta) = container_meta {
        if acl_allows(caller, op, meta) {
            return Ok(Grant::Acl);
        }
    }
    Err(match user {
        None => Error::Unauthorized(String::new()),
        Some(_) => Error::Forbidden(String::new()),
    })
}

fn acl_allows(caller: &Caller, op: Op, meta: &Meta) -> bool {
    let (header, referrers_allowed) = match op {
        Op::ReadObject | Op::ListContainer => ("x-container-read", true),
        Op::WriteObject => ("x-container-write", false),
        Op::Manage => return false,
    };
    let Some(acl) = meta.get(header) else {
        return false;
    };
    let acl = Acl::parse(acl);
    let referrer = match caller {
        Caller::Anonymous { referrer } => referrer.as_deref(),
        _ => None,
    };
    if referrers_allowed
        && (op == Op::ReadObject || acl.listings)
        && referrer_allowed(referrer, &acl.referrers)
    {
        return true;
    }
    match caller {
        Caller::User(ctx) => acl.users.iter().any(|g| grant_matches(g, ctx)),
        _ => false,
    }
}

/// A parsed container ACL: `.r:` referrer rules, `.rlistings`, and user
/// grants (`project:user`, either side `*`, or a role name).
#[derive(Debug, Default, PartialEq)]
pub struct Acl {
    pub referrers: Vec<String>,
    pub listings: bool,
    pub users: Vec<String>,
}

impl Acl {
    pub fn parse(text: &str) -> Acl {
        let mut acl = Acl::default();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if let Some(r) = item
                .strip_prefix(".r:")
                .or_else(|| item.strip_prefix(".ref:"))
                .or_else(|| item.strip_prefix(".referer:"))
                .or_else(|| item.strip_prefix(".referrer:"))
            {
                acl.referrers.push(r.to_owned());
            } else if item == ".rlistings" {
                acl.listings = true;
            } else {
                acl.users.push(item.to_owned());
            }
        }
        acl
    }
}

/// Swift's `referrer_allowed`: rules in order, `*` or a host (a leading
/// `.` matches subdomains), `-` negates; the last matching rule decides.
pub fn referrer_allowed(referrer: Option<&str>, rules: &[String]) -> bool {
    let host = referrer.and_then(|r| {
        let rest = r.split_once("://").map_or(r, |(_, rest)| rest);
        let host = rest.split(['/', '?', '#']).next()?;
        Some(
            host.rsplit_once('@')
                .map_or(host, |(_, h)| h)
                .to_ascii_lowercase(),
        )
    });
    let mut allowed = false;
    for rule in rules {
        let (deny, rule) = match rule.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rule.as_str()),
        };
        let rule = rule.to_ascii_lowercase();
        let matches = rule == "*"
            || host.as_deref().is_some_and(|h| {
                let h = h.split(':').next().unwrap_or(h);
                h == rule || (rule.starts_with('.') && h.ends_with(rule.as_str()))
            });
        if matches {
            allowed = !deny;
        }
    }
    allowed
}

fn grant_matches(grant: &str, ctx: &AuthContext) -> bool {
    match grant.split_once(':') {
        Some((project, user)) => {
            let project_ok = project == "*"
                || ctx.project_id.as_deref() == Some(project)
                || ctx.project_name.as_deref() == Some(project);
            let user_ok = user == "*" || ctx.user_id == user || ctx.user_name == user;
            project_ok && user_ok
        }
        // A bare entry names a role (keystoneauth allows role names).
        None => ctx.has_role(grant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers() {
        let rules = |s: &str| Acl::parse(s).referrers;
        assert!(referrer_allowed(None, &rules(".r:*")));
        assert!(!referrer_allowed(None, &rules(".r:example.com")));
        assert!(referrer_allowed(
            Some("http://example.com/page"),
            &rules(".r:example.com")
        ));
        assert!(referrer_allowed(
            Some("https://www.example.com/"),
            &rules(".r:.example.com")
        ));
        assert!(!referrer_allowed(
            Some("http://bad.example.com/"),
            &rules(".r:.example.com,.r:-bad.example.com")
        ));
    }

    #[test]
    fn acl_items() {
        let acl = Acl::parse(".r:*, .rlistings, demo:demo, *:u1");
        assert_eq!(acl.referrers, vec!["*"]);
        assert!(acl.listings);
        assert_eq!(acl.users, vec!["demo:demo", "*:u1"]);
        let ctx = AuthContext {
            user_id: "u1".into(),
            user_name: "alice".into(),
            project_id: Some("p1".into()),
            project_name: Some("demo".into()),
            ..Default::default()
        };
        assert!(grant_matches("demo:alice", &ctx));
        assert!(grant_matches("p1:*", &ctx));
        assert!(grant_matches("*:u1", &ctx));
        assert!(!grant_matches("other:alice", &ctx));
    }
}
