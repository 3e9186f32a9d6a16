//! Entry points for the fuzz targets (`fuzz/`), also replayed on stable by
//! `tests/fuzz_corpus.rs`. Each must never panic, whatever the input.

use std::path::Path;
use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue, Method};

use crate::{RequestParts, ResponseParts, Route, Spec};

/// A document with every parameter style and every body kind the validator reads.
pub const SPEC: &str = r##"
openapi: 3.1.0
info: {title: fuzz, version: "1"}
servers: [{url: /v1}]
paths:
  /items/{m}/{l}/{s}:
    get:
      operationId: styles
      parameters:
        - {name: m, in: path, required: true, style: matrix, explode: true, schema: {type: array, items: {type: integer}}}
        - {name: l, in: path, required: true, style: label, schema: {type: object, properties: {a: {type: integer}}}}
        - {name: s, in: path, required: true, schema: {type: array, items: {type: number}}}
        - {name: deep, in: query, style: deepObject, explode: true, schema: {type: object, properties: {min: {type: integer}}}}
        - {name: pipes, in: query, style: pipeDelimited, explode: false, schema: {type: array, items: {type: boolean}}}
        - {name: spaces, in: query, style: spaceDelimited, explode: false, schema: {type: array, items: {type: string}}}
        - {name: form, in: query, explode: false, schema: {type: object, properties: {x: {type: integer}}}}
        - {name: j, in: query, content: {application/json: {schema: {type: object}}}}
        - {name: X-H, in: header, schema: {type: array, items: {type: integer}}}
        - {name: c, in: cookie, schema: {type: integer}}
      responses:
        "200":
          description: ok
          headers: {X-Total: {schema: {type: integer}}}
          content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}
  /items/{id}.{ext}:
    post:
      operationId: upload
      requestBody:
        content:
          application/json: {schema: {$ref: "#/components/schemas/Thing"}}
          application/x-www-form-urlencoded: {schema: {$ref: "#/components/schemas/Thing"}}
          multipart/form-data: {schema: {$ref: "#/components/schemas/Thing"}}
          text/*: {schema: {type: string, maxLength: 10}}
      responses:
        2XX: {description: ok, content: {application/json: {schema: {type: array}}}}
        default: {description: other}
components:
  schemas:
    Thing:
      type: object
      properties:
        n: {type: integer}
        tags: {type: array, items: {type: string}}
        kind: {type: string}
      discriminator: {propertyName: kind}
"##;

static FUZZ_SPEC: LazyLock<Option<Spec>> =
    LazyLock::new(|| crate::load_str(Path::new("/nonexistent/fuzz.yaml"), SPEC).ok());

/// Splits the input at `\n` into: method, path, query, a header value, a cookie header, a
/// content type, and the body (the rest); routes and validates it, and validates a response
/// made of the same parts.
pub fn request(data: &[u8]) {
    let Some(spec) = FUZZ_SPEC.as_ref() else {
        return;
    };
    let mut parts = data.splitn(7, |b| *b == b'\n');
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let method = Method::from_bytes(next().as_bytes()).unwrap_or(Method::GET);
    let path = next();
    let query = next();
    let header = next();
    let cookie = next();
    let content_type = next();
    let body = data
        .splitn(7, |b| *b == b'\n')
        .nth(6)
        .unwrap_or_default()
        .to_vec();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&header) {
        headers.insert("x-h", v.clone());
        headers.insert("x-total", v);
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.insert(http::header::COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    if let Route::Operation(op, raw) = spec.route(&method, &path, "") {
        let _ = spec.decode_path_params(&raw);
        let _ = spec.validate_request_head(
            op,
            &raw,
            RequestParts {
                query: Some(&query),
                headers: &headers,
            },
        );
        let _ = spec.validate_request_body(op, Some(&content_type), &body);
        let status = body.first().map_or(200, |b| 100 + u16::from(*b) * 2);
        let _ = spec.validate_response_head(
            op,
            ResponseParts {
                status,
                headers: &headers,
            },
        );
        let _ = spec.validate_response_body(op, status, Some(&content_type), &body);
    }
}

/// Loads the input as an OpenAPI document (YAML or JSON); local `$ref`s to other files point
/// nowhere.
pub fn document(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(spec) = crate::load_str(Path::new("/nonexistent/doc.yaml"), &text) {
        for (i, op) in spec.operations().iter().enumerate() {
            let _ = spec.route(&op.method, &op.path, "");
            let _ = spec.validate_request_head(
                i,
                &[],
                RequestParts {
                    query: Some("a=1&b=x"),
                    headers: &HeaderMap::new(),
                },
            );
            let _ = spec.validate_request_body(i, Some("application/json"), b"{\"a\": [1, null]}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_document_loads() {
        assert!(super::FUZZ_SPEC.is_some());
    }
}
