//! `/v2/schemas/*`: the JSON schemas glanceclient reads to validate requests
//! and to tell base attributes from custom properties.

use super::Svc;
use crate::service::{CONTAINER_FORMATS, DISK_FORMATS};
use axum::response::{IntoResponse, Response};
use ferrostack_core::openapi::{get, ApiRouter};
use serde_json::{json, Value};

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v2/schemas/image", get(show_image_schema))
        .route("/v2/schemas/metadefs/{name}", get(show_metadefs_schema))
        .route("/v2/schemas/images", get(show_images_schema))
        .route("/v2/schemas/member", get(show_member_schema))
        .route("/v2/schemas/members", get(show_members_schema))
}

fn nullable_enum(values: &[&str], description: &str) -> Value {
    let mut e: Vec<Value> = vec![Value::Null];
    e.extend(values.iter().map(|v| json!(v)));
    json!({"type": ["null", "string"], "enum": e, "description": description})
}

pub fn image_schema() -> Value {
    json!({
        "name": "image",
        "additionalProperties": {"type": "string"},
        "links": [
            {"href": "{self}", "rel": "self"},
            {"href": "{file}", "rel": "enclosure"},
            {"href": "{schema}", "rel": "describedby"}
        ],
        "properties": {
            "id": {"type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$", "description": "An identifier for the image"},
            "name": {"type": ["null", "string"], "maxLength": 255, "description": "Descriptive name for the image"},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image",
                       "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"]},
            "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"], "description": "Scope of image accessibility"},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "maxLength": 32, "description": "md5 hash of image contents."},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "maxLength": 64, "description": "Algorithm to calculate the os_hash_value"},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "maxLength": 128, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"},
            "owner": {"type": ["null", "string"], "maxLength": 255, "description": "Owner of the image"},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": nullable_enum(CONTAINER_FORMATS, "Format of the container"),
            "disk_format": nullable_enum(DISK_FORMATS, "Format of the disk"),
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}, "description": "List of strings related to the image"},
            "direct_url": {"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "stores": {"type": "string", "readOnly": true, "description": "Store in which image data resides."},
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store",
                          "items": {"type": "object", "required": ["url", "metadata"],
                                    "properties": {"url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}, "validation_data": {"type": "object"}}}},
            "kernel_id": {"type": ["null", "string"], "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.", "is_base": false},
            "ramdisk_id": {"type": ["null", "string"], "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.", "is_base": false},
            "instance_uuid": {"type": "string", "description": "Metadata which can be used to record which instance this image is associated with.", "is_base": false},
            "architecture": {"type": "string", "description": "Operating system architecture", "is_base": false},
            "os_distro": {"type": "string", "description": "Common name of operating system distribution", "is_base": false},
            "os_version": {"type": "string", "description": "Operating system version as specified by the distributor", "is_base": false}
        }
    })
}

fn images_schema() -> Value {
    json!({
        "name": "images",
        "links": [
            {"href": "{first}", "rel": "first"},
            {"href": "{next}", "rel": "next"},
            {"href": "{schema}", "rel": "describedby"}
        ],
        "properties": {
            "first": {"type": "string"},
            "images": {"type": "array", "items": image_schema()},
            "next": {"type": "string"},
            "schema": {"type": "string"}
        }
    })
}

fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": true},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"], "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"}
        }
    })
}

pub async fn show_image_schema() -> Response {
    axum::Json(image_schema()).into_response()
}

pub async fn show_images_schema() -> Response {
    axum::Json(images_schema()).into_response()
}

pub async fn show_member_schema() -> Response {
    axum::Json(member_schema()).into_response()
}

pub async fn show_members_schema() -> Response {
    axum::Json(json!({
        "name": "members",
        "links": [{"href": "{schema}", "rel": "describedby"}],
        "properties": {"members": {"type": "array", "items": member_schema()}, "schema": {"type": "string"}}
    }))
    .into_response()
}

/// `/v2/schemas/metadefs/{name}`: the metadata-definition schemas.
pub async fn show_metadefs_schema(
    axum::extract::Path(name): axum::extract::Path<String>,
) -> ferrostack_core::Result<Response> {
    let prop = json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 255}, "title": {"type": "string"},
        "description": {"type": "string"}, "type": {"type": "string",
            "enum": ["array", "boolean", "integer", "number", "object", "string", null]},
        "default": {}, "readonly": {"type": "boolean"}, "enum": {"type": "array"},
        "minimum": {"type": "number"}, "maximum": {"type": "number"}, "minLength": {"type": "integer"},
        "maxLength": {"type": "integer"}, "pattern": {"type": "string", "format": "regex"},
        "items": {"type": "object"}, "operators": {"type": "array", "items": {"type": "string"}}},
        "required": ["title", "type"]});
    let tag = json!({"name": {"type": "string", "maxLength": 255}, "created_at": {"type": "string", "format": "date-time"},
                     "updated_at": {"type": "string", "format": "date-time"}});
    let rta = json!({"name": {"type": "string", "maxLength": 80}, "prefix": {"type": "string", "maxLength": 80},
                     "properties_target": {"type": "string", "maxLength": 80},
                     "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}});
    let object = json!({"name": {"type": "string", "maxLength": 255}, "description": {"type": "string"},
                        "required": {"type": "array", "items": {"type": "string"}},
                        "properties": {"type": "object", "additionalProperties": prop},
                        "schema": {"type": "string", "readOnly": true}, "self": {"type": "string", "readOnly": true},
                        "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}});
    let namespace = json!({"namespace": {"type": "string", "maxLength": 80}, "display_name": {"type": "string", "maxLength": 80},
                           "description": {"type": "string", "maxLength": 500},
                           "visibility": {"type": "string", "enum": ["public", "private"]},
                           "protected": {"type": "boolean"}, "owner": {"type": "string", "maxLength": 255},
                           "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                           "schema": {"type": "string", "readOnly": true}, "self": {"type": "string", "readOnly": true},
                           "resource_type_associations": {"type": "array", "items": {"type": "object", "properties": rta}},
                           "properties": {"type": "object", "additionalProperties": prop},
                           "objects": {"type": "array", "items": {"type": "object", "properties": object}},
                           "tags": {"type": "array", "items": {"type": "object", "properties": tag}}});
    let list = |name: &str, item_key: &str, item: Value| {
        json!({"name": name, "properties": {item_key: {"type": "array", "items": item},
               "first": {"type": "string"}, "next": {"type": "string"}, "schema": {"type": "string"}},
               "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}, {"rel": "describedby", "href": "{schema}"}]})
    };
    let doc = match name.as_str() {
        "namespace" => {
            json!({"name": "namespace", "properties": namespace, "required": ["namespace"], "additionalProperties": false})
        }
        "namespaces" => list(
            "namespaces",
            "namespaces",
            json!({"name": "namespace", "properties": namespace}),
        ),
        "object" => {
            json!({"name": "object", "properties": object, "required": ["name"], "additionalProperties": false})
        }
        "objects" => list(
            "objects",
            "objects",
            json!({"name": "object", "properties": object}),
        ),
        "property" => {
            let mut p = prop.clone();
            p["name"] = json!("property");
            p
        }
        "properties" => {
            json!({"name": "properties", "properties": {"properties": {"type": "object", "additionalProperties": prop}}})
        }
        "resource_type" => {
            json!({"name": "resource_type_association", "properties": rta, "required": ["name"], "additionalProperties": false})
        }
        "resource_types" => list(
            "resource_type_associations",
            "resource_type_associations",
            json!({"name": "resource_type_association", "properties": rta}),
        ),
        "tag" => {
            json!({"name": "tag", "properties": tag, "required": ["name"], "additionalProperties": false})
        }
        "tags" => list("tags", "tags", json!({"name": "tag", "properties": tag})),
        _ => {
            return Err(ferrostack_core::Error::NotFound(format!(
                "No metadefs schema named {name}."
            )))
        }
    };
    Ok(axum::Json(doc).into_response())
}
