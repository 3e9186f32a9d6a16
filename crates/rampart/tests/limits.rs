//! Connection-level protections: connection caps, idle timeout, HTTP/2 rapid reset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use http::Request;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn with_limits(up: &str, limits: &str) -> String {
    format!(
        r#"
listeners:
  - name: public
    bind: 127.0.0.1:0
    limits: {{ {limits} }}
upstreams:
  app: {{ targets: ["{up}"] }}
apis:
  - {{ name: app, upstream: app }}
"#
    )
}

/// Opens a keep-alive connection and completes one request on it.
async fn open(addr: std::net::SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n > 0 && buf.starts_with(b"HTTP/1.1 200")).then_some(s)
}

#[tokio::test]
async fn per_ip_and_global_connection_caps() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&with_limits(
        &up.url(),
        "max_connections: 100, max_connections_per_ip: 2",
    ))
    .await;
    let addr = gw.addr("public");
    let a = open(addr).await.expect("first connection");
    let b = open(addr).await.expect("second connection");
    assert!(
        open(addr).await.is_none(),
        "a third connection from the same IP is refused"
    );
    drop(a);
    // The slot is freed once the gateway sees the close.
    let mut reopened = None;
    for _ in 0..50 {
        if let Some(s) = open(addr).await {
            reopened = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a freed slot can be used again");
    drop((b, reopened));

    assert!(gw
        .reload(&with_limits(
            &up.url(),
            "max_connections: 1, max_connections_per_ip: 1"
        ))
        .await
        .is_applied());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let one = open(addr).await.expect("one connection");
    assert!(open(addr).await.is_none(), "the listener is full");
    drop(one);
    gw.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&with_limits(
        &up.url(),
        "idle_timeout_ms: 600, header_read_timeout_ms: 30000",
    ))
    .await;
    let mut s = open(gw.addr("public")).await.unwrap();
    let started = std::time::Instant::now();
    assert!(common::closed_within(&mut s, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "closed too early: {:?}",
        started.elapsed()
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn http2_rapid_reset_closes_the_connection() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&with_limits(&up.url(), "h2_max_pending_reset_streams: 16")).await;
    let addr = gw.addr("public");
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    let conn_task = tokio::spawn(conn);
    let mut client = client;
    let mut sent = 0;
    let mut closed = false;
    for _ in 0..2000 {
        client = match tokio::time::timeout(Duration::from_secs(2), client.ready()).await {
            Ok(Ok(c)) => c,
            _ => {
                closed = true;
                break;
            }
        };
        let req = Request::get("http://a/slow?ms=5000").body(()).unwrap();
        match client.send_request(req, true) {
            Ok((_rsp, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                sent += 1;
            }
            Err(_) => {
                closed = true;
                break;
            }
        }
        if sent % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(
        closed,
        "the gateway kept a connection that reset {sent} streams"
    );
    assert!(sent < 2000);
    let _ = tokio::time::timeout(Duration::from_secs(2), conn_task).await;
    // Everyone else is still served.
    let r = HttpClient::new()
        .get(&gw.url("public", "/json"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn http2_concurrent_streams_are_capped() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&with_limits(&up.url(), "h2_max_concurrent_streams: 3")).await;
    let tcp = TcpStream::connect(gw.addr("public")).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    // The server's SETTINGS frame announces the cap.
    for _ in 0..20 {
        if client.current_max_send_streams() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        client = client.ready().await.unwrap();
    }
    assert_eq!(client.current_max_send_streams(), 3);
    gw.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&with_limits(&up.url(), "max_connections: 100")).await;
    let url = gw.url("public", "/slow?ms=600");
    let c = HttpClient::new();
    let inflight = tokio::spawn(async move { c.get(&url).await.unwrap().status });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = gw.addr("public");
    gw.shutdown().await;
    assert_eq!(
        inflight.await.unwrap(),
        200,
        "the in-flight request was cut"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}
