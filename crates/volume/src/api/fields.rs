//! Checks of request fields that several resources share.

use ferrostack_core::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A free-text field no longer than `max` characters, as Cinder's schemas say.
pub(crate) fn check_text(field: &str, v: &Option<String>, max: usize) -> Result<()> {
    match v {
        Some(s) if s.chars().count() > max => Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value is longer than {max} characters."
        ))),
        _ => Ok(()),
    }
}

/// Metadata keys and values as Cinder limits them (1–255, ≤255 chars).
pub(crate) fn check_metadata(m: &BTreeMap<String, String>) -> Result<Map<String, Value>> {
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > 255 || v.chars().count() > 255 {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Metadata property key {k} or its value is empty or longer than 255 characters."
            )));
        }
    }
    Ok(m.iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect())
}
