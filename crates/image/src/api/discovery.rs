//! Version discovery and the `/v2/info/*` documents.

use super::Svc;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::Result;
use serde_json::json;

/// The v2 minor versions this API honours, newest first.
const VERSIONS: &[(&str, &str)] = &[
    // 2.14 and 2.16 add the image cache API, which this deployment does not offer.
    ("v2.15", "CURRENT"),
    ("v2.13", "SUPPORTED"),
    ("v2.12", "SUPPORTED"),
    ("v2.11", "SUPPORTED"),
    ("v2.10", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.8", "SUPPORTED"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
];

fn base(svc: &Svc) -> String {
    svc.config.public_url(svc.config.image.port)
}

/// `GET /`: 300 Multiple Choices, as Glance answers.
pub async fn version_choices(State(svc): State<Svc>) -> Response {
    let mut resp = list_versions(State(svc)).await;
    *resp.status_mut() = StatusCode::MULTIPLE_CHOICES;
    resp
}

/// `GET /versions`: the same document with 200.
pub async fn list_versions(State(svc): State<Svc>) -> Response {
    let b = base(&svc);
    let values: Vec<_> = VERSIONS
        .iter()
        .map(|(id, status)| json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{b}/v2/")}]}))
        .collect();
    axum::Json(json!({"versions": values})).into_response()
}

pub async fn show_v2_version(State(svc): State<Svc>) -> Response {
    let b = base(&svc);
    axum::Json(
        json!({"versions": [{"id": VERSIONS[0].0, "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{b}/v2/")}]}]}),
    )
    .into_response()
}

pub async fn show_import_info(Authenticated(_): Authenticated) -> Response {
    axum::Json(json!({"import-methods": {
        "description": "Import methods available.", "type": "array", "value": ["glance-direct"]}}))
    .into_response()
}

pub async fn list_stores(Authenticated(_): Authenticated) -> Response {
    axum::Json(
        json!({"stores": [{"id": "file", "description": "Filesystem store", "default": true}]}),
    )
    .into_response()
}

/// `GET /v2/info/usage`: the caller's project against its quotas.
pub async fn show_usage(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let owner = ctx.project_id.clone().unwrap_or_default();
    let (bytes, count) = crate::store::images::usage(&svc.db, &owner).await?;
    let limit = |v: u64| if v == 0 { -1 } else { v as i64 };
    Ok(axum::Json(json!({"usage": {
        "image_size_total": {"limit": limit(svc.config.image.user_storage_quota), "usage": bytes},
        "image_count_total": {"limit": limit(svc.config.image.image_count_quota), "usage": count},
    }}))
    .into_response())
}
