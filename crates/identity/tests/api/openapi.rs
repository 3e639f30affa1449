//! The OpenAPI document: committed, served, and true to the router.

use crate::cloud::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The document the code generates is the one committed under docs/openapi.
#[test]
fn openapi_document_is_committed() {
    ferrostack_testkit::assert_openapi_committed(
        "identity",
        &ferrostack_identity::openapi_document(),
    );
}

/// How many operations the identity API serves; a route added or removed
/// changes it (and the committed document).
const OPERATIONS: usize = 148;

/// `GET /openapi.json` needs no token and serves the document of every
/// operation the router routes: each one answers (a 401 without a token
/// when the document says it needs one), none is the router's 404 or 405.
#[tokio::test]
async fn openapi_document_is_served_and_true_to_the_router() {
    let c = sqlite_cloud("openapi", |_| {}).await;
    let r = c
        .http
        .get(format!("{}/openapi.json", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, ferrostack_identity::openapi_document());
    let create_user = &doc["paths"]["/v3/users"]["post"];
    assert_eq!(
        create_user["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateUserRequest"
    );
    assert_eq!(create_user["security"], json!([{"token": []}]));
    assert!(doc["components"]["schemas"]["CreateUserRequest"].is_object());

    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = template
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let r = c
                .http
                .request(method.clone(), format!("{}{path}", c.base))
                .send()
                .await
                .unwrap();
            let status = r.status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {status}"
            );
            if op.get("security").is_some() {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            }
        }
    }
    assert_eq!(operations, OPERATIONS);
}
