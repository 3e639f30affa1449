//! The compute API's OpenAPI document is the one committed under
//! `docs/openapi/compute.json`, so a change to a route or a request type
//! shows in review (`FERROSTACK_BLESS=1` rewrites it).

#[test]
fn openapi_document_is_committed() {
    ferrostack_testkit::assert_openapi_committed(
        "compute",
        &ferrostack_compute::openapi_document(),
    );
}
