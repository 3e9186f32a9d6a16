//! Plain-HTTP proxying through the real gateway: forwarding, headers, upstream failures,
//! streaming, and protocol abuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};

use common::{basic, events, raw};

#[tokio::test]
async fn forwards_and_sets_proxy_headers() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&basic(&up.url())).await;
    let c = HttpClient::new();
    let req = Request::get(gw.url("public", "/echo?q=1"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-client-cert", "Subject=\"CN=forged\"")
        .header("connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "1")
        .header("keep-alive", "timeout=5")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let rsp = c.send(req).await.unwrap();
    assert_eq!(rsp.status, StatusCode::OK);
    let rid = rsp.headers["x-request-id"].to_str().unwrap().to_owned();
    let seen = up.last().unwrap();
    assert_eq!(seen.path_and_query, "/echo?q=1");
    assert!(!seen.absolute_form, "an origin server gets the origin form");
    assert_eq!(
        seen.headers["x-forwarded-for"], "127.0.0.1",
        "an untrusted peer's XFF is replaced"
    );
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-request-id"].to_str().unwrap(), rid);
    assert!(
        !seen.headers.contains_key("x-client-cert"),
        "a client can never set the identity header"
    );
    assert!(!seen.headers.contains_key("x-drop-me"));
    assert!(!seen.headers.contains_key("keep-alive"));
    gw.shutdown().await;
}

#[tokio::test]
async fn trusted_proxies_decide_the_client_ip() {
    let up = TestUpstream::start().await;
    let yaml = format!(
        r#"
listeners:
  - name: public
    bind: 127.0.0.1:0
    trusted_proxies: [127.0.0.1/32]
upstreams:
  app: {{ targets: ["{}"] }}
ip_rules:
  - {{ action: block, list: [203.0.113.0/24] }}
apis:
  - {{ name: app, upstream: app }}
"#,
        up.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();
    let send = |xff: &'static str| {
        let c = c.clone();
        let url = gw.url("public", "/echo");
        async move {
            c.send(
                Request::get(url)
                    .header("x-forwarded-for", xff)
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap()
        }
    };
    // The client behind the trusted proxy is 203.0.113.9: blocked.
    assert_eq!(send("203.0.113.9").await.status, StatusCode::FORBIDDEN);
    // The right-most untrusted address decides: 198.51.100.1, not the spoofed left one.
    let r = send("203.0.113.9, 198.51.100.1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        up.last().unwrap().headers["x-forwarded-for"],
        "203.0.113.9, 198.51.100.1, 127.0.0.1"
    );

    // Without the trust, the same header is ignored.
    let untrusted = yaml.replace("    trusted_proxies: [127.0.0.1/32]\n", "");
    assert!(gw.reload(&untrusted).await.is_applied());
    assert_eq!(send("203.0.113.9").await.status, StatusCode::OK);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    // A port with nothing listening: bind, note it, drop.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let up = TestUpstream::start().await;
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  dead: {{ targets: ["http://{dead}"], connect_timeout_ms: 300 }}
  slow: {{ targets: ["{}"], request_timeout_ms: 300 }}
apis:
  - {{ name: dead, base_path: /dead, strip_base_path: true, upstream: dead }}
  - {{ name: slow, base_path: /slow, strip_base_path: true, upstream: slow }}
"#,
        up.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();
    let r = c.get(&gw.url("public", "/dead/x")).await.unwrap();
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"], "upstream_error");
    let r = c
        .get(&gw.url("public", "/slow/slow?ms=3000"))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.json()["error"], "upstream_timeout");
    gw.shutdown().await;
}

#[tokio::test]
async fn round_robin_skips_a_failed_target() {
    let a = TestUpstream::start().await;
    let b = TestUpstream::start().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app:
    targets: ["{}", "{}", "http://{dead}"]
    connect_timeout_ms: 300
    health: {{ max_failures: 1, cooldown_ms: 60000 }}
apis:
  - {{ name: app, upstream: app }}
"#,
        a.url(),
        b.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();
    for _ in 0..30 {
        // A GET that meets the dead target is retried on another: no failure reaches the client.
        assert_eq!(
            c.get(&gw.url("public", "/json")).await.unwrap().status,
            StatusCode::OK
        );
    }
    assert_eq!(a.requests() + b.requests(), 30);
    assert!(
        a.requests() >= 10 && b.requests() >= 10,
        "round robin: {} / {}",
        a.requests(),
        b.requests()
    );
    gw.shutdown().await;
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_100_mb_both_ways_with_bounded_memory() {
    let up = TestUpstream::start().await;
    let mut yaml = basic(&up.url());
    yaml = yaml.replace(
        "    bind: 127.0.0.1:0\n",
        "    bind: 127.0.0.1:0\n    limits: { max_body_bytes: 200000000 }\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let client: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    const TOTAL: u64 = 100 * 1024 * 1024;
    let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
    let stream = Box::pin(futures_util::stream::unfold(0u64, move |sent| {
        let chunk = chunk.clone();
        async move {
            (sent < TOTAL).then(|| {
                (
                    Ok::<_, std::io::Error>(Frame::data(chunk.clone())),
                    sent + chunk.len() as u64,
                )
            })
        }
    }));
    let before = rss_kib();
    let req = Request::post(gw.url("public", "/reflect"))
        .body(StreamBody::new(stream))
        .unwrap();
    let rsp = client.request(req).await.unwrap();
    assert_eq!(rsp.status(), StatusCode::OK);
    let mut body = rsp.into_body();
    let mut got = 0u64;
    let mut peak = before;
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame.unwrap().into_data() {
            got += d.len() as u64;
        }
        peak = peak.max(rss_kib());
    }
    assert_eq!(got, TOTAL);
    let growth_mib = (peak.saturating_sub(before)) / 1024;
    assert!(
        growth_mib < 40,
        "memory grew by {growth_mib} MiB while streaming 100 MiB"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_never_reach_the_upstream() {
    let up = TestUpstream::start().await;
    let mut yaml = basic(&up.url());
    yaml = yaml.replace(
        "    bind: 127.0.0.1:0\n",
        "    bind: 127.0.0.1:0\n    limits: { max_header_bytes: 8192, max_headers: 20, max_body_bytes: 1000 }\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let addr = gw.addr("public");
    let w = Duration::from_millis(1500);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad request line", b"GARBAGE\r\n\r\n".to_vec(), "400"),
        (
            "invalid header bytes",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad\x01: y\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "conflicting CL",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd"
                .to_vec(),
            "400",
        ),
        (
            "duplicate Host",
            b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
            "400",
        ),
        ("no Host", b"GET /echo HTTP/1.1\r\n\r\n".to_vec(), "400"),
        (
            "bytes RFC 9112 forbids in the target",
            b"GET /echo?q=\"<x>\" HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "dot segments",
            b"GET /a/../echo HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "CONNECT",
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n".to_vec(),
            "405",
        ),
        (
            "body too large",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n".to_vec(),
            "413",
        ),
        (
            "headers too large",
            format!(
                "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
                "y".repeat(20_000)
            )
            .into_bytes(),
            "431",
        ),
        (
            "too many headers",
            format!(
                "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
                (0..40).map(|i| format!("X-{i}: v\r\n")).collect::<String>()
            )
            .into_bytes(),
            "431",
        ),
    ];
    for (name, bytes, status) in &cases {
        let out = raw(addr, bytes, w).await;
        let first = out.lines().next().unwrap_or("");
        assert!(
            first.contains(status),
            "{name}: expected {status}, got {first:?}"
        );
    }
    // Content-Length with Transfer-Encoding (request smuggling): the body is read as chunked
    // (RFC 9112 §6.3), the length is dropped, and the connection is closed after the response,
    // so the bytes after the chunked body can never be read as a second request.
    let smuggle = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let out = raw(addr, smuggle, w).await;
    assert_eq!(
        out.matches("HTTP/1.1 ").count(),
        1,
        "one response only: {out}"
    );
    assert!(up
        .seen()
        .iter()
        .all(|s| !s.path_and_query.contains("smuggled")));
    assert!(up
        .seen()
        .iter()
        .all(|s| !s.headers.contains_key("content-length") || s.body_len == 0));
    let forwarded_before = up.requests();

    // A chunked body over the limit is cut off with 413 too.
    let big = format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n{}\r\n0\r\n\r\n", "z".repeat(2000));
    let out = raw(addr, big.as_bytes(), w).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert_eq!(
        up.requests(),
        forwarded_before,
        "no malformed request may reach the upstream"
    );
    assert!(forwarded_before <= 1);

    // Every refusal is an event, those of requests hyper could not parse too (bad request
    // line, header bytes, conflicting lengths, forbidden target bytes: 400; heads too large:
    // 431), beside the ones the proxy's own checks made (duplicate or missing Host, dot
    // segments).
    gw.gateway.events().flush().await;
    let ev = events(&gw.events_db().unwrap());
    let malformed = |status: i64| {
        ev.iter()
            .filter(|e| e.3 == "malformed_request" && e.4 == Some(status))
            .count()
    };
    assert!(malformed(400) >= 7, "{ev:?}");
    assert!(malformed(431) >= 2, "{ev:?}");
    let reasons: Vec<&str> = ev.iter().map(|e| e.3.as_str()).collect();
    assert!(reasons.contains(&"body_too_large"), "{ev:?}");
    assert!(
        ev.iter().all(|e| e.0 == "proxy" && e.2 == "block"),
        "{ev:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn slowloris_headers_and_slow_bodies_are_cut_off() {
    let up = TestUpstream::start().await;
    let mut yaml = basic(&up.url());
    yaml = yaml.replace(
        "    bind: 127.0.0.1:0\n",
        "    bind: 127.0.0.1:0\n    limits: { header_read_timeout_ms: 400, min_body_rate_bytes_per_sec: 1000, body_rate_grace_ms: 300 }\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let addr = gw.addr("public");
    // Never finishes its headers.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(
        common::closed_within(&mut s, Duration::from_secs(5)).await,
        "a client that never finishes its headers is closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Sends a body far slower than the minimum rate.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc",
    )
    .await
    .unwrap();
    let mut out = vec![0u8; 1024];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut s, &mut out),
    )
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&out[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    gw.shutdown().await;
}

#[tokio::test]
async fn request_body_methods_and_big_responses_pass() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&basic(&up.url())).await;
    let c = HttpClient::new();
    let r = c
        .send(
            Request::builder()
                .method(Method::PUT)
                .uri(gw.url("public", "/echo"))
                .body(Full::new(Bytes::from_static(b"hello")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.json()["body_len"], 5);
    assert_eq!(r.json()["method"], "PUT");
    let r = c
        .get(&gw.url("public", "/big?bytes=3000000"))
        .await
        .unwrap();
    assert_eq!(r.body.len(), 3_000_000);
    let r = c.get(&gw.url("public", "/status/418")).await.unwrap();
    assert_eq!(r.status.as_u16(), 418);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_connections_are_reused_and_stale_ones_replaced() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&basic(&up.url())).await;
    let c = HttpClient::new();
    for _ in 0..20 {
        assert_eq!(
            c.get(&gw.url("public", "/json")).await.unwrap().status,
            StatusCode::OK
        );
        let r = c
            .send(
                Request::post(gw.url("public", "/echo"))
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(
        up.connections(),
        1,
        "40 sequential requests should share one upstream connection"
    );
    gw.shutdown().await;

    // An upstream that closes idle connections: every request still succeeds, POSTs included,
    // because a pooled connection the upstream closed is noticed before it is used.
    let closing = TestUpstream::start_closing_idle(50).await;
    let gw = TestGateway::start(&basic(&closing.url())).await;
    for i in 0..6 {
        let r = c
            .send(
                Request::post(gw.url("public", "/echo"))
                    .body(Full::new(Bytes::from_static(b"{\"n\":1}")))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK, "request {i}");
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert!(
        closing.connections() >= 5,
        "the upstream closed them: {}",
        closing.connections()
    );
    gw.shutdown().await;
}
