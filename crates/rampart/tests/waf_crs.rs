//! The OWASP CRS in the pipeline (`waf.crs`): a benign request passes, attacks are refused by
//! the anomaly score with the matched rules as events (libinjection's SQLi and XSS rules among
//! them), monitor mode only records, and leaking responses are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};

fn crs_rules() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/crs/rules")
        .canonicalize()
        .unwrap_or_else(|e| panic!("the CRS corpus is needed (../shared/corpora/crs): {e}"));
    format!("{}/*.conf", dir.display())
}

fn config(upstream: &str, crs: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{upstream}"] }}
waf:
  crs:
    rules: ["{rules}"]
{crs}
apis:
  - {{ name: app, upstream: app }}
events: {{ jsonl: events.jsonl }}
"#,
        rules = crs_rules()
    )
}

async fn events(gw: &TestGateway) -> Vec<serde_json::Value> {
    common::jsonl_events(gw).await
}

fn get(url: String, ua: &str) -> Request<Full<Bytes>> {
    // A name, not the loopback address: CRS flags a numeric Host (920350).
    Request::get(url)
        .header("host", "shop.example")
        .header("user-agent", ua)
        .header("accept", "text/html")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn crs_refuses_attacks_and_lets_the_rest_through() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "")).await;
    let c = HttpClient::new();
    let ok = c
        .send(get(
            gw.url("public", "/products?page=2&sort=price"),
            "Mozilla/5.0",
        ))
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    let ev = events(&gw).await;
    assert!(ev.is_empty(), "a benign request leaves no event: {ev:#?}");
    for (path, ua, family) in [
        (
            "/download?file=../../../../etc/passwd",
            "Mozilla/5.0",
            "930",
        ),
        ("/?cmd=;cat%20/etc/passwd", "Mozilla/5.0", "932"),
        ("/", "sqlmap/1.7.2#stable (https://sqlmap.org)", "913"),
    ] {
        let r = c.send(get(gw.url("public", path), ua)).await.unwrap();
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.json()["error"], "waf_rule_match");
        let ev = events(&gw).await;
        let last_rid = r.headers["x-request-id"].to_str().unwrap().to_owned();
        let mine: Vec<&serde_json::Value> = ev
            .iter()
            .filter(|e| e["request_id"] == last_rid.as_str())
            .collect();
        let block = mine.iter().find(|e| e["action"] == "block").unwrap();
        assert_eq!(block["stage"], "waf.crs");
        assert_eq!(block["rule"], "949110");
        assert!(
            mine.iter()
                .any(|e| e["rule"].as_str().is_some_and(|r| r.starts_with(family))),
            "{path}: no {family}xxx rule in {mine:#?}"
        );
    }
    // A form body is inspected too.
    let post = Request::post(gw.url("public", "/login"))
        .header("host", "shop.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", "Mozilla/5.0")
        .body(Full::new(Bytes::from_static(
            b"next=/../../../../etc/passwd",
        )))
        .unwrap();
    assert_eq!(c.send(post).await.unwrap().status, 403);
    assert_eq!(
        up.requests(),
        1,
        "only the benign request reached the upstream"
    );
}

#[tokio::test]
async fn monitor_mode_records_and_lets_through() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "    enforcement: monitor")).await;
    let r = HttpClient::new()
        .send(get(
            gw.url("public", "/download?file=../../../../etc/passwd"),
            "Mozilla/5.0",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let ev = events(&gw).await;
    assert!(
        ev.iter()
            .any(|e| e["action"] == "would_block" && e["rule"] == "949110"),
        "{ev:#?}"
    );
}

#[tokio::test]
async fn libinjection_rules_find_sql_injection_and_xss() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "")).await;
    let c = HttpClient::new();
    for (path, rule) in [
        ("/items?id=1%27%20OR%20%271%27%3D%271", "942100"),
        ("/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "941100"),
    ] {
        let r = c
            .send(get(gw.url("public", path), "Mozilla/5.0"))
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        let rid = r.headers["x-request-id"].to_str().unwrap().to_owned();
        let ev = events(&gw).await;
        assert!(
            ev.iter()
                .any(|e| e["request_id"] == rid.as_str() && e["rule"] == rule),
            "{path}: rule {rule} not among {ev:#?}"
        );
    }
    assert_eq!(up.requests(), 0);
}

/// `Content-Length: 0` once let a request skip every stage of the body phase, the CRS among
/// them: an empty body is inspected like a missing one.
#[tokio::test]
async fn an_empty_body_does_not_skip_the_rules() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "")).await;
    let c = HttpClient::new();
    for method in ["GET", "POST"] {
        let req = Request::builder()
            .method(method)
            .uri(gw.url("public", "/download?file=../../../../etc/passwd"))
            .header("host", "shop.example")
            .header("user-agent", "Mozilla/5.0")
            .header("accept", "text/html")
            .header("content-length", "0")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = c.send(req).await.unwrap();
        assert_eq!(r.status, 403, "{method}: {}", r.text());
    }
    assert_eq!(up.requests(), 0);
}

#[tokio::test]
async fn responses_that_leak_are_refused() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "")).await;
    // The upstream echoes the body as a text/plain response: a SQL error message leaks.
    let leak = Request::post(gw.url("public", "/respond?ct=text/plain"))
        .header("host", "shop.example")
        .header("user-agent", "Mozilla/5.0")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            b"{\"e\":\"You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version\"}",
        )))
        .unwrap();
    let r = HttpClient::new().send(leak).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!r.text().contains("SQL syntax"));
    let ev = events(&gw).await;
    assert!(
        ev.iter()
            .any(|e| e["rule"].as_str().is_some_and(|r| r.starts_with("951"))),
        "{ev:#?}"
    );
    assert!(
        ev.iter()
            .any(|e| e["action"] == "block" && e["rule"] == "959100"),
        "{ev:#?}"
    );
}
