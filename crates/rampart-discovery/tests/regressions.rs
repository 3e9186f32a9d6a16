//! One named test per failure case that other discovery tools' issue trackers report
//! (../shared/DISCOVERY.md §5.3, docs/discovery.md "Known cases").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{word, Rng};
use rampart_discovery::sketch::Key;
use rampart_discovery::{Config, Learner, Observation};

fn learner() -> Learner {
    Learner::with_key(
        Config {
            consolidate_every: 1_000,
            ..Config::default()
        },
        Key(7, 11),
    )
}

fn ok<'a>(method: &'a str, path: &'a str, size: u64) -> Observation<'a> {
    Observation {
        method,
        path,
        status: 200,
        content_type: "application/json",
        size,
    }
}

fn templates(l: &mut Learner) -> Vec<String> {
    l.consolidate();
    l.endpoints()
        .into_iter()
        .map(|e| format!("{} {}", e.method, e.template))
        .collect()
}

/// `/users/me` stays a literal beside `/users/{int}` (and a word that behaves differently
/// from its siblings survives their collapse).
#[test]
fn users_me_beside_users_id() {
    let mut l = learner();
    let mut rng = Rng(1);
    for i in 0..2_000u64 {
        l.observe(&ok("GET", &format!("/users/{}", 1 + rng.below(5_000)), 300));
        if i % 10 == 0 {
            l.observe(&ok("GET", "/users/me", 300));
        }
    }
    assert_eq!(templates(&mut l), ["GET /users/me", "GET /users/{int}"]);

    // Names collapse; `settings` answers another kind of document, often: it stays.
    let mut l = learner();
    for i in 0..3_000u64 {
        let name = word(&mut rng);
        l.observe(&ok("GET", &format!("/people/{name}"), 300));
        if i % 5 == 0 {
            l.observe(&ok("PUT", "/people/settings", 40_000));
        }
    }
    assert_eq!(
        templates(&mut l),
        ["GET /people/{var}", "PUT /people/settings"]
    );
}

/// Uber's `/estimates/price` and `/estimates/time` are two endpoints, not `/estimates/{var}`.
#[test]
fn uber_estimates_stay_literal() {
    let mut l = learner();
    for _ in 0..5_000 {
        l.observe(&ok("GET", "/estimates/price", 500));
        l.observe(&ok("GET", "/estimates/time", 500));
    }
    assert_eq!(
        templates(&mut l),
        ["GET /estimates/price", "GET /estimates/time"]
    );
}

/// USPTO's first segment `{dataset}` is learned with many values (K ≥ 50) and stays literal
/// per value with few; its `{version}` (`v1`) stays literal by design.
#[test]
fn uspto_dataset_and_version() {
    for (k, want_var) in [(5u64, false), (80, true)] {
        let mut l = learner();
        let mut rng = Rng(k);
        let sets: Vec<String> = (0..k).map(|_| word(&mut rng)).collect();
        for _ in 0..4_000 {
            let d = &sets[rng.below(k) as usize];
            l.observe(&ok("GET", &format!("/{d}/v1/fields"), 800));
            l.observe(&ok("POST", &format!("/{d}/v1/records"), 5_000));
        }
        let t = templates(&mut l);
        if want_var {
            assert_eq!(
                t,
                ["GET /{var}/v1/fields", "POST /{var}/v1/records"],
                "K={k}"
            );
        } else {
            assert_eq!(t.len(), 2 * k as usize, "K={k}: {t:?}");
            assert!(t.iter().all(|x| x.contains("/v1/")), "{t:?}");
        }
    }
}

/// link-example: `/2.0/repositories/{username}/{slug}/pullrequests/{pid}/merge`.
#[test]
fn link_example_pullrequests_merge() {
    let mut l = learner();
    let mut rng = Rng(3);
    let users: Vec<String> = (0..100).map(|_| word(&mut rng)).collect();
    for _ in 0..20_000 {
        let u = &users[rng.below(100) as usize];
        let slug = format!("{}-{}", word(&mut rng), word(&mut rng));
        let pid = 1 + rng.below(900);
        l.observe(&ok(
            "POST",
            &format!("/2.0/repositories/{u}/{slug}/pullrequests/{pid}/merge"),
            600,
        ));
        l.observe(&ok(
            "GET",
            &format!("/2.0/repositories/{u}/{slug}/pullrequests/{pid}"),
            2_000,
        ));
    }
    assert_eq!(
        templates(&mut l),
        [
            "GET /2.0/repositories/{var}/{var}/pullrequests/{int}",
            "POST /2.0/repositories/{var}/{var}/pullrequests/{int}/merge"
        ]
    );
}

/// Metlo #151: `/api/{id}/org/onboardingStatus` keeps its literal tail.
#[test]
fn metlo_onboarding_status() {
    let mut l = learner();
    let mut rng = Rng(4);
    for _ in 0..1_000 {
        let id = 1 + rng.below(10_000);
        l.observe(&ok("GET", &format!("/api/{id}/org/onboardingStatus"), 100));
    }
    assert_eq!(templates(&mut l), ["GET /api/{int}/org/onboardingStatus"]);
}

/// `/predict/FR/STN/DUB/2026-08-16`: the date is a variable at once; the short codes stay
/// literal until there is evidence (a documented limit). A path seen twice exists whole.
#[test]
fn predict_codes_and_date() {
    let mut l = learner();
    l.observe(&ok("GET", "/predict/FR/STN/DUB/2026-08-16", 100));
    assert!(l.endpoints().is_empty(), "one sighting stays staged");
    l.observe(&ok("GET", "/predict/FR/STN/DUB/2026-08-17", 100));
    assert_eq!(templates(&mut l), ["GET /predict/FR/STN/DUB/{date}"]);
}

/// Stripe's prefixed ids (`cus_…`) are variables at once.
#[test]
fn stripe_prefixed_ids() {
    let mut l = learner();
    for id in [
        "cus_NffrFeUfNV2Hib",
        "cus_OaBcDeFgHi3Jkl",
        "cus_Q9wErTyUiOp1Zx",
    ] {
        l.observe(&ok("GET", &format!("/v1/customers/{id}"), 900));
    }
    l.observe(&ok("GET", "/v1/customers/search", 900));
    assert_eq!(
        templates(&mut l),
        ["GET /v1/customers/search", "GET /v1/customers/{prefixed}"]
    );
}

/// Enumeration of a valid template with random ids: one endpoint, a few nodes.
#[test]
fn enumeration_is_one_endpoint() {
    let mut l = learner();
    let mut rng = Rng(5);
    for _ in 0..100_000 {
        l.observe(&ok("GET", &format!("/orders/{}", rng.next() >> 20), 400));
    }
    assert_eq!(templates(&mut l), ["GET /orders/{int}"]);
    assert!(l.usage().nodes <= 3);
}

/// Case and encoding variants are normalised exactly like the router: `//`, dot segments,
/// a trailing slash and unreserved escapes collapse; case and encoded slashes do not.
#[test]
fn case_and_encoding_variants() {
    let mut l = learner();
    for p in ["/users/1", "//users/./1/", "/%75sers/1", "/users/x/../1"] {
        l.observe(&ok("GET", p, 100));
    }
    assert_eq!(templates(&mut l), ["GET /users/{int}"]);
    l.observe(&ok("GET", "/Users/1", 100));
    l.observe(&ok("GET", "/Users/1", 100));
    assert_eq!(
        templates(&mut l),
        ["GET /Users/{int}", "GET /users/{int}"],
        "a case-folded duplicate is not merged"
    );
}

/// A flood of one million random paths answered 404 creates nothing.
#[test]
fn a_404_flood_creates_nothing() {
    let mut l = learner();
    let mut rng = Rng(6);
    for _ in 0..1_000_000 {
        let p = format!("/{}/{}", word(&mut rng), rng.next());
        l.observe(&Observation {
            status: 404,
            ..ok("GET", &p, 10)
        });
    }
    assert!(l.endpoints().is_empty());
    assert_eq!(l.usage().nodes, 1);
}

/// A flood of one million random paths answered 200 (a catch-all) stays within the node
/// budget and a bounded number of bytes.
#[test]
fn a_200_flood_stays_within_its_budget() {
    let cfg = Config {
        max_nodes: 5_000,
        consolidate_every: 10_000,
        ..Config::default()
    };
    let mut l = Learner::with_key(cfg, Key(8, 9));
    let mut rng = Rng(7);
    for i in 0..1_000_000u64 {
        let p = format!(
            "/{}/{}/{}",
            word(&mut rng),
            word(&mut rng),
            rng.next() % 1_000
        );
        l.observe(&ok("GET", &p, 1_000));
        if i % 100_000 == 0 {
            assert!(l.usage().nodes <= 5_000, "{:?}", l.usage());
        }
    }
    let u = l.usage();
    assert!(u.nodes <= 5_000, "{u:?}");
    assert!(u.bytes < 16 << 20, "{u:?}");
}
