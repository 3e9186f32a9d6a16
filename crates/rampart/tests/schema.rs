//! OpenAPI validation through the proxy: valid and invalid requests for each part (path,
//! query, header, cookie, media type, JSON body), unknown endpoints, RFC 9457 answers, events
//! with the operation id, authorization by operation, and response validation in monitor and
//! enforce modes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};

const SPEC: &str = r##"
openapi: 3.1.0
info: {title: users, version: "1"}
servers: [{url: /api}]
paths:
  /users:
    get:
      operationId: listUsers
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: X-Tenant, in: header, schema: {type: string, enum: [acme, initech]}}
        - {name: session, in: cookie, schema: {type: string, minLength: 8}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/User"}
    post:
      operationId: createUser
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name]
              additionalProperties: false
              properties:
                name: {type: string, maxLength: 10}
                age: {type: integer, minimum: 0}
      responses:
        "200": {description: ok}
  /users/{id}:
    get:
      operationId: getUser
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/User"}
    delete:
      operationId: deleteUser
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
      responses:
        "204": {description: gone}
  /respond:
    post:
      operationId: respond
      x-rampart: {request: "off"}
      responses:
        "200":
          description: ok
          headers:
            X-Total: {required: true, schema: {type: integer}}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/User"}
        "404": {description: missing}
components:
  schemas:
    User:
      type: object
      required: [id, name]
      properties:
        id: {type: integer}
        name: {type: string}
"##;

async fn gateway(
    response_mode: &str,
) -> (TestGateway, TestUpstream, rampart_test_support::TempDir) {
    let up = TestUpstream::start().await;
    let dir = rampart_test_support::TempDir::new("schema");
    dir.write("users.yaml", SPEC);
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{up}"] }}
apis:
  - name: users
    base_path: /api
    strip_base_path: true
    upstream: app
    openapi: {spec}
    schema:
      request: enforce
      response: {response_mode}
      unknown_endpoints: enforce
    authz:
      - {{ name: no-deletes, operation: deleteUser, require: 'false' }}
      - {{ name: the-rest }}
"#,
        up = up.url(),
        spec = dir.path().join("users.yaml").display(),
    );
    let gw = TestGateway::start(&yaml).await;
    (gw, up, dir)
}

fn req(method: &str, url: String, headers: &[(&str, &str)], body: &str) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

#[tokio::test]
async fn requests_are_validated_part_by_part() {
    let (gw, up, _dir) = gateway("monitor").await;
    let c = HttpClient::new();
    let json = [("content-type", "application/json")];
    // (method, path, headers, body, status, problem location)
    let rows: Vec<(&str, &str, &[(&str, &str)], &str, u16, &str)> = vec![
        (
            "GET",
            "/api/users?limit=5",
            &[("x-tenant", "acme"), ("cookie", "session=12345678")],
            "",
            200,
            "",
        ),
        ("GET", "/api/users?limit=500", &[], "", 400, "/query/limit"),
        (
            "GET",
            "/api/users",
            &[("x-tenant", "umbrella")],
            "",
            400,
            "/header/X-Tenant",
        ),
        (
            "GET",
            "/api/users",
            &[("cookie", "session=short")],
            "",
            400,
            "/cookie/session",
        ),
        ("GET", "/api/users/42", &[], "", 200, ""),
        ("GET", "/api/users/abc", &[], "", 400, "/path/id"),
        (
            "POST",
            "/api/users",
            &json,
            r#"{"name": "ann", "age": 30}"#,
            200,
            "",
        ),
        (
            "POST",
            "/api/users",
            &json,
            r#"{"name": "ann", "admin": true}"#,
            400,
            "/body",
        ),
        (
            "POST",
            "/api/users",
            &json,
            r#"{"name": "a very long name"}"#,
            400,
            "/body/name",
        ),
        (
            "POST",
            "/api/users",
            &json,
            r#"{"name": 7}"#,
            400,
            "/body/name",
        ),
        ("POST", "/api/users", &json, "{not json", 400, "/body"),
        ("POST", "/api/users", &json, "", 400, "/body"),
        (
            "POST",
            "/api/users",
            &[("content-type", "text/plain")],
            "name=ann",
            415,
            "/header/content-type",
        ),
        ("GET", "/api/nowhere", &[], "", 404, "/path"),
        ("PATCH", "/api/users/1", &[], "", 405, "/path"),
    ];
    for (i, (m, path, h, body, status, loc)) in rows.iter().enumerate() {
        let before = up.seen().len();
        let r = c
            .send(req(m, gw.url("public", path), h, body))
            .await
            .unwrap();
        assert_eq!(
            r.status,
            *status,
            "row {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if *status == 200 {
            assert_eq!(up.seen().len(), before + 1, "row {i} reached the upstream");
            continue;
        }
        assert_eq!(
            up.seen().len(),
            before,
            "row {i}: a refused request never reaches the upstream"
        );
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "row {i}"
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], *status, "row {i}");
        let locs: Vec<&str> = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["location"].as_str().unwrap())
            .collect();
        assert!(locs.iter().any(|l| l.starts_with(loc)), "row {i}: {v}");
        assert!(
            !r.body
                .windows(7)
                .any(|w| w == b"maximum" || w == b"$ref\":\""),
            "no schema internals: {v}"
        );
    }
    // The stripped path reached the upstream: the document describes the upstream's paths.
    assert!(up.seen().iter().any(|s| s.path_and_query == "/users/42"));
    // Authorization by operation id (the router named it before authz ran).
    let r = c
        .send(req("DELETE", gw.url("public", "/api/users/1"), &[], ""))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    gw.shutdown().await;
}

#[tokio::test]
async fn violations_are_events_with_the_operation() {
    let (gw, _up, _dir) = gateway("monitor").await;
    let c = HttpClient::new();
    let r = c
        .send(req("GET", gw.url("public", "/api/users?limit=0"), &[], ""))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    gw.gateway.events().flush().await;
    let conn = rusqlite::Connection::open(gw.events_db().unwrap()).unwrap();
    let (stage, rule, detail, status): (String, String, String, i64) = conn
        .query_row(
            "SELECT stage, rule, detail, status FROM events ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (stage.as_str(), rule.as_str(), status),
        ("schema", "listUsers", 400)
    );
    assert!(detail.contains("/query/limit: must be >= 1"), "{detail}");
    drop(conn);
    gw.shutdown().await;
}

#[tokio::test]
async fn responses_in_monitor_and_enforce() {
    let valid = r#"{"id": 1, "name": "ann"}"#;
    let invalid = r#"{"id": "one"}"#;
    let ok = "/api/respond?status=200&h=x-total:1";
    // (path, body, status in enforce mode)
    let rows: Vec<(&str, &str, u16)> = vec![
        (ok, valid, 200),
        (ok, invalid, 502),
        ("/api/respond?status=200", valid, 502),
        (
            "/api/respond?status=200&h=x-total:1&ct=text/html",
            "<p>",
            502,
        ),
        ("/api/respond?status=500", valid, 502),
        ("/api/respond?status=404&ct=text/plain", "gone", 404),
    ];
    for mode in ["enforce", "monitor"] {
        let (gw, _up, _dir) = gateway(mode).await;
        let c = HttpClient::new();
        for (i, (path, body, status)) in rows.iter().enumerate() {
            let r = c
                .send(req("POST", gw.url("public", path), &[], body))
                .await
                .unwrap();
            let want = if mode == "monitor" {
                path.split("status=").nth(1).unwrap()[..3].parse().unwrap()
            } else {
                *status
            };
            assert_eq!(r.status, want, "{mode} row {i}");
            if want == 502 {
                // A problem document that says nothing of what the upstream got wrong.
                assert_eq!(r.headers["content-type"], "application/problem+json");
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(v["status"], 502);
                assert_eq!(v["errors"], serde_json::json!([]));
                let text = String::from_utf8_lossy(&r.body);
                assert!(
                    !text.contains("/body") && !text.contains("x-total"),
                    "{text}"
                );
            } else {
                assert_eq!(
                    &r.body[..],
                    body.as_bytes(),
                    "{mode} row {i}: the body passes whole"
                );
            }
        }
        // A response to HEAD has no body to validate; a GET's body conforms.
        let head = c
            .send(req("HEAD", gw.url("public", "/api/users/42"), &[], ""))
            .await
            .unwrap();
        assert_eq!(head.status, 200, "{mode}: HEAD");
        let get = c
            .send(req("GET", gw.url("public", "/api/users/42"), &[], ""))
            .await
            .unwrap();
        assert_eq!(get.status, 200, "{mode}: GET");
        gw.gateway.events().flush().await;
        let conn = rusqlite::Connection::open(gw.events_db().unwrap()).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE stage = 'schema' AND rule = 'respond'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 4, "{mode}: one event per bad response");
        drop(conn);
        gw.shutdown().await;
    }
}
