//! Rate-limit recommendations on known distributions (../shared/DISCOVERY.md §5.4): good
//! sessions with log-normal peaks (median 8, σ 0.6), abusive ones at 500 per window.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Rng;
use rampart_discovery::recommend::{recommend, rule_yaml, Confidence, Peaks, Settings};

fn normal(rng: &mut Rng) -> f64 {
    // Box-Muller.
    let u1 = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let u2 = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.max(1e-300).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Good sessions' peaks: LogNormal(ln 8, 0.6), at least one request.
fn good(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| (8f64.ln() + 0.6 * normal(&mut rng)).exp().round().max(1.0))
        .collect()
}

fn exact(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() as f64 - 1.0)) as usize]
}

fn peaks(v: &[f64]) -> Peaks {
    let mut p = Peaks::default();
    for x in v {
        p.add(*x);
    }
    p
}

#[test]
fn quantiles_suggestion_and_impact() {
    let mut all = good(5_000, 1);
    all.extend(std::iter::repeat_n(500.0, 10));
    let p = peaks(&all);
    let r = recommend(&p, &Settings::default(), false);
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    for (q, got) in [(0.5, r.p50), (0.9, r.p90), (0.99, r.p99)] {
        let want = exact(&sorted, q);
        assert!(
            (got - want).abs() <= want * 0.01 + 1e-9,
            "p{q}: {got} vs {want}"
        );
    }
    // The true 99.9th percentile of the good sessions' distribution.
    let true_p999 = (8f64.ln() + 0.6 * 3.09).exp();
    let t = r.suggested.unwrap() as f64;
    assert!(
        t >= true_p999 && t <= 3.0 * true_p999,
        "{t} vs p99.9 {true_p999:.1}"
    );
    assert!(t < 500.0, "every abusive session stays above: {t}");
    // On a fresh sample of good sessions, at most 0.1% exceed it.
    let fresh = good(100_000, 99);
    let over = fresh.iter().filter(|x| **x > t).count() as f64 / fresh.len() as f64;
    assert!(over <= 0.001, "{over}");
    assert!(r.limited_share <= 0.01, "{}", r.limited_share);
    // The ten abusive sessions make the tail heavier than the body: noticed, one grade lower.
    assert!(r.heavy_tail);
    assert_eq!(r.confidence, Confidence::Medium, "{:?}", r.reasons);
    let yaml = rule_yaml(
        "rec-get-orders",
        "http.request.method == \"GET\" and starts_with(http.request.uri.path, \"/orders\")",
        "ip.src",
        &r,
        &Settings::default(),
    )
    .unwrap();
    assert!(yaml.contains(&format!("requests: {}", t as u64)), "{yaml}");
    assert!(yaml.contains("action: log"), "{yaml}");
    // Pasted under an API's rate_limits, it compiles.
    let indented: String = yaml.lines().map(|l| format!("      {l}\n")).collect();
    let cfg = format!(
        "listeners:\n  - {{ name: p, bind: 127.0.0.1:0 }}\nupstreams:\n  u: {{ targets: [\"http://127.0.0.1:9\"] }}\napis:\n  - name: shop\n    upstream: u\n    rate_limits:\n{indented}"
    );
    if let Err(e) = rampart_config::load_str(&cfg, "rec.yaml", std::path::Path::new(".")) {
        panic!("{}\n{cfg}", e.render());
    }
}

#[test]
fn too_few_sessions_no_suggestion_and_confidence_grows_with_n() {
    let s = Settings::default();
    let r = recommend(&peaks(&good(30, 2)), &s, false);
    assert_eq!((r.suggested, r.confidence), (None, Confidence::None));
    assert!(r.reasons[0].contains("30 sessions, 50 needed"));
    let r = recommend(&peaks(&good(60, 3)), &s, false);
    assert!(r.suggested.is_some());
    assert_eq!(r.confidence, Confidence::Low, "{:?}", r.reasons);
    let mut last = Confidence::None;
    for n in [30, 60, 120, 250, 500, 1_000, 2_000, 5_000, 20_000] {
        let c = recommend(&peaks(&good(n, 4)), &s, false).confidence;
        assert!(c >= last, "n={n}: {c:?} after {last:?}");
        last = c;
    }
    assert_eq!(last, Confidence::High);
    // Client addresses as sessions: one grade lower.
    assert_eq!(
        recommend(&peaks(&good(20_000, 4)), &s, true).confidence,
        Confidence::Medium
    );
}

#[test]
fn undetected_abuse_moves_the_suggestion_little() {
    let s = Settings::default();
    let clean = recommend(&peaks(&good(5_000, 5)), &s, false)
        .suggested
        .unwrap() as f64;
    for share in [0.05, 0.20] {
        let mut v = good(5_000, 5);
        let abusive = (5_000.0 * share / (1.0 - share)) as usize;
        v.extend(std::iter::repeat_n(500.0, abusive));
        let r = recommend(&peaks(&v), &s, false);
        let t = r.suggested.unwrap() as f64;
        assert!(
            t < 500.0,
            "{share}: every abusive session stays above ({t})"
        );
        assert!(r.heavy_tail, "{share}: the heavy tail is noticed");
        if share <= 0.05 {
            assert!(t < 1.5 * clean, "{share}: {t} vs {clean}");
        }
    }
}

#[test]
fn sketches_merge_like_one() {
    let a = good(3_000, 6);
    let b = good(2_000, 7);
    let mut pa = peaks(&a);
    pa.merge(&peaks(&b));
    let mut ab = a;
    ab.extend(&b);
    let pab = peaks(&ab);
    for q in [0.1, 0.5, 0.9, 0.99, 0.999] {
        assert_eq!(pa.quantile(q), pab.quantile(q), "q={q}");
    }
}
