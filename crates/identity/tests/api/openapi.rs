//! The OpenAPI document: committed, served, and true to the router.

use crate::cloud::*;
use serde_json::json;

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

/// `GET /openapi.json` needs no token and is true to the router
/// (testkit's checks), with the typed body of a known operation.
#[tokio::test]
async fn openapi_document_is_served_and_true_to_the_router() {
    let c = sqlite_cloud("openapi", |_| {}).await;
    let (doc, operations) = ferrostack_testkit::assert_openapi_served(
        &c.base,
        &ferrostack_identity::openapi_document(),
    )
    .await;
    let create_user = &doc["paths"]["/v3/users"]["post"];
    assert_eq!(
        create_user["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateUserRequest"
    );
    assert_eq!(create_user["security"], json!([{"token": []}]));
    assert!(doc["components"]["schemas"]["CreateUserRequest"].is_object());
    assert_eq!(operations, OPERATIONS);
}
