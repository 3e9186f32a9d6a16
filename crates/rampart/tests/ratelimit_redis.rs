//! Rate limits shared through a real `redis-server` by two gateway processes: one limit of 100
//! requests per 10 s lets through 100 ± 2 of 1,000 requests spread over both; with Redis
//! stopped, requests keep being served under each node's local limiter and the fallback is
//! logged; with Redis back, limits are shared again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_test_support::{HttpClient, TempDir, TestRedis, TestUpstream};

struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_node(dir: &TempDir, name: &str, upstream: &str, redis: &str) -> Node {
    let port = free_port();
    let config = format!(
        r#"
listeners:
  - {{ name: public, bind: "127.0.0.1:{port}" }}
upstreams:
  app: {{ targets: ["{upstream}"] }}
state: {{ store: redis, url: "{redis}", timeout_ms: 200 }}
apis:
  - name: app
    upstream: app
    rate_limits:
      - {{ name: shared, when: 'starts_with(http.request.uri.path, "/shared")', key: api.name, requests: 100, window_secs: 10, algorithm: sliding_window }}
      - {{ name: again, when: 'starts_with(http.request.uri.path, "/again")', key: api.name, requests: 100, window_secs: 10, algorithm: sliding_window }}
      - {{ name: warm, when: 'starts_with(http.request.uri.path, "/warm")', key: api.name, requests: 1000000, window_secs: 10 }}
events: {{ sqlite: "off", jsonl: "{name}.jsonl" }}
"#
    );
    let path = dir.write(&format!("{name}.yaml"), config);
    let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["--workers", "1", "run", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Node { child, port }
}

async fn wait_up(c: &HttpClient, node: &Node) {
    for _ in 0..200 {
        if c.get(&format!("http://127.0.0.1:{}/warm", node.port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway on port {} did not come up", node.port);
}

/// Waits for the start of a 10 s window (Redis's clock is this machine's).
async fn window_start() {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let into = ms % 10_000;
    if into > 200 {
        tokio::time::sleep(Duration::from_millis(10_000 - into + 20)).await;
    }
}

/// Sends `n` requests to `path`, alternating between the nodes, ten at a time; returns how
/// many got 200, and panics on anything but 200 and 429.
async fn spread(c: &HttpClient, nodes: &[&Node], path: &str, n: usize) -> usize {
    let mut ok = 0;
    let urls: Vec<String> = nodes
        .iter()
        .map(|node| format!("http://127.0.0.1:{}{path}", node.port))
        .collect();
    for batch in (0..n).collect::<Vec<_>>().chunks(10) {
        let futs = batch.iter().map(|i| c.get(&urls[i % urls.len()]));
        for r in futures_util::future::join_all(futs).await {
            let r = r.unwrap();
            match r.status.as_u16() {
                200 => ok += 1,
                429 => {}
                other => panic!("status {other}: {}", String::from_utf8_lossy(&r.body)),
            }
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_limit_and_survive_an_outage() {
    let mut redis = TestRedis::start();
    let up = TestUpstream::start().await;
    let dir = TempDir::new("rl-redis");
    let a = start_node(&dir, "a", &up.url(), &redis.url());
    let b = start_node(&dir, "b", &up.url(), &redis.url());
    let c = HttpClient::new();
    wait_up(&c, &a).await;
    wait_up(&c, &b).await;
    // Both connected: the warm-up rule goes through Redis without a fallback.
    spread(&c, &[&a, &b], "/warm", 20).await;

    window_start().await;
    let passed = spread(&c, &[&a, &b], "/shared", 1000).await;
    assert!((98..=102).contains(&passed), "{passed} of 1000 passed");

    // Redis goes away: both nodes keep serving, each under its own local limiter.
    redis.stop();
    let during = spread(&c, &[&a], "/again", 150).await;
    assert!(
        (95..=105).contains(&during),
        "{during} passed on one node during the outage"
    );
    let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    assert!(log.contains("local limiter"), "{log}");
    let events = std::fs::read_to_string(dir.path().join("a.jsonl")).unwrap_or_default();
    assert!(
        events
            .lines()
            .any(|l| l.contains("\"reason\":\"unavailable\"") && l.contains("local limiter")),
        "the fallback is an event: {events}"
    );

    // Redis is back (empty): once the nodes have reconnected, the limit is shared again.
    redis.restart();
    for _ in 0..40 {
        spread(&c, &[&a, &b], "/warm", 10).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    assert!(log.contains("shared again"), "{log}");
    window_start().await;
    let shared = spread(&c, &[&a, &b], "/again", 400).await;
    assert!(
        (98..=102).contains(&shared),
        "{shared} of 400 passed after Redis came back"
    );
}
