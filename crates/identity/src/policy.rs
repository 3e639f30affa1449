//! Keystone's default policies, simplified to the three personas the cloud
//! uses: admin (role `admin` in any scope), member/reader on their own
//! project, and a user on their own resources.

use ferrostack_core::policy::Policy;

pub fn default_policy() -> Policy {
    Policy::new(&[
        ("admin_required", "role:admin"),
        ("owner", "user_id:%(target.user_id)s"),
        ("admin_or_owner", "rule:admin_required or rule:owner"),
        ("default", "rule:admin_required"),
        // tokens
        ("identity:validate_token", "rule:admin_required or user_id:%(target.token.user_id)s"),
        ("identity:check_token", "rule:admin_required or user_id:%(target.token.user_id)s"),
        ("identity:revoke_token", "rule:admin_required or user_id:%(target.token.user_id)s"),
        // users
        ("identity:get_user", "rule:admin_required or user_id:%(target.user.id)s"),
        ("identity:list_users", "rule:admin_required"),
        ("identity:create_user", "rule:admin_required"),
        ("identity:update_user", "rule:admin_required"),
        ("identity:delete_user", "rule:admin_required"),
        ("identity:change_password", "user_id:%(target.user.id)s"),
        ("identity:list_user_projects", "rule:admin_required or user_id:%(target.user.id)s"),
        ("identity:list_groups_for_user", "rule:admin_required or user_id:%(target.user.id)s"),
        // projects and domains
        ("identity:get_project", "rule:admin_required or project_id:%(target.project.id)s"),
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
    ])
}
