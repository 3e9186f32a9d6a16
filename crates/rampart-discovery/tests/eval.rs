//! Discovery against ground truth: traffic generated from the OpenAPI examples in
//! shared/corpora/openapi, the templates learned compared with the documents' own, beside two
//! simple baselines. The table is docs/discovery.md's ("Evaluation"); `BLESS=1` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use common::{digits_only, score, templates, traffic, truth, two_values};
use rampart_discovery::sketch::Key;
use rampart_discovery::{shape, Config, Learner, Observation};

const DOCS: &[&str] = &[
    "examples/v3.0/petstore.json",
    "examples/v3.0/petstore-expanded.json",
    "examples/v3.0/link-example.json",
    "examples/v3.0/uspto.json",
    "examples/v3.0/api-with-examples.json",
    "examples/v2.0/json/uber.json",
];

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/openapi")
}

fn learn(reqs: &[(String, String, usize)]) -> BTreeSet<(String, String)> {
    let mut l = Learner::with_key(
        Config {
            consolidate_every: 500,
            ..Config::default()
        },
        Key(0x5eed, 0xd15c),
    );
    for (m, p, t) in reqs {
        l.observe(&Observation {
            method: m,
            path: p,
            status: 200,
            content_type: "application/json",
            // Each operation answers its own kind of document.
            size: 200 + 700 * (*t as u64 % 3),
        });
    }
    l.consolidate();
    l.endpoints()
        .into_iter()
        .map(|e| (e.method, shape(&e.template)))
        .collect()
}

fn fmt(p: f64, r: f64) -> String {
    format!("{p:.2} / {r:.2}")
}

#[test]
fn templates_from_the_openapi_examples() {
    let mut table = String::from(
        "| document | templates | K | Rampart (precision / recall) | digits only | two values |\n|---|---|---|---|---|---|\n",
    );
    let mut all = [(0usize, 0usize, 0usize); 3]; // (hits, learned, true) per method
    for doc in DOCS {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(corpus().join(doc)).unwrap()).unwrap();
        let ts = templates(&json);
        let truth = truth(&ts);
        for k in [5usize, 20, 100] {
            let reqs = traffic(&ts, k, 20 * k.max(10), 42 + k as u64);
            let paths: Vec<(String, String)> = reqs
                .iter()
                .map(|(m, p, _)| (m.clone(), p.clone()))
                .collect();
            let ours = learn(&reqs);
            let a = digits_only(&paths);
            let b = two_values(&paths);
            let row: Vec<String> = [&ours, &a, &b]
                .iter()
                .enumerate()
                .map(|(i, set)| {
                    let (p, r) = score(set, &truth);
                    let hits = set.intersection(&truth).count();
                    all[i].0 += hits;
                    all[i].1 += set.len();
                    all[i].2 += truth.len();
                    let _ = (p, r);
                    fmt(p, r)
                })
                .collect();
            let name = doc.rsplit('/').next().unwrap();
            let _ = writeln!(
                table,
                "| {name} | {} | {k} | {} | {} | {} |",
                truth.len(),
                row[0],
                row[1],
                row[2]
            );
        }
    }
    let total: Vec<String> = all
        .iter()
        .map(|(h, l, t)| fmt(*h as f64 / *l as f64, *h as f64 / *t as f64))
        .collect();
    let _ = writeln!(
        table,
        "| **all** | | | **{}** | {} | {} |",
        total[0], total[1], total[2]
    );
    // Rampart must beat both baselines on precision without losing recall.
    let p = |i: usize| all[i].0 as f64 / all[i].1 as f64;
    let r = |i: usize| all[i].0 as f64 / all[i].2 as f64;
    assert!(p(0) > p(1) && p(0) > p(2), "{table}");
    assert!(r(0) >= r(1) && r(0) >= r(2) - 0.05, "{table}");

    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/discovery.md");
    let text = std::fs::read_to_string(&docs).unwrap();
    let (start, end) = ("<!-- eval:start -->\n", "<!-- eval:end -->");
    let a = text
        .find(start)
        .expect("the evaluation markers in docs/discovery.md")
        + start.len();
    let b = text.find(end).unwrap();
    if std::env::var_os("BLESS").is_some() {
        let new = format!("{}{table}{}", &text[..a], &text[b..]);
        std::fs::write(&docs, new).unwrap();
    } else {
        assert_eq!(
            &text[a..b],
            table,
            "docs/discovery.md's table differs (run with BLESS=1 to accept)"
        );
    }
}

/// What is learned from each example document exports as an OpenAPI 3.1 document that passes
/// the official meta-schema and loads back into Rampart (its router then recognises the
/// learned paths).
#[test]
fn learned_documents_are_valid_openapi_3_1() {
    for doc in DOCS {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(corpus().join(doc)).unwrap()).unwrap();
        let ts = templates(&json);
        let reqs = traffic(&ts, 100, 2_000, 9);
        let mut l = Learner::with_key(Config::default(), Key(1, 2));
        for (m, p, _) in &reqs {
            l.observe(&Observation {
                method: m,
                path: p,
                status: 200,
                content_type: "application/json",
                size: 500,
            });
        }
        l.consolidate();
        let endpoints = l.endpoints();
        let out = rampart_discovery::export::openapi("example", &endpoints);
        let text = serde_json::to_string_pretty(&out).unwrap();
        let spec = rampart_openapi::load_str(Path::new("learned.json"), &text)
            .unwrap_or_else(|e| panic!("{doc}: {e:?}\n{text}"));
        // Every learned request routes to an operation of the exported document.
        for (m, p, _) in reqs.iter().take(200) {
            let method = http::Method::from_bytes(m.as_bytes()).unwrap();
            match spec.route(&method, p, "") {
                rampart_openapi::Route::Operation(..) => {}
                other => panic!("{doc}: {m} {p} does not route: {other:?}\n{text}"),
            }
        }
    }
}
