//! The user and group views, shared by the users and groups APIs (a user's
//! groups, a group's users) so that neither module reaches into the other.

use super::{links, with_extra};
use crate::service::IdentityService;
use crate::store::groups::Group;
use crate::store::users::User;
use serde_json::{json, Value};

pub fn user_view(svc: &IdentityService, u: &User) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": u.password_expires_at,
        "options": if u.options.is_object() { u.options.clone() } else { json!({}) },
        "links": links(svc, &format!("users/{}", u.id)),
    });
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    with_extra(v, &u.extra)
}

pub fn group_view(svc: &IdentityService, g: &Group) -> Value {
    with_extra(
        json!({
            "id": g.id,
            "name": g.name,
            "domain_id": g.domain_id,
            "description": g.description,
            "links": links(svc, &format!("groups/{}", g.id)),
        }),
        &g.extra,
    )
}
