//! The event store's filtered queries over one million events (the admin API's events list).
//!
//! `cargo bench -p rampart-admin --bench event_query`. The database is built once per run in
//! the temp directory (about 20 s): a day of events from 5,000 clients, 8 stages, 200 rules,
//! 50 consumers, 4 APIs.

#![allow(missing_docs, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_core::{FindingAction, SecurityEvent};
use rampart_proxy::{EventQuery, EventReader, EventStore};

const N: u64 = 1_000_000;
const T0: u64 = 1_800_000_000_000;

fn event(i: u64) -> SecurityEvent {
    // A cheap deterministic mix (splitmix64) so that columns are not correlated.
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let stages = [
        "waf",
        "ratelimit",
        "authn",
        "schema",
        "dlp",
        "ddos",
        "iprules",
        "authz",
    ];
    let actions = [
        FindingAction::Block,
        FindingAction::WouldBlock,
        FindingAction::Log,
        FindingAction::Mask,
    ];
    SecurityEvent {
        time_ms: T0 + i * 86 + (z % 50),
        request_id: format!("{z:016x}"),
        client_ip: format!("198.51.{}.{}", (z >> 8) % 20, (z >> 16) % 250),
        listener: "public".into(),
        api: Some(format!("api-{}", (z >> 24) % 4)),
        operation: Some(format!("op-{}", (z >> 28) % 30)),
        consumer: (z >> 34)
            .is_multiple_of(3)
            .then(|| format!("consumer-{}", (z >> 36) % 50)),
        method: "GET".into(),
        path: format!("/items/{}", z % 10_000),
        stage: stages[((z >> 40) % 8) as usize].into(),
        rule: Some(format!("{}", 920_000 + (z >> 44) % 200)),
        action: actions[((z >> 52) % 4) as usize],
        reason: "forbidden".into(),
        status: Some(403),
        detail: "Matched Data: ' or 1=1-- found within ARGS:q".into(),
    }
}

fn build(path: &std::path::Path) {
    if path.exists() {
        if let Ok(r) = EventReader::open(path) {
            if r.count().unwrap_or(0) == N {
                // As the event writer does every minute.
                EventStore::open(path, Duration::from_secs(365 * 86_400), N, u64::MAX)
                    .expect("open the store")
                    .analyze()
                    .expect("analyze");
                return;
            }
        }
        let _ = std::fs::remove_file(path);
    }
    let mut s = EventStore::open(path, Duration::from_secs(365 * 86_400), N, u64::MAX)
        .expect("open the store");
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..N {
        batch.push(event(i));
        if batch.len() == 10_000 {
            s.insert(&batch).expect("insert");
            batch.clear();
        }
    }
    s.apply_retention(T0 + N * 100)
        .expect("retention (runs ANALYZE)");
}

fn bench(c: &mut Criterion) {
    let path = std::env::temp_dir().join("rampart-bench-events-1m.db");
    build(&path);
    let r = EventReader::open(&path).expect("open read-only");
    assert_eq!(r.count().expect("count"), N);
    let page = |q: EventQuery| EventQuery { limit: 50, ..q };
    let mid = T0 + N / 2 * 86;
    let cases: Vec<(&str, EventQuery)> = vec![
        ("newest page", page(EventQuery::default())),
        (
            "stage=waf",
            page(EventQuery {
                stage: Some("waf".into()),
                ..EventQuery::default()
            }),
        ),
        (
            "rule=920123",
            page(EventQuery {
                rule: Some("920123".into()),
                ..EventQuery::default()
            }),
        ),
        (
            "client_ip, one of 5,000",
            page(EventQuery {
                client_ip: Some("198.51.7.77".into()),
                ..EventQuery::default()
            }),
        ),
        (
            "stage+action+consumer",
            page(EventQuery {
                stage: Some("authn".into()),
                action: Some("block".into()),
                consumer: Some("consumer-7".into()),
                ..EventQuery::default()
            }),
        ),
        (
            "rule + 1 h time range in the middle",
            page(EventQuery {
                rule: Some("920042".into()),
                from_ms: Some(mid),
                to_ms: Some(mid + 3_600_000),
                ..EventQuery::default()
            }),
        ),
        (
            "api+operation, deep cursor",
            page(EventQuery {
                api: Some("api-2".into()),
                operation: Some("op-17".into()),
                before_id: Some(100_000),
                ..EventQuery::default()
            }),
        ),
        (
            "no match (client and rule)",
            page(EventQuery {
                client_ip: Some("203.0.113.1".into()),
                rule: Some("920001".into()),
                ..EventQuery::default()
            }),
        ),
    ];
    let mut g = c.benchmark_group("event_query_1m");
    g.sample_size(20);
    for (name, q) in cases {
        g.bench_function(name, |b| {
            b.iter(|| r.query(&q).expect("query"));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
