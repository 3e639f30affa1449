//! Gnocchi's `POST /v1/aggregates`: the operations language
//! (`(metric ID AGG)`, `(metric ((ID AGG) …))`, `(aggregate AGG OPS)`,
//! `(resample AGG GRANULARITY OPS)`, `(rateofchange OPS)`, arithmetic
//! `+ - * / **` and `abs`/`neg` over series and numbers), over metrics named
//! by id, or by name across the resources a `search` selects (with
//! `groupby`). Answers are Gnocchi's: `{"measures": {id: {agg: […]}}}`,
//! `{"measures": {resource: {name: {agg: […]}}}}`, `{"measures":
//! {"aggregated": […]}}`, with `references` when `details=true`, or a list
//! of `{"group", "measures"}` with `groupby`.

use super::gnocchi::{bad, ok, read_points, visible_metric, Window};
use super::gnocchi_resources::search_resources;
use super::{Query, Svc};
use crate::archive::{Aggregation, Method};
use crate::query::single;
use crate::store::sqlite::Tx;
use crate::store::{self, measures::Acc, resources::Resource};
use axum::extract::State;
use axum::response::Response;
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{post, ApiRouter};
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new().route("/v1/aggregates", post(aggregates))
}

/// A point's key: coarsest granularity first, then time (seconds).
type Key = (i64, i64);

fn key(g: i64, ts: i64) -> Key {
    (-g, ts)
}

/// One labelled series (`[metric id, agg]`, `[resource, name, agg]` or
/// `["aggregated"]`).
#[derive(Clone, Debug, PartialEq)]
struct Series {
    path: Vec<String>,
    points: BTreeMap<Key, f64>,
}

enum Val {
    Num(f64),
    Series(Vec<Series>),
}

/// What the operations are evaluated against.
struct Eval<'a> {
    svc: &'a Svc,
    ctx: &'a AuthContext,
    window: Window,
    /// The resources of a `search` (metrics are then named, not ids).
    resources: Option<Vec<(Resource, Value)>>,
    needed_overlap: f64,
    fill: Option<Fill>,
    /// The metrics read, for `details=true` without a search.
    references: Vec<Value>,
}

#[derive(Clone, Copy)]
enum Fill {
    Value(f64),
    Null,
}

type Boxed<'a> = Pin<Box<dyn Future<Output = Result<Val>> + Send + 'a>>;

impl Eval<'_> {
    fn eval<'b>(&'b mut self, op: &'b Value) -> Boxed<'b> {
        Box::pin(async move {
            if let Some(n) = number(op) {
                return Ok(Val::Num(n));
            }
            let items = op
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| bad(format!("Invalid operations: {op}")))?;
            let name = items[0].as_str().unwrap_or_default();
            let args = &items[1..];
            match name {
                "metric" => self.metric(args).await.map(Val::Series),
                "aggregate" => {
                    let (method, inner) = (text(args.first())?, args.get(1));
                    let series = self.series_of(inner).await?;
                    Ok(Val::Series(vec![self.aggregate(method, &series)?]))
                }
                "resample" => {
                    let method = Method::parse(text(args.first())?)
                        .ok_or_else(|| bad("Invalid resample aggregation method"))?;
                    let g = args
                        .get(1)
                        .and_then(|g| number(g).or_else(|| g.as_str().and_then(seconds)))
                        .filter(|g| *g >= 1.0)
                        .ok_or_else(|| bad("Invalid resample granularity"))?;
                    let series = self.series_of(args.get(2)).await?;
                    Ok(Val::Series(
                        series
                            .iter()
                            .map(|s| resample(s, method, g as i64))
                            .collect(),
                    ))
                }
                "rateofchange" => {
                    let series = self.series_of(args.first()).await?;
                    Ok(Val::Series(series.iter().map(differences).collect()))
                }
                _ => self.math(name, args).await,
            }
        })
    }

    async fn series_of(&mut self, op: Option<&Value>) -> Result<Vec<Series>> {
        let op = op.ok_or_else(|| bad("Invalid operations: an operand is missing"))?;
        match self.eval(op).await? {
            Val::Series(s) => Ok(s),
            Val::Num(_) => Err(bad("Invalid operations: a series is expected")),
        }
    }

    /// `(metric ID AGG)` / `(metric ((ID AGG) …))`: by id, or with a
    /// search by name in each resource found.
    async fn metric(&mut self, args: &[Value]) -> Result<Vec<Series>> {
        let pairs: Vec<(String, String)> = match args.first() {
            Some(Value::Array(list)) => list
                .iter()
                .map(|p| Ok((text(p.get(0))?.to_owned(), text(p.get(1))?.to_owned())))
                .collect::<Result<_>>()?,
            Some(_) => vec![(
                text(args.first())?.to_owned(),
                text(args.get(1))?.to_owned(),
            )],
            None => return Err(bad("Invalid operations: metric needs a metric")),
        };
        let mut out = Vec::new();
        for (name, agg) in pairs {
            if Method::parse(&agg).is_none() {
                return Err(bad(format!("Invalid aggregation method: {agg}")));
            }
            match self.resources.clone() {
                None => {
                    let m = visible_metric(self.svc, self.ctx, &name, "get measures").await?;
                    let points = read_points(self.svc, &m, &agg, &self.window).await?;
                    self.references
                        .push(super::gnocchi::metric_view(self.svc, &m));
                    out.push(series(vec![m.id, agg], points));
                }
                Some(resources) => {
                    for (r, _) in resources {
                        let mut conn = self.svc.db.pool.acquire().await.map_err(Error::internal)?;
                        let found = store::metrics::by_resource_name(
                            &mut Tx::Any(&mut conn),
                            &self.svc.db,
                            &r.id,
                            &name,
                        )
                        .await?;
                        drop(conn);
                        let Some(m) = found else { continue };
                        let points = read_points(self.svc, &m, &agg, &self.window).await?;
                        out.push(series(
                            vec![r.id.clone(), name.clone(), agg.clone()],
                            points,
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// One series aggregating `series` point by point with `method`
    /// (`rate:X`: X of each series' differences).
    fn aggregate(&self, method: &str, series: &[Series]) -> Result<Series> {
        let method = Method::parse(method)
            .ok_or_else(|| bad(format!("Invalid aggregation method: {method}")))?;
        let inputs: Vec<Series> = if method.rate {
            series.iter().map(differences).collect()
        } else {
            series.to_vec()
        };
        let mut keys: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
        for s in &inputs {
            for (k, v) in &s.points {
                keys.entry(*k).or_default().push(*v);
            }
        }
        let total = inputs.len().max(1) as f64;
        let mut points = BTreeMap::new();
        for (k, mut values) in keys {
            match self.fill {
                Some(Fill::Value(f)) => values.resize(inputs.len(), f),
                Some(Fill::Null) => {}
                None if values.len() as f64 * 100.0 / total < self.needed_overlap => continue,
                None => {}
            }
            if let Some(v) = fold(&values, method.base) {
                points.insert(k, v);
            }
        }
        Ok(Series {
            path: vec!["aggregated".into()],
            points,
        })
    }

    async fn math(&mut self, name: &str, args: &[Value]) -> Result<Val> {
        let unary: Option<fn(f64) -> f64> = match name {
            "abs" | "absolute" => Some(f64::abs),
            "neg" | "negative" => Some(|v: f64| -v),
            "floor" => Some(f64::floor),
            "ceil" => Some(f64::ceil),
            _ => None,
        };
        if let Some(f) = unary {
            let s = self.series_of(args.first()).await?;
            return Ok(Val::Series(s.into_iter().map(|s| map(s, f)).collect()));
        }
        let op: fn(f64, f64) -> f64 = match name {
            "+" | "add" => |a, b| a + b,
            "-" | "sub" => |a, b| a - b,
            "*" | "mul" => |a, b| a * b,
            "/" | "truediv" => |a, b| a / b,
            "**" | "pow" => f64::powf,
            other => {
                return Err(bad(format!(
                    "Invalid operations: unknown operation {other}"
                )))
            }
        };
        let (Some(l), Some(r)) = (args.first(), args.get(1)) else {
            return Err(bad(format!(
                "Invalid operations: {name} takes two operands"
            )));
        };
        let (l, r) = (self.eval(l).await?, self.eval(r).await?);
        Ok(match (l, r) {
            (Val::Num(a), Val::Num(b)) => Val::Num(op(a, b)),
            (Val::Series(s), Val::Num(b)) => {
                Val::Series(s.into_iter().map(|s| map(s, |a| op(a, b))).collect())
            }
            (Val::Num(a), Val::Series(s)) => {
                Val::Series(s.into_iter().map(|s| map(s, |b| op(a, b))).collect())
            }
            (Val::Series(a), Val::Series(b)) => Val::Series(pairwise(a, b, op)?),
        })
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse::<f64>().ok()))
}

fn seconds(s: &str) -> Option<f64> {
    crate::archive::parse_duration(s).map(|n| n as f64)
}

fn text(v: Option<&Value>) -> Result<&str> {
    v.and_then(Value::as_str)
        .ok_or_else(|| bad("Invalid operations: a name is expected"))
}

fn series(path: Vec<String>, points: Vec<(i64, i64, f64)>) -> Series {
    Series {
        path,
        points: points
            .into_iter()
            .map(|(g, ts, v)| (key(g, ts), v))
            .collect(),
    }
}

fn map(mut s: Series, f: impl Fn(f64) -> f64) -> Series {
    for v in s.points.values_mut() {
        *v = f(*v);
    }
    s
}

/// Series against series: matched one to one (or one against each).
fn pairwise(a: Vec<Series>, b: Vec<Series>, op: fn(f64, f64) -> f64) -> Result<Vec<Series>> {
    let pick = |list: &[Series], i: usize| list.get(if list.len() == 1 { 0 } else { i }).cloned();
    let n = a.len().max(b.len());
    if a.len() != b.len() && a.len() != 1 && b.len() != 1 {
        return Err(bad(
            "Invalid operations: the operands have different numbers of series",
        ));
    }
    let mut out = Vec::new();
    for i in 0..n {
        let (Some(x), Some(y)) = (pick(&a, i), pick(&b, i)) else {
            continue;
        };
        let points = x
            .points
            .iter()
            .filter_map(|(k, v)| y.points.get(k).map(|w| (*k, op(*v, *w))))
            .collect();
        out.push(Series {
            path: x.path,
            points,
        });
    }
    Ok(out)
}

/// Differences of consecutive points at each granularity, stamped with
/// the later point (Gnocchi's `rate:*` and `rateofchange`).
fn differences(s: &Series) -> Series {
    let mut points = BTreeMap::new();
    let mut prev: Option<(Key, f64)> = None;
    for (k, v) in &s.points {
        if let Some((pk, pv)) = prev.filter(|(pk, _)| pk.0 == k.0) {
            let _ = pk;
            points.insert(*k, v - pv);
        }
        prev = Some((*k, *v));
    }
    Series {
        path: s.path.clone(),
        points,
    }
}

fn resample(s: &Series, method: Method, g: i64) -> Series {
    let src = if method.rate {
        differences(s)
    } else {
        s.clone()
    };
    let mut buckets: BTreeMap<Key, Acc> = BTreeMap::new();
    for ((_, ts), v) in &src.points {
        let k = key(g, ts.div_euclid(g) * g);
        buckets
            .entry(k)
            .and_modify(|a| a.merge(&Acc::one(*ts, *v)))
            .or_insert_with(|| Acc::one(*ts, *v));
    }
    Series {
        path: s.path.clone(),
        points: buckets
            .into_iter()
            .filter_map(|(k, a)| a.value(method.base).map(|v| (k, v)))
            .collect(),
    }
}

fn fold(values: &[f64], agg: Aggregation) -> Option<f64> {
    let mut it = values.iter().enumerate();
    let (_, first) = it.next()?;
    let mut acc = Acc::one(0, *first);
    for (i, v) in it {
        acc.merge(&Acc::one(i as i64, *v));
    }
    acc.value(agg)
}

/// The nested `measures` object of a list of series.
fn tree(series: &[Series]) -> Value {
    let mut root = Map::new();
    for s in series {
        let points: Vec<Value> = s
            .points
            .iter()
            .map(|((g, ts), v)| json!([store::iso_utc(ts * 1_000_000), (-g) as f64, v]))
            .collect();
        let Some((leaf, parents)) = s.path.split_last() else {
            continue;
        };
        let mut node = &mut root;
        for p in parents {
            node = node
                .entry(p.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("an object");
        }
        node.insert(leaf.clone(), Value::Array(points));
    }
    Value::Object(root)
}

/// `(metric id agg)` / `(metric ((id agg) (id agg)))` as JSON lists.
fn parse_sexpr(s: &str) -> Result<Value> {
    let text = s.replace('(', " ( ").replace(')', " ) ");
    let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
    for tok in text.split_whitespace() {
        match tok {
            "(" => stack.push(Vec::new()),
            ")" => {
                let done = stack
                    .pop()
                    .filter(|_| !stack.is_empty())
                    .ok_or_else(|| bad("Invalid operations"))?;
                stack.last_mut().expect("outer").push(Value::Array(done));
            }
            t => stack.last_mut().expect("frame").push(json!(t)),
        }
    }
    match (stack.len(), stack.pop()) {
        (1, Some(mut top)) if top.len() == 1 => Ok(top.remove(0)),
        _ => Err(bad("Invalid operations")),
    }
}

fn options(params: &[(String, String)]) -> Result<(f64, Option<Fill>, bool)> {
    let overlap = match single(params, "needed_overlap").filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..=100.0).contains(v))
            .ok_or_else(|| bad(format!("Invalid value for needed_overlap: {s}")))?,
        None => 100.0,
    };
    let fill = match single(params, "fill").filter(|s| !s.is_empty()) {
        None => None,
        Some("null") => Some(Fill::Null),
        Some(s) => Some(Fill::Value(s.parse().map_err(|_| {
            bad(format!(
                "Invalid value for fill: {s}: must be a float or 'null'"
            ))
        })?)),
    };
    let details = matches!(single(params, "details"), Some("true" | "True" | "1"));
    Ok((overlap, fill, details))
}

async fn aggregates(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(params): Query,
    Json(body): Json<Value>,
) -> Result<Response> {
    let ops = match &body["operations"] {
        Value::String(s) => parse_sexpr(s)?,
        v @ Value::Array(_) => v.clone(),
        _ => {
            return Err(bad(
                "Invalid input: required key not provided @ data['operations']",
            ))
        }
    };
    let (needed_overlap, fill, details) = options(&params)?;
    let mut eval = Eval {
        svc: &svc,
        ctx: &ctx,
        window: Window::from_params(&params)?,
        resources: None,
        needed_overlap,
        fill,
        references: Vec::new(),
    };
    let Some(search) = body.get("search").filter(|s| !s.is_null()) else {
        let series = eval.series_of(Some(&ops)).await?;
        let mut out = json!({"measures": tree(&series)});
        if details {
            out["references"] = Value::Array(std::mem::take(&mut eval.references));
        }
        return ok(out);
    };
    let filter = super::gnocchi_filter::filter_of(search)?;
    let kind = body["resource_type"].as_str().unwrap_or("generic");
    let found = search_resources(&svc, &ctx, kind, &filter).await?;
    let groupby: Vec<String> = params
        .iter()
        .filter(|(k, v)| k == "groupby" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    if groupby.is_empty() {
        let refs: Vec<Value> = found.iter().map(|(_, doc)| doc.clone()).collect();
        eval.resources = Some(found);
        let series = eval.series_of(Some(&ops)).await?;
        return ok(json!({"measures": tree(&series), "references": refs}));
    }
    ok(Value::Array(
        grouped(&mut eval, &ops, &groupby, found).await?,
    ))
}

/// One group's attribute values and its resources.
type Group = (Map<String, Value>, Vec<(Resource, Value)>);

/// `groupby`: the operations over each group of the resources found.
async fn grouped(
    eval: &mut Eval<'_>,
    ops: &Value,
    groupby: &[String],
    found: Vec<(Resource, Value)>,
) -> Result<Vec<Value>> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (r, doc) in found {
        let group: Map<String, Value> = groupby
            .iter()
            .map(|g| (g.clone(), doc[g.as_str()].clone()))
            .collect();
        let k = Value::Object(group.clone()).to_string();
        groups
            .entry(k)
            .or_insert_with(|| (group, Vec::new()))
            .1
            .push((r, doc));
    }
    let mut out = Vec::new();
    for (_, (group, members)) in groups {
        let refs: Vec<Value> = members.iter().map(|(_, d)| d.clone()).collect();
        eval.resources = Some(members);
        let series = eval.series_of(Some(ops)).await?;
        out.push(
            json!({"group": group, "measures": {"measures": tree(&series), "references": refs}}),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(points: &[(i64, f64)]) -> Series {
        Series {
            path: vec!["m".into(), "mean".into()],
            points: points.iter().map(|(t, v)| (key(60, *t), *v)).collect(),
        }
    }

    #[test]
    fn operations_parse_and_series_combine() {
        assert_eq!(
            parse_sexpr("(aggregate mean (metric cpu rate:mean))").unwrap(),
            json!(["aggregate", "mean", ["metric", "cpu", "rate:mean"]])
        );
        assert!(parse_sexpr("(metric a mean").is_err());
        let d = differences(&s(&[(0, 1.0), (60, 4.0), (120, 9.0)]));
        assert_eq!(
            d.points.values().copied().collect::<Vec<_>>(),
            vec![3.0, 5.0]
        );
        let r = resample(
            &s(&[(0, 1.0), (60, 3.0), (120, 5.0)]),
            Method::plain(Aggregation::Sum),
            120,
        );
        assert_eq!(
            r.points.values().copied().collect::<Vec<_>>(),
            vec![4.0, 5.0]
        );
        let sum = pairwise(vec![s(&[(0, 1.0)])], vec![s(&[(0, 2.0)])], |a, b| a + b).unwrap();
        assert_eq!(sum[0].points[&key(60, 0)], 3.0);
        assert_eq!(fold(&[1.0, 2.0, 6.0], Aggregation::Mean), Some(3.0));
        let t = tree(&[s(&[(0, 1.0)])]);
        assert_eq!(t["m"]["mean"][0][1], json!(60.0));
    }
}
