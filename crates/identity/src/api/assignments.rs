//! Role grants on projects, domains and the system (including OS-INHERIT
//! inherited grants) and `/v3/role_assignments`.

use super::*;
use crate::store::assignments::{Assignment, Kind, SYSTEM};
use crate::store::revocations::RevocationEvent;
use crate::store::{self};
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use ferrostack_core::auth::Authenticated;
use ferrostack_core::openapi::{get, ApiRouter};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/projects/{id}/{actor}/{actor_id}/roles",
            get(list_project_grants),
        )
        .route(
            "/projects/{id}/{actor}/{actor_id}/roles/{role_id}",
            get(project_grant).put(project_grant).delete(project_grant),
        )
        .route(
            "/domains/{id}/{actor}/{actor_id}/roles",
            get(list_domain_grants),
        )
        .route(
            "/domains/{id}/{actor}/{actor_id}/roles/{role_id}",
            get(domain_grant).put(domain_grant).delete(domain_grant),
        )
        .route("/system/{actor}/{actor_id}/roles", get(list_system_grants))
        .route(
            "/system/{actor}/{actor_id}/roles/{role_id}",
            get(system_grant).put(system_grant).delete(system_grant),
        )
        .route(
            "/OS-INHERIT/domains/{id}/{actor}/{actor_id}/roles/inherited_to_projects",
            get(list_inherited_domain_grants),
        )
        .route(
            "/OS-INHERIT/domains/{id}/{actor}/{actor_id}/roles/{role_id}/inherited_to_projects",
            get(inherited_domain_grant)
                .put(inherited_domain_grant)
                .delete(inherited_domain_grant),
        )
        .route(
            "/OS-INHERIT/projects/{id}/{actor}/{actor_id}/roles/{role_id}/inherited_to_projects",
            get(inherited_project_grant)
                .put(inherited_project_grant)
                .delete(inherited_project_grant),
        )
        .route("/role_assignments", get(list_assignments))
}

/// The `{target}/{actor}/{actor_id}` part of a grant URL.
struct GrantPath {
    target: Target,
    target_id: String,
    actor: String,
    actor_id: String,
    inherited: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Project,
    Domain,
    System,
}

/// Resolve the actor path segment and check the actor and target exist.
async fn resolve(
    svc: &Svc,
    target: Target,
    target_id: &str,
    actor: &str,
    actor_id: &str,
) -> Result<Kind> {
    let group = match actor {
        "users" => false,
        "groups" => true,
        _ => return Err(Error::NotFound("The resource could not be found.".into())),
    };
    if group {
        store::groups::get(&svc.db, actor_id)
            .await?
            .ok_or_else(|| Error::not_found("group", actor_id))?;
    } else {
        svc.user(actor_id).await?;
    }
    match target {
        Target::Project => {
            svc.project(target_id).await?;
        }
        Target::Domain => {
            svc.domain(target_id).await?;
        }
        Target::System => {}
    }
    Ok(match (target, group) {
        (Target::Project, false) => Kind::UserProject,
        (Target::Project, true) => Kind::GroupProject,
        (Target::Domain, false) => Kind::UserDomain,
        (Target::Domain, true) => Kind::GroupDomain,
        (Target::System, false) => Kind::UserSystem,
        (Target::System, true) => Kind::GroupSystem,
    })
}

async fn grant_op(
    svc: Svc,
    ctx: &AuthContext,
    method: Method,
    g: GrantPath,
    role_id: String,
) -> Result<Response> {
    let GrantPath {
        target,
        target_id,
        actor,
        actor_id,
        inherited,
    } = g;
    let action = match method {
        Method::PUT => "identity:create_grant",
        Method::DELETE => "identity:revoke_grant",
        _ => "identity:check_grant",
    };
    enforce(&svc, ctx, action, json!({}))?;
    let kind = resolve(&svc, target, &target_id, &actor, &actor_id).await?;
    let role = super::roles::get_role(&svc, &role_id).await?;
    if let Some(d) = role.domain() {
        let target_domain = match target {
            Target::Project => svc.project(&target_id).await?.domain_id,
            Target::Domain => target_id.clone(),
            Target::System => String::new(),
        };
        if d != target_domain {
            return Err(Error::Forbidden(format!(
                "Domain-specific role {role_id} can only be granted within domain {d}."
            )));
        }
    }
    let a = Assignment {
        kind,
        actor_id: actor_id.clone(),
        target_id: target_id.clone(),
        role_id,
        inherited,
    };
    match method {
        Method::PUT => {
            store::assignments::grant(&svc.db, &a).await?;
            Ok(no_content())
        }
        Method::DELETE => {
            if !store::assignments::revoke(&svc.db, &a).await? {
                return Err(Error::NotFound(format!("Could not find role assignment with role: {}, user or group: {actor_id}, project, domain, or system: {target_id}.", a.role_id)));
            }
            let users: Vec<String> = if kind.is_group() {
                store::users::list_in_group(&svc.db, &actor_id)
                    .await?
                    .into_iter()
                    .map(|u| u.id)
                    .collect()
            } else {
                vec![actor_id]
            };
            for u in users {
                let project_id =
                    (target == Target::Project && !inherited).then(|| target_id.clone());
                svc.revoke(RevocationEvent {
                    user_id: Some(u),
                    project_id,
                    ..Default::default()
                })
                .await?;
            }
            Ok(no_content())
        }
        _ => {
            if store::assignments::exists(&svc.db, &a).await? {
                Ok(no_content())
            } else {
                Err(Error::NotFound(format!(
                    "Could not find role assignment with role: {}, user or group: {actor_id}, project, domain, or system: {target_id}.",
                    a.role_id
                )))
            }
        }
    }
}

async fn project_grant(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    method: Method,
    Path((id, actor, actor_id, role_id)): Path<(String, String, String, String)>,
) -> Result<Response> {
    grant_op(
        svc,
        &ctx,
        method,
        GrantPath {
            target: Target::Project,
            target_id: id,
            actor,
            actor_id,
            inherited: false,
        },
        role_id,
    )
    .await
}

async fn domain_grant(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    method: Method,
    Path((id, actor, actor_id, role_id)): Path<(String, String, String, String)>,
) -> Result<Response> {
    grant_op(
        svc,
        &ctx,
        method,
        GrantPath {
            target: Target::Domain,
            target_id: id,
            actor,
            actor_id,
            inherited: false,
        },
        role_id,
    )
    .await
}

async fn system_grant(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    method: Method,
    Path((actor, actor_id, role_id)): Path<(String, String, String)>,
) -> Result<Response> {
    grant_op(
        svc,
        &ctx,
        method,
        GrantPath {
            target: Target::System,
            target_id: SYSTEM.into(),
            actor,
            actor_id,
            inherited: false,
        },
        role_id,
    )
    .await
}

async fn inherited_domain_grant(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    method: Method,
    Path((id, actor, actor_id, role_id)): Path<(String, String, String, String)>,
) -> Result<Response> {
    grant_op(
        svc,
        &ctx,
        method,
        GrantPath {
            target: Target::Domain,
            target_id: id,
            actor,
            actor_id,
            inherited: true,
        },
        role_id,
    )
    .await
}

async fn inherited_project_grant(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    method: Method,
    Path((id, actor, actor_id, role_id)): Path<(String, String, String, String)>,
) -> Result<Response> {
    grant_op(
        svc,
        &ctx,
        method,
        GrantPath {
            target: Target::Project,
            target_id: id,
            actor,
            actor_id,
            inherited: true,
        },
        role_id,
    )
    .await
}

async fn list_grants(svc: Svc, ctx: &AuthContext, g: GrantPath, path: String) -> Result<Response> {
    let GrantPath {
        target,
        target_id,
        actor,
        actor_id,
        inherited,
    } = g;
    enforce(&svc, ctx, "identity:list_grants", json!({}))?;
    let kind = resolve(&svc, target, &target_id, &actor, &actor_id).await?;
    let mut views = Vec::new();
    for a in store::assignments::list(&svc.db).await? {
        if a.kind == kind
            && a.actor_id == actor_id
            && a.target_id == target_id
            && a.inherited == inherited
        {
            if let Ok(r) = super::roles::get_role(&svc, &a.role_id).await {
                views.push(super::roles::role_view(&svc, &r));
            }
        }
    }
    Ok(ok(
        json!({"roles": views, "links": list_links(&svc, &path)}),
    ))
}

async fn list_project_grants(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, actor, actor_id)): Path<(String, String, String)>,
) -> Result<Response> {
    let path = format!("projects/{id}/{actor}/{actor_id}/roles");
    list_grants(
        svc,
        &ctx,
        GrantPath {
            target: Target::Project,
            target_id: id,
            actor,
            actor_id,
            inherited: false,
        },
        path,
    )
    .await
}

async fn list_domain_grants(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, actor, actor_id)): Path<(String, String, String)>,
) -> Result<Response> {
    let path = format!("domains/{id}/{actor}/{actor_id}/roles");
    list_grants(
        svc,
        &ctx,
        GrantPath {
            target: Target::Domain,
            target_id: id,
            actor,
            actor_id,
            inherited: false,
        },
        path,
    )
    .await
}

async fn list_inherited_domain_grants(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, actor, actor_id)): Path<(String, String, String)>,
) -> Result<Response> {
    let path = format!("OS-INHERIT/domains/{id}/{actor}/{actor_id}/roles/inherited_to_projects");
    list_grants(
        svc,
        &ctx,
        GrantPath {
            target: Target::Domain,
            target_id: id,
            actor,
            actor_id,
            inherited: true,
        },
        path,
    )
    .await
}

async fn list_system_grants(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((actor, actor_id)): Path<(String, String)>,
) -> Result<Response> {
    let path = format!("system/{actor}/{actor_id}/roles");
    list_grants(
        svc,
        &ctx,
        GrantPath {
            target: Target::System,
            target_id: SYSTEM.into(),
            actor,
            actor_id,
            inherited: false,
        },
        path,
    )
    .await
}

// ----- /v3/role_assignments -----

/// One row of the listing, after effective expansion.
#[derive(Clone, Debug)]
struct Row {
    role_id: String,
    user_id: Option<String>,
    group_id: Option<String>,
    project_id: Option<String>,
    domain_id: Option<String>,
    system: bool,
    inherited: bool,
    assignment_link: String,
    membership_link: Option<String>,
    prior_role_link: Option<String>,
}

fn row_of(svc: &IdentityService, a: &Assignment) -> Row {
    let (user_id, group_id) = if a.kind.is_group() {
        (None, Some(a.actor_id.clone()))
    } else {
        (Some(a.actor_id.clone()), None)
    };
    let actor_seg = if a.kind.is_group() { "groups" } else { "users" };
    let (project_id, domain_id, system, target_path) = match a.kind {
        Kind::UserProject | Kind::GroupProject => (
            Some(a.target_id.clone()),
            None,
            false,
            format!("projects/{}", a.target_id),
        ),
        Kind::UserDomain | Kind::GroupDomain => (
            None,
            Some(a.target_id.clone()),
            false,
            format!("domains/{}", a.target_id),
        ),
        Kind::UserSystem | Kind::GroupSystem => (None, None, true, "system".to_owned()),
    };
    let base = base_url(svc);
    let assignment_link = if a.inherited {
        format!(
            "{base}/OS-INHERIT/{target_path}/{actor_seg}/{}/roles/{}/inherited_to_projects",
            a.actor_id, a.role_id
        )
    } else {
        format!(
            "{base}/{target_path}/{actor_seg}/{}/roles/{}",
            a.actor_id, a.role_id
        )
    };
    Row {
        role_id: a.role_id.clone(),
        user_id,
        group_id,
        project_id,
        domain_id,
        system,
        inherited: a.inherited,
        assignment_link,
        membership_link: None,
        prior_role_link: None,
    }
}

async fn list_assignments(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    q: Query,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:list_role_assignments", json!({}))?;
    let effective = q.contains_key("effective");
    let include_names = q.contains_key("include_names");
    let mut rows: Vec<Row> = store::assignments::list(&svc.db)
        .await?
        .iter()
        .map(|a| row_of(&svc, a))
        .collect();

    if effective {
        let projects = store::projects::list(&svc.db, false).await?;
        let base = base_url(&svc);
        let mut out = Vec::new();
        for r in rows {
            // Groups become their members.
            let users: Vec<(String, Option<String>)> = match (&r.user_id, &r.group_id) {
                (Some(u), _) => vec![(u.clone(), None)],
                (None, Some(g)) => store::users::list_in_group(&svc.db, g)
                    .await?
                    .into_iter()
                    .map(|u| {
                        let link = format!("{base}/groups/{g}/users/{}", u.id);
                        (u.id, Some(link))
                    })
                    .collect(),
                _ => vec![],
            };
            // Inherited grants become grants on the projects below the target.
            let targets: Vec<Row> = if r.inherited {
                let below: Vec<&store::projects::Project> = match (&r.domain_id, &r.project_id) {
                    (Some(d), _) => projects.iter().filter(|p| &p.domain_id == d).collect(),
                    (_, Some(pid)) => {
                        let mut acc = Vec::new();
                        for p in &projects {
                            if svc.ancestors(p).await?.iter().any(|a| &a.id == pid) {
                                acc.push(p);
                            }
                        }
                        acc
                    }
                    _ => vec![],
                };
                below
                    .into_iter()
                    .map(|p| Row {
                        project_id: Some(p.id.clone()),
                        domain_id: None,
                        inherited: false,
                        ..r.clone()
                    })
                    .collect()
            } else {
                vec![r.clone()]
            };
            for t in targets {
                for (u, membership) in &users {
                    out.push(Row {
                        user_id: Some(u.clone()),
                        group_id: None,
                        membership_link: membership.clone(),
                        ..t.clone()
                    });
                }
            }
        }
        // Implied roles.
        let rules = store::roles::list_implied(&svc.db).await?;
        let mut i = 0;
        while i < out.len() {
            let r = out[i].clone();
            for (_, implied) in rules.iter().filter(|(p, _)| p == &r.role_id) {
                if !out.iter().any(|x| {
                    x.role_id == *implied
                        && x.user_id == r.user_id
                        && x.project_id == r.project_id
                        && x.domain_id == r.domain_id
                        && x.system == r.system
                }) {
                    out.push(Row {
                        role_id: implied.clone(),
                        prior_role_link: Some(format!(
                            "{base}/roles/{}/implies/{implied}",
                            r.role_id
                        )),
                        ..r.clone()
                    });
                }
            }
            i += 1;
        }
        // Domain-specific roles never reach a token: only what they imply does.
        let domain_roles: std::collections::HashSet<String> = store::roles::list(&svc.db)
            .await?
            .into_iter()
            .filter(|r| r.domain().is_some())
            .map(|r| r.id)
            .collect();
        out.retain(|r| !domain_roles.contains(&r.role_id));
        rows = out;
    }

    // Filters.
    let inherited_filter = q.get("scope.OS-INHERIT:inherited_to").is_some();
    let user_filter = q.get("user.id");
    let group_filter = q.get("group.id");
    rows.retain(|r| {
        q.get("role.id").is_none_or(|v| &r.role_id == v)
            && user_filter.is_none_or(|v| r.user_id.as_ref() == Some(v))
            && group_filter.is_none_or(|v| r.group_id.as_ref() == Some(v))
            && q.get("scope.project.id")
                .is_none_or(|v| r.project_id.as_ref() == Some(v))
            && q.get("scope.domain.id")
                .is_none_or(|v| r.domain_id.as_ref() == Some(v))
            && q.get("scope.system").is_none_or(|_| r.system)
            && (!inherited_filter || r.inherited)
    });

    // Views.
    let mut role_names: HashMap<String, Value> = HashMap::new();
    let mut names: HashMap<String, Value> = HashMap::new();
    if include_names {
        for r in store::roles::list(&svc.db).await? {
            let mut v = json!({"id": r.id, "name": r.name});
            if let Some(d) = r.domain() {
                if let Ok(dom) = svc.domain(d).await {
                    v["domain"] = json!({"id": dom.id, "name": dom.name});
                }
            }
            role_names.insert(r.id.clone(), v);
        }
        let domains: HashMap<String, String> = store::projects::list(&svc.db, true)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
        let dom =
            |id: &str| json!({"id": id, "name": domains.get(id).cloned().unwrap_or_default()});
        for u in store::users::list(&svc.db).await? {
            names.insert(
                u.id.clone(),
                json!({"id": u.id, "name": u.name, "domain": dom(&u.domain_id)}),
            );
        }
        for g in store::groups::list(&svc.db).await? {
            names.insert(
                g.id.clone(),
                json!({"id": g.id, "name": g.name, "domain": dom(&g.domain_id)}),
            );
        }
        for p in store::projects::list(&svc.db, false).await? {
            names.insert(
                p.id.clone(),
                json!({"id": p.id, "name": p.name, "domain": dom(&p.domain_id)}),
            );
        }
        for (id, name) in &domains {
            names.insert(id.clone(), json!({"id": id, "name": name}));
        }
    }
    let named = |id: &str, map: &HashMap<String, Value>| {
        map.get(id).cloned().unwrap_or_else(|| json!({"id": id}))
    };
    let views: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut scope = if let Some(p) = &r.project_id {
                json!({"project": named(p, &names)})
            } else if let Some(d) = &r.domain_id {
                json!({"domain": named(d, &names)})
            } else {
                json!({"system": {"all": true}})
            };
            if r.inherited {
                scope["OS-INHERIT:inherited_to"] = json!("projects");
            }
            let mut links = json!({"assignment": r.assignment_link});
            if let Some(m) = &r.membership_link {
                links["membership"] = json!(m);
            }
            if let Some(p) = &r.prior_role_link {
                links["prior_role"] = json!(p);
            }
            let mut v =
                json!({"role": named(&r.role_id, &role_names), "scope": scope, "links": links});
            if let Some(u) = &r.user_id {
                v["user"] = named(u, &names);
            }
            if let Some(g) = &r.group_id {
                v["group"] = named(g, &names);
            }
            v
        })
        .collect();
    Ok(ok(
        json!({"role_assignments": views, "links": list_links(&svc, "role_assignments")}),
    ))
}
