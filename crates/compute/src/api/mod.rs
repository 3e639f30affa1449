//! Nova v2.1 HTTP API: version discovery, microversion negotiation, and
//! the resource handlers (one file per family). Handlers are thin: they
//! extract, check policy, call the service layer and render a view.

mod admin;
mod aggregates;
mod assisted_snapshots;
pub(crate) mod body;
mod by_uuid;
mod consoles;
mod create_schema;
mod extra_specs;
mod filters;
mod flavors;
mod hosts;
mod images;
mod interfaces;
mod keypairs;
pub mod microversion;
mod nova_net;
mod security_groups;
mod server_groups;
mod server_list;
mod server_migrations;
mod server_shares;
mod servers;
pub mod views;
mod volume_attachments;
mod volumes_proxy;

use crate::service::ComputeService;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_core::auth::{auth_layer, SharedValidator};
use ferrostack_core::http::{not_found_fallback, service_layer, ServiceLayer};
use ferrostack_core::openapi::{delete, get, post, put, ApiInfo, ApiRouter, HeaderParam};
use ferrostack_core::ErrorStyle;
use serde_json::json;
use std::sync::Arc;

pub type Svc = Arc<ComputeService>;
pub type Query = axum::extract::Query<Vec<(String, String)>>;

pub use microversion::{ApiVersion, MAX_VERSION, MIN_VERSION};

/// What the OpenAPI document says about this API.
pub fn info() -> ApiInfo {
    ApiInfo {
        title: "Ferrostack Compute (Nova v2.1)",
        version: microversion::MAX_VERSION_TEXT,
        description: "The Nova v2.1 compute API: servers and their actions, flavors, key pairs, \
            quotas, aggregates, hosts, hypervisors, and the image and network proxies.",
        errors: ErrorStyle::Nova,
    }
}

/// Every operation of the API, each documented from its handler's
/// arguments. Stateless, so the document needs no running service.
pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/", get(versions))
        .route("/v2", get(legacy_version))
        .route("/v2/", get(legacy_version))
        .route("/v2.1", get(version))
        .route("/v2.1/", get(version))
        .route(
            "/v2.1/servers",
            get(server_list::list).post(servers::create),
        )
        .route("/v2.1/servers/detail", get(server_list::detail))
        .route(
            "/v2.1/servers/{id}",
            get(servers::show)
                .put(servers::update)
                .delete(servers::delete),
        )
        .route("/v2.1/servers/{id}/action", post(servers::action))
        .route("/v2.1/servers/{id}/ips", get(servers::ips))
        .route(
            "/v2.1/servers/{id}/migrations",
            get(server_migrations::list),
        )
        .route(
            "/v2.1/servers/{id}/migrations/{migration}",
            get(server_migrations::show).delete(server_migrations::delete),
        )
        .route(
            "/v2.1/servers/{id}/migrations/{migration}/action",
            post(server_migrations::action),
        )
        .route("/v2.1/servers/{id}/remote-consoles", post(consoles::create))
        .route(
            "/v2.1/servers/{id}/os-interface",
            get(interfaces::list).post(interfaces::attach),
        )
        .route(
            "/v2.1/servers/{id}/os-interface/{port}",
            get(interfaces::show).delete(interfaces::detach),
        )
        .route(
            "/v2.1/servers/{id}/os-volume_attachments",
            get(volume_attachments::list).post(volume_attachments::attach),
        )
        .route(
            "/v2.1/servers/{id}/os-volume_attachments/{volume}",
            get(volume_attachments::show)
                .put(volume_attachments::update)
                .delete(volume_attachments::detach),
        )
        .route(
            "/v2.1/servers/{id}/os-server-password",
            get(servers::password).delete(servers::password_clear),
        )
        .route("/v2.1/servers/{id}/diagnostics", get(servers::diagnostics))
        .route("/v2.1/servers/{id}/topology", get(servers::topology))
        .route(
            "/v2.1/servers/{id}/ips/{network}",
            get(servers::ips_network),
        )
        .route(
            "/v2.1/servers/{id}/metadata",
            get(servers::metadata_list)
                .put(servers::metadata_replace)
                .post(servers::metadata_merge),
        )
        .route(
            "/v2.1/servers/{id}/metadata/{key}",
            get(servers::metadata_show)
                .put(servers::metadata_set)
                .delete(servers::metadata_delete),
        )
        .route(
            "/v2.1/servers/{id}/tags",
            get(servers::tags_list)
                .put(servers::tags_replace)
                .delete(servers::tags_clear),
        )
        .route(
            "/v2.1/servers/{id}/tags/{tag}",
            get(servers::tag_check)
                .put(servers::tag_add)
                .delete(servers::tag_delete),
        )
        .route(
            "/v2.1/servers/{id}/os-instance-actions",
            get(servers::actions),
        )
        .route(
            "/v2.1/servers/{id}/os-instance-actions/{req}",
            get(servers::action_show),
        )
        .route("/v2.1/flavors", get(flavors::list).post(flavors::create))
        .route("/v2.1/flavors/detail", get(flavors::detail))
        .route(
            "/v2.1/flavors/{id}",
            get(flavors::show)
                .put(flavors::update)
                .delete(flavors::delete),
        )
        .route("/v2.1/flavors/{id}/action", post(flavors::action))
        .route("/v2.1/flavors/{id}/os-flavor-access", get(flavors::access))
        .route(
            "/v2.1/flavors/{id}/os-extra_specs",
            get(flavors::specs).post(flavors::specs_merge),
        )
        .route(
            "/v2.1/flavors/{id}/os-extra_specs/{key}",
            get(flavors::spec_show)
                .put(flavors::spec_set)
                .delete(flavors::spec_delete),
        )
        .route(
            "/v2.1/os-keypairs",
            get(keypairs::list).post(keypairs::create),
        )
        .route(
            "/v2.1/os-keypairs/{name}",
            get(keypairs::show).delete(keypairs::delete),
        )
        .route("/v2.1/limits", get(admin::limits))
        .route(
            "/v2.1/os-console-auth-tokens/{token}",
            get(consoles::auth_token_show),
        )
        .route(
            "/v2.1/os-quota-sets/{project}",
            get(admin::quota_show)
                .put(admin::quota_update)
                .delete(admin::quota_delete),
        )
        .route(
            "/v2.1/os-quota-sets/{project}/defaults",
            get(admin::quota_defaults),
        )
        .route(
            "/v2.1/os-quota-sets/{project}/detail",
            get(admin::quota_detail),
        )
        .route("/v2.1/os-availability-zone", get(admin::zones))
        .route(
            "/v2.1/os-availability-zone/detail",
            get(admin::zones_detail),
        )
        .route("/v2.1/os-services", get(admin::services))
        .route(
            "/v2.1/os-services/{id}",
            put(admin::service_update).delete(admin::service_delete),
        )
        .route("/v2.1/os-hypervisors", get(admin::hypervisors))
        .route(
            "/v2.1/os-hypervisors/detail",
            get(admin::hypervisors_detail),
        )
        .route(
            "/v2.1/os-hypervisors/statistics",
            get(admin::hypervisor_statistics),
        )
        .route("/v2.1/os-hypervisors/{id}", get(admin::hypervisor_show))
        .route(
            "/v2.1/os-hypervisors/{id}/uptime",
            get(admin::hypervisor_uptime),
        )
        .route(
            "/v2.1/os-hypervisors/{id}/search",
            get(admin::hypervisor_search),
        )
        .route(
            "/v2.1/os-hypervisors/{id}/servers",
            get(admin::hypervisor_servers),
        )
        .route(
            "/v2.1/os-quota-class-sets/{id}",
            get(admin::quota_class_show).put(admin::quota_class_update),
        )
        .route("/v2.1/images", get(images::list))
        .route("/v2.1/images/detail", get(images::detail))
        .route(
            "/v2.1/images/{id}",
            get(images::show).delete(images::delete),
        )
        .route(
            "/v2.1/images/{id}/metadata",
            get(images::metadata_list)
                .post(images::metadata_merge)
                .put(images::metadata_replace),
        )
        .route(
            "/v2.1/images/{id}/metadata/{key}",
            get(images::metadata_show)
                .put(images::metadata_set)
                .delete(images::metadata_delete),
        )
        .route(
            "/v2.1/os-server-groups",
            get(server_groups::list).post(server_groups::create),
        )
        .route(
            "/v2.1/os-server-groups/{id}",
            get(server_groups::show).delete(server_groups::delete),
        )
        .route(
            "/v2.1/os-security-groups",
            get(security_groups::list).post(security_groups::create),
        )
        .route(
            "/v2.1/os-security-groups/{id}",
            get(security_groups::show)
                .put(security_groups::update)
                .delete(security_groups::delete),
        )
        .route(
            "/v2.1/os-security-group-rules",
            post(security_groups::rule_create),
        )
        .route(
            "/v2.1/os-security-group-rules/{id}",
            delete(security_groups::rule_delete),
        )
        .route(
            "/v2.1/servers/{id}/os-security-groups",
            get(security_groups::of_server),
        )
        .route("/v2.1/extensions", get(admin::extensions))
        .route("/v2.1/extensions/{alias}", get(admin::extension))
        .route("/v2.1/os-simple-tenant-usage", get(admin::usage_list))
        .route(
            "/v2.1/os-simple-tenant-usage/{project}",
            get(admin::usage_show),
        )
        .route(
            "/v2.1/os-server-external-events",
            post(admin::external_events),
        )
        .route(
            "/v2.1/os-assisted-volume-snapshots",
            post(assisted_snapshots::create),
        )
        .route(
            "/v2.1/os-assisted-volume-snapshots/{id}",
            delete(assisted_snapshots::delete),
        )
        .route(
            "/v2.1/os-aggregates",
            get(aggregates::list).post(aggregates::create),
        )
        .route(
            "/v2.1/os-aggregates/{id}",
            get(aggregates::show)
                .put(aggregates::update)
                .delete(aggregates::delete),
        )
        .route("/v2.1/os-aggregates/{id}/action", post(aggregates::action))
        .route(
            "/v2.1/servers/{id}/shares",
            get(server_shares::list).post(server_shares::attach),
        )
        .route(
            "/v2.1/servers/{id}/shares/{share_id}",
            get(server_shares::show).delete(server_shares::detach),
        )
        .route(
            "/v2.1/os-aggregates/{id}/images",
            post(aggregates::cache_images),
        )
        .route(
            "/v2.1/os-floating-ips",
            get(nova_net::floating_ips)
                .post(nova_net::floating_ip_create)
                .body(Method::POST, nova_net::floating_ip_create_body()),
        )
        .route(
            "/v2.1/os-floating-ips/{id}",
            get(nova_net::floating_ip_show).delete(nova_net::floating_ip_delete),
        )
        .route(
            "/v2.1/os-floating-ip-pools",
            get(nova_net::floating_ip_pools),
        )
        .route("/v2.1/os-networks", get(nova_net::networks))
        .route("/v2.1/os-networks/{id}", get(nova_net::network_show))
        .route("/v2.1/os-tenant-networks", get(nova_net::networks))
        .route("/v2.1/os-tenant-networks/{id}", get(nova_net::network_show))
        .route("/v2.1/os-hosts", get(hosts::list))
        .route("/v2.1/os-hosts/{host}", get(hosts::show).put(hosts::update))
        .route("/v2.1/os-hosts/{host}/{action}", get(hosts::power))
        .route("/v2.1/os-migrations", get(hosts::migrations))
        .route("/v2.1/os-instance_usage_audit_log", get(hosts::audit_logs))
        .route(
            "/v2.1/os-instance_usage_audit_log/{before}",
            get(hosts::audit_log_show),
        )
        .route(
            "/v2.1/os-volumes",
            get(volumes_proxy::volumes).post(volumes_proxy::volume_create),
        )
        .route(
            "/v2.1/os-volumes/detail",
            get(volumes_proxy::volumes_detail),
        )
        .route(
            "/v2.1/os-volumes/{id}",
            get(volumes_proxy::volume_show).delete(volumes_proxy::volume_delete),
        )
        .route(
            "/v2.1/os-snapshots",
            get(volumes_proxy::snapshots).post(volumes_proxy::snapshot_create),
        )
        .route(
            "/v2.1/os-snapshots/detail",
            get(volumes_proxy::snapshots_detail),
        )
        .route(
            "/v2.1/os-snapshots/{id}",
            get(volumes_proxy::snapshot_show).delete(volumes_proxy::snapshot_delete),
        )
        // Read by the `microversion` middleware on every /v2.1 request.
        .header_on_every_operation(HeaderParam {
            name: "OpenStack-API-Version",
            required: false,
            description: "`compute X.Y` or `compute latest`: the microversion asked for",
        })
        .header_on_every_operation(HeaderParam {
            name: "X-OpenStack-Nova-API-Version",
            required: false,
            description: "`X.Y` or `latest`: the microversion asked for (legacy header)",
        })
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn openapi_document() -> serde_json::Value {
    routes().document(&info())
}

/// The API on its port: [`routes`] with `GET /openapi.json`, the service's
/// 404, state, body limit, microversions, token validation and the common
/// service layer.
pub fn router(svc: Svc, validator: SharedValidator, auth_uri: &str) -> Router {
    let limit = svc.config.compute.max_request_body_size;
    routes()
        .into_router(&info())
        .fallback(not_found_fallback)
        .with_state(svc)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(microversion::middleware))
        .layer(axum::middleware::from_fn_with_state(
            ferrostack_core::auth::AuthLayer {
                validator,
                service_type: "compute",
            },
            auth_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ServiceLayer::new("compute", ErrorStyle::Nova, auth_uri),
            service_layer,
        ))
}

fn base_url(svc: &ComputeService) -> String {
    svc.config.public_url(svc.config.compute.port)
}

fn version_doc(svc: &ComputeService) -> serde_json::Value {
    json!({
        "id": "v2.1", "status": "CURRENT", "version": MAX_VERSION.to_string(), "min_version": MIN_VERSION.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"href": format!("{}/v2.1/", base_url(svc)), "rel": "self"}],
    })
}

fn legacy_doc(svc: &ComputeService) -> serde_json::Value {
    json!({
        "id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"href": format!("{}/v2/", base_url(svc)), "rel": "self"}],
    })
}

/// Nova lists the legacy v2.0 API first; only its version document is
/// served here, clients use v2.1.
async fn versions(State(svc): State<Svc>) -> Response {
    axum::Json(json!({"versions": [legacy_doc(&svc), version_doc(&svc)]})).into_response()
}

async fn legacy_version(State(svc): State<Svc>) -> Response {
    let mut v = legacy_doc(&svc);
    v["links"].as_array_mut().expect("links").push(json!({
        "href": "http://docs.openstack.org/", "rel": "describedby", "type": "text/html"}));
    v["media-types"] = json!([{"base": "application/json",
        "type": "application/vnd.openstack.compute+json;version=2"}]);
    axum::Json(json!({ "version": v })).into_response()
}

async fn version(State(svc): State<Svc>) -> Response {
    let mut v = version_doc(&svc);
    v["links"].as_array_mut().expect("links").push(json!({
        "href": "http://docs.openstack.org/", "rel": "describedby", "type": "text/html"}));
    v["media-types"] = json!([{"base": "application/json",
        "type": "application/vnd.openstack.compute+json;version=2.1"}]);
    axum::Json(json!({ "version": v })).into_response()
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `limit` and `marker` of a paged list, as Nova reads them (`limit` a
/// non-negative integer).
fn page_params(q: &[(String, String)]) -> ferrostack_core::Result<(Option<usize>, Option<&str>)> {
    let limit = query_get(q, "limit")
        .map(|l| {
            l.parse::<usize>().map_err(|_| {
                ferrostack_core::Error::BadRequest(format!(
                    "Invalid input for field/attribute limit. Value: {l}. '{l}' is not a 'non-negative integer'"
                ))
            })
        })
        .transpose()?;
    Ok((limit, query_get(q, "marker")))
}

/// One page of `items` (sorted) after `marker`, or Nova's 400 for a
/// marker that is not among them.
fn page_of<T>(
    items: Vec<T>,
    id_of: impl Fn(&T) -> &str,
    q: &[(String, String)],
) -> ferrostack_core::Result<(Vec<T>, Option<usize>)> {
    let (limit, marker) = page_params(q)?;
    let (page, _) = ferrostack_core::pagination::paginate(items, id_of, marker, limit)
        .map_err(|m| ferrostack_core::Error::BadRequest(format!("marker [{}] not found", m.0)))?;
    Ok((page, limit))
}

/// Nova's collection link: a `next` link (the request's query, the page's
/// last id as marker) whenever a `limit` was given and the page is full.
fn next_page_link(
    svc: &ComputeService,
    path: &str,
    q: &[(String, String)],
    limit: Option<usize>,
    page_len: usize,
    last_id: Option<String>,
) -> Option<serde_json::Value> {
    let last = last_id.filter(|_| limit.is_some_and(|l| l > 0 && l == page_len))?;
    let mut params: Vec<String> = q
        .iter()
        .filter(|(k, _)| k != "marker")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    params.push(format!("marker={last}"));
    Some(json!([{
        "href": format!("{}/v2.1/{path}?{}", base_url(svc), params.join("&")),
        "rel": "next",
    }]))
}
