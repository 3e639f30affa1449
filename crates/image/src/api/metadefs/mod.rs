//! Metadata definitions (`/v2/metadefs/*`): namespaces with their objects,
//! properties, tags and resource-type associations, and the resource types.
//! Every handler enforces Glance's metadef rule for its operation
//! (`policy.rs`: writes are `metadef_admin`); a namespace the caller may
//! not see (private and not its project's) is 404 before any rule.

use super::Svc;
use crate::store::metadefs::{self as store, Kind, Namespace};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{delete, get, ApiRouter};
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};

mod requests;

use requests::{
    AssociationRequest, CreateNamespaceRequest, CreatePropertyRequest, CreateTagsRequest, Name,
    NamespaceAttributes, Nullable, ObjectRequest, PropertyDefinition, TagRequest,
    UpdateNamespaceRequest, UpdatePropertyRequest,
};

/// The resource types metadata can apply to, as Glance seeds them.
const RESOURCE_TYPES: &[&str] = &[
    "OS::Cinder::Volume",
    "OS::Glance::Image",
    "OS::Glance::Snapshot",
    "OS::Nova::Aggregate",
    "OS::Nova::Flavor",
    "OS::Nova::Server",
    "OS::Trove::Instance",
];

pub fn routes() -> ApiRouter<Svc> {
    ApiRouter::new()
        .route("/v2/metadefs/resource_types", get(list_resource_types))
        .route(
            "/v2/metadefs/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}",
            get(show_namespace)
                .put(update_namespace)
                .delete(delete_namespace),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}/objects",
            get(list_objects).post(create_object).delete(delete_objects),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}/objects/{name}",
            get(show_object).put(update_object).delete(delete_object),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}/properties",
            get(list_properties)
                .post(create_property)
                .delete(delete_properties),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}/properties/{name}",
            get(show_property)
                .put(update_property)
                .delete(delete_property),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}/tags",
            get(list_tags).post(create_tags).delete(delete_tags),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}/tags/{name}",
            get(show_tag)
                .post(create_tag)
                .put(update_tag)
                .delete(delete_tag),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}/resource_types",
            get(list_associations).post(create_association),
        )
        .route(
            "/v2/metadefs/namespaces/{ns}/resource_types/{name}",
            delete(delete_association),
        )
}

fn now() -> String {
    crate::store::now_str()
}

/// Glance's database-layer visibility: admins, public namespaces, the owner.
fn visible(svc: &Svc, ctx: &AuthContext, n: &Namespace) -> bool {
    svc.is_admin(ctx)
        || n.body["visibility"] == "public"
        || (n.owner.is_some() && n.owner == ctx.project_id)
}

/// The namespace `ns` if the caller may see it (404) and take `action` on
/// it or what it holds (403), with Glance's metadef target.
async fn namespace(svc: &Svc, ctx: &AuthContext, ns: &str, action: &str) -> Result<Namespace> {
    let n = store::get_namespace(&svc.db, ns)
        .await?
        .filter(|n| visible(svc, ctx, n))
        .ok_or_else(|| {
            Error::NotFound(format!("Metadata definition namespace={ns} was not found."))
        })?;
    let target = json!({"project_id": n.owner, "visibility": n.body["visibility"]});
    svc.authorize(ctx, action, &target)?;
    Ok(n)
}

/// A rule about the caller's own project (listing, creating).
fn authorize_for_project(svc: &Svc, ctx: &AuthContext, action: &str) -> Result<()> {
    let target = crate::policy::project_target(ctx.project_id.as_deref());
    svc.authorize(ctx, action, &target)
}

async fn namespace_view(svc: &Svc, n: &Namespace, full: bool) -> Result<Value> {
    let mut v = n.body.clone();
    v["namespace"] = json!(n.namespace);
    v["owner"] = json!(n.owner);
    v["self"] = json!(format!("/v2/metadefs/namespaces/{}", n.namespace));
    v["schema"] = json!("/v2/schemas/metadefs/namespace");
    let assoc = store::list_items(&svc.db, &n.namespace, Kind::ResourceType).await?;
    if !assoc.is_empty() {
        v["resource_type_associations"] = Value::Array(assoc.into_iter().map(|(_, b)| b).collect());
    }
    if full {
        let props = store::list_items(&svc.db, &n.namespace, Kind::Property).await?;
        if !props.is_empty() {
            v["properties"] = Value::Object(props.into_iter().collect());
        }
        let objs = store::list_items(&svc.db, &n.namespace, Kind::Object).await?;
        if !objs.is_empty() {
            v["objects"] = Value::Array(objs.into_iter().map(|(_, b)| b).collect());
        }
        let tags = store::list_items(&svc.db, &n.namespace, Kind::Tag).await?;
        if !tags.is_empty() {
            v["tags"] = Value::Array(tags.into_iter().map(|(_, b)| b).collect());
        }
    }
    Ok(v)
}

// ----- resource types -----

async fn list_resource_types(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    authorize_for_project(&svc, &ctx, "list_metadef_resource_types")?;
    let ts = "2014-08-28T17:13:06Z";
    let types: Vec<Value> = RESOURCE_TYPES
        .iter()
        .map(|n| json!({"name": n, "created_at": ts, "updated_at": ts}))
        .collect();
    Ok(axum::Json(json!({"resource_types": types})).into_response())
}

fn association(a: &AssociationRequest) -> Value {
    let t = now();
    json!({"name": a.name.as_str(), "prefix": a.prefix, "properties_target": a.properties_target,
           "created_at": t, "updated_at": t})
}

async fn list_associations(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "get_metadef_resource_type").await?;
    let items: Vec<Value> = store::list_items(&svc.db, &ns, Kind::ResourceType)
        .await?
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    Ok(axum::Json(json!({"resource_type_associations": items})).into_response())
}

async fn create_association(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
    Json(req): Json<AssociationRequest>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "add_metadef_resource_type_association").await?;
    let name = req.name.as_str();
    if store::get_item(&svc.db, &ns, Kind::ResourceType, name)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "Resource type {name} is already associated with namespace {ns}."
        )));
    }
    let a = association(&req);
    store::put_item(&svc.db, &ns, Kind::ResourceType, name, &a, None).await?;
    Ok((StatusCode::CREATED, axum::Json(a)).into_response())
}

async fn delete_association(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "remove_metadef_resource_type_association").await?;
    if store::delete_item(&svc.db, &ns, Kind::ResourceType, Some(&name)).await? == 0 {
        return Err(Error::NotFound(format!(
            "Resource type {name} is not associated with namespace {ns}."
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- namespaces -----

async fn list_namespaces(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    authorize_for_project(&svc, &ctx, "get_metadef_namespaces")?;
    let mut out = Vec::new();
    for n in store::list_namespaces(&svc.db).await? {
        if visible(&svc, &ctx, &n) {
            out.push(namespace_view(&svc, &n, false).await?);
        }
    }
    Ok(axum::Json(json!({"namespaces": out, "first": "/v2/metadefs/namespaces", "schema": "/v2/schemas/metadefs/namespaces"}))
        .into_response())
}

fn namespace_body(a: NamespaceAttributes, mut body: Value) -> Value {
    for (k, v) in [
        ("display_name", a.display_name),
        ("description", a.description),
    ] {
        match v {
            Nullable::Absent => {}
            Nullable::Null => body[k] = Value::Null,
            Nullable::Set(s) => body[k] = json!(s),
        }
    }
    if let Some(v) = a.visibility {
        body["visibility"] = json!(v.as_str());
    }
    if let Some(p) = a.protected {
        body["protected"] = json!(p);
    }
    body["updated_at"] = json!(now());
    body
}

async fn create_namespace(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<CreateNamespaceRequest>,
) -> Result<Response> {
    authorize_for_project(&svc, &ctx, "add_metadef_namespace")?;
    let name = req.namespace.as_str();
    if store::get_namespace(&svc.db, name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "Metadata definition namespace={name} already exists."
        )));
    }
    let t = now();
    let doc = namespace_body(
        req.attributes(),
        json!({"visibility": "private", "protected": false, "created_at": t, "display_name": name}),
    );
    let n = Namespace {
        namespace: name.to_owned(),
        owner: ctx.project_id.clone(),
        body: doc,
    };
    store::put_namespace(&svc.db, &n, None).await?;
    for a in &req.resource_type_associations {
        let doc = association(a);
        store::put_item(
            &svc.db,
            name,
            Kind::ResourceType,
            a.name.as_str(),
            &doc,
            None,
        )
        .await?;
    }
    for (pn, p) in &req.properties {
        let doc = p.named(pn.as_str());
        store::put_item(&svc.db, name, Kind::Property, pn.as_str(), &doc, None).await?;
    }
    for ob in &req.objects {
        let doc = object_doc(ob, None);
        store::put_item(&svc.db, name, Kind::Object, ob.name.as_str(), &doc, None).await?;
    }
    for tg in &req.tags {
        let tn = tg.name.as_str();
        store::put_item(&svc.db, name, Kind::Tag, tn, &tag_doc(tn, None), None).await?;
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(namespace_view(&svc, &n, true).await?),
    )
        .into_response())
}

async fn show_namespace(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    let n = namespace(&svc, &ctx, &ns, "get_metadef_namespace").await?;
    Ok(axum::Json(namespace_view(&svc, &n, true).await?).into_response())
}

async fn update_namespace(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
    Json(req): Json<UpdateNamespaceRequest>,
) -> Result<Response> {
    let mut n = namespace(&svc, &ctx, &ns, "modify_metadef_namespace").await?;
    if let Some(new) = &req.namespace {
        if new.0 != ns && store::get_namespace(&svc.db, new.as_str()).await?.is_some() {
            return Err(Error::Conflict(format!(
                "Metadata definition namespace={} already exists.",
                new.0
            )));
        }
        n.namespace = new.0.clone();
    }
    n.body = namespace_body(req.attributes(), n.body.clone());
    store::put_namespace(&svc.db, &n, Some(&ns)).await?;
    Ok(axum::Json(namespace_view(&svc, &n, false).await?).into_response())
}

async fn delete_namespace(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    let n = namespace(&svc, &ctx, &ns, "delete_metadef_namespace").await?;
    if n.body["protected"] == true {
        return Err(Error::Forbidden(format!(
            "Metadata definition namespace {ns} is protected and cannot be deleted."
        )));
    }
    store::delete_namespace(&svc.db, &ns).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- objects -----

fn object_doc(o: &ObjectRequest, prev: Option<&Value>) -> Value {
    let t = now();
    let created = prev
        .and_then(|p| p.get("created_at").cloned())
        .unwrap_or_else(|| json!(t));
    let properties: Map<String, Value> = o
        .properties
        .iter()
        .map(|(k, p)| (k.clone(), Value::Object(p.document())))
        .collect();
    json!({"name": o.name.as_str(), "description": o.description, "required": o.required,
           "properties": properties, "created_at": created, "updated_at": t,
           "schema": "v2/schemas/metadefs/object"})
}

fn with_self(mut doc: Value, ns: &str, kind: &str, name: &str) -> Value {
    doc["self"] = json!(format!("/v2/metadefs/namespaces/{ns}/{kind}/{name}"));
    doc
}

async fn list_objects(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "get_metadef_objects").await?;
    let items: Vec<Value> = store::list_items(&svc.db, &ns, Kind::Object)
        .await?
        .into_iter()
        .map(|(n, b)| with_self(b, &ns, "objects", &n))
        .collect();
    Ok(
        axum::Json(json!({"objects": items, "schema": "v2/schemas/metadefs/objects"}))
            .into_response(),
    )
}

async fn create_object(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
    Json(req): Json<ObjectRequest>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "add_metadef_object").await?;
    let name = req.name.as_str();
    if store::get_item(&svc.db, &ns, Kind::Object, name)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "A metadata definition object with name={name} already exists in namespace={ns}."
        )));
    }
    let doc = object_doc(&req, None);
    store::put_item(&svc.db, &ns, Kind::Object, name, &doc, None).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(with_self(doc, &ns, "objects", name)),
    )
        .into_response())
}

async fn item(svc: &Svc, ns: &str, kind: Kind, name: &str) -> Result<Value> {
    store::get_item(&svc.db, ns, kind, name)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "Metadata definition {name} was not found in namespace {ns}."
            ))
        })
}

/// A rename of `old` to `new` must not replace another item of that name.
async fn ensure_free(svc: &Svc, ns: &str, kind: Kind, new: &str, old: &str) -> Result<()> {
    if new != old && store::get_item(&svc.db, ns, kind, new).await?.is_some() {
        return Err(Error::Conflict(format!(
            "A metadata definition {} with name={new} already exists in namespace={ns}.",
            kind.as_str()
        )));
    }
    Ok(())
}

async fn show_object(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "get_metadef_object").await?;
    let doc = item(&svc, &ns, Kind::Object, &name).await?;
    Ok(axum::Json(with_self(doc, &ns, "objects", &name)).into_response())
}

async fn update_object(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
    Json(req): Json<ObjectRequest>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "modify_metadef_object").await?;
    let prev = item(&svc, &ns, Kind::Object, &name).await?;
    let new = req.name.as_str();
    ensure_free(&svc, &ns, Kind::Object, new, &name).await?;
    let doc = object_doc(&req, Some(&prev));
    store::put_item(&svc.db, &ns, Kind::Object, new, &doc, Some(&name)).await?;
    Ok(axum::Json(with_self(doc, &ns, "objects", new)).into_response())
}

async fn delete_object(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "delete_metadef_object").await?;
    item(&svc, &ns, Kind::Object, &name).await?;
    store::delete_item(&svc.db, &ns, Kind::Object, Some(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_objects(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "delete_metadef_object").await?;
    store::delete_item(&svc.db, &ns, Kind::Object, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- properties -----

async fn list_properties(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "get_metadef_properties").await?;
    let props: Map<String, Value> = store::list_items(&svc.db, &ns, Kind::Property)
        .await?
        .into_iter()
        .collect();
    Ok(axum::Json(json!({"properties": props})).into_response())
}

async fn create_property(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
    Json(req): Json<CreatePropertyRequest>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "add_metadef_property").await?;
    let name = req.name.0.clone();
    if store::get_item(&svc.db, &ns, Kind::Property, &name)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "A metadata definition property with name={name} already exists in namespace={ns}."
        )));
    }
    let doc = PropertyDefinition::from(req).named(&name);
    store::put_item(&svc.db, &ns, Kind::Property, &name, &doc, None).await?;
    Ok((StatusCode::CREATED, axum::Json(doc)).into_response())
}

async fn show_property(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "get_metadef_property").await?;
    Ok(axum::Json(item(&svc, &ns, Kind::Property, &name).await?).into_response())
}

async fn update_property(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
    Json(req): Json<UpdatePropertyRequest>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "modify_metadef_property").await?;
    item(&svc, &ns, Kind::Property, &name).await?;
    let new = req.name.as_ref().map_or(&name, |n| &n.0).clone();
    ensure_free(&svc, &ns, Kind::Property, &new, &name).await?;
    let doc = PropertyDefinition::from(req).named(&new);
    store::put_item(&svc.db, &ns, Kind::Property, &new, &doc, Some(&name)).await?;
    Ok(axum::Json(doc).into_response())
}

async fn delete_property(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "remove_metadef_property").await?;
    item(&svc, &ns, Kind::Property, &name).await?;
    store::delete_item(&svc.db, &ns, Kind::Property, Some(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_properties(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "remove_metadef_property").await?;
    store::delete_item(&svc.db, &ns, Kind::Property, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- tags -----

fn tag_doc(name: &str, prev: Option<&Value>) -> Value {
    let t = now();
    let created = prev
        .and_then(|p| p.get("created_at").cloned())
        .unwrap_or_else(|| json!(t));
    json!({"name": name, "created_at": created, "updated_at": t})
}

async fn list_tags(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "get_metadef_tags").await?;
    let tags: Vec<Value> = store::list_items(&svc.db, &ns, Kind::Tag)
        .await?
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    Ok(axum::Json(json!({"tags": tags})).into_response())
}

/// `POST …/tags` with `{"tags": [{"name": …}, …]}` replaces the namespace's tags.
async fn create_tags(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
    Json(req): Json<CreateTagsRequest>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "add_metadef_tags").await?;
    let mut names: Vec<&str> = Vec::new();
    for t in &req.tags {
        let n = t.name.as_str();
        if names.contains(&n) {
            return Err(Error::Conflict(format!(
                "Duplicate tag {n} in the request."
            )));
        }
        names.push(n);
    }
    store::delete_item(&svc.db, &ns, Kind::Tag, None).await?;
    let mut out = Vec::new();
    for n in names {
        let doc = tag_doc(n, None);
        store::put_item(&svc.db, &ns, Kind::Tag, n, &doc, None).await?;
        out.push(json!({"name": n}));
    }
    Ok((StatusCode::CREATED, axum::Json(json!({"tags": out}))).into_response())
}

async fn delete_tags(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path(ns): Path<String>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "delete_metadef_tags").await?;
    store::delete_item(&svc.db, &ns, Kind::Tag, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "add_metadef_tag").await?;
    let name = Name::<255>::parse("name", &name)?;
    let name = name.as_str();
    if store::get_item(&svc.db, &ns, Kind::Tag, name)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "A metadata tag with name={name} already exists in namespace={ns}."
        )));
    }
    let doc = tag_doc(name, None);
    store::put_item(&svc.db, &ns, Kind::Tag, name, &doc, None).await?;
    Ok((StatusCode::CREATED, axum::Json(doc)).into_response())
}

async fn show_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "get_metadef_tag").await?;
    Ok(axum::Json(item(&svc, &ns, Kind::Tag, &name).await?).into_response())
}

async fn update_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
    Json(req): Json<TagRequest>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "modify_metadef_tag").await?;
    let prev = item(&svc, &ns, Kind::Tag, &name).await?;
    let new = req.name.as_str();
    ensure_free(&svc, &ns, Kind::Tag, new, &name).await?;
    let doc = tag_doc(new, Some(&prev));
    store::put_item(&svc.db, &ns, Kind::Tag, new, &doc, Some(&name)).await?;
    Ok(axum::Json(doc).into_response())
}

async fn delete_tag(
    State(svc): State<Svc>,
    Authenticated(ctx): Authenticated,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response> {
    namespace(&svc, &ctx, &ns, "delete_metadef_tag").await?;
    item(&svc, &ns, Kind::Tag, &name).await?;
    store::delete_item(&svc.db, &ns, Kind::Tag, Some(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
