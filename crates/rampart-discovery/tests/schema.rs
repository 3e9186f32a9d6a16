//! Schema learning: sound (every observed body validates against the learned schema, formats
//! asserted), mergeable (associative, commutative, and learning a then b equals merging what
//! was learned from each), with the documented thresholds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::manual_is_multiple_of
)]

mod common;

use common::{word, Rng};
use rampart_discovery::schema::Stats;
use serde_json::{json, Value};

/// Bodies of several shapes: optional and nullable fields, nested arrays, mixed types, maps,
/// formats, enums, deep nesting.
fn body(rng: &mut Rng, i: u64) -> Value {
    let status = ["placed", "approved", "delivered"][rng.below(3) as usize];
    let mut order = json!({
        "id": i,
        "petId": rng.below(1000),
        "quantity": rng.below(5) as f64 + if i % 7 == 0 { 0.5 } else { 0.0 },
        "status": status,
        "complete": rng.below(2) == 0,
        "customer": { "email": format!("{}@example.com", word(rng)), "name": word(rng) },
        "lines": (0..rng.below(4)).map(|k| json!({"sku": format!("{}-{k}", word(rng)), "qty": k})).collect::<Vec<_>>(),
        "shipDate": format!("2026-0{}-1{}", 1 + rng.below(9), rng.below(10)),
        "ref": format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", rng.next() as u32, rng.next() as u16, rng.below(4096), rng.below(4096), rng.next() >> 16),
        "by_day": { (1 + rng.below(28)).to_string(): rng.below(10), (1 + rng.below(28)).to_string(): 1 },
    });
    if i % 4 == 0 {
        order["coupon"] = Value::Null;
    } else if i % 4 == 1 {
        order["coupon"] = json!(word(rng));
    }
    if i % 11 == 0 {
        order["tags"] = json!([1, "two", null, {"x": [[[]]]}]);
    }
    if i % 13 == 0 {
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!({ "d": deep });
        }
        order["deep"] = deep;
    }
    order
}

fn learn(bodies: &[Value]) -> Stats {
    let mut s = Stats::default();
    for b in bodies {
        s.observe(b);
    }
    s
}

#[test]
fn every_observed_body_validates_against_the_learned_schema() {
    let mut rng = Rng(11);
    for n in [1u64, 5, 30, 500] {
        let bodies: Vec<Value> = (0..n).map(|i| body(&mut rng, i)).collect();
        let schema = learn(&bodies).schema();
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        for b in &bodies {
            let errors: Vec<String> = v.iter_errors(b).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "n={n}: {errors:?}\n{b}\n{schema:#}");
        }
        if n == 500 {
            let p = &schema["properties"];
            assert_eq!(
                p["status"]["enum"],
                json!(["approved", "delivered", "placed"])
            );
            assert_eq!(p["quantity"]["type"], "number");
            assert_eq!(p["id"]["type"], "integer");
            assert_eq!(p["ref"]["format"], "uuid");
            assert_eq!(p["shipDate"]["format"], "date");
            assert_eq!(p["customer"]["properties"]["email"]["format"], "email");
            assert!(
                p["customer"]["properties"]["email"].get("enum").is_none(),
                "no PII in enums"
            );
            assert_eq!(p["coupon"]["type"], json!(["null", "string"]));
            assert_eq!(p["by_day"]["x-rampart-map"], true);
            assert!(schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!("id")));
            assert!(!schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!("coupon")));
        }
        if n < 20 {
            assert!(
                schema.get("required").is_none(),
                "n={n}: no required under 20 samples"
            );
        }
    }
}

#[test]
fn learning_is_a_commutative_monoid() {
    let mut rng = Rng(12);
    for round in 0..20u64 {
        let n = 1 + rng.below(60);
        let bodies: Vec<Value> = (0..n).map(|i| body(&mut rng, i + round)).collect();
        let cut1 = rng.below(n + 1) as usize;
        let cut2 = cut1 + rng.below(n + 1 - cut1 as u64) as usize;
        let (a, b, c) = (&bodies[..cut1], &bodies[cut1..cut2], &bodies[cut2..]);
        let (la, lb, lc) = (learn(a), learn(b), learn(c));
        // learn(a ++ b ++ c) == merge(learn(a), learn(b), learn(c))
        let mut merged = la.clone();
        merged.merge(&lb);
        merged.merge(&lc);
        assert_eq!(merged, learn(&bodies), "round {round}");
        // Commutative and associative.
        let mut ba = lb.clone();
        ba.merge(&la);
        let mut ab = la.clone();
        ab.merge(&lb);
        assert_eq!(ab, ba, "round {round}");
        let mut bc = lb.clone();
        bc.merge(&lc);
        let mut a_bc = la.clone();
        a_bc.merge(&bc);
        assert_eq!(a_bc, merged, "round {round}");
    }
}
