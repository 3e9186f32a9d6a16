//! Execution: what a rule is evaluated against ([`Input`]), and the per-request [`Context`]
//! that computes each field (and each function of fields) the first time a rule asks for it,
//! then keeps it for every later rule.

use std::borrow::Cow;
use std::net::IpAddr;

use rampart_core::{ClientCert, Principal};

use crate::functions;
use crate::scheme::{FieldId, FuncId};

/// The plain data a rule looks at. Everything is optional: a field whose data is absent has no
/// value, and a comparison with no value is false.
#[derive(Clone, Copy, Debug, Default)]
pub struct Input<'a> {
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// The request head.
    pub request: Option<&'a http::request::Parts>,
    /// The buffered request body.
    pub body: Option<&'a [u8]>,
    /// The response head.
    pub response: Option<&'a http::response::Parts>,
    /// The authenticated principal.
    pub principal: Option<&'a Principal>,
    /// The verified client certificate.
    pub client_cert: Option<&'a ClientCert>,
    /// The API's name.
    pub api: Option<&'a str>,
    /// The operation id.
    pub operation: Option<&'a str>,
    /// Path parameters, by name.
    pub path_params: &'a [(String, String)],
}

/// A runtime value. A field with no value is an empty [`Value::Multi`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// A truth value.
    Bool(bool),
    /// A number.
    Int(i64),
    /// Bytes, borrowed from the request when they can be.
    Bytes(Cow<'a, [u8]>),
    /// An address.
    Ip(IpAddr),
    /// Any number of single values.
    Multi(Vec<Value<'a>>),
}

impl Value<'_> {
    /// The value of a field that has none.
    pub const NONE: Value<'static> = Value::Multi(Vec::new());

    /// Calls `f` on each single value; returns true if `f` is true for some (`all`: for every
    /// one, and there is at least one).
    pub(crate) fn test(&self, all: bool, mut f: impl FnMut(&Self) -> bool) -> bool {
        match self {
            Value::Multi(vs) if all => !vs.is_empty() && vs.iter().all(f),
            Value::Multi(vs) => vs.iter().any(f),
            one => f(one),
        }
    }

    /// Returns the bytes of a bytes value.
    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

static EMPTY: Value<'static> = Value::Multi(Vec::new());

/// How to compute a cached value: a field, or a function of other cached values and literals.
#[derive(Clone, Debug)]
pub(crate) enum SlotDef {
    Field { id: FieldId, key: Option<Box<[u8]>> },
    Call { func: FuncId, args: Box<[Arg]> },
}

/// A function argument.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Slot(usize),
    Lit(Value<'static>),
}

/// The per-request cache. Create one per evaluation of a [`crate::RuleSet`] with
/// [`crate::RuleSet::context`]; it is cheap (one allocation).
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) input: Input<'a>,
    pub(crate) slots: Vec<Option<Value<'a>>>,
    query: Option<Vec<(Cow<'a, [u8]>, Cow<'a, [u8]>)>>,
    form: Option<Vec<(Cow<'a, [u8]>, Cow<'a, [u8]>)>>,
    json: Option<Option<serde_json::Value>>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(input: Input<'a>, slots: usize) -> Self {
        Self {
            input,
            slots: vec![None; slots],
            query: None,
            form: None,
            json: None,
        }
    }

    /// Returns the input.
    pub fn input(&self) -> &Input<'a> {
        &self.input
    }

    /// Computes slot `i` if it is not yet, and returns it.
    pub(crate) fn get(&mut self, defs: &[SlotDef], i: usize) -> &Value<'a> {
        if self.slots.get(i).is_some_and(Option::is_none) {
            let v = self.compute(defs, i);
            self.slots[i] = Some(v);
        }
        match self.slots.get(i) {
            Some(Some(v)) => v,
            _ => &EMPTY,
        }
    }

    fn compute(&mut self, defs: &[SlotDef], i: usize) -> Value<'a> {
        match defs.get(i) {
            Some(SlotDef::Field { id, key }) => self.field(*id, key.as_deref()),
            Some(SlotDef::Call { func, args }) => {
                for a in args.iter() {
                    if let Arg::Slot(s) = a {
                        self.get(defs, *s);
                    }
                }
                let vals: Vec<&Value<'a>> = args
                    .iter()
                    .map(|a| match a {
                        Arg::Slot(s) => match self.slots.get(*s) {
                            Some(Some(v)) => v,
                            _ => &EMPTY,
                        },
                        Arg::Lit(v) => v,
                    })
                    .collect();
                call(*func, &vals)
            }
            None => Value::NONE,
        }
    }

    fn field(&mut self, id: FieldId, key: Option<&[u8]>) -> Value<'a> {
        let input = self.input;
        let req = input.request;
        match id {
            FieldId::IpSrc => input.client_ip.map_or(Value::NONE, |ip| {
                Value::Ip(rampart_core::iptable::canonical(ip))
            }),
            FieldId::Host => req.map_or(Value::NONE, |r| host(r).map_or(Value::NONE, Value::Bytes)),
            FieldId::Method => req.map_or(Value::NONE, |r| borrowed(r.method.as_str().as_bytes())),
            FieldId::Uri => req.map_or(Value::NONE, |r| {
                borrowed(
                    r.uri
                        .path_and_query()
                        .map_or("/", |pq| pq.as_str())
                        .as_bytes(),
                )
            }),
            FieldId::UriPath => req.map_or(Value::NONE, |r| borrowed(r.uri.path().as_bytes())),
            FieldId::UriQuery => req.map_or(Value::NONE, |r| {
                borrowed(r.uri.query().unwrap_or("").as_bytes())
            }),
            FieldId::UriArgs => {
                let Some(r) = req else { return Value::NONE };
                let args = self.query.get_or_insert_with(|| {
                    parse_urlencoded(r.uri.query().unwrap_or("").as_bytes())
                });
                lookup_pairs(args, key)
            }
            FieldId::Headers => req.map_or(Value::NONE, |r| headers(&r.headers, key)),
            FieldId::ResponseHeaders => input
                .response
                .map_or(Value::NONE, |r| headers(&r.headers, key)),
            FieldId::Cookies => req.map_or(Value::NONE, |r| cookies(&r.headers, key)),
            FieldId::Version => req.map_or(Value::NONE, |r| {
                borrowed(match r.version {
                    http::Version::HTTP_09 => b"HTTP/0.9",
                    http::Version::HTTP_10 => b"HTTP/1.0",
                    http::Version::HTTP_2 => b"HTTP/2",
                    http::Version::HTTP_3 => b"HTTP/3",
                    _ => b"HTTP/1.1",
                })
            }),
            FieldId::BodyRaw => input.body.map_or(Value::NONE, borrowed),
            FieldId::BodyForm => {
                let Some(body) = input.body else {
                    return Value::NONE;
                };
                let is_form = req.is_some_and(|r| {
                    content_type(r).is_some_and(|ct| {
                        ct.eq_ignore_ascii_case("application/x-www-form-urlencoded")
                    })
                });
                if !is_form {
                    return Value::NONE;
                }
                let pairs = self.form.get_or_insert_with(|| parse_urlencoded(body));
                lookup_pairs(pairs, key)
            }
            FieldId::BodyJson => {
                let Some(body) = input.body else {
                    return Value::NONE;
                };
                let doc = self.json.get_or_insert_with(|| parse_json(body));
                match (doc, key.and_then(|k| std::str::from_utf8(k).ok())) {
                    (Some(doc), Some(ptr)) => doc.pointer(ptr).map_or(Value::NONE, json_value),
                    _ => Value::NONE,
                }
            }
            FieldId::PathParams => {
                let Some(k) = key else { return Value::NONE };
                input
                    .path_params
                    .iter()
                    .find(|(n, _)| n.as_bytes() == k)
                    .map_or(Value::NONE, |(_, v)| borrowed(v.as_bytes()))
            }
            FieldId::ResponseCode => input
                .response
                .map_or(Value::NONE, |r| Value::Int(i64::from(r.status.as_u16()))),
            FieldId::Consumer => input
                .principal
                .and_then(|p| p.consumer.as_deref())
                .map_or(Value::NONE, |c| borrowed(c.as_bytes())),
            FieldId::Groups => input.principal.map_or(Value::NONE, |p| strings(&p.groups)),
            FieldId::Scopes => input.principal.map_or(Value::NONE, |p| strings(&p.scopes)),
            FieldId::Claims => {
                let (Some(p), Some(k)) = (
                    input.principal,
                    key.and_then(|k| std::str::from_utf8(k).ok()),
                ) else {
                    return Value::NONE;
                };
                p.claims.get(k).map_or(Value::NONE, json_value)
            }
            FieldId::AuthMethod => input
                .principal
                .map_or(Value::NONE, |p| borrowed(p.method.as_bytes())),
            FieldId::TlsSubject => input
                .client_cert
                .map_or(Value::NONE, |c| borrowed(c.subject.as_bytes())),
            FieldId::TlsIssuer => input
                .client_cert
                .map_or(Value::NONE, |c| borrowed(c.issuer.as_bytes())),
            FieldId::TlsSans => input.client_cert.map_or(Value::NONE, |c| strings(&c.sans)),
            FieldId::TlsVerified => Value::Bool(input.client_cert.is_some()),
            FieldId::ApiName => input.api.map_or(Value::NONE, |a| borrowed(a.as_bytes())),
            FieldId::ApiOperation => input
                .operation
                .map_or(Value::NONE, |a| borrowed(a.as_bytes())),
        }
    }
}

fn borrowed(b: &[u8]) -> Value<'_> {
    Value::Bytes(Cow::Borrowed(b))
}

fn strings(v: &[String]) -> Value<'_> {
    Value::Multi(v.iter().map(|s| borrowed(s.as_bytes())).collect())
}

/// The request's host: the URI's authority (HTTP/2, absolute form) or the `Host` header, without
/// the port, lower case.
fn host(r: &http::request::Parts) -> Option<Cow<'_, [u8]>> {
    let raw = match r.uri.host() {
        Some(h) => h,
        None => r.headers.get(http::header::HOST)?.to_str().ok()?,
    };
    let no_port = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |i| &raw[..=i])
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    Some(if no_port.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(no_port.to_ascii_lowercase().into_bytes())
    } else {
        Cow::Borrowed(no_port.as_bytes())
    })
}

fn content_type(r: &http::request::Parts) -> Option<&str> {
    let v = r.headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or(v).trim())
}

fn headers<'a>(h: &'a http::HeaderMap, key: Option<&[u8]>) -> Value<'a> {
    let Some(name) = key.and_then(|k| http::HeaderName::from_bytes(k).ok()) else {
        return Value::NONE;
    };
    Value::Multi(
        h.get_all(name)
            .iter()
            .map(|v| borrowed(v.as_bytes()))
            .collect(),
    )
}

fn cookies<'a>(h: &'a http::HeaderMap, key: Option<&[u8]>) -> Value<'a> {
    let Some(key) = key else { return Value::NONE };
    let mut out = Vec::new();
    for v in h.get_all(http::header::COOKIE) {
        for pair in v.as_bytes().split(|&b| b == b';') {
            let pair = trim(pair);
            let (name, value) = match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            if trim(name) == key {
                out.push(borrowed(trim(value)));
            }
        }
    }
    Value::Multi(out)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

/// Splits `a=1&b=2` into decoded pairs, borrowing what needs no decoding.
pub(crate) fn parse_urlencoded(q: &[u8]) -> Vec<(Cow<'_, [u8]>, Cow<'_, [u8]>)> {
    fn decode(b: &[u8]) -> Cow<'_, [u8]> {
        if b.iter().any(|&c| c == b'%' || c == b'+') {
            Cow::Owned(functions::url_decode(b))
        } else {
            Cow::Borrowed(b)
        }
    }
    let mut out = Vec::new();
    for part in q.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match memchr::memchr(b'=', part) {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        out.push((decode(k), decode(v)));
    }
    out
}

fn lookup_pairs<'a>(pairs: &[(Cow<'a, [u8]>, Cow<'a, [u8]>)], key: Option<&[u8]>) -> Value<'a> {
    let Some(key) = key else { return Value::NONE };
    Value::Multi(
        pairs
            .iter()
            .filter(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| Value::Bytes(v.clone()))
            .collect(),
    )
}

fn parse_json(body: &[u8]) -> Option<serde_json::Value> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if !matches!(first, b'{' | b'[') {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// A JSON value as rule values: a string as is, other scalars as JSON text, an array element by
/// element (nested arrays and objects as JSON text).
fn json_value(v: &serde_json::Value) -> Value<'static> {
    fn one(v: &serde_json::Value) -> Value<'static> {
        match v {
            serde_json::Value::String(s) => Value::Bytes(Cow::Owned(s.clone().into_bytes())),
            other => Value::Bytes(Cow::Owned(other.to_string().into_bytes())),
        }
    }
    match v {
        serde_json::Value::Array(items) => Value::Multi(items.iter().map(one).collect()),
        serde_json::Value::Null => Value::NONE,
        other => one(other),
    }
}

/// Applies a function. Unary functions map over multi-valued arguments.
fn call<'a>(func: FuncId, args: &[&Value<'a>]) -> Value<'a> {
    let Some(first) = args.first() else {
        return Value::NONE;
    };
    let map = |f: &dyn Fn(&[u8]) -> Value<'a>| -> Value<'a> {
        match first {
            Value::Multi(vs) => {
                Value::Multi(vs.iter().filter_map(|v| v.as_bytes().map(f)).collect())
            }
            Value::Bytes(b) => f(b),
            _ => Value::NONE,
        }
    };
    let bytes = |v: Vec<u8>| Value::Bytes(Cow::Owned(v));
    match func {
        FuncId::Lower => map(&|b| {
            if b.iter().any(u8::is_ascii_uppercase) {
                bytes(functions::lower(b))
            } else {
                Value::Bytes(Cow::Owned(b.to_vec()))
            }
        }),
        FuncId::Upper => map(&|b| bytes(functions::upper(b))),
        FuncId::Len => map(&|b| Value::Int(i64::try_from(b.len()).unwrap_or(i64::MAX))),
        FuncId::StartsWith | FuncId::EndsWith => {
            let Some(Value::Bytes(needle)) = args.get(1) else {
                return Value::NONE;
            };
            let needle = needle.as_ref();
            if func == FuncId::StartsWith {
                map(&|b| Value::Bool(b.starts_with(needle)))
            } else {
                map(&|b| Value::Bool(b.ends_with(needle)))
            }
        }
        FuncId::UrlDecode => {
            let recursive = matches!(args.get(1), Some(Value::Bytes(f)) if f.contains(&b'r'));
            if recursive {
                map(&|b| bytes(functions::url_decode_recursive(b)))
            } else {
                map(&|b| bytes(functions::url_decode(b)))
            }
        }
        FuncId::HtmlEntityDecode => map(&|b| bytes(functions::html_entity_decode(b))),
        FuncId::Base64Decode => map(&|b| bytes(functions::base64_decode(b))),
        FuncId::RemoveWhitespace => map(&|b| bytes(functions::remove_whitespace(b))),
        FuncId::NormalizePath => map(&|b| bytes(functions::normalize_path(b))),
        FuncId::Concat => {
            let mut out = Vec::new();
            for a in args {
                match a {
                    Value::Bytes(b) => out.extend_from_slice(b),
                    _ => return Value::NONE,
                }
            }
            bytes(out)
        }
    }
}
