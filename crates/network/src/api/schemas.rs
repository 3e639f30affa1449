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
    let ty = match a.ty {
        AttrType::Str => "string",
        AttrType::Bool => "boolean",
        AttrType::Int => "integer",
        AttrType::Array => "array",
        AttrType::Object => "object",
        AttrType::Open => return json!({}),
    };
    if a.nullable {
        json!({"type": [ty, "null"]})
    } else {
        json!({"type": ty})
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
/// `{"<plural>": [{…}, …]}` (created all or nothing; each item bare or
/// wrapped as `{"<singular>": {…}}`). With `<plural>` present, `<singular>`
/// is not read.
pub fn create_body(kind: Kind, singular: &str, plural: &str) -> Body {
    let one = resource_object(kind, |_| true, true);
    let wrapped = json!({
        "type": "object",
        "properties": {singular: one},
        "required": [singular],
    });
    Body::json(json!({
        "description": format!("One {singular}, or several under `{plural}` (created all or nothing)."),
        "type": "object",
        "anyOf": [
            {
                "properties": {plural: {"type": "array", "items": {"anyOf": [one, wrapped]}}},
                "required": [plural],
            },
            {
                "properties": {singular: one},
                "required": [singular],
                "not": {"required": [plural]},
            },
        ],
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
/// `force` and `check_limit`.
pub fn quota_limits(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // Within a 64-bit integer: the service refuses larger numbers.
    let limit = json!({"anyOf": [
        {"type": "integer", "minimum": -1, "maximum": i64::MAX},
        {"type": "string", "pattern": "^(-1|[0-9]{1,18})$"},
    ]});
    let mut properties: Map<String, Value> = QUOTA_RESOURCES
        .iter()
        .map(|(name, _)| (name.to_string(), limit.clone()))
        .collect();
    // `force: true` sets a limit below the current usage; any other value
    // is false. `check_limit` is accepted and not read.
    properties.insert("force".into(), json!({}));
    properties.insert("check_limit".into(), json!({}));
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
        let (bulk, single) = (&body["anyOf"][0], &body["anyOf"][1]);
        assert_eq!(
            single["properties"]["subnet"]["required"],
            json!(["network_id", "ip_version", "cidr"])
        );
        assert_eq!(
            bulk["properties"]["subnets"]["items"]["anyOf"][0],
            single["properties"]["subnet"]
        );
        let network = &create_body(Kind::Network, "network", "networks").schema;
        let network = &network["anyOf"][1]["properties"]["network"];
        assert!(network.get("required").is_none());
        assert_eq!(
            network["properties"]["provider:segmentation_id"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(network["properties"]["mtu"]["type"], "integer");
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
        assert_eq!(schema["properties"]["force"], json!({}));
        assert_eq!(schema["additionalProperties"], false);
    }
}
