//! The volume API's OpenAPI document, as the routes generate it, is the one
//! committed under `docs/openapi/volume.json`, so a change to a route or a
//! request type shows in review.

#[test]
fn openapi_document_is_committed() {
    ferrostack_testkit::assert_openapi_committed("volume", &ferrostack_volume::openapi_document());
}
