//! Data loss prevention through the proxy: log, mask and block on plain and compressed
//! (gzip, deflate, br) responses, whole and streamed in small chunks (a match split across
//! chunks is still masked), oversize policies, request scanning, monitor mode, and the events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rampart_test_support::{compress, Collected, HttpClient, TestGateway, TestUpstream};

const CARD: &str = "4111 1111 1111 1111";
const MASKED_CARD: &str = "**** **** **** ****";
const EMAIL: &str = "ann.lee@example.com";
const AWS: &str = "AKIAZ7QRS2LMN4XPQ3TD";

fn body() -> String {
    format!(
        r#"{{"users":[{{"name":"Ann","email":"{EMAIL}","card":"{CARD}","note":"key {AWS}"}}],"padding":"{}"}}"#,
        "x".repeat(3000)
    )
}

async fn gateway(dlp: &str) -> (TestGateway, TestUpstream) {
    let up = TestUpstream::start().await;
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{}"] }}
apis:
  - name: app
    upstream: app
    dlp:
{dlp}
events: {{ jsonl: events.jsonl }}
"#,
        up.url()
    );
    (TestGateway::start(&yaml).await, up)
}

/// POST /respond echoes the body; `query` picks compression and chunking.
async fn fetch(gw: &TestGateway, query: &str, body: &str) -> Collected {
    let req = Request::post(gw.url("public", &format!("/respond?{query}")))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    HttpClient::new().send(req).await.unwrap()
}

async fn events(gw: &TestGateway) -> Vec<serde_json::Value> {
    common::jsonl_events(gw).await
}

fn decoded(r: &Collected) -> String {
    match r
        .headers
        .get("content-encoding")
        .map(|v| v.to_str().unwrap())
    {
        None => r.text(),
        Some(c) => {
            let coding = match c {
                "gzip" => rampart_stages::dlp::Coding::Gzip,
                "deflate" => rampart_stages::dlp::Coding::Deflate,
                "br" => rampart_stages::dlp::Coding::Brotli,
                other => panic!("unexpected coding {other}"),
            };
            String::from_utf8(rampart_stages::dlp::decode_all(coding, &r.body, 1 << 24).unwrap())
                .unwrap()
        }
    }
}

const QUERIES: &[&str] = &[
    "ct=application/json",
    "ct=application/json&chunk=7",
    "ct=application/json&ce=gzip",
    "ct=application/json&ce=gzip&chunk=5",
    "ct=application/json&ce=deflate",
    "ct=application/json&ce=br&chunk=11",
];

#[tokio::test]
async fn log_lets_the_data_through_and_records_redacted_samples() {
    let (gw, _up) = gateway("      action: log").await;
    for q in QUERIES {
        let r = fetch(&gw, q, &body()).await;
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(decoded(&r), body(), "{q}: logging changes nothing");
        if q.contains("ce=") {
            assert!(
                r.headers.get("content-encoding").is_some(),
                "{q}: a body only read keeps its coding"
            );
        }
    }
    let ev = events(&gw).await;
    // One event per detector and response: card, e-mail, AWS key, for each of the queries.
    assert_eq!(ev.len(), 3 * QUERIES.len(), "{ev:#?}");
    for e in &ev {
        assert_eq!(e["stage"], "dlp");
        assert_eq!(e["action"], "log");
        assert_eq!(e["reason"], "data_leak");
        let detail = e["detail"].as_str().unwrap();
        assert!(!detail.contains(CARD) && !detail.contains(EMAIL) && !detail.contains(AWS));
    }
    let card = ev.iter().find(|e| e["rule"] == "dlp:payment_card").unwrap();
    assert!(
        card["detail"]
            .as_str()
            .unwrap()
            .ends_with("4111***********1111"),
        "{card}"
    );
}

#[tokio::test]
async fn mask_keeps_the_length_and_decodes_compressed_bodies() {
    let (gw, _up) =
        gateway("      action: log\n      actions: { pci: mask, aws_access_key: mask }").await;
    let want = body()
        .replace(CARD, MASKED_CARD)
        .replace(AWS, &"*".repeat(AWS.len()));
    for q in QUERIES {
        let r = fetch(&gw, q, &body()).await;
        assert_eq!(r.status, 200, "{q}");
        assert!(
            r.headers.get("content-encoding").is_none(),
            "{q}: a masked body is sent decoded"
        );
        assert_eq!(r.text(), want, "{q}");
        assert_eq!(r.body.len(), body().len(), "{q}: the length is kept");
        if let Some(len) = r.headers.get("content-length") {
            assert_eq!(len.to_str().unwrap(), body().len().to_string(), "{q}");
        }
        assert!(r.text().contains(EMAIL), "{q}: e-mail is only logged");
    }
    let ev = events(&gw).await;
    let masked = ev.iter().filter(|e| e["action"] == "mask").count();
    assert_eq!(masked, 2 * QUERIES.len(), "{ev:#?}");
}

#[tokio::test]
async fn block_refuses_the_response_before_any_of_it_is_sent() {
    let (gw, _up) = gateway("      action: log\n      actions: { secrets: block }").await;
    for q in QUERIES {
        let r = fetch(&gw, q, &body()).await;
        assert_eq!(r.status, 502, "{q}");
        let j = r.json();
        assert_eq!(j["error"], "data_leak", "{q}: {j}");
        assert!(!r.text().contains(AWS));
        // A body without the secret goes through.
        let clean = body().replace(AWS, "none");
        let r = fetch(&gw, q, &clean).await;
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(decoded(&r), clean, "{q}");
    }
    let ev = events(&gw).await;
    let blocks: Vec<_> = ev.iter().filter(|e| e["action"] == "block").collect();
    assert_eq!(blocks.len(), QUERIES.len());
    assert_eq!(blocks[0]["rule"], "dlp:aws_access_key");
    assert_eq!(blocks[0]["status"], 502);
}

#[tokio::test]
async fn oversize_bodies_follow_the_policy() {
    let big = format!("{}{}", body(), "y".repeat(5000));
    // mask (default): the blocking detector masks instead.
    let (gw, _up) =
        gateway("      actions: { secrets: block }\n      max_buffer_bytes: 1024").await;
    let r = fetch(&gw, "chunk=100", &big).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), big.replace(AWS, &"*".repeat(AWS.len())));
    // reject: refused unsent.
    let (gw, _up) = gateway(
        "      actions: { secrets: block }\n      max_buffer_bytes: 1024\n      oversize: reject",
    )
    .await;
    assert_eq!(fetch(&gw, "chunk=100", &big).await.status, 502);
    // cut: the stream stops before the secret.
    let (gw, _up) = gateway(
        "      actions: { secrets: block }\n      max_buffer_bytes: 1024\n      oversize: cut",
    )
    .await;
    let req = Request::post(gw.url("public", "/respond?chunk=100"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(big.clone())))
        .unwrap();
    match HttpClient::new().send(req).await {
        Ok(r) => panic!("a cut stream completed: {} {}", r.status, r.text().len()),
        Err(e) => assert!(!format!("{e:?}").contains(AWS)),
    }
}

#[tokio::test]
async fn requests_carrying_secrets_are_refused_and_monitor_mode_changes_nothing() {
    let (gw, up) =
        gateway("      action: mask\n      requests: { profiles: [secrets], action: block }").await;
    let r = fetch(&gw, "", &format!(r#"{{"token":"{AWS}"}}"#)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "data_leak");
    assert_eq!(up.requests(), 0, "the secret never reached the upstream");

    let (gw, _up) = gateway("      mode: monitor\n      action: block").await;
    let r = fetch(&gw, "ce=gzip", &body()).await;
    assert_eq!(r.status, 200);
    assert_eq!(decoded(&r), body(), "monitor mode masks and blocks nothing");
    let ev = events(&gw).await;
    assert!(ev.iter().all(|e| e["action"] == "would_block"), "{ev:#?}");
    assert_eq!(ev.len(), 3);
}

#[tokio::test]
async fn binary_and_unreadable_bodies() {
    let (gw, _up) = gateway("      action: mask").await;
    // Binary content types are not scanned.
    let r = fetch(&gw, "ct=application/octet-stream", &body()).await;
    assert_eq!(r.text(), body());
    // Accept-Encoding is narrowed to what the scanner reads.
    let req = Request::get(gw.url("public", "/echo"))
        .header("accept-encoding", "zstd, gzip;q=0.5")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = HttpClient::new().send(req).await.unwrap();
    assert_eq!(
        r.json()["headers"]["accept-encoding"],
        "gzip;q=0.5",
        "{}",
        r.text()
    );
    // A coding it cannot read, with masking on: refused (fail closed).
    let r = fetch(&gw, "ct=application/json&h=content-encoding:zstd", &body()).await;
    assert_eq!(r.status, 502);
    // A corrupt gzip body: the stream is cut rather than sent unread.
    let req = Request::post(gw.url("public", "/respond?h=content-encoding:gzip"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            compress("gzip", body().as_bytes())[..40].to_vec(),
        )))
        .unwrap();
    assert!(HttpClient::new().send(req).await.is_err());
}
