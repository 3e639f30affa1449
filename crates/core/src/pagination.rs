//! `limit` / `marker` pagination shared by the services' list calls. Each
//! service words the unknown-marker error its own way (Glance 400, Neutron
//! 404, Nova 400), so the error is returned for the caller to render.

/// The marker named no item of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMarker(pub String);

/// Apply `marker` (exclusive) and `limit` to an already sorted list; also
/// says whether more items follow the page.
pub fn paginate<T>(
    items: Vec<T>,
    id_of: impl Fn(&T) -> &str,
    marker: Option<&str>,
    limit: Option<usize>,
) -> Result<(Vec<T>, bool), UnknownMarker> {
    let start = match marker {
        None => 0,
        Some(m) => {
            items
                .iter()
                .position(|i| id_of(i) == m)
                .ok_or_else(|| UnknownMarker(m.to_owned()))?
                + 1
        }
    };
    let remaining = items.len().saturating_sub(start);
    let page: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let more = remaining > page.len();
    Ok((page, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_and_limit() {
        let items = vec!["a", "b", "c", "d"];
        assert_eq!(
            paginate(items.clone(), |s| s, Some("a"), Some(2)).unwrap(),
            (vec!["b", "c"], true)
        );
        assert_eq!(
            paginate(items.clone(), |s| s, Some("c"), Some(2)).unwrap(),
            (vec!["d"], false)
        );
        assert_eq!(
            paginate(items.clone(), |s| s, None, None).unwrap(),
            (items.clone(), false)
        );
        assert_eq!(
            paginate(items, |s| s, Some("zz"), None).unwrap_err(),
            UnknownMarker("zz".into())
        );
    }
}
