//! Schemas of the bodies the handlers take as free-form JSON, for the
//! OpenAPI document: resource create and update bodies from the service's
//! attribute tables (the same tables that refuse unknown attributes), and
//! the quota limits from the quota resources.

use crate::service::attributes::{attributes, AttrType, AttrUse, Attribute};
use crate::service::QUOTA_RESOURCES;
use crate::store::Kind;
use ferrostack_core::openapi::Body;
use serde_json::{json, Map, Value};

fn attribute_schema(a: &Attribute) -> Value {
    match a.ty {
        AttrType::Str => json!({"type": "string"}),
        AttrType::Bool => json!({"type": "boolean"}),
        AttrType::Int => json!({"type": "integer"}),
        AttrType::Array => json!({"type": "array"}),
        AttrType::Object => json!({"type": "object"}),
        AttrType::Open => json!({}),
    }
}

/// One resource's attributes as an object schema: those `wanted` as
/// properties, no others (the service refuses them).
fn resource_object(kind: Kind, wanted: impl Fn(&Attribute) -> bool, required: bool) -> Value {
    let mut properties = Map::new();
    let mut must = Vec::new();
    for a in attributes(kind).filter(|a| wanted(a)) {
        properties.insert(a.name.to_owned(), attribute_schema(a));
        if required && a.usage == AttrUse::Required {
            must.push(a.name);
        }
    }
    let mut object = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !must.is_empty() {
        object["required"] = json!(must);
    }
    object
}

/// `POST /{resources}`: `{"<singular>": {…}}`, or several at once as
/// `{"<plural>": [{…}, …]}` (created all or nothing).
pub fn create_body(kind: Kind, singular: &str, plural: &str) -> Body {
    let one = resource_object(kind, |_| true, true);
    Body::json(json!({
        "description": format!("One {singular}, or several under `{plural}` (created all or nothing)."),
        "type": "object",
        "properties": {
            singular: one,
            plural: {"type": "array", "items": one},
        },
        "anyOf": [{"required": [singular]}, {"required": [plural]}],
    }))
}

/// `PUT /{resources}/{id}`: `{"<singular>": {…}}` with the attributes an
/// update changes.
pub fn update_body(kind: Kind, singular: &str) -> Body {
    let changes = resource_object(kind, |a| a.usage == AttrUse::Updatable, false);
    Body::json(json!({
        "type": "object",
        "properties": {singular: changes},
        "required": [singular],
    }))
}

/// The `quota` of `PUT /quotas/{project}`: a limit per quota resource (an
/// integer from -1, unlimited, or its decimal string, as Neutron accepts),
/// and `force` to set a limit below the current usage.
pub fn quota_limits(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let limit = json!({"anyOf": [
        {"type": "integer", "minimum": -1},
        {"type": "string", "pattern": "^(-1|[0-9]+)$"},
    ]});
    let mut properties: Map<String, Value> = QUOTA_RESOURCES
        .iter()
        .map(|(name, _)| (name.to_string(), limit.clone()))
        .collect();
    properties.insert("force".into(), json!({"type": "boolean"}));
    properties.insert("check_limit".into(), json!({"type": "boolean"}));
    let schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    schemars::Schema::try_from(schema).expect("an object is a schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_require_what_the_service_requires() {
        let body = create_body(Kind::Subnet, "subnet", "subnets").schema;
        assert_eq!(
            body["properties"]["subnet"]["required"],
            json!(["network_id", "ip_version", "cidr"])
        );
        assert_eq!(
            body["properties"]["subnets"]["items"],
            body["properties"]["subnet"]
        );
        let network = &create_body(Kind::Network, "network", "networks").schema;
        assert!(network["properties"]["network"].get("required").is_none());
        assert_eq!(
            network["properties"]["network"]["properties"]["provider:segmentation_id"]["type"],
            "integer"
        );
    }

    #[test]
    fn update_bodies_carry_only_what_an_update_changes() {
        let body = update_body(Kind::Network, "network").schema;
        let props = body["properties"]["network"]["properties"]
            .as_object()
            .unwrap();
        assert!(props.contains_key("mtu") && props.contains_key("name"));
        assert!(!props.contains_key("provider:network_type"));
        assert!(!props.contains_key("project_id"));
    }

    #[test]
    fn quota_limits_name_every_quota_resource() {
        let schema = quota_limits(&mut schemars::SchemaGenerator::default()).to_value();
        for (name, _) in QUOTA_RESOURCES {
            assert!(schema["properties"][name]["anyOf"].is_array(), "{name}");
        }
        assert_eq!(schema["properties"]["force"]["type"], "boolean");
        assert_eq!(schema["additionalProperties"], false);
    }
}
