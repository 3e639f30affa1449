//! Neutron list semantics: filters on any attribute (repeat a key for OR),
//! `fixed_ips=ip_address=…`, tag filters, `fields=`, `sort_key`/`sort_dir`,
//! `limit`/`marker`/`page_reverse` with `<collection>_links`.

use axum::http::header::CONTENT_TYPE;
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

/// A list request's query, parsed and validated once: the filters and tag
/// filters every item must pass, the sort, and the page asked for.
pub struct ListRequest<'q> {
    query: &'q [(String, String)],
    filters: HashMap<&'q str, Vec<String>>,
    tags: [Vec<String>; 4],
    sort: Vec<(&'q str, bool)>,
    page_reverse: bool,
    pub limit: Option<usize>,
    pub marker: Option<&'q str>,
}

impl<'q> ListRequest<'q> {
    pub fn parse(query: &'q [(String, String)]) -> Result<ListRequest<'q>> {
        let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
        for (k, v) in query {
            if !CONTROL.contains(&k.as_str()) {
                filters.entry(k.as_str()).or_default().push(v.clone());
            }
        }
        let tag_param = |k: &str| -> Vec<String> {
            query
                .iter()
                .filter(|(x, _)| x == k)
                .flat_map(|(_, v)| v.split(',').map(str::to_owned))
                .collect()
        };
        let tags = ["tags", "tags-any", "not-tags", "not-tags-any"].map(tag_param);
        let values = |key: &str| -> Vec<&'q str> {
            query
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let (keys, dirs) = (values("sort_key"), values("sort_dir"));
        if !keys.is_empty() {
            if dirs.len() != keys.len() {
                return Err(Error::BadRequest(
                    "The number of sort_keys and sort_dirs must be same".into(),
                ));
            }
            if let Some(d) = dirs.iter().find(|d| !matches!(**d, "asc" | "desc")) {
                return Err(Error::BadRequest(format!(
                    "{d} is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
                )));
            }
        }
        let sort = keys
            .into_iter()
            .zip(dirs.iter().map(|d| *d == "desc"))
            .collect();
        Ok(ListRequest {
            query,
            filters,
            tags,
            sort,
            page_reverse: query
                .iter()
                .any(|(k, v)| k == "page_reverse" && v.eq_ignore_ascii_case("true")),
            limit: parse_limit(query)?,
            marker: values("marker").first().copied(),
        })
    }

    /// The one value a filter has, if it was given exactly once.
    pub fn single(&self, key: &str) -> Option<&str> {
        match self.filters.get(key).map(Vec::as_slice) {
            Some([v]) => Some(v.as_str()),
            _ => None,
        }
    }

    /// Whether the items come in an order the database keeps an index
    /// for (creation order, or by id), read forwards or backwards:
    /// `(by_id, descending)`. `None` when the sort needs every item.
    pub fn stored_order(&self) -> Option<(bool, bool)> {
        match self.sort.as_slice() {
            [] => Some((false, self.page_reverse)),
            [("id", desc)] => Some((true, *desc != self.page_reverse)),
            _ => None,
        }
    }

    /// Whether an item (its API view) passes the filters and tag filters.
    pub fn keep(&self, item: &Value) -> bool {
        let [all, any, not_all, not_any] = &self.tags;
        let t = tags_of(item);
        self.filters.iter().all(|(k, w)| matches(item, k, w))
            && (all.is_empty() || all.iter().all(|x| t.contains(&x.as_str())))
            && (any.is_empty() || any.iter().any(|x| t.contains(&x.as_str())))
            && (not_all.is_empty() || !not_all.iter().all(|x| t.contains(&x.as_str())))
            && (not_any.is_empty() || !not_any.iter().any(|x| t.contains(&x.as_str())))
    }

    fn sort(&self, items: &mut [Value]) {
        if self.sort.is_empty() {
            return;
        }
        items.sort_by(|a, b| {
            for (k, desc) in &self.sort {
                let o = cmp(&a[*k], &b[*k]);
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            cmp(&a["id"], &b["id"])
        });
    }

    /// The answer from every candidate item (filtered, sorted and paged
    /// here).
    pub fn respond_all(&self, plural: &str, items: Vec<Value>, base_url: &str) -> Result<Response> {
        let mut items: Vec<Value> = items.into_iter().filter(|i| self.keep(i)).collect();
        self.sort(&mut items);
        if self.page_reverse {
            items.reverse();
        }
        let (page, more) = ferrostack_core::pagination::paginate(
            items,
            |i| i["id"].as_str().unwrap_or_default(),
            self.marker,
            self.limit,
        )
        .map_err(|m| unknown_marker(&m.0))?;
        Ok(self.render(plural, page, more, base_url))
    }

    /// An item as a page holds it: its id and its JSON text with the
    /// requested fields, so a page of thousands holds bytes, not trees.
    pub fn encode(&self, item: Value) -> Encoded {
        let id = item["id"].as_str().unwrap_or_default().to_owned();
        let json = select_fields(item, self.query).to_string();
        Encoded { id, json }
    }

    /// The answer for a page already selected, in reading order (reversed
    /// for `page_reverse`), `more` when items follow it.
    pub fn render(&self, plural: &str, page: Vec<Value>, more: bool, base_url: &str) -> Response {
        let page = page.into_iter().map(|i| self.encode(i)).collect();
        self.render_encoded(plural, page, more, base_url)
    }

    /// [`ListRequest::render`] for encoded items.
    pub fn render_encoded(
        &self,
        plural: &str,
        mut page: Vec<Encoded>,
        more: bool,
        base_url: &str,
    ) -> Response {
        let links = if self.limit.is_some() {
            self.links(id_of(page.first()), id_of(page.last()), more, base_url)
        } else {
            Vec::new()
        };
        if self.page_reverse {
            page.reverse();
        }
        let size: usize = page.iter().map(|i| i.json.len() + 1).sum();
        let mut body = String::with_capacity(size + plural.len() * 2 + 64);
        body.push_str(&format!("{{\"{plural}\":["));
        for (n, item) in page.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&item.json);
        }
        body.push(']');
        if !links.is_empty() {
            body.push_str(&format!(",\"{plural}_links\":{}", Value::Array(links)));
        }
        body.push('}');
        ([(CONTENT_TYPE, "application/json")], body).into_response()
    }

    fn links(
        &self,
        first: Option<&str>,
        last: Option<&str>,
        more: bool,
        base_url: &str,
    ) -> Vec<Value> {
        let passthrough: Vec<String> = self
            .query
            .iter()
            .filter(|(k, _)| k != "marker" && k != "page_reverse")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let prefix = if passthrough.is_empty() {
            String::new()
        } else {
            format!("{}&", passthrough.join("&"))
        };
        let mut links = Vec::new();
        if let (true, Some(last)) = (more, last) {
            links.push(json!({"rel": "next", "href": format!("{base_url}?{prefix}marker={last}")}));
        }
        if let (true, Some(first)) = (self.marker.is_some(), first) {
            links.push(json!({"rel": "previous", "href": format!("{base_url}?{prefix}marker={first}&page_reverse=True")}));
        }
        links
    }
}

fn id_of(item: Option<&Encoded>) -> Option<&str> {
    item.map(|i| i.id.as_str()).filter(|s| !s.is_empty())
}

/// One item of a page: its id (for the links) and its JSON text.
pub struct Encoded {
    id: String,
    json: String,
}

pub fn unknown_marker(marker: &str) -> Error {
    Error::NotFound(format!("Marker {marker} could not be found."))
}

fn parse_limit(query: &[(String, String)]) -> Result<Option<usize>> {
    let Some((_, l)) = query.iter().find(|(k, _)| k == "limit") else {
        return Ok(None);
    };
    let l = l.parse::<i64>().map_err(|_| {
        Error::BadRequest(format!(
            "Bad limit request: Limit must be an integer 0 or greater and not '{l}'"
        ))
    })?;
    Ok((l > 0).then_some(l as usize))
}

/// Filter, sort and page `items` as the query asks.
pub fn respond(
    plural: &str,
    items: Vec<Value>,
    q: &[(String, String)],
    base_url: &str,
) -> Result<Response> {
    ListRequest::parse(q)?.respond_all(plural, items, base_url)
}
