//! Shared pieces of every Ferrostack service.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod node;
pub mod openapi;
pub mod pagination;
pub mod policy;
pub mod server;
pub mod service_client;
pub mod time;

pub use error::{Error, ErrorStyle, Result};

/// A URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
