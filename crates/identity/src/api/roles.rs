//! `/v3/roles` (global and domain-specific) and role inference rules.

use super::*;
use crate::store::revocations::RevocationEvent;
use crate::store::roles::Role;
use crate::store::{self, new_id, NULL_DOMAIN};
use axum::extract::{Path, State};
use axum::response::Response;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use schemars::JsonSchema;
use serde::Deserialize;

/// `POST /v3/roles`.
#[derive(Deserialize, JsonSchema)]
struct CreateRoleRequest {
    role: NewRole,
}

#[derive(Deserialize, JsonSchema)]
struct NewRole {
    name: String,
    /// A domain-specific role's domain; none for a global role.
    domain_id: Option<String>,
    description: Option<String>,
    options: Option<Map<String, Value>>,
    /// Attributes Keystone keeps as given.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `PATCH /v3/roles/{id}`.
#[derive(Deserialize, JsonSchema)]
struct UpdateRoleRequest {
    role: RoleChanges,
}

#[derive(Deserialize, JsonSchema)]
struct RoleChanges {
    name: Option<String>,
    /// Accepted only when it is the role's own domain.
    domain_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    description: Option<Option<String>>,
    options: Option<Map<String, Value>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/roles", get(list_roles).post(create_role))
        .route(
            "/roles/{id}",
            get(show_role).patch(update_role).delete(delete_role),
        )
        .route("/roles/{id}/implies", get(list_implied_roles))
        .route(
            "/roles/{id}/implies/{implied}",
            get(show_implied_role)
                .put(create_implied_role)
                .delete(delete_implied_role),
        )
        .route("/role_inferences", get(list_role_inferences))
}

pub fn role_view(svc: &IdentityService, r: &Role) -> Value {
    with_extra(
        json!({
            "id": r.id,
            "name": r.name,
            "domain_id": r.domain(),
            "description": r.description,
            "options": if r.options.is_object() { r.options.clone() } else { json!({}) },
            "links": links(svc, &format!("roles/{}", r.id)),
        }),
        &r.extra,
    )
}

fn role_ref(svc: &IdentityService, r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "links": links(svc, &format!("roles/{}", r.id))})
}

pub async fn get_role(svc: &IdentityService, id: &str) -> Result<Role> {
    store::roles::get(&svc.db, id)
        .await?
        .ok_or_else(|| Error::not_found("role", id))
}

async fn list_roles(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_roles", json!({}))?;
    let domain = q
        .get("domain_id")
        .cloned()
        .unwrap_or_else(|| NULL_DOMAIN.to_owned());
    let views: Vec<Value> = store::roles::list(&svc.db)
        .await?
        .iter()
        .filter(|r| r.domain_id == domain)
        .filter(|r| q.get("name").is_none_or(|n| &r.name == n))
        .map(|r| role_view(&svc, r))
        .collect();
    Ok(ok(
        json!({"roles": views, "links": list_links(&svc, "roles")}),
    ))
}

async fn create_role(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(CreateRoleRequest { role: new }): Json<CreateRoleRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_role", json!({}))?;
    let name = checked_name(new.name, "role", 255)?;
    let domain_id = new.domain_id;
    if let Some(d) = &domain_id {
        svc.domain(d).await.map_err(|_| {
            Error::BadRequest(format!(
                "Invalid input for field 'role.domain_id': domain {d} does not exist."
            ))
        })?;
    }
    let domain_id = domain_id.unwrap_or_else(|| NULL_DOMAIN.to_owned());
    if store::roles::list(&svc.db)
        .await?
        .iter()
        .any(|r| r.domain_id == domain_id && r.name.eq_ignore_ascii_case(&name))
    {
        return Err(Error::Conflict(format!(
            "Conflict occurred attempting to store role - Duplicate entry found with name {name}."
        )));
    }
    let role = Role {
        id: new_id(),
        name,
        domain_id,
        description: new.description,
        options: Value::Object(new.options.unwrap_or_default()),
        extra: extra_of(&new.extra, &[], json!({})),
    };
    store::roles::insert(&svc.db, &role).await?;
    Ok(created(json!({"role": role_view(&svc, &role)})))
}

async fn show_role(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_role", json!({}))?;
    let r = get_role(&svc, &id).await?;
    Ok(ok(json!({"role": role_view(&svc, &r)})))
}

async fn update_role(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(UpdateRoleRequest { role: changes }): Json<UpdateRoleRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_role", json!({}))?;
    let mut r = get_role(&svc, &id).await?;
    if let Some(d) = changes.domain_id {
        if Some(d.as_str()) != r.domain() {
            return Err(Error::BadRequest(
                "Invalid input for field 'role.domain_id': it cannot be changed.".into(),
            ));
        }
    }
    if let Some(n) = changes.name {
        let n = checked_name(n, "role", 255)?;
        if !n.eq_ignore_ascii_case(&r.name)
            && store::roles::list(&svc.db)
                .await?
                .iter()
                .any(|x| x.domain_id == r.domain_id && x.name.eq_ignore_ascii_case(&n))
        {
            return Err(Error::Conflict(format!(
                "Conflict occurred attempting to store role - Duplicate entry found with name {n}."
            )));
        }
        r.name = n;
    }
    if let Some(description) = changes.description {
        r.description = description;
    }
    if let Some(o) = changes.options {
        r.options = Value::Object(o);
    }
    r.extra = extra_of(&changes.extra, &[], r.extra.clone());
    store::roles::update(&svc.db, &r).await?;
    // Tokens carry role names, which policies match: a rename takes effect now.
    svc.revoke(RevocationEvent {
        role_id: Some(r.id.clone()),
        ..Default::default()
    })
    .await?;
    Ok(ok(json!({"role": role_view(&svc, &r)})))
}

async fn delete_role(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_role", json!({}))?;
    get_role(&svc, &id).await?;
    store::roles::delete(&svc.db, &id).await?;
    svc.revoke(RevocationEvent {
        role_id: Some(id),
        ..Default::default()
    })
    .await?;
    Ok(no_content())
}

// ----- inference rules -----

async fn rule_pair(svc: &IdentityService, prior: &str, implied: &str) -> Result<(Role, Role)> {
    Ok((get_role(svc, prior).await?, get_role(svc, implied).await?))
}

async fn create_implied_role(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_implied_role", json!({}))?;
    let (p, i) = rule_pair(&svc, &prior, &implied).await?;
    if i.domain().is_some() && p.domain().is_none() {
        return Err(Error::Forbidden(
            "A global role cannot imply a domain-specific role.".into(),
        ));
    }
    if prior == implied {
        return Err(Error::Forbidden("A role cannot imply itself.".into()));
    }
    let rules = store::roles::list_implied(&svc.db).await?;
    // Refuse cycles: `implied` must not already (transitively) imply `prior`.
    let mut stack = vec![implied.clone()];
    let mut seen = std::collections::HashSet::new();
    while let Some(r) = stack.pop() {
        if r == prior {
            return Err(Error::Forbidden(format!(
                "Role {implied} already implies {prior}: the rule would be circular."
            )));
        }
        if seen.insert(r.clone()) {
            stack.extend(
                rules
                    .iter()
                    .filter(|(a, _)| a == &r)
                    .map(|(_, b)| b.clone()),
            );
        }
    }
    if !rules.iter().any(|(a, b)| a == &prior && b == &implied) {
        store::roles::add_implied(&svc.db, &prior, &implied).await?;
    }
    Ok(created(
        json!({"role_inference": {"prior_role": role_ref(&svc, &p), "implies": role_ref(&svc, &i)},
        "links": links(&svc, &format!("roles/{prior}/implies/{implied}"))}),
    ))
}

async fn show_implied_role(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    method: axum::http::Method,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_implied_role", json!({}))?;
    let (p, i) = rule_pair(&svc, &prior, &implied).await?;
    if !store::roles::list_implied(&svc.db)
        .await?
        .iter()
        .any(|(a, b)| a == &prior && b == &implied)
    {
        return Err(Error::NotFound(format!(
            "{prior} does not imply {implied}."
        )));
    }
    if method == axum::http::Method::HEAD {
        return Ok(no_content());
    }
    Ok(ok(
        json!({"role_inference": {"prior_role": role_ref(&svc, &p), "implies": role_ref(&svc, &i)},
        "links": links(&svc, &format!("roles/{prior}/implies/{implied}"))}),
    ))
}

async fn delete_implied_role(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_implied_role", json!({}))?;
    rule_pair(&svc, &prior, &implied).await?;
    if !store::roles::remove_implied(&svc.db, &prior, &implied).await? {
        return Err(Error::NotFound(format!(
            "{prior} does not imply {implied}."
        )));
    }
    // Tokens carry expanded roles: those holding the prior role lose the implied one now.
    svc.revoke(RevocationEvent {
        role_id: Some(prior),
        ..Default::default()
    })
    .await?;
    Ok(no_content())
}

async fn list_implied_roles(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(prior): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_implied_roles", json!({}))?;
    let p = get_role(&svc, &prior).await?;
    let mut implies = Vec::new();
    for (_, b) in store::roles::list_implied(&svc.db)
        .await?
        .iter()
        .filter(|(a, _)| a == &prior)
    {
        if let Ok(r) = get_role(&svc, b).await {
            implies.push(role_ref(&svc, &r));
        }
    }
    Ok(ok(
        json!({"role_inference": {"prior_role": role_ref(&svc, &p), "implies": implies},
        "links": links(&svc, &format!("roles/{prior}/implies"))}),
    ))
}

async fn list_role_inferences(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_role_inference_rules", json!({}))?;
    let roles: HashMap<String, Role> = store::roles::list(&svc.db)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut grouped: Vec<(String, Vec<Value>)> = Vec::new();
    for (a, b) in store::roles::list_implied(&svc.db).await? {
        let (Some(pa), Some(pb)) = (roles.get(&a), roles.get(&b)) else {
            continue;
        };
        match grouped.iter_mut().find(|(id, _)| id == &a) {
            Some((_, v)) => v.push(role_ref(&svc, pb)),
            None => grouped.push((a.clone(), vec![role_ref(&svc, pb)])),
        }
        let _ = pa;
    }
    let rules: Vec<Value> = grouped
        .into_iter()
        .map(|(a, implies)| json!({"prior_role": role_ref(&svc, &roles[&a]), "implies": implies}))
        .collect();
    Ok(ok(
        json!({"role_inferences": rules, "links": list_links(&svc, "role_inferences")}),
    ))
}
