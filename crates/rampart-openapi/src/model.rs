//! The compiled specification: operations with their parameters, bodies and responses, every
//! schema compiled once, and the validation entry points.

use std::sync::Arc;

use http::{HeaderMap, Method};
use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;

use crate::load::{escape, Document, Documents, SpecError};
use crate::media::{self, MediaRange};
use crate::params::{self, Shape, Style};
use crate::router::{Found, PathTemplate, Router};
use crate::translate::{translate, Direction};

/// The OpenAPI version of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// 3.0.x: schemas are translated (`nullable`, boolean exclusive bounds).
    V30,
    /// 3.1.x: schemas are JSON Schema 2020-12.
    V31,
}

/// What validation does with a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Refuse.
    Enforce,
    /// Record, let through.
    Monitor,
    /// Do not validate.
    Off,
}

impl Mode {
    /// Parses `enforce`, `monitor` or `off`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Self::Enforce),
            "monitor" => Some(Self::Monitor),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// Per-operation settings from the document's `x-rampart` extension.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpOverrides {
    /// Request validation mode.
    pub request: Option<Mode>,
    /// Response validation mode.
    pub response: Option<Mode>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: Option<u64>,
}

/// One operation of the document.
#[derive(Debug)]
pub struct Operation {
    /// The `operationId`, or `METHOD /template` when the document gives none.
    pub id: Arc<str>,
    /// The method.
    pub method: Method,
    /// The path template.
    pub path: String,
    /// Settings from `x-rampart`.
    pub overrides: OpOverrides,
    /// The document marks it `deprecated: true`.
    pub deprecated: bool,
    params: Vec<Param>,
    body: Option<BodySpec>,
    responses: Vec<(StatusKey, ResponseSpec)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Path,
    Query,
    Header,
    Cookie,
}

impl Loc {
    fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Query => "query",
            Self::Header => "header",
            Self::Cookie => "cookie",
        }
    }
}

#[derive(Debug)]
struct Param {
    name: String,
    loc: Loc,
    required: bool,
    style: Style,
    explode: bool,
    allow_empty: bool,
    /// The parameter uses `content` with a JSON media type instead of `schema`.
    json: bool,
    schema: Option<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    validator: Validator,
    shape: Shape,
}

#[derive(Debug)]
struct BodySpec {
    required: bool,
    content: Vec<(MediaRange, Option<Compiled>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatusKey {
    Exact(u16),
    Range(u16),
    Default,
}

#[derive(Debug)]
struct ResponseSpec {
    headers: Vec<HeaderSpec>,
    content: Vec<(MediaRange, Option<Compiled>)>,
}

#[derive(Debug)]
struct HeaderSpec {
    name: http::HeaderName,
    required: bool,
    explode: bool,
    schema: Option<Compiled>,
}

/// A compiled specification.
#[derive(Debug)]
pub struct Spec {
    /// The document's version.
    pub version: Version,
    /// `info.title`.
    pub title: String,
    ops: Vec<Operation>,
    router: Router,
    prefixes: Vec<String>,
}

/// What [`Spec::route`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// An operation (its index) and the raw path parameters.
    Operation(usize, Vec<(String, String)>),
    /// No path of the document matches.
    UnknownPath,
    /// The path is declared, not with this method.
    UnknownMethod,
}

/// Why a violation is refused: decides the status of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A value does not conform (400, or 502 for a response).
    Invalid,
    /// The body's media type is not one the operation accepts (415).
    UnsupportedMediaType,
    /// The body is larger than the operation allows (413).
    TooLarge,
}

/// One thing that does not conform, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Where: `/path/id`, `/query/limit`, `/header/x-trace`, `/cookie/session`, `/body/user/age`,
    /// `/status`, `/content-type`.
    pub location: String,
    /// What is wrong, without schema internals.
    pub message: String,
    /// The kind.
    pub kind: ViolationKind,
}

impl Violation {
    fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
            kind: ViolationKind::Invalid,
        }
    }
}

/// The parts of a request head validation reads.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
}

/// The parts of a response head validation reads.
#[derive(Clone, Copy, Debug)]
pub struct ResponseParts<'a> {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: &'a HeaderMap,
}

/// The most violations reported for one message.
const MAX_VIOLATIONS: usize = 20;

const METHODS: [(&str, Method); 8] = [
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("head", Method::HEAD),
    ("patch", Method::PATCH),
    ("trace", Method::TRACE),
];

struct Builder<'d> {
    docs: &'d Documents,
    registry: Registry<'static>,
    errors: Vec<SpecError>,
}

fn scheme(dir: Direction) -> &'static str {
    match dir {
        Direction::Request => "rampart-request",
        Direction::Response => "rampart-response",
    }
}

fn doc_uri(doc: &Document, dir: Direction) -> String {
    let path = doc.path.to_string_lossy().replace('\\', "/");
    let encoded: String = percent_encoding::utf8_percent_encode(&path, PATH_SET).to_string();
    let sep = if encoded.starts_with('/') { "" } else { "/" };
    format!("{}://{sep}{encoded}", scheme(dir))
}

const PATH_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) fn build(docs: Documents, version: Version) -> Result<Spec, Vec<SpecError>> {
    let mut resources = Vec::new();
    for d in &docs.docs {
        for dir in [Direction::Request, Direction::Response] {
            let value = translate(&d.value, version, dir);
            resources.push((doc_uri(d, dir), Draft::Draft202012.create_resource(value)));
        }
    }
    let registry = match Registry::new()
        .draft(Draft::Draft202012)
        .extend(resources)
        .and_then(|b| b.prepare())
    {
        Ok(r) => r,
        Err(e) => {
            return Err(vec![
                docs.docs[0].error("", format!("the schemas cannot be prepared: {e}"))
            ])
        }
    };
    let mut b = Builder {
        docs: &docs,
        registry,
        errors: Vec::new(),
    };
    let root = &docs.docs[0].value;
    let title = root
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let prefixes = server_prefixes(root.get("servers"));
    let mut ops = Vec::new();
    let mut router = Router::default();
    let mut ids: Vec<Arc<str>> = Vec::new();
    if let Some(Value::Object(paths)) = root.get("paths") {
        for (path, item) in paths {
            let item_ptr = format!("/paths/{}", escape(path));
            let template = match PathTemplate::parse(path) {
                Ok(t) => t,
                Err(e) => {
                    b.errors.push(docs.docs[0].error(&item_ptr, e));
                    continue;
                }
            };
            let (idoc, iptr, item) = match docs.deref(0, item_ptr.clone(), item) {
                Ok(x) => x,
                Err(e) => {
                    b.errors.push(e);
                    continue;
                }
            };
            let common = item.get("parameters");
            for (name, method) in &METHODS {
                let Some(op) = item.get(*name) else { continue };
                let op_ptr = format!("{iptr}/{name}");
                let built = b.operation(
                    idoc,
                    &op_ptr,
                    op,
                    common,
                    &iptr,
                    path,
                    method.clone(),
                    &template,
                );
                let Some(built) = built else { continue };
                if ids.contains(&built.id) {
                    b.errors.push(docs.docs[idoc].error(
                        &format!("{op_ptr}/operationId"),
                        format!("operationId \"{}\" is used twice", built.id),
                    ));
                    continue;
                }
                ids.push(built.id.clone());
                router.add(template.clone(), method.clone(), ops.len());
                ops.push(built);
            }
        }
    }
    if !b.errors.is_empty() {
        return Err(b.errors);
    }
    Ok(Spec {
        version,
        title,
        ops,
        router,
        prefixes,
    })
}

/// The path parts of the `servers` URLs (`https://api.example.com/v1` → `/v1`), variables
/// replaced by their defaults; `/` when there are none.
fn server_prefixes(servers: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::Array(list)) = servers {
        for s in list {
            let Some(url) = s.get("url").and_then(Value::as_str) else {
                continue;
            };
            let mut url = url.to_owned();
            if let Some(Value::Object(vars)) = s.get("variables") {
                for (k, v) in vars {
                    if let Some(d) = v.get("default").and_then(Value::as_str) {
                        url = url.replace(&format!("{{{k}}}"), d);
                    }
                }
            }
            let path = match url.find("://") {
                Some(i) => {
                    let rest = &url[i + 3..];
                    rest.find('/').map_or("/", |j| &rest[j..])
                }
                None => url.as_str(),
            };
            let path = path.split(['?', '#']).next().unwrap_or("/");
            let path = path.trim_end_matches('/');
            let p = if path.is_empty() {
                "/".to_owned()
            } else if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        out.push("/".to_owned());
    }
    // Longest first, so `/v1/admin` wins over `/v1`.
    out.sort_by_key(|p| std::cmp::Reverse(p.len()));
    out
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn operation(
        &mut self,
        doc: usize,
        ptr: &str,
        op: &Value,
        common: Option<&Value>,
        item_ptr: &str,
        path: &str,
        method: Method,
        template: &PathTemplate,
    ) -> Option<Operation> {
        let id: Arc<str> = match op.get("operationId").and_then(Value::as_str) {
            Some(id) => Arc::from(id),
            None => Arc::from(format!("{method} {path}").as_str()),
        };
        let mut params: Vec<Param> = Vec::new();
        // Path-level parameters first; an operation's parameter of the same name and location
        // replaces it.
        for (list, list_ptr) in [
            (common, format!("{item_ptr}/parameters")),
            (op.get("parameters"), format!("{ptr}/parameters")),
        ] {
            let Some(Value::Array(list)) = list else {
                continue;
            };
            for (i, p) in list.iter().enumerate() {
                if let Some(param) = self.param(doc, &format!("{list_ptr}/{i}"), p) {
                    params.retain(|q| !(q.name == param.name && q.loc == param.loc));
                    params.push(param);
                }
            }
        }
        for name in template.param_names() {
            if !params.iter().any(|p| p.loc == Loc::Path && p.name == name) {
                // Not declared: any non-empty text.
                params.push(Param {
                    name: name.to_owned(),
                    loc: Loc::Path,
                    required: true,
                    style: Style::Simple,
                    explode: false,
                    allow_empty: false,
                    json: false,
                    schema: None,
                });
            }
        }
        let body = match op.get("requestBody") {
            Some(rb) => self.request_body(doc, &format!("{ptr}/requestBody"), rb),
            None => None,
        };
        let mut responses = Vec::new();
        if let Some(Value::Object(map)) = op.get("responses") {
            for (code, r) in map {
                let Some(key) = status_key(code) else {
                    self.errors.push(self.docs.docs[doc].error(
                        &format!("{ptr}/responses/{}", escape(code)),
                        format!("\"{code}\" is not a status code, a range such as 2XX, or default"),
                    ));
                    continue;
                };
                let rptr = format!("{ptr}/responses/{}", escape(code));
                if let Some(spec) = self.response(doc, &rptr, r) {
                    responses.push((key, spec));
                }
            }
        }
        let overrides = self.overrides(doc, ptr, op.get("x-rampart"));
        Some(Operation {
            id,
            method,
            path: path.to_owned(),
            overrides,
            deprecated: op.get("deprecated") == Some(&Value::Bool(true)),
            params,
            body,
            responses,
        })
    }

    fn overrides(&mut self, doc: usize, ptr: &str, x: Option<&Value>) -> OpOverrides {
        let mut o = OpOverrides::default();
        let Some(x) = x else { return o };
        let Some(map) = x.as_object() else {
            self.errors.push(
                self.docs.docs[doc]
                    .error(&format!("{ptr}/x-rampart"), "x-rampart must be a mapping"),
            );
            return o;
        };
        for (k, v) in map {
            let at = format!("{ptr}/x-rampart/{}", escape(k));
            match k.as_str() {
                "request" | "response" => match v.as_str().and_then(Mode::parse) {
                    Some(m) if k == "request" => o.request = Some(m),
                    Some(m) => o.response = Some(m),
                    None => self
                        .errors
                        .push(self.docs.docs[doc].error(&at, "must be enforce, monitor or off")),
                },
                "max_body_bytes" => match v.as_u64() {
                    Some(n) => o.max_body_bytes = Some(n),
                    None => self
                        .errors
                        .push(self.docs.docs[doc].error(&at, "must be a number of bytes")),
                },
                _ => self.errors.push(self.docs.docs[doc].error(
                    &at,
                    format!("unknown x-rampart key \"{k}\" (request, response, max_body_bytes)"),
                )),
            }
        }
        o
    }

    fn param(&mut self, doc: usize, ptr: &str, p: &Value) -> Option<Param> {
        let (doc, ptr, p) = match self.docs.deref(doc, ptr.to_owned(), p) {
            Ok(x) => x,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let name = p.get("name").and_then(Value::as_str)?.to_owned();
        let loc = match p.get("in").and_then(Value::as_str)? {
            "path" => Loc::Path,
            "query" => Loc::Query,
            "header" => Loc::Header,
            "cookie" => Loc::Cookie,
            _ => return None,
        };
        if loc == Loc::Header
            && ["accept", "content-type", "authorization"]
                .contains(&name.to_ascii_lowercase().as_str())
        {
            // OpenAPI: such header parameters are ignored.
            return None;
        }
        let default_style = match loc {
            Loc::Path | Loc::Header => Style::Simple,
            Loc::Query | Loc::Cookie => Style::Form,
        };
        let style = p
            .get("style")
            .and_then(Value::as_str)
            .and_then(Style::parse)
            .unwrap_or(default_style);
        let explode = p
            .get("explode")
            .and_then(Value::as_bool)
            .unwrap_or(style == Style::Form);
        let required =
            loc == Loc::Path || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let allow_empty = p
            .get("allowEmptyValue")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let (schema, json) = if let Some(s) = p.get("schema") {
            (
                self.compile(doc, &format!("{ptr}/schema"), s, Direction::Request),
                false,
            )
        } else if let Some(Value::Object(content)) = p.get("content") {
            match content.iter().next() {
                Some((mt, m)) => {
                    let s = m.get("schema").and_then(|s| {
                        self.compile(
                            doc,
                            &format!("{ptr}/content/{}/schema", escape(mt)),
                            s,
                            Direction::Request,
                        )
                    });
                    (s, media::is_json(&media::essence(mt)))
                }
                None => (None, false),
            }
        } else {
            (None, false)
        };
        Some(Param {
            name,
            loc,
            required,
            style,
            explode,
            allow_empty,
            json,
            schema,
        })
    }

    fn request_body(&mut self, doc: usize, ptr: &str, rb: &Value) -> Option<BodySpec> {
        let (doc, ptr, rb) = match self.docs.deref(doc, ptr.to_owned(), rb) {
            Ok(x) => x,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
        let content = self.content(doc, &ptr, rb.get("content"), Direction::Request);
        Some(BodySpec { required, content })
    }

    fn content(
        &mut self,
        doc: usize,
        ptr: &str,
        content: Option<&Value>,
        dir: Direction,
    ) -> Vec<(MediaRange, Option<Compiled>)> {
        let mut out = Vec::new();
        if let Some(Value::Object(map)) = content {
            for (mt, m) in map {
                let sptr = format!("{ptr}/content/{}/schema", escape(mt));
                let compiled = m
                    .get("schema")
                    .and_then(|s| self.compile(doc, &sptr, s, dir));
                out.push((MediaRange::new(mt), compiled));
            }
        }
        out
    }

    fn response(&mut self, doc: usize, ptr: &str, r: &Value) -> Option<ResponseSpec> {
        let (doc, ptr, r) = match self.docs.deref(doc, ptr.to_owned(), r) {
            Ok(x) => x,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let mut headers = Vec::new();
        if let Some(Value::Object(map)) = r.get("headers") {
            for (name, h) in map {
                if name.eq_ignore_ascii_case("content-type") {
                    continue;
                }
                let hptr = format!("{ptr}/headers/{}", escape(name));
                let (hdoc, hptr, h) = match self.docs.deref(doc, hptr, h) {
                    Ok(x) => x,
                    Err(e) => {
                        self.errors.push(e);
                        continue;
                    }
                };
                let Ok(hname) = http::HeaderName::from_bytes(name.as_bytes()) else {
                    self.errors.push(
                        self.docs.docs[hdoc]
                            .error(&hptr, format!("\"{name}\" is not a header name")),
                    );
                    continue;
                };
                let schema = h.get("schema").and_then(|s| {
                    self.compile(hdoc, &format!("{hptr}/schema"), s, Direction::Response)
                });
                headers.push(HeaderSpec {
                    name: hname,
                    required: h.get("required").and_then(Value::as_bool).unwrap_or(false),
                    explode: h.get("explode").and_then(Value::as_bool).unwrap_or(false),
                    schema,
                });
            }
        }
        let content = self.content(doc, &ptr, r.get("content"), Direction::Response);
        Some(ResponseSpec { headers, content })
    }

    /// Compiles the schema at `(doc, ptr)`: a reference into the registered document, so that
    /// `$ref`s inside it resolve as written.
    fn compile(
        &mut self,
        doc: usize,
        ptr: &str,
        schema: &Value,
        dir: Direction,
    ) -> Option<Compiled> {
        let uri = format!("{}#{}", doc_uri(&self.docs.docs[doc], dir), fragment(ptr));
        let wrapper = serde_json::json!({ "$ref": uri });
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&wrapper);
        match validator {
            Ok(validator) => Some(Compiled {
                validator,
                shape: self.shape(doc, schema, 0),
            }),
            Err(e) => {
                self.errors
                    .push(self.docs.docs[doc].error(ptr, format!("schema does not compile: {e}")));
                None
            }
        }
    }

    /// The shape of a schema, for turning parameter text into JSON.
    fn shape(&self, doc: usize, schema: &Value, depth: usize) -> Shape {
        if depth > 16 {
            return Shape::Any;
        }
        let Ok((doc, _, schema)) = self.docs.deref(doc, String::new(), schema) else {
            return Shape::Any;
        };
        let ty = match schema.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
            _ => None,
        };
        match ty {
            Some("integer") => Shape::Int,
            Some("number") => Shape::Num,
            Some("boolean") => Shape::Bool,
            Some("string") => Shape::Str,
            Some("array") => Shape::Array(Box::new(
                schema
                    .get("items")
                    .map_or(Shape::Any, |i| self.shape(doc, i, depth + 1)),
            )),
            Some("object") => self.object_shape(doc, schema, depth),
            _ => {
                if schema.get("properties").is_some() {
                    return self.object_shape(doc, schema, depth);
                }
                for key in ["allOf", "oneOf", "anyOf"] {
                    if let Some(Value::Array(list)) = schema.get(key) {
                        for s in list {
                            let sh = self.shape(doc, s, depth + 1);
                            if sh != Shape::Any {
                                return sh;
                            }
                        }
                    }
                }
                Shape::Any
            }
        }
    }

    fn object_shape(&self, doc: usize, schema: &Value, depth: usize) -> Shape {
        let mut props = Vec::new();
        if let Some(Value::Object(map)) = schema.get("properties") {
            for (k, v) in map {
                props.push((k.clone(), self.shape(doc, v, depth + 1)));
            }
        }
        if let Some(Value::Array(list)) = schema.get("allOf") {
            for s in list {
                if let Shape::Object(more) = self.shape(doc, s, depth + 1) {
                    props.extend(more);
                }
            }
        }
        Shape::Object(props)
    }
}

fn fragment(ptr: &str) -> String {
    percent_encoding::utf8_percent_encode(ptr, FRAGMENT_SET).to_string()
}

const FRAGMENT_SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'#')
    .add(b'%')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

fn status_key(code: &str) -> Option<StatusKey> {
    if code == "default" {
        return Some(StatusKey::Default);
    }
    let b = code.as_bytes();
    if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) {
        if b[1..].eq_ignore_ascii_case(b"XX") {
            return Some(StatusKey::Range(u16::from(b[0] - b'0')));
        }
        return code.parse().ok().map(StatusKey::Exact);
    }
    None
}

fn push_errors(out: &mut Vec<Violation>, base: &str, c: &Compiled, value: &Value) {
    for e in c.validator.iter_errors(value) {
        if out.len() >= MAX_VIOLATIONS {
            return;
        }
        let mut location = format!("{base}{}", e.instance_path().as_str());
        if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
            if let Some(p) = property.as_str() {
                location.push('/');
                location.push_str(&escape(p));
            }
        }
        let message = crate::message::describe(&e);
        if !out
            .iter()
            .any(|v| v.location == location && v.message == message)
        {
            out.push(Violation::new(location, message));
        }
    }
}

impl Spec {
    /// Returns the operations.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// Returns the operation at an index [`Spec::route`] gave.
    pub fn operation(&self, i: usize) -> Option<&Operation> {
        self.ops.get(i)
    }

    /// Returns the server base paths requests are matched under (`/` when none).
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// The prefixes requests are matched under, in the order they are tried: each server path
    /// under `base` first (a document of the upstream's own paths, when the gateway strips the
    /// API's base path), then as written (a document of the paths clients see). Computed once,
    /// when the configuration is compiled; see [`Spec::route_under`].
    pub fn route_prefixes(&self, base: &str) -> Vec<String> {
        let base = base.trim_end_matches('/');
        let strip = |p: &String| if p == "/" { String::new() } else { p.clone() };
        let with_base = self
            .prefixes
            .iter()
            .filter(|_| !base.is_empty())
            .map(|p| format!("{base}{}", strip(p)));
        with_base.chain(self.prefixes.iter().map(strip)).collect()
    }

    /// Finds the operation for a method and a raw request path (before percent-decoding).
    /// `base` is prepended to the document's server paths (see [`Spec::route_prefixes`]).
    pub fn route(&self, method: &Method, path: &str, base: &str) -> Route {
        self.route_under(method, path, &self.route_prefixes(base))
    }

    /// [`Spec::route`] with prefixes computed beforehand.
    pub fn route_under(&self, method: &Method, path: &str, prefixes: &[String]) -> Route {
        let mut found_method = false;
        for full in prefixes {
            let rest = if full.is_empty() {
                Some(path)
            } else {
                path.strip_prefix(full.as_str())
                    .filter(|r| r.is_empty() || r.starts_with('/'))
            };
            let Some(rest) = rest else { continue };
            let rest = if rest.is_empty() { "/" } else { rest };
            match self.router.find(method, rest) {
                Found::Op(i, params) => return Route::Operation(i, params),
                Found::Method => found_method = true,
                Found::Path => {}
            }
        }
        if found_method {
            Route::UnknownMethod
        } else {
            Route::UnknownPath
        }
    }

    /// Decodes the raw path parameters of a route into the values rules and policies see.
    pub fn decode_path_params(&self, raw: &[(String, String)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
            .collect()
    }

    /// Validates path, query, header and cookie parameters.
    pub fn validate_request_head(
        &self,
        op: usize,
        raw_params: &[(String, String)],
        req: RequestParts<'_>,
    ) -> Vec<Violation> {
        let Some(op) = self.ops.get(op) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let query_pairs = req
            .query
            .map(|q| params::pairs(q.as_bytes()))
            .unwrap_or_default();
        let cookies = cookie_pairs(req.headers);
        for p in &op.params {
            let location = format!("/{}/{}", p.loc.as_str(), p.name);
            let shape = p.schema.as_ref().map_or(&Shape::Any, |c| &c.shape);
            let value: Option<Value> = match p.loc {
                Loc::Path => raw_params.iter().find(|(k, _)| *k == p.name).map(|(_, v)| {
                    if p.json {
                        json_text(&percent_encoding::percent_decode_str(v).decode_utf8_lossy())
                    } else {
                        params::path_value(v, &p.name, p.style, p.explode, shape)
                    }
                }),
                Loc::Query => {
                    if p.json {
                        query_pairs
                            .iter()
                            .find(|(k, _)| *k == p.name)
                            .map(|(_, v)| json_text(v))
                    } else {
                        let v =
                            params::query_value(&query_pairs, &p.name, p.style, p.explode, shape);
                        if !p.allow_empty && v == Some(Value::String(String::new())) && p.required {
                            out.push(Violation::new(&location, "must not be empty"));
                            continue;
                        }
                        v
                    }
                }
                Loc::Header => {
                    let all: Vec<&str> = req
                        .headers
                        .get_all(p.name.as_str())
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    if all.is_empty() {
                        None
                    } else {
                        let joined = all.join(",");
                        Some(if p.json {
                            json_text(&joined)
                        } else {
                            params::header_value(&joined, p.explode, shape)
                        })
                    }
                }
                Loc::Cookie => cookies.iter().find(|(k, _)| *k == p.name).map(|(_, v)| {
                    if p.json {
                        json_text(v)
                    } else {
                        params::cookie_value(v, shape)
                    }
                }),
            };
            match (value, &p.schema) {
                (None, _) if p.required => out.push(Violation::new(location, "is required")),
                (None, _) | (Some(_), None) => {}
                (Some(v), Some(c)) => push_errors(&mut out, &location, c, &v),
            }
            if out.len() >= MAX_VIOLATIONS {
                break;
            }
        }
        out
    }

    /// True when the operation declares a request body, or reads nothing of one: the body
    /// phase has something to check.
    pub fn has_request_body(&self, op: usize) -> bool {
        self.ops.get(op).is_some_and(|o| o.body.is_some())
    }

    /// Validates a request body (already buffered whole). `truncated`: only a prefix was
    /// buffered, so its content cannot be judged (the size limit already spoke).
    pub fn validate_request_body(
        &self,
        op: usize,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Vec<Violation> {
        let Some(op) = self.ops.get(op) else {
            return Vec::new();
        };
        if let Some(max) = op.overrides.max_body_bytes {
            if body.len() as u64 > max {
                return vec![Violation {
                    location: "/body".to_owned(),
                    message: format!("must be at most {max} bytes"),
                    kind: ViolationKind::TooLarge,
                }];
            }
        }
        let Some(spec) = &op.body else {
            return Vec::new();
        };
        if body.is_empty() {
            return if spec.required {
                vec![Violation::new("/body", "a request body is required")]
            } else {
                Vec::new()
            };
        }
        if spec.content.is_empty() {
            return Vec::new();
        }
        let Some(ct) = content_type else {
            return vec![Violation {
                location: "/header/content-type".to_owned(),
                message: "is required with a body".to_owned(),
                kind: ViolationKind::UnsupportedMediaType,
            }];
        };
        let ess = media::essence(ct);
        let best = spec
            .content
            .iter()
            .map(|(range, c)| (range.score(&ess), c))
            .filter(|(s, _)| *s > 0)
            .max_by_key(|(s, _)| *s);
        let Some((_, compiled)) = best else {
            return vec![Violation {
                location: "/header/content-type".to_owned(),
                message: format!("media type \"{}\" is not accepted here", short(&ess)),
                kind: ViolationKind::UnsupportedMediaType,
            }];
        };
        let Some(c) = compiled else {
            return Vec::new();
        };
        let value = if media::is_json(&ess) {
            match serde_json::from_slice::<Value>(body) {
                Ok(v) => v,
                Err(_) => return vec![Violation::new("/body", "is not valid JSON")],
            }
        } else if ess == "application/x-www-form-urlencoded" {
            media::form_object(body, &c.shape)
        } else if ess.starts_with("multipart/") {
            let Some(boundary) = media::boundary(ct) else {
                return vec![Violation::new(
                    "/header/content-type",
                    "multipart without a boundary",
                )];
            };
            match media::multipart_object(body, &boundary, &c.shape) {
                Ok(v) => v,
                Err(e) => return vec![Violation::new("/body", e)],
            }
        } else if ess.starts_with("text/") {
            Value::String(String::from_utf8_lossy(body).into_owned())
        } else {
            // Binary content: the schema (format: binary) has nothing to say about the bytes.
            return Vec::new();
        };
        let mut out = Vec::new();
        push_errors(&mut out, "/body", c, &value);
        out
    }

    /// Validates a response's status, media type and headers.
    pub fn validate_response_head(&self, op: usize, rsp: ResponseParts<'_>) -> Vec<Violation> {
        let Some(op) = self.ops.get(op) else {
            return Vec::new();
        };
        let Some(spec) = response_for(op, rsp.status) else {
            if op.responses.is_empty() {
                return Vec::new();
            }
            return vec![Violation::new(
                "/status",
                format!("status {} is not declared for this operation", rsp.status),
            )];
        };
        let mut out = Vec::new();
        for h in &spec.headers {
            let all: Vec<&str> = rsp
                .headers
                .get_all(&h.name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            let location = format!("/header/{}", h.name);
            if all.is_empty() {
                if h.required {
                    out.push(Violation::new(location, "is required"));
                }
                continue;
            }
            if let Some(c) = &h.schema {
                let v = params::header_value(&all.join(","), h.explode, &c.shape);
                push_errors(&mut out, &location, c, &v);
            }
        }
        let no_body = rsp.status == 204 || rsp.status == 304 || (100..200).contains(&rsp.status);
        if !spec.content.is_empty() && !no_body {
            let ct = rsp
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let empty = rsp
                .headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() == b"0");
            match ct {
                None if !empty => out.push(Violation::new("/header/content-type", "is missing")),
                None => {}
                Some(ct) => {
                    let ess = media::essence(ct);
                    if !spec.content.iter().any(|(r, _)| r.score(&ess) > 0) {
                        out.push(Violation::new(
                            "/header/content-type",
                            format!(
                                "media type \"{}\" is not declared for status {}",
                                short(&ess),
                                rsp.status
                            ),
                        ));
                    }
                }
            }
        }
        out
    }

    /// True when the response body has a JSON schema to be checked against.
    pub fn wants_response_body(&self, op: usize, status: u16, content_type: Option<&str>) -> bool {
        self.response_schema(op, status, content_type).is_some()
    }

    fn response_schema(
        &self,
        op: usize,
        status: u16,
        content_type: Option<&str>,
    ) -> Option<&Compiled> {
        if status == 204 || status == 304 || status < 200 {
            return None;
        }
        let spec = response_for(self.ops.get(op)?, status)?;
        let ess = media::essence(content_type?);
        if !media::is_json(&ess) {
            return None;
        }
        spec.content
            .iter()
            .map(|(range, c)| (range.score(&ess), c))
            .filter(|(s, _)| *s > 0)
            .max_by_key(|(s, _)| *s)
            .and_then(|(_, c)| c.as_ref())
    }

    /// Validates a JSON response body (buffered whole).
    pub fn validate_response_body(
        &self,
        op: usize,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Vec<Violation> {
        let Some(c) = self.response_schema(op, status, content_type) else {
            return Vec::new();
        };
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return vec![Violation::new("/body", "is not valid JSON")];
        };
        let mut out = Vec::new();
        push_errors(&mut out, "/body", c, &value);
        out
    }
}

fn response_for(op: &Operation, status: u16) -> Option<&ResponseSpec> {
    let find = |k: StatusKey| op.responses.iter().find(|(x, _)| *x == k).map(|(_, r)| r);
    find(StatusKey::Exact(status))
        .or_else(|| find(StatusKey::Range(status / 100)))
        .or_else(|| find(StatusKey::Default))
}

fn json_text(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

fn cookie_pairs(h: &HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in h.get_all(http::header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for c in s.split(';') {
            if let Some((k, v)) = c.split_once('=') {
                out.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
    out
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}
