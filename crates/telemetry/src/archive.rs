//! Archive policies as Gnocchi defines them: a list of (granularity,
//! timespan) pairs and the aggregation methods kept at each. The store keeps
//! one rollup row per metric, granularity and time bucket holding count,
//! sum, sum of squares, min, max, first and last, from which every default
//! aggregation method is derived, so a write touches one row per
//! granularity whatever the method list.

use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

/// An aggregation method a rollup row can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregation {
    Mean,
    Min,
    Max,
    Sum,
    Std,
    Count,
    First,
    Last,
}

impl Aggregation {
    pub const ALL: [Aggregation; 8] = [
        Aggregation::Mean,
        Aggregation::Min,
        Aggregation::Max,
        Aggregation::Sum,
        Aggregation::Std,
        Aggregation::Count,
        Aggregation::First,
        Aggregation::Last,
    ];

    pub fn parse(s: &str) -> Option<Aggregation> {
        Aggregation::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Mean => "mean",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Sum => "sum",
            Aggregation::Std => "std",
            Aggregation::Count => "count",
            Aggregation::First => "first",
            Aggregation::Last => "last",
        }
    }
}

/// An archive policy's aggregation method: one of the base methods over
/// the measures themselves, or (`rate:<base>`) over the differences of
/// consecutive measures, each difference stamped with the later measure's
/// time, as Gnocchi's `rate:*` methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Method {
    pub base: Aggregation,
    pub rate: bool,
}

impl Method {
    pub const fn plain(base: Aggregation) -> Method {
        Method { base, rate: false }
    }

    pub const fn rate(base: Aggregation) -> Method {
        Method { base, rate: true }
    }

    /// `mean`, `rate:mean`, …
    pub fn parse(s: &str) -> Option<Method> {
        match s.strip_prefix("rate:") {
            Some(b) => Aggregation::parse(b).map(Method::rate),
            None => Aggregation::parse(s).map(Method::plain),
        }
    }

    pub fn name(self) -> String {
        if self.rate {
            format!("rate:{}", self.base.as_str())
        } else {
            self.base.as_str().to_owned()
        }
    }

    /// Every method name a policy may list.
    pub fn all_names() -> Vec<String> {
        let plain = Aggregation::ALL.map(Method::plain);
        let rate = Aggregation::ALL.map(Method::rate);
        plain.iter().chain(rate.iter()).map(|m| m.name()).collect()
    }
}

/// Gnocchi's `default_aggregation_methods`.
pub const DEFAULT_METHODS: &[Method] = &[
    Method::plain(Aggregation::Mean),
    Method::plain(Aggregation::Min),
    Method::plain(Aggregation::Max),
    Method::plain(Aggregation::Sum),
    Method::plain(Aggregation::Std),
    Method::plain(Aggregation::Count),
];

/// One (granularity, timespan) level of a policy, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub granularity: i64,
    pub timespan: i64,
}

impl Level {
    pub fn points(&self) -> i64 {
        self.timespan / self.granularity
    }

    pub fn view(&self) -> Value {
        json!({
            "granularity": timedelta(self.granularity),
            "points": self.points(),
            "timespan": timedelta(self.timespan),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ArchivePolicy {
    pub name: String,
    pub back_window: i64,
    pub definition: Vec<Level>,
    pub aggregation_methods: Vec<Method>,
}

impl ArchivePolicy {
    pub fn view(&self) -> Value {
        json!({
            "name": self.name,
            "back_window": self.back_window,
            "definition": self.definition.iter().map(Level::view).collect::<Vec<_>>(),
            "aggregation_methods": self.aggregation_methods.iter().map(|a| a.name()).collect::<Vec<_>>(),
        })
    }

    /// The policy a body of `POST /v1/archive_policy` describes, checked as
    /// Gnocchi checks it (each level needs two of granularity, points and
    /// timespan; granularities are distinct).
    pub fn from_body(body: &Value) -> Result<ArchivePolicy> {
        only_keys(
            body,
            &["name", "back_window", "definition", "aggregation_methods"],
            "",
        )?;
        let name = body["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("Invalid input: required key not provided @ data['name']"))?;
        let defs = match body.get("definition") {
            None | Some(Value::Null) => {
                return Err(bad(
                    "Invalid input: required key not provided @ data['definition']",
                ))
            }
            Some(Value::Array(d)) if d.is_empty() => return Err(bad(
                "Invalid input: length of value must be at least 1 for dictionary value @ data['definition']",
            )),
            Some(Value::Array(d)) => d,
            Some(_) => {
                return Err(bad(
                    "Invalid input: expected a list for dictionary value @ data['definition']",
                ))
            }
        };
        let mut definition = Vec::new();
        for (i, d) in defs.iter().enumerate() {
            only_keys(
                d,
                &["granularity", "points", "timespan"],
                &format!("['definition'][{i}]"),
            )?;
            let level = level_from(d)?;
            if definition
                .iter()
                .any(|l: &Level| l.granularity == level.granularity)
            {
                // Gnocchi's words, HTML-escaped as its error bodies are.
                return Err(bad(&format!(
                    "More than one archive policy uses granularity `{}.0&#x27;",
                    level.granularity
                )));
            }
            definition.push(level);
        }
        definition.sort_by_key(|l| l.granularity);
        let aggregation_methods = match body.get("aggregation_methods") {
            None | Some(Value::Null) => DEFAULT_METHODS.to_vec(),
            Some(v) => methods_from(v)?,
        };
        Ok(ArchivePolicy {
            name: name.to_owned(),
            back_window: body["back_window"].as_i64().unwrap_or(0),
            definition,
            aggregation_methods,
        })
    }

    /// Whether the policy keeps any `rate:*` method (and so the series of
    /// differences beside the measures).
    pub fn has_rates(&self) -> bool {
        self.aggregation_methods.iter().any(|m| m.rate)
    }
}

fn bad(m: &str) -> Error {
    Error::BadRequest(m.to_owned())
}

/// Gnocchi's schemas allow no other keys: one (the first by name) is
/// named as voluptuous names it.
pub fn only_keys(doc: &Value, allowed: &[&str], at: &str) -> Result<()> {
    let Some(map) = doc.as_object() else {
        return Err(bad(&format!(
            "Invalid input: expected a dictionary @ data{at}"
        )));
    };
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(&format!(
            "Invalid input: extra keys not allowed @ data{at}['{k}']"
        ))),
        None => Ok(()),
    }
}

/// Gnocchi's method list: names, `+name` adds to and `-name` removes from
/// the defaults.
pub fn methods_from(v: &Value) -> Result<Vec<Method>> {
    let items = v
        .as_array()
        .ok_or_else(|| bad("Invalid input: expected a list @ data['aggregation_methods']"))?;
    let mut out: Vec<Method> = Vec::new();
    let relative = items
        .iter()
        .filter_map(Value::as_str)
        .all(|s| s.starts_with('+') || s.starts_with('-'));
    if relative {
        out = DEFAULT_METHODS.to_vec();
    }
    for item in items {
        let s = item.as_str().unwrap_or_default();
        let (sign, name) = match s.as_bytes().first() {
            Some(b'+') | Some(b'-') => (&s[..1], &s[1..]),
            _ => ("", s),
        };
        let a = Method::parse(name).ok_or_else(|| {
            bad(&format!(
                "Invalid input: not a valid value @ data['aggregation_methods']: {s}"
            ))
        })?;
        if sign == "-" {
            out.retain(|x| *x != a);
        } else if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

fn level_from(d: &Value) -> Result<Level> {
    let g = d.get("granularity").map(duration_secs).transpose()?;
    let t = d.get("timespan").map(duration_secs).transpose()?;
    let p = d.get("points").and_then(Value::as_i64);
    if let (Some(g), Some(t), Some(p)) = (g, t, p) {
        if t != g * p {
            // Gnocchi's "timespan ≠ granularity × points", HTML-escaped as
            // its error bodies are.
            return Err(bad("timespan &#8800; granularity &#215; points"));
        }
    }
    let level = match (g, t, p) {
        (Some(g), Some(t), _) => Level {
            granularity: g,
            timespan: t,
        },
        (Some(g), None, Some(p)) => Level {
            granularity: g,
            timespan: g * p,
        },
        (None, Some(t), Some(p)) if p > 0 => Level {
            granularity: t / p,
            timespan: t,
        },
        _ => {
            return Err(bad(
                "Invalid input: at least two of granularity, points and timespan are required",
            ))
        }
    };
    if level.granularity <= 0 || level.timespan < level.granularity {
        return Err(bad(
            "Invalid input: Granularity must be positive and not above the timespan",
        ));
    }
    Ok(level)
}

/// A duration as Gnocchi accepts it: seconds (number or numeric string),
/// `5min`, `1h`, `30 days`, or Python's `0:05:00` / `30 days, 0:00:00`.
pub fn duration_secs(v: &Value) -> Result<i64> {
    if let Some(n) = v.as_f64() {
        return Ok(n as i64);
    }
    let s = v.as_str().unwrap_or_default().trim();
    parse_duration(s).ok_or_else(|| bad(&format!("Invalid input: Unable to parse timespan: {s}")))
}

pub fn parse_duration(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<f64>() {
        return Some(n as i64);
    }
    let (days, clock) = match s.split_once(',') {
        Some((d, c)) => (Some(d.trim()), c.trim()),
        None if s.contains(':') => (None, s),
        None => return unit_duration(s),
    };
    let days = match days {
        Some(d) => d
            .trim_end_matches("days")
            .trim_end_matches("day")
            .trim()
            .parse::<i64>()
            .ok()?,
        None => 0,
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let h: i64 = parts[0].parse().ok()?;
    let m: i64 = parts[1].parse().ok()?;
    let sec: f64 = parts[2].parse().ok()?;
    Some(days * 86400 + h * 3600 + m * 60 + sec as i64)
}

fn unit_duration(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let n: f64 = s[..split].trim().parse().ok()?;
    let unit = s[split..].trim();
    let mult = match unit {
        "s" | "sec" | "second" | "seconds" => 1.0,
        "m" | "min" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "week" | "weeks" => 604800.0,
        _ => return None,
    };
    Some((n * mult) as i64)
}

/// Python's `str(timedelta)`: `0:05:00`, `1 day, 0:00:00`, `30 days, 0:00:00`.
pub fn timedelta(secs: i64) -> String {
    let days = secs / 86400;
    let rest = secs % 86400;
    let clock = format!("{}:{:02}:{:02}", rest / 3600, (rest % 3600) / 60, rest % 60);
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        d => format!("{d} days, {clock}"),
    }
}

/// The policies `gnocchi-upgrade` creates: `low`, `medium`, `high` (and
/// `bool`), with their definitions.
pub fn defaults() -> Vec<ArchivePolicy> {
    const DAY: i64 = 86400;
    let level = |granularity, timespan| Level {
        granularity,
        timespan,
    };
    let policy = |name: &str, definition, methods: &[Method]| ArchivePolicy {
        name: name.into(),
        back_window: 0,
        definition,
        aggregation_methods: methods.to_vec(),
    };
    vec![
        policy("low", vec![level(300, 30 * DAY)], DEFAULT_METHODS),
        policy(
            "medium",
            vec![level(60, 7 * DAY), level(3600, 365 * DAY)],
            DEFAULT_METHODS,
        ),
        policy(
            "high",
            vec![level(1, 3600), level(60, 7 * DAY), level(3600, 365 * DAY)],
            DEFAULT_METHODS,
        ),
        policy(
            "bool",
            vec![level(1, 365 * DAY)],
            &[Method::plain(Aggregation::Last)],
        ),
        // The policies `ceilometer-upgrade` creates for its publisher: the
        // `-rate` ones file cumulative meters.
        policy("ceilometer-low", vec![level(300, 30 * DAY)], CEILOMETER),
        policy(
            "ceilometer-low-rate",
            vec![level(300, 30 * DAY)],
            CEILOMETER_RATE,
        ),
        policy("ceilometer-high", ceilometer_high(), CEILOMETER),
        policy("ceilometer-high-rate", ceilometer_high(), CEILOMETER_RATE),
    ]
}

const CEILOMETER: &[Method] = &[Method::plain(Aggregation::Mean)];
const CEILOMETER_RATE: &[Method] = &[
    Method::plain(Aggregation::Mean),
    Method::rate(Aggregation::Mean),
];

fn ceilometer_high() -> Vec<Level> {
    [(1, 3600), (60, 86400), (3600, 365 * 86400)]
        .map(|(granularity, timespan)| Level {
            granularity,
            timespan,
        })
        .to_vec()
}

/// The policy the metering pipeline files a cumulative meter under when
/// no rule names one: Ceilometer's `-rate` policy nearest the configured
/// default (fine-grained defaults take `ceilometer-high-rate`).
pub fn rate_policy_for(default: &ArchivePolicy) -> &'static str {
    if default.definition.iter().any(|l| l.granularity < 300) {
        "ceilometer-high-rate"
    } else {
        "ceilometer-low-rate"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_as_python_prints_them() {
        assert_eq!(timedelta(300), "0:05:00");
        assert_eq!(timedelta(30 * 86400), "30 days, 0:00:00");
        assert_eq!(parse_duration("30 days, 0:00:00"), Some(30 * 86400));
        assert_eq!(parse_duration("1 day, 1:00:00"), Some(86400 + 3600));
        assert_eq!(parse_duration("5min"), Some(300));
        assert_eq!(parse_duration("0:00:01"), Some(1));
        assert_eq!(parse_duration("bogus"), None);
    }

    #[test]
    fn relative_method_lists_edit_the_defaults() {
        let m = methods_from(&json!(["-std", "+last", "+rate:mean"])).unwrap();
        assert!(m.contains(&Method::plain(Aggregation::Last)));
        assert!(!m.contains(&Method::plain(Aggregation::Std)));
        assert!(m.contains(&Method::rate(Aggregation::Mean)));
        assert_eq!(
            methods_from(&json!(["max", "rate:last"])).unwrap(),
            vec![
                Method::plain(Aggregation::Max),
                Method::rate(Aggregation::Last)
            ]
        );
        assert_eq!(Method::rate(Aggregation::Mean).name(), "rate:mean");
        assert!(methods_from(&json!(["rate:bogus"])).is_err());
    }
}
