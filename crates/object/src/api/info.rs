//! `GET /info`: the capabilities clients and tempest discover.

use super::headers::*;
use super::Verb;
use crate::service::ObjectService;
use axum::response::{IntoResponse, Response};
use ferrostack_core::{Error, Result};
use serde_json::json;

pub fn show(svc: &ObjectService, verb: Verb, _query: &[(String, String)]) -> Result<Response> {
    if !matches!(verb, Verb::Get | Verb::Head | Verb::Options) {
        return Err(Error::MethodNotAllowed(String::new()));
    }
    let cfg = &svc.config.object;
    let doc = json!({
        "swift": {
            // The Swift release whose API this one follows (clients gate
            // features on it: account object-count quotas need 2.34).
            "version": "2.35.0",
            "max_file_size": cfg.max_file_size,
            "max_meta_name_length": MAX_META_NAME,
            "max_meta_value_length": MAX_META_VALUE,
            "max_meta_count": MAX_META_COUNT,
            "max_meta_overall_size": MAX_META_OVERALL,
            "max_header_size": 8192,
            "max_object_name_length": MAX_OBJECT_NAME,
            "max_container_name_length": MAX_CONTAINER_NAME,
            "container_listing_limit": cfg.listing_limit,
            "account_listing_limit": cfg.listing_limit,
            "max_account_name_length": 256,
            "extra_header_count": 0,
            "valid_api_versions": ["v1"],
            "policies": [{"name": "Policy-0", "aliases": "Policy-0", "default": true}],
            "allow_account_management": false,
            "account_autocreate": true,
            "strict_cors_mode": true,
        },
        "tempurl": {
            "methods": ["GET", "HEAD", "PUT", "POST", "DELETE"],
            "incoming_remove_headers": ["x-timestamp"],
            "incoming_allow_headers": [],
            "outgoing_remove_headers": ["x-object-meta-*"],
            "outgoing_allow_headers": ["x-object-meta-public-*"],
            "allowed_digests": ["sha1", "sha256", "sha512"],
        },
        "slo": {
            "max_manifest_segments": crate::large::MAX_SEGMENTS,
            "max_manifest_size": crate::large::MAX_MANIFEST_BYTES,
            "min_segment_size": 1,
            "yield_frequency": 10,
        },
        "dlo": {"max_get_time": 86400},
        "account_quotas": {},
        "container_quotas": {},
        "versioned_writes": {"allowed_flags": ["x-versions-location", "x-history-location"]},
        "tempauth": {"account_acls": false},
        "keystoneauth": {},
        "bulk_delete": {"max_deletes_per_request": 10000, "max_failed_deletes": 1000},
    });
    Ok((
        [("content-type", "application/json; charset=utf-8")],
        if verb == Verb::Head {
            String::new()
        } else {
            doc.to_string()
        },
    )
        .into_response())
}
