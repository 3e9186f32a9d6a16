//! The learned API as documents others read: an OpenAPI 3.1 document of the learned endpoints,
//! and an OpenAPI Overlay 1.0 that adds shadow endpoints to a declared document.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::classify::Class;
use crate::learn::Endpoint;

/// A path template with named parameters (`/pets/{petId}`) and the parameters' schemas.
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    /// The template, OpenAPI style.
    pub path: String,
    /// `(name, schema, class)` in path order.
    pub params: Vec<(String, Value, String)>,
}

/// Names a learned template's variables: `{int}` under `pets` is `petId`, `{var}` under
/// `users` is `user`, anything under another variable `var1`, `var2`… (unique in the path).
pub fn name_params(template: &str) -> Named {
    let mut path = String::new();
    let mut params: Vec<(String, Value, String)> = Vec::new();
    let mut prev: Option<&str> = None;
    let mut n = 0;
    for seg in template.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        let Some(class) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            path.push_str(seg);
            prev = Some(seg);
            continue;
        };
        let base = match prev {
            Some(p) if !p.starts_with('{') => singular(&camel(p)),
            _ => String::new(),
        };
        let mut name = match (base.is_empty(), class) {
            (true, _) => {
                n += 1;
                format!("var{n}")
            }
            (false, "var" | "word") => base,
            (false, _) => format!("{base}Id"),
        };
        while params.iter().any(|p| p.0 == name) {
            n += 1;
            name = format!("var{n}");
        }
        path.push('{');
        path.push_str(&name);
        path.push('}');
        params.push((name, schema_of(class), class.to_owned()));
        prev = Some(seg);
    }
    if path.is_empty() {
        path.push('/');
    }
    Named { path, params }
}

fn schema_of(class: &str) -> Value {
    let c = [
        Class::Int,
        Class::Uuid,
        Class::Ulid,
        Class::ObjectId,
        Class::Hex,
        Class::Prefixed,
        Class::Date,
        Class::DateTime,
        Class::Email,
        Class::Ip,
        Class::Token,
    ]
    .into_iter()
    .find(|c| c.as_str() == class);
    match c {
        Some(Class::Int) => json!({"type": "integer", "minimum": 0}),
        Some(Class::Uuid) => json!({"type": "string", "format": "uuid"}),
        Some(Class::Date) => json!({"type": "string", "format": "date"}),
        Some(Class::DateTime) => json!({"type": "string", "format": "date-time"}),
        Some(Class::Email) => json!({"type": "string", "format": "email"}),
        Some(Class::ObjectId) => json!({"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}),
        Some(Class::Ulid) => json!({"type": "string", "pattern": "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"}),
        Some(Class::Hex) => json!({"type": "string", "pattern": "^[0-9a-fA-F]{16,}$"}),
        _ => json!({"type": "string"}),
    }
}

fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if up && !out.is_empty() {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            up = false;
        } else {
            up = true;
        }
    }
    out
}

/// A naive English singular (`users` → `user`, `categories` → `category`).
fn singular(s: &str) -> String {
    if let Some(b) = s.strip_suffix("ies") {
        format!("{b}y")
    } else if s.ends_with("ss") {
        s.to_owned()
    } else if let Some(b) = s.strip_suffix('s') {
        b.to_owned()
    } else {
        s.to_owned()
    }
}

fn operation(method: &str, named: &Named, hits: u64) -> Value {
    let mut op = json!({
        "operationId": operation_id(method, &named.path),
        "summary": format!("Learned from {hits} successful requests"),
        "responses": { "2XX": { "description": "Successful responses were observed." } },
        "x-rampart-hits": hits,
    });
    if !named.params.is_empty() {
        op["parameters"] = Value::Array(
            named
                .params
                .iter()
                .map(|(n, schema, class)| {
                    json!({"name": n, "in": "path", "required": true, "schema": schema, "x-rampart-class": class})
                })
                .collect(),
        );
    }
    op
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let s = seg.trim_matches(['{', '}']);
        let by = seg.starts_with('{');
        let c = camel(s);
        let mut chars = c.chars();
        if by {
            id.push_str("By");
        }
        if let Some(f) = chars.next() {
            id.push(f.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// The paths object of `endpoints`: one path per shape (templates that differ only by their
/// variables' names or classes share the first one's names), methods under it.
fn paths(endpoints: &[Endpoint]) -> Map<String, Value> {
    // Shape → (named, methods).
    let mut by_shape: BTreeMap<String, (Named, BTreeMap<String, u64>)> = BTreeMap::new();
    for e in endpoints {
        let named = name_params(&e.template);
        let shape = crate::learn::shape(&named.path);
        let entry = by_shape
            .entry(shape)
            .or_insert_with(|| (named, BTreeMap::new()));
        *entry.1.entry(e.method.to_ascii_lowercase()).or_default() += e.hits;
    }
    let mut out = Map::new();
    for (named, methods) in by_shape.into_values() {
        let mut item = Map::new();
        for (m, hits) in methods {
            if ![
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&m.as_str())
            {
                continue;
            }
            item.insert(m.clone(), operation(&m, &named, hits));
        }
        if !item.is_empty() {
            out.insert(named.path.clone(), Value::Object(item));
        }
    }
    out
}

/// An OpenAPI 3.1 document of an API's learned endpoints.
pub fn openapi(api: &str, endpoints: &[Endpoint]) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{api} (learned from traffic by Rampart)"),
            "version": "learned",
            "description": "Endpoints learned from successful, unblocked requests. Counts and segment classes are x-rampart-* extensions.",
        },
        "paths": paths(endpoints),
    })
}

/// An OpenAPI Overlay 1.0 document that adds `shadows` (endpoints relative to the declared
/// document's server path) to the declared document.
pub fn overlay(api: &str, declared_title: &str, shadows: &[Endpoint]) -> Value {
    let ps = paths(shadows);
    let actions: Vec<Value> = ps
        .into_iter()
        .map(|(path, item)| {
            let target = format!("$.paths['{}']", path.replace('\'', "\\'"));
            json!({
                "target": "$.paths",
                "description": format!("Seen in traffic, not declared: {path} (the update merges into {target} when it exists)"),
                "update": { path: item },
            })
        })
        .collect();
    json!({
        "overlay": "1.0.0",
        "info": {
            "title": format!("Endpoints of {api} seen in traffic but not in {declared_title}"),
            "version": "learned",
        },
        "actions": actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_parent() {
        let n = name_params("/pets/{int}/photos/{uuid}");
        assert_eq!(n.path, "/pets/{petId}/photos/{photoId}");
        assert_eq!(n.params[0].1, json!({"type": "integer", "minimum": 0}));
        assert_eq!(n.params[1].1["format"], "uuid");
        assert_eq!(
            name_params("/users/{var}/{var}").path,
            "/users/{user}/{var1}"
        );
        assert_eq!(name_params("/{var}/v1/fields").path, "/{var1}/v1/fields");
        assert_eq!(
            name_params("/categories/{var}").path,
            "/categories/{category}"
        );
        assert_eq!(name_params("/").path, "/");
        assert_eq!(operation_id("get", "/pets/{petId}"), "getPetsByPetId");
    }
}
