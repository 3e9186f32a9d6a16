//! The validators against Presidio's recognizer test cases (../shared/corpora/dlp/presidio):
//! every IBAN case that is one whole IBAN must validate, and the cases Presidio finds nothing
//! in must not. The counts are reported in docs (precision and recall come with the scanner).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn cases(file_part: &str) -> Vec<serde_json::Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/dlp/presidio/recognizer_test_cases.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "corpus not found: {} ({e}); the tests read ../shared/corpora",
            p.display()
        )
    });
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .filter(|b| b["source_file"].as_str().unwrap().contains(file_part))
        .flat_map(|b| b["cases"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn presidio_iban_cases() {
    let cases = cases("test_iban_recognizer");
    assert_eq!(cases.len(), 330);
    let (mut whole, mut none, mut other) = (0, 0, 0);
    let mut wrong = Vec::new();
    for c in &cases {
        let text = c["iban"].as_str().unwrap();
        let n = c["expected_len"].as_u64().unwrap();
        let spans = c["expected_res"].as_array().unwrap();
        let is_whole =
            n == 1 && spans[0][0] == 0 && spans[0][1].as_u64().unwrap() as usize == text.len();
        if is_whole {
            whole += 1;
            if !rampart_dlp::iban_valid(text.as_bytes()) {
                wrong.push(format!("valid IBAN refused: {text}"));
            }
        } else if n == 0 {
            none += 1;
            if rampart_dlp::iban_valid(text.as_bytes()) {
                wrong.push(format!("not an IBAN for Presidio, accepted: {text}"));
            }
        } else {
            // An IBAN inside other text: the scanner's business, not the validator's.
            other += 1;
        }
    }
    assert_eq!((whole, none, other), (152, 173, 5));
    assert!(
        wrong.is_empty(),
        "{} of {} judged otherwise:\n{}",
        wrong.len(),
        whole + none,
        wrong.join("\n")
    );
}
