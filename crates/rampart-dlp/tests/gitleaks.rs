//! The secret detectors against gitleaks' own samples (../shared/corpora/dlp/gitleaks): for the
//! rules Rampart implements, every true-positive literal is found and no false-positive literal
//! is. Counts per rule are printed (`--no-capture`) for docs/dlp.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::Path;

use rampart_dlp::{Detector, Scanner};

/// gitleaks rule ids and the detector that covers them.
const RULES: &[(&str, Detector)] = &[
    ("aws-access-token", Detector::AwsAccessKey),
    ("github-pat", Detector::GithubToken),
    ("github-fine-grained-pat", Detector::GithubToken),
    ("github-oauth", Detector::GithubToken),
    ("github-app-token", Detector::GithubToken),
    ("github-refresh-token", Detector::GithubToken),
    ("gitlab-pat", Detector::GitlabToken),
    ("gitlab-ptt", Detector::GitlabToken),
    ("private-key", Detector::PrivateKey),
    ("slack-bot-token", Detector::SlackToken),
    ("slack-user-token", Detector::SlackToken),
    ("slack-webhook-url", Detector::SlackWebhook),
];

#[test]
fn gitleaks_samples_of_the_rules_we_implement() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/dlp/gitleaks/rule_samples_literal.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "corpus not found: {} ({e}); the tests read ../shared/corpora",
            p.display()
        )
    });
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let scanner = Scanner::all();
    let mut wrong = Vec::new();
    let (mut tp_total, mut fp_total) = (0, 0);
    for (rule, detector) in RULES {
        let Some(r) = all.iter().find(|r| r["rule_id"] == *rule) else {
            panic!("rule {rule} not in the corpus");
        };
        let (mut tp, mut fp) = (0, 0);
        for t in r["true_positive_literals"].as_array().unwrap() {
            let t = t.as_str().unwrap();
            tp += 1;
            if !scanner
                .scan(t.as_bytes(), 0)
                .iter()
                .any(|m| m.detector == *detector)
            {
                wrong.push(format!("{rule}: missed {t:?}"));
            }
        }
        for f in r["false_positive_literals"].as_array().unwrap() {
            let f = f.as_str().unwrap();
            fp += 1;
            if scanner
                .scan(f.as_bytes(), 0)
                .iter()
                .any(|m| m.detector == *detector)
            {
                wrong.push(format!("{rule}: flagged {f:?}"));
            }
        }
        println!("{rule}: {tp} true-positive and {fp} false-positive samples");
        tp_total += tp;
        fp_total += fp;
    }
    println!("total: {tp_total} true-positive, {fp_total} false-positive samples");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
