//! Version discovery: `/` answers 300 with the versions, `/v3/` the v3 document.

use super::{Svc, MAX_VERSION, MIN_VERSION};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn v3(svc: &Svc) -> Value {
    let base = svc.config.public_url(svc.config.volume.port);
    json!({
        "id": "v3.0", "status": "CURRENT", "version": MAX_VERSION, "min_version": MIN_VERSION,
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{base}/v3/")},
        ],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.volume+json;version=3"}],
    })
}

/// `GET /`: 300 Multiple Choices with every version, as Cinder answers.
pub async fn version_choices(State(svc): State<Svc>) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({"versions": [v3(&svc)]})),
    )
        .into_response()
}

/// `GET /v3/`: the v3 version document.
pub async fn show_v3(State(svc): State<Svc>) -> Response {
    axum::Json(json!({"versions": [v3(&svc)]})).into_response()
}

/// The Cinder API extensions whose resources and actions this service
/// answers (alias, name, when Cinder dated them, what they add).
const EXTENSIONS: &[(&str, &str, &str, &str)] = &[
    (
        "os-admin-actions",
        "AdminActions",
        "2012-08-25T00:00:00+00:00",
        "Enable admin actions.",
    ),
    (
        "os-availability-zone",
        "AvailabilityZones",
        "2013-06-27T00:00:00+00:00",
        "Describe Availability Zones.",
    ),
    (
        "backups",
        "Backups",
        "2012-12-12T00:00:00+00:00",
        "Backups support.",
    ),
    (
        "capabilities",
        "Capabilities",
        "2016-07-01T00:00:00+00:00",
        "Capabilities support.",
    ),
    (
        "os-hosts",
        "Hosts",
        "2011-06-29T00:00:00+00:00",
        "Admin-only host administration.",
    ),
    (
        "qos-specs",
        "Qos_specs_manage",
        "2013-08-02T00:00:00+00:00",
        "QoS specs support.",
    ),
    (
        "os-quota-class-sets",
        "Quota_classes",
        "2012-03-12T00:00:00+00:00",
        "Quota classes management support.",
    ),
    (
        "os-quota-sets",
        "Quotas",
        "2011-08-08T00:00:00+00:00",
        "Quota management support.",
    ),
    (
        "scheduler-stats",
        "Scheduler_stats",
        "2014-09-07T00:00:00+00:00",
        "Scheduler stats support.",
    ),
    (
        "os-services",
        "Services",
        "2012-10-28T00:00:00-00:00",
        "Services support.",
    ),
    (
        "os-snapshot-actions",
        "SnapshotActions",
        "2013-07-16T00:00:00+00:00",
        "Enable snapshot manager actions.",
    ),
    (
        "os-volume-actions",
        "VolumeActions",
        "2012-05-31T00:00:00+00:00",
        "Enable volume actions.",
    ),
    (
        "os-volume-transfer",
        "VolumeTransfer",
        "2013-05-29T00:00:00+00:00",
        "Volume transfer management support.",
    ),
    (
        "os-volume-type-access",
        "VolumeTypeAccess",
        "2014-06-26T00:00:00Z",
        "Volume type access support.",
    ),
    (
        "os-types-extra-specs",
        "TypesExtraSpecs",
        "2011-08-24T00:00:00+00:00",
        "Type extra specs support.",
    ),
    (
        "os-types-manage",
        "TypesManage",
        "2011-08-24T00:00:00+00:00",
        "Types manage support.",
    ),
    (
        "os-used-limits",
        "UsedLimits",
        "2013-10-03T00:00:00+00:00",
        "Provide data on limited resources that are being used.",
    ),
];

/// `GET /v3/{project_id}/extensions`: any authenticated user may list them.
pub async fn list_extensions(
    axum::extract::Path(project_id): axum::extract::Path<String>,
    ferrostack_core::auth::Authenticated(ctx): ferrostack_core::auth::Authenticated,
) -> ferrostack_core::Result<Response> {
    super::check_url_project(&ctx, &project_id)?;
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(alias, name, updated, description)| {
            json!({
                "alias": alias,
                "name": name,
                "updated": updated,
                "description": description,
                "links": [],
            })
        })
        .collect();
    Ok(axum::Json(json!({ "extensions": list })).into_response())
}
