//! Precision and recall of each detector on the public corpora (../shared/corpora/dlp): the
//! Presidio recognizer test cases for the personal-data detectors, gitleaks' rule samples for
//! the secret detectors. The table is a golden file (`tests/golden/precision.md`, rewritten
//! with `BLESS=1`) and docs/dlp.md must quote it exactly, so the figures in the docs are the
//! ones measured.
//!
//! Counting: a Presidio case gives the spans it expects; a span we find exactly is a true
//! positive, a span we find that Presidio does not expect a false positive, an expected span
//! we miss a false negative. A gitleaks true-positive sample is a true positive when the
//! detector fires on it, else a false negative; a false-positive sample it fires on is a false
//! positive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rampart_dlp::{Detector, Scanner};
use serde_json::Value;

fn corpus(rel: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/dlp")
        .join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "corpus not found: {} ({e}); the tests read ../shared/corpora",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

#[derive(Default)]
struct Counts {
    cases: usize,
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn row(&self, name: &str, source: &str) -> String {
        // Presidio rows only: spans found against spans expected.
        let ratio = |a: usize, b: usize| {
            if b == 0 {
                "n/a".to_owned()
            } else {
                format!("{:.2}", a as f64 / b as f64)
            }
        };
        format!(
            "| {name} | {source} | {} | {} | {} | {} | {} | {} |",
            self.cases,
            self.tp,
            self.fp,
            self.fn_,
            ratio(self.tp, self.tp + self.fp),
            ratio(self.tp, self.tp + self.fn_)
        )
    }
}

/// Presidio's cases of one test function: (text, expected spans).
fn presidio(file: &str, function: &str) -> Vec<(String, Vec<(u64, u64)>)> {
    let all = corpus("presidio/recognizer_test_cases.json");
    let mut out = Vec::new();
    for block in all.as_array().unwrap() {
        if !block["source_file"].as_str().unwrap().ends_with(file)
            || block["test_function"] != function
        {
            continue;
        }
        for c in block["cases"].as_array().unwrap() {
            let text = c
                .get("text")
                .or_else(|| c.get("iban"))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned();
            let spans: Vec<(u64, u64)> = c
                .get("expected_positions")
                .or_else(|| c.get("expected_res"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            let n = c["expected_len"].as_u64().unwrap() as usize;
            // A case that gives a count but no positions is counted by the count alone.
            let spans: Vec<(u64, u64)> = if spans.is_empty() && n > 0 {
                vec![(u64::MAX, u64::MAX); n]
            } else {
                spans
            };
            out.push((text, spans));
        }
    }
    assert!(!out.is_empty(), "no cases for {file} {function}");
    out
}

fn score_presidio(scanner: &Scanner, d: Detector, cases: &[(String, Vec<(u64, u64)>)]) -> Counts {
    let mut c = Counts::default();
    for (text, want) in cases {
        c.cases += 1;
        let got: BTreeSet<(u64, u64)> = scanner
            .scan(text.as_bytes(), 0)
            .into_iter()
            .filter(|m| m.detector == d)
            .map(|m| (m.start, m.end))
            .collect();
        let exact: BTreeSet<(u64, u64)> =
            want.iter().copied().filter(|s| s.0 != u64::MAX).collect();
        let counted_only = want.len() - exact.len();
        let tp_exact = got.intersection(&exact).count();
        // Cases with a count but no positions: as many of our other spans as expected.
        let extra = got.len() - tp_exact;
        let tp_counted = extra.min(counted_only);
        c.tp += tp_exact + tp_counted;
        c.fp += extra - tp_counted;
        c.fn_ += (exact.len() - tp_exact) + (counted_only - tp_counted);
    }
    c
}

fn score_gitleaks(scanner: &Scanner, d: Detector, rules: &[&str]) -> Counts {
    let all = corpus("gitleaks/rule_samples_literal.json");
    let mut c = Counts::default();
    for rule in rules {
        let r = all
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule_id"] == *rule)
            .unwrap_or_else(|| panic!("rule {rule} not in the corpus"));
        let fires = |t: &str| {
            scanner
                .scan(t.as_bytes(), 0)
                .iter()
                .any(|m| m.detector == d)
        };
        for t in r["true_positive_literals"].as_array().unwrap() {
            c.cases += 1;
            if fires(t.as_str().unwrap()) {
                c.tp += 1;
            } else {
                c.fn_ += 1;
            }
        }
        for t in r["false_positive_literals"].as_array().unwrap() {
            c.cases += 1;
            if fires(t.as_str().unwrap()) {
                c.fp += 1;
            }
        }
    }
    c
}

fn table() -> String {
    let s = Scanner::all();
    let mut out = String::from(
        "| detector | corpus | cases | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|---|---|\n",
    );
    let presidio_rows: &[(Detector, &str, &[&str])] = &[
        (
            Detector::PaymentCard,
            "test_credit_card_recognizer.py",
            &["test_when_all_credit_cards_then_succeed"],
        ),
        (
            Detector::Iban,
            "test_iban_recognizer.py",
            &["test_when_all_ibans_then_succeed"],
        ),
        (
            Detector::UsSsn,
            "test_us_ssn_recognizer.py",
            &["test_when_snn_in_text_than_all_us_ssns_are_found"],
        ),
        (
            Detector::Email,
            "test_email_recognizer.py",
            &["test_when_all_email_addresses_then_succeed"],
        ),
        (
            Detector::Phone,
            "test_phone_recognizer.py",
            &["test_when_all_phones_then_succeed"],
        ),
        (
            Detector::IpAddress,
            "test_ip_recognizer.py",
            &[
                "test_when_all_ips_then_succeed",
                "test_when_ipv6_compression_then_succeed",
                "test_when_ipv6_in_context_then_succeed",
                "test_when_ipv4_mapped_then_full_span_redacted",
                "test_when_ipv4_embedded_then_full_span_redacted",
                "test_when_multiple_ips_then_all_found",
                "test_when_non_ip_pattern_then_no_match",
                "test_when_ip_at_boundary_then_correct_span",
                "test_when_invalid_ip_then_no_match",
                "test_when_special_ip_variants_then_succeed",
                "test_when_cidr_notation_then_largest_span_redacted",
            ],
        ),
    ];
    for (d, file, functions) in presidio_rows {
        let cases: Vec<_> = functions.iter().flat_map(|f| presidio(file, f)).collect();
        let c = score_presidio(&s, *d, &cases);
        writeln!(out, "{}", c.row(d.as_str(), &format!("Presidio `{file}`"))).unwrap();
    }
    let gitleaks_rows: &[(Detector, &[&str])] = &[
        (Detector::PrivateKey, &["private-key"]),
        (Detector::AwsAccessKey, &["aws-access-token"]),
        (
            Detector::GithubToken,
            &[
                "github-pat",
                "github-fine-grained-pat",
                "github-oauth",
                "github-app-token",
                "github-refresh-token",
            ],
        ),
        (Detector::GitlabToken, &["gitlab-pat", "gitlab-ptt"]),
        (
            Detector::SlackToken,
            &["slack-bot-token", "slack-user-token"],
        ),
        (Detector::SlackWebhook, &["slack-webhook-url"]),
        (Detector::GcpApiKey, &["gcp-api-key"]),
        (Detector::AzureClientSecret, &["azure-ad-client-secret"]),
        (Detector::GenericSecret, &["generic-api-key"]),
    ];
    out.push_str(
        "\n| detector | gitleaks rules | true-positive samples found | false-positive samples flagged |\n|---|---|---|---|\n",
    );
    for (d, rules) in gitleaks_rows {
        let c = score_gitleaks(&s, *d, rules);
        let tps = c.tp + c.fn_;
        let fps = c.cases - tps;
        writeln!(
            out,
            "| {} | `{}` | {} of {tps} | {} of {fps} |",
            d.as_str(),
            rules.join("`, `"),
            c.tp,
            c.fp
        )
        .unwrap();
    }
    out
}

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/precision.md")
}

#[test]
fn precision_and_recall_match_the_golden_table_and_the_docs() {
    let got = table();
    let path = golden_path();
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "the measured table differs from {} (BLESS=1 rewrites it; then update docs/dlp.md)",
        path.display()
    );
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dlp.md");
    let docs = std::fs::read_to_string(&docs).unwrap();
    assert!(
        docs.contains(&got),
        "docs/dlp.md must quote tests/golden/precision.md exactly"
    );
}
