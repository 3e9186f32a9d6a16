//! Rate limits through the proxy: 429 with `Retry-After` and the IETF headers, the headers on
//! allowed responses, keys (client address, prefix, header with a fallback), `log` rules, one
//! event per episode, and counts that survive a reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};

fn config(up: &str, extra_rule: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, trusted_proxies: [127.0.0.1/32] }}
upstreams:
  app: {{ targets: ["{up}"] }}
rate_limits:
  - {{ name: global-per-ip, key: ip.src, requests: 1000, window_secs: 60 }}
apis:
  - name: app
    upstream: app
    rate_limits:
      - {{ name: per-ip, when: 'starts_with(http.request.uri.path, "/ip")', key: ip.src, requests: 5, window_secs: 60 }}
      - {{ name: per-net, when: 'starts_with(http.request.uri.path, "/net")', key: ip.src/24, requests: 3, window_secs: 60, algorithm: sliding_window }}
      - {{ name: per-key, when: 'starts_with(http.request.uri.path, "/key")', key: 'http.request.headers["x-api-key"]', requests: 2, window_secs: 60 }}
      - {{ name: watch, when: 'starts_with(http.request.uri.path, "/watch")', requests: 1, window_secs: 60, action: log }}
      - {{ name: costly, when: 'starts_with(http.request.uri.path, "/export")', requests: 10, window_secs: 60, cost: 4 }}
{extra_rule}
events: {{ sqlite: events.db }}
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
async fn limits_answer_429_with_headers_and_one_event_per_episode() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "")).await;
    let c = HttpClient::new();
    let from = |ip: &'static str| [("x-forwarded-for", ip)];

    // Five pass, with the headers of the tightest rule; the rest get 429.
    for i in 0..5 {
        let r = c.send(get(&gw, "/ip", &from("192.0.2.1"))).await.unwrap();
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.headers["ratelimit-policy"], "\"per-ip\";q=5;w=60");
        assert_eq!(
            r.headers["ratelimit"]
                .to_str()
                .unwrap()
                .split(';')
                .nth(1)
                .unwrap(),
            format!("r={}", 4 - i)
        );
    }
    let before = up.seen().len();
    for _ in 0..10 {
        let r = c.send(get(&gw, "/ip", &from("192.0.2.1"))).await.unwrap();
        assert_eq!(r.status, 429);
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=12).contains(&retry), "{retry}");
        assert_eq!(r.headers["ratelimit-policy"], "\"per-ip\";q=5;w=60");
        assert!(r.headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"per-ip\";r=0;t="));
        assert_eq!(r.json()["error"], "rate_limited");
    }
    assert_eq!(
        up.seen().len(),
        before,
        "a limited request never reaches the upstream"
    );
    // Another client is not affected.
    assert_eq!(
        c.send(get(&gw, "/ip", &from("192.0.2.2")))
            .await
            .unwrap()
            .status,
        200
    );

    // By prefix: three from the whole /24, with a sliding window.
    for (i, ip) in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ]
    .iter()
    .enumerate()
    {
        let r = c
            .send(get(&gw, "/net", &[("x-forwarded-for", ip)]))
            .await
            .unwrap();
        assert_eq!(r.status, if i < 3 { 200 } else { 429 }, "{ip}");
    }
    assert_eq!(
        c.send(get(&gw, "/net", &from("198.51.101.1")))
            .await
            .unwrap()
            .status,
        200
    );

    // By header: each key counted alone; no key at all is counted by address.
    for key in ["k1", "k2"] {
        for i in 0..3 {
            let r = c
                .send(get(
                    &gw,
                    "/key",
                    &[("x-api-key", key), ("x-forwarded-for", "203.0.113.9")],
                ))
                .await
                .unwrap();
            assert_eq!(r.status, if i < 2 { 200 } else { 429 }, "{key} {i}");
        }
    }
    for i in 0..3 {
        let r = c
            .send(get(&gw, "/key", &from("203.0.113.10")))
            .await
            .unwrap();
        assert_eq!(r.status, if i < 2 { 200 } else { 429 }, "no key, {i}");
    }

    // A cost of 4 out of 10: two pass, the third does not.
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                c.send(get(&gw, "/export", &from("192.0.2.50")))
                    .await
                    .unwrap()
                    .status
                    .as_u16(),
            );
        }
        v
    };
    assert_eq!(statuses, [200, 200, 429]);

    // A log rule: everything passes, one finding per episode.
    for _ in 0..5 {
        assert_eq!(
            c.send(get(&gw, "/watch", &from("192.0.2.60")))
                .await
                .unwrap()
                .status,
            200
        );
    }

    gw.gateway.events().flush().await;
    let conn = rusqlite::Connection::open(gw.events_db().unwrap()).unwrap();
    let count = |rule: &str| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM events WHERE stage = 'ratelimit' AND rule = ?1",
            [rule],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count("per-ip"), 1, "ten refusals of one key: one event");
    assert_eq!(count("per-net"), 1);
    assert_eq!(count("per-key"), 3, "k1, k2 and the address");
    assert_eq!(count("watch"), 1);
    let action: String = conn
        .query_row("SELECT action FROM events WHERE rule = 'watch'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(action, "log");
    drop(conn);
    gw.shutdown().await;
}

#[tokio::test]
async fn counts_survive_a_reload_and_bad_rules_are_reported() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "")).await;
    let c = HttpClient::new();
    let from = [("x-forwarded-for", "192.0.2.77")];
    for _ in 0..5 {
        assert_eq!(c.send(get(&gw, "/ip", &from)).await.unwrap().status, 200);
    }
    let reloaded = gw
        .reload(&config(
            &up.url(),
            "      - { name: extra, when: 'http.request.method == \"PUT\"', requests: 1, window_secs: 1 }",
        ))
        .await;
    assert!(
        matches!(reloaded, rampart_proxy::ReloadOutcome::Applied),
        "{reloaded:?}"
    );
    assert_eq!(
        c.send(get(&gw, "/ip", &from)).await.unwrap().status,
        429,
        "the count was handed on to the new configuration"
    );

    let bad = gw
        .reload(&config(
            &up.url(),
            "      - { name: bad, key: identity.consumr, requests: 0, window_secs: 1, when: 'http.request.body.raw contains \"x\"' }",
        ))
        .await;
    let rampart_proxy::ReloadOutcome::Rejected { rendered: text, .. } = bad else {
        panic!("a bad reload was applied")
    };
    assert!(
        text.contains("did you mean \"identity.consumer\""),
        "{text}"
    );
    assert!(text.contains("must be at least 1"), "{text}");
    assert!(text.contains("cannot read bodies"), "{text}");
    gw.shutdown().await;
}
