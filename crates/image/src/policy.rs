//! Glance's default policies (glance/policies/*.py, secure RBAC), evaluated
//! by the shared engine `ferrostack_core::policy`, and the targets they are
//! evaluated on. Every authorization decision of the image API goes
//! through here; an operator's `[image] policy_file` replaces any rule.
//!
//! Targets are flat, as Glance's `ImageTarget`: `project_id` is the image's
//! owner, `member_id` the caller's project when it is a member of the
//! image, `visibility` the image's visibility.
//! The service still answers 404 for an image or namespace the caller may
//! not see before any rule, as Glance's database layer does.

use crate::store::images::Image;
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

const ADMIN_OR_PROJECT_MEMBER: &str = "role:admin or (role:member and project_id:%(project_id)s)";
const ADMIN_OR_PROJECT_READER: &str = "role:admin or (role:reader and project_id:%(project_id)s)";
const METADEF_READ: &str =
    "role:admin or (role:reader and (project_id:%(project_id)s or \"public\":%(visibility)s))";

/// Glance's rules, by name.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("default", ""),
    // images
    (
        "add_image",
        "role:admin or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
    ),
    ("delete_image", ADMIN_OR_PROJECT_MEMBER),
    (
        "get_image",
        "role:admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s \
         or \"community\":%(visibility)s or \"public\":%(visibility)s or \"shared\":%(visibility)s))",
    ),
    ("get_images", ADMIN_OR_PROJECT_READER),
    ("modify_image", ADMIN_OR_PROJECT_MEMBER),
    ("publicize_image", "role:admin"),
    ("communitize_image", ADMIN_OR_PROJECT_MEMBER),
    (
        "download_image",
        "role:admin or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s \
         or \"community\":%(visibility)s or \"public\":%(visibility)s or \"shared\":%(visibility)s))",
    ),
    ("upload_image", ADMIN_OR_PROJECT_MEMBER),
    ("delete_image_location", "role:admin"),
    ("get_image_location", ADMIN_OR_PROJECT_READER),
    ("set_image_location", ADMIN_OR_PROJECT_MEMBER),
    ("deactivate", ADMIN_OR_PROJECT_MEMBER),
    ("reactivate", ADMIN_OR_PROJECT_MEMBER),
    ("copy_image", "role:admin"),
    ("manage_image_cache", "role:admin"),
    // members
    ("add_member", ADMIN_OR_PROJECT_MEMBER),
    ("delete_member", ADMIN_OR_PROJECT_MEMBER),
    (
        "get_member",
        "role:admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
    ),
    (
        "get_members",
        "role:admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
    ),
    (
        "modify_member",
        "role:admin or (role:member and project_id:%(member_id)s)",
    ),
    // tasks
    ("get_task", "rule:default"),
    ("get_tasks", "rule:default"),
    ("add_task", "rule:default"),
    ("modify_task", "rule:default"),
    ("tasks_api_access", "role:admin"),
    // metadata definitions
    ("metadef_default", ""),
    ("metadef_admin", "role:admin"),
    ("get_metadef_namespace", METADEF_READ),
    ("get_metadef_namespaces", ADMIN_OR_PROJECT_READER),
    ("modify_metadef_namespace", "rule:metadef_admin"),
    ("add_metadef_namespace", "rule:metadef_admin"),
    ("delete_metadef_namespace", "rule:metadef_admin"),
    ("get_metadef_object", METADEF_READ),
    ("get_metadef_objects", METADEF_READ),
    ("modify_metadef_object", "rule:metadef_admin"),
    ("add_metadef_object", "rule:metadef_admin"),
    ("delete_metadef_object", "rule:metadef_admin"),
    ("list_metadef_resource_types", ADMIN_OR_PROJECT_READER),
    ("get_metadef_resource_type", METADEF_READ),
    (
        "add_metadef_resource_type_association",
        "rule:metadef_admin",
    ),
    (
        "remove_metadef_resource_type_association",
        "rule:metadef_admin",
    ),
    ("get_metadef_property", METADEF_READ),
    ("get_metadef_properties", METADEF_READ),
    ("modify_metadef_property", "rule:metadef_admin"),
    ("add_metadef_property", "rule:metadef_admin"),
    ("remove_metadef_property", "rule:metadef_admin"),
    ("get_metadef_tag", METADEF_READ),
    ("get_metadef_tags", METADEF_READ),
    ("modify_metadef_tag", "rule:metadef_admin"),
    ("add_metadef_tag", "rule:metadef_admin"),
    ("add_metadef_tags", "rule:metadef_admin"),
    ("delete_metadef_tag", "rule:metadef_admin"),
    ("delete_metadef_tags", "rule:metadef_admin"),
];

pub fn default_policy() -> Policy {
    Policy::new(DEFAULTS)
}

/// Glance's defaults with the operator's `[image] policy_file` (empty: none)
/// applied over them; a file that does not parse refuses start.
pub fn load(config: &Config) -> Result<Policy> {
    let file = &config.image.policy_file;
    let path = (!file.is_empty()).then(|| std::path::Path::new(file));
    default_policy().with_file(path).map_err(Error::Internal)
}

/// The target of a rule about an existing image. `member_id` is the
/// caller's project when that project is a member of the image.
pub fn image_target(img: &Image, member_id: Option<&str>) -> Value {
    json!({
        "id": img.id,
        "project_id": img.owner,
        "owner": img.owner,
        "member_id": member_id,
        "visibility": img.visibility,
        "status": img.status,
        "protected": img.protected,
    })
}

/// The target of a rule about the caller's own project (listing, creating).
pub fn project_target(project_id: Option<&str>) -> Value {
    json!({"project_id": project_id})
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_core::auth::{AuthContext, NamedRef};

    fn ctx(roles: &[&str], project: &str) -> AuthContext {
        AuthContext {
            user_id: "u".into(),
            project_id: Some(project.into()),
            roles: roles
                .iter()
                .map(|r| NamedRef {
                    id: r.to_string(),
                    name: r.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn glance_personas() {
        let p = default_policy();
        let own = json!({"project_id": "p1", "owner": "p1", "member_id": null});
        let other = json!({"project_id": "p2", "owner": "p2", "member_id": null});
        let shared_with_p1 = json!({"project_id": "p2", "member_id": "p1"});
        let reader = ctx(&["reader"], "p1");
        let member = ctx(&["member", "reader"], "p1");
        let admin = ctx(&["admin", "member", "reader"], "p9");
        assert!(!p.check("add_image", &reader, &own));
        assert!(p.check("add_image", &member, &own));
        assert!(!p.check(
            "add_image",
            &member,
            &json!({"project_id": "p1", "owner": "p2"})
        ));
        assert!(p.check("add_image", &admin, &other));
        for action in ["modify_image", "delete_image", "upload_image", "deactivate"] {
            assert!(!p.check(action, &reader, &own), "{action}");
            assert!(p.check(action, &member, &own), "{action}");
            assert!(!p.check(action, &member, &other), "{action}");
            assert!(p.check(action, &admin, &other), "{action}");
        }
        assert!(p.check("get_image", &reader, &own));
        assert!(p.check("get_images", &reader, &project_target(Some("p1"))));
        assert!(!p.check("publicize_image", &member, &own));
        assert!(p.check("communitize_image", &member, &own));
        assert!(p.check("get_members", &reader, &shared_with_p1));
        assert!(p.check("modify_member", &member, &shared_with_p1));
        assert!(!p.check("modify_member", &member, &other));
        assert!(!p.check("tasks_api_access", &member, &json!({})));
        assert!(p.check("get_tasks", &reader, &json!({})));
        assert!(!p.check("add_metadef_namespace", &member, &json!({})));
        assert!(p.check("context_is_admin", &admin, &json!({})));
        assert!(!p.check("context_is_admin", &member, &json!({})));
    }
}
