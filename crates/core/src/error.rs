//! The one internal error type of every service, and the one place where it
//! becomes an HTTP response.
//!
//! Handlers return [`Error`]; its `IntoResponse` only records the error in the
//! response extensions. The per-service layer in [`crate::http`] then renders
//! the body in that service's OpenStack style ([`ErrorStyle`]), so a handler
//! never needs to know which dialect its service speaks.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A status the variants above do not name, produced by the HTTP layer
    /// itself (408 slow body, 414 long URI, 431 large headers, 400 from a
    /// framework rejection) so it is still rendered in the service's style.
    #[error("{1}")]
    Status(StatusCode, String),
    /// An error with the service-specific type name some dialects report
    /// (Neutron's `"type": "NetworkNotFound"`).
    #[error("{1}")]
    Typed(&'static str, Box<Error>),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Typed(_, e) => e.status(),
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Status(s, _) => *s,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::BadRequest(m)
            | Error::Unauthorized(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::MethodNotAllowed(m)
            | Error::NotAcceptable(m)
            | Error::Conflict(m)
            | Error::PayloadTooLarge(m)
            | Error::UnsupportedMediaType(m)
            | Error::NotImplemented(m)
            | Error::Unavailable(m)
            | Error::Internal(m)
            | Error::Status(_, m) => m,
            Error::Typed(_, e) => e.message(),
        }
    }

    /// Convenience for "Could not find <kind>: <id>." (Keystone's wording).
    pub fn not_found(kind: &str, id: &str) -> Self {
        Error::NotFound(format!("Could not find {kind}: {id}."))
    }

    /// Attach a type name (rendered by dialects that report one).
    pub fn typed(self, kind: &'static str) -> Self {
        match self {
            Error::Typed(_, e) => Error::Typed(kind, e),
            e => Error::Typed(kind, Box::new(e)),
        }
    }

    /// The error without its type name.
    pub fn base(&self) -> &Error {
        match self {
            Error::Typed(_, e) => e.base(),
            e => e,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}

/// Marker stored in response extensions; rendered by [`crate::http::service_layer`].
#[derive(Clone, Debug)]
pub struct ErrorMarker(pub Arc<Error>);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut resp = self.status().into_response();
        resp.extensions_mut().insert(ErrorMarker(Arc::new(self)));
        resp
    }
}

/// The error body dialects of the OpenStack services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"error": {"code", "title", "message"}}`
    Keystone,
    /// `{"itemNotFound": {"code", "message"}}` (Nova and Cinder)
    Nova,
    /// `{"NeutronError": {"type", "message", "detail"}}`
    Neutron,
    /// Glance answers with webob's plain text bodies.
    Glance,
    /// Ceilometer's WSME faults: `{"error_message": {"faultcode",
    /// "faultstring", "debuginfo"}}` (`Client` for 4xx, `Server` for 5xx).
    Ceilometer,
    /// Gnocchi's (and Aodh's) pecan bodies: `{"code", "title", "description"}`.
    Gnocchi,
}

impl ErrorStyle {
    pub fn render(self, err: &Error) -> (Option<&'static str>, String) {
        let status = err.status();
        let code = status.as_u16();
        let title = status.canonical_reason().unwrap_or("Error");
        match self {
            ErrorStyle::Keystone => (
                Some("application/json"),
                serde_json::json!({"error": {"code": code, "title": title, "message": err.message()}})
                    .to_string(),
            ),
            ErrorStyle::Nova => {
                let key = match err.base() {
                    Error::BadRequest(_) => "badRequest",
                    Error::Unauthorized(_) => "unauthorized",
                    Error::Forbidden(_) => "forbidden",
                    Error::NotFound(_) => "itemNotFound",
                    Error::MethodNotAllowed(_) => "badMethod",
                    Error::NotAcceptable(_) => "notAcceptable",
                    Error::Conflict(_) => "conflictingRequest",
                    Error::PayloadTooLarge(_) => "overLimit",
                    Error::UnsupportedMediaType(_) => "badMediaType",
                    Error::NotImplemented(_) => "notImplemented",
                    Error::Unavailable(_) => "serviceUnavailable",
                    Error::Internal(_) => "computeFault",
                    Error::Status(s, _) if s.is_server_error() => "computeFault",
                    Error::Status(..) => "badRequest",
                    Error::Typed(..) => unreachable!("base() strips types"),
                };
                (
                    Some("application/json"),
                    serde_json::json!({key: {"code": code, "message": err.message()}}).to_string(),
                )
            }
            ErrorStyle::Neutron => {
                let kind = match err {
                    Error::Typed(k, _) => k,
                    Error::BadRequest(_) => "HTTPBadRequest",
                    Error::Unauthorized(_) => "HTTPUnauthorized",
                    Error::Forbidden(_) => "HTTPForbidden",
                    Error::NotFound(_) => "HTTPNotFound",
                    Error::MethodNotAllowed(_) => "HTTPMethodNotAllowed",
                    Error::NotAcceptable(_) => "HTTPNotAcceptable",
                    Error::Conflict(_) => "HTTPConflict",
                    Error::PayloadTooLarge(_) => "HTTPRequestEntityTooLarge",
                    Error::UnsupportedMediaType(_) => "HTTPUnsupportedMediaType",
                    Error::NotImplemented(_) => "HTTPNotImplemented",
                    Error::Unavailable(_) => "HTTPServiceUnavailable",
                    Error::Internal(_) => "HTTPInternalServerError",
                    Error::Status(StatusCode::REQUEST_TIMEOUT, _) => "HTTPRequestTimeout",
                    Error::Status(StatusCode::URI_TOO_LONG, _) => "HTTPRequestURITooLong",
                    Error::Status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, _) => {
                        "HTTPRequestHeaderFieldsTooLarge"
                    }
                    Error::Status(..) => "HTTPError",
                };
                (
                    Some("application/json"),
                    serde_json::json!({"NeutronError": {"type": kind, "message": err.message(), "detail": ""}})
                        .to_string(),
                )
            }
            ErrorStyle::Glance => (
                Some("text/plain; charset=UTF-8"),
                format!("{code} {title}\n\n{}\n\n   ", err.message()),
            ),
            ErrorStyle::Ceilometer => {
                let faultcode = if status.is_server_error() { "Server" } else { "Client" };
                (
                    Some("application/json"),
                    serde_json::json!({"error_message": {"faultcode": faultcode, "faultstring": err.message(), "debuginfo": null}})
                        .to_string(),
                )
            }
            ErrorStyle::Gnocchi => (
                Some("application/json"),
                serde_json::json!({"code": code, "title": title, "description": err.message()})
                    .to_string(),
            ),
        }
    }
}
