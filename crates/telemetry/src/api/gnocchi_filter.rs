//! Gnocchi's query-string filter (`id=… and not (flavor_id!="1" and
//! memory>=24)`), as gnocchiclient sends it for `resource search` and
//! `metric aggregates … <search>`, parsed into the JSON filter form
//! (`{"and": [{"=": {"id": …}}, …]}`) the resource search evaluates. A
//! recursive-descent parser over tokens: no regex, no backtracking.

use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    ListOpen,
    ListClose,
    Comma,
    Quoted(String),
    Op(String),
    Word(String),
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadRequest(format!("Invalid filter: {}", m.into()))
}

const SYMBOLS: &[&str] = &["<=", ">=", "!=", "==", "=", "<", ">", "≤", "≥", "≠"];

fn tokens(s: &str) -> Result<Vec<Tok>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let len = c.len_utf8();
        match c {
            c if c.is_whitespace() => rest = &rest[len..],
            '(' | ')' | '[' | ']' | ',' => {
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    '[' => Tok::ListOpen,
                    ']' => Tok::ListClose,
                    _ => Tok::Comma,
                });
                rest = &rest[len..];
            }
            '"' | '\'' => {
                let end = rest[1..]
                    .find(c)
                    .ok_or_else(|| bad("unterminated string"))?;
                out.push(Tok::Quoted(rest[1..1 + end].to_owned()));
                rest = &rest[end + 2..];
            }
            _ => {
                if let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
                    out.push(Tok::Op((*sym).to_owned()));
                    rest = &rest[sym.len()..];
                    continue;
                }
                let end = rest
                    .find(|c: char| c.is_whitespace() || "()[],\"'=<>!≤≥≠".contains(c))
                    .unwrap_or(rest.len());
                if end == 0 {
                    return Err(bad(format!("unexpected {c}")));
                }
                out.push(Tok::Word(rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

const WORD_OPS: &[&str] = &["eq", "ne", "lt", "gt", "le", "ge", "in", "like", "ilike"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, words: &[&str]) -> bool {
        let hit = matches!(self.peek(), Some(Tok::Word(w)) if words.contains(&w.as_str()));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expr(&mut self) -> Result<Value> {
        let mut items = vec![self.and_expr()?];
        while self.keyword(&["or", "∨"]) {
            items.push(self.and_expr()?);
        }
        Ok(join("or", items))
    }

    fn and_expr(&mut self) -> Result<Value> {
        let mut items = vec![self.unary()?];
        while self.keyword(&["and", "∧"]) {
            items.push(self.unary()?);
        }
        Ok(join("and", items))
    }

    fn unary(&mut self) -> Result<Value> {
        if self.keyword(&["not", "¬"]) {
            return Ok(json!({"not": self.unary()?}));
        }
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.expr()?;
            return match self.next() {
                Some(Tok::Close) => Ok(e),
                _ => Err(bad("missing )")),
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Value> {
        let Some(Tok::Word(field)) = self.next() else {
            return Err(bad("expected an attribute"));
        };
        let op = match self.next() {
            Some(Tok::Op(o)) => o,
            Some(Tok::Word(w)) if WORD_OPS.contains(&w.as_str()) => w,
            _ => return Err(bad(format!("expected an operator after {field}"))),
        };
        let value = self.value()?;
        let op = if op == "ilike" { "like".to_owned() } else { op };
        Ok(json!({ op: { field: value } }))
    }

    fn value(&mut self) -> Result<Value> {
        match self.next() {
            Some(Tok::Quoted(s)) => Ok(Value::String(s)),
            Some(Tok::Word(w)) => Ok(scalar(&w)),
            Some(Tok::ListOpen) | Some(Tok::Open) => {
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        Some(Tok::ListClose) | Some(Tok::Close) => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        Some(Tok::Comma) => self.pos += 1,
                        Some(_) => items.push(self.value()?),
                        None => return Err(bad("unterminated list")),
                    }
                }
            }
            _ => Err(bad("expected a value")),
        }
    }
}

fn join(op: &str, mut items: Vec<Value>) -> Value {
    if items.len() == 1 {
        items.remove(0)
    } else {
        json!({ op: items })
    }
}

fn scalar(w: &str) -> Value {
    match w {
        "true" | "True" => json!(true),
        "false" | "False" => json!(false),
        "null" | "None" => Value::Null,
        _ => w
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| w.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(w.to_owned())),
    }
}

/// The JSON filter of a query string (an empty string matches all).
pub fn parse(s: &str) -> Result<Value> {
    let toks = tokens(s)?;
    if toks.is_empty() {
        return Ok(json!({}));
    }
    let mut p = Parser { toks, pos: 0 };
    let v = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(bad("unexpected text after the expression"));
    }
    Ok(v)
}

/// A search as the APIs take it: the JSON form, or a query string.
pub fn filter_of(v: &Value) -> Result<Value> {
    match v {
        Value::String(s) => parse(s),
        Value::Null => Ok(json!({})),
        Value::Object(_) => Ok(v.clone()),
        _ => Err(bad("expected an object or a query string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_become_json_filters() {
        assert_eq!(parse("id=abc").unwrap(), json!({"=": {"id": "abc"}}));
        assert_eq!(
            parse("not (flavor_id!=\"1\" and memory>=24) or type = instance").unwrap(),
            json!({"or": [
                {"not": {"and": [{"!=": {"flavor_id": "1"}}, {">=": {"memory": 24}}]}},
                {"=": {"type": "instance"}}
            ]})
        );
        assert_eq!(
            parse("instance_id in [a, \"b\"]").unwrap(),
            json!({"in": {"instance_id": ["a", "b"]}})
        );
        assert_eq!(
            parse("started_at>=2026-01-01T00:00:00").unwrap(),
            json!({">=": {"started_at": "2026-01-01T00:00:00"}})
        );
        assert!(parse("id=").is_err());
        assert!(parse("(id=a").is_err());
        assert!(parse("id=a b").is_err());
        assert_eq!(parse("").unwrap(), json!({}));
    }
}
