//! Keystone's default policies, simplified to the three personas the cloud
//! uses: admin (role `admin` in any scope), member/reader on their own
//! project, and a user on their own resources.

use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};

/// Keystone's defaults with the operator's `[identity] policy_file` (empty:
/// none) applied over them. A file that cannot be read or does not parse is
/// an error, so the service refuses to start rather than run on defaults the
/// operator meant to change.
pub fn load(config: &Config) -> Result<Policy> {
    let file = &config.identity.policy_file;
    let path = (!file.is_empty()).then(|| std::path::Path::new(file));
    default_policy().with_file(path).map_err(Error::Internal)
}

/// Read-only actions a system-scoped reader may take, as in Keystone's
/// secure-RBAC defaults; admins may take them everywhere.
const SYSTEM_READS: &[&str] = &[
    "list_users",
    "list_projects",
    "list_domains",
    "list_roles",
    "get_role",
    "list_groups",
    "get_group",
    "list_users_in_group",
    "check_user_in_group",
    "list_services",
    "get_service",
    "list_endpoints",
    "get_endpoint",
    "list_policies",
    "get_policy",
    "list_role_assignments",
    "list_grants",
    "check_grant",
    "list_implied_roles",
    "get_implied_role",
    "list_role_inference_rules",
    "list_endpoint_groups",
    "get_endpoint_group",
    "get_domain_config",
    "list_consumers",
    "get_consumer",
    "list_credentials",
];

pub fn default_policy() -> Policy {
    let mut p = base_policy();
    for action in SYSTEM_READS {
        let name = format!("identity:{action}");
        if !p.has(&name) {
            p.set(&name, "rule:admin_or_system_reader")
                .expect("valid rule");
        }
    }
    p
}

fn base_policy() -> Policy {
    Policy::new(&[
        ("admin_required", "role:admin"),
        ("owner", "user_id:%(target.user_id)s"),
        ("admin_or_owner", "rule:admin_required or rule:owner"),
        ("system_reader", "role:reader and system_scope:all"),
        ("admin_or_system_reader", "rule:admin_required or rule:system_reader"),
        ("default", "rule:admin_required"),
        // tokens
        ("identity:validate_token", "rule:admin_required or user_id:%(target.token.user_id)s"),
        ("identity:check_token", "rule:admin_required or user_id:%(target.token.user_id)s"),
        ("identity:revoke_token", "rule:admin_required or user_id:%(target.token.user_id)s"),
        // users
        ("identity:get_user", "rule:admin_or_system_reader or user_id:%(target.user.id)s"),
        ("identity:list_users", "rule:admin_required"),
        ("identity:create_user", "rule:admin_required"),
        ("identity:update_user", "rule:admin_required"),
        ("identity:delete_user", "rule:admin_required"),
        ("identity:change_password", "rule:admin_required or user_id:%(target.user.id)s"),
        ("identity:list_user_projects", "rule:admin_required or user_id:%(target.user.id)s"),
        ("identity:list_groups_for_user", "rule:admin_required or user_id:%(target.user.id)s"),
        // projects and domains
        ("identity:get_project", "rule:admin_or_system_reader or project_id:%(target.project.id)s"),
        ("identity:list_projects", "rule:admin_required"),
        ("identity:create_project", "rule:admin_required"),
        ("identity:update_project", "rule:admin_required"),
        ("identity:delete_project", "rule:admin_required"),
        ("identity:get_domain", "rule:admin_required or domain_id:%(target.domain.id)s or project_domain_id:%(target.domain.id)s"),
        ("identity:list_domains", "rule:admin_required"),
        ("identity:create_domain", "rule:admin_required"),
        ("identity:update_domain", "rule:admin_required"),
        ("identity:delete_domain", "rule:admin_required"),
        // roles, assignments, groups: admin only (default)
        // catalog
        ("identity:get_region", "@"),
        ("identity:list_regions", "@"),
        // application credentials: the owner, or an admin
        ("identity:get_application_credential", "rule:admin_or_owner"),
        ("identity:list_application_credentials", "rule:admin_or_owner"),
        ("identity:create_application_credential", "rule:owner"),
        ("identity:delete_application_credential", "rule:admin_or_owner"),
        ("identity:list_access_rules", "rule:admin_or_owner"),
        ("identity:get_access_rule", "rule:admin_or_owner"),
        ("identity:delete_access_rule", "rule:admin_or_owner"),
        // credentials (including EC2): the owner, or an admin
        ("identity:get_credential", "rule:admin_required or user_id:%(target.credential.user_id)s"),
        ("identity:create_credential", "rule:admin_required or user_id:%(target.credential.user_id)s"),
        ("identity:update_credential", "rule:admin_required or user_id:%(target.credential.user_id)s"),
        ("identity:delete_credential", "rule:admin_required or user_id:%(target.credential.user_id)s"),
        ("identity:ec2_list_credentials", "rule:admin_required or user_id:%(target.credential.user_id)s"),
        ("identity:ec2_get_credential", "rule:admin_required or user_id:%(target.credential.user_id)s"),
        ("identity:ec2_create_credential", "rule:admin_required or user_id:%(target.credential.user_id)s"),
        ("identity:ec2_delete_credential", "rule:admin_required or user_id:%(target.credential.user_id)s"),
    ])
}
