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
    ("volume:reimage", MEMBER),
    ("volume:reimage_reserved", MEMBER),
    ("volume_extension:volume_admin_actions:reset_status", ADMIN),
    ("volume_extension:volume_admin_actions:force_delete", ADMIN),
    ("volume_extension:volume_tenant_attribute", READER),
    ("volume_extension:volume_host_attribute", ADMIN),
    ("volume_extension:volume_mig_status_attribute", ADMIN),
    ("volume_extension:volume_image_metadata:show", READER),
    ("volume_extension:volume_image_metadata:set", MEMBER),
    ("volume_extension:volume_image_metadata:remove", MEMBER),
    // attachments (3.27+) and the legacy attach actions
    ("volume:attachment_create", MEMBER),
    ("volume:attachment_update", MEMBER),
    ("volume:attachment_delete", MEMBER),
    ("volume:attachment_complete", MEMBER),
    ("volume:extend_attached_volume", MEMBER),
    ("volume_extension:volume_actions:reserve", MEMBER),
    ("volume_extension:volume_actions:unreserve", MEMBER),
    ("volume_extension:volume_actions:begin_detaching", MEMBER),
    ("volume_extension:volume_actions:roll_detaching", MEMBER),
    (
        "volume_extension:volume_actions:initialize_connection",
        MEMBER,
    ),
    (
        "volume_extension:volume_actions:terminate_connection",
        MEMBER,
    ),
    ("volume_extension:volume_actions:attach", MEMBER),
    ("volume_extension:volume_actions:detach", MEMBER),
    ("volume_extension:volume_admin_actions:force_detach", ADMIN),
    // services and pools
    ("volume_extension:services:index", ADMIN),
    ("scheduler_extension:scheduler_stats:get_pools", ADMIN),
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
    // snapshots
    ("volume:create_snapshot", MEMBER),
    ("volume:get_snapshot", READER),
    ("volume:get_all_snapshots", READER),
    ("volume:update_snapshot", MEMBER),
    ("volume:delete_snapshot", MEMBER),
    ("volume:get_snapshot_metadata", READER),
    ("volume:update_snapshot_metadata", MEMBER),
    ("volume:delete_snapshot_metadata", MEMBER),
    ("volume_extension:extended_snapshot_attributes", READER),
    (
        "volume_extension:snapshot_admin_actions:reset_status",
        ADMIN,
    ),
    (
        "volume_extension:snapshot_admin_actions:force_delete",
        ADMIN,
    ),
    // backups
    ("backup:create", MEMBER),
    ("backup:get", READER),
    ("backup:get_all", READER),
    ("backup:update", MEMBER),
    ("backup:delete", MEMBER),
    ("backup:restore", MEMBER),
    ("volume_extension:backup_admin_actions:reset_status", ADMIN),
    ("backup:export-import", ADMIN),
    // transfers
    ("volume:create_transfer", MEMBER),
    ("volume:get_transfer", READER),
    ("volume:get_all_transfers", READER),
    ("volume:delete_transfer", MEMBER),
    ("volume:accept_transfer", MEMBER),
    // volume actions on data
    ("volume:retype", MEMBER),
    ("volume:update_readonly_flag", MEMBER),
    ("volume_extension:volume_actions:upload_image", MEMBER),
    // type access
    ("volume_extension:volume_type_access", READER),
    (
        "volume_extension:volume_type_access:addProjectAccess",
        ADMIN,
    ),
    (
        "volume_extension:volume_type_access:removeProjectAccess",
        ADMIN,
    ),
    (
        "volume_extension:volume_type_access:get_all_for_type",
        ADMIN,
    ),
    // availability zones (Cinder does not check a rule; listed for operators)
    ("volume_extension:availability_zone_list", ""),
    ("volume_extension:quota_classes", ADMIN),
    ("volume_extension:quota_classes:update", ADMIN),
    ("volume_extension:services:update", ADMIN),
    ("volume_extension:capabilities", ADMIN),
    ("volume_extension:hosts", ADMIN),
    (
        "snapshot_extension:snapshot_actions:update_snapshot_status",
        MEMBER,
    ),
    ("message:get_all", READER),
    ("message:get", READER),
    ("message:delete", MEMBER),
    ("volume_extension:volume_type_encryption:create", ADMIN),
    ("volume_extension:volume_type_encryption:get", ADMIN),
    ("volume_extension:volume_type_encryption:update", ADMIN),
    ("volume_extension:volume_type_encryption:delete", ADMIN),
    // QoS specs
    ("volume_extension:qos_specs_manage:create", ADMIN),
    ("volume_extension:qos_specs_manage:get", ADMIN),
    ("volume_extension:qos_specs_manage:get_all", ADMIN),
    ("volume_extension:qos_specs_manage:update", ADMIN),
    ("volume_extension:qos_specs_manage:delete", ADMIN),
    // generic volume groups (listing group types checks no rule, as Cinder)
    ("group:group_types:create", ADMIN),
    ("group:group_types:update", ADMIN),
    ("group:group_types:delete", ADMIN),
    ("group:group_types_specs:get", ADMIN),
    ("group:group_types_specs:get_all", ADMIN),
    ("group:group_types_specs:create", ADMIN),
    ("group:group_types_specs:update", ADMIN),
    ("group:group_types_specs:delete", ADMIN),
    ("group:get", READER),
    ("group:get_all", READER),
    ("group:create", MEMBER),
    ("group:update", MEMBER),
    ("group:delete", MEMBER),
    ("group:reset_status", ADMIN),
    ("group:get_group_snapshot", READER),
    ("group:get_all_group_snapshots", READER),
    ("group:create_group_snapshot", MEMBER),
    ("group:delete_group_snapshot", MEMBER),
    ("group:reset_group_snapshot_status", ADMIN),
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
            "volume:attachment_create",
            "volume:attachment_complete",
            "volume:extend_attached_volume",
            "volume_extension:volume_actions:reserve",
            "volume_extension:volume_actions:initialize_connection",
        ] {
            assert!(!p.check(action, &reader, &own), "{action}");
            assert!(p.check(action, &member, &own), "{action}");
            assert!(!p.check(action, &member, &other), "{action}");
        }
        for action in [
            "volume_extension:types_manage",
            "volume_extension:quotas:update",
            "volume_extension:volume_host_attribute",
            "volume_extension:volume_mig_status_attribute",
            "volume_extension:volume_admin_actions:force_detach",
            "volume_extension:services:index",
            "scheduler_extension:scheduler_stats:get_pools",
        ] {
            assert!(!p.check(action, &member, &own), "{action}");
            assert!(p.check(action, &admin, &other), "{action}");
        }
        // Cinder shows a project's readers its volumes' tenant attribute.
        let tenant = "volume_extension:volume_tenant_attribute";
        assert!(p.check(tenant, &reader, &own));
        assert!(!p.check(tenant, &reader, &other));
    }
}
