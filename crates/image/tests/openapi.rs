//! The image API's OpenAPI document, as the routes generate it, is the one
//! committed under `docs/openapi/image.json`, so a change to a route or a
//! request type shows in review.

#[test]
fn openapi_document_is_committed() {
    ferrostack_testkit::assert_openapi_committed("image", &ferrostack_image::openapi_document());
}
