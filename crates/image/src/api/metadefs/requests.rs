//! The request bodies of the metadata-definition API, in the shapes of
//! Glance's metadefs schemas (`/v2/schemas/metadefs/*`). A property
//! definition is a JSON-schema fragment: its title and type are checked,
//! the rest of it is kept as given.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A name of 1 to `MAX` characters: the width of the column that keeps it,
/// refused by the deserializer (a 400 naming the field) when it is longer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Name<const MAX: usize>(pub String);

impl<const MAX: usize> Name<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name that did not come through a body (a path's), checked alike.
    pub fn parse(field: &str, s: &str) -> ferrostack_core::Result<Self> {
        Self::check(s.to_owned()).map_err(|why| {
            ferrostack_core::Error::BadRequest(format!("Invalid input for field '{field}': {why}"))
        })
    }

    fn check(s: String) -> Result<Self, String> {
        if (1..=MAX).contains(&s.chars().count()) {
            Ok(Name(s))
        } else {
            Err(format!("a string of 1 to {MAX} characters"))
        }
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Name<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::check(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl<const MAX: usize> JsonSchema for Name<MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Name{MAX}").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "minLength": 1, "maxLength": MAX})
    }
}

/// An attribute an update keeps (absent), clears (`null`) or sets.
#[derive(Debug, Default)]
pub enum Nullable<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

/// Only a present field reaches this (the field is `#[serde(default)]`).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(Nullable::Null, Nullable::Set))
    }
}

/// What it accepts is what `Option<T>` accepts.
impl<T: JsonSchema> JsonSchema for Nullable<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        Option::<T>::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        Option::<T>::json_schema(generator)
    }
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

/// `POST /v2/metadefs/namespaces`: a namespace, and optionally what it holds.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateNamespaceRequest {
    pub namespace: Name<80>,
    #[serde(default)]
    pub display_name: Nullable<String>,
    #[serde(default)]
    pub description: Nullable<String>,
    pub visibility: Option<Visibility>,
    pub protected: Option<bool>,
    #[serde(default)]
    pub resource_type_associations: Vec<AssociationRequest>,
    /// Property definitions by name.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"minLength": 1, "maxLength": 255}))]
    pub properties: BTreeMap<Name<255>, PropertyDefinition>,
    #[serde(default)]
    pub objects: Vec<ObjectRequest>,
    #[serde(default)]
    pub tags: Vec<TagRequest>,
}

/// `PUT /v2/metadefs/namespaces/{ns}`: a new name and attributes; what the
/// namespace holds is changed through its own resources.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateNamespaceRequest {
    pub namespace: Option<Name<80>>,
    #[serde(default)]
    pub display_name: Nullable<String>,
    #[serde(default)]
    pub description: Nullable<String>,
    pub visibility: Option<Visibility>,
    pub protected: Option<bool>,
}

/// A namespace's own attributes, as a create or an update gives them.
pub struct NamespaceAttributes<'a> {
    pub display_name: &'a Nullable<String>,
    pub description: &'a Nullable<String>,
    pub visibility: Option<Visibility>,
    pub protected: Option<bool>,
}

impl CreateNamespaceRequest {
    pub fn attributes(&self) -> NamespaceAttributes<'_> {
        NamespaceAttributes {
            display_name: &self.display_name,
            description: &self.description,
            visibility: self.visibility,
            protected: self.protected,
        }
    }
}

impl UpdateNamespaceRequest {
    pub fn attributes(&self) -> NamespaceAttributes<'_> {
        NamespaceAttributes {
            display_name: &self.display_name,
            description: &self.description,
            visibility: self.visibility,
            protected: self.protected,
        }
    }
}

/// `POST …/resource_types`: the namespace applies to a resource type.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AssociationRequest {
    pub name: Name<80>,
    /// Prefixed to the namespace's property names on that resource type.
    pub prefix: Option<String>,
    /// The part of the resource its properties apply to (Cinder's `image`).
    pub properties_target: Option<String>,
}

/// The JSON types a property definition may have.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    Array,
    Boolean,
    Integer,
    Number,
    Object,
    String,
}

impl PropertyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyType::Array => "array",
            PropertyType::Boolean => "boolean",
            PropertyType::Integer => "integer",
            PropertyType::Number => "number",
            PropertyType::Object => "object",
            PropertyType::String => "string",
        }
    }
}

/// A property definition: a JSON-schema fragment with a title and a type.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PropertyDefinition {
    pub title: Name<255>,
    #[serde(rename = "type")]
    pub kind: PropertyType,
    /// Free-form: the rest of the fragment (`enum`, `minimum`, `items`,
    /// `default`, …), kept as given.
    #[serde(flatten)]
    pub fragment: Map<String, Value>,
}

impl PropertyDefinition {
    /// The definition as stored and shown.
    pub fn document(&self) -> Map<String, Value> {
        let mut doc = self.fragment.clone();
        doc.insert("type".into(), self.kind.as_str().into());
        doc.insert("title".into(), self.title.as_str().into());
        doc
    }

    /// The definition of the namespace property `name`, as stored and shown.
    pub fn named(&self, name: &str) -> Value {
        let mut doc = self.document();
        doc.insert("name".into(), name.into());
        Value::Object(doc)
    }
}

/// `POST …/properties`: a property definition and its name.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreatePropertyRequest {
    pub name: Name<255>,
    pub title: Name<255>,
    #[serde(rename = "type")]
    pub kind: PropertyType,
    /// Free-form: the rest of the fragment, kept as given.
    #[serde(flatten)]
    pub fragment: Map<String, Value>,
}

/// `PUT …/properties/{name}`: the definition, renamed when `name` differs.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdatePropertyRequest {
    pub name: Option<Name<255>>,
    pub title: Name<255>,
    #[serde(rename = "type")]
    pub kind: PropertyType,
    /// Free-form: the rest of the fragment, kept as given.
    #[serde(flatten)]
    pub fragment: Map<String, Value>,
}

// A request's own fields are not flattened from a shared struct: serde
// loses the path of an error inside a flattened field, and the 400 is to
// name the field.
impl From<CreatePropertyRequest> for PropertyDefinition {
    fn from(r: CreatePropertyRequest) -> Self {
        PropertyDefinition {
            title: r.title,
            kind: r.kind,
            fragment: r.fragment,
        }
    }
}

impl From<UpdatePropertyRequest> for PropertyDefinition {
    fn from(r: UpdatePropertyRequest) -> Self {
        PropertyDefinition {
            title: r.title,
            kind: r.kind,
            fragment: r.fragment,
        }
    }
}

/// `POST …/objects`, `PUT …/objects/{name}`: a named group of properties.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ObjectRequest {
    pub name: Name<255>,
    pub description: Option<String>,
    /// Names of the properties an instance of the object must have.
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyDefinition>,
}

/// A tag: `PUT …/tags/{name}` renames to it; `POST …/tags` takes a list.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TagRequest {
    pub name: Name<255>,
}

/// `POST …/tags`: the namespace's tags, replacing those it has.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateTagsRequest {
    pub tags: Vec<TagRequest>,
}
