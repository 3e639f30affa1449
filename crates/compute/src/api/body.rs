//! Field types Nova's request schemas accept in more than one JSON form
//! (`"ram": 512` or `"ram": "512"`), for the typed request bodies.

use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;

/// An integer, or a string holding one.
#[derive(Deserialize, Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Text(String),
}

impl IntOrString {
    /// The value as Nova prints it (ids of either form are strings).
    pub fn text(&self) -> String {
        match self {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::Text(s) => s.clone(),
        }
    }

    /// The integer, at least `min`, with Nova's messages for `field`.
    pub fn int(&self, field: &str, min: i64) -> Result<i64> {
        let n = match self {
            IntOrString::Int(n) => *n,
            IntOrString::Text(s) => s.trim().parse().map_err(|_| {
                Error::BadRequest(format!(
                    "Invalid input for field/attribute {field}. Value: {s}. '{s}' is not of type 'integer', 'string'"
                ))
            })?,
        };
        if n < min {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute {field}. Value: {n}. {n} is less than the minimum of {min}"
            )));
        }
        Ok(n)
    }
}

/// A number, or a string holding one.
#[derive(Deserialize, Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum FloatOrString {
    Float(f64),
    Text(String),
}

impl FloatOrString {
    pub fn float(&self) -> Option<f64> {
        match self {
            FloatOrString::Float(x) => Some(*x),
            FloatOrString::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// A boolean, or a string oslo's `bool_from_string` reads.
#[derive(Deserialize, Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum BoolOrString {
    Bool(bool),
    Text(String),
}

impl BoolOrString {
    pub fn truth(&self) -> bool {
        match self {
            BoolOrString::Bool(b) => *b,
            BoolOrString::Text(s) => matches!(
                s.to_ascii_lowercase().as_str(),
                "true" | "t" | "1" | "yes" | "y" | "on"
            ),
        }
    }
}

/// For `Option<Option<T>>` fields with `#[serde(default, deserialize_with =
/// "present")]`: absent is `None`, `null` is `Some(None)` (a field a
/// request may clear).
pub fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
