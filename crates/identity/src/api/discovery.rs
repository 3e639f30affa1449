//! Version discovery at `/`, `/v3` and `/v2.0`.

use super::Svc;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn v3_doc(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
    })
}

fn v2_doc(base: &str) -> Value {
    json!({
        "id": "v2.0",
        "status": "deprecated",
        "updated": "2016-08-04T00:00:00Z",
        "links": [
            {"rel": "self", "href": format!("{base}/v2.0/")},
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v2.0+json"}]
    })
}

fn base(svc: &Svc) -> String {
    svc.config.public_url(svc.config.identity.public_port)
}

/// `GET /`: 300 Multiple Choices listing v3 and v2.0, as Keystone answers.
pub async fn list_versions(State(svc): State<Svc>) -> Response {
    let b = base(&svc);
    let body = json!({"versions": {"values": [v3_doc(&b), v2_doc(&b)]}});
    let mut resp = (StatusCode::MULTIPLE_CHOICES, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        axum::http::header::LOCATION,
        format!("{b}/v3/").parse().expect("valid header"),
    );
    resp
}

pub async fn show_v3(State(svc): State<Svc>) -> Response {
    axum::Json(json!({"version": v3_doc(&base(&svc))})).into_response()
}

pub async fn show_v2(State(svc): State<Svc>) -> Response {
    axum::Json(json!({"version": v2_doc(&base(&svc))})).into_response()
}
