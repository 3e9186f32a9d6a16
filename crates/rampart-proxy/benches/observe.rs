//! The request path's cost of API discovery: building an observation (the API handle, the
//! method, the path handed over, the status, the media type, the size) and handing it to the
//! worker through the bounded channel, with the worker learning on the other core.
//!
//! `cargo bench -p rampart-proxy --bench observe`

#![allow(missing_docs, clippy::expect_used)]
// A benchmark thread, not an async worker: it waits for the discovery worker to catch up.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_proxy::discovery::{Discovery, DiscoverySettings, Observation};

fn bench(c: &mut Criterion) {
    let d = Discovery::start(&DiscoverySettings {
        session: vec![rampart_config::SessionSource::Consumer],
        state: None,
        channel_capacity: 65_536,
        max_nodes_per_api: 50_000,
        orphan_after: std::time::Duration::from_secs(86_400),
    })
    .expect("start the worker");
    let api: Arc<str> = Arc::from("shop");
    let mut i = 0u64;
    let mut sent = 0u64;
    c.bench_function("discovery: observation built and enqueued", |b| {
        // Batches that fit in the queue, timed only while enqueueing, the worker catching up
        // between them: the cost a request pays when the worker keeps up.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(10_000);
                while d.learned.load(Ordering::Relaxed) + d.dropped.load(Ordering::Relaxed) < sent {
                    std::thread::sleep(Duration::from_micros(200));
                }
                let start = Instant::now();
                for _ in 0..n {
                    i += 1;
                    d.observe(Observation {
                        api: api.clone(),
                        method: http::Method::GET,
                        path: format!("/api/v1/orders/{}", i % 100_000),
                        status: 200,
                        content_type: "application/json".to_owned(),
                        size: 812,
                        ts_ms: 1_800_000_000_000,
                        session: Some((i % 5_000, None)),
                    });
                }
                total += start.elapsed();
                sent += n;
                left -= n;
            }
            total
        });
    });
    eprintln!(
        "observations dropped (queue full): {}",
        d.dropped.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
