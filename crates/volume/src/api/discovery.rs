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
