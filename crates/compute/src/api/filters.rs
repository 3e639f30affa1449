//! The regular-expression filters of server lists, with Python `re`
//! semantics as Nova applies them: `name` is `re.search` (the database's
//! REGEXP), `ip` / `ip6` are `re.match` on the fixed addresses. Patterns
//! are compiled once per request by the `regex` crate under a size limit,
//! so matching is linear in the name's length whatever the caller sends.

use super::ApiVersion;
use chrono::{DateTime, Utc};
use ferrostack_core::{Error, Result};
use regex::{Regex, RegexBuilder};

/// Compiled programs above this are refused (the pattern then falls back).
const SIZE_LIMIT: usize = 1 << 20;
/// Deeper nesting than this is refused the same way.
const NEST_LIMIT: u32 = 64;

/// One filter value of a list request.
pub enum PatternFilter {
    Regex(Regex),
    /// A pattern that does not compile (or is too big) is a plain
    /// substring, as Nova matches names on databases without a regular
    /// expression operator (`LIKE '%value%'`), rather than a 500.
    Substring(String),
}

impl PatternFilter {
    pub fn new(pattern: &str) -> Self {
        match RegexBuilder::new(pattern)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(SIZE_LIMIT)
            .nest_limit(NEST_LIMIT)
            .build()
        {
            Ok(re) => PatternFilter::Regex(re),
            Err(_) => PatternFilter::Substring(pattern.to_owned()),
        }
    }

    /// Python's `re.search`: a match anywhere in `text`.
    pub fn search(&self, text: &str) -> bool {
        match self {
            PatternFilter::Regex(re) => re.is_match(text),
            PatternFilter::Substring(s) => text.contains(s.as_str()),
        }
    }

    /// Strings of which every text this filter accepts contains at least
    /// one, so that a database can skip the rows holding none of them; `None`
    /// when the pattern has no such small set (`.*`, `[a-z]+`, `a?`).
    pub fn required_substrings(&self) -> Option<Vec<String>> {
        match self {
            PatternFilter::Substring(s) => (!s.is_empty()).then(|| vec![s.clone()]),
            PatternFilter::Regex(re) => required_literals(re.as_str()),
        }
    }

    /// Python's `re.match`: a match that starts at the beginning of `text`
    /// (the leftmost match starts at 0 exactly when one there exists).
    pub fn match_start(&self, text: &str) -> bool {
        match self {
            PatternFilter::Regex(re) => re.find(text).is_some_and(|m| m.start() == 0),
            PatternFilter::Substring(s) => text.starts_with(s.as_str()),
        }
    }
}

/// At most this many alternatives are pushed into SQL.
const MAX_REQUIRED: usize = 16;

/// The literals one of which starts (or ends) every match of `pattern`,
/// whichever set has the longer shortest literal. A finite set from
/// `regex-syntax`'s extractor is complete: no match lacks all of them.
fn required_literals(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .nest_limit(NEST_LIMIT)
        .build()
        .parse(pattern)
        .ok()?;
    let usable = |kind| -> Option<Vec<String>> {
        let seq = Extractor::new().kind(kind).extract(&hir);
        let literals = seq.literals()?;
        if literals.is_empty() || literals.len() > MAX_REQUIRED {
            return None;
        }
        literals
            .iter()
            .map(|l| {
                let text = std::str::from_utf8(l.as_bytes()).ok()?;
                (!text.is_empty()).then(|| text.to_owned())
            })
            .collect()
    };
    let shortest = |set: &Vec<String>| set.iter().map(String::len).min().unwrap_or(0);
    match (usable(ExtractKind::Prefix), usable(ExtractKind::Suffix)) {
        (Some(p), Some(s)) => Some(if shortest(&s) > shortest(&p) { s } else { p }),
        (p, s) => p.or(s),
    }
}

#[cfg(test)]
mod tests {
    use super::PatternFilter;

    fn required(p: &str) -> Option<Vec<String>> {
        PatternFilter::new(p).required_substrings()
    }

    #[test]
    fn required_substrings_hold_for_every_match() {
        assert_eq!(required("^bench-c50$"), Some(vec!["bench-c50".into()]));
        assert_eq!(required(".*.*.*.*.*.*x"), Some(vec!["x".into()]));
        assert_eq!(required("a(b"), Some(vec!["a(b".into()]));
        let mut alt = required("^(vm|db)-x").unwrap();
        alt.sort();
        assert_eq!(alt, ["db-x", "vm-x"]);
        // Nothing every match must contain: no prefilter.
        for p in [".*", "[a-z]+", "a?", "", "x|.*"] {
            assert_eq!(required(p), None, "{p}");
        }
        // Whatever is required, every accepted name contains one of them.
        let names = ["vm-1", "db-22", "x", "bench-c50", "VM-1", "my-vm-1", "é-vm"];
        for p in [
            "vm-[0-9]",
            "(?i)vm",
            "^.*-1$",
            "é",
            "b?ench",
            "(db|vm)-2+",
            "1$",
        ] {
            let f = PatternFilter::new(p);
            let Some(set) = f.required_substrings() else {
                continue;
            };
            for n in names {
                if f.search(n) {
                    assert!(
                        set.iter().any(|s| n.contains(s.as_str())),
                        "{p} {n} {set:?}"
                    );
                }
            }
        }
    }

    fn search(p: &str, t: &str) -> bool {
        PatternFilter::new(p).search(t)
    }

    #[test]
    fn python_like_search() {
        assert!(search(r"^.*\-instance\-[0-9]+$", "tempest-x-instance-123"));
        assert!(!search(r"^.*\-instance\-[0-9]+$", "tempest-x-instance-12a"));
        assert!(search("vm", "my-vm-1"));
        assert!(!search("^vm", "my-vm-1"));
        assert!(search("^my", "my-vm-1"));
        assert!(search(r"1$", "my-vm-1"));
        assert!(search("v.?m", "vm"));
        assert!(search("[^a-z]vm", "1vm"));
        assert!(search("a|zz", "xa"));
        assert!(search(r"(?P<n>vm)-\d{1,3}", "my-vm-12"));
        assert!(search("a(b", "xa(b"), "invalid patterns are substrings");
    }

    #[test]
    fn match_is_anchored_at_the_start() {
        let f = PatternFilter::new(r"10\.0\.0\.1");
        assert!(f.match_start("10.0.0.12"));
        assert!(!f.match_start("110.0.0.1"));
        assert!(PatternFilter::new("0|10").match_start("10.1.2.3"));
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        let name = "a".repeat(82);
        let started = std::time::Instant::now();
        assert!(!search(".*.*.*.*.*.*x", &name));
        assert!(!search("(a*)*b", &name));
        assert!(!search("(a|aa)+$x", &name));
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        // A pattern whose program is too big falls back instead of growing.
        assert!(matches!(
            PatternFilter::new("(((a{1000}){1000}){1000})"),
            PatternFilter::Substring(_)
        ));
    }
}

/// The `updated_at` window a list keeps: `changes-since` (servers; instance
/// actions from 2.58, migrations from 2.59) and `changes-before` (2.66),
/// both inclusive. Before 2.66 `changes-before` is not read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChangeWindow {
    since: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
}

impl ChangeWindow {
    /// Read the window from a query; `object` names the schema in Nova's
    /// message for a value that is not a date-time.
    pub fn from_query(q: &[(String, String)], version: ApiVersion, object: &str) -> Result<Self> {
        let time = |key: &str| {
            super::query_get(q, key)
                .map(|s| {
                    ferrostack_core::time::parse(s).ok_or_else(|| {
                        Error::BadRequest(format!(
                            "Invalid input for {object} {key}. Value: {s}. '{s}' is not a 'date-time'"
                        ))
                    })
                })
                .transpose()
        };
        let since = time("changes-since")?;
        let before = if version >= (2, 66) {
            time("changes-before")?
        } else {
            None
        };
        if let (Some(s), Some(b)) = (since, before) {
            if s > b {
                return Err(Error::BadRequest(
                    "The value of changes-since must be less than or equal to changes-before."
                        .into(),
                ));
            }
        }
        Ok(ChangeWindow { since, before })
    }

    /// Whether either end is given (a server list then shows deleted
    /// servers too).
    pub fn is_set(&self) -> bool {
        self.since.is_some() || self.before.is_some()
    }

    /// Whether a row last updated at `updated` (an ISO time) is inside.
    pub fn contains(&self, updated: &str) -> bool {
        if !self.is_set() {
            return true;
        }
        ferrostack_core::time::parse(updated).is_some_and(|u| {
            self.since.is_none_or(|s| u >= s) && self.before.is_none_or(|b| u <= b)
        })
    }
}

/// Server list filters on one attribute each, with the version from which
/// a caller without `allow_all_filters` may use it (Nova drops it unread
/// before): 2.83 opened the instance's own fields, 2.90 `hostname`.
/// `user_id`, `vm_state` and `task_state` match exactly, the others as
/// the database's REGEXP (a search), as Nova's instance query does.
const ATTRIBUTE_FILTERS: &[(&str, (u32, u32), bool)] = &[
    ("availability_zone", (2, 83), false),
    ("config_drive", (2, 83), false),
    ("key_name", (2, 83), false),
    ("created_at", (2, 83), false),
    ("launched_at", (2, 83), false),
    ("terminated_at", (2, 83), false),
    ("power_state", (2, 83), false),
    ("task_state", (2, 83), true),
    ("vm_state", (2, 83), true),
    ("progress", (2, 83), false),
    ("user_id", (2, 83), true),
    ("hostname", (2, 90), false),
];

/// The attribute filters of one list request, compiled once.
pub struct AttributeFilters(Vec<(&'static str, Matcher)>);

enum Matcher {
    Exact(String),
    Search(PatternFilter),
}

impl AttributeFilters {
    /// The filters `q` gives that the caller may use at `version`.
    pub fn from_query(q: &[(String, String)], version: ApiVersion, all_filters: bool) -> Self {
        let mut out = Vec::new();
        for (name, since, exact) in ATTRIBUTE_FILTERS {
            let Some(value) = super::query_get(q, name) else {
                continue;
            };
            if !(all_filters || version >= *since) {
                continue;
            }
            let m = if *exact {
                Matcher::Exact(value.to_owned())
            } else {
                Matcher::Search(PatternFilter::new(value))
            };
            out.push((*name, m));
        }
        AttributeFilters(out)
    }

    /// Whether the request gave none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a server whose attributes `field` gives passes them all (an
    /// attribute the server lacks matches nothing).
    pub fn matches(&self, field: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|(name, m)| match (field(name), m) {
            (None, _) => false,
            (Some(v), Matcher::Exact(want)) => &v == want,
            (Some(v), Matcher::Search(f)) => f.search(&v),
        })
    }
}
