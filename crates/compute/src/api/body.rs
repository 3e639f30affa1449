//! Field types Nova's request schemas accept in more than one JSON form
//! (`"ram": 512` or `"ram": "512"`), for the typed request bodies.

use ferrostack_core::{Error, Result};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_json::json;

/// An integer, or a string holding one.
#[derive(Deserialize, Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Text(#[schemars(regex(pattern = r"^\s*[+-]?[0-9]+\s*$"))] String),
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

    /// [`IntOrString::int`] at most `max`.
    pub fn int_within(&self, field: &str, min: i64, max: i64) -> Result<i64> {
        let n = self.int(field, min)?;
        if n > max {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute {field}. Value: {n}. {n} is greater than the maximum of {max}"
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

/// The schema of a string that must be one of `values` (or `null` when
/// `nullable`): where serde reads any string and the handler refuses the
/// others, this is what a valid request holds.
pub fn one_of(values: &[&str], nullable: bool) -> Schema {
    let mut allowed = json!(values);
    if nullable {
        allowed.as_array_mut().expect("array").push(json!(null));
    }
    let kind = if nullable {
        json!(["string", "null"])
    } else {
        json!("string")
    };
    Schema::try_from(json!({"type": kind, "enum": allowed})).expect("an object")
}

/// Nova's metadata: keys of 1 to 255 characters, string values of at
/// most 255 (the bounds the handlers check).
pub fn metadata(_: &mut SchemaGenerator) -> Schema {
    metadata_schema(json!("object"))
}

/// [`metadata`], or `null` (absent).
pub fn optional_metadata(_: &mut SchemaGenerator) -> Schema {
    metadata_schema(json!(["object", "null"]))
}

/// One metadata item (`{"<key>": value}`).
pub fn metadata_item(_: &mut SchemaGenerator) -> Schema {
    let mut s = metadata_schema(json!("object")).to_value();
    s["minProperties"] = json!(1);
    s["maxProperties"] = json!(1);
    Schema::try_from(s).expect("an object")
}

fn metadata_schema(kind: serde_json::Value) -> Schema {
    Schema::try_from(json!({
        "type": kind,
        "propertyNames": {"minLength": 1, "maxLength": 255},
        "additionalProperties": {"type": "string", "maxLength": 255},
    }))
    .expect("an object")
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

/// A server description (2.19): at most 255 printable characters.
pub fn checked_description(d: Option<String>) -> ferrostack_core::Result<Option<String>> {
    if let Some(text) = &d {
        if text.chars().count() > 255 || text.chars().any(char::is_control) {
            return Err(ferrostack_core::Error::BadRequest(format!(
                "Invalid input for field/attribute description. Value: {text}. It must be at most 255 printable characters."
            )));
        }
    }
    Ok(d)
}
