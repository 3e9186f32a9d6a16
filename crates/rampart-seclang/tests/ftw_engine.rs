//! The CRS regression tests (go-ftw YAML, ../shared/corpora/crs/tests) run against the engine
//! directly, without HTTP: a measure of the evaluator's conformance while it grows, before
//! `rampart ftw` runs them through the gateway.
//!
//! What runs here: every stage whose expectation is in the log (`expect_ids`,
//! `no_expect_ids`) and whose request is given field by field, through phases 1 to 5, with
//! the CRS at paranoia level 4 in `DetectionOnly` and the argument and file size limits the
//! CRS project's own test setup sets (rules 920360–920410 test them); the response is what the
//! test backend's `/reflect` would answer. What does not (counted in the summary): raw
//! `encoded_request`s and stages that expect a status or a response rather than log entries.
//! The pass rate may only go up: the floor below is the figure measured when
//! it was last raised.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rampart_seclang::eval::{Request, Transaction};
use rampart_seclang::ruleset::{compile_ruleset, Ruleset};
use serde_json::Value;

/// The pass rate measured when the floor was last raised, in per mille.
const FLOOR_PER_MILLE: usize = 997;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/crs")
}

fn crs() -> std::sync::Arc<Ruleset> {
    let dir = corpus();
    let main = format!(
        "SecRuleEngine DetectionOnly\nSecRequestBodyAccess On\nSecResponseBodyAccess On\n\
         SecResponseBodyMimeType text/plain text/html text/xml application/json\nInclude {}\n\
         SecAction \"id:900000,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level=4\"\n\
         SecAction \"id:900001,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=4\"\n\
         SecAction \"id:900002,phase:1,pass,nolog,setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,setvar:tx.max_num_args=255,setvar:tx.total_arg_length=64000,setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535\"\n\
         Include {}/rules/*.conf\n",
        dir.join("crs-setup.conf.example").display(),
        dir.display()
    );
    let parsed = rampart_seclang::parse_str(&main, "main.conf", &dir);
    std::sync::Arc::new(compile_ruleset(&parsed).unwrap_or_else(|e| panic!("{e:#?}")))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

#[test]
fn crs_regression_tests_against_the_engine() {
    let set = crs();
    let mut files = Vec::new();
    yaml_files(&corpus().join("tests"), &mut files);
    assert!(files.len() > 300, "{} test files", files.len());
    let mut tally = Tally::default();
    let mut per_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let Ok(node) = rampart_core::yaml::parse(&text) else {
            *tally.skipped.entry("unreadable YAML").or_default() += 1;
            continue;
        };
        let doc = node.to_json();
        let family = f
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for test in doc["tests"].as_array().cloned().unwrap_or_default() {
            for stage in test["stages"].as_array().cloned().unwrap_or_default() {
                let input = &stage["input"];
                let output = &stage["output"];
                let log = &output["log"];
                let expect = ids(&log["expect_ids"]);
                let forbid = ids(&log["no_expect_ids"]);
                if input.get("encoded_request").is_some() {
                    *tally.skipped.entry("raw encoded_request").or_default() += 1;
                    continue;
                }
                if expect.is_empty() && forbid.is_empty() {
                    *tally.skipped.entry("no log expectation").or_default() += 1;
                    continue;
                }
                let matched = run(&set, input);
                let ok = expect.iter().all(|id| matched.contains(id))
                    && forbid.iter().all(|id| !matched.contains(id));
                let entry = per_family.entry(family.clone()).or_default();
                if ok {
                    tally.passed += 1;
                    entry.0 += 1;
                } else {
                    tally.failed += 1;
                    entry.1 += 1;
                    tally.failures.push(format!(
                        "{}#{}: expect {expect:?} forbid {forbid:?}",
                        f.file_name().unwrap().to_string_lossy(),
                        test["test_id"]
                    ));
                }
            }
        }
    }
    let run_count = tally.passed + tally.failed;
    let per_mille = tally.passed * 1000 / run_count.max(1);
    eprintln!(
        "CRS regression tests against the engine: {} of {run_count} passed ({}.{}%); skipped: {:?}",
        tally.passed,
        per_mille / 10,
        per_mille % 10,
        tally.skipped
    );
    for (fam, (p, f)) in &per_family {
        eprintln!("  {fam}: {p} passed, {f} failed");
    }
    if std::env::var_os("FTW_FAILURES").is_some() {
        for f in &tally.failures {
            eprintln!("  FAIL {f}");
        }
    }
    assert!(
        per_mille >= FLOOR_PER_MILLE,
        "the pass rate fell to {per_mille}‰ from {FLOOR_PER_MILLE}‰"
    );
}

/// One stage's request through phases 1 to 5 (the response from the test backend's
/// `/reflect` when asked); the ids of the rules that matched.
fn run(set: &std::sync::Arc<Ruleset>, input: &Value) -> BTreeSet<u32> {
    let s = |k: &str| input[k].as_str().map(str::to_owned);
    let mut headers: Vec<(String, Vec<u8>)> = input["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v.into_bytes())
                })
                .collect()
        })
        .unwrap_or_default();
    let data: Vec<u8> = match &input["data"] {
        Value::String(s) => s.clone().into_bytes(),
        Value::Array(lines) => lines
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes(),
        _ => Vec::new(),
    };
    // go-ftw completes what a test leaves out, unless told not to.
    let autocomplete = input["autocomplete_headers"].as_bool().unwrap_or(true);
    if autocomplete && !data.is_empty() {
        let has =
            |h: &[(String, Vec<u8>)], n: &str| h.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !has(&headers, "content-length") {
            headers.push(("Content-Length".into(), data.len().to_string().into_bytes()));
        }
        if !has(&headers, "content-type") {
            headers.push((
                "Content-Type".into(),
                b"application/x-www-form-urlencoded".to_vec(),
            ));
        }
    }
    let req = Request {
        method: s("method").unwrap_or_else(|| "GET".into()),
        uri: s("uri").unwrap_or_else(|| "/".into()),
        protocol: s("version").unwrap_or_else(|| "HTTP/1.1".into()),
        headers,
        remote_addr: Some("127.0.0.1".parse().unwrap()),
        unique_id: "ftw".into(),
    };
    let reflect = req.uri.starts_with("/reflect");
    let mut t = Transaction::new(set.clone(), req);
    t.phase(1);
    t.request_body(&data);
    t.phase(2);
    // The test backend's `/reflect` answers with the body (and status, headers) the request
    // describes in JSON; anything else gets an empty 200.
    let spec: Value = if reflect {
        serde_json::from_slice(&data).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let status = spec["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200);
    let mut headers: Vec<(String, Vec<u8>)> = spec["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    let body = spec["body"].as_str().unwrap_or("").as_bytes().to_vec();
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), b"text/plain".to_vec()));
    }
    headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
    t.response_head(status, "HTTP/1.1", headers);
    t.phase(3);
    t.response_body(&body);
    t.phase(4);
    t.phase(5);
    t.matched().iter().map(|m| m.id).collect()
}
