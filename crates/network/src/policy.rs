//! Neutron's default policy, in one place: every authorization decision of
//! the network service is a rule here, evaluated by core's oslo.policy
//! engine, with the operator's `[network] policy_file` applied over it.
//!
//! The defaults are Neutron's current secure-RBAC ones (`enforce_new_defaults`
//! on, project scope): an admin may do anything, a project's `member` changes
//! its project's resources, its `reader` only reads them, a `manager` (as
//! Keystone's bootstrap creates) reads its quotas. Shared and external
//! networks and shared security groups are visible to every project.
//! One deliberate difference: `binding:profile` is writable by admins too,
//! not only by the `service` role, because this deployment's service users
//! (nova) hold `admin` in the service project.

use ferrostack_core::auth::AuthContext;
use ferrostack_core::policy::Policy;
use ferrostack_core::Error;
use serde_json::{json, Map, Value};

const ADMIN: &str = "rule:admin_only";
const ADMIN_OR_MEMBER: &str = "(rule:admin_only) or (role:member and project_id:%(project_id)s)";
const ADMIN_OR_READER: &str = "(rule:admin_only) or (role:reader and project_id:%(project_id)s)";
const ADMIN_OR_SERVICE: &str = "(rule:admin_only) or (rule:service_api)";
const ADMIN_SERVICE_OR_NET_OWNER_MEMBER: &str =
    "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner";
const ADMIN_OR_NET_OWNER_MEMBER: &str =
    "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api";
const SUBNET_MEMBER: &str = "role:member and project_id:%(project_id)s or (rule:admin_only) or (role:member and rule:network_owner)";
const PORT_DEVICE_OWNER: &str = "not rule:network_device or (rule:admin_only) or (rule:service_api) or role:member and rule:network_owner";

/// Neutron's defaults for the resources and actions this service offers
/// (neutron/conf/policies/{base,network,subnet,port,router,floatingip,
/// security_group,quotas,agent,network_ip_availability}.py).
pub const DEFAULTS: &[(&str, &str)] = &[
    // base
    ("context_is_admin", "role:admin"),
    ("service_api", "role:service"),
    ("owner", "project_id:%(project_id)s"),
    ("admin_or_owner", "rule:context_is_admin or rule:owner"),
    ("context_is_advsvc", "role:advsvc"),
    ("admin_or_network_owner", "rule:context_is_admin or project_id:%(network:project_id)s"),
    ("network_owner", "project_id:%(network:project_id)s"),
    ("admin_only", "rule:context_is_admin"),
    ("regular_user", ""),
    ("shared", "field:networks:shared=True"),
    ("default", "rule:admin_or_owner"),
    ("sg_owner", "project_id:%(security_group:project_id)s"),
    // networks
    ("external", "field:networks:router:external=True"),
    ("create_network", ADMIN_OR_MEMBER),
    ("create_network:shared", ADMIN),
    ("create_network:router:external", ADMIN),
    ("create_network:is_default", ADMIN),
    ("create_network:port_security_enabled", ADMIN_OR_MEMBER),
    ("create_network:provider:network_type", ADMIN),
    ("create_network:provider:physical_network", ADMIN),
    ("create_network:provider:segmentation_id", ADMIN),
    ("get_network", "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:service_api or rule:shared or rule:external or rule:context_is_advsvc"),
    ("get_network:provider:network_type", ADMIN),
    ("get_network:provider:physical_network", ADMIN),
    ("get_network:provider:segmentation_id", ADMIN),
    ("update_network", ADMIN_OR_MEMBER),
    ("update_network:shared", ADMIN),
    ("update_network:provider:network_type", ADMIN),
    ("update_network:provider:physical_network", ADMIN),
    ("update_network:provider:segmentation_id", ADMIN),
    ("update_network:router:external", ADMIN),
    ("update_network:is_default", ADMIN),
    ("update_network:port_security_enabled", ADMIN_OR_MEMBER),
    ("delete_network", ADMIN_OR_MEMBER),
    // subnets
    ("external_network", "field:subnets:router:external=True"),
    ("create_subnet", "(rule:admin_only) or (role:member and rule:network_owner)"),
    ("get_subnet", "role:reader and project_id:%(project_id)s or rule:shared or rule:external_network or (rule:admin_only) or (role:reader and rule:network_owner) or rule:service_api"),
    ("update_subnet", SUBNET_MEMBER),
    ("delete_subnet", SUBNET_MEMBER),
    // ports
    ("network_device", "field:port:device_owner=~^network:"),
    ("create_port", "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or rule:shared"),
    ("create_port:device_id", "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:service_api"),
    ("create_port:device_owner", PORT_DEVICE_OWNER),
    ("create_port:mac_address", ADMIN_SERVICE_OR_NET_OWNER_MEMBER),
    ("create_port:fixed_ips", "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or rule:shared"),
    ("create_port:fixed_ips:ip_address", ADMIN_SERVICE_OR_NET_OWNER_MEMBER),
    ("create_port:fixed_ips:subnet_id", "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or rule:shared"),
    ("create_port:port_security_enabled", ADMIN_SERVICE_OR_NET_OWNER_MEMBER),
    ("create_port:binding:host_id", ADMIN_OR_SERVICE),
    ("create_port:binding:profile", ADMIN_OR_SERVICE),
    ("create_port:binding:vnic_type", "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:service_api"),
    ("create_port:allowed_address_pairs", ADMIN_OR_NET_OWNER_MEMBER),
    ("create_port:allowed_address_pairs:mac_address", ADMIN_OR_NET_OWNER_MEMBER),
    ("create_port:allowed_address_pairs:ip_address", ADMIN_OR_NET_OWNER_MEMBER),
    ("get_port", "(rule:admin_only) or (rule:service_api) or role:reader and rule:network_owner or role:reader and project_id:%(project_id)s"),
    ("get_port:binding:vif_type", ADMIN_OR_SERVICE),
    ("get_port:binding:vif_details", ADMIN_OR_SERVICE),
    ("get_port:binding:host_id", ADMIN_OR_SERVICE),
    ("get_port:binding:profile", ADMIN_OR_SERVICE),
    ("update_port", "(rule:admin_only) or (rule:service_api) or role:member and project_id:%(project_id)s"),
    ("update_port:device_id", "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:service_api"),
    ("update_port:device_owner", PORT_DEVICE_OWNER),
    ("update_port:mac_address", "(rule:admin_only) or (rule:service_api) or role:manager and rule:network_owner"),
    ("update_port:fixed_ips", ADMIN_SERVICE_OR_NET_OWNER_MEMBER),
    ("update_port:fixed_ips:ip_address", ADMIN_SERVICE_OR_NET_OWNER_MEMBER),
    ("update_port:fixed_ips:subnet_id", "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or rule:shared"),
    ("update_port:port_security_enabled", ADMIN_SERVICE_OR_NET_OWNER_MEMBER),
    ("update_port:binding:host_id", ADMIN_OR_SERVICE),
    // Not Neutron's: its `status` is read-only; agents and admins set it here.
    ("update_port:status", ADMIN_OR_SERVICE),
    ("update_port:binding:profile", ADMIN_OR_SERVICE),
    ("update_port:binding:vnic_type", "(rule:admin_only) or (rule:service_api) or role:member and project_id:%(project_id)s"),
    ("update_port:allowed_address_pairs", ADMIN_OR_NET_OWNER_MEMBER),
    ("update_port:allowed_address_pairs:mac_address", ADMIN_OR_NET_OWNER_MEMBER),
    ("update_port:allowed_address_pairs:ip_address", ADMIN_OR_NET_OWNER_MEMBER),
    ("delete_port", "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or role:member and project_id:%(project_id)s"),
    // routers
    ("create_router", ADMIN_OR_MEMBER),
    ("create_router:distributed", ADMIN),
    ("create_router:ha", ADMIN),
    ("create_router:external_gateway_info", ADMIN_OR_MEMBER),
    ("create_router:external_gateway_info:network_id", ADMIN_OR_MEMBER),
    ("create_router:external_gateway_info:enable_snat", ADMIN),
    ("create_router:external_gateway_info:external_fixed_ips", ADMIN),
    ("get_router", ADMIN_OR_READER),
    ("get_router:distributed", ADMIN),
    ("get_router:ha", ADMIN),
    ("update_router", ADMIN_OR_MEMBER),
    ("update_router:distributed", ADMIN),
    ("update_router:ha", ADMIN),
    ("update_router:external_gateway_info", ADMIN_OR_MEMBER),
    ("update_router:external_gateway_info:network_id", ADMIN_OR_MEMBER),
    ("update_router:external_gateway_info:enable_snat", ADMIN),
    ("update_router:external_gateway_info:external_fixed_ips", ADMIN),
    ("delete_router", ADMIN_OR_MEMBER),
    ("add_router_interface", ADMIN_OR_MEMBER),
    ("remove_router_interface", ADMIN_OR_MEMBER),
    // floating IPs
    ("create_floatingip", ADMIN_OR_MEMBER),
    ("create_floatingip:floating_ip_address", "(rule:admin_only) or (role:manager and project_id:%(project_id)s)"),
    ("get_floatingip", ADMIN_OR_READER),
    ("update_floatingip", ADMIN_OR_MEMBER),
    ("delete_floatingip", ADMIN_OR_MEMBER),
    // security groups and their rules
    ("shared_security_group", "field:security_groups:shared=True"),
    ("create_security_group", ADMIN_OR_MEMBER),
    ("get_security_group", "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_security_group"),
    ("update_security_group", ADMIN_OR_MEMBER),
    ("delete_security_group", ADMIN_OR_MEMBER),
    ("create_security_group_rule", "(rule:admin_only) or (role:member and rule:sg_owner)"),
    ("get_security_group_rule", "(rule:admin_only) or (role:reader and rule:sg_owner)"),
    ("delete_security_group_rule", "(rule:admin_only) or (role:member and rule:sg_owner)"),
    // quotas
    ("get_quota", "(rule:admin_only) or (role:manager and project_id:%(project_id)s)"),
    ("update_quota", ADMIN),
    ("delete_quota", ADMIN),
    // agents and their scheduling
    ("get_agent", ADMIN),
    ("update_agent", ADMIN),
    ("delete_agent", ADMIN),
    ("create_dhcp-network", ADMIN),
    ("get_dhcp-networks", ADMIN),
    ("delete_dhcp-network", ADMIN),
    ("create_l3-router", ADMIN),
    ("get_l3-routers", ADMIN),
    ("delete_l3-router", ADMIN),
    ("get_dhcp-agents", ADMIN),
    ("get_l3-agents", ADMIN),
    // IP availability
    ("get_network_ip_availability", ADMIN_OR_SERVICE),
];

/// Attribute values that count as "not set" on create: Neutron checks an
/// attribute's rule only when a request sets it to something else than
/// its default.
const CREATE_DEFAULTS: &[(&str, &str)] = &[
    // (attribute, its default as JSON text)
    ("shared", "false"),
    ("router:external", "false"),
    ("is_default", "false"),
    ("port_security_enabled", "true"),
    ("device_owner", r#""""#),
    ("device_id", r#""""#),
    ("binding:host_id", r#""""#),
    ("binding:vnic_type", r#""normal""#),
    ("binding:profile", "{}"),
    ("allowed_address_pairs", "[]"),
    ("distributed", "false"),
    ("ha", "false"),
];

/// The service's policy: core's engine with Neutron's defaults and the
/// operator's overrides, plus the `field:` checks it evaluates itself.
pub struct NetworkPolicy {
    rules: Policy,
}

impl NetworkPolicy {
    /// The defaults with the operator's file (`[network] policy_file`,
    /// empty for none) applied over them. A file that cannot be read or a
    /// rule that does not parse is an error naming both: the service does
    /// not start on it.
    pub fn load(policy_file: &str) -> Result<Self, String> {
        let file = (!policy_file.is_empty()).then(|| std::path::Path::new(policy_file));
        Ok(NetworkPolicy {
            rules: Policy::new(DEFAULTS).with_file(file)?,
        })
    }

    /// True when `action` is allowed for `ctx` on `target`.
    pub fn check(&self, action: &str, ctx: &AuthContext, target: &Value) -> bool {
        self.rules.check(action, ctx, target)
    }

    /// Neutron's `context.is_admin`: the `context_is_admin` rule.
    pub fn is_admin(&self, ctx: &AuthContext) -> bool {
        self.check("context_is_admin", ctx, &json!({}))
    }

    /// 403 `PolicyNotAuthorized` unless `action` is allowed.
    pub fn enforce(&self, action: &str, ctx: &AuthContext, target: &Value) -> Result<(), Error> {
        if self.check(action, ctx, target) {
            Ok(())
        } else {
            Err(denied(action))
        }
    }

    /// Enforce `<action>_<kind>` and the rule of every attribute (and
    /// sub-attribute, `fixed_ips:ip_address`) the request sets, as Neutron
    /// does: on create only attributes set to other than their default.
    pub fn enforce_request(
        &self,
        action: &str,
        kind: &str,
        ctx: &AuthContext,
        target: &Value,
        body: &Map<String, Value>,
    ) -> Result<(), Error> {
        let base = format!("{action}_{kind}");
        self.enforce(&base, ctx, target)?;
        for (attr, value) in body {
            if action == "create" && is_default(attr, value) {
                continue;
            }
            let rule = format!("{base}:{attr}");
            if self.rules.has(&rule) {
                self.enforce(&rule, ctx, target)?;
            }
            for sub in sub_attributes(value) {
                let rule = format!("{base}:{attr}:{sub}");
                if self.rules.has(&rule) {
                    self.enforce(&rule, ctx, target)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the caller may see `attr` of a document (`get_port:binding:host_id`);
    /// attributes without a rule of their own are visible with the document.
    pub fn attribute_visible(
        &self,
        kind: &str,
        attr: &str,
        ctx: &AuthContext,
        target: &Value,
    ) -> bool {
        let rule = format!("get_{kind}:{attr}");
        !self.rules.has(&rule) || self.check(&rule, ctx, target)
    }
}

/// Neutron's 403 for a denied rule.
pub fn denied(action: &str) -> Error {
    Error::Forbidden(format!("(rule:{action}) is disallowed by policy"))
        .typed("PolicyNotAuthorized")
}

fn is_default(attr: &str, value: &Value) -> bool {
    value.is_null()
        || CREATE_DEFAULTS.iter().any(|(name, default)| {
            *name == attr && serde_json::from_str::<Value>(default).is_ok_and(|d| d == *value)
        })
}

/// The keys of a dict value, or of the dicts in a list value.
fn sub_attributes(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = match value {
        Value::Object(m) => m.keys().map(String::as_str).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|m| m.keys().map(String::as_str))
            .collect(),
        _ => Vec::new(),
    };
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_core::auth::NamedRef;

    fn ctx(roles: &[&str], project: &str) -> AuthContext {
        AuthContext {
            user_id: "u1".into(),
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
    fn personas_and_field_checks() {
        let p = NetworkPolicy::load("").unwrap();
        let own = json!({"project_id": "p1", "shared": false, "router:external": false});
        let (reader, member) = (ctx(&["reader"], "p1"), ctx(&["member", "reader"], "p1"));
        let other = ctx(&["member", "reader"], "p2");
        assert!(!p.check("create_network", &reader, &own));
        assert!(p.check("create_network", &member, &own));
        assert!(p.check("get_network", &reader, &own));
        assert!(!p.check("get_network", &other, &own));
        let shared = json!({"project_id": "p1", "shared": true});
        assert!(p.check("get_network", &other, &shared));
        let external = json!({"project_id": "p1", "router:external": true});
        assert!(p.check("get_network", &other, &external));
        let router_port = json!({"project_id": "p1", "network:project_id": "p2",
            "device_owner": "network:router_interface"});
        assert!(!p.check("create_port:device_owner", &member, &router_port));
        let vm_port =
            json!({"project_id": "p1", "network:project_id": "p2", "device_owner": "compute:nova"});
        assert!(p.check("create_port:device_owner", &member, &vm_port));
    }

    #[test]
    fn request_attributes_are_enforced_unless_default() {
        let p = NetworkPolicy::load("").unwrap();
        let member = ctx(&["member", "reader"], "p1");
        let target = json!({"project_id": "p1"});
        let body = |v: Value| v.as_object().unwrap().clone();
        p.enforce_request(
            "create",
            "network",
            &member,
            &target,
            &body(json!({"shared": false})),
        )
        .unwrap();
        let err = p
            .enforce_request(
                "create",
                "network",
                &member,
                &target,
                &body(json!({"shared": true})),
            )
            .unwrap_err();
        assert!(err.to_string().contains("create_network:shared"), "{err}");
        let err = p
            .enforce_request(
                "create",
                "router",
                &member,
                &target,
                &body(json!({"external_gateway_info": {"network_id": "x", "enable_snat": false}})),
            )
            .unwrap_err();
        assert!(err.to_string().contains("enable_snat"), "{err}");
    }

    #[test]
    fn unsupported_field_patterns_are_refused() {
        let dir = std::env::temp_dir().join(format!("netpolicy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.yaml");
        std::fs::write(
            &file,
            "\"get_port\": \"field:port:device_owner=~^network:.*x\"\n",
        )
        .unwrap();
        let err = NetworkPolicy::load(file.to_str().unwrap()).err().unwrap();
        assert!(err.contains("get_port"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
