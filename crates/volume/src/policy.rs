//! Cinder's default policies (cinder/policies/*.py, the secure-RBAC
//! defaults of 2023.2 onwards: project reader / member, and admin), for the
//! actions this service offers, evaluated by `ferrostack_core::policy`; an
//! operator's `[volume] policy_file` replaces any rule. The target of a
//! rule is the resource's project (`project_id`), as Cinder passes it.

use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

const READER: &str = "rule:project_reader_or_admin";
const MEMBER: &str = "rule:project_member_or_admin";
const ADMIN: &str = "rule:admin_api";

/// Cinder's rules, by name.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("admin_api", "rule:context_is_admin"),
    (
        "project_reader_api",
        "role:reader and project_id:%(project_id)s",
    ),
    (
        "project_member_api",
        "role:member and project_id:%(project_id)s",
    ),
    (
        "project_reader_or_admin",
        "rule:project_reader_api or rule:context_is_admin",
    ),
    (
        "project_member_or_admin",
        "rule:project_member_api or rule:context_is_admin",
    ),
    // volumes
    ("volume:create", MEMBER),
    ("volume:get", READER),
    ("volume:get_all", READER),
    ("volume:update", MEMBER),
    ("volume:delete", MEMBER),
    ("volume:extend", MEMBER),
    ("volume_extension:volume_admin_actions:reset_status", ADMIN),
    ("volume_extension:volume_admin_actions:force_delete", ADMIN),
    ("volume_extension:volume_tenant_attribute", ADMIN),
    ("volume_extension:volume_host_attribute", ADMIN),
    // volume metadata
    ("volume:get_volume_metadata", READER),
    ("volume:create_volume_metadata", MEMBER),
    ("volume:update_volume_metadata", MEMBER),
    ("volume:delete_volume_metadata", MEMBER),
    // volume types
    ("volume_extension:types_manage", ADMIN),
    ("volume_extension:type_get", READER),
    ("volume_extension:type_get_all", READER),
    ("volume_extension:access_types_extra_specs", ADMIN),
    ("volume_extension:types_extra_specs:index", READER),
    ("volume_extension:types_extra_specs:show", READER),
    ("volume_extension:types_extra_specs:create", ADMIN),
    ("volume_extension:types_extra_specs:update", ADMIN),
    ("volume_extension:types_extra_specs:delete", ADMIN),
    // quotas, limits
    ("volume_extension:quotas:show", READER),
    ("volume_extension:quotas:update", ADMIN),
    ("volume_extension:quotas:delete", ADMIN),
    ("limits_extension:used_limits", READER),
    // availability zones (Cinder does not check a rule; listed for operators)
    ("volume_extension:availability_zone_list", ""),
];

pub fn default_policy() -> Policy {
    Policy::new(DEFAULTS)
}

/// Cinder's defaults with the operator's `[volume] policy_file` (empty:
/// none) over them; a file that does not parse refuses start.
pub fn load(config: &Config) -> Result<Policy> {
    let file = &config.volume.policy_file;
    let path = (!file.is_empty()).then(|| std::path::Path::new(file));
    default_policy().with_file(path).map_err(Error::Internal)
}

/// The target of a rule about a resource of project `project_id`.
pub fn target(project_id: &str) -> Value {
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
    fn cinder_personas() {
        let p = default_policy();
        let own = target("p1");
        let other = target("p2");
        let reader = ctx(&["reader"], "p1");
        let member = ctx(&["member", "reader"], "p1");
        let admin = ctx(&["admin", "member", "reader"], "p9");
        for action in [
            "volume:get",
            "volume:get_all",
            "volume_extension:quotas:show",
        ] {
            assert!(p.check(action, &reader, &own), "{action}");
            assert!(!p.check(action, &reader, &other), "{action}");
            assert!(p.check(action, &admin, &other), "{action}");
        }
        for action in [
            "volume:create",
            "volume:delete",
            "volume:update_volume_metadata",
        ] {
            assert!(!p.check(action, &reader, &own), "{action}");
            assert!(p.check(action, &member, &own), "{action}");
            assert!(!p.check(action, &member, &other), "{action}");
            assert!(p.check(action, &admin, &other), "{action}");
        }
        for action in [
            "volume_extension:types_manage",
            "volume_extension:quotas:update",
            "volume_extension:volume_tenant_attribute",
        ] {
            assert!(!p.check(action, &member, &own), "{action}");
            assert!(p.check(action, &admin, &other), "{action}");
        }
    }
}
