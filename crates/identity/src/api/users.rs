//! `/v3/users`: CRUD, self-service password change, a user's projects and groups.

use super::views::{group_view, user_view};
use super::*;
use crate::store::users::User;
use crate::store::{self, new_id};
use axum::extract::{Path, State};
use axum::response::Response;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, post, ApiRouter};
use schemars::JsonSchema;
use serde::Deserialize;

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{user_id}",
            get(show_user).patch(update_user).delete(delete_user),
        )
        .route("/users/{user_id}/password", post(change_password))
        .route("/users/{user_id}/projects", get(list_user_projects))
        .route("/users/{user_id}/groups", get(list_user_groups))
}

const KNOWN: &[&str] = &[
    "name",
    "domain_id",
    "enabled",
    "password",
    "default_project_id",
    "options",
    "federated",
];

/// `POST /v3/users`.
#[derive(Deserialize, JsonSchema)]
struct CreateUserRequest {
    user: NewUser,
}

#[derive(Deserialize, JsonSchema)]
struct NewUser {
    name: String,
    domain_id: Option<String>,
    enabled: Option<bool>,
    password: Option<String>,
    default_project_id: Option<String>,
    options: Option<Map<String, Value>>,
    /// Attributes Keystone keeps as given (`email`, …).
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `PATCH /v3/users/{id}`: only what is given changes.
#[derive(Deserialize, JsonSchema)]
struct UpdateUserRequest {
    user: UserChanges,
}

#[derive(Deserialize, JsonSchema)]
struct UserChanges {
    name: Option<String>,
    domain_id: Option<String>,
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    default_project_id: Option<Option<String>>,
    password: Option<String>,
    /// Merged into the user's options; a `null` option is removed.
    options: Option<Map<String, Value>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `POST /v3/users/{id}/password`.
#[derive(Deserialize, JsonSchema)]
struct ChangePasswordRequest {
    user: PasswordChange,
}

#[derive(Deserialize, JsonSchema)]
struct PasswordChange {
    original_password: String,
    password: String,
}

async fn list_users(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_users",
        json!({"domain_id": q.get("domain_id")}),
    )?;
    let enabled = query_bool(&q, "enabled");
    let users: Vec<Value> = store::users::list(&svc.db)
        .await?
        .iter()
        .filter(|u| q.get("name").is_none_or(|n| &u.name == n))
        .filter(|u| q.get("domain_id").is_none_or(|d| &u.domain_id == d))
        .filter(|u| enabled.is_none_or(|e| u.enabled == e))
        .map(|u| user_view(&svc, u))
        .collect();
    Ok(ok(
        json!({"users": users, "links": list_links(&svc, "users")}),
    ))
}

async fn create_user(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(CreateUserRequest { user: new }): Json<CreateUserRequest>,
) -> Result<Response> {
    let name = checked_name(new.name, "user", 255)?;
    let domain_id = new.domain_id.unwrap_or_else(|| default_domain(&ctx));
    enforce(
        &svc,
        &ctx,
        "identity:create_user",
        json!({"user": {"domain_id": domain_id}}),
    )?;
    svc.domain(&domain_id).await?;
    let default_project_id = new.default_project_id;
    if let Some(p) = &default_project_id {
        svc.project(p).await.map_err(|_| {
            Error::BadRequest(format!(
                "Invalid input for field 'user.default_project_id': project {p} does not exist."
            ))
        })?;
    }
    if store::users::get_by_name(&svc.db, &domain_id, &name)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "Conflict occurred attempting to store user - Duplicate entry found with name {name} at domain ID {domain_id}."
        )));
    }
    let password_hash = match new.password {
        Some(p) => Some(svc.hash_password(&p).await?),
        None => None,
    };
    let user = User {
        id: new_id(),
        name,
        domain_id,
        enabled: new.enabled.unwrap_or(true),
        default_project_id,
        password_hash,
        password_expires_at: None,
        options: Value::Object(new.options.unwrap_or_default()),
        extra: extra_of(&new.extra, KNOWN, json!({})),
    };
    store::users::insert(&svc.db, &user).await?;
    let _ = svc
        .bus
        .notify(
            "identity",
            "identity.user.created",
            json!({"resource_info": user.id}),
        )
        .await;
    Ok(created(json!({"user": user_view(&svc, &user)})))
}

async fn show_user(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_user", json!({"user": {"id": id}}))?;
    let u = svc.user(&id).await?;
    Ok(ok(json!({"user": user_view(&svc, &u)})))
}

async fn update_user(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(UpdateUserRequest { user: changes }): Json<UpdateUserRequest>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:update_user",
        json!({"user": {"id": id}}),
    )?;
    let mut u = svc.user(&id).await?;
    let mut revoke = false;
    if let Some(n) = changes.name {
        let n = checked_name(n, "user", 255)?;
        if n != u.name
            && store::users::get_by_name(&svc.db, &u.domain_id, &n)
                .await?
                .is_some()
        {
            return Err(Error::Conflict(format!(
                "Conflict occurred attempting to store user - Duplicate entry found with name {n} at domain ID {}.",
                u.domain_id
            )));
        }
        u.name = n;
    }
    if let Some(d) = changes.domain_id {
        if d != u.domain_id {
            return Err(Error::BadRequest(
                "Invalid input for field 'user.domain_id': a user cannot move between domains."
                    .into(),
            ));
        }
    }
    if let Some(e) = changes.enabled {
        revoke |= u.enabled && !e;
        u.enabled = e;
    }
    if let Some(default_project_id) = changes.default_project_id {
        u.default_project_id = default_project_id;
        if let Some(p) = &u.default_project_id {
            svc.project(p).await.map_err(|_| {
                Error::BadRequest(format!("Invalid input for field 'user.default_project_id': project {p} does not exist."))
            })?;
        }
    }
    if let Some(p) = changes.password {
        u.password_hash = Some(svc.hash_password(&p).await?);
        revoke = true;
    }
    if let Some(o) = changes.options {
        let mut opts = u.options.as_object().cloned().unwrap_or_default();
        for (k, v) in o {
            if v.is_null() {
                opts.remove(&k);
            } else {
                opts.insert(k, v);
            }
        }
        u.options = Value::Object(opts);
    }
    u.extra = extra_of(&changes.extra, KNOWN, u.extra.clone());
    store::users::update(&svc.db, &u).await?;
    if revoke {
        svc.revoke_user(&u.id).await?;
    }
    Ok(ok(json!({"user": user_view(&svc, &u)})))
}

async fn delete_user(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:delete_user",
        json!({"user": {"id": id}}),
    )?;
    svc.user(&id).await?;
    store::users::delete(&svc.db, &id).await?;
    svc.revoke_user(&id).await?;
    let _ = svc
        .bus
        .notify(
            "identity",
            "identity.user.deleted",
            json!({"resource_info": id}),
        )
        .await;
    Ok(no_content())
}

/// Self-service password change: the original password proves who asks.
async fn change_password(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(ChangePasswordRequest { user: change }): Json<ChangePasswordRequest>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:change_password",
        json!({"user": {"id": id}}),
    )?;
    let mut u = svc.user(&id).await?;
    let ok_original = match &u.password_hash {
        Some(h) => svc.verify_password(&change.original_password, h).await,
        None => false,
    };
    if !ok_original {
        return Err(Error::Unauthorized(
            "The original password is incorrect.".into(),
        ));
    }
    u.password_hash = Some(svc.hash_password(&change.password).await?);
    u.password_expires_at = None;
    store::users::update(&svc.db, &u).await?;
    svc.revoke_user(&u.id).await?;
    Ok(no_content())
}

async fn list_user_projects(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_user_projects",
        json!({"user": {"id": id}}),
    )?;
    svc.user(&id).await?;
    let ps = super::auth::user_projects(&svc, &id).await?;
    let views: Vec<Value> = ps
        .iter()
        .map(|p| super::projects::project_view(&svc, p))
        .collect();
    Ok(ok(
        json!({"projects": views, "links": list_links(&svc, &format!("users/{id}/projects"))}),
    ))
}

async fn list_user_groups(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:list_groups_for_user",
        json!({"user": {"id": id}}),
    )?;
    svc.user(&id).await?;
    let views: Vec<Value> = store::groups::list_for_user(&svc.db, &id)
        .await?
        .iter()
        .map(|g| group_view(&svc, g))
        .collect();
    Ok(ok(
        json!({"groups": views, "links": list_links(&svc, &format!("users/{id}/groups"))}),
    ))
}
