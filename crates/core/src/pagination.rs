//! `limit` / `marker` pagination and the `links` OpenStack list responses carry.

use crate::error::Error;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PageParams {
    pub limit: Option<String>,
    pub marker: Option<String>,
}

impl PageParams {
    /// The requested limit, capped at `max` (0 = no cap). A non-number is 400.
    pub fn limit(&self, max: usize) -> Result<Option<usize>, Error> {
        let requested = match &self.limit {
            None => None,
            Some(s) => Some(s.parse::<usize>().map_err(|_| {
                Error::BadRequest(format!("limit must be a non-negative integer, got '{s}'"))
            })?),
        };
        Ok(match (requested, max) {
            (Some(l), 0) => Some(l),
            (Some(l), m) => Some(l.min(m)),
            (None, 0) => None,
            (None, m) => Some(m),
        })
    }
}

/// Apply marker and limit to an already sorted list. An unknown marker is 400
/// (as Nova and Glance answer). Returns the page and whether more follow.
pub fn paginate<T>(
    items: Vec<T>,
    id_of: impl Fn(&T) -> &str,
    marker: Option<&str>,
    limit: Option<usize>,
) -> Result<(Vec<T>, bool), Error> {
    let start = match marker {
        None => 0,
        Some(m) => {
            items
                .iter()
                .position(|i| id_of(i) == m)
                .ok_or_else(|| Error::BadRequest(format!("marker [{m}] not found")))?
                + 1
        }
    };
    let mut page: Vec<T> = items.into_iter().skip(start).collect();
    let more = matches!(limit, Some(l) if page.len() > l);
    if let Some(l) = limit {
        page.truncate(l);
    }
    Ok((page, more))
}

/// Keystone-style collection links: `{"self": url, "previous": null, "next": null}`.
pub fn collection_links(self_url: &str, next: Option<String>) -> Value {
    json!({"self": self_url, "previous": Value::Null, "next": next})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_and_limit() {
        let items = vec!["a", "b", "c", "d"];
        let (page, more) = paginate(items.clone(), |s| s, Some("a"), Some(2)).unwrap();
        assert_eq!(page, vec!["b", "c"]);
        assert!(more);
        let (page, more) = paginate(items.clone(), |s| s, Some("c"), Some(2)).unwrap();
        assert_eq!(page, vec!["d"]);
        assert!(!more);
        assert_eq!(
            paginate(items, |s| s, Some("zz"), None)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            PageParams {
                limit: Some("x".into()),
                marker: None
            }
            .limit(0)
            .unwrap_err()
            .status(),
            400
        );
    }
}
