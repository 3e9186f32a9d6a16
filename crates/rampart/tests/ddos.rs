//! The DDoS guard through the proxy: a flood from many loopback addresses is banned while a
//! well-behaved client keeps its throughput; load shedding keeps the upstream at its cap and
//! never sheds health checks; bans reach every node through Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rampart_test_support::{HttpClient, TestGateway, TestRedis, TestUpstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A keep-alive HTTP/1.1 client whose connections come from `src` (any 127.0.0.0/8 address).
struct Raw {
    src: std::net::Ipv4Addr,
    addr: SocketAddr,
    conn: Option<TcpStream>,
}

impl Raw {
    fn new(src: &str, addr: SocketAddr) -> Self {
        Self {
            src: src.parse().unwrap(),
            addr,
            conn: None,
        }
    }

    async fn get(&mut self, path: &str) -> Option<u16> {
        if self.conn.is_none() {
            let sock = TcpSocket::new_v4().ok()?;
            sock.bind(SocketAddr::from((self.src, 0))).ok()?;
            self.conn = Some(sock.connect(self.addr).await.ok()?);
        }
        let s = self.conn.as_mut()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        if s.write_all(req.as_bytes()).await.is_err() {
            self.conn = None;
            return None;
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    self.conn = None;
                    return None;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let status: u16 = head.get(9..12)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    self.conn = None;
                    break;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        if head.contains("connection: close") {
            self.conn = None;
        }
        Some(status)
    }
}

fn config(up: &str, ddos: &str, state: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, limits: {{ max_connections_per_ip: 1000 }} }}
upstreams:
  app: {{ targets: ["{up}"], request_timeout_ms: 5000 }}
ddos: {ddos}
{state}
apis:
  - {{ name: app, upstream: app }}
events: {{ sqlite: events.db }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_banned_and_a_polite_client_keeps_its_throughput() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(
        &up.url(),
        "{ per_ip: { requests_per_sec: 20, burst: 20, ban_secs: 60 } }",
        "",
    ))
    .await;
    let addr = gw.addr("public");
    let deadline = Instant::now() + Duration::from_secs(3);
    // Twenty flooding addresses, each as fast as it can, for at most 3 s or 3,000 requests.
    let mut flooders = Vec::new();
    for i in 0..20 {
        flooders.push(tokio::spawn(async move {
            let mut c = Raw::new(&format!("127.0.0.{}", 10 + i), addr);
            let (mut ok, mut limited) = (0u32, 0u32);
            for _ in 0..3000 {
                if Instant::now() > deadline {
                    break;
                }
                match c.get("/json").await {
                    Some(200) => ok += 1,
                    Some(429) => limited += 1,
                    _ => {}
                }
            }
            (ok, limited)
        }));
    }
    // A polite client: 10 requests a second, from its own address (half the rate allowed).
    let mut polite = Raw::new("127.0.0.2", addr);
    let (mut sent, mut served) = (0u32, 0u32);
    while Instant::now() < deadline {
        sent += 1;
        if polite.get("/json").await == Some(200) {
            served += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut flood_ok = 0;
    let mut flood_limited = 0;
    for f in flooders {
        let (ok, limited) = f.await.unwrap();
        assert!(
            limited > 0,
            "every flooder is refused once banned ({ok} served)"
        );
        flood_ok += ok;
        flood_limited += limited;
    }
    assert!(sent >= 15, "the polite client sent {sent}");
    assert!(
        served * 10 >= sent * 9,
        "the polite client was served {served} of {sent}"
    );
    // Each flooder got at most its burst and the rate while it lasted, then a ban.
    assert!(flood_limited > 0);
    assert!(flood_ok <= 20 * (20 + 20 * 3 + 5), "{flood_ok}");
    gw.gateway.events().flush().await;
    let conn = rusqlite::Connection::open(gw.events_db().unwrap()).unwrap();
    let bans: i64 = conn
        .query_row(
            "SELECT count(DISTINCT client_ip) FROM events WHERE stage = 'ddos' AND rule = 'ddos.ip'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bans, 20, "every flooding address banned, one event each");
    let polite_events: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE client_ip = '127.0.0.2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(polite_events, 0);
    drop(conn);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_is_shed_above_the_in_flight_cap_but_not_health_checks() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(
        &up.url(),
        "{ max_in_flight: 4, exempt_paths: [/healthz] }",
        "",
    ))
    .await;
    let c = HttpClient::new();
    let url = gw.url("public", "/slow?ms=800");
    let futs = (0..12).map(|_| c.get(&url));
    let mut health = None;
    let results = {
        let slow = futures_util::future::join_all(futs);
        let check = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            health = Some(c.get(&gw.url("public", "/healthz")).await.unwrap().status);
        };
        let (r, ()) = tokio::join!(slow, check);
        r
    };
    let mut statuses: Vec<u16> = results
        .iter()
        .map(|r| r.as_ref().unwrap().status.as_u16())
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 503, 503, 503, 503, 503, 503, 503, 503]
    );
    for r in results.iter().flatten().filter(|r| r.status == 503) {
        assert_eq!(r.headers["retry-after"], "1");
        assert_eq!(r.json()["error"], "overloaded");
    }
    assert_eq!(
        health,
        Some(http::StatusCode::OK),
        "health checks are never shed"
    );
    // The upstream never had more than the cap at once: the shed requests never reached it.
    let slow_seen = up
        .seen()
        .iter()
        .filter(|s| s.path_and_query.starts_with("/slow"))
        .count();
    assert_eq!(slow_seen, 4);
    // Once they are done, there is room again.
    assert_eq!(c.get(&gw.url("public", "/json")).await.unwrap().status, 200);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_reaches_every_node_through_redis() {
    let redis = TestRedis::shared();
    let up = TestUpstream::start().await;
    let state = format!("state: {{ store: redis, url: \"{}\" }}", redis.url());
    let ddos = "{ per_ip: { requests_per_sec: 5, burst: 5, ban_secs: 60 } }";
    let a = TestGateway::start(&config(&up.url(), ddos, &state)).await;
    let b = TestGateway::start(&config(&up.url(), ddos, &state)).await;
    // Both nodes listen for bans before the flood starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let src = "127.0.0.77";
    let mut on_b = Raw::new(src, b.addr("public"));
    assert_eq!(on_b.get("/json").await, Some(200));
    let mut on_a = Raw::new(src, a.addr("public"));
    let mut banned = false;
    for _ in 0..50 {
        if on_a.get("/json").await == Some(429) {
            banned = true;
            break;
        }
    }
    assert!(banned, "node A bans the flooding address");
    // Node B refuses it too, without having seen its flood.
    let mut refused_on_b = false;
    for _ in 0..50 {
        if on_b.get("/json").await == Some(429) {
            refused_on_b = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused_on_b, "the ban reached node B");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rampart_bans_adds_lists_and_lifts_bans_on_every_node() {
    let redis = TestRedis::shared();
    let up = TestUpstream::start().await;
    let dir = rampart_test_support::TempDir::new("bans-cli");
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, trusted_proxies: [127.0.0.1/32] }}
upstreams:
  app: {{ targets: ["{up}"] }}
state: {{ store: redis, url: "{redis}", key_prefix: "cli-test-{pid}:" }}
ddos: {{ per_ip: {{ requests_per_sec: 1000, ban_secs: 60 }} }}
apis:
  - {{ name: app, upstream: app }}
"#,
        up = up.url(),
        redis = redis.url(),
        pid = std::process::id(),
    );
    let cfg = dir.write("rampart.yaml", &yaml);
    let gw = TestGateway::start(&yaml).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bans = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("bans")
            .args(args)
            .arg("-c")
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let c = HttpClient::new();
    let from = |ip: &str| {
        http::Request::get(gw.url("public", "/json"))
            .header("x-forwarded-for", ip)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    assert_eq!(c.send(from("203.0.113.9")).await.unwrap().status, 200);
    let (code, out, err) = bans(&["add", "203.0.113.9", "--secs", "120"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = bans(&["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("ip:203.0.113.9\t"), "{out}");
    let mut refused = false;
    for _ in 0..50 {
        if c.send(from("203.0.113.9")).await.unwrap().status == 429 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the running gateway got the ban");
    assert_eq!(c.send(from("203.0.113.10")).await.unwrap().status, 200);
    let (code, _, err) = bans(&["remove", "203.0.113.9"]);
    assert_eq!(code, 0, "{err}");
    let mut lifted = false;
    for _ in 0..50 {
        if c.send(from("203.0.113.9")).await.unwrap().status == 200 {
            lifted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(lifted, "the running gateway lifted the ban");
    let (code, _, err) = bans(&["remove", "203.0.113.9"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = bans(&["add", "not-an-address"]);
    assert_eq!(code, 2, "{err}");
    gw.shutdown().await;
}
