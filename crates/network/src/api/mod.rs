//! Neutron v2.0 HTTP API: discovery, extensions, and every resource through
//! one set of generic handlers (list with filters / fields / sorting /
//! pagination, show, create incl. bulk, update, delete), plus the router,
//! agent, quota and tag actions.

mod list;
mod listing;
mod requests;
mod schemas;

use crate::service::{not_found, NetworkService};
use crate::store::Kind;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_core::auth::{auth_layer, AuthContext, Authenticated, SharedValidator};
use ferrostack_core::http::{not_found_fallback, service_layer, Json, ServiceLayer};
use ferrostack_core::openapi::{delete, get, post, put, ApiInfo, ApiRouter};
use ferrostack_core::{Error, ErrorStyle, Result};
use requests::{
    AddNetworkToAgentRequest, AddRouterToAgentRequest, HostedResource, QuotaUpdateRequest,
    RouterInterfaceRequest, TagsRequest,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub type Svc = Arc<NetworkService>;
pub type Query = axum::extract::Query<Vec<(String, String)>>;

/// (collection path, singular key, plural key, kind)
const RESOURCES: &[(&str, &str, &str, Kind)] = &[
    ("networks", "network", "networks", Kind::Network),
    ("subnets", "subnet", "subnets", Kind::Subnet),
    ("ports", "port", "ports", Kind::Port),
    ("routers", "router", "routers", Kind::Router),
    ("floatingips", "floatingip", "floatingips", Kind::FloatingIp),
    (
        "security-groups",
        "security_group",
        "security_groups",
        Kind::SecurityGroup,
    ),
    (
        "security-group-rules",
        "security_group_rule",
        "security_group_rules",
        Kind::SecurityGroupRule,
    ),
    ("agents", "agent", "agents", Kind::Agent),
];

/// Extensions this deployment really implements (alias, name, description).
pub const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("agent", "agent", "The agent management extension."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)"),
    ("l3-ha", "HA Router extension", "Adds HA capability to routers."),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    ("network-ip-availability", "Network IP Availability", "Provides IP availability data for each network and subnet."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."),
    ("security-group", "security-group", "The security groups extension."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
    ("service-type", "Neutron Service Type Management", "API for retrieving service providers for Neutron advanced services"),
    ("tag", "Tag support", "Enables to set tag on resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"),
];

/// What the OpenAPI document says about this API.
pub fn info() -> ApiInfo {
    ApiInfo {
        title: "Ferrostack Networking",
        version: "2.0",
        description: "Neutron v2.0-compatible networking API: networks, subnets, ports, \
                      routers, floating IPs, security groups, agents, quotas, tags.",
        errors: ErrorStyle::Neutron,
    }
}

/// The served API: every route, documented, plus `GET /openapi.json`; the
/// fallback, body limit, token validation and service layer around it.
pub fn router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    let limit = svc.config.network.max_request_body_size;
    routes()
        .into_router(&info())
        .fallback(not_found_fallback)
        .with_state(svc)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            ferrostack_core::auth::AuthLayer {
                validator,
                service_type: "network",
            },
            auth_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ServiceLayer::new("network", ErrorStyle::Neutron, auth_uri),
            service_layer,
        ))
}

/// Every operation of the API, without state: what [`router`] serves and
/// what the OpenAPI document describes.
pub fn routes() -> ApiRouter<Svc> {
    let mut r = ApiRouter::new()
        .route("/", get(versions))
        .route("/v2.0", get(resources))
        .route("/v2.0/", get(resources))
        .route("/v2.0/extensions", get(extensions))
        .route("/v2.0/extensions/{alias}", get(extension))
        .route(
            "/v2.0/routers/{id}/add_router_interface",
            put(add_interface),
        )
        .route(
            "/v2.0/routers/{id}/remove_router_interface",
            put(remove_interface),
        )
        .route("/v2.0/quotas", get(list_quotas))
        .route(
            "/v2.0/quotas/{project}",
            get(show_quota).put(update_quota).delete(reset_quota),
        )
        .route("/v2.0/quotas/{project}/default", get(default_quota))
        .route("/v2.0/quotas/{project}/details", get(quota_details))
        .route("/v2.0/quotas/{project}/details.json", get(quota_details))
        .route("/v2.0/service-providers", get(service_providers))
        .route("/v2.0/network-ip-availabilities", get(ip_availabilities))
        .route("/v2.0/network-ip-availabilities/{id}", get(ip_availability));
    for (path, _, _, kind) in RESOURCES {
        r = resource_routes(r, path, *kind);
    }
    agent_scheduling_routes(r)
}

/// One resource kind's collection and member operations, and its tags.
fn resource_routes(r: ApiRouter<Svc>, path: &str, k: Kind) -> ApiRouter<Svc> {
    let (singular, plural) = keys(k);
    // Create and update bodies are free-form JSON: their attributes differ
    // per kind and are validated by the service; the document states them
    // from the same attribute tables (see `schemas`).
    let r = r
        .route(
            &format!("/v2.0/{path}"),
            get(move |s: State<Svc>, a: Authenticated, q: Query| list::list(k, s, a, q))
                .post(move |s: State<Svc>, a: Authenticated, b: Json<Value>| create(k, s, a, b))
                .body(Method::POST, schemas::create_body(k, singular, plural)),
        )
        .route(
            &format!("/v2.0/{path}/{{id}}"),
            get(
                move |s: State<Svc>, a: Authenticated, p: Path<String>, q: Query| {
                    show(k, s, a, p, q)
                },
            )
            .put(
                move |s: State<Svc>, a: Authenticated, p: Path<String>, b: Json<Value>| {
                    update(k, s, a, p, b)
                },
            )
            .delete(move |s: State<Svc>, a: Authenticated, p: Path<String>| {
                delete_resource(k, s, a, p)
            })
            .body(Method::PUT, schemas::update_body(k, singular)),
        );
    if matches!(k, Kind::Agent | Kind::SecurityGroupRule) {
        return r;
    }
    r.route(
        &format!("/v2.0/{path}/{{id}}/tags"),
        get(move |s: State<Svc>, a: Authenticated, p: Path<String>| tags_list(k, s, a, p))
            .put(
                move |s: State<Svc>, a: Authenticated, p: Path<String>, b: Json<TagsRequest>| {
                    tags_replace(k, s, a, p, b)
                },
            )
            .delete(move |s: State<Svc>, a: Authenticated, p: Path<String>| tags_clear(k, s, a, p)),
    )
    .route(
        &format!("/v2.0/{path}/{{id}}/tags/{{tag}}"),
        get(
            move |s: State<Svc>, a: Authenticated, p: Path<(String, String)>| tag_check(k, s, a, p),
        )
        .put(move |s: State<Svc>, a: Authenticated, p: Path<(String, String)>| tag_add(k, s, a, p))
        .delete(
            move |s: State<Svc>, a: Authenticated, p: Path<(String, String)>| {
                tag_remove(k, s, a, p)
            },
        ),
    )
}

/// L3 agents host routers, DHCP agents host networks: one set of handlers.
fn agent_scheduling_routes(mut r: ApiRouter<Svc>) -> ApiRouter<Svc> {
    for (hosted, agents_path, hosted_path) in [
        (Kind::Router, "routers/{id}/l3-agents", "l3-routers"),
        (Kind::Network, "networks/{id}/dhcp-agents", "dhcp-networks"),
    ] {
        let add = match hosted {
            Kind::Router => post(
                |s: State<Svc>,
                 a: Authenticated,
                 p: Path<String>,
                 b: Json<AddRouterToAgentRequest>| {
                    agent_add(Kind::Router, s, a, p, b)
                },
            ),
            _ => post(
                |s: State<Svc>,
                 a: Authenticated,
                 p: Path<String>,
                 b: Json<AddNetworkToAgentRequest>| {
                    agent_add(Kind::Network, s, a, p, b)
                },
            ),
        };
        r = r
            .route(
                &format!("/v2.0/{agents_path}"),
                get(move |s: State<Svc>, a: Authenticated, p: Path<String>| {
                    hosting_agents(hosted, s, a, p)
                }),
            )
            .route(
                &format!("/v2.0/agents/{{id}}/{hosted_path}"),
                add.get(move |s: State<Svc>, a: Authenticated, p: Path<String>| {
                    agent_hosted(hosted, s, a, p)
                }),
            )
            .route(
                &format!("/v2.0/agents/{{id}}/{hosted_path}/{{hosted_id}}"),
                delete(
                    move |s: State<Svc>, a: Authenticated, p: Path<(String, String)>| {
                        agent_remove(hosted, s, a, p)
                    },
                ),
            );
    }
    r
}

fn keys(kind: Kind) -> (&'static str, &'static str) {
    RESOURCES
        .iter()
        .find(|(_, _, _, k)| *k == kind)
        .map(|(_, s, p, _)| (*s, *p))
        .expect("known kind")
}

async fn versions(State(svc): State<Svc>) -> Response {
    let base = svc.config.public_url(svc.config.network.port);
    axum::Json(json!({"versions": [{"id": "v2.0", "status": "CURRENT",
        "links": [{"href": format!("{base}/v2.0/"), "rel": "self"}]}]}))
    .into_response()
}

async fn resources(State(svc): State<Svc>) -> Response {
    let base = svc.config.public_url(svc.config.network.port);
    let rs: Vec<Value> = RESOURCES
        .iter()
        .map(|(path, s, p, _)| json!({"name": s, "collection": p, "links": [{"href": format!("{base}/v2.0/{path}"), "rel": "self"}]}))
        .collect();
    axum::Json(json!({"resources": rs})).into_response()
}

fn extension_view(e: &(&str, &str, &str)) -> Value {
    json!({"alias": e.0, "name": e.1, "description": e.2, "updated": "2026-01-01T00:00:00-00:00", "links": []})
}

async fn extensions(Authenticated(_): Authenticated) -> Response {
    axum::Json(json!({"extensions": EXTENSIONS.iter().map(extension_view).collect::<Vec<_>>()}))
        .into_response()
}

async fn extension(Authenticated(_): Authenticated, Path(alias): Path<String>) -> Result<Response> {
    let e = EXTENSIONS
        .iter()
        .find(|e| e.0 == alias)
        .ok_or_else(|| Error::NotFound(format!("Extension with alias {alias} does not exist")))?;
    Ok(axum::Json(json!({"extension": extension_view(e)})).into_response())
}

// ----- generic resource handlers -----

async fn show(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    if kind == Kind::Agent {
        svc.enforce(&ctx, "get_agent", &json!({}))?;
    }
    let doc = if kind == Kind::Agent {
        svc.get_doc(kind, &id).await?
    } else {
        svc.get_visible(&ctx, kind, &id).await?
    };
    let view = svc.view(&ctx, kind, doc).await?;
    let (singular, _) = keys(kind);
    Ok(axum::Json(json!({ singular: listing::select_fields(view, &q.0) })).into_response())
}

async fn create_one(
    svc: &Svc,
    ctx: &AuthContext,
    kind: Kind,
    body: &Map<String, Value>,
) -> Result<Value> {
    match kind {
        Kind::Network => svc.create_network(ctx, body).await,
        Kind::Subnet => svc.create_subnet(ctx, body).await,
        Kind::Port => svc.create_port(ctx, body).await,
        Kind::Router => svc.create_router(ctx, body).await,
        Kind::FloatingIp => svc.create_floatingip(ctx, body).await,
        Kind::SecurityGroup => svc.create_security_group(ctx, body).await,
        Kind::SecurityGroupRule => svc.create_security_group_rule(ctx, body).await,
        Kind::Agent | Kind::Quota => Err(Error::MethodNotAllowed(
            "Agents register themselves over the message bus.".into(),
        )),
    }
}

async fn delete_one(svc: &Svc, ctx: &AuthContext, kind: Kind, id: &str) -> Result<()> {
    match kind {
        Kind::Network => svc.delete_network(ctx, id).await,
        Kind::Subnet => svc.delete_subnet(ctx, id).await,
        Kind::Port => svc.delete_port(ctx, id).await,
        Kind::Router => svc.delete_router(ctx, id).await,
        Kind::FloatingIp => svc.delete_floatingip(ctx, id).await,
        Kind::SecurityGroup => svc.delete_security_group(ctx, id).await,
        Kind::SecurityGroupRule => svc.delete_security_group_rule(ctx, id).await,
        Kind::Agent => svc.delete_agent(ctx, id).await,
        Kind::Quota => Err(not_found(kind, id)),
    }
}

/// `{"network": {…}}`, or bulk `{"networks": [{…}, …]}` (all or nothing).
async fn create(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    // Free-form: any kind's attributes, single or bulk; the service validates them.
    Json(body): Json<Value>,
) -> Result<Response> {
    let (singular, plural) = keys(kind);
    if let Some(items) = body.get(plural) {
        let items = items.as_array().ok_or_else(|| {
            Error::BadRequest(format!("Invalid input: '{plural}' must be a list."))
        })?;
        let mut made = Vec::new();
        for item in items {
            let obj = item
                .get(singular)
                .unwrap_or(item)
                .as_object()
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Invalid input: each of '{plural}' must be an object."
                    ))
                })?;
            match create_one(&svc, &ctx, kind, obj).await {
                Ok(d) => made.push(d),
                Err(e) => {
                    for d in made.iter().rev() {
                        let _ = delete_one(&svc, &ctx, kind, d["id"].as_str().unwrap_or_default())
                            .await;
                    }
                    return Err(e);
                }
            }
        }
        let mut views = Vec::new();
        for d in made {
            views.push(svc.view(&ctx, kind, d).await?);
        }
        return Ok((StatusCode::CREATED, axum::Json(json!({ plural: views }))).into_response());
    }
    let obj = body
        .get(singular)
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Error::BadRequest(format!("Resource body required: '{singular}' is missing."))
        })?;
    let doc = create_one(&svc, &ctx, kind, obj).await?;
    let view = svc.view(&ctx, kind, doc).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ singular: view }))).into_response())
}

async fn update(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    // Free-form: any kind's attributes; the service validates them.
    Json(body): Json<Value>,
) -> Result<Response> {
    let (singular, _) = keys(kind);
    let obj = body
        .get(singular)
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Error::BadRequest(format!("Resource body required: '{singular}' is missing."))
        })?;
    if obj.contains_key("id") && obj["id"] != id.as_str() {
        return Err(Error::BadRequest(
            "Cannot update read-only attribute id".into(),
        ));
    }
    let doc = svc.update_resource(&ctx, kind, &id, obj).await?;
    let view = svc.view(&ctx, kind, doc).await?;
    Ok(axum::Json(json!({ singular: view })).into_response())
}

async fn delete_resource(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    delete_one(&svc, &ctx, kind, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- router interfaces -----

async fn add_interface(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<RouterInterfaceRequest>,
) -> Result<Response> {
    let (subnet, port) = (body.subnet_id.as_deref(), body.port_id.as_deref());
    Ok(axum::Json(svc.add_router_interface(&ctx, &id, subnet, port).await?).into_response())
}

async fn remove_interface(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<RouterInterfaceRequest>,
) -> Result<Response> {
    let (subnet, port) = (body.subnet_id.as_deref(), body.port_id.as_deref());
    Ok(axum::Json(svc.remove_router_interface(&ctx, &id, subnet, port).await?).into_response())
}

// ----- agent scheduling -----

async fn views(svc: &Svc, ctx: &AuthContext, kind: Kind, docs: Vec<Value>) -> Result<Vec<Value>> {
    let related = svc.related(kind, &docs).await?;
    Ok(docs
        .into_iter()
        .map(|d| svc.view_with(ctx, kind, d, &related))
        .collect())
}

/// `GET /routers/{id}/l3-agents`, `GET /networks/{id}/dhcp-agents`.
async fn hosting_agents(
    hosted: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let rule = match hosted {
        Kind::Router => "get_l3-agents",
        _ => "get_dhcp-agents",
    };
    svc.enforce(&ctx, rule, &json!({}))?;
    let agents = svc.agents_hosting(hosted, &id).await?;
    Ok(
        axum::Json(json!({"agents": views(&svc, &ctx, Kind::Agent, agents).await?}))
            .into_response(),
    )
}

/// `GET /agents/{id}/l3-routers`, `GET /agents/{id}/dhcp-networks`.
async fn agent_hosted(
    hosted: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let rule = match hosted {
        Kind::Router => "get_l3-routers",
        _ => "get_dhcp-networks",
    };
    svc.enforce(&ctx, rule, &json!({}))?;
    svc.get_doc(Kind::Agent, &id).await?;
    let docs = svc.hosted_by(&id, hosted).await?;
    let (_, plural) = keys(hosted);
    Ok(axum::Json(json!({ plural: views(&svc, &ctx, hosted, docs).await? })).into_response())
}

async fn agent_add<B: HostedResource>(
    hosted: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<B>,
) -> Result<Response> {
    svc.schedule(&ctx, &id, hosted, body.hosted_id(), true)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(json!(null))).into_response())
}

async fn agent_remove(
    hosted: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, hosted_id)): Path<(String, String)>,
) -> Result<Response> {
    svc.schedule(&ctx, &id, hosted, &hosted_id, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- quotas -----

/// Neutron's quota API: a project always reads its own quotas; another
/// project's need `get_quota`.
fn quota_readable(svc: &Svc, ctx: &AuthContext, project: &str) -> Result<()> {
    if ctx.project_id.as_deref() == Some(project) {
        return Ok(());
    }
    svc.enforce(ctx, "get_quota", &json!({"project_id": project}))
}

async fn list_quotas(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    svc.enforce(&ctx, "get_quota", &json!({"project_id": ctx.project_id}))?;
    let mut out = Vec::new();
    for d in crate::store::list(&svc.db, Kind::Quota).await? {
        let p = d["id"].as_str().unwrap_or_default().to_owned();
        let mut q = svc.quota(&p).await?;
        q["project_id"] = json!(p);
        q["tenant_id"] = json!(p);
        out.push(q);
    }
    Ok(axum::Json(json!({"quotas": out})).into_response())
}

async fn show_quota(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(project): Path<String>,
) -> Result<Response> {
    quota_readable(&svc, &ctx, &project)?;
    Ok(axum::Json(json!({"quota": svc.quota(&project).await?})).into_response())
}

async fn default_quota(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(project): Path<String>,
) -> Result<Response> {
    quota_readable(&svc, &ctx, &project)?;
    let mut q = svc.default_quota();
    q["project_id"] = json!(project);
    q["tenant_id"] = json!(project);
    Ok(axum::Json(json!({"quota": q})).into_response())
}

async fn quota_details(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(project): Path<String>,
) -> Result<Response> {
    quota_readable(&svc, &ctx, &project)?;
    Ok(axum::Json(json!({"quota": svc.quota_details(&project).await?})).into_response())
}

async fn update_quota(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(project): Path<String>,
    Json(body): Json<QuotaUpdateRequest>,
) -> Result<Response> {
    let quota = svc.set_quota(&ctx, &project, &body.quota).await?;
    Ok(axum::Json(json!({ "quota": quota })).into_response())
}

async fn reset_quota(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(project): Path<String>,
) -> Result<Response> {
    svc.reset_quota(&ctx, &project).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// No advanced services (LBaaS, VPNaaS, …) are offered.
async fn service_providers(Authenticated(_): Authenticated) -> Response {
    axum::Json(json!({"service_providers": []})).into_response()
}

// ----- IP availability -----

async fn availability_of(svc: &Svc, net: &Value) -> Result<Value> {
    let id = net["id"].as_str().unwrap_or_default();
    let used = crate::store::used_ips(&svc.db, id).await?;
    let mut subnets = Vec::new();
    let (mut total, mut used_total) = (0u128, 0u128);
    for s in crate::store::list(&svc.db, Kind::Subnet)
        .await?
        .into_iter()
        .filter(|s| s["network_id"] == id)
    {
        let t: u128 = crate::service::subnet_pools(&s)
            .iter()
            .fold(0u128, |acc, (a, b)| {
                acc.saturating_add(b - a).saturating_add(1)
            });
        let u = used
            .iter()
            .filter(|(_, sid, _)| s["id"] == sid.as_str())
            .count() as u128;
        total = total.saturating_add(t);
        used_total += u;
        subnets.push(json!({"subnet_id": s["id"], "subnet_name": s["name"], "cidr": s["cidr"], "ip_version": s["ip_version"],
                            "total_ips": t.min(u64::MAX as u128) as u64, "used_ips": u as u64}));
    }
    Ok(
        json!({"network_id": id, "network_name": net["name"], "tenant_id": net["project_id"], "project_id": net["project_id"],
              "total_ips": total.min(u64::MAX as u128) as u64, "used_ips": used_total as u64, "subnet_ip_availability": subnets}),
    )
}

async fn ip_availabilities(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    svc.enforce(&ctx, "get_network_ip_availability", &json!({}))?;
    let mut out = Vec::new();
    for n in crate::store::list(&svc.db, Kind::Network).await? {
        out.push(availability_of(&svc, &n).await?);
    }
    let base = format!(
        "{}/v2.0/network-ip-availabilities",
        svc.config.public_url(svc.config.network.port)
    );
    listing::respond("network_ip_availabilities", out, &q.0, &base)
}

async fn ip_availability(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    svc.enforce(&ctx, "get_network_ip_availability", &json!({}))?;
    let n = svc.get_doc(Kind::Network, &id).await?;
    Ok(
        axum::Json(json!({"network_ip_availability": availability_of(&svc, &n).await?}))
            .into_response(),
    )
}

// ----- tags -----

async fn tagged(svc: &Svc, ctx: &AuthContext, kind: Kind, id: &str) -> Result<Value> {
    svc.get_for_update(ctx, kind, id, &Map::new()).await
}

async fn save_tags(svc: &Svc, kind: Kind, mut doc: Value, tags: Vec<String>) -> Result<Value> {
    for t in &tags {
        if t.is_empty() || t.chars().count() > 255 || t.contains(',') {
            return Err(Error::BadRequest(format!(
                "Invalid input for tags. Reason: '{t}' is not a valid tag."
            )));
        }
    }
    let mut tags = tags;
    tags.sort();
    tags.dedup();
    doc["tags"] = json!(tags);
    crate::service::touch_doc(&mut doc);
    let mut tx = crate::store::Tx::begin(&svc.db);
    tx.update(kind, &doc);
    tx.commit().await?;
    Ok(doc)
}

fn tag_list(doc: &Value) -> Vec<String> {
    doc["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn tags_list(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let doc = svc.get_visible(&ctx, kind, &id).await?;
    Ok(axum::Json(json!({"tags": tag_list(&doc)})).into_response())
}

async fn tags_replace(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<TagsRequest>,
) -> Result<Response> {
    let doc = tagged(&svc, &ctx, kind, &id).await?;
    let doc = save_tags(&svc, kind, doc, body.tags).await?;
    Ok(axum::Json(json!({"tags": tag_list(&doc)})).into_response())
}

async fn tags_clear(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let doc = tagged(&svc, &ctx, kind, &id).await?;
    save_tags(&svc, kind, doc, vec![]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn tag_check(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let doc = svc.get_visible(&ctx, kind, &id).await?;
    if tag_list(&doc).contains(&tag) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::NotFound(format!(
            "Tag {tag} could not be found for {} {id}.",
            kind.as_str()
        )))
    }
}

async fn tag_add(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let doc = tagged(&svc, &ctx, kind, &id).await?;
    let mut tags = tag_list(&doc);
    tags.push(tag);
    save_tags(&svc, kind, doc, tags).await?;
    Ok(StatusCode::CREATED.into_response())
}

async fn tag_remove(
    kind: Kind,
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let doc = tagged(&svc, &ctx, kind, &id).await?;
    let mut tags = tag_list(&doc);
    if !tags.contains(&tag) {
        return Err(Error::NotFound(format!(
            "Tag {tag} could not be found for {} {id}.",
            kind.as_str()
        )));
    }
    tags.retain(|t| t != &tag);
    save_tags(&svc, kind, doc, tags).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
