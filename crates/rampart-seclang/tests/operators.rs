//! Table tests of the operators (`testdata/operators.json`, Latin-1 strings), and every
//! operator of the CRS compiled (its regexes with the `regex` crate, its phrase files loaded).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

use rampart_seclang::ast::{Operator, OperatorKind, Rule};
use rampart_seclang::operator::compile;

fn bytes(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect()
}

#[test]
fn every_operator_against_its_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/operators.json");
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut covered = BTreeSet::new();
    let mut wrong = Vec::new();
    for c in &cases {
        let name = c["op"].as_str().unwrap();
        let kind = OperatorKind::from_name(name).unwrap();
        covered.insert(kind);
        let op = Operator {
            negated: c["negated"].as_bool().unwrap_or(false),
            kind,
            param: c["param"].as_str().unwrap().to_owned(),
        };
        let compiled = compile(&op, Path::new(".")).unwrap();
        let tx = c["tx"].clone();
        let expand = move |p: &str| {
            let mut out = p.to_owned();
            if let Some(m) = tx.as_object() {
                for (k, v) in m {
                    out = out.replace(&format!("%{{tx.{k}}}"), v.as_str().unwrap());
                }
            }
            out
        };
        let input = bytes(c["input"].as_str().unwrap());
        let got = compiled.matches(&input, &expand).is_some();
        if got != c["match"].as_bool().unwrap() {
            wrong.push(format!("{c}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let missing: Vec<&str> = OperatorKind::ALL
        .iter()
        .filter(|(_, k)| !covered.contains(k))
        .map(|(n, _)| *n)
        .collect();
    // Operators reading files are loaded by the CRS test below.
    let expected_missing = ["pmFromFile", "pmf", "ipMatchF", "ipMatchFromFile"];
    assert_eq!(missing, expected_missing);
}

#[test]
fn rx_captures_for_capture() {
    let op = Operator {
        negated: false,
        kind: OperatorKind::Rx,
        param: r"(\d+)-(\d+)".into(),
    };
    let c = compile(&op, Path::new(".")).unwrap();
    let caps = c.matches(b"id 12-345", &|p| p.to_owned()).unwrap();
    assert_eq!(
        caps,
        vec![b"12-345".to_vec(), b"12".to_vec(), b"345".to_vec()]
    );
}

#[test]
fn every_crs_operator_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/crs");
    let main = format!("Include {}/rules/*.conf\n", dir.display());
    let parsed = rampart_seclang::parse_str(&main, "main.conf", &dir);
    assert!(parsed.diagnostics.is_empty());
    let rules_dir = dir.join("rules");
    let mut failures = Vec::new();
    let (mut rx, mut files, mut libinjection) = (0, 0, 0);
    fn links(r: &Rule) -> Vec<&Rule> {
        let mut out = vec![r];
        let mut cur = &r.chain;
        while let Some(c) = cur {
            out.push(c);
            cur = &c.chain;
        }
        out
    }
    for rule in parsed.rules() {
        for link in links(rule) {
            let op = &link.operator;
            match op.kind {
                OperatorKind::DetectSqli | OperatorKind::DetectXss => {
                    libinjection += 1;
                    continue;
                }
                OperatorKind::Rx => rx += 1,
                OperatorKind::PmFromFile | OperatorKind::Pmf => files += 1,
                _ => {}
            }
            if let Err(e) = compile(op, &rules_dir) {
                failures.push(format!("rule {:?}: {e}", rule.id()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(rx >= 300, "{rx} regexes");
    assert!(files >= 20, "{files} phrase files");
    assert_eq!(libinjection, 4);
}
