//! OpenAPI schema objects to plain JSON Schema 2020-12, the dialect the validator speaks.
//!
//! - OpenAPI 3.0: `nullable: true` adds `"null"` to `type` (and to `enum`); boolean
//!   `exclusiveMinimum`/`exclusiveMaximum` become the numeric form; keys beside a `$ref` are
//!   dropped, as 3.0 ignores them.
//! - Both versions: a `discriminator` beside `oneOf`/`anyOf` of references picks the schema by
//!   the property's value, as OpenAPI means it (plain `oneOf` would refuse a value that happens
//!   to fit two of them); `readOnly` properties are refused in requests and not required there,
//!   `writeOnly` ones likewise in responses.
//!
//! The whole document is walked; values that are data, not schemas (`example`, `examples`,
//! `default`, `enum`, `const`), are left alone. OpenAPI objects that are not schemas never carry
//! the keywords rewritten here, so walking them is harmless.

use serde_json::{Map, Value};

use crate::model::Version;

/// Which side of the exchange a copy of the document validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Request,
    Response,
}

/// Returns the translated copy of a document.
pub(crate) fn translate(doc: &Value, version: Version, dir: Direction) -> Value {
    let mut out = doc.clone();
    let snapshot = doc;
    walk(&mut out, version, dir, snapshot);
    out
}

fn is_data_key(k: &str) -> bool {
    matches!(k, "example" | "examples" | "default" | "enum" | "const") || k.starts_with("x-")
}

fn walk(v: &mut Value, version: Version, dir: Direction, doc: &Value) {
    match v {
        Value::Object(map) => {
            rewrite(map, version, dir, doc);
            for (k, child) in map.iter_mut() {
                if !is_data_key(k) {
                    walk(child, version, dir, doc);
                }
            }
        }
        Value::Array(items) => {
            for child in items {
                walk(child, version, dir, doc);
            }
        }
        _ => {}
    }
}

fn rewrite(map: &mut Map<String, Value>, version: Version, dir: Direction, doc: &Value) {
    if version == Version::V30 {
        if map.contains_key("$ref") {
            map.retain(|k, _| k == "$ref");
            return;
        }
        nullable(map);
        for (flag, bound) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            match map.get(flag) {
                Some(Value::Bool(true)) => {
                    if let Some(b) = map.remove(bound) {
                        map.insert(flag.to_owned(), b);
                    } else {
                        map.remove(flag);
                    }
                }
                Some(Value::Bool(false)) => {
                    map.remove(flag);
                }
                _ => {}
            }
        }
    }
    discriminator(map);
    read_write_only(map, dir, doc);
}

fn nullable(map: &mut Map<String, Value>) {
    let Some(n) = map.remove("nullable") else {
        return;
    };
    if n != Value::Bool(true) {
        return;
    }
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            map.insert(
                "type".to_owned(),
                Value::Array(vec![Value::String(t), Value::String("null".to_owned())]),
            );
        }
        Some(Value::Array(ts)) => {
            if !ts.iter().any(|t| t == "null") {
                ts.push(Value::String("null".to_owned()));
            }
        }
        _ => {
            // No type: a composition (allOf of a $ref, typically). Null or the rest.
            if ["allOf", "oneOf", "anyOf", "$ref"]
                .iter()
                .any(|k| map.contains_key(*k))
            {
                let rest = Value::Object(std::mem::take(map));
                map.insert(
                    "anyOf".to_owned(),
                    Value::Array(vec![serde_json::json!({"type": "null"}), rest]),
                );
                return;
            }
        }
    }
    if let Some(Value::Array(e)) = map.get_mut("enum") {
        if !e.contains(&Value::Null) {
            e.push(Value::Null);
        }
    }
}

fn discriminator(map: &mut Map<String, Value>) {
    let Some(disc) = map.remove("discriminator") else {
        return;
    };
    let Some(prop) = disc.get("propertyName").and_then(Value::as_str) else {
        return;
    };
    let key = if map.contains_key("oneOf") {
        "oneOf"
    } else if map.contains_key("anyOf") {
        "anyOf"
    } else {
        // The inheritance form (a base schema named by allOf in its children) is left to the
        // schemas themselves.
        return;
    };
    let Some(Value::Array(options)) = map.get(key) else {
        return;
    };
    let mut refs = Vec::new();
    for o in options {
        match o.get("$ref").and_then(Value::as_str) {
            Some(r) => refs.push(r.to_owned()),
            None => return,
        }
    }
    // value → schema reference: the mapping first, then each option by its schema's name.
    let mut cases: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(mapping)) = disc.get("mapping") {
        for (value, target) in mapping {
            let Some(t) = target.as_str() else { continue };
            let r = if t.contains('#') || t.contains('/') || t.contains('.') {
                t.to_owned()
            } else {
                format!("#/components/schemas/{t}")
            };
            cases.push((value.clone(), r));
        }
    }
    for r in &refs {
        if cases.iter().any(|(_, t)| t == r) {
            continue;
        }
        let name = r.rsplit('/').next().unwrap_or(r).to_owned();
        cases.push((name, r.clone()));
    }
    map.remove(key);
    let mut all_of = match map.remove("allOf") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let values: Vec<Value> = cases
        .iter()
        .map(|(v, _)| Value::String(v.clone()))
        .collect();
    all_of.push(serde_json::json!({
        "required": [prop],
        "properties": { prop: { "enum": values } }
    }));
    for (value, target) in cases {
        all_of.push(serde_json::json!({
            "if": { "properties": { prop: { "const": value } }, "required": [prop] },
            "then": { "$ref": target }
        }));
    }
    map.insert("allOf".to_owned(), Value::Array(all_of));
}

fn read_write_only(map: &mut Map<String, Value>, dir: Direction, doc: &Value) {
    let flag = match dir {
        Direction::Request => "readOnly",
        Direction::Response => "writeOnly",
    };
    let Some(Value::Object(props)) = map.get_mut("properties") else {
        return;
    };
    let mut hidden = Vec::new();
    for (name, schema) in props.iter_mut() {
        if has_flag(schema, flag, doc) {
            *schema = Value::Bool(false);
            hidden.push(name.clone());
        }
    }
    if hidden.is_empty() {
        return;
    }
    if let Some(Value::Array(req)) = map.get_mut("required") {
        req.retain(|r| !r.as_str().is_some_and(|r| hidden.iter().any(|h| h == r)));
    }
}

/// A property schema carries the flag itself, or is a local `$ref` to a schema that does.
fn has_flag(schema: &Value, flag: &str, doc: &Value) -> bool {
    if schema.get(flag) == Some(&Value::Bool(true)) {
        return true;
    }
    let target = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| doc.pointer(p));
    target.is_some_and(|t| t.get(flag) == Some(&Value::Bool(true)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nullable_and_exclusive_bounds_of_3_0() {
        let doc = json!({"a": {"type": "string", "nullable": true, "enum": ["x"]},
            "b": {"type": "integer", "minimum": 1, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false},
            "c": {"$ref": "#/a", "description": "ignored"},
            "d": {"allOf": [{"$ref": "#/a"}], "nullable": true},
            "example": {"nullable": true}});
        let t = translate(&doc, Version::V30, Direction::Request);
        assert_eq!(
            t["a"],
            json!({"type": ["string", "null"], "enum": ["x", null]})
        );
        assert_eq!(
            t["b"],
            json!({"type": "integer", "exclusiveMinimum": 1, "maximum": 9})
        );
        assert_eq!(t["c"], json!({"$ref": "#/a"}));
        assert_eq!(t["d"]["anyOf"][0], json!({"type": "null"}));
        assert_eq!(t["example"], json!({"nullable": true}));
    }

    #[test]
    fn read_only_goes_from_requests_and_write_only_from_responses() {
        let doc = json!({"s": {"type": "object", "required": ["id", "pw", "name"],
            "properties": {"id": {"type": "integer", "readOnly": true},
                "pw": {"type": "string", "writeOnly": true}, "name": {"type": "string"}}}});
        let req = translate(&doc, Version::V31, Direction::Request);
        assert_eq!(req["s"]["properties"]["id"], json!(false));
        assert_eq!(req["s"]["required"], json!(["pw", "name"]));
        let rsp = translate(&doc, Version::V31, Direction::Response);
        assert_eq!(rsp["s"]["properties"]["pw"], json!(false));
        assert_eq!(rsp["s"]["required"], json!(["id", "name"]));
    }
}
