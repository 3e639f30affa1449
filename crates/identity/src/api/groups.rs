//! `/v3/groups` and group membership.

use super::views::{group_view, user_view};
use super::*;
use crate::store::groups::Group;
use crate::store::revocations::RevocationEvent;
use crate::store::{self, new_id};
use axum::extract::{Path, State};
use axum::response::Response;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use schemars::JsonSchema;
use serde::Deserialize;

/// `POST /v3/groups`.
#[derive(Deserialize, JsonSchema)]
struct CreateGroupRequest {
    group: NewGroup,
}

#[derive(Deserialize, JsonSchema)]
struct NewGroup {
    name: String,
    domain_id: Option<String>,
    description: Option<String>,
    /// Attributes Keystone keeps as given.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `PATCH /v3/groups/{id}`.
#[derive(Deserialize, JsonSchema)]
struct UpdateGroupRequest {
    group: GroupChanges,
}

#[derive(Deserialize, JsonSchema)]
struct GroupChanges {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    description: Option<Option<String>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/groups", get(list_groups).post(create_group))
        .route(
            "/groups/{id}",
            get(show_group).patch(update_group).delete(delete_group),
        )
        .route("/groups/{id}/users", get(list_group_users))
        .route(
            "/groups/{id}/users/{user_id}",
            get(check_group_user)
                .put(add_group_user)
                .delete(remove_group_user),
        )
}

async fn get_group(svc: &IdentityService, id: &str) -> Result<Group> {
    store::groups::get(&svc.db, id)
        .await?
        .ok_or_else(|| Error::not_found("group", id))
}

async fn list_groups(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_groups", json!({}))?;
    let views: Vec<Value> = store::groups::list(&svc.db)
        .await?
        .iter()
        .filter(|g| q.get("name").is_none_or(|n| &g.name == n))
        .filter(|g| q.get("domain_id").is_none_or(|d| &g.domain_id == d))
        .map(|g| group_view(&svc, g))
        .collect();
    Ok(ok(
        json!({"groups": views, "links": list_links(&svc, "groups")}),
    ))
}

async fn create_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(CreateGroupRequest { group: new }): Json<CreateGroupRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_group", json!({}))?;
    let name = checked_name(new.name, "group", 64)?;
    let domain_id = new.domain_id.unwrap_or_else(|| default_domain(&ctx));
    svc.domain(&domain_id).await.map_err(|_| {
        Error::BadRequest(format!(
            "Invalid input for field 'group.domain_id': domain {domain_id} does not exist."
        ))
    })?;
    if store::groups::list(&svc.db)
        .await?
        .iter()
        .any(|g| g.domain_id == domain_id && g.name == name)
    {
        return Err(Error::Conflict(format!(
            "Conflict occurred attempting to store group - Duplicate entry found with name {name} at domain ID {domain_id}."
        )));
    }
    let g = Group {
        id: new_id(),
        name,
        domain_id,
        description: new.description.unwrap_or_default(),
        extra: extra_of(&new.extra, &[], json!({})),
    };
    store::groups::insert(&svc.db, &g).await?;
    Ok(created(json!({"group": group_view(&svc, &g)})))
}

async fn show_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_group", json!({}))?;
    let g = get_group(&svc, &id).await?;
    Ok(ok(json!({"group": group_view(&svc, &g)})))
}

async fn update_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(UpdateGroupRequest { group: changes }): Json<UpdateGroupRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_group", json!({}))?;
    let mut g = get_group(&svc, &id).await?;
    if let Some(n) = changes.name {
        g.name = checked_name(n, "group", 64)?;
    }
    if let Some(description) = changes.description {
        g.description = description.unwrap_or_default();
    }
    // A group stays in its domain: a given domain_id is not an attribute.
    g.extra = extra_of(&changes.extra, &["domain_id"], g.extra.clone());
    store::groups::update(&svc.db, &g).await?;
    Ok(ok(json!({"group": group_view(&svc, &g)})))
}

async fn delete_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_group", json!({}))?;
    get_group(&svc, &id).await?;
    let members = store::users::list_in_group(&svc.db, &id).await?;
    store::groups::delete(&svc.db, &id).await?;
    for u in members {
        svc.revoke_user(&u.id).await?;
    }
    Ok(no_content())
}

async fn list_group_users(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_users_in_group", json!({}))?;
    get_group(&svc, &id).await?;
    let views: Vec<Value> = store::users::list_in_group(&svc.db, &id)
        .await?
        .iter()
        .filter(|u| q.get("name").is_none_or(|n| &u.name == n))
        .map(|u| user_view(&svc, u))
        .collect();
    Ok(ok(
        json!({"users": views, "links": list_links(&svc, &format!("groups/{id}/users"))}),
    ))
}

async fn check_group_user(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:check_user_in_group", json!({}))?;
    get_group(&svc, &id).await?;
    svc.user(&user_id).await?;
    if store::groups::is_member(&svc.db, &id, &user_id).await? {
        Ok(no_content())
    } else {
        Err(Error::NotFound(format!(
            "User {user_id} is not a member of group {id}."
        )))
    }
}

async fn add_group_user(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:add_user_to_group", json!({}))?;
    get_group(&svc, &id).await?;
    svc.user(&user_id).await?;
    store::groups::add_member(&svc.db, &id, &user_id).await?;
    Ok(no_content())
}

async fn remove_group_user(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:remove_user_from_group", json!({}))?;
    get_group(&svc, &id).await?;
    svc.user(&user_id).await?;
    if !store::groups::remove_member(&svc.db, &id, &user_id).await? {
        return Err(Error::NotFound(format!(
            "User {user_id} is not a member of group {id}."
        )));
    }
    svc.revoke(RevocationEvent {
        user_id: Some(user_id),
        ..Default::default()
    })
    .await?;
    Ok(no_content())
}
