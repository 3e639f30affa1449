//! The regular-expression filters of server lists, with Python `re`
//! semantics as Nova applies them: `name` is `re.search` (the database's
//! REGEXP), `ip` / `ip6` are `re.match` on the fixed addresses. Patterns
//! are compiled once per request by the `regex` crate under a size limit,
//! so matching is linear in the name's length whatever the caller sends.

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

    /// Python's `re.match`: a match that starts at the beginning of `text`
    /// (the leftmost match starts at 0 exactly when one there exists).
    pub fn match_start(&self, text: &str) -> bool {
        match self {
            PatternFilter::Regex(re) => re.find(text).is_some_and(|m| m.start() == 0),
            PatternFilter::Substring(s) => text.starts_with(s.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PatternFilter;

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
