//! WAF custom rules through the proxy, one test per phase: a header rule and a query rule
//! (request head), a JSON body rule (request body), a response-code rule (response head); and
//! `skip`, per-rule monitor, and the events they leave.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};

fn config(upstream: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, trusted_proxies: [127.0.0.1/32] }}
upstreams:
  app: {{ targets: ["{upstream}"] }}
lists:
  scanners: [198.51.100.0/24]
waf:
  custom:
    - id: trusted-scanner
      when: 'ip.src in $scanners'
      action: skip
      skip: [waf.custom]
    - id: no-sqlmap
      description: sqlmap user agent
      when: 'lower(http.request.headers["user-agent"]) contains "sqlmap"'
      action: block
apis:
  - name: app
    upstream: app
    waf:
      custom:
        - id: numeric-id
          when: 'any(http.request.uri.args["id"] matches "[^0-9]")'
          action: block
          status: 400
        - id: no-admin-role
          when: 'http.request.body.json["/role"] == "admin"'
          action: block
        - id: hide-5xx
          when: 'http.response.code >= 500 and http.request.uri.path != "/status/503"'
          action: block
          status: 502
        - id: watch-debug
          when: 'http.request.uri.args["debug"] == "1"'
          action: block
          enforcement: monitor
events: {{ sqlite: events.db, jsonl: events.jsonl }}
"#
    )
}

fn get(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::get(gw.url("public", path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn custom_rules_in_every_phase() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url())).await;
    let c = HttpClient::new();

    // Request head, a header rule: blocked before the upstream sees anything.
    let before = up.requests();
    let r = c
        .send(get(&gw, "/json", &[("user-agent", "SQLMap/1.7")]))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "waf_rule_match");
    assert_eq!(up.requests(), before);

    // Request head, a query rule over every value of a repeated argument.
    assert_eq!(
        c.send(get(&gw, "/json?id=12&id=7", &[]))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        c.send(get(&gw, "/json?id=12&id=7%20or%201", &[]))
            .await
            .unwrap()
            .status,
        400
    );

    // Request body, a JSON body rule: the body is buffered because a rule reads it.
    let post = |body: &'static str| {
        Request::post(gw.url("public", "/echo"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    let before = up.requests();
    let r = c
        .send(post(r#"{"name":"x","role":"admin"}"#))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(up.requests(), before);
    let r = c.send(post(r#"{"name":"x","role":"user"}"#)).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body_len"], 26);

    // Response head, a response-code rule that also reads the request.
    let r = c.send(get(&gw, "/status/500", &[])).await.unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "waf_rule_match");
    assert_eq!(
        c.send(get(&gw, "/status/503", &[])).await.unwrap().status,
        503
    );

    // Monitor: recorded, not blocked.
    assert_eq!(
        c.send(get(&gw, "/json?debug=1", &[])).await.unwrap().status,
        200
    );

    // Skip: a trusted scanner (by its forwarded address) is not inspected by custom rules.
    let r = c
        .send(get(
            &gw,
            "/json?id=abc",
            &[
                ("user-agent", "sqlmap"),
                ("x-forwarded-for", "198.51.100.20"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    gw.gateway.events().flush().await;
    let jsonl = std::fs::read_to_string(gw.dir.path().join("events.jsonl")).unwrap();
    let events: Vec<(String, String, String)> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            (
                e["stage"].as_str().unwrap().to_owned(),
                e["rule"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("no-sqlmap", "block"),
        ("numeric-id", "block"),
        ("no-admin-role", "block"),
        ("hide-5xx", "block"),
        ("watch-debug", "would_block"),
        ("trusted-scanner", "log"),
    ]
    .iter()
    .map(|(r, a)| ("waf.custom".to_owned(), (*r).to_owned(), (*a).to_owned()))
    .collect();
    assert_eq!(events, want, "{jsonl}");
}

#[tokio::test]
async fn a_bad_rule_is_reported_at_its_line_and_column() {
    let dir = rampart_test_support::TempDir::new("waf-bad");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "listeners:\n  - { name: public, bind: 127.0.0.1:0 }\nupstreams:\n  app: { targets: [\"http://127.0.0.1:1\"] }\nwaf:\n  custom:\n    - id: typo\n      when: 'http.request.uri.pth == \"/admin\"'\n      action: block\napis:\n  - { name: app, upstream: app }\n",
    )
    .unwrap();
    let err = rampart_config::load_file(&path).unwrap_err();
    let text = err.render();
    assert!(
        text.contains("unknown field \"http.request.uri.pth\""),
        "{text}"
    );
    assert!(text.contains("bad.yaml:8:14"), "{text}");
    assert!(
        text.contains("^^^^^^^^^^^^^^^^^^^^ did you mean \"http.request.uri.path\"?"),
        "{text}"
    );
}
