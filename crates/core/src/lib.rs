//! Shared pieces of every Ferrostack service.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod openapi;
pub mod pagination;
pub mod policy;
pub mod server;
pub mod service_client;
pub mod time;

pub use error::{Error, ErrorStyle, Result};
