//! Table tests: every operator and function, from `testdata/*.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;

use rampart_rules::sample::Sample;
use rampart_rules::{Limits, List, Lists, RuleSetBuilder};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    lists: HashMap<String, Vec<String>>,
    request: serde_json::Value,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    expr: String,
    #[serde(default)]
    request: Option<serde_json::Value>,
    #[serde(rename = "match")]
    matched: Option<bool>,
    error: Option<String>,
    help: Option<String>,
}

fn merge(base: &serde_json::Value, over: &serde_json::Value) -> serde_json::Value {
    let mut out = base.clone();
    if let (Some(o), Some(v)) = (out.as_object_mut(), over.as_object()) {
        for (k, val) in v {
            // A case's body replaces the table's body, whichever form either is in.
            if k == "body" || k == "json" {
                o.remove("body");
                o.remove("json");
            }
            o.insert(k.clone(), val.clone());
        }
    }
    out
}

fn run(file: &str) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read table");
    let table: Table = serde_json::from_str(&text).expect("parse table");
    let lists: Lists = table
        .lists
        .iter()
        .map(|(k, v)| (k.clone(), List::from_entries(v).expect("list")))
        .collect();
    let mut failures = Vec::new();
    for case in &table.cases {
        let req = match &case.request {
            Some(r) => merge(&table.request, r),
            None => table.request.clone(),
        };
        let sample: Sample = serde_json::from_value(req).expect("sample");
        let built = sample.build().expect("build sample");
        let mut b = RuleSetBuilder::new(Limits::default(), &lists);
        let compiled = b.add(&case.expr);
        match (&case.error, compiled) {
            (Some(want), Err(errs)) => {
                let got = &errs[0];
                if !got.message.contains(want.as_str()) {
                    failures.push(format!(
                        "{}: error {:?}, want {want:?}",
                        case.expr, got.message
                    ));
                }
                if let Some(h) = &case.help {
                    if got.help.as_deref() != Some(h.as_str()) {
                        failures.push(format!("{}: help {:?}, want {h:?}", case.expr, got.help));
                    }
                }
            }
            (Some(want), Ok(_)) => {
                failures.push(format!("{}: compiled, want error {want:?}", case.expr))
            }
            (None, Err(errs)) => failures.push(format!("{}: {}", case.expr, errs[0])),
            (None, Ok(id)) => {
                let set = b.build();
                let mut cx = set.context(built.input());
                let got = set.eval(id, &mut cx);
                // Evaluating twice on the same context (cached fields) gives the same answer.
                let again = set.eval(id, &mut cx);
                let want = case.matched.expect("case needs match or error");
                if got != want || again != want {
                    failures.push(format!("{}: got {got}, want {want}", case.expr));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    table.cases.len()
}

#[test]
fn operators() {
    assert!(run("operators.json") > 100);
}

#[test]
fn functions() {
    assert!(run("functions.json") > 20);
}
