//! Validation cost per request: a GET with three query parameters, and a 2 KB JSON POST.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method};
use rampart_openapi::{RequestParts, Route};

const SPEC: &str = r##"
openapi: 3.1.0
info: {title: bench, version: "1"}
paths:
  /v1/orders:
    get:
      operationId: listOrders
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: status, in: query, schema: {type: string, enum: [open, paid, shipped]}}
        - {name: tags, in: query, explode: false, schema: {type: array, items: {type: string, maxLength: 20}}}
      responses: {"200": {description: ok}}
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Order"}
      responses: {"201": {description: created}}
  /v1/orders/{id}:
    get:
      operationId: getOrder
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses: {"200": {description: ok}}
components:
  schemas:
    Order:
      type: object
      required: [customer, items]
      additionalProperties: false
      properties:
        customer: {type: string, format: email}
        note: {type: string, maxLength: 500}
        items:
          type: array
          maxItems: 100
          items:
            type: object
            required: [sku, qty, price]
            properties:
              sku: {type: string, pattern: "^[A-Z]{3}-[0-9]{4}$"}
              qty: {type: integer, minimum: 1}
              price: {type: number, exclusiveMinimum: 0}
              label: {type: string}
"##;

fn order_2kb() -> Vec<u8> {
    let mut items = Vec::new();
    for i in 0..20 {
        items.push(serde_json::json!({"sku": format!("ABC-{:04}", i), "qty": i + 1, "price": 9.5, "label": "a plain label for the item"}));
    }
    let body = serde_json::json!({"customer": "ann@example.com", "note": "leave at the door", "items": items});
    serde_json::to_vec(&body).unwrap()
}

fn bench(c: &mut Criterion) {
    let spec = rampart_openapi::load_str(Path::new("/bench/spec.yaml"), SPEC).unwrap();
    let headers = HeaderMap::new();
    let mut g = c.benchmark_group("openapi");
    g.bench_function("get_three_query_params", |b| {
        b.iter(|| {
            let Route::Operation(op, params) =
                spec.route(&Method::GET, black_box("/v1/orders"), "")
            else {
                panic!("no route")
            };
            let v = spec.validate_request_head(
                op,
                &params,
                RequestParts {
                    query: Some(black_box("limit=20&status=paid&tags=a,b,c")),
                    headers: &headers,
                },
            );
            assert!(v.is_empty());
        });
    });
    let body = order_2kb();
    let mut post_headers = HeaderMap::new();
    post_headers.insert("content-type", HeaderValue::from_static("application/json"));
    g.bench_function("post_json_2kb", |b| {
        b.iter(|| {
            let Route::Operation(op, params) =
                spec.route(&Method::POST, black_box("/v1/orders"), "")
            else {
                panic!("no route")
            };
            let v = spec.validate_request_head(
                op,
                &params,
                RequestParts {
                    query: None,
                    headers: &post_headers,
                },
            );
            assert!(v.is_empty());
            let v = spec.validate_request_body(op, Some("application/json"), black_box(&body));
            assert!(v.is_empty(), "{v:?}");
        });
    });
    g.bench_function("route_only", |b| {
        b.iter(|| spec.route(&Method::GET, black_box("/v1/orders/42"), ""));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
