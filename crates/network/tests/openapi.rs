//! The networking API's OpenAPI document: committed (so that a change to a
//! route or a request body shows in review) and served without a token.

mod common;

#[test]
fn openapi_document_is_committed() {
    ferrostack_testkit::assert_openapi_committed(
        "network",
        &ferrostack_network::openapi_document(),
    );
}

/// What the router serves: 17 fixed operations (discovery, extensions,
/// router interfaces, quotas, service providers, IP availability), 5 per
/// resource kind (list, create, show, update, delete) for 8 kinds, 6 tag
/// operations for the 6 taggable kinds, and 4 per agent-hosted kind.
const SERVED_OPERATIONS: usize = 17 + 8 * 5 + 6 * 6 + 2 * 4;

#[tokio::test]
async fn openapi_document_is_served_without_a_token() {
    let kit = ferrostack_testkit::start("network-openapi", |_| {}).await;
    let db = ferrostack_db::Db::connect(&format!(
        "sqlite://{}/network.sqlite?mode=rwc",
        kit.dir.display()
    ))
    .await
    .unwrap();
    let c = common::serve_network(kit, db).await;
    let (doc, operations) =
        ferrostack_testkit::assert_openapi_served(&c.net, &ferrostack_network::openapi_document())
            .await;

    let add = &doc["paths"]["/v2.0/routers/{id}/add_router_interface"]["put"];
    assert_eq!(
        add["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/RouterInterfaceRequest"
    );
    assert_eq!(add["security"][0]["token"], serde_json::json!([]));
    assert!(
        doc["components"]["schemas"]["RouterInterfaceRequest"]["properties"]["subnet_id"]
            .is_object()
    );
    let create = &doc["paths"]["/v2.0/networks"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(
        create["anyOf"][1]["properties"]["network"]["properties"]["router:external"]["type"],
        "boolean"
    );

    assert_eq!(operations, SERVED_OPERATIONS);
}
