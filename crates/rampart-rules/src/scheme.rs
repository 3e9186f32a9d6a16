//! The scheme: every field a rule can name, with its type and the phase in which it becomes
//! available, and every function with its signature.

use std::fmt;

/// The phase of an exchange in which a field has a value. Ordered: a rule runs in the latest
/// phase among the fields it names (phase inference).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldPhase {
    /// The request line and headers have been read; the route (API, operation) is known.
    RequestHead,
    /// Authentication has run: `identity.*` has a value.
    Authenticated,
    /// The request body has been buffered.
    RequestBody,
    /// The upstream's status and headers have arrived.
    ResponseHead,
}

impl FieldPhase {
    /// Returns the name used in configs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestHead => "request_head",
            Self::Authenticated => "authenticated",
            Self::RequestBody => "request_body",
            Self::ResponseHead => "response_head",
        }
    }

    /// Parses a phase name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "request_head" => Self::RequestHead,
            "authenticated" => Self::Authenticated,
            "request_body" => Self::RequestBody,
            "response_head" => Self::ResponseHead,
            _ => return None,
        })
    }

    /// Every phase, in order.
    pub const ALL: [Self; 4] = [
        Self::RequestHead,
        Self::Authenticated,
        Self::RequestBody,
        Self::ResponseHead,
    ];
}

impl fmt::Display for FieldPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a single value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Base {
    /// `true` or `false`.
    Bool,
    /// A signed 64-bit integer.
    Int,
    /// A byte string (request data need not be UTF-8).
    Bytes,
    /// An IPv4 or IPv6 address.
    Ip,
}

impl Base {
    /// Returns the name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Bytes => "bytes",
            Self::Ip => "ip",
        }
    }
}

/// The type of an expression: a base type, single or multi-valued (a header can be sent twice,
/// a user has several groups).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ty {
    /// The type of each value.
    pub base: Base,
    /// True when the expression has any number of values.
    pub multi: bool,
}

impl Ty {
    /// A single value of `base`.
    pub const fn one(base: Base) -> Self {
        Self { base, multi: false }
    }

    /// Any number of values of `base`.
    pub const fn many(base: Base) -> Self {
        Self { base, multi: true }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.multi {
            write!(f, "array of {}", self.base.as_str())
        } else {
            f.write_str(self.base.as_str())
        }
    }
}

/// Identifies a field, for the evaluator.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldId {
    IpSrc,
    Host,
    Method,
    Uri,
    UriPath,
    UriQuery,
    UriArgs,
    Headers,
    Cookies,
    Version,
    BodyRaw,
    BodyForm,
    BodyJson,
    PathParams,
    ResponseCode,
    ResponseHeaders,
    Consumer,
    Groups,
    Scopes,
    Claims,
    AuthMethod,
    TlsSubject,
    TlsIssuer,
    TlsSans,
    TlsVerified,
    ApiName,
    ApiOperation,
}

/// A field of the scheme.
#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    /// The name rules use.
    pub name: &'static str,
    /// The evaluator's handle.
    pub id: FieldId,
    /// The type of the field (for a map, the type of one indexed entry).
    pub ty: Ty,
    /// True when the field is a map that must be indexed: `http.request.headers["accept"]`.
    pub map: bool,
    /// When the field gets its value.
    pub phase: FieldPhase,
    /// One line for the docs.
    pub doc: &'static str,
}

const fn f(
    name: &'static str,
    id: FieldId,
    ty: Ty,
    map: bool,
    phase: FieldPhase,
    doc: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        id,
        ty,
        map,
        phase,
        doc,
    }
}

use Base::{Bool, Bytes, Int, Ip};
use FieldPhase::{Authenticated, RequestBody, RequestHead, ResponseHead};

/// Every field, in the order the docs list them.
pub const FIELDS: &[FieldDef] = &[
    f("ip.src", FieldId::IpSrc, Ty::one(Ip), false, RequestHead, "the client's address (after trusted-proxy handling)"),
    f("http.host", FieldId::Host, Ty::one(Bytes), false, RequestHead, "the host the request is for, without the port, lower case"),
    f("http.request.method", FieldId::Method, Ty::one(Bytes), false, RequestHead, "the method, as sent (`GET`)"),
    f("http.request.uri", FieldId::Uri, Ty::one(Bytes), false, RequestHead, "the path and query, as sent"),
    f("http.request.uri.path", FieldId::UriPath, Ty::one(Bytes), false, RequestHead, "the path, as sent (not decoded)"),
    f("http.request.uri.query", FieldId::UriQuery, Ty::one(Bytes), false, RequestHead, "the query string without `?`, as sent (empty when there is none)"),
    f("http.request.uri.args", FieldId::UriArgs, Ty::many(Bytes), true, RequestHead, "query arguments by name, decoded (`+` is a space), every value"),
    f("http.request.headers", FieldId::Headers, Ty::many(Bytes), true, RequestHead, "request headers by name (any case), every value"),
    f("http.request.cookies", FieldId::Cookies, Ty::many(Bytes), true, RequestHead, "request cookies by name, every value"),
    f("http.request.version", FieldId::Version, Ty::one(Bytes), false, RequestHead, "the protocol version: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`"),
    f("http.request.body.raw", FieldId::BodyRaw, Ty::one(Bytes), false, RequestBody, "the request body as buffered (up to `max_inspect_bytes`)"),
    f("http.request.body.form", FieldId::BodyForm, Ty::many(Bytes), true, RequestBody, "fields of an `application/x-www-form-urlencoded` body by name, decoded"),
    f("http.request.body.json", FieldId::BodyJson, Ty::many(Bytes), true, RequestBody, "the value at a JSON pointer in a JSON body: a string as is, other scalars as JSON text, an array's elements one by one"),
    f("http.request.path_params", FieldId::PathParams, Ty::one(Bytes), true, RequestHead, "path parameters by name, once the operation is known (OpenAPI)"),
    f("http.response.code", FieldId::ResponseCode, Ty::one(Int), false, ResponseHead, "the upstream's status code"),
    f("http.response.headers", FieldId::ResponseHeaders, Ty::many(Bytes), true, ResponseHead, "response headers by name (any case), every value"),
    f("identity.consumer", FieldId::Consumer, Ty::one(Bytes), false, Authenticated, "the authenticated consumer's name"),
    f("identity.groups", FieldId::Groups, Ty::many(Bytes), false, Authenticated, "the consumer's groups"),
    f("identity.scopes", FieldId::Scopes, Ty::many(Bytes), false, Authenticated, "the token's scopes"),
    f("identity.claims", FieldId::Claims, Ty::many(Bytes), true, Authenticated, "the token's claims by name: strings as is, other scalars as JSON text, arrays element by element"),
    f("identity.method", FieldId::AuthMethod, Ty::one(Bytes), false, Authenticated, "the method that authenticated the request (`jwt`, `api_key`, `mtls`, `basic`, …)"),
    f("tls.client.subject", FieldId::TlsSubject, Ty::one(Bytes), false, RequestHead, "the verified client certificate's subject (`CN=client-1,O=Example`)"),
    f("tls.client.issuer", FieldId::TlsIssuer, Ty::one(Bytes), false, RequestHead, "the verified client certificate's issuer"),
    f("tls.client.sans", FieldId::TlsSans, Ty::many(Bytes), false, RequestHead, "the verified client certificate's subject alternative names"),
    f("tls.client.verified", FieldId::TlsVerified, Ty::one(Bool), false, RequestHead, "true when the client presented a certificate that was verified"),
    f("api.name", FieldId::ApiName, Ty::one(Bytes), false, RequestHead, "the name of the API the request was routed to"),
    f("api.operation", FieldId::ApiOperation, Ty::one(Bytes), false, RequestHead, "the OpenAPI operation id, when the API has a schema and the request matched one"),
];

/// Looks a field up by name.
pub fn field(name: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Returns the definition of a field id.
pub fn field_by_id(id: FieldId) -> &'static FieldDef {
    // The table holds every id once, in declaration order.
    &FIELDS[id as usize]
}

/// Identifies a function, for the evaluator.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FuncId {
    Lower,
    Upper,
    Len,
    StartsWith,
    EndsWith,
    UrlDecode,
    HtmlEntityDecode,
    Base64Decode,
    RemoveWhitespace,
    NormalizePath,
    Concat,
}

/// A function of the scheme.
#[derive(Clone, Copy, Debug)]
pub struct FuncDef {
    /// The name rules use.
    pub name: &'static str,
    /// The evaluator's handle.
    pub id: FuncId,
    /// The signature, for messages.
    pub signature: &'static str,
    /// One line for the docs.
    pub doc: &'static str,
}

/// Every function.
pub const FUNCTIONS: &[FuncDef] = &[
    FuncDef { name: "lower", id: FuncId::Lower, signature: "lower(bytes) -> bytes", doc: "ASCII letters to lower case" },
    FuncDef { name: "upper", id: FuncId::Upper, signature: "upper(bytes) -> bytes", doc: "ASCII letters to upper case" },
    FuncDef { name: "len", id: FuncId::Len, signature: "len(bytes) -> int", doc: "the length in bytes" },
    FuncDef { name: "starts_with", id: FuncId::StartsWith, signature: "starts_with(bytes, bytes) -> bool", doc: "true when the first argument starts with the second" },
    FuncDef { name: "ends_with", id: FuncId::EndsWith, signature: "ends_with(bytes, bytes) -> bool", doc: "true when the first argument ends with the second" },
    FuncDef { name: "url_decode", id: FuncId::UrlDecode, signature: "url_decode(bytes[, \"r\"]) -> bytes", doc: "decodes `%XX` and `+`; with \"r\", decodes until nothing changes (double encoding)" },
    FuncDef { name: "html_entity_decode", id: FuncId::HtmlEntityDecode, signature: "html_entity_decode(bytes) -> bytes", doc: "decodes `&#NN;`, `&#xHH;` and the common named entities" },
    FuncDef { name: "base64_decode", id: FuncId::Base64Decode, signature: "base64_decode(bytes) -> bytes", doc: "decodes standard or URL-safe base64, padding optional; stops at the first invalid character" },
    FuncDef { name: "remove_whitespace", id: FuncId::RemoveWhitespace, signature: "remove_whitespace(bytes) -> bytes", doc: "removes spaces, tabs, CR, LF, FF and VT" },
    FuncDef { name: "normalize_path", id: FuncId::NormalizePath, signature: "normalize_path(bytes) -> bytes", doc: "removes `.` and `..` segments and repeated slashes (RFC 3986 §5.2.4)" },
    FuncDef { name: "concat", id: FuncId::Concat, signature: "concat(bytes, bytes, ...) -> bytes", doc: "joins its arguments" },
];

/// Looks a function up by name.
pub fn function(name: &str) -> Option<&'static FuncDef> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Finds the map field a dotted name indexes with `.key` (`http.request.path_params.id`):
/// returns the field and the key.
pub fn map_field_prefix(name: &str) -> Option<(&'static FieldDef, &str)> {
    FIELDS.iter().filter(|f| f.map).find_map(|f| {
        let rest = name.strip_prefix(f.name)?.strip_prefix('.')?;
        (!rest.is_empty()).then_some((f, rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_ids_index_the_table() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert_eq!(f.id as usize, i, "{}", f.name);
            assert_eq!(field_by_id(f.id).name, f.name);
        }
    }

    #[test]
    fn dotted_keys_find_their_map() {
        let (f, k) = map_field_prefix("http.request.path_params.id").expect("map");
        assert_eq!((f.name, k), ("http.request.path_params", "id"));
        assert!(map_field_prefix("http.request.uri.path").is_none());
    }
}
