//! Every line this crate writes validates against the published JSON Schema
//! (`docs/traffic.schema.json`), and lines that break the format do not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_traffic::record::{
    Client, ClientCert, Decision, Outcome, RecordedPrincipal, Request, Response, Tls,
};
use rampart_traffic::{Body, FileHeader, Record, RedactPolicy, Redactor};

fn validator() -> jsonschema::Validator {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/traffic.schema.json");
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

fn full() -> Record {
    let mut r = Record {
        v: 1,
        id: "8b7ed8db8a20b61c00000005".into(),
        ts: rampart_traffic::format_ts_us(1_800_000_000_123_456),
        dur_us: Some(1_234),
        client: Some(Client {
            ip: Some("198.51.100.7".into()),
            port: Some(50_123),
            tls: Some(Tls {
                version: Some("TLSv1.3".into()),
                sni: Some("api.example.com".into()),
                alpn: Some("h2".into()),
                cipher: Some("TLS13_AES_128_GCM_SHA256".into()),
                client_cert: Some(ClientCert {
                    subject: "CN=svc".into(),
                    san: vec!["DNS:svc.internal".into()],
                    sha256: Some(rampart_traffic::sha256_hex(b"der")),
                }),
            }),
        }),
        req: Request {
            method: "POST".into(),
            scheme: Some("https".into()),
            authority: Some("api.example.com".into()),
            path: "/v1/orders".into(),
            query: Some("api_key=abc&x=1".into()),
            version: Some("HTTP/2".into()),
            headers: vec![
                ("authorization".into(), "Bearer tok".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: Some(Body::of(br#"{"qty":1}"#, 9, "identity")),
        },
        resp: Some(Response {
            status: 201,
            headers: vec![("content-encoding".into(), "gzip".into())],
            body: Some(Body::of(&[0x1f, 0x8b, 0xff, 0x00], 4000, "gzip")),
            source: Some("upstream".into()),
            upstream_us: Some(900),
        }),
        rampart: Some(Outcome {
            api: Some("shop".into()),
            operation: Some("createOrder".into()),
            principal: Some(RecordedPrincipal {
                consumer: Some("alice".into()),
                method: "jwt".into(),
                groups: vec!["buyers".into()],
                scopes: vec![],
                claims: serde_json::json!({"sub": "1", "tenant": "t-9"})
                    .as_object()
                    .unwrap()
                    .clone(),
            }),
            decisions: vec![Decision {
                stage: "waf.crs".into(),
                outcome: "would_block".into(),
                rule: Some("942100".into()),
                status: Some(403),
            }],
            final_: "pass".into(),
            ..Outcome::default()
        }),
        redactions: vec![],
    };
    Redactor::new("k1", b"key").redact(&mut r, &RedactPolicy::default());
    r
}

#[test]
fn written_lines_validate() {
    let v = validator();
    let header = FileHeader {
        rampart_traffic: 1,
        created: Some(rampart_traffic::format_ts_us(1_800_000_000_000_000)),
        node: Some("gw-1".into()),
        config_digest: Some(format!("sha256:{}", rampart_traffic::sha256_hex(b"cfg"))),
        redaction: Some(rampart_traffic::record::RedactionInfo {
            hmac_key_id: "k1".into(),
        }),
        warning: None,
    };
    for line in [
        serde_json::to_value(&header).unwrap(),
        serde_json::to_value(full()).unwrap(),
        serde_json::to_value(Record {
            v: 1,
            ts: "2026-12-04T10:00:00Z".into(),
            req: Request {
                method: "GET".into(),
                path: "/".into(),
                body: Some(Body::omitted(10, "br", "size")),
                ..Request::default()
            },
            ..Record::default()
        })
        .unwrap(),
    ] {
        let errors: Vec<String> = v.iter_errors(&line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
    // The binary body went in as base64, the truncated one says so.
    let line = serde_json::to_value(full()).unwrap();
    assert_eq!(line["resp"]["body"]["truncated"], true);
    assert!(line["resp"]["body"]["b64"].is_string());
}

#[test]
fn har_conversions_validate() {
    let v = validator();
    let har = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mitmproxy.har"),
    )
    .unwrap();
    let t =
        rampart_traffic::read_bytes(&har, "mitmproxy.har", rampart_traffic::Format::Auto).unwrap();
    assert!(!t.entries.is_empty());
    for e in &t.entries {
        let line = serde_json::to_value(&e.record).unwrap();
        let errors: Vec<String> = v.iter_errors(&line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", e.source);
    }
}

#[test]
fn broken_lines_do_not_validate() {
    let v = validator();
    let good = serde_json::to_value(full()).unwrap();
    let mut bad = Vec::new();
    let mut b = good.clone();
    b["v"] = 2.into();
    bad.push(b);
    let mut b = good.clone();
    b["req"]["path"] = "no-slash".into();
    bad.push(b);
    let mut b = good.clone();
    b["req"]["headers"] = serde_json::json!([["Upper", "x"]]);
    bad.push(b);
    let mut b = good.clone();
    b["req"]["body"]["b64"] = "AA==".into();
    bad.push(b);
    let mut b = good.clone();
    b["resp"]["status"] = 42.into();
    bad.push(b);
    let mut b = good;
    b.as_object_mut().unwrap().remove("ts");
    bad.push(b);
    for b in bad {
        assert!(!v.is_valid(&b), "{b}");
    }
}
