//! What every Cinder list shares: whose resources it shows (`all_tenants`
//! widens an admin's list to every project, or to the one `project_id`
//! names), `offset`/`marker`/`limit` paging capped at `osapi_max_limit`,
//! and the `<collection>_links` next link Cinder gives whenever a page is
//! full.

use super::{project_url, Svc};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::pagination::paginate;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::collections::HashMap;

/// A list request's query string, parsed once.
pub(crate) struct ListQuery<'q> {
    /// The last value of each parameter.
    pub params: HashMap<&'q str, &'q str>,
    raw: &'q [(String, String)],
}

impl<'q> ListQuery<'q> {
    pub fn new(raw: &'q [(String, String)]) -> Self {
        ListQuery {
            params: raw.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            raw,
        }
    }

    pub fn get(&self, key: &str) -> Option<&'q str> {
        self.params.get(key).copied()
    }

    /// Whether an admin asked for every project's resources.
    pub fn all_tenants(&self, svc: &Svc, ctx: &AuthContext) -> bool {
        self.get("all_tenants")
            .is_some_and(|v| !matches!(v, "0" | "false" | "False"))
            && svc.is_admin(ctx)
    }

    /// The project to list: the URL's, or with `all_tenants` every
    /// project (`None`) or the one `project_id` names.
    pub fn scope(&self, svc: &Svc, ctx: &AuthContext, project_id: &'q str) -> Option<&'q str> {
        if self.all_tenants(svc, ctx) {
            self.get("project_id")
        } else {
            Some(project_id)
        }
    }

    /// One page of `items` (already filtered and sorted): `offset`, then
    /// from after `marker` (404 if it is not in the list), at most `limit`
    /// (capped at `max`; 400 if not a number). The marker of the next page
    /// comes with a full page.
    pub fn page<T>(
        &self,
        items: Vec<T>,
        max: usize,
        id: impl Fn(&T) -> &str,
    ) -> Result<(Vec<T>, Option<String>)> {
        let mut items = items;
        if let Some(off) = self.get("offset") {
            let n: usize = off
                .parse()
                .map_err(|_| Error::BadRequest(format!("Invalid offset value: {off}")))?;
            items = items.into_iter().skip(n).collect();
        }
        let limit = match self.get("limit") {
            None => max,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if n >= 0 => (n as usize).min(max),
                _ => return Err(Error::BadRequest(format!("Invalid limit value: {l}"))),
            },
        };
        let (page, _) = paginate(items, &id, self.get("marker"), Some(limit))
            .map_err(|m| Error::NotFound(format!("Marker {} could not be found.", m.0)))?;
        let next = (limit > 0 && page.len() == limit).then(|| id(&page[page.len() - 1]).to_owned());
        Ok((page, next))
    }

    /// `[{"rel": "next", "href": …}]`: this query again from `marker`.
    pub fn next_link(&self, svc: &Svc, project_id: &str, path: &str, marker: &str) -> Value {
        let mut query: Vec<String> = self
            .raw
            .iter()
            .filter(|(k, _)| k != "marker")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        query.push(format!("marker={}", encode(marker)));
        let href = format!(
            "{}/{path}?{}",
            project_url(svc, project_id),
            query.join("&")
        );
        json!([{"rel": "next", "href": href}])
    }
}

/// Sort a listing by `sort=key[:dir],…` or `sort_key`/`sort_dir` among
/// `allowed` keys (400 otherwise), then newest first and by id as Cinder
/// does; `field` gives an item's value of a key (numbers, else text).
pub(crate) fn sort_by_params<T>(
    items: &mut [T],
    params: &HashMap<&str, &str>,
    allowed: &[&str],
    field: impl Fn(&T, &str) -> (i64, String),
) -> Result<()> {
    let mut keys: Vec<(String, bool)> = Vec::new();
    if let Some(sort) = params.get("sort") {
        for part in sort.split(',') {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            if !matches!(d.trim(), "asc" | "desc") {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Invalid sort dir {d}"
                )));
            }
            keys.push((k.trim().to_owned(), d.trim() != "asc"));
        }
    } else if let Some(k) = params.get("sort_key") {
        keys.push((
            k.to_string(),
            params.get("sort_dir").copied() != Some("asc"),
        ));
    }
    for (k, _) in &keys {
        if !allowed.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid sort key {k}"
            )));
        }
    }
    if let Some(d) = params.get("sort_dir") {
        if !matches!(*d, "asc" | "desc") {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid sort dir {d}"
            )));
        }
    }
    keys.push(("created_at".into(), true));
    keys.push(("id".into(), true));
    items.sort_by(|a, b| {
        for (k, desc) in &keys {
            let o = field(a, k).cmp(&field(b, k));
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(())
}

/// Percent-encoding of a query component (RFC 3986 unreserved kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_a_query_cannot_hold() {
        assert_eq!(
            encode("a b&c={'k': 'v'}"),
            "a%20b%26c%3D%7B%27k%27%3A%20%27v%27%7D"
        );
        assert_eq!(encode("plain-id_1.2~"), "plain-id_1.2~");
    }
}
