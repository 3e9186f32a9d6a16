//! The rate limiter per request, in memory: one check of one key (GCRA and sliding window),
//! and the whole stage with three rules on a request.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_core::{CompileCx, Exchange, Peer, RouteInfo, Stage};
use rampart_rules::Lists;
use rampart_stages::ratelimit::{
    Algorithm, Backend, Limit, MemoryStore, RateLimitConfig, RateLimitStage, RateLimits,
    SharedStore,
};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ratelimit");
    let store = MemoryStore::new(262_144);
    for (name, algorithm) in [
        ("gcra", Algorithm::Gcra),
        ("sliding_window", Algorithm::SlidingWindow),
    ] {
        let limit = Limit {
            requests: 1_000_000_000,
            window_ms: 1000,
            burst: 1_000_000_000,
            algorithm,
            penalty_ms: 0,
        };
        let keys: Vec<String> = (0..10_000)
            .map(|i| format!("198.51.{}.{}", i / 256, i % 256))
            .collect();
        let mut i = 0usize;
        g.bench_function(format!("check_one_key/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                black_box(store.check("r", &keys[i], &limit, 1, 1_000_000 + i as u64))
            });
        });
    }

    let yaml_rules: Vec<RateLimitConfig> = vec![
        serde_json::from_value(serde_json::json!({"name": "per-ip", "key": "ip.src", "requests": 1_000_000_000u64, "window_secs": 60})).unwrap(),
        serde_json::from_value(serde_json::json!({"name": "per-net", "key": "ip.src/24", "requests": 1_000_000_000u64, "window_secs": 60, "algorithm": "sliding_window"})).unwrap(),
        serde_json::from_value(serde_json::json!({"name": "login", "when": "http.request.uri.path == \"/login\"", "requests": 5, "window_secs": 60})).unwrap(),
    ];
    let mut cx = CompileCx::new();
    let rules = RateLimits::compile(&yaml_rules, &Lists::new(), &mut cx).unwrap();
    assert!(cx.is_ok());
    let stage = RateLimitStage::new(
        vec![Arc::new(rules)],
        Backend::Memory(Arc::new(SharedStore::new(262_144))),
    )
    .unwrap();
    let req = http::Request::get("/api/users/1")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let peer = Peer {
        addr: "203.0.113.9:5000".parse().unwrap(),
        listener: Arc::from("l"),
        tls: None,
    };
    g.bench_function("stage_three_rules", |b| {
        b.iter(|| {
            let mut x = Exchange::new(String::new(), peer.clone(), 1_000_000);
            x.route = Some(RouteInfo {
                api: Arc::from("api"),
                operation: None,
            });
            let mut r = req.clone();
            let d = stage.on_request_head(&mut r, &mut x).unwrap();
            assert!(matches!(d, rampart_core::Decision::Continue));
            black_box(x);
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
