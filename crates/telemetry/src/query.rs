//! Ceilometer's query syntax: `q.field`, `q.op`, `q.value`, `q.type`
//! repeated in step, each giving one condition; the conditions are ANDed.
//! Errors carry Ceilometer's messages (WSME's for an unknown operator,
//! the API's for an unknown field or a value of the wrong type).

use ferrostack_core::{Error, Result};
use serde_json::Value as Json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

impl Op {
    fn parse(s: &str) -> Result<Op> {
        Ok(match s {
            "" | "eq" => Op::Eq,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "ne" => Op::Ne,
            "ge" => Op::Ge,
            "gt" => Op::Gt,
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute op. Value: '{other}'. unimplemented operator for {other}"
                )))
            }
        })
    }

    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Ge => ord != Less,
            Op::Gt => ord == Greater,
        }
    }
}

/// What a condition is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Meter,
    ResourceId,
    ProjectId,
    UserId,
    Source,
    Timestamp,
    MessageId,
    /// `metadata.x.y` / `resource_metadata.x.y`: a path in the sample's
    /// resource metadata.
    Metadata(String),
}

impl Field {
    fn parse(s: &str) -> Option<Field> {
        Some(match s {
            "meter" | "counter_name" => Field::Meter,
            "resource_id" | "resource" => Field::ResourceId,
            "project_id" | "project" => Field::ProjectId,
            "user_id" | "user" => Field::UserId,
            "source" => Field::Source,
            "timestamp" => Field::Timestamp,
            "message_id" => Field::MessageId,
            other => {
                let path = other
                    .strip_prefix("metadata.")
                    .or_else(|| other.strip_prefix("resource_metadata."))?;
                Field::Metadata(path.to_owned())
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cond {
    pub field: Field,
    pub op: Op,
    pub value: Value,
}

impl Cond {
    /// Whether a sample's resource metadata satisfies this condition.
    pub fn matches_metadata(&self, metadata: &Json) -> bool {
        let Field::Metadata(path) = &self.field else {
            return true;
        };
        let mut v = metadata;
        for part in path.split('.') {
            match v.get(part) {
                Some(x) => v = x,
                None => return self.op == Op::Ne,
            }
        }
        let ord = match (&self.value, v) {
            (Value::Int(i), Json::Number(n)) => {
                n.as_f64().and_then(|f| f.partial_cmp(&(*i as f64)))
            }
            (Value::Float(x), Json::Number(n)) => n.as_f64().and_then(|f| f.partial_cmp(x)),
            (Value::Bool(b), Json::Bool(x)) => Some(x.cmp(b)),
            (val, other) => {
                let text = match other {
                    Json::String(s) => s.clone(),
                    o => o.to_string(),
                };
                let want = match val {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    Value::Float(f) => f.to_string(),
                    Value::Bool(b) => {
                        if *b {
                            "True".into()
                        } else {
                            "False".into()
                        }
                    }
                };
                Some(text.as_str().cmp(want.as_str()))
            }
        };
        ord.is_some_and(|o| self.op.holds(o))
    }

    /// The timestamp bound in microseconds, when this is one.
    pub fn time(&self) -> Option<i64> {
        match (&self.field, &self.value) {
            (Field::Timestamp, Value::Int(us)) => Some(*us),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

const TYPES: &str = "['integer', 'float', 'string', 'boolean', 'datetime']";

fn convert(field: &Field, raw: &str, kind: &str) -> Result<Value> {
    let unable = || {
        Error::BadRequest(format!(
            "Unable to convert the value {raw} to the expected data type {kind}."
        ))
    };
    if *field == Field::Timestamp || kind == "datetime" {
        return crate::store::parse_time(raw)
            .map(Value::Int)
            .ok_or_else(|| {
                if kind.is_empty() {
                    Error::BadRequest(format!("invalid timestamp format: {raw}"))
                } else {
                    unable()
                }
            });
    }
    Ok(match kind {
        "" => {
            // Ceilometer guesses: a number, a boolean, else the string.
            if !matches!(field, Field::Metadata(_)) {
                Value::Str(raw.to_owned())
            } else if let Ok(i) = raw.parse::<i64>() {
                Value::Int(i)
            } else if let Ok(f) = raw.parse::<f64>() {
                Value::Float(f)
            } else {
                match raw.to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::Str(raw.to_owned()),
                }
            }
        }
        "string" => Value::Str(raw.to_owned()),
        "integer" => Value::Int(raw.parse().map_err(|_| unable())?),
        "float" => Value::Float(raw.parse().map_err(|_| unable())?),
        "boolean" => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Value::Bool(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Value::Bool(false),
            _ => return Err(unable()),
        },
        other => {
            return Err(Error::BadRequest(format!(
                "The data type {other} is not supported. The supported data type list is: {TYPES}"
            )))
        }
    })
}

/// The conditions of a request's query string (its `q.*` parameters).
pub fn parse(params: &[(String, String)]) -> Result<Vec<Cond>> {
    let pick = |name: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let fields = pick("q.field");
    let ops = pick("q.op");
    let values = pick("q.value");
    let types = pick("q.type");
    if values.len() != fields.len() {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute q: each q.field needs a q.value".into(),
        ));
    }
    let mut out = Vec::new();
    for (i, (f, raw)) in fields.iter().zip(&values).enumerate() {
        let op = Op::parse(ops.get(i).copied().unwrap_or(""))?;
        let field = Field::parse(f).ok_or_else(|| {
            Error::BadRequest(format!(
                "Unknown argument: \"{f}\": unrecognized field in query: [<Query {f:?} {} {raw:?}>], valid keys: ['message_id', 'meter', 'metaquery', 'project', 'resource', 'search_offset', 'source', 'timestamp', 'user']",
                ops.get(i).copied().unwrap_or("eq")
            ))
        })?;
        let value = convert(&field, raw, types.get(i).copied().unwrap_or(""))?;
        out.push(Cond { field, op, value });
    }
    Ok(out)
}

/// The one value a parameter must have at most once (`limit`, `period`).
pub fn single<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn conditions_parse_with_ceilometers_errors() {
        let c = parse(&q(&[
            ("q.field", "resource_id"),
            ("q.op", "eq"),
            ("q.type", ""),
            ("q.value", "abc"),
        ]))
        .unwrap();
        assert_eq!(c[0].field, Field::ResourceId);
        assert_eq!(c[0].value, Value::Str("abc".into()));
        let e = parse(&q(&[
            ("q.field", "resource_id"),
            ("q.op", "foo"),
            ("q.value", "x"),
        ]))
        .unwrap_err();
        assert!(e
            .message()
            .starts_with("Invalid input for field/attribute op. Value: 'foo'."));
        let e = parse(&q(&[("q.field", "bogus"), ("q.value", "x")])).unwrap_err();
        assert!(
            e.message().starts_with("Unknown argument: \"bogus\""),
            "{e}"
        );
        let e = parse(&q(&[
            ("q.field", "metadata.size"),
            ("q.type", "integer"),
            ("q.value", "x"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.message(),
            "Unable to convert the value x to the expected data type integer."
        );
        let t = parse(&q(&[
            ("q.field", "timestamp"),
            ("q.op", "ge"),
            ("q.value", "2026-01-01T00:00:00"),
        ]))
        .unwrap();
        assert_eq!(t[0].time(), Some(1_767_225_600_000_000));
    }

    #[test]
    fn metadata_conditions_compare_by_type() {
        let c = Cond {
            field: Field::Metadata("size".into()),
            op: Op::Gt,
            value: Value::Int(10),
        };
        assert!(c.matches_metadata(&serde_json::json!({"size": 20})));
        assert!(!c.matches_metadata(&serde_json::json!({"size": 5})));
    }
}
