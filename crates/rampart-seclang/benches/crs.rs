//! The engine with the OWASP CRS v4.28 (../shared/corpora/crs): the rule set's load time, and
//! the time to evaluate a benign GET, a benign 1 KB JSON POST and an attack, at paranoia
//! levels 1 and 4 (request and response phases, as the `waf.crs` stage runs them).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_seclang::bench_data::{json_1kb, load, request, run};

fn crs(c: &mut Criterion) {
    let mut g = c.benchmark_group("crs");
    g.sample_size(10);
    g.bench_function("load_pl1", |b| b.iter(|| load(1).rules.len()));
    g.finish();
    let body = json_1kb();
    let get = request("GET", "/api/products?page=2&sort=price&q=keyboard", None);
    let post = request("POST", "/api/orders", Some("application/json"));
    let attack = request(
        "GET",
        "/download?file=../../../../etc/passwd&cmd=;cat%20/etc/shadow",
        None,
    );
    for pl in [1u8, 4] {
        let set = Arc::new(load(pl));
        let mut g = c.benchmark_group(format!("crs_pl{pl}"));
        g.bench_function("benign_get", |b| b.iter(|| run(&set, &get, b"")));
        g.bench_function("benign_json_post_1kb", |b| {
            b.iter(|| run(&set, &post, &body))
        });
        g.bench_function("attack_get", |b| b.iter(|| run(&set, &attack, b"")));
        g.finish();
    }
}

criterion_group!(benches, crs);
criterion_main!(benches);
