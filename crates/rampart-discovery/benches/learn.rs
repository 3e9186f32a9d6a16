//! The discovery worker's throughput: `Learner::observe` on path-only observations, on a
//! trained trie (the steady state) and on new paths (staging), one core.
//!
//! `cargo bench -p rampart-discovery --bench learn`

#![allow(missing_docs, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart_discovery::sketch::Key;
use rampart_discovery::{Config, Learner, Observation};

fn paths(n: usize, seed: u64) -> Vec<String> {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words = ["users", "orders", "items", "carts", "invoices"];
    (0..n)
        .map(|_| {
            let w = words[(next() % 5) as usize];
            match next() % 4 {
                0 => format!("/api/v1/{w}"),
                1 => format!("/api/v1/{w}/{}", next() % 1_000_000),
                2 => format!("/api/v1/{w}/{}/lines/{}", next() % 1_000_000, next() % 50),
                _ => format!("/api/v1/{w}/search"),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ps = paths(10_000, 42);
    let mut g = c.benchmark_group("discovery_observe");
    g.throughput(Throughput::Elements(ps.len() as u64));
    let mut trained = Learner::with_key(Config::default(), Key(1, 2));
    for p in paths(100_000, 7) {
        trained.observe(&Observation {
            method: "GET",
            path: &p,
            status: 200,
            content_type: "application/json",
            size: 800,
        });
    }
    g.bench_function("trained trie, 10k observations", |b| {
        b.iter(|| {
            for p in &ps {
                trained.observe(&Observation {
                    method: "GET",
                    path: p,
                    status: 200,
                    content_type: "application/json",
                    size: 800,
                });
            }
        });
    });
    let fresh: Vec<String> = (0..10_000).map(|i| format!("/w{i}/x{i}/y")).collect();
    g.bench_function("new paths (staging), 10k observations", |b| {
        let mut l = Learner::with_key(Config::default(), Key(3, 4));
        b.iter(|| {
            for p in &fresh {
                l.observe(&Observation {
                    method: "GET",
                    path: p,
                    status: 200,
                    content_type: "application/json",
                    size: 800,
                });
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
