//! S3's errors: a status, a code and a message, as S3's XML body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::Error;

/// An S3 error: status, code and message, rendered as S3's XML.
#[derive(Debug)]
pub struct S3Error {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    message: String,
}

impl S3Error {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: &str) -> Self {
        S3Error {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn internal() -> Self {
        S3Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }
    pub(crate) fn signature() -> Self {
        S3Error::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    }
}

impl From<Error> for S3Error {
    fn from(e: Error) -> Self {
        let (status, code) = match e.base() {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "NoSuchKey"),
            Error::Unauthorized(_) | Error::Forbidden(_) => (StatusCode::FORBIDDEN, "AccessDenied"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "BucketNotEmpty"),
            Error::PayloadTooLarge(_) => (StatusCode::BAD_REQUEST, "EntityTooLarge"),
            Error::Status(s, _) if s.as_u16() == 422 => (StatusCode::BAD_REQUEST, "BadDigest"),
            Error::Status(s, _) if s.as_u16() == 412 => {
                (StatusCode::PRECONDITION_FAILED, "PreconditionFailed")
            }
            Error::Status(s, _) if s.as_u16() == 416 => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange")
            }
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "InvalidArgument"),
            _ => return S3Error::internal(),
        };
        S3Error::new(status, code, e.message())
    }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code,
            xml(&self.message)
        );
        (self.status, [("content-type", "application/xml")], body).into_response()
    }
}

pub(crate) fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
