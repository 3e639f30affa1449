//! Who may do what in the compute API: Nova's current policy defaults
//! (`os_compute_api:*`, with `enforce_new_defaults`: admin, project
//! manager, member and reader), in oslo.policy's language, evaluated by
//! the one engine `ferrostack_core::policy`. An operator's `policy.yaml`
//! (`[compute] policy_file`) is applied over them when the service starts.
//! Handlers authorize by rule name with the resource's project as target.

use ferrostack_core::auth::AuthContext;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};

/// Nova's defaults for the APIs this service serves. `is_admin:True` in
/// Nova's legacy rules is what `context_is_admin` decides, so it is
/// written as that rule here.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    (
        "admin_or_owner",
        "rule:context_is_admin or project_id:%(project_id)s",
    ),
    ("admin_api", "rule:context_is_admin"),
    (
        "project_manager_api",
        "role:manager and project_id:%(project_id)s",
    ),
    (
        "project_member_api",
        "role:member and project_id:%(project_id)s",
    ),
    (
        "project_reader_api",
        "role:reader and project_id:%(project_id)s",
    ),
    ("service_api", "role:service"),
    (
        "project_manager_or_admin",
        "rule:project_manager_api or rule:context_is_admin",
    ),
    (
        "project_member_or_admin",
        "rule:project_member_api or rule:context_is_admin",
    ),
    (
        "project_reader_or_admin",
        "rule:project_reader_api or rule:context_is_admin",
    ),
    (
        "service_or_admin",
        "rule:service_api or rule:context_is_admin",
    ),
    // The APIs.
    ("network:attach_external_network", "rule:context_is_admin"),
    ("os_compute_api:extensions", "@"),
    ("os_compute_api:ips:index", "rule:project_reader_or_admin"),
    (
        "compute:server:topology:index",
        "rule:project_reader_or_admin",
    ),
    (
        "compute:server:topology:host:index",
        "rule:context_is_admin",
    ),
    ("os_compute_api:ips:show", "rule:project_reader_or_admin"),
    ("os_compute_api:limits", "@"),
    (
        "os_compute_api:limits:other_project",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-admin-actions:inject_network_info",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-admin-actions:reset_state",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-admin-password",
        "rule:project_member_or_admin",
    ),
    ("compute:aggregates:images", "rule:context_is_admin"),
    (
        "os_compute_api:os-assisted-volume-snapshots:create",
        "rule:admin_api",
    ),
    (
        "os_compute_api:os-assisted-volume-snapshots:delete",
        "rule:admin_api",
    ),
    (
        "os_compute_api:os-aggregates:add_host",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-aggregates:create",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-aggregates:delete",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-aggregates:index",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-aggregates:remove_host",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-aggregates:set_metadata",
        "rule:context_is_admin",
    ),
    ("os_compute_api:os-aggregates:show", "rule:context_is_admin"),
    (
        "os_compute_api:os-aggregates:update",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-attach-interfaces:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-attach-interfaces:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-attach-interfaces:list",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-attach-interfaces:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes:list",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes:detail",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-volumes:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-volumes:snapshots:list",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes:snapshots:detail",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes:snapshots:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes:snapshots:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-volumes:snapshots:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-volumes-attachments:index",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes-attachments:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-volumes-attachments:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-volumes-attachments:update",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-volumes-attachments:swap",
        "rule:service_or_admin",
    ),
    (
        "os_compute_api:os-volumes-attachments:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-availability-zone:detail",
        "rule:context_is_admin",
    ),
    ("os_compute_api:os-availability-zone:list", "@"),
    (
        "os_compute_api:os-console-output",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-deferred-delete:force",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-deferred-delete:restore",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-extended-server-attributes",
        "rule:context_is_admin",
    ),
    ("os_compute_api:os-flavor-access", "rule:context_is_admin"),
    (
        "os_compute_api:os-flavor-access:add_tenant_access",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-flavor-access:remove_tenant_access",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-flavor-extra-specs:create",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-flavor-extra-specs:delete",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-flavor-extra-specs:index",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-flavor-extra-specs:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-flavor-extra-specs:update",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-flavor-manage:create",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-flavor-manage:delete",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-flavor-manage:update",
        "rule:context_is_admin",
    ),
    ("os_compute_api:os-floating-ip-pools", "@"),
    (
        "os_compute_api:os-floating-ips:add",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-floating-ips:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-floating-ips:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-floating-ips:list",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-floating-ips:remove",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-floating-ips:show",
        "rule:project_reader_or_admin",
    ),
    ("os_compute_api:os-hosts:list", "rule:context_is_admin"),
    ("os_compute_api:os-hosts:reboot", "rule:context_is_admin"),
    ("os_compute_api:os-hosts:show", "rule:context_is_admin"),
    ("os_compute_api:os-hosts:shutdown", "rule:context_is_admin"),
    ("os_compute_api:os-hosts:start", "rule:context_is_admin"),
    ("os_compute_api:os-hosts:update", "rule:context_is_admin"),
    (
        "os_compute_api:os-hypervisors:list",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-hypervisors:list-detail",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-hypervisors:search",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-hypervisors:servers",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-hypervisors:show",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-hypervisors:statistics",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-hypervisors:uptime",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-instance-actions:events",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-instance-actions:events:details",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-instance-actions:list",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-instance-actions:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-instance-usage-audit-log:list",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-instance-usage-audit-log:show",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-keypairs:create",
        "(rule:context_is_admin) or user_id:%(user_id)s",
    ),
    (
        "os_compute_api:os-keypairs:delete",
        "(rule:context_is_admin) or user_id:%(user_id)s",
    ),
    (
        "os_compute_api:os-keypairs:index",
        "(rule:context_is_admin) or user_id:%(user_id)s",
    ),
    (
        "os_compute_api:os-keypairs:show",
        "(rule:context_is_admin) or user_id:%(user_id)s",
    ),
    ("os_compute_api:os-rescue", "rule:project_member_or_admin"),
    (
        "os_compute_api:os-server-shares:index",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-server-shares:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-server-shares:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-server-shares:delete",
        "rule:project_member_or_admin",
    ),
    ("os_compute_api:os-unrescue", "rule:project_member_or_admin"),
    (
        "os_compute_api:os-shelve:shelve",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-shelve:shelve_offload",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-shelve:unshelve",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-shelve:unshelve_to_host",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-lock-server:lock",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-lock-server:unlock",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-lock-server:unlock:unlock_override",
        "rule:context_is_admin",
    ),
    ("os_compute_api:os-evacuate", "rule:context_is_admin"),
    (
        "os_compute_api:os-console-auth-tokens",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:migrations:index",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:migrations:show",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:migrations:force_complete",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:migrations:delete",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:trigger_crash_dump",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:show:host_status",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-migrate-server:migrate",
        "rule:project_manager_or_admin",
    ),
    (
        "os_compute_api:os-migrate-server:migrate:host",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-migrate-server:migrate_live",
        "rule:project_manager_or_admin",
    ),
    (
        "os_compute_api:os-migrate-server:migrate_live:host",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-migrations:index",
        "rule:project_manager_or_admin",
    ),
    (
        "os_compute_api:os-migrations:index:all_projects",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-migrations:index:host",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-networks:list",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-networks:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-pause-server:pause",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-pause-server:unpause",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-quota-class-sets:show",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-quota-class-sets:update",
        "rule:context_is_admin",
    ),
    ("os_compute_api:os-quota-sets:defaults", "@"),
    (
        "os_compute_api:os-quota-sets:delete",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-quota-sets:detail",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-quota-sets:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-quota-sets:update",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-remote-consoles",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:add",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:get",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:list",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:remove",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:rule:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:rule:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-security-groups:update",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-server-diagnostics",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-server-external-events:create",
        "rule:service_or_admin",
    ),
    (
        "os_compute_api:os-server-groups:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-server-groups:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-server-groups:index",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-server-groups:index:all_projects",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-server-groups:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-server-password:clear",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-server-password:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-server-tags:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-server-tags:delete_all",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-server-tags:index",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-server-tags:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-server-tags:update",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-server-tags:update_all",
        "rule:project_member_or_admin",
    ),
    ("os_compute_api:os-services:delete", "rule:context_is_admin"),
    ("os_compute_api:os-services:list", "rule:context_is_admin"),
    ("os_compute_api:os-services:update", "rule:context_is_admin"),
    (
        "os_compute_api:os-simple-tenant-usage:list",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:os-simple-tenant-usage:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-suspend-server:resume",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-suspend-server:suspend",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:os-tenant-networks:list",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:os-tenant-networks:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:server-metadata:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:server-metadata:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:server-metadata:index",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:server-metadata:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:server-metadata:update",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:server-metadata:update_all",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:allow_all_filters",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:confirm_resize",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:create",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:create:attach_network",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:create:forced_host",
        "rule:context_is_admin",
    ),
    (
        "compute:servers:create:requested_destination",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:create:zero_disk_flavor",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:create_image",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:delete",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:detail",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:servers:detail:get_all_tenants",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:index",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:servers:index:get_all_tenants",
        "rule:context_is_admin",
    ),
    (
        "os_compute_api:servers:reboot",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:rebuild",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:resize",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:revert_resize",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:show",
        "rule:project_reader_or_admin",
    ),
    (
        "os_compute_api:servers:start",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:stop",
        "rule:project_member_or_admin",
    ),
    (
        "os_compute_api:servers:update",
        "rule:project_member_or_admin",
    ),
    // Nova-network era action this API still answers (removed from Nova's
    // policies with nova-network; admin only as it was).
    (
        "os_compute_api:os-admin-actions:reset_network",
        "rule:context_is_admin",
    ),
];

/// The defaults with the operator's policy file (empty path: none)
/// applied over them. A file that does not parse is an error, so the
/// service refuses to start instead of running with rules nobody wrote.
pub fn load(policy_file: &str) -> std::result::Result<Policy, String> {
    let path = (!policy_file.is_empty()).then(|| std::path::Path::new(policy_file));
    Policy::new(DEFAULTS).with_file(path)
}

/// The target of a rule about a project's resource.
pub fn project_target(project_id: &str) -> Value {
    json!({"project_id": project_id})
}

/// Nova's default target: the caller's own project and user.
pub fn own_target(ctx: &AuthContext) -> Value {
    json!({"project_id": ctx.project_id, "user_id": ctx.user_id})
}

/// Enforce `rule`, answering Nova's 403 when it denies.
pub fn authorize(policy: &Policy, ctx: &AuthContext, rule: &str, target: &Value) -> Result<()> {
    if policy.check(rule, ctx, target) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "Policy doesn't allow {rule} to be performed."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_base_rules_exist() {
        let p = load("").unwrap();
        for (name, _) in DEFAULTS {
            assert!(p.has(name));
        }
        for rule in [
            "context_is_admin",
            "project_member_or_admin",
            "project_reader_or_admin",
            "project_manager_or_admin",
        ] {
            assert!(p.has(rule), "{rule}");
        }
    }

    #[test]
    fn a_policy_file_that_does_not_parse_is_refused() {
        let dir = std::env::temp_dir().join(format!("compute-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.yaml");
        std::fs::write(
            &bad,
            "\"os_compute_api:servers:create\": \"role:member and (\"\n",
        )
        .unwrap();
        assert!(load(bad.to_str().unwrap()).is_err());
        assert!(load(dir.join("missing.yaml").to_str().unwrap()).is_err());
    }
}
