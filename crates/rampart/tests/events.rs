//! Event sinks, the access log, and metrics on the admin listener.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};

#[tokio::test]
async fn jsonl_events_access_log_and_metrics() {
    let up = TestUpstream::start().await;
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, trusted_proxies: [127.0.0.1/32] }}
admin: {{ bind: 127.0.0.1:0, token: s3cret }}
upstreams:
  app: {{ targets: ["{}"] }}
ip_rules:
  - {{ id: bad-net, action: block, list: [203.0.113.0/24] }}
apis:
  - {{ name: app, upstream: app }}
events: {{ sqlite: events.db, jsonl: events.jsonl, access_log: access.log }}
"#,
        up.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();
    assert_eq!(c.get(&gw.url("public", "/json")).await.unwrap().status, 200);
    let blocked = Request::get(gw.url("public", "/json"))
        .header("x-forwarded-for", "203.0.113.9")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let blocked = c.send(blocked).await.unwrap();
    assert_eq!(blocked.status, 403);
    let rid = blocked.headers["x-request-id"].to_str().unwrap().to_owned();
    gw.gateway.events().flush().await;

    // One JSON object per event, with the request id the client saw.
    let jsonl = std::fs::read_to_string(gw.dir.path().join("events.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{jsonl}");
    assert_eq!(events[0]["request_id"], rid.as_str());
    assert_eq!(events[0]["stage"], "iprules");
    assert_eq!(events[0]["rule"], "bad-net");
    assert_eq!(events[0]["client_ip"], "203.0.113.9");
    assert_eq!(events[0]["status"], 403);

    // One access-log line per request.
    let access = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap();
    let lines: Vec<serde_json::Value> = access
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{access}");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[1]["status"], 403);
    assert_eq!(lines[1]["blocked_by"], "iprules");

    // Metrics need the token; with it, the request counters are there.
    let admin = gw.admin_addr();
    assert_eq!(
        c.get(&format!("http://{admin}/metrics"))
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        c.get(&format!("http://{admin}/healthz"))
            .await
            .unwrap()
            .status,
        200
    );
    let m = c
        .send(
            Request::get(format!("http://{admin}/metrics"))
                .header("authorization", "Bearer s3cret")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(text.contains("rampart_requests_total{listener=\"public\",api=\"app\",status=\"403\",decision=\"block\"}"), "{text}");
    assert!(
        text.contains(
            "rampart_stage_blocks_total{stage=\"iprules\",reason=\"forbidden\",action=\"block\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("rampart_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("rampart_connections_active"), "{text}");
    gw.shutdown().await;
}
