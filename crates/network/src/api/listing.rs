//! Neutron list semantics: filters on any attribute (repeat a key for OR),
//! `fixed_ips=ip_address=…`, tag filters, `fields=`, `sort_key`/`sort_dir`,
//! `limit`/`marker`/`page_reverse` with `<collection>_links`.

use axum::response::{IntoResponse, Response};
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

const CONTROL: &[&str] = &[
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
];

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn matches(item: &Value, key: &str, wanted: &[String]) -> bool {
    // Without filter-validation Neutron ignores filters on unknown attributes.
    let Some(v) = item.get(key) else { return true };
    if key == "fixed_ips" {
        // fixed_ips=ip_address=1.2.3.4 / fixed_ips=subnet_id=…
        return wanted.iter().any(|w| {
            let (k, want) = w.split_once('=').unwrap_or(("ip_address", w));
            v.as_array()
                .is_some_and(|ips| ips.iter().any(|f| f[k].as_str() == Some(want)))
        });
    }
    if key == "agent_type" {
        // Neutron's agents table compares case-insensitively on MySQL, and
        // clients rely on it (tempest asks for "DHCP Agent").
        let s = scalar(v).unwrap_or_default();
        return wanted.iter().any(|w| w.eq_ignore_ascii_case(&s));
    }
    match v {
        Value::Array(a) => wanted
            .iter()
            .any(|w| a.iter().any(|x| scalar(x).as_deref() == Some(w))),
        Value::Bool(b) => wanted
            .iter()
            .any(|w| w.eq_ignore_ascii_case(&b.to_string())),
        other => {
            let s = scalar(other);
            wanted.iter().any(|w| {
                s.as_deref() == Some(w) || (other.is_null() && (w.is_empty() || w == "None"))
            })
        }
    }
}

fn tags_of(item: &Value) -> Vec<&str> {
    item["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Keep only the requested fields (`fields=id&fields=name`).
pub fn select_fields(item: Value, q: &[(String, String)]) -> Value {
    let fields: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "fields")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    if fields.is_empty() {
        return item;
    }
    match item {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| fields.contains(&k.as_str()))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

fn cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => scalar(a)
            .unwrap_or_default()
            .cmp(&scalar(b).unwrap_or_default()),
    }
}

pub fn respond(
    plural: &str,
    items: Vec<Value>,
    q: &[(String, String)],
    base_url: &str,
) -> Result<Response> {
    let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
    for (k, v) in q {
        if !CONTROL.contains(&k.as_str()) {
            filters.entry(k.as_str()).or_default().push(v.clone());
        }
    }
    let tag_param = |k: &str| -> Vec<String> {
        q.iter()
            .filter(|(x, _)| x == k)
            .flat_map(|(_, v)| v.split(',').map(str::to_owned))
            .collect()
    };
    let (all, any, not_all, not_any) = (
        tag_param("tags"),
        tag_param("tags-any"),
        tag_param("not-tags"),
        tag_param("not-tags-any"),
    );
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|i| filters.iter().all(|(k, w)| matches(i, k, w)))
        .filter(|i| {
            let t = tags_of(i);
            (all.is_empty() || all.iter().all(|x| t.contains(&x.as_str())))
                && (any.is_empty() || any.iter().any(|x| t.contains(&x.as_str())))
                && (not_all.is_empty() || !not_all.iter().all(|x| t.contains(&x.as_str())))
                && (not_any.is_empty() || !not_any.iter().any(|x| t.contains(&x.as_str())))
        })
        .collect();

    let keys: Vec<&String> = q
        .iter()
        .filter(|(k, _)| k == "sort_key")
        .map(|(_, v)| v)
        .collect();
    let dirs: Vec<&String> = q
        .iter()
        .filter(|(k, _)| k == "sort_dir")
        .map(|(_, v)| v)
        .collect();
    if !keys.is_empty() {
        if dirs.len() != keys.len() {
            return Err(Error::BadRequest(
                "The number of sort_keys and sort_dirs must be same".into(),
            ));
        }
        for d in &dirs {
            if !matches!(d.as_str(), "asc" | "desc") {
                return Err(Error::BadRequest(format!(
                    "{d} is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
                )));
            }
        }
        items.sort_by(|a, b| {
            for (i, k) in keys.iter().enumerate() {
                let o = cmp(&a[k.as_str()], &b[k.as_str()]);
                let o = if dirs.get(i).is_some_and(|d| d.as_str() == "desc") {
                    o.reverse()
                } else {
                    o
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            cmp(&a["id"], &b["id"])
        });
    }
    let page_reverse = q
        .iter()
        .any(|(k, v)| k == "page_reverse" && v.eq_ignore_ascii_case("true"));
    if page_reverse {
        items.reverse();
    }
    let limit = match q.iter().find(|(k, _)| k == "limit") {
        None => None,
        Some((_, l)) => Some(l.parse::<i64>().map_err(|_| {
            Error::BadRequest(format!(
                "Bad limit request: Limit must be an integer 0 or greater and not '{l}'"
            ))
        })?)
        .filter(|l| *l > 0)
        .map(|l| l as usize),
    };
    let marker = q
        .iter()
        .find(|(k, _)| k == "marker")
        .map(|(_, m)| m.as_str());
    let had_marker = marker.is_some();
    let (mut page, more) = ferrostack_core::pagination::paginate(
        items,
        |i| i["id"].as_str().unwrap_or_default(),
        marker,
        limit,
    )
    .map_err(|m| Error::NotFound(format!("Marker {} could not be found.", m.0)))?;
    let mut links = Vec::new();
    if limit.is_some() {
        let passthrough: Vec<String> = q
            .iter()
            .filter(|(k, _)| k != "marker" && k != "page_reverse")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let prefix = if passthrough.is_empty() {
            String::new()
        } else {
            format!("{}&", passthrough.join("&"))
        };
        if more {
            if let Some(last) = page.last().and_then(|i| i["id"].as_str()) {
                links.push(
                    json!({"rel": "next", "href": format!("{base_url}?{prefix}marker={last}")}),
                );
            }
        }
        if had_marker {
            if let Some(first) = page.first().and_then(|i| i["id"].as_str()) {
                links.push(json!({"rel": "previous", "href": format!("{base_url}?{prefix}marker={first}&page_reverse=True")}));
            }
        }
    }
    if page_reverse {
        page.reverse();
    }
    let page: Vec<Value> = page.into_iter().map(|i| select_fields(i, q)).collect();
    let mut body = json!({ plural: page });
    if !links.is_empty() {
        body[format!("{plural}_links")] = Value::Array(links);
    }
    Ok(axum::Json(body).into_response())
}
