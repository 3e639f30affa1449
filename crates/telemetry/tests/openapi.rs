//! The metering, metric and alarming APIs' OpenAPI documents, as the routes generate
//! them, are the ones committed under `docs/openapi/`, so a change to a
//! route shows in review.

#[test]
fn openapi_documents_are_committed() {
    for (name, doc) in ferrostack_telemetry::api::openapi_documents() {
        ferrostack_testkit::assert_openapi_committed(name, &doc);
    }
}
