//! OpenAPI 3.1 documents generated from the routers themselves.
//!
//! A service builds its routes with [`ApiRouter`] and this module's
//! [`get`], [`post`], … instead of axum's. Each one records the operation
//! it adds, and what the handler's own argument types say about it: a
//! [`Json<T>`] argument is the request body (its JSON Schema derived from
//! `T` with `schemars`, the same type serde parses), an [`Authenticated`]
//! argument means a token is required, and the path template gives the path
//! parameters. The document therefore cannot drift from the code: a body
//! type that changes changes the schema, and a route that is added is
//! documented. Error responses are described by the service's
//! [`ErrorStyle`], which is also what renders them.
//!
//! Success bodies are not yet described (the views are built as JSON
//! values); an operation's documented success is any 2XX.

use crate::auth::{AuthContext, Authenticated};
use crate::http::Json;
use crate::ErrorStyle;
use axum::extract::{OriginalUri, Path, Query, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::MethodRouter;
use axum::Router;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// What one handler argument adds to the description of its operation.
/// Every extractor a documented handler takes implements it; most add
/// nothing.
pub trait DocInput {
    fn describe(_op: &mut Operation, _gen: &mut SchemaGenerator) {}
}

impl<S> DocInput for State<S> {}
impl<T> DocInput for Path<T> {}
impl<T> DocInput for Query<T> {}
impl<T> DocInput for axum::Extension<T> {}
impl DocInput for HeaderMap {}
impl DocInput for Method {}
impl DocInput for Uri {}
impl DocInput for OriginalUri {}
impl DocInput for AuthContext {}
impl<T: DocInput> DocInput for Option<T> {
    fn describe(op: &mut Operation, gen: &mut SchemaGenerator) {
        T::describe(op, gen)
    }
}

impl DocInput for Authenticated {
    fn describe(op: &mut Operation, _: &mut SchemaGenerator) {
        op.authenticated = true;
    }
}

impl<T: JsonSchema> DocInput for Json<T> {
    fn describe(op: &mut Operation, gen: &mut SchemaGenerator) {
        op.body = Some(Body::json(gen.subschema_for::<T>().to_value()));
    }
}

/// A raw body (an image's data, a JSON-patch document) is bytes to the
/// handler; the route may say more with [`ApiMethodRouter::body`].
impl DocInput for axum::body::Bytes {
    fn describe(op: &mut Operation, _: &mut SchemaGenerator) {
        op.body.get_or_insert_with(Body::octets);
    }
}

impl DocInput for Request {
    fn describe(op: &mut Operation, _: &mut SchemaGenerator) {
        op.body.get_or_insert_with(Body::octets);
    }
}

/// A handler whose arguments can all be described. Implemented for every
/// function and closure of up to nine [`DocInput`] arguments; `M` is the
/// argument tuple, which keeps the impls apart.
pub trait Documented<M> {
    fn describe(op: &mut Operation, gen: &mut SchemaGenerator);
}

macro_rules! documented {
    ($($arg:ident),*) => {
        impl<F, R, $($arg,)*> Documented<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> R,
            $($arg: DocInput,)*
        {
            #[allow(unused_variables)]
            fn describe(op: &mut Operation, gen: &mut SchemaGenerator) {
                $(<$arg as DocInput>::describe(op, gen);)*
            }
        }
    };
}

documented!();
documented!(A1);
documented!(A1, A2);
documented!(A1, A2, A3);
documented!(A1, A2, A3, A4);
documented!(A1, A2, A3, A4, A5);
documented!(A1, A2, A3, A4, A5, A6);
documented!(A1, A2, A3, A4, A5, A6, A7);
documented!(A1, A2, A3, A4, A5, A6, A7, A8);
documented!(A1, A2, A3, A4, A5, A6, A7, A8, A9);

/// A request body as the document states it.
#[derive(Clone, Debug)]
pub struct Body {
    pub media_type: String,
    pub schema: Value,
}

impl Body {
    pub fn json(schema: Value) -> Body {
        Body {
            media_type: "application/json".into(),
            schema,
        }
    }

    fn octets() -> Body {
        Body {
            media_type: "application/octet-stream".into(),
            schema: json!({"type": "string", "format": "binary"}),
        }
    }
}

/// A request header an operation reads, which its handler's types cannot
/// show (handlers read headers from the `HeaderMap`).
#[derive(Clone, Debug)]
pub struct HeaderParam {
    pub name: &'static str,
    pub required: bool,
    pub description: &'static str,
}

/// One documented operation, as its handler's types describe it.
#[derive(Clone, Debug, Default)]
pub struct Operation {
    pub authenticated: bool,
    pub body: Option<Body>,
}

/// An operation added to a method router, described once the document is
/// built (all operations share one schema generator, so that a type used
/// by several is one component).
#[derive(Clone)]
struct PendingOperation {
    method: Method,
    handler: &'static str,
    describe: fn(&mut Operation, &mut SchemaGenerator),
    body: Option<Body>,
    headers: Vec<HeaderParam>,
}

/// axum's `MethodRouter`, recording what it routes.
pub struct ApiMethodRouter<S = ()> {
    inner: MethodRouter<S>,
    ops: Vec<PendingOperation>,
}

macro_rules! method {
    ($name:ident, $method:expr) => {
        #[doc = concat!("Route `", stringify!($name), "` requests to `handler`, documented from its arguments.")]
        pub fn $name<H, T, M>(mut self, handler: H) -> Self
        where
            H: Handler<T, S> + Documented<M>,
            T: 'static,
        {
            self.ops.push(PendingOperation {
                method: $method,
                handler: std::any::type_name::<H>(),
                describe: <H as Documented<M>>::describe,
                body: None,
                headers: Vec::new(),
            });
            self.inner = self.inner.$name(handler);
            self
        }
    };
}

impl<S: Clone + Send + Sync + 'static> ApiMethodRouter<S> {
    fn new() -> Self {
        ApiMethodRouter {
            inner: MethodRouter::new(),
            ops: Vec::new(),
        }
    }

    method!(get, Method::GET);
    method!(head, Method::HEAD);
    method!(post, Method::POST);
    method!(put, Method::PUT);
    method!(patch, Method::PATCH);
    method!(delete, Method::DELETE);

    /// State the body of this router's `method` operation where the
    /// handler's types cannot: a free-form `Json<Value>` whose accepted
    /// attributes live in a table, or a raw body with its media type.
    pub fn body(mut self, method: Method, body: Body) -> Self {
        for op in self.ops.iter_mut().filter(|op| op.method == method) {
            op.body = Some(body.clone());
        }
        self
    }

    /// State a header this router's `method` operation reads.
    pub fn header(mut self, method: Method, header: HeaderParam) -> Self {
        for op in self.ops.iter_mut().filter(|op| op.method == method) {
            op.headers.push(header.clone());
        }
        self
    }

    /// Apply a layer to every handler of this router (as axum's).
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Request>>::Response: axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<Request>>::Error: Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<Request>>::Future: Send + 'static,
    {
        ApiMethodRouter {
            inner: self.inner.layer(layer),
            ops: self.ops,
        }
    }
}

macro_rules! top_level {
    ($name:ident) => {
        #[doc = concat!("A method router with `", stringify!($name), "` routed to `handler` (axum's, documented).")]
        pub fn $name<H, T, M, S>(handler: H) -> ApiMethodRouter<S>
        where
            H: Handler<T, S> + Documented<M>,
            T: 'static,
            S: Clone + Send + Sync + 'static,
        {
            ApiMethodRouter::new().$name(handler)
        }
    };
}

top_level!(get);
top_level!(head);
top_level!(post);
top_level!(put);
top_level!(patch);
top_level!(delete);

/// axum's `Router`, recording every operation routed through it.
pub struct ApiRouter<S = ()> {
    inner: Router<S>,
    ops: Vec<(String, PendingOperation)>,
}

impl<S: Clone + Send + Sync + 'static> Default for ApiRouter<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> ApiRouter<S> {
    pub fn new() -> Self {
        ApiRouter {
            inner: Router::new(),
            ops: Vec::new(),
        }
    }

    pub fn route(mut self, path: &str, method_router: ApiMethodRouter<S>) -> Self {
        self.ops.extend(
            method_router
                .ops
                .into_iter()
                .map(|op| (path.to_owned(), op)),
        );
        self.inner = self.inner.route(path, method_router.inner);
        self
    }

    pub fn merge(mut self, other: ApiRouter<S>) -> Self {
        self.ops.extend(other.ops);
        self.inner = self.inner.merge(other.inner);
        self
    }

    pub fn nest(mut self, prefix: &str, other: ApiRouter<S>) -> Self {
        let prefix = prefix.trim_end_matches('/');
        self.ops.extend(other.ops.into_iter().map(|(path, op)| {
            let full = if path == "/" {
                prefix.to_owned()
            } else {
                format!("{prefix}{path}")
            };
            (full, op)
        }));
        self.inner = self.inner.nest(prefix, other.inner);
        self
    }

    /// State a header every operation routed so far reads (a middleware's,
    /// such as a microversion header).
    pub fn header_on_every_operation(mut self, header: HeaderParam) -> Self {
        for (_, op) in self.ops.iter_mut() {
            op.headers.push(header.clone());
        }
        self
    }

    /// The OpenAPI document of every operation routed so far.
    pub fn document(&self, info: &ApiInfo) -> Value {
        document(info, &self.ops)
    }

    /// The axum router, with `GET /openapi.json` answering the document
    /// (public: a client reads it before it has a token).
    pub fn into_router(self, info: &ApiInfo) -> Router<S> {
        let doc = axum::body::Bytes::from(self.document(info).to_string());
        self.inner.route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc,
                    )
                }
            }),
        )
    }
}

/// What a document says about its service.
pub struct ApiInfo {
    pub title: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    /// How the service renders its errors, which the document describes.
    pub errors: ErrorStyle,
}

fn document(info: &ApiInfo, ops: &[(String, PendingOperation)]) -> Value {
    let mut gen = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut paths = Map::new();
    let mut ids = std::collections::HashSet::new();
    for (path, pending) in ops {
        let template = openapi_path(path);
        let mut op = Operation::default();
        (pending.describe)(&mut op, &mut gen);
        if let Some(body) = &pending.body {
            op.body = Some(body.clone());
        }
        let entry = paths
            .entry(template.clone())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object");
        let method = pending.method.as_str().to_ascii_lowercase();
        let id = unique_id(&mut ids, &method, &template);
        entry.insert(method, operation(info, &template, pending, &op, id));
    }
    let mut components = json!({
        "securitySchemes": {
            "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token",
                      "description": "A Keystone token"}
        },
        "schemas": Value::Object(gen.take_definitions(true)),
    });
    components["schemas"]["Error"] = error_schema(info.errors);
    json!({
        "openapi": "3.1.0",
        "info": {"title": info.title, "version": info.version, "description": info.description},
        "paths": Value::Object(paths),
        "components": components,
    })
}

fn operation(
    info: &ApiInfo,
    template: &str,
    pending: &PendingOperation,
    op: &Operation,
    id: String,
) -> Value {
    let mut o = json!({
        "operationId": id,
        "responses": {
            "2XX": {"description": "Success"},
            "4XX": {"description": "Refused, with the service's error body",
                    "content": {error_media_type(info.errors): {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    });
    if let Some(name) = handler_name(pending.handler) {
        o["summary"] = json!(name);
    }
    let headers = pending.headers.iter().map(|h| {
        json!({"name": h.name, "in": "header", "required": h.required,
               "description": h.description, "schema": {"type": "string"}})
    });
    let params: Vec<Value> = path_params(template)
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .chain(headers)
        .collect();
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    if let Some(body) = &op.body {
        o["requestBody"] = json!({
            "required": true,
            "content": {body.media_type.clone(): {"schema": body.schema}},
        });
    }
    if op.authenticated {
        o["security"] = json!([{"token": []}]);
    }
    o
}

/// `{*rest}` (axum's catch-all) is an ordinary parameter to OpenAPI.
fn openapi_path(path: &str) -> String {
    let p = path.replace("{*", "{");
    if p.is_empty() {
        "/".into()
    } else {
        p
    }
}

fn path_params(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn unique_id(seen: &mut std::collections::HashSet<String>, method: &str, template: &str) -> String {
    let mut base = String::from(method);
    for seg in template.split('/').filter(|s| !s.is_empty()) {
        base.push('_');
        base.extend(
            seg.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    let mut id = base.clone();
    let mut n = 2;
    while !seen.insert(id.clone()) {
        id = format!("{base}_{n}");
        n += 1;
    }
    id
}

/// The handler's own name (`create_project`); none for a closure.
fn handler_name(type_name: &str) -> Option<&str> {
    if type_name.contains("{{closure}}") {
        return None;
    }
    type_name.rsplit("::").next()
}

fn error_media_type(style: ErrorStyle) -> &'static str {
    match style {
        ErrorStyle::Glance => "text/plain",
        _ => "application/json",
    }
}

/// The body [`ErrorStyle::render`] writes, as a schema.
fn error_schema(style: ErrorStyle) -> Value {
    let fault = |fields: &[(&str, &str)]| {
        let props: Map<String, Value> = fields
            .iter()
            .map(|(k, t)| (k.to_string(), json!({"type": t})))
            .collect();
        let required: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        json!({"type": "object", "required": required, "properties": props})
    };
    match style {
        ErrorStyle::Keystone => json!({
            "type": "object", "required": ["error"],
            "properties": {"error": fault(&[("code", "integer"), ("title", "string"), ("message", "string")])},
        }),
        ErrorStyle::Nova => json!({
            "description": "One key naming the fault (itemNotFound, badRequest, …)",
            "type": "object", "minProperties": 1, "maxProperties": 1,
            "additionalProperties": fault(&[("code", "integer"), ("message", "string")]),
        }),
        ErrorStyle::Neutron => json!({
            "type": "object", "required": ["NeutronError"],
            "properties": {"NeutronError": fault(&[("type", "string"), ("message", "string"), ("detail", "string")])},
        }),
        ErrorStyle::Glance => json!({"type": "string"}),
        ErrorStyle::Ceilometer => json!({
            "type": "object", "required": ["error_message"],
            "properties": {"error_message": fault(&[("faultcode", "string"), ("faultstring", "string")])},
        }),
        ErrorStyle::Gnocchi => fault(&[
            ("code", "integer"),
            ("title", "string"),
            ("description", "string"),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A body as a handler would take it.
    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct WidgetRequest {
        widget: Widget,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Widget {
        name: String,
        size: Option<u32>,
    }

    async fn create_widget(_: Authenticated, _: Json<WidgetRequest>) {}
    async fn show_widget(_: Path<String>) {}

    fn info() -> ApiInfo {
        ApiInfo {
            title: "widgets",
            version: "1",
            description: "",
            errors: ErrorStyle::Neutron,
        }
    }

    #[test]
    fn operations_are_described_by_their_handlers() {
        let inner: ApiRouter = ApiRouter::new()
            .route("/widgets", post(create_widget))
            .route(
                "/widgets/{id}",
                get(show_widget).delete(|_: Authenticated| async {}),
            );
        let doc = ApiRouter::new().nest("/v1", inner).document(&info());
        let create = &doc["paths"]["/v1/widgets"]["post"];
        assert_eq!(create["summary"], "create_widget");
        assert_eq!(create["security"], json!([{"token": []}]));
        assert_eq!(
            create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/WidgetRequest"
        );
        let widget = &doc["components"]["schemas"]["Widget"];
        assert_eq!(widget["required"], json!(["name"]));
        let show = &doc["paths"]["/v1/widgets/{id}"]["get"];
        assert_eq!(show["parameters"][0]["name"], "id");
        assert!(show.get("security").is_none(), "no Authenticated argument");
        assert!(doc["paths"]["/v1/widgets/{id}"]["delete"]["summary"].is_null());
        assert_eq!(
            doc["components"]["schemas"]["Error"]["required"],
            json!(["NeutronError"])
        );
    }

    #[test]
    fn routes_state_the_headers_they_read() {
        let subject = HeaderParam {
            name: "X-Subject-Token",
            required: true,
            description: "the token to check",
        };
        let version = HeaderParam {
            name: "OpenStack-API-Version",
            required: false,
            description: "the microversion",
        };
        let doc = ApiRouter::<()>::new()
            .route(
                "/tokens",
                get(|| async {})
                    .delete(|| async {})
                    .header(Method::GET, subject),
            )
            .header_on_every_operation(version)
            .document(&info());
        let names = |m: &str| -> Vec<(String, bool)> {
            doc["paths"]["/tokens"][m]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["required"] == true,
                    )
                })
                .collect()
        };
        assert_eq!(
            names("get"),
            [
                ("X-Subject-Token".into(), true),
                ("OpenStack-API-Version".into(), false)
            ]
        );
        assert_eq!(names("delete"), [("OpenStack-API-Version".into(), false)]);
    }

    #[test]
    fn a_route_states_a_body_its_types_cannot() {
        let doc = ApiRouter::<()>::new()
            .route(
                "/things",
                post(|_: Json<Value>| async {}).body(
                    Method::POST,
                    Body::json(json!({"type": "object", "required": ["thing"]})),
                ),
            )
            .document(&info());
        assert_eq!(
            doc["paths"]["/things"]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["required"],
            json!(["thing"])
        );
    }
}
