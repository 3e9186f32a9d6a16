//! Hot reload: under load with zero failed requests, bad reloads rejected with the old config
//! serving, file watching, and events written to SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart_proxy::ReloadOutcome;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};

fn config(up: &str, blocked: &str) -> String {
    format!(
        r#"
listeners:
  - name: public
    bind: 127.0.0.1:0
    trusted_proxies: [127.0.0.1/32]
upstreams:
  app: {{ targets: ["{up}"] }}
ip_rules:
  - {{ id: blocklist, action: block, list: [{blocked}] }}
apis:
  - {{ name: app, upstream: app }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_no_request() {
    let up = TestUpstream::start().await;
    let gw = Arc::new(TestGateway::start(&config(&up.url(), "203.0.113.0/24")).await);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (gw, stop, ok, failed) = (gw.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let c = HttpClient::new();
            let url = gw.url("public", "/json");
            while !stop.load(Ordering::Relaxed) {
                match c.get(&url).await {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let outcome = gw
            .reload(&config(&up.url(), &format!("198.51.{i}.0/24")))
            .await;
        assert!(outcome.is_applied(), "{outcome:?}");
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "{} requests failed during reloads",
        failed.load(Ordering::Relaxed)
    );
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "too little load: {}",
        ok.load(Ordering::Relaxed)
    );
    Arc::try_unwrap(gw).unwrap().shutdown().await;
}

#[tokio::test]
async fn a_bad_reload_is_rejected_and_the_old_config_keeps_serving() {
    let up = TestUpstream::start().await;
    let good = config(&up.url(), "203.0.113.0/24");
    let gw = TestGateway::start(&good).await;
    let c = HttpClient::new();
    let blocked = |c: HttpClient, url: String| async move {
        c.send(
            http::Request::get(url)
                .header("x-forwarded-for", "203.0.113.5")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap()
        .status
    };
    assert_eq!(blocked(c.clone(), gw.url("public", "/json")).await, 403);

    let bad = good
        .replace("203.0.113.0/24", "203.0.113.0/99")
        .replace("upstream: app }", "upstream: nope }");
    match gw.reload(&bad).await {
        ReloadOutcome::Rejected {
            diagnostics,
            rendered,
        } => {
            assert_eq!(diagnostics.len(), 2, "{rendered}");
            assert!(rendered.contains("unknown upstream \"nope\""), "{rendered}");
            assert!(rendered.contains("prefix length"), "{rendered}");
        }
        ReloadOutcome::Applied => panic!("a bad config was applied"),
    }
    // The old config still serves: same block, same upstream.
    assert_eq!(blocked(c.clone(), gw.url("public", "/json")).await, 403);
    assert_eq!(c.get(&gw.url("public", "/json")).await.unwrap().status, 200);

    // Changing a listener's address needs a restart.
    let moved = good.replace("bind: 127.0.0.1:0", "bind: 127.0.0.1:1");
    assert!(!gw.reload(&moved).await.is_applied());
    assert_eq!(c.get(&gw.url("public", "/json")).await.unwrap().status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_file_watcher_reloads_on_change() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "203.0.113.0/24")).await;
    let _watch = rampart_proxy::spawn_reload_watchers(
        gw.gateway.shared().clone(),
        Duration::from_millis(100),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    std::fs::write(&gw.config_path, config(&up.url(), "127.0.0.0/8")).unwrap();
    let c = HttpClient::new();
    let mut status = 0;
    for _ in 0..50 {
        status = c
            .get(&gw.url("public", "/json"))
            .await
            .unwrap()
            .status
            .as_u16();
        if status == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 403, "the changed file was not picked up");
    gw.shutdown().await;
}

#[tokio::test]
async fn blocks_become_events_in_sqlite() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&config(&up.url(), "203.0.113.0/24")).await;
    let c = HttpClient::new();
    for ip in ["203.0.113.5", "203.0.113.6"] {
        let req = http::Request::get(gw.url("public", "/json"))
            .header("x-forwarded-for", ip)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(c.send(req).await.unwrap().status, 403);
    }
    assert_eq!(
        c.get(&gw.url("public", "/nowhere/../x"))
            .await
            .map(|r| r.status.as_u16())
            .unwrap_or(400),
        400
    );
    gw.gateway.events().flush().await;
    let ev = common::events(&gw.events_db().unwrap());
    let ip_events: Vec<_> = ev.iter().filter(|e| e.0 == "iprules").collect();
    assert_eq!(ip_events.len(), 2, "{ev:?}");
    assert_eq!(ip_events[0].1.as_deref(), Some("blocklist"));
    assert_eq!(ip_events[0].2, "block");
    assert_eq!(ip_events[0].3, "forbidden");
    assert_eq!(ip_events[0].4, Some(403));
    assert_eq!(ip_events[0].5, "203.0.113.5");
    assert_eq!(up.requests(), 0);
    gw.shutdown().await;
}
