//! `/v3/projects` and `/v3/domains` (a domain is a project with `is_domain`),
//! with project tags.

use super::*;
use crate::store::projects::Project;
use crate::store::revocations::RevocationEvent;
use crate::store::{self, new_id, DOMAIN_ROOT};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use schemars::JsonSchema;
use serde::Deserialize;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/projects", get(list_projects).post(create_project))
        .route(
            "/projects/{id}",
            get(show_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route(
            "/projects/{id}/tags",
            get(list_tags).put(replace_tags).delete(clear_tags),
        )
        .route(
            "/projects/{id}/tags/{tag}",
            get(check_tag).put(add_tag).delete(remove_tag),
        )
        .route("/domains", get(list_domains).post(create_domain))
        .route(
            "/domains/{id}",
            get(show_domain).patch(update_domain).delete(delete_domain),
        )
}

const KNOWN: &[&str] = &[
    "name",
    "domain_id",
    "parent_id",
    "description",
    "enabled",
    "is_domain",
    "tags",
    "options",
];

/// A project's or domain's attributes as a request gives them; on an update
/// only what is given changes.
#[derive(Deserialize, JsonSchema)]
struct ProjectFields {
    name: Option<String>,
    domain_id: Option<String>,
    parent_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    description: Option<Option<String>>,
    enabled: Option<bool>,
    is_domain: Option<bool>,
    tags: Option<Vec<String>>,
    /// The id a new domain is to have (Keystone's `explicit_domain_id`).
    explicit_domain_id: Option<String>,
    /// Attributes Keystone keeps as given.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `POST /v3/projects`, `PATCH /v3/projects/{id}`.
#[derive(Deserialize, JsonSchema)]
struct ProjectRequest {
    project: ProjectFields,
}

/// `POST /v3/domains`, `PATCH /v3/domains/{id}`.
#[derive(Deserialize, JsonSchema)]
struct DomainRequest {
    domain: ProjectFields,
}

/// `PUT /v3/projects/{id}/tags`.
#[derive(Deserialize, JsonSchema)]
struct TagsRequest {
    #[serde(default)]
    tags: Vec<String>,
}

/// The name a new project or domain must have.
fn required_name(name: Option<String>, entity: &str) -> Result<String> {
    let name = name.ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid input for field '{entity}.name': 'name' is a required property."
        ))
    })?;
    checked_name(name, entity, 64)
}

pub fn project_view(svc: &IdentityService, p: &Project) -> Value {
    with_extra(
        json!({
            "id": p.id,
            "name": p.name,
            "domain_id": p.domain_id,
            "parent_id": p.parent_id.clone().unwrap_or_else(|| p.domain_id.clone()),
            "description": p.description,
            "enabled": p.enabled,
            "is_domain": false,
            "tags": p.tags,
            "options": {},
            "links": links(svc, &format!("projects/{}", p.id)),
        }),
        &p.extra,
    )
}

pub fn domain_view(svc: &IdentityService, d: &Project) -> Value {
    with_extra(
        json!({
            "id": d.id,
            "name": d.name,
            "description": d.description,
            "enabled": d.enabled,
            "tags": d.tags,
            "options": {},
            "links": links(svc, &format!("domains/{}", d.id)),
        }),
        &d.extra,
    )
}

/// Tags as Keystone stores them: each valid, at most 80, sorted, once each.
fn checked_tags(tags: Vec<String>, entity: &str) -> Result<Vec<String>> {
    let mut tags = tags
        .iter()
        .map(|t| validate_tag(t))
        .collect::<Result<Vec<_>>>()?;
    if tags.len() > 80 {
        return Err(Error::BadRequest(format!(
            "Invalid input for field '{entity}.tags': at most 80 tags."
        )));
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

fn validate_tag(t: &str) -> Result<String> {
    if t.is_empty() || t.chars().count() > 255 || t.contains('/') || t.contains(',') {
        return Err(Error::BadRequest(format!(
            "Invalid input for field 'tags': '{t}' must be 1-255 characters without '/' or ','."
        )));
    }
    Ok(t.to_owned())
}

fn tag_filter(p: &Project, q: &HashMap<String, String>) -> bool {
    let split = |k: &str| {
        q.get(k)
            .map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
    };
    split("tags").is_none_or(|ts| ts.iter().all(|t| p.tags.contains(t)))
        && split("tags-any").is_none_or(|ts| ts.iter().any(|t| p.tags.contains(t)))
        && split("not-tags").is_none_or(|ts| !ts.iter().all(|t| p.tags.contains(t)))
        && split("not-tags-any").is_none_or(|ts| !ts.iter().any(|t| p.tags.contains(t)))
}

// ----- projects -----

async fn list_projects(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_projects",
        json!({"domain_id": q.get("domain_id")}),
    )?;
    if query_bool(&q, "is_domain") == Some(true) {
        let views: Vec<Value> = store::projects::list(&svc.db, true)
            .await?
            .iter()
            .filter(|d| q.get("name").is_none_or(|n| &d.name == n))
            .map(|d| {
                let mut v = domain_view(&svc, d);
                v["is_domain"] = json!(true);
                v["domain_id"] = Value::Null;
                v["parent_id"] = Value::Null;
                v
            })
            .collect();
        return Ok(ok(
            json!({"projects": views, "links": list_links(&svc, "projects")}),
        ));
    }
    let enabled = query_bool(&q, "enabled");
    let views: Vec<Value> = store::projects::list(&svc.db, false)
        .await?
        .iter()
        .filter(|p| q.get("name").is_none_or(|n| &p.name == n))
        .filter(|p| q.get("domain_id").is_none_or(|d| &p.domain_id == d))
        .filter(|p| {
            q.get("parent_id")
                .is_none_or(|pid| p.parent_id.as_deref().unwrap_or(&p.domain_id) == pid)
        })
        .filter(|p| enabled.is_none_or(|e| p.enabled == e))
        .filter(|p| tag_filter(p, &q))
        .map(|p| project_view(&svc, p))
        .collect();
    Ok(ok(
        json!({"projects": views, "links": list_links(&svc, "projects")}),
    ))
}

async fn create_project(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(ProjectRequest { project: new }): Json<ProjectRequest>,
) -> Result<Response> {
    if new.is_domain == Some(true) {
        enforce(&svc, &ctx, "identity:create_domain", json!({}))?;
        let d = new_domain(&svc, new, "project").await?;
        let mut v = domain_view(&svc, &d);
        v["is_domain"] = json!(true);
        v["domain_id"] = Value::Null;
        v["parent_id"] = Value::Null;
        return Ok(created(json!({"project": v})));
    }
    let name = required_name(new.name, "project")?;
    let parent = match &new.parent_id {
        Some(pid) => Some(store::projects::get(&svc.db, pid).await?.ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid input for field 'project.parent_id': project {pid} does not exist."
            ))
        })?),
        None => None,
    };
    let domain_id = match (new.domain_id, &parent) {
        (Some(d), _) => d,
        (None, Some(p)) if p.is_domain => p.id.clone(),
        (None, Some(p)) => p.domain_id.clone(),
        (None, None) => default_domain(&ctx),
    };
    enforce(
        &svc,
        &ctx,
        "identity:create_project",
        json!({"project": {"domain_id": domain_id}}),
    )?;
    let domain = svc.domain(&domain_id).await.map_err(|_| {
        Error::BadRequest(format!(
            "Invalid input for field 'project.domain_id': domain {domain_id} does not exist."
        ))
    })?;
    if let Some(p) = &parent {
        let pdom = if p.is_domain { &p.id } else { &p.domain_id };
        if pdom != &domain.id {
            return Err(Error::BadRequest(
                "Cannot create a project whose parent is in another domain.".into(),
            ));
        }
    }
    if store::projects::get_by_name(&svc.db, &domain.id, &name, false)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : {name}."
        )));
    }
    let p = Project {
        id: new_id(),
        name,
        domain_id: domain.id.clone(),
        parent_id: Some(parent.map(|p| p.id).unwrap_or(domain.id)),
        description: new.description.flatten().unwrap_or_default(),
        enabled: new.enabled.unwrap_or(true),
        is_domain: false,
        extra: extra_of(&new.extra, KNOWN, json!({})),
        tags: checked_tags(new.tags.unwrap_or_default(), "project")?,
    };
    store::projects::insert(&svc.db, &p).await?;
    let _ = svc
        .bus
        .notify(
            "identity",
            "identity.project.created",
            json!({"resource_info": p.id}),
        )
        .await;
    Ok(created(json!({"project": project_view(&svc, &p)})))
}

async fn show_project(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:get_project",
        json!({"project": {"id": id}}),
    )?;
    if let Some(d) = domain_by_id(&svc, &id).await? {
        return Ok(ok(json!({"project": domain_as_project(&svc, &d)})));
    }
    let p = svc.project(&id).await?;
    Ok(ok(json!({"project": project_view(&svc, &p)})))
}

async fn update_project(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(ProjectRequest { project: changes }): Json<ProjectRequest>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:update_project",
        json!({"project": {"id": id}}),
    )?;
    if domain_by_id(&svc, &id).await?.is_some() {
        let d = apply_domain_update(&svc, &id, changes, "project").await?;
        return Ok(ok(json!({"project": domain_as_project(&svc, &d)})));
    }
    let mut p = svc.project(&id).await?;
    if let Some(d) = changes.domain_id {
        if d != p.domain_id {
            return Err(Error::BadRequest("Invalid input for field 'project.domain_id': a project cannot move between domains.".into()));
        }
    }
    if let Some(pid) = changes.parent_id {
        if Some(&pid) != p.parent_id.as_ref() {
            return Err(Error::Forbidden(
                "Updating the parent of a project is not allowed.".into(),
            ));
        }
    }
    if changes.is_domain == Some(true) {
        return Err(Error::BadRequest(
            "Invalid input for field 'project.is_domain': it cannot be changed.".into(),
        ));
    }
    if let Some(n) = changes.name {
        let n = checked_name(n, "project", 64)?;
        if n != p.name
            && store::projects::get_by_name(&svc.db, &p.domain_id, &n, false)
                .await?
                .is_some()
        {
            return Err(Error::Conflict(format!(
                "Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : {n}."
            )));
        }
        p.name = n;
    }
    if let Some(description) = changes.description {
        p.description = description.unwrap_or_default();
    }
    let mut disabled = false;
    if let Some(e) = changes.enabled {
        disabled = p.enabled && !e;
        p.enabled = e;
    }
    if let Some(t) = changes.tags {
        p.tags = checked_tags(t, "project")?;
    }
    p.extra = extra_of(&changes.extra, KNOWN, p.extra.clone());
    store::projects::update(&svc.db, &p).await?;
    if disabled {
        svc.revoke(RevocationEvent {
            project_id: Some(p.id.clone()),
            ..Default::default()
        })
        .await?;
    }
    Ok(ok(json!({"project": project_view(&svc, &p)})))
}

async fn delete_project(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:delete_project",
        json!({"project": {"id": id}}),
    )?;
    if domain_by_id(&svc, &id).await?.is_some() {
        remove_domain(&svc, &id).await?;
        return Ok(no_content());
    }
    svc.project(&id).await?;
    if store::projects::count_children(&svc.db, &id).await? > 0 {
        return Err(Error::Forbidden(format!(
            "Cannot delete project {id}: it has child projects."
        )));
    }
    store::projects::delete(&svc.db, &id).await?;
    svc.revoke(RevocationEvent {
        project_id: Some(id.clone()),
        ..Default::default()
    })
    .await?;
    let _ = svc
        .bus
        .notify(
            "identity",
            "identity.project.deleted",
            json!({"resource_info": id}),
        )
        .await;
    Ok(no_content())
}

// ----- tags -----

async fn list_tags(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:get_project",
        json!({"project": {"id": id}}),
    )?;
    let p = svc.project(&id).await?;
    Ok(ok(
        json!({"tags": p.tags, "links": list_links(&svc, &format!("projects/{id}/tags"))}),
    ))
}

async fn replace_tags(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(TagsRequest { tags }): Json<TagsRequest>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:update_project",
        json!({"project": {"id": id}}),
    )?;
    let mut p = svc.project(&id).await?;
    p.tags = checked_tags(tags, "project")?;
    store::projects::update(&svc.db, &p).await?;
    Ok(ok(
        json!({"tags": p.tags, "links": list_links(&svc, &format!("projects/{id}/tags"))}),
    ))
}

async fn clear_tags(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:update_project",
        json!({"project": {"id": id}}),
    )?;
    let mut p = svc.project(&id).await?;
    p.tags.clear();
    store::projects::update(&svc.db, &p).await?;
    Ok(no_content())
}

async fn check_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:get_project",
        json!({"project": {"id": id}}),
    )?;
    let p = svc.project(&id).await?;
    if p.tags.contains(&tag) {
        Ok(no_content())
    } else {
        Err(Error::not_found("tag", &tag))
    }
}

async fn add_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:update_project",
        json!({"project": {"id": id}}),
    )?;
    let mut p = svc.project(&id).await?;
    let tag = validate_tag(&tag)?;
    if !p.tags.contains(&tag) {
        if p.tags.len() >= 80 {
            return Err(Error::BadRequest("A project has at most 80 tags.".into()));
        }
        p.tags.push(tag);
        p.tags.sort();
        store::projects::update(&svc.db, &p).await?;
    }
    Ok(axum::http::StatusCode::CREATED.into_response())
}

async fn remove_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:update_project",
        json!({"project": {"id": id}}),
    )?;
    let mut p = svc.project(&id).await?;
    let before = p.tags.len();
    p.tags.retain(|t| t != &tag);
    if p.tags.len() == before {
        return Err(Error::not_found("tag", &tag));
    }
    store::projects::update(&svc.db, &p).await?;
    Ok(no_content())
}

// ----- domains -----

async fn new_domain(svc: &Svc, new: ProjectFields, entity_name: &str) -> Result<Project> {
    let name = required_name(new.name, entity_name)?;
    if store::projects::get_by_name(&svc.db, "", &name, true)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "Conflict occurred attempting to store domain - Duplicate entry found with name {name}."
        )));
    }
    let d = Project {
        id: new.explicit_domain_id.unwrap_or_else(new_id),
        name,
        domain_id: DOMAIN_ROOT.into(),
        parent_id: None,
        description: new.description.flatten().unwrap_or_default(),
        enabled: new.enabled.unwrap_or(true),
        is_domain: true,
        extra: extra_of(&new.extra, KNOWN, json!({})),
        tags: checked_tags(new.tags.unwrap_or_default(), entity_name)?,
    };
    store::projects::insert(&svc.db, &d).await?;
    Ok(d)
}

async fn list_domains(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_domains", json!({}))?;
    let enabled = query_bool(&q, "enabled");
    let views: Vec<Value> = store::projects::list(&svc.db, true)
        .await?
        .iter()
        .filter(|d| q.get("name").is_none_or(|n| &d.name == n))
        .filter(|d| enabled.is_none_or(|e| d.enabled == e))
        .map(|d| domain_view(&svc, d))
        .collect();
    Ok(ok(
        json!({"domains": views, "links": list_links(&svc, "domains")}),
    ))
}

async fn create_domain(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(DomainRequest { domain: new }): Json<DomainRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_domain", json!({}))?;
    let d = new_domain(&svc, new, "domain").await?;
    Ok(created(json!({"domain": domain_view(&svc, &d)})))
}

async fn show_domain(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:get_domain",
        json!({"domain": {"id": id}}),
    )?;
    let d = svc.domain(&id).await?;
    Ok(ok(json!({"domain": domain_view(&svc, &d)})))
}

async fn update_domain(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(DomainRequest { domain: changes }): Json<DomainRequest>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:update_domain",
        json!({"domain": {"id": id}}),
    )?;
    let d = apply_domain_update(&svc, &id, changes, "domain").await?;
    Ok(ok(json!({"domain": domain_view(&svc, &d)})))
}

/// A domain must be disabled before it is deleted; its projects, users,
/// groups and domain-specific roles go with it.
async fn delete_domain(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:delete_domain",
        json!({"domain": {"id": id}}),
    )?;
    remove_domain(&svc, &id).await?;
    Ok(no_content())
}

async fn apply_domain_update(
    svc: &Svc,
    id: &str,
    changes: ProjectFields,
    entity_name: &str,
) -> Result<Project> {
    let mut d = svc.domain(id).await?;
    if let Some(n) = changes.name {
        let n = checked_name(n, "domain", 64)?;
        if n != d.name
            && store::projects::get_by_name(&svc.db, "", &n, true)
                .await?
                .is_some()
        {
            return Err(Error::Conflict(format!(
                "Conflict occurred attempting to store domain - Duplicate entry found with name {n}."
            )));
        }
        d.name = n;
    }
    if let Some(description) = changes.description {
        d.description = description.unwrap_or_default();
    }
    let mut disabled = false;
    if let Some(e) = changes.enabled {
        disabled = d.enabled && !e;
        d.enabled = e;
    }
    if let Some(t) = changes.tags {
        d.tags = checked_tags(t, entity_name)?;
    }
    d.extra = extra_of(&changes.extra, KNOWN, d.extra.clone());
    store::projects::update(&svc.db, &d).await?;
    if disabled {
        svc.revoke(RevocationEvent {
            domain_id: Some(d.id.clone()),
            ..Default::default()
        })
        .await?;
    }
    Ok(d)
}

async fn remove_domain(svc: &Svc, id: &str) -> Result<()> {
    let id = id.to_owned();
    let d = svc.domain(&id).await?;
    if d.enabled {
        return Err(Error::Forbidden(
            "Cannot delete a domain that is enabled, please disable it first.".into(),
        ));
    }
    let mut projects: Vec<Project> = store::projects::list(&svc.db, false)
        .await?
        .into_iter()
        .filter(|p| p.domain_id == id)
        .collect();
    // Children before parents.
    projects.sort_by_key(|p| std::cmp::Reverse(p.parent_id.as_deref() == Some(&id)));
    for p in projects {
        store::projects::delete(&svc.db, &p.id).await?;
    }
    for u in store::users::list(&svc.db)
        .await?
        .into_iter()
        .filter(|u| u.domain_id == id)
    {
        store::users::delete(&svc.db, &u.id).await?;
    }
    for g in store::groups::list(&svc.db)
        .await?
        .into_iter()
        .filter(|g| g.domain_id == id)
    {
        store::groups::delete(&svc.db, &g.id).await?;
    }
    for r in store::roles::list(&svc.db)
        .await?
        .into_iter()
        .filter(|r| r.domain_id == id)
    {
        store::roles::delete(&svc.db, &r.id).await?;
    }
    store::projects::delete(&svc.db, &id).await?;
    svc.revoke(RevocationEvent {
        domain_id: Some(id),
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// A domain seen through the projects API (`is_domain: true`).
fn domain_as_project(svc: &IdentityService, d: &Project) -> Value {
    let mut v = domain_view(svc, d);
    v["is_domain"] = json!(true);
    v["domain_id"] = Value::Null;
    v["parent_id"] = Value::Null;
    v["links"] = links(svc, &format!("projects/{}", d.id));
    v
}

async fn domain_by_id(svc: &IdentityService, id: &str) -> Result<Option<Project>> {
    Ok(store::projects::get(&svc.db, id)
        .await?
        .filter(|p| p.is_domain))
}
