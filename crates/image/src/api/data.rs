//! Image data: upload (`PUT …/file`), download with `Range`, staging and
//! interactive import (`glance-direct`). Bodies are streamed in both
//! directions; memory does not grow with the image.

use super::Svc;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::Authenticated;
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{post, put, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The data routes stream their bodies and enforce their own limits (the
/// storage quota, the size cap), so the JSON body limit is lifted on them.
pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            "/v2/images/{id}/file",
            put(upload_image_data)
                .get(download_image_data)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v2/images/{id}/stage",
            put(stage_image_data).layer(DefaultBodyLimit::disable()),
        )
        .route("/v2/images/{id}/import", post(import_image))
}

/// The size the client declares: `Content-Length`, or Glance's
/// `x-openstack-image-size` for chunked uploads.
fn declared_size(headers: &HeaderMap) -> Result<Option<u64>> {
    for h in ["x-openstack-image-size", "content-length"] {
        if let Some(v) = headers.get(h) {
            let s = v.to_str().unwrap_or("");
            return s
                .parse::<u64>()
                .map(Some)
                .map_err(|_| Error::BadRequest(format!("Invalid {h} header: '{s}'.")));
        }
    }
    Ok(None)
}

pub async fn upload_image_data(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    if !ct.starts_with("application/octet-stream") {
        return Err(Error::UnsupportedMediaType(format!(
            "Unsupported Content-Type '{ct}': use application/octet-stream."
        )));
    }
    let size = declared_size(req.headers())?;
    let stream = req.into_body().into_data_stream();
    svc.upload(&ctx, &id, stream, size).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn stage_image_data(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    let size = declared_size(req.headers())?;
    let stream = req.into_body().into_data_stream();
    svc.stage(&ctx, &id, stream, size).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v2/images/{id}/import`.
#[derive(Deserialize, Serialize, JsonSchema)]
pub struct ImportRequest {
    method: ImportMethod,
    /// Free-form: `stores`, `all_stores`, …, recorded in the task's input
    /// as sent.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct ImportMethod {
    /// Only `glance-direct` (the staged data) is offered; others are 400.
    #[schemars(extend("enum" = ["glance-direct"]))]
    name: String,
    /// Free-form: a method's own parameters (`uri` for web-download, …).
    #[serde(flatten)]
    rest: Map<String, Value>,
}

pub async fn import_image(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    axum::Extension(request_id): axum::Extension<ferrostack_core::http::RequestId>,
    Json(req): Json<ImportRequest>,
) -> Result<Response> {
    let as_sent = serde_json::to_value(&req).map_err(Error::internal)?;
    svc.import(&ctx, &id, &req.method.name, &as_sent, &request_id.0)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → (start, end inclusive); one range only.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (s, "") => (s.parse().ok()?, size - 1),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

pub async fn download_image_data(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let img = svc.get_authorized(&ctx, &id, "download_image").await?;
    // As Glance: only an admin reads the data of a deactivated image.
    if img.status == "deactivated" && !svc.is_admin(&ctx) {
        return Err(Error::Forbidden(
            "The requested image has been deactivated. Image data download is forbidden.".into(),
        ));
    }
    if img.status != "active" && img.status != "deactivated" {
        // Glance answers 204 for an image without data.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let size = img.size.unwrap_or(0).max(0) as u64;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len) = match range {
        None => (StatusCode::OK, 0, size),
        Some(r) => match parse_range(r, size) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
            None => {
                let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                resp.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
                );
                return Ok(resp);
            }
        },
    };
    let stream = svc.data.get(&id, start, len, size).await?;
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(c) = &img.checksum {
        if status == StatusCode::OK {
            if let Ok(v) = HeaderValue::from_str(c) {
                h.insert("content-md5", v);
            }
        }
    }
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
                .expect("ascii"),
        );
    }
    let _ = svc
        .bus
        .notify(
            "image.localhost",
            "image.send",
            // Glance's fields, which metering's image.download reads.
            serde_json::json!({
                "image_id": id,
                "bytes_sent": len,
                "owner_id": img.owner,
                "receiver_tenant_id": ctx.project_id,
                "receiver_user_id": ctx.user_id,
            }),
        )
        .await;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
    }
}
