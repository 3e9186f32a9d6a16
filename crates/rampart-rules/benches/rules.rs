//! Benches of the rules language, grouped as the pipeline is: `parse` (text to a tree),
//! `compile` (names resolved, types checked, regexes built) and `execute` (a compiled set against
//! one request, a fresh per-request cache each time, as the WAF stage does).
//!
//! `execute/typical_100` is the figure docs/performance.md quotes against the 10 µs budget:
//! 100 rules of the kinds users write (paths, methods, hosts, headers, query arguments, IP sets,
//! a few regexes), none of which matches, so every rule is evaluated.
//!
//! ```sh
//! cargo bench -p rampart-rules --bench rules
//! ```
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart_rules::{parse, Input, Limits, List, Lists, RuleSet, RuleSetBuilder};

/// `n` rules of the usual kinds, all different, cycling through ten shapes. One in ten is a
/// regex; they share fields as real rule sets do (many rules read the path or the user agent).
fn typical_rules(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 10 {
            0 => format!(r#"http.request.uri.path == "/api/v{i}/internal""#),
            1 => format!(r#"starts_with(http.request.uri.path, "/admin{i}/")"#),
            2 => format!(r#"ip.src in {{10.{}.0.0/16 192.168.{}.0/24 2001:db8:{i:x}::/48}}"#, i % 256, i % 256),
            3 => format!(r#"lower(http.request.headers["user-agent"]) contains "scanner-{i}""#),
            4 => format!(
                r#"http.request.method == "DELETE" and http.host == "h{i}.example.com""#
            ),
            5 => format!(r#"any(http.request.uri.args["id"] == "{i}-0")"#),
            6 => format!(r#"http.request.uri.query matches "(?i)union[^a-z]+select{i}""#),
            7 => format!(r#"http.request.headers["x-api-version"] == "v{i}" or ip.src in $blocked"#),
            8 => format!(r#"http.request.cookies["session"] == "revoked-{i}""#),
            _ => format!(
                r#"not http.request.method in {{"GET" "POST" "PUT" "PATCH" "DELETE" "OPTIONS" "HEAD"}} or http.request.uri.path wildcard "/debug{i}/*""#
            ),
        })
        .collect()
}

fn lists() -> Lists {
    let mut l = Lists::new();
    let entries: Vec<String> = (0..200).map(|i| format!("198.51.{i}.0/24")).collect();
    l.insert(
        "blocked".to_owned(),
        List::from_entries(&entries).expect("list"),
    );
    l
}

fn compile(rules: &[String], lists: &Lists) -> (RuleSet, Vec<rampart_rules::ExprId>) {
    let mut b = RuleSetBuilder::new(Limits::default(), lists);
    let ids = rules
        .iter()
        .map(|r| b.add(r).unwrap_or_else(|e| panic!("{r}: {e:?}")))
        .collect();
    (b.build(), ids)
}

fn request() -> http::request::Parts {
    http::Request::get("/v1/users/42/orders?id=7&page=2&sort=desc")
        .header("host", "api.example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
        )
        .header("accept", "application/json")
        .header("x-api-version", "v2")
        .header("cookie", "session=6f1c2a; theme=dark")
        .body(())
        .expect("request")
        .into_parts()
        .0
}

fn bench_parse(c: &mut Criterion) {
    let rules = typical_rules(100);
    let limits = Limits::default();
    let mut g = c.benchmark_group("parse");
    g.bench_function("one_rule", |b| {
        b.iter(|| parse(black_box(&rules[9]), &limits).expect("parse"));
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("typical_100", |b| {
        b.iter(|| {
            for r in &rules {
                black_box(parse(black_box(r), &limits).expect("parse"));
            }
        });
    });
    g.finish();
}

fn bench_compile(c: &mut Criterion) {
    let rules = typical_rules(100);
    let lists = lists();
    let mut g = c.benchmark_group("compile");
    g.sample_size(20);
    g.throughput(Throughput::Elements(100));
    g.bench_function("typical_100", |b| {
        b.iter(|| black_box(compile(black_box(&rules), &lists)));
    });
    g.finish();
}

fn bench_execute(c: &mut Criterion) {
    let lists = lists();
    let req = request();
    let input = Input {
        client_ip: Some("203.0.113.9".parse().expect("ip")),
        request: Some(&req),
        ..Input::default()
    };
    let mut g = c.benchmark_group("execute");
    for n in [1usize, 100, 1000] {
        let rules = typical_rules(n);
        let (set, ids) = compile(&rules, &lists);
        // The bench's premise: nothing matches, so no rule short-cuts the others.
        let mut cx = set.context(input);
        assert!(ids.iter().all(|id| !set.eval(*id, &mut cx)));
        let name = match n {
            1 => "one_rule",
            100 => "typical_100",
            _ => "typical_1000",
        };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut cx = set.context(black_box(input));
                let mut hits = 0usize;
                for id in &ids {
                    hits += usize::from(set.eval(*id, &mut cx));
                }
                black_box(hits)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_parse, bench_compile, bench_execute);
criterion_main!(benches);
