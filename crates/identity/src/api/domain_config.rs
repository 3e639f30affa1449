//! Domain-specific configuration (`/v3/domains/{id}/config`): per-domain
//! overrides of the `identity` and `ldap` option groups, with the defaults
//! readable at `/v3/domains/config/default`.

use super::*;
use crate::store::documents::{self, Document, Table};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/domains/config/default", get(show_default_config))
        .route(
            "/domains/config/{group}/default",
            get(show_default_config_group),
        )
        .route(
            "/domains/config/{group}/{option}/default",
            get(show_default_config_option),
        )
        .route(
            "/domains/{id}/config",
            get(show_domain_config)
                .put(create_domain_config)
                .patch(update_domain_config)
                .delete(delete_domain_config),
        )
        .route(
            "/domains/{id}/config/{group}",
            get(show_domain_config_group)
                .patch(update_domain_config_group)
                .delete(delete_domain_config_group),
        )
        .route(
            "/domains/{id}/config/{group}/{option}",
            get(show_domain_config_option)
                .patch(update_domain_config_option)
                .delete(delete_domain_config_option),
        )
}

/// The options a domain may override, with their defaults.
fn defaults() -> Value {
    json!({
        "identity": {"driver": "sql", "list_limit": null},
        "ldap": {
            "url": "ldap://localhost", "user": null, "suffix": "cn=example,cn=com",
            "query_scope": "one", "page_size": 0, "alias_dereferencing": "default",
            "user_tree_dn": null, "user_filter": null, "user_objectclass": "inetOrgPerson",
            "user_id_attribute": "cn", "user_name_attribute": "sn", "user_enabled_attribute": "enabled",
            "group_tree_dn": null, "group_filter": null, "group_objectclass": "groupOfNames",
            "group_id_attribute": "cn", "group_name_attribute": "ou", "group_member_attribute": "member",
            "use_tls": false, "tls_req_cert": "demand"
        }
    })
}

fn check_group(group: &str) -> Result<()> {
    if matches!(group, "identity" | "ldap") {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "Invalid domain specific configuration: group {group} is not supported."
        )))
    }
}

fn check_option(group: &str, option: &str) -> Result<()> {
    check_group(group)?;
    if defaults()[group].get(option).is_some() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("Invalid domain specific configuration: option {option} in group {group} is not supported.")))
    }
}

/// Validate a `{group: {option: value}}` document.
fn validate(config: &Value) -> Result<()> {
    let groups = config.as_object().ok_or_else(|| {
        Error::BadRequest("Invalid input for field 'config': must be an object.".into())
    })?;
    if groups.is_empty() {
        return Err(Error::BadRequest(
            "Invalid input for field 'config': it is empty.".into(),
        ));
    }
    for (g, opts) in groups {
        check_group(g)?;
        let opts = opts.as_object().ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid input for field 'config.{g}': must be an object."
            ))
        })?;
        for o in opts.keys() {
            check_option(g, o)?;
        }
    }
    Ok(())
}

/// `{"config": {group: {option: value}}}`: a whole config, or one group of it.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ConfigRequest {
    /// Groups (`identity`, `ldap`) of the options a domain overrides.
    // A Value: option values are the driver's to read, passed on as given.
    #[schemars(schema_with = "config_groups_schema")]
    config: Value,
}

/// `{"config": {option: value}}` of `PATCH …/config/{group}/{option}`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ConfigOptionRequest {
    /// The option the path names, with its new value.
    // Free-form values, as in `ConfigRequest`.
    config: Map<String, Value>,
}

/// What [`validate`] accepts, as a schema: the groups and options of
/// [`defaults`], each option any JSON value.
fn config_groups_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let groups: Map<String, Value> = defaults()
        .as_object()
        .expect("defaults are groups")
        .iter()
        .map(|(group, options)| {
            let options: Map<String, Value> = options
                .as_object()
                .expect("a group is options")
                .keys()
                .map(|option| (option.clone(), json!({})))
                .collect();
            let group_schema =
                json!({"type": "object", "properties": options, "additionalProperties": false});
            (group.clone(), group_schema)
        })
        .collect();
    schemars::Schema::try_from(json!({
        "type": "object",
        "minProperties": 1,
        "properties": groups,
        "additionalProperties": false,
    }))
    .expect("an object is a schema")
}

async fn load(svc: &IdentityService, domain_id: &str) -> Result<Document> {
    svc.domain(domain_id).await?;
    documents::get(&svc.db, Table::DomainConfigs, domain_id)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "Could not find domain config for domain {domain_id}."
            ))
        })
}

async fn save(svc: &IdentityService, domain_id: &str, config: Value) -> Result<()> {
    documents::put(
        &svc.db,
        Table::DomainConfigs,
        &Document {
            id: domain_id.into(),
            owner_id: domain_id.into(),
            body: config,
        },
    )
    .await
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (g, opts) in b {
            let entry = a.entry(g.clone()).or_insert_with(|| json!({}));
            if let (Some(e), Some(o)) = (entry.as_object_mut(), opts.as_object()) {
                for (k, v) in o {
                    e.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

async fn show_default_config(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    enforce(
        &svc,
        &ctx,
        "identity:get_security_compliance_domain_config",
        json!({}),
    )?;
    Ok(ok(json!({"config": defaults()})))
}

async fn show_default_config_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(group): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_domain_config_default", json!({}))?;
    check_group(&group)?;
    Ok(ok(json!({"config": {group.clone(): defaults()[&group]}})))
}

async fn show_default_config_option(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((group, option)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_domain_config_default", json!({}))?;
    check_option(&group, &option)?;
    Ok(ok(
        json!({"config": {option.clone(): defaults()[&group][&option]}}),
    ))
}

async fn create_domain_config(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(ConfigRequest { config }): Json<ConfigRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:create_domain_config", json!({}))?;
    svc.domain(&id).await?;
    validate(&config)?;
    let existed = documents::get(&svc.db, Table::DomainConfigs, &id)
        .await?
        .is_some();
    save(&svc, &id, config.clone()).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(json!({"config": config}))).into_response())
}

async fn show_domain_config(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_domain_config", json!({}))?;
    let d = load(&svc, &id).await?;
    Ok(ok(json!({"config": d.body})))
}

async fn update_domain_config(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(ConfigRequest { config }): Json<ConfigRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_domain_config", json!({}))?;
    let patch = &config;
    validate(patch)?;
    let mut d = load(&svc, &id).await?;
    merge(&mut d.body, patch);
    save(&svc, &id, d.body.clone()).await?;
    Ok(ok(json!({"config": d.body})))
}

async fn delete_domain_config(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_domain_config", json!({}))?;
    load(&svc, &id).await?;
    documents::delete(&svc.db, Table::DomainConfigs, &id).await?;
    Ok(no_content())
}

async fn show_domain_config_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, group)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_domain_config", json!({}))?;
    check_group(&group)?;
    let d = load(&svc, &id).await?;
    let g = d.body.get(&group).cloned().ok_or_else(|| {
        Error::NotFound(format!(
            "Could not find group {group} in the config of domain {id}."
        ))
    })?;
    Ok(ok(json!({"config": {group: g}})))
}

async fn update_domain_config_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, group)): Path<(String, String)>,
    Json(ConfigRequest { config }): Json<ConfigRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_domain_config", json!({}))?;
    check_group(&group)?;
    let patch = &config;
    validate(patch)?;
    if patch
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k != &group))
    {
        return Err(Error::BadRequest(format!(
            "Invalid input for field 'config': only group {group} may be updated here."
        )));
    }
    let mut d = load(&svc, &id).await?;
    if d.body.get(&group).is_none() {
        return Err(Error::NotFound(format!(
            "Could not find group {group} in the config of domain {id}."
        )));
    }
    merge(&mut d.body, patch);
    save(&svc, &id, d.body.clone()).await?;
    Ok(ok(json!({"config": d.body})))
}

async fn delete_domain_config_group(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, group)): Path<(String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_domain_config", json!({}))?;
    check_group(&group)?;
    let mut d = load(&svc, &id).await?;
    if d.body
        .as_object_mut()
        .and_then(|o| o.remove(&group))
        .is_none()
    {
        return Err(Error::NotFound(format!(
            "Could not find group {group} in the config of domain {id}."
        )));
    }
    save(&svc, &id, d.body).await?;
    Ok(no_content())
}

async fn show_domain_config_option(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, group, option)): Path<(String, String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:get_domain_config", json!({}))?;
    check_option(&group, &option)?;
    let d = load(&svc, &id).await?;
    let v = d
        .body
        .get(&group)
        .and_then(|g| g.get(&option))
        .cloned()
        .ok_or_else(|| {
            Error::NotFound(format!(
                "Could not find option {option} in group {group} of the config of domain {id}."
            ))
        })?;
    Ok(ok(json!({"config": {option: v}})))
}

async fn update_domain_config_option(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, group, option)): Path<(String, String, String)>,
    Json(ConfigOptionRequest { config }): Json<ConfigOptionRequest>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:update_domain_config", json!({}))?;
    check_option(&group, &option)?;
    let value = config.get(&option).cloned().ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid input for field 'config.{option}': required."
        ))
    })?;
    let mut d = load(&svc, &id).await?;
    let g = d
        .body
        .get_mut(&group)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "Could not find group {group} in the config of domain {id}."
            ))
        })?;
    g.insert(option, value);
    save(&svc, &id, d.body.clone()).await?;
    Ok(ok(json!({"config": d.body})))
}

async fn delete_domain_config_option(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((id, group, option)): Path<(String, String, String)>,
) -> Result<Response> {
    enforce(&svc, &ctx, "identity:delete_domain_config", json!({}))?;
    check_option(&group, &option)?;
    let mut d = load(&svc, &id).await?;
    let removed = d
        .body
        .get_mut(&group)
        .and_then(Value::as_object_mut)
        .and_then(|g| g.remove(&option));
    if removed.is_none() {
        return Err(Error::NotFound(format!(
            "Could not find option {option} in group {group} of the config of domain {id}."
        )));
    }
    save(&svc, &id, d.body).await?;
    Ok(no_content())
}
