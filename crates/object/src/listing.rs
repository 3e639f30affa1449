//! Listings: pages of containers or objects with Swift's filters
//! (`marker`, `end_marker`, `prefix`, `delimiter`, `reverse`, `limit`),
//! rendered as plain text, JSON or XML.

use crate::store::objects::Object;
use crate::store::{containers::Container, ListRange};
use ferrostack_core::{Error, Result};
use std::future::Future;

/// The format a listing is rendered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Plain,
    Json,
    Xml,
}

impl Format {
    /// `format=` wins over `Accept`; plain text by default (and for a
    /// format Swift does not know, as Swift answers).
    pub fn choose(query: Option<&str>, accept: Option<&str>) -> Result<Format> {
        if let Some(f) = query {
            return Ok(match f.to_ascii_lowercase().as_str() {
                "json" => Format::Json,
                "xml" => Format::Xml,
                _ => Format::Plain,
            });
        }
        let accept = accept.unwrap_or("").to_ascii_lowercase();
        Ok(if accept.contains("application/json") {
            Format::Json
        } else if accept.contains("application/xml") || accept.contains("text/xml") {
            Format::Xml
        } else {
            Format::Plain
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Plain => "text/plain; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
        }
    }
}

/// A listing's filters as a client sent them.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub range: ListRange,
    pub delimiter: Option<String>,
}

impl Filters {
    pub fn from_query(q: &[(String, String)], max: usize) -> Result<Filters> {
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let limit = match get("limit") {
            None => max,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if n <= max => n,
                Ok(_) => {
                    return Err(Error::Status(
                        axum::http::StatusCode::PRECONDITION_FAILED,
                        format!("Maximum limit is {max}"),
                    ))
                }
                Err(_) => return Err(Error::BadRequest(format!("Invalid limit: {l}"))),
            },
        };
        let reverse = get("reverse").is_some_and(|r| {
            matches!(
                r.to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "on" | "t" | "y"
            )
        });
        let delimiter = get("delimiter").filter(|d| !d.is_empty());
        if delimiter.as_ref().is_some_and(|d| d.chars().count() != 1) {
            return Err(Error::Status(
                axum::http::StatusCode::PRECONDITION_FAILED,
                "Bad delimiter".into(),
            ));
        }
        Ok(Filters {
            range: ListRange {
                marker: get("marker"),
                end_marker: get("end_marker"),
                prefix: get("prefix"),
                reverse,
                limit,
            },
            delimiter,
        })
    }
}

/// One row of a listing: an item, or a `subdir` a delimiter rolled up.
#[derive(Clone, Debug)]
pub enum Entry<T> {
    Item(T),
    Subdir(String),
}

pub trait Named {
    fn name(&self) -> &str;
}

impl Named for Container {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Object {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Run a listing: pages from `fetch` (which honours a [`ListRange`]),
/// names under `prefix` that contain the delimiter rolled up into one
/// subdir each, skipped past in the database rather than read.
pub async fn run<T, F, Fut>(filters: &Filters, fetch: F) -> Result<Vec<Entry<T>>>
where
    T: Named,
    F: Fn(ListRange) -> Fut,
    Fut: Future<Output = Result<Vec<T>>>,
{
    let limit = filters.range.limit;
    let prefix = filters.range.prefix.clone().unwrap_or_default();
    let mut range = filters.range.clone();
    let mut out: Vec<Entry<T>> = Vec::new();
    while out.len() < limit {
        range.limit = limit - out.len();
        let page = fetch(range.clone()).await?;
        let full = page.len() == range.limit;
        let mut restarted = false;
        for item in page {
            let name = item.name().to_owned();
            let rolled = filters.delimiter.as_deref().and_then(|d| {
                let rest = name.get(prefix.len()..)?;
                rest.find(d)
                    .map(|i| format!("{prefix}{}", &rest[..i + d.len()]))
            });
            match rolled {
                Some(subdir) => {
                    range.marker = Some(if range.reverse {
                        subdir.clone()
                    } else {
                        past(&subdir)
                    });
                    out.push(Entry::Subdir(subdir));
                    restarted = true;
                    break;
                }
                None => {
                    range.marker = Some(name);
                    out.push(Entry::Item(item));
                }
            }
        }
        if !restarted && !full {
            break;
        }
    }
    Ok(out)
}

/// A marker past every name under `subdir` (its delimiter bumped).
fn past(subdir: &str) -> String {
    let mut s = subdir.to_owned();
    if let Some(last) = s.pop() {
        s.push(char::from_u32(last as u32 + 1).unwrap_or(last));
    }
    s
}

/// Swift's listing time: `2026-11-28T07:54:16.123456`.
pub fn iso_time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An item's fields, in listing order.
pub trait Listed: Named {
    fn fields(&self) -> Vec<(&'static str, serde_json::Value)>;
}

impl Listed for Container {
    fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("name", self.name.clone().into()),
            ("count", self.object_count.into()),
            ("bytes", self.bytes_used.into()),
            ("last_modified", iso_time(self.modified_us).into()),
        ]
    }
}

impl Listed for Object {
    fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("name", self.name.clone().into()),
            ("hash", self.etag.clone().into()),
            ("bytes", self.size.into()),
            ("content_type", self.content_type.clone().into()),
            ("last_modified", iso_time(self.modified_us).into()),
        ]
    }
}

/// The listing body; `root` is `account` or `container` (XML), `item`
/// `container` or `object`.
pub fn render<T: Listed>(
    entries: &[Entry<T>],
    format: Format,
    root: (&str, &str),
    item: &str,
) -> String {
    match format {
        Format::Plain => entries
            .iter()
            .map(|e| match e {
                Entry::Item(i) => format!("{}\n", i.name()),
                Entry::Subdir(s) => format!("{s}\n"),
            })
            .collect(),
        Format::Json => {
            let rows: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| match e {
                    Entry::Item(i) => serde_json::Value::Object(
                        i.fields()
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    ),
                    Entry::Subdir(s) => serde_json::json!({"subdir": s}),
                })
                .collect();
            serde_json::Value::Array(rows).to_string()
        }
        Format::Xml => {
            let mut out = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{} name=\"{}\">",
                root.0,
                xml_escape(root.1)
            );
            for e in entries {
                match e {
                    Entry::Item(i) => {
                        out.push_str(&format!("<{item}>"));
                        for (k, v) in i.fields() {
                            let text = match v {
                                serde_json::Value::String(s) => s,
                                v => v.to_string(),
                            };
                            out.push_str(&format!("<{k}>{}</{k}>", xml_escape(&text)));
                        }
                        out.push_str(&format!("</{item}>"));
                    }
                    Entry::Subdir(s) => {
                        let s = xml_escape(s);
                        out.push_str(&format!("<subdir name=\"{s}\"><name>{s}</name></subdir>"));
                    }
                }
            }
            out.push_str(&format!("</{}>", root.0));
            out
        }
    }
}
