//! `/os-security-groups` and `/os-security-group-rules`: the v2.1 proxy to
//! the networking API (deprecated in Nova at 2.36, still part of 2.1),
//! made with the caller's token so Neutron's ownership rules apply, with
//! Nova's validation and shapes (ingress rules only).

use super::body::IntOrString;
use super::{query_get, Query, Svc};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

async fn neutron(
    svc: &Svc,
    ctx: &AuthContext,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = svc
        .network
        .client
        .http()
        .request(method, format!("{}/v2.0{path}", svc.network.base))
        .header("x-auth-token", &ctx.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("network service unreachable: {e}")))?;
    let st = resp.status().as_u16();
    Ok((st, resp.json().await.unwrap_or(Value::Null)))
}

fn neutron_message(v: &Value) -> String {
    v["NeutronError"]["message"]
        .as_str()
        .unwrap_or("The network service refused the request.")
        .to_owned()
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Security group {id} not found."))
}

fn rule_view(r: &Value, groups: &[Value]) -> Value {
    let group = match r["remote_group_id"].as_str() {
        Some(gid) => {
            let g = groups.iter().find(|g| g["id"] == gid);
            json!({"name": g.map(|g| g["name"].clone()).unwrap_or(json!("")),
                   "tenant_id": g.map(|g| g["project_id"].clone()).unwrap_or(json!(""))})
        }
        None => json!({}),
    };
    let ip_range = if r["remote_group_id"].is_string() {
        json!({})
    } else {
        json!({"cidr": r["remote_ip_prefix"].as_str().unwrap_or("0.0.0.0/0")})
    };
    json!({
        "id": r["id"], "parent_group_id": r["security_group_id"],
        "ip_protocol": r["protocol"],
        "from_port": r["port_range_min"].as_i64().unwrap_or(-1),
        "to_port": r["port_range_max"].as_i64().unwrap_or(-1),
        "ip_range": ip_range, "group": group,
    })
}

fn group_view(g: &Value, groups: &[Value]) -> Value {
    let rules: Vec<Value> = g["security_group_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["direction"] == "ingress")
        .map(|r| rule_view(r, groups))
        .collect();
    json!({"id": g["id"], "name": g["name"], "description": g["description"].as_str().unwrap_or(""),
           "tenant_id": g["project_id"], "rules": rules})
}

async fn all_groups(svc: &Svc, ctx: &AuthContext, project: Option<&str>) -> Result<Vec<Value>> {
    let path = match project {
        Some(p) => format!("/security-groups?project_id={p}"),
        None => "/security-groups".to_owned(),
    };
    let (_, v) = neutron(svc, ctx, reqwest::Method::GET, &path, None).await?;
    Ok(v["security_groups"].as_array().cloned().unwrap_or_default())
}

async fn get_group(svc: &Svc, ctx: &AuthContext, id: &str) -> Result<Value> {
    match neutron(
        svc,
        ctx,
        reqwest::Method::GET,
        &format!("/security-groups/{id}"),
        None,
    )
    .await?
    {
        (200, v) => Ok(v["security_group"].clone()),
        _ => Err(not_found(id)),
    }
}

pub async fn list(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-security-groups:get")?;
    let all = svc.is_admin(&ctx) && query_get(&q.0, "all_tenants").is_some();
    let project = ctx.project_id.clone().unwrap_or_default();
    let groups = all_groups(&svc, &ctx, if all { None } else { Some(&project) }).await?;
    let list: Vec<Value> = groups.iter().map(|g| group_view(g, &groups)).collect();
    Ok(axum::Json(json!({"security_groups": list})).into_response())
}

pub async fn show(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-security-groups:show")?;
    let g = get_group(&svc, &ctx, &id).await?;
    let groups = all_groups(&svc, &ctx, None).await?;
    Ok(axum::Json(json!({"security_group": group_view(&g, &groups)})).into_response())
}

/// `POST /os-security-groups` and `PUT /os-security-groups/{id}`.
#[derive(Deserialize, JsonSchema)]
pub struct SecurityGroupBody {
    security_group: SecurityGroupFields,
}

#[derive(Deserialize, JsonSchema)]
struct SecurityGroupFields {
    #[schemars(length(min = 1, max = 255), regex(pattern = r"\S"))]
    name: String,
    #[schemars(length(max = 255))]
    description: String,
}

impl SecurityGroupBody {
    /// The name (not blank) and description, each at most 255 characters.
    fn checked(self) -> Result<(String, String)> {
        let SecurityGroupFields { name, description } = self.security_group;
        for (k, v) in [("name", &name), ("description", &description)] {
            if v.len() > 255 {
                return Err(Error::BadRequest(format!(
                    "Security group {k} must be a string of at most 255 characters."
                )));
            }
        }
        if name.trim().is_empty() {
            return Err(Error::BadRequest(
                "Security group name should not be empty.".into(),
            ));
        }
        Ok((name, description))
    }
}

pub async fn create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<SecurityGroupBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-security-groups:create")?;
    let (name, description) = body.checked()?;
    if name == "default" {
        return Err(Error::BadRequest(
            "Security group name 'default' is reserved.".into(),
        ));
    }
    match neutron(
        &svc,
        &ctx,
        reqwest::Method::POST,
        "/security-groups",
        Some(json!({"security_group": {"name": name, "description": description}})),
    )
    .await?
    {
        (201, v) => Ok(axum::Json(
            json!({"security_group": group_view(&v["security_group"], &[])}),
        )
        .into_response()),
        (409, v) | (403, v) => Err(Error::Forbidden(neutron_message(&v))),
        (_, v) => Err(Error::BadRequest(neutron_message(&v))),
    }
}

pub async fn update(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<SecurityGroupBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-security-groups:update")?;
    let (name, description) = body.checked()?;
    get_group(&svc, &ctx, &id).await?;
    match neutron(
        &svc,
        &ctx,
        reqwest::Method::PUT,
        &format!("/security-groups/{id}"),
        Some(json!({"security_group": {"name": name, "description": description}})),
    )
    .await?
    {
        (200, v) => Ok(axum::Json(
            json!({"security_group": group_view(&v["security_group"], &[])}),
        )
        .into_response()),
        (404, _) => Err(not_found(&id)),
        (_, v) => Err(Error::BadRequest(neutron_message(&v))),
    }
}

pub async fn delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-security-groups:delete")?;
    let g = get_group(&svc, &ctx, &id).await?;
    if g["name"] == "default" {
        return Err(Error::BadRequest(
            "Removing default security group not allowed.".into(),
        ));
    }
    match neutron(
        &svc,
        &ctx,
        reqwest::Method::DELETE,
        &format!("/security-groups/{id}"),
        None,
    )
    .await?
    {
        (204, _) | (200, _) => Ok(StatusCode::ACCEPTED.into_response()),
        (404, _) => Err(not_found(&id)),
        (_, v) => Err(Error::BadRequest(neutron_message(&v))),
    }
}

fn port(v: Option<&IntOrString>, field: &str) -> Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(IntOrString::Int(n)) => Ok(Some(*n)),
        Some(IntOrString::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("Invalid {field}: {s}."))),
    }
}

/// `POST /os-security-group-rules`.
#[derive(Deserialize, JsonSchema)]
pub struct CreateRuleBody {
    security_group_rule: CreateRule,
}

#[derive(Deserialize, JsonSchema)]
struct CreateRule {
    parent_group_id: Option<IntOrString>,
    #[serde(default)]
    ip_protocol: Option<String>,
    #[serde(default)]
    from_port: Option<IntOrString>,
    #[serde(default)]
    to_port: Option<IntOrString>,
    #[serde(default)]
    group_id: Option<IntOrString>,
    #[serde(default)]
    cidr: Option<String>,
}

/// Check a CIDR (`10.2.3.124/24` is accepted, shown as given); returns its network.
fn normalize_cidr(cidr: &str) -> Result<String> {
    let bad = || Error::BadRequest(format!("Invalid CIDR {cidr}."));
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let len: u32 = len.parse().map_err(|_| bad())?;
    match addr.parse::<std::net::IpAddr>().map_err(|_| bad())? {
        std::net::IpAddr::V4(a) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Ok(format!(
                "{}/{len}",
                std::net::Ipv4Addr::from(u32::from(a) & mask)
            ))
        }
        std::net::IpAddr::V6(a) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Ok(format!(
                "{}/{len}",
                std::net::Ipv6Addr::from(u128::from(a) & mask)
            ))
        }
        _ => Err(bad()),
    }
}

pub async fn rule_create(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<CreateRuleBody>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-security-groups:rule:create")?;
    let r = body.security_group_rule;
    let parent = r
        .parent_group_id
        .as_ref()
        .map(IntOrString::text)
        .ok_or_else(|| Error::BadRequest("Missing parent_group_id.".into()))?;
    let protocol = r.ip_protocol.as_deref().map(str::to_ascii_lowercase);
    if let Some(p) = &protocol {
        if !["tcp", "udp", "icmp"].contains(&p.as_str()) {
            return Err(Error::BadRequest(format!("Invalid IP protocol {p}.")));
        }
    }
    let (from, to) = (
        port(r.from_port.as_ref(), "from_port")?,
        port(r.to_port.as_ref(), "to_port")?,
    );
    let (min, max) = match protocol.as_deref() {
        Some("icmp") => {
            let ok = |p: Option<i64>| p.is_none_or(|p| (-1..=255).contains(&p));
            if !ok(from) || !ok(to) {
                return Err(Error::BadRequest(
                    "Type and Code must be integers for ICMP protocol type".into(),
                ));
            }
            (from.filter(|p| *p >= 0), to.filter(|p| *p >= 0))
        }
        Some(_) => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(Error::BadRequest(
                    "Invalid port range: from_port and to_port are required.".into(),
                ));
            };
            if !(1..=65535).contains(&f) || !(1..=65535).contains(&t) || f > t {
                return Err(Error::BadRequest(format!("Invalid port range {f}:{t}.")));
            }
            (Some(f), Some(t))
        }
        None => (None, None),
    };
    if uuid::Uuid::parse_str(&parent).is_err() {
        return Err(Error::BadRequest(format!(
            "Invalid parent_group_id {parent}."
        )));
    }
    get_group(&svc, &ctx, &parent).await?;
    let mut nr = json!({"security_group_id": parent, "direction": "ingress", "ethertype": "IPv4",
        "protocol": protocol, "port_range_min": min, "port_range_max": max});
    match r.group_id.as_ref().map(IntOrString::text) {
        Some(g) => {
            get_group(&svc, &ctx, &g).await?;
            nr["remote_group_id"] = json!(g);
        }
        None => {
            let cidr = r.cidr.as_deref().unwrap_or("0.0.0.0/0");
            normalize_cidr(cidr)?;
            nr["remote_ip_prefix"] = json!(cidr);
        }
    }
    match neutron(
        &svc,
        &ctx,
        reqwest::Method::POST,
        "/security-group-rules",
        Some(json!({"security_group_rule": nr})),
    )
    .await?
    {
        (201, v) => {
            let groups = all_groups(&svc, &ctx, None).await?;
            Ok(axum::Json(
                json!({"security_group_rule": rule_view(&v["security_group_rule"], &groups)}),
            )
            .into_response())
        }
        (409, _) => Err(Error::BadRequest(
            "This rule already exists in group".into(),
        )),
        (404, _) => Err(not_found(&parent)),
        (_, v) => Err(Error::BadRequest(neutron_message(&v))),
    }
}

pub async fn rule_delete(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.authorize(&ctx, "os_compute_api:os-security-groups:rule:delete")?;
    match neutron(
        &svc,
        &ctx,
        reqwest::Method::DELETE,
        &format!("/security-group-rules/{id}"),
        None,
    )
    .await?
    {
        (204, _) | (200, _) => Ok(StatusCode::ACCEPTED.into_response()),
        _ => Err(Error::NotFound(format!(
            "Security group rule {id} not found."
        ))),
    }
}

/// `GET /servers/{id}/os-security-groups`: the groups of the server's project it uses.
pub async fn of_server(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let i = svc
        .authorized_instance(&ctx, &id, "os_compute_api:os-security-groups:list")
        .await?;
    let groups = all_groups(&svc, &ctx, Some(&i.project_id)).await?;
    let list: Vec<Value> = groups
        .iter()
        .filter(|g| {
            i.security_groups
                .iter()
                .any(|n| g["name"] == n.as_str() || g["id"] == n.as_str())
        })
        .map(|g| group_view(g, &groups))
        .collect();
    Ok(axum::Json(json!({"security_groups": list})).into_response())
}
