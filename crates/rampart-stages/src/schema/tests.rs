#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Table tests: each row a request (or a response) and what the stage must say of it, over a
//! 3.0 document (nullable, boolean exclusive bounds) and a 3.1 one (oneOf with a
//! discriminator, readOnly, writeOnly, parameter styles).

use std::net::SocketAddr;

use rampart_core::{Exchange, RouteInfo};

use super::*;

const SPEC_30: &str = r##"
openapi: 3.0.3
info: {title: pets, version: "1"}
servers: [{url: "https://api.example.com/v1"}]
paths:
  /pets:
    get:
      operationId: listPets
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: ratio, in: query, schema: {type: number, minimum: 0, exclusiveMinimum: true}}
        - {name: tags, in: query, style: form, explode: false, schema: {type: array, items: {type: string}}}
        - {name: X-Trace, in: header, required: true, schema: {type: string, pattern: "^[a-f0-9]{8}$"}}
      responses:
        "200":
          description: ok
          headers:
            X-Total: {required: true, schema: {type: integer}}
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/Pet"}}
    post:
      operationId: createPet
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Pet"}
          application/x-www-form-urlencoded:
            schema: {$ref: "#/components/schemas/Pet"}
      responses:
        "201": {description: created}
        4XX: {description: client error}
  /pets/{petId}:
    get:
      operationId: getPet
      parameters:
        - {name: petId, in: path, required: true, schema: {type: integer, format: int64}}
      responses:
        default: {description: any}
components:
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        name: {type: string, maxLength: 20}
        tag: {type: string, nullable: true}
        age: {type: integer, nullable: true, minimum: 0}
"##;

const SPEC_31: &str = r##"
openapi: 3.1.0
info: {title: shapes, version: "1"}
paths:
  /shapes:
    post:
      operationId: createShape
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Shape"}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Account"}
  /accounts:
    post:
      operationId: createAccount
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Account"}
      responses:
        "201":
          description: created
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Account"}
  /styles/{m}/{l}:
    get:
      operationId: styles
      parameters:
        - {name: m, in: path, required: true, style: matrix, explode: true, schema: {type: array, items: {type: integer}}}
        - {name: l, in: path, required: true, style: label, schema: {type: array, items: {type: integer}}}
        - {name: filter, in: query, style: deepObject, explode: true, schema: {type: object, properties: {min: {type: integer}, max: {type: integer}}, additionalProperties: false}}
        - {name: ids, in: query, style: pipeDelimited, explode: false, schema: {type: array, items: {type: integer}, maxItems: 3}}
        - {name: words, in: query, style: spaceDelimited, explode: false, schema: {type: array, items: {type: string}}}
        - {name: session, in: cookie, required: true, schema: {type: string, minLength: 4}}
      responses:
        "204": {description: none}
components:
  schemas:
    Shape:
      oneOf:
        - {$ref: "#/components/schemas/Circle"}
        - {$ref: "#/components/schemas/Square"}
      discriminator:
        propertyName: kind
        mapping: {round: "#/components/schemas/Circle"}
    Circle:
      type: object
      required: [kind, radius]
      properties: {kind: {type: string}, radius: {type: number, exclusiveMinimum: 0}}
    Square:
      type: object
      required: [kind, side]
      properties: {kind: {type: string}, side: {type: number}}
    Account:
      type: object
      required: [id, email, password]
      properties:
        id: {type: integer, readOnly: true}
        email: {type: string}
        password: {type: string, writeOnly: true}
"##;

fn schema(text: &str, config: SchemaConfig) -> Arc<Schema> {
    let dir = std::env::temp_dir().join(format!(
        "rampart-schema-{}-{}",
        std::process::id(),
        text.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spec.yaml");
    std::fs::write(&path, text).unwrap();
    let mut cx = CompileCx::new();
    let s = Schema::compile(&path, "spec.yaml", &config, "", &mut cx);
    assert!(cx.is_ok(), "{:?}", cx.diagnostics());
    s.unwrap()
}

fn exchange() -> Exchange {
    let addr: SocketAddr = "192.0.2.1:1000".parse().unwrap();
    let mut x = Exchange::new(
        "r".into(),
        rampart_core::Peer {
            addr,
            listener: Arc::from("l"),
            tls: None,
        },
        0,
    );
    x.route = Some(RouteInfo {
        api: Arc::from("api"),
        operation: None,
    });
    x
}

/// What a row expects.
#[derive(Debug)]
enum Want {
    Pass,
    /// Blocked with this status, and a problem at a location starting with this.
    Block(u16, &'static str),
}

/// Runs a request's head and body through router and validator.
fn request(
    s: &Arc<Schema>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (Outcome, Exchange) {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (mut parts, ()) = b.body(()).unwrap().into_parts();
    let mut x = exchange();
    let routed = OperationRouter(s.clone()).on_request_head(&mut parts, &mut x);
    assert!(matches!(routed, Ok(Decision::Continue)));
    let v = SchemaValidator(s.clone());
    let out = v.on_request_head(&mut parts, &mut x);
    if !matches!(out, Ok(Decision::Continue)) {
        return (out, x);
    }
    let mut body = Bytes::copy_from_slice(body.as_bytes());
    let out = SchemaBody(s.clone()).on_request_body(&parts, &mut body, &mut x);
    (out, x)
}

fn check(row: usize, out: &Outcome, want: &Want) {
    match (out, want) {
        (Ok(Decision::Continue), Want::Pass) => {}
        (Ok(Decision::Block(b)), Want::Block(status, loc)) => {
            assert_eq!(b.status.as_u16(), *status, "row {row}: {b:?}");
            assert!(
                b.problems.iter().any(|(l, _)| l.starts_with(loc)),
                "row {row}: no problem at {loc}: {:?}",
                b.problems
            );
        }
        _ => panic!("row {row}: wanted {want:?}, got {out:?}"),
    }
}

#[test]
fn requests_against_a_3_0_document() {
    let s = schema(SPEC_30, SchemaConfig::default());
    let trace = [("x-trace", "0a1b2c3d")];
    let json = [("content-type", "application/json")];
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let rows: Vec<(&str, &str, &[(&str, &str)], &str, Want)> = vec![
        ("GET", "/v1/pets?limit=10", &trace, "", Want::Pass),
        (
            "GET",
            "/v1/pets?limit=101",
            &trace,
            "",
            Want::Block(400, "/query/limit"),
        ),
        (
            "GET",
            "/v1/pets?limit=ten",
            &trace,
            "",
            Want::Block(400, "/query/limit"),
        ),
        (
            "GET",
            "/v1/pets?limit=1&limit=2",
            &trace,
            "",
            Want::Block(400, "/query/limit"),
        ),
        // exclusiveMinimum: true (3.0) means ratio > 0.
        (
            "GET",
            "/v1/pets?ratio=0",
            &trace,
            "",
            Want::Block(400, "/query/ratio"),
        ),
        ("GET", "/v1/pets?ratio=0.5&tags=a,b", &trace, "", Want::Pass),
        (
            "GET",
            "/v1/pets",
            &[],
            "",
            Want::Block(400, "/header/X-Trace"),
        ),
        (
            "GET",
            "/v1/pets",
            &[("x-trace", "nothex!!")],
            "",
            Want::Block(400, "/header/X-Trace"),
        ),
        ("GET", "/pets", &trace, "", Want::Block(404, "/path")),
        ("DELETE", "/v1/pets", &trace, "", Want::Block(405, "/path")),
        ("GET", "/v1/pets/12", &[], "", Want::Pass),
        (
            "GET",
            "/v1/pets/twelve",
            &[],
            "",
            Want::Block(400, "/path/petId"),
        ),
        (
            "POST",
            "/v1/pets",
            &json,
            r#"{"name": "rex", "tag": null, "age": null}"#,
            Want::Pass,
        ),
        (
            "POST",
            "/v1/pets",
            &json,
            r#"{"name": null}"#,
            Want::Block(400, "/body/name"),
        ),
        (
            "POST",
            "/v1/pets",
            &json,
            r#"{"tag": "x"}"#,
            Want::Block(400, "/body/name"),
        ),
        (
            "POST",
            "/v1/pets",
            &json,
            r#"{"name": "rex", "age": -1}"#,
            Want::Block(400, "/body/age"),
        ),
        (
            "POST",
            "/v1/pets",
            &json,
            r#"{"name": "#,
            Want::Block(400, "/body"),
        ),
        ("POST", "/v1/pets", &json, "", Want::Block(400, "/body")),
        (
            "POST",
            "/v1/pets",
            &[("content-type", "text/xml")],
            "<pet/>",
            Want::Block(415, "/header/content-type"),
        ),
        (
            "POST",
            "/v1/pets",
            &[],
            "{}",
            Want::Block(415, "/header/content-type"),
        ),
        ("POST", "/v1/pets", &form, "name=rex&age=3", Want::Pass),
        (
            "POST",
            "/v1/pets",
            &form,
            "name=rex&age=old",
            Want::Block(400, "/body/age"),
        ),
    ];
    for (i, (m, uri, h, body, want)) in rows.iter().enumerate() {
        let (out, _) = request(&s, m, uri, h, body);
        check(i, &out, want);
    }
}

#[test]
fn requests_against_a_3_1_document() {
    let s = schema(SPEC_31, SchemaConfig::default());
    let json = [("content-type", "application/json")];
    let cookie = [("cookie", "session=abcd; other=1")];
    let rows: Vec<(&str, &str, &[(&str, &str)], &str, Want)> = vec![
        // discriminator: the mapping, then the schema's own name.
        (
            "POST",
            "/shapes",
            &json,
            r#"{"kind": "round", "radius": 2}"#,
            Want::Pass,
        ),
        (
            "POST",
            "/shapes",
            &json,
            r#"{"kind": "Square", "side": 2}"#,
            Want::Pass,
        ),
        (
            "POST",
            "/shapes",
            &json,
            r#"{"kind": "round", "side": 2}"#,
            Want::Block(400, "/body"),
        ),
        (
            "POST",
            "/shapes",
            &json,
            r#"{"kind": "triangle"}"#,
            Want::Block(400, "/body/kind"),
        ),
        (
            "POST",
            "/shapes",
            &json,
            r#"{"radius": 2}"#,
            Want::Block(400, "/body/kind"),
        ),
        // A value that fits both options is fine with a discriminator (plain oneOf refuses it).
        (
            "POST",
            "/shapes",
            &json,
            r#"{"kind": "Square", "side": 2, "radius": 1}"#,
            Want::Pass,
        ),
        // readOnly: not required in requests, refused when sent; writeOnly: required.
        (
            "POST",
            "/accounts",
            &json,
            r#"{"email": "a@b.c", "password": "pw"}"#,
            Want::Pass,
        ),
        (
            "POST",
            "/accounts",
            &json,
            r#"{"id": 3, "email": "a@b.c", "password": "pw"}"#,
            Want::Block(400, "/body/id"),
        ),
        (
            "POST",
            "/accounts",
            &json,
            r#"{"email": "a@b.c"}"#,
            Want::Block(400, "/body/password"),
        ),
        // Styles.
        (
            "GET",
            "/styles/;m=1;m=2/.3,4?filter[min]=1&filter[max]=5&ids=1|2|3&words=a%20b",
            &cookie,
            "",
            Want::Pass,
        ),
        (
            "GET",
            "/styles/;m=1;m=x/.3",
            &cookie,
            "",
            Want::Block(400, "/path/m/1"),
        ),
        (
            "GET",
            "/styles/;m=1/.3.4",
            &cookie,
            "",
            Want::Block(400, "/path/l"),
        ),
        (
            "GET",
            "/styles/;m=1/.3?filter[min]=a",
            &cookie,
            "",
            Want::Block(400, "/query/filter/min"),
        ),
        (
            "GET",
            "/styles/;m=1/.3?filter[other]=1",
            &cookie,
            "",
            Want::Block(400, "/query/filter"),
        ),
        (
            "GET",
            "/styles/;m=1/.3?ids=1|2|3|4",
            &cookie,
            "",
            Want::Block(400, "/query/ids"),
        ),
        (
            "GET",
            "/styles/;m=1/.3",
            &[],
            "",
            Want::Block(400, "/cookie/session"),
        ),
        (
            "GET",
            "/styles/;m=1/.3",
            &[("cookie", "session=ab")],
            "",
            Want::Block(400, "/cookie/session"),
        ),
    ];
    for (i, (m, uri, h, body, want)) in rows.iter().enumerate() {
        let (out, _) = request(&s, m, uri, h, body);
        check(i, &out, want);
    }
}

fn response(
    s: &Arc<Schema>,
    x: &mut Exchange,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> Outcome {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (mut parts, ()) = b.body(()).unwrap().into_parts();
    let v = SchemaValidator(s.clone());
    let req = http::Request::new(()).into_parts().0;
    let out = v.on_response_head(&req, &mut parts, x)?;
    if !matches!(out, Decision::Continue) {
        return Ok(out);
    }
    if v.response_body_limit(&parts, x).is_none() {
        return Ok(Decision::Continue);
    }
    let mut body = Bytes::copy_from_slice(body.as_bytes());
    v.on_response_body_whole(&mut parts, &mut body, x)
}

#[test]
fn responses_in_enforce_and_monitor() {
    let enforce = SchemaConfig {
        response: ModeConfig::Enforce,
        ..SchemaConfig::default()
    };
    let s = schema(SPEC_30, enforce);
    let json = ("content-type", "application/json");
    let total = ("x-total", "2");
    let rows: Vec<(u16, Vec<(&str, &str)>, &str, bool)> = vec![
        (
            200,
            vec![json, total],
            r#"[{"name": "a"}, {"name": "b", "tag": null}]"#,
            true,
        ),
        (200, vec![json, total], r#"[{"tag": "x"}]"#, false),
        (200, vec![json], "[]", false),
        (200, vec![json, ("x-total", "many")], "[]", false),
        (
            200,
            vec![("content-type", "text/html"), total],
            "<p>",
            false,
        ),
        (500, vec![json, total], "{}", false),
        // A compressed body is not decoded: it streams unvalidated.
        (
            200,
            vec![json, total, ("content-encoding", "gzip")],
            "\u{1f}",
            true,
        ),
    ];
    for (i, (status, headers, body, ok)) in rows.iter().enumerate() {
        let (_, mut x) = request(&s, "GET", "/v1/pets", &[("x-trace", "0a1b2c3d")], "");
        let out = response(&s, &mut x, *status, headers, body);
        match out {
            Ok(Decision::Continue) => assert!(ok, "row {i} passed"),
            Ok(Decision::Block(b)) => {
                assert!(!ok, "row {i}: {b:?}");
                assert_eq!(b.status, 502, "row {i}");
                assert!(
                    b.problems.is_empty(),
                    "the client is not told about the upstream"
                );
                assert_eq!(b.rule.unwrap().as_str(), "listPets");
            }
            Err(e) => panic!("row {i}: {e}"),
        }
    }
    // writeOnly fields must not come back.
    let s31 = schema(
        SPEC_31,
        SchemaConfig {
            response: ModeConfig::Enforce,
            ..SchemaConfig::default()
        },
    );
    let (_, mut x) = request(
        &s31,
        "POST",
        "/accounts",
        &[("content-type", "application/json")],
        r#"{"email": "a@b.c", "password": "pw"}"#,
    );
    let leak = response(
        &s31,
        &mut x,
        201,
        &[json],
        r#"{"id": 1, "email": "a@b.c", "password": "pw"}"#,
    );
    assert!(matches!(leak, Ok(Decision::Block(_))), "{leak:?}");
    let fine = response(&s31, &mut x, 201, &[json], r#"{"id": 1, "email": "a@b.c"}"#);
    assert!(matches!(fine, Ok(Decision::Continue)), "{fine:?}");

    // Monitor: a finding with the operation and the violation, no block.
    let s = schema(SPEC_30, SchemaConfig::default());
    let (_, mut x) = request(&s, "GET", "/v1/pets", &[("x-trace", "0a1b2c3d")], "");
    let out = response(&s, &mut x, 200, &[json, total], r#"[{"tag": 1}]"#);
    assert!(matches!(out, Ok(Decision::Continue)));
    let f = x.findings.last().unwrap();
    assert_eq!(f.action, FindingAction::WouldBlock);
    assert_eq!(f.rule.as_ref().unwrap().as_str(), "listPets");
    assert!(f.detail.contains("/body/0/name"), "{}", f.detail);
    assert!(f.detail.contains("/body/0/tag"), "{}", f.detail);
}

#[test]
fn modes_per_operation_and_the_router_names_operations() {
    let config = SchemaConfig {
        unknown_endpoints: ModeConfig::Monitor,
        operations: [(
            "createPet".to_owned(),
            OperationConfig {
                request: Some(ModeConfig::Off),
                response: None,
            },
        )]
        .into_iter()
        .collect(),
        ..SchemaConfig::default()
    };
    let s = schema(SPEC_30, config);
    let (out, x) = request(
        &s,
        "POST",
        "/v1/pets",
        &[("content-type", "application/json")],
        "{}",
    );
    assert!(matches!(out, Ok(Decision::Continue)));
    assert_eq!(x.route.unwrap().operation.as_deref(), Some("createPet"));
    let (out, x) = request(&s, "GET", "/v1/pets/7", &[], "");
    assert!(matches!(out, Ok(Decision::Continue)));
    assert_eq!(x.path_params, vec![("petId".to_owned(), "7".to_owned())]);
    let (out, x) = request(&s, "GET", "/v1/nothing", &[], "");
    assert!(matches!(out, Ok(Decision::Continue)));
    assert_eq!(
        x.findings[0].rule.as_ref().unwrap().as_str(),
        "unknown_endpoint"
    );

    let mut cx = CompileCx::new();
    let bad = SchemaConfig {
        operations: [("createPets".to_owned(), OperationConfig::default())]
            .into_iter()
            .collect(),
        ..SchemaConfig::default()
    };
    let dir = std::env::temp_dir().join(format!("rampart-schema-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("s.yaml"), SPEC_30).unwrap();
    let _ = Schema::compile(&dir.join("s.yaml"), "s.yaml", &bad, "", &mut cx);
    let d = &cx.diagnostics()[0];
    assert!(
        d.message.contains("unknown operation \"createPets\""),
        "{d:?}"
    );
    assert_eq!(d.help.as_deref(), Some("did you mean \"createPet\"?"));
}
