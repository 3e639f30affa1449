//! A request's query string as decoded (name, value) pairs, in order:
//! Swift and S3 both read repeated and valueless parameters.

/// `a=1&b&c=x%20y` → `[("a","1"), ("b",""), ("c","x y")]` (`+` is a space).
pub fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}
