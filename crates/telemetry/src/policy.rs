//! The default rules of Ceilometer's API (ceilometer/policies: samples,
//! meters, statistics and resources are readable by the project's readers
//! and admins; posting samples is admin's) and of Gnocchi's
//! (gnocchi/rest/policy.yaml), evaluated by `ferrostack_core::policy`;
//! `[telemetry] policy_file` replaces any of them.

/// The rule names and their defaults.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("segregation", "rule:context_is_admin"),
    (
        "admin_or_owner",
        "rule:context_is_admin or project_id:%(project_id)s",
    ),
    ("default", "rule:admin_or_owner"),
    // Ceilometer v2
    ("telemetry:get_samples", ""),
    ("telemetry:get_sample", ""),
    ("telemetry:query_sample", ""),
    ("telemetry:create_samples", ""),
    ("telemetry:compute_statistics", ""),
    ("telemetry:get_meters", ""),
    ("telemetry:get_resource", ""),
    ("telemetry:get_resources", ""),
    // Aodh v2
    ("telemetry:get_alarm", "rule:admin_or_owner"),
    ("telemetry:get_alarms", ""),
    ("telemetry:create_alarm", ""),
    ("telemetry:change_alarm", "rule:admin_or_owner"),
    ("telemetry:delete_alarm", "rule:admin_or_owner"),
    ("telemetry:get_alarm_state", "rule:admin_or_owner"),
    ("telemetry:change_alarm_state", "rule:admin_or_owner"),
    ("telemetry:alarm_history", "rule:admin_or_owner"),
    ("telemetry:query_alarm", ""),
    ("telemetry:query_alarm_history", ""),
    // Gnocchi v1
    ("get status", "rule:context_is_admin"),
    ("create resource", ""),
    ("get resource", "rule:admin_or_owner"),
    ("update resource", "rule:admin_or_owner"),
    ("delete resource", "rule:admin_or_owner"),
    ("list resource", ""),
    ("search resource", ""),
    ("create resource type", "rule:context_is_admin"),
    ("delete resource type", "rule:context_is_admin"),
    ("update resource type", "rule:context_is_admin"),
    ("get resource type", ""),
    ("list resource type", ""),
    ("get archive policy", ""),
    ("list archive policy", ""),
    ("create archive policy", "rule:context_is_admin"),
    ("update archive policy", "rule:context_is_admin"),
    ("delete archive policy", "rule:context_is_admin"),
    ("create archive policy rule", "rule:context_is_admin"),
    ("get archive policy rule", ""),
    ("list archive policy rule", ""),
    ("update archive policy rule", "rule:context_is_admin"),
    ("delete archive policy rule", "rule:context_is_admin"),
    ("create metric", ""),
    ("delete metric", "rule:admin_or_owner"),
    ("get metric", "rule:admin_or_owner"),
    ("search metric", "rule:admin_or_owner"),
    ("list metric", ""),
    ("list all metric", "rule:context_is_admin"),
    ("get measures", "rule:admin_or_owner"),
    ("post measures", "rule:admin_or_owner"),
    // Prometheus exposition
    ("telemetry:prometheus", "rule:context_is_admin"),
];
