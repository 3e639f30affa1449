//! A small policy engine in the oslo.policy language, so that every service
//! decides "may this caller do this to that" in one place and operators can
//! read the rules the way they read OpenStack's policy files.
//!
//! Grammar: `expr := term ("or" term)*`, `term := factor ("and" factor)*`,
//! `factor := "not" factor | "(" expr ")" | check`, where a check is `@`
//! (always), `!` (never), `rule:NAME`, `role:NAME`, or `KEY:VALUE` comparing a
//! credential (`user_id`, `project_id` (alias `tenant_id`), `domain_id`,
//! `system_scope`, `token.is_admin_project`) with a literal or a
//! `%(target.path)s` reference, or Neutron's `field:<resource>:<attr>=<value>`
//! comparing an attribute of the target (`=~^prefix` for a prefix).

use crate::auth::AuthContext;
use crate::error::Error;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Rule {
    Always,
    Never,
    Named(String),
    Role(String),
    Match {
        key: String,
        value: String,
    },
    Field {
        attribute: String,
        wanted: FieldMatch,
    },
    Not(Box<Rule>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

/// What a `field:` check wants of the target's attribute.
#[derive(Debug, Clone, PartialEq)]
enum FieldMatch {
    /// `=value`: equal (`True`/`False` match booleans, any case).
    Equals(String),
    /// `=~^prefix`: a string starting with it (the only pattern Neutron's
    /// defaults use; others are refused rather than misread).
    Prefix(String),
}

impl FieldMatch {
    fn parse(check: &str, spec: &str) -> Result<(String, FieldMatch), String> {
        let malformed = || format!("'{check}': expected field:<resource>:<attribute>=<value>");
        let (_resource, test) = spec.split_once(':').ok_or_else(malformed)?;
        let (attribute, value) = test.split_once('=').ok_or_else(malformed)?;
        let wanted = match value.strip_prefix('~') {
            None => FieldMatch::Equals(value.to_owned()),
            Some(pattern) => FieldMatch::Prefix(
                pattern
                    .strip_prefix('^')
                    .filter(|p| !p.contains(|c: char| "\\.*+?[](){}|$^".contains(c)))
                    .ok_or_else(|| format!("'{check}': only '~^literal' patterns are supported"))?
                    .to_owned(),
            ),
        };
        Ok((attribute.to_owned(), wanted))
    }

    fn holds(&self, have: Option<&Value>) -> bool {
        match (self, have) {
            (FieldMatch::Equals(w), Some(Value::Bool(b))) => w.eq_ignore_ascii_case(&b.to_string()),
            (FieldMatch::Equals(w), Some(Value::String(s))) => w == s,
            (FieldMatch::Equals(w), Some(Value::Number(n))) => *w == n.to_string(),
            (FieldMatch::Prefix(p), Some(Value::String(s))) => s.starts_with(p.as_str()),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: HashMap<String, Rule>,
}

impl Policy {
    /// Build from `(name, expression)` pairs; an unparsable rule is a programming error.
    pub fn new(defaults: &[(&str, &str)]) -> Self {
        let mut p = Policy::default();
        for (name, expr) in defaults {
            p.set(name, expr)
                .unwrap_or_else(|e| panic!("policy {name}: {e}"));
        }
        p
    }

    /// Set or override one rule (operators' overrides come through here).
    pub fn set(&mut self, name: &str, expr: &str) -> Result<(), String> {
        let rule = Parser::new(expr).parse()?;
        self.rules.insert(name.to_owned(), rule);
        Ok(())
    }

    /// Apply an operator's policy file (oslo.policy's `policy.yaml` or
    /// `policy.json`: a flat map of rule name → expression) over the
    /// defaults. Returns how many rules it set; an unreadable file or a rule
    /// that does not parse is an error naming the file, line and rule, so a
    /// service refuses to start on a typo instead of silently ignoring it.
    pub fn apply_file(&mut self, path: &std::path::Path) -> Result<usize, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("policy file {}: {e}", path.display()))?;
        let rules =
            parse_policy_file(&text).map_err(|e| format!("policy file {}: {e}", path.display()))?;
        for (name, expr) in &rules {
            self.set(name, expr)
                .map_err(|e| format!("policy file {}: rule '{name}': {e}", path.display()))?;
        }
        Ok(rules.len())
    }

    /// The defaults with the operator's file applied over them, if one is
    /// configured (the `policy_file` option of each service).
    pub fn with_file(mut self, path: Option<&std::path::Path>) -> Result<Self, String> {
        if let Some(path) = path {
            let n = self.apply_file(path)?;
            tracing::info!(file = %path.display(), rules = n, "policy overrides loaded");
        }
        Ok(self)
    }

    pub fn has(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// True when `action` is allowed for `ctx` on `target`.
    pub fn check(&self, action: &str, ctx: &AuthContext, target: &Value) -> bool {
        match self.rules.get(action) {
            Some(rule) => self.eval(rule, ctx, target, 0),
            None => self
                .rules
                .get("default")
                .map(|r| self.eval(r, ctx, target, 0))
                .unwrap_or(false),
        }
    }

    /// Enforce `action`, answering 403 with OpenStack's wording when denied.
    pub fn enforce(&self, action: &str, ctx: &AuthContext, target: &Value) -> Result<(), Error> {
        if self.check(action, ctx, target) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "You are not authorized to perform the requested action: {action}."
            )))
        }
    }

    fn eval(&self, rule: &Rule, ctx: &AuthContext, target: &Value, depth: usize) -> bool {
        if depth > 32 {
            return false;
        }
        match rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::Named(name) => self
                .rules
                .get(name)
                .map(|r| self.eval(r, ctx, target, depth + 1))
                .unwrap_or(false),
            Rule::Role(name) => ctx.has_role(name),
            Rule::Match { key, value } => {
                let wanted = match resolve_reference(value, target) {
                    Some(v) => v,
                    None => return false,
                };
                let quoted = key
                    .strip_prefix('"')
                    .and_then(|k| k.strip_suffix('"'))
                    .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')));
                if let Some(literal) = quoted {
                    // oslo's `"public":%(visibility)s`: a literal compared
                    // with the target.
                    return literal == wanted;
                }
                let have = match key.as_str() {
                    "user_id" => Some(ctx.user_id.clone()),
                    "project_id" | "tenant_id" => ctx.project_id.clone(),
                    "domain_id" => ctx.domain_id.clone(),
                    "user_domain_id" => Some(ctx.user_domain_id.clone()),
                    "project_domain_id" => ctx.project_domain_id.clone(),
                    "system_scope" => ctx.system_scope.then(|| "all".to_owned()),
                    // oslo.context's `is_admin`: an admin role (Nova's and
                    // Neutron's old files say `is_admin:True`).
                    "is_admin" => Some(if ctx.is_admin() { "True" } else { "False" }.to_owned()),
                    "token.is_admin_project" => Some(
                        if ctx.is_admin_project {
                            "True"
                        } else {
                            "False"
                        }
                        .to_owned(),
                    ),
                    _ => None,
                };
                have.is_some_and(|h| h.eq_ignore_ascii_case(&wanted))
            }
            Rule::Field { attribute, wanted } => wanted.holds(target.get(attribute)),
            Rule::Not(r) => !self.eval(r, ctx, target, depth + 1),
            Rule::And(rs) => rs.iter().all(|r| self.eval(r, ctx, target, depth + 1)),
            Rule::Or(rs) => rs.iter().any(|r| self.eval(r, ctx, target, depth + 1)),
        }
    }
}

/// Parse a policy file: JSON (`{"name": "expr", …}`) or the flat YAML map
/// oslo.policy writes (`"name": "expr"` per line, `#` comments, single or
/// double quotes or none). Anything else — nesting, lists, a line without
/// `:` — is refused with its line number.
pub fn parse_policy_file(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.trim_start().starts_with('{') {
        let map: serde_json::Map<String, Value> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON object of rules: {e}"))?;
        return map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(format!("rule '{k}' is not a string")),
            })
            .collect();
    }
    let mut rules = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line == "---" {
            continue;
        }
        if raw.starts_with(char::is_whitespace) {
            return Err(format!("line {line_no}: nested values are not rules"));
        }
        let (name, rest) =
            yaml_scalar(line).ok_or_else(|| format!("line {line_no}: bad rule name"))?;
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| format!("line {line_no}: expected 'name: expression'"))?
            .trim();
        let (expr, tail) = if rest.is_empty() {
            (String::new(), "")
        } else {
            yaml_scalar(rest).ok_or_else(|| format!("line {line_no}: bad expression"))?
        };
        let tail = tail.trim();
        if !(tail.is_empty() || tail.starts_with('#')) {
            return Err(format!("line {line_no}: unexpected '{tail}'"));
        }
        rules.push((name, expr));
    }
    Ok(rules)
}

/// One YAML scalar at the start of `s` (quoted or plain) and what follows it.
fn yaml_scalar(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    match chars.next()?.1 {
        '"' => {
            let mut out = String::new();
            let mut escaped = false;
            for (i, c) in chars {
                match (escaped, c) {
                    (true, c) => {
                        out.push(c);
                        escaped = false;
                    }
                    (false, '\\') => escaped = true,
                    (false, '"') => return Some((out, &s[i + 1..])),
                    (false, c) => out.push(c),
                }
            }
            None
        }
        '\'' => {
            let mut out = String::new();
            let mut iter = chars.peekable();
            while let Some((i, c)) = iter.next() {
                if c == '\'' {
                    if iter.peek().map(|(_, n)| *n) == Some('\'') {
                        iter.next();
                        out.push('\'');
                    } else {
                        return Some((out, &s[i + 1..]));
                    }
                } else {
                    out.push(c);
                }
            }
            None
        }
        _ => {
            // A plain scalar ends at ": " (for a key) or " #" (a comment).
            let end = s
                .find(": ")
                .or_else(|| s.strip_suffix(':').map(|k| k.len()))
                .map(|k| {
                    let v = &s[..k];
                    v.find(" #").unwrap_or(v.len())
                })
                .or_else(|| s.find(" #"))
                .unwrap_or(s.len());
            Some((s[..end].trim().to_owned(), &s[end..]))
        }
    }
}

/// `%(target.user.domain_id)s` → the value at that path; other text is literal.
fn resolve_reference(value: &str, target: &Value) -> Option<String> {
    let Some(path) = value.strip_prefix("%(").and_then(|v| v.strip_suffix(")s")) else {
        return Some(value.to_owned());
    };
    let mut cur = target;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

struct Parser<'a> {
    tokens: Vec<&'a str>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        let bytes = src.as_bytes();
        let mut tokens = Vec::new();
        let mut start: Option<usize> = None;
        let mut in_ref = false;
        for (i, &c) in bytes.iter().enumerate() {
            if in_ref {
                if c == b')' && bytes.get(i + 1) == Some(&b's') {
                    in_ref = false;
                }
                continue;
            }
            match c {
                b'(' if i > 0 && bytes[i - 1] == b'%' => in_ref = true,
                b'(' | b')' => {
                    if let Some(s) = start.take() {
                        tokens.push(&src[s..i]);
                    }
                    tokens.push(&src[i..i + 1]);
                }
                c if c.is_ascii_whitespace() => {
                    if let Some(s) = start.take() {
                        tokens.push(&src[s..i]);
                    }
                }
                _ => {
                    if start.is_none() {
                        start = Some(i);
                    }
                }
            }
        }
        if let Some(s) = start {
            tokens.push(&src[s..]);
        }
        Parser { tokens, pos: 0 }
    }

    fn parse(mut self) -> Result<Rule, String> {
        if self.tokens.is_empty() {
            return Ok(Rule::Always);
        }
        let r = self.expr()?;
        if self.pos != self.tokens.len() {
            return Err(format!("unexpected '{}'", self.tokens[self.pos]));
        }
        Ok(r)
    }

    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.pos).copied()
    }

    fn expr(&mut self) -> Result<Rule, String> {
        let mut terms = vec![self.term()?];
        while self.peek() == Some("or") {
            self.pos += 1;
            terms.push(self.term()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap()
        } else {
            Rule::Or(terms)
        })
    }

    fn term(&mut self) -> Result<Rule, String> {
        let mut factors = vec![self.factor()?];
        while self.peek() == Some("and") {
            self.pos += 1;
            factors.push(self.factor()?);
        }
        Ok(if factors.len() == 1 {
            factors.pop().unwrap()
        } else {
            Rule::And(factors)
        })
    }

    fn factor(&mut self) -> Result<Rule, String> {
        let tok = self.peek().ok_or("unexpected end of rule")?;
        self.pos += 1;
        match tok {
            "not" => Ok(Rule::Not(Box::new(self.factor()?))),
            "(" => {
                let r = self.expr()?;
                if self.peek() != Some(")") {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                Ok(r)
            }
            "@" => Ok(Rule::Always),
            "!" => Ok(Rule::Never),
            check => {
                let (kind, value) = check
                    .split_once(':')
                    .ok_or_else(|| format!("'{check}' is not a check"))?;
                Ok(match kind {
                    "rule" => Rule::Named(value.to_owned()),
                    "role" => Rule::Role(value.to_owned()),
                    "field" => {
                        let (attribute, wanted) = FieldMatch::parse(check, value)?;
                        Rule::Field { attribute, wanted }
                    }
                    _ => Rule::Match {
                        key: kind.to_owned(),
                        value: value.to_owned(),
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::NamedRef;
    use serde_json::json;

    fn ctx(roles: &[&str], project: &str) -> AuthContext {
        AuthContext {
            user_id: "u1".into(),
            project_id: Some(project.into()),
            roles: roles
                .iter()
                .map(|r| NamedRef {
                    id: r.to_string(),
                    name: r.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn evaluates_roles_targets_and_nesting() {
        let p = Policy::new(&[
            ("admin_required", "role:admin"),
            ("owner", "user_id:%(target.user.id)s"),
            (
                "get_user",
                "rule:admin_required or (role:reader and rule:owner)",
            ),
            (
                "project_member",
                "role:member and project_id:%(target.project_id)s",
            ),
            ("nobody", "!"),
            ("not_admin", "not role:admin"),
        ]);
        let admin = ctx(&["admin"], "p1");
        let reader = ctx(&["reader"], "p1");
        let other = json!({"target": {"user": {"id": "u2"}}});
        let own = json!({"target": {"user": {"id": "u1"}}});
        assert!(p.check("get_user", &admin, &other));
        assert!(!p.check("get_user", &reader, &other));
        assert!(p.check("get_user", &reader, &own));
        assert!(p.check(
            "project_member",
            &ctx(&["member"], "p1"),
            &json!({"target": {"project_id": "p1"}})
        ));
        assert!(!p.check(
            "project_member",
            &ctx(&["member"], "p1"),
            &json!({"target": {"project_id": "p2"}})
        ));
        assert!(!p.check("nobody", &admin, &own));
        assert!(!p.check("not_admin", &admin, &own));
        assert!(!p.check("unknown_action", &admin, &own));
        let err = p.enforce("nobody", &admin, &own).unwrap_err();
        assert_eq!(err.status(), 403);
    }

    #[test]
    fn reads_oslo_policy_files() {
        let yaml = "# overrides\n\"os_compute_api:os-flavor-manage:create\": \"role:member\"\n'identity:get_user': 'role:admin or user_id:%(target.user.id)s'  # who\nplain_rule: role:reader\nempty_rule: \"\"\n";
        let rules = parse_policy_file(yaml).unwrap();
        assert_eq!(
            rules,
            vec![
                (
                    "os_compute_api:os-flavor-manage:create".into(),
                    "role:member".into()
                ),
                (
                    "identity:get_user".into(),
                    "role:admin or user_id:%(target.user.id)s".into()
                ),
                ("plain_rule".into(), "role:reader".into()),
                ("empty_rule".into(), "".into()),
            ]
        );
        let json = r#"{"a": "role:admin", "b": "@"}"#;
        assert_eq!(parse_policy_file(json).unwrap().len(), 2);
        assert!(parse_policy_file("a:\n  - role:admin\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_policy_file("just text\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_policy_file(r#"{"a": 1}"#).is_err());

        let dir = std::env::temp_dir().join(format!("policy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.yaml");
        std::fs::write(&file, "\"create_thing\": \"role:member\"\n").unwrap();
        let p = Policy::new(&[("create_thing", "role:admin")])
            .with_file(Some(&file))
            .unwrap();
        assert!(p.check("create_thing", &ctx(&["member"], "p1"), &json!({})));
        std::fs::write(&file, "\"create_thing\": \"role:member or (\"\n").unwrap();
        let err = Policy::default().with_file(Some(&file)).unwrap_err();
        assert!(err.contains("create_thing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn field_checks_literals_and_the_tenant_id_alias() {
        let p = Policy::new(&[
            ("shared", "field:networks:shared=True"),
            ("network_owner", "field:port:device_owner=~^network:"),
            ("legacy_owner", "tenant_id:%(tenant_id)s"),
            ("old_admin", "is_admin:True"),
            (
                "public",
                "\"public\":%(visibility)s or 'community':%(visibility)s",
            ),
        ]);
        let c = ctx(&["member"], "p1");
        assert!(p.check("shared", &c, &json!({"shared": true})));
        assert!(!p.check("shared", &c, &json!({"shared": false})));
        assert!(!p.check("shared", &c, &json!({})));
        assert!(p.check(
            "network_owner",
            &c,
            &json!({"device_owner": "network:dhcp"})
        ));
        assert!(!p.check(
            "network_owner",
            &c,
            &json!({"device_owner": "compute:nova"})
        ));
        assert!(p.check("legacy_owner", &c, &json!({"tenant_id": "p1"})));
        assert!(!p.check("old_admin", &c, &json!({})));
        assert!(p.check("old_admin", &ctx(&["admin"], "p1"), &json!({})));
        assert!(p.check("public", &c, &json!({"visibility": "public"})));
        assert!(p.check("public", &c, &json!({"visibility": "community"})));
        assert!(!p.check("public", &c, &json!({"visibility": "private"})));
        assert!(!p.check("public", &c, &json!({})));
        let mut q = Policy::default();
        assert!(q.set("x", "field:port:device_owner=~network.*").is_err());
        assert!(q.set("x", "field:shared").is_err());
    }

    #[test]
    fn rejects_bad_rules() {
        let mut p = Policy::default();
        assert!(p.set("x", "role:admin or (").is_err());
        assert!(p.set("x", "banana").is_err());
    }
}
