//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A minimal config: one plain listener, one upstream, one API at `/`.
pub(crate) fn basic(upstream: &str) -> String {
    format!(
        r#"
listeners:
  - name: public
    bind: 127.0.0.1:0
upstreams:
  app: {{ targets: ["{upstream}"], request_timeout_ms: 2000, connect_timeout_ms: 500 }}
apis:
  - {{ name: app, upstream: app }}
"#
    )
}

/// Sends raw bytes and reads until the server closes or `wait` passes.
pub(crate) async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Returns true if the server closes the connection within `wait` (reading nothing more).
pub(crate) async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Reads the events database.
pub(crate) fn events(
    db: &std::path::Path,
) -> Vec<(String, Option<String>, String, String, Option<i64>, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn
        .prepare("SELECT stage, rule, action, reason, status, client_ip FROM events ORDER BY id")
        .unwrap();
    st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The events the gateway wrote to `events.jsonl` in its directory (flushed first).
pub(crate) async fn jsonl_events(gw: &rampart_test_support::TestGateway) -> Vec<serde_json::Value> {
    gw.gateway.events().flush().await;
    std::fs::read_to_string(gw.dir.path().join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
