//! OS-EP-FILTER endpoint groups: named filters over the catalog's endpoints,
//! associable with projects.

use super::*;
use crate::store::documents::{self, Document, Table};
use crate::store::{self, new_id};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/OS-EP-FILTER/endpoint_groups",
            get(list_endpoint_groups).post(create_endpoint_group),
        )
        .route(
            "/OS-EP-FILTER/endpoint_groups/{id}",
            get(show_endpoint_group)
                .patch(update_endpoint_group)
                .delete(delete_endpoint_group),
        )
        .route(
            "/OS-EP-FILTER/endpoint_groups/{id}/endpoints",
            get(list_endpoint_group_endpoints),
        )
        .route(
            "/OS-EP-FILTER/endpoint_groups/{id}/projects",
            get(list_endpoint_group_projects),
        )
        .route(
            "/OS-EP-FILTER/endpoint_groups/{id}/projects/{project_id}",
            get(check_endpoint_group_project)
                .put(add_endpoint_group_project)
                .delete(remove_endpoint_group_project),
        )
        .route(
            "/OS-EP-FILTER/projects/{project_id}/endpoint_groups",
            get(list_project_endpoint_groups),
        )
}

/// `POST` and `PATCH` of an endpoint group.
#[derive(Deserialize, JsonSchema)]
struct EndpointGroupRequest {
    endpoint_group: EndpointGroupFields,
}

#[derive(Deserialize, JsonSchema)]
struct EndpointGroupFields {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    description: Option<Option<String>>,
    filters: Option<EndpointFilters>,
    /// Attributes Keystone keeps as given.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// What an endpoint must match to be in the group.
#[derive(Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
struct EndpointFilters {
    #[serde(skip_serializing_if = "Option::is_none")]
    service_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region_id: Option<String>,
}

fn filters_value(f: &EndpointFilters) -> Value {
    serde_json::to_value(f).unwrap_or_else(|_| json!({}))
}

fn view(svc: &IdentityService, d: &Document) -> Value {
    let mut v = d.body.clone();
    v["id"] = json!(d.id);
    v["links"] = links(svc, &format!("OS-EP-FILTER/endpoint_groups/{}", d.id));
    v
}

async fn get_group(svc: &IdentityService, id: &str) -> Result<Document> {
    documents::get(&svc.db, Table::EndpointGroups, id)
        .await?
        .ok_or_else(|| Error::not_found("endpoint group", id))
}

async fn list_endpoint_groups(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_endpoint_groups", json!({}))?;
    let views: Vec<Value> = documents::list(&svc.db, Table::EndpointGroups, None)
        .await?
        .iter()
        .filter(|d| {
            q.get("name")
                .is_none_or(|n| d.body["name"].as_str() == Some(n))
        })
        .map(|d| view(&svc, d))
        .collect();
    Ok(ok(
        json!({"endpoint_groups": views, "links": list_links(&svc, "OS-EP-FILTER/endpoint_groups")}),
    ))
}

async fn create_endpoint_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(EndpointGroupRequest {
        endpoint_group: new,
    }): Json<EndpointGroupRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_endpoint_group", json!({}))?;
    let name = checked_name(
        required(new.name, "endpoint_group", "name")?,
        "endpoint_group",
        255,
    )?;
    let filters = required(new.filters, "endpoint_group", "filters")?;
    let mut b = extra_of(&new.extra, &[], json!({}));
    b["name"] = json!(name);
    b["filters"] = filters_value(&filters);
    b["description"] = json!(new.description.flatten());
    let d = Document {
        id: new_id(),
        owner_id: String::new(),
        body: b,
    };
    documents::put(&svc.db, Table::EndpointGroups, &d).await?;
    Ok(created(json!({"endpoint_group": view(&svc, &d)})))
}

async fn show_endpoint_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_endpoint_group", json!({}))?;
    let d = get_group(&svc, &id).await?;
    Ok(ok(json!({"endpoint_group": view(&svc, &d)})))
}

async fn update_endpoint_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(EndpointGroupRequest {
        endpoint_group: changes,
    }): Json<EndpointGroupRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_endpoint_group", json!({}))?;
    let mut d = get_group(&svc, &id).await?;
    if let Some(name) = changes.name {
        d.body["name"] = json!(checked_name(name, "endpoint_group", 255)?);
    }
    if let Some(filters) = &changes.filters {
        d.body["filters"] = filters_value(filters);
    }
    if let Some(description) = changes.description {
        d.body["description"] = json!(description);
    }
    d.body = extra_of(&changes.extra, &[], d.body.clone());
    documents::put(&svc.db, Table::EndpointGroups, &d).await?;
    Ok(ok(json!({"endpoint_group": view(&svc, &d)})))
}

async fn delete_endpoint_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_endpoint_group", json!({}))?;
    get_group(&svc, &id).await?;
    documents::delete(&svc.db, Table::EndpointGroups, &id).await?;
    for a in documents::list(&svc.db, Table::ProjectEndpointGroups, Some(&id)).await? {
        documents::delete(&svc.db, Table::ProjectEndpointGroups, &a.id).await?;
    }
    Ok(no_content())
}

async fn list_endpoint_group_endpoints(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_endpoints_associated_with_endpoint_group",
        json!({}),
    )?;
    let d = get_group(&svc, &id).await?;
    let f = &d.body["filters"];
    let views: Vec<Value> = store::catalog::list_endpoints(&svc.db)
        .await?
        .iter()
        .filter(|e| f["service_id"].as_str().is_none_or(|s| s == e.service_id))
        .filter(|e| f["interface"].as_str().is_none_or(|s| s == e.interface))
        .filter(|e| f["region_id"].as_str().is_none_or(|s| Some(s) == e.region_id.as_deref()))
        .map(|e| {
            json!({"id": e.id, "interface": e.interface, "region": e.region_id, "region_id": e.region_id,
                   "service_id": e.service_id, "url": e.url, "enabled": e.enabled,
                   "links": links(&svc, &format!("endpoints/{}", e.id))})
        })
        .collect();
    Ok(ok(
        json!({"endpoints": views, "links": list_links(&svc, &format!("OS-EP-FILTER/endpoint_groups/{id}/endpoints"))}),
    ))
}

fn assoc_id(group: &str, project: &str) -> String {
    format!("{group}:{project}")
}

async fn list_endpoint_group_projects(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_projects_associated_with_endpoint_group",
        json!({}),
    )?;
    get_group(&svc, &id).await?;
    let mut views = Vec::new();
    for a in documents::list(&svc.db, Table::ProjectEndpointGroups, Some(&id)).await? {
        if let Ok(p) = svc
            .project(a.body["project_id"].as_str().unwrap_or(""))
            .await
        {
            views.push(super::projects::project_view(&svc, &p));
        }
    }
    Ok(ok(
        json!({"projects": views, "links": list_links(&svc, &format!("OS-EP-FILTER/endpoint_groups/{id}/projects"))}),
    ))
}

async fn check_endpoint_group_project(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, project_id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:get_endpoint_group_in_project",
        json!({}),
    )?;
    get_group(&svc, &id).await?;
    let p = svc.project(&project_id).await?;
    if documents::get(
        &svc.db,
        Table::ProjectEndpointGroups,
        &assoc_id(&id, &project_id),
    )
    .await?
    .is_none()
    {
        return Err(Error::NotFound(format!(
            "Endpoint group {id} is not associated with project {project_id}."
        )));
    }
    Ok(ok(
        json!({"project": super::projects::project_view(&svc, &p)}),
    ))
}

async fn add_endpoint_group_project(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, project_id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:add_endpoint_group_to_project",
        json!({}),
    )?;
    get_group(&svc, &id).await?;
    svc.project(&project_id).await?;
    documents::put(
        &svc.db,
        Table::ProjectEndpointGroups,
        &Document {
            id: assoc_id(&id, &project_id),
            owner_id: id,
            body: json!({"project_id": project_id}),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_endpoint_group_project(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, project_id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:remove_endpoint_group_from_project",
        json!({}),
    )?;
    if !documents::delete(
        &svc.db,
        Table::ProjectEndpointGroups,
        &assoc_id(&id, &project_id),
    )
    .await?
    {
        return Err(Error::NotFound(format!(
            "Endpoint group {id} is not associated with project {project_id}."
        )));
    }
    Ok(no_content())
}

async fn list_project_endpoint_groups(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(project_id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_endpoint_groups_for_project",
        json!({}),
    )?;
    svc.project(&project_id).await?;
    let mut views = Vec::new();
    for a in documents::list(&svc.db, Table::ProjectEndpointGroups, None).await? {
        if a.body["project_id"].as_str() == Some(&project_id) {
            if let Ok(g) = get_group(&svc, &a.owner_id).await {
                views.push(view(&svc, &g));
            }
        }
    }
    Ok(ok(json!({"endpoint_groups": views,
        "links": list_links(&svc, &format!("OS-EP-FILTER/projects/{project_id}/endpoint_groups"))})))
}
