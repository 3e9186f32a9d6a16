//! Entry points for the fuzz targets (`fuzz/`), also replayed on stable by
//! `tests/fuzz_corpus.rs`. They assert the scanner's invariants, not only "no panic".

use std::sync::LazyLock;

use crate::{Scanner, Stream};

static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::all);

/// Every built-in detector and configured ones of each kind: a regex with a capture group
/// and keywords, a regex with a validator, a dictionary.
#[allow(clippy::panic)]
static CUSTOM: LazyLock<Scanner> = LazyLock::new(|| {
    use crate::{CustomDetector, CustomRule, Detector, Validator};
    let regex = |name: &str, pattern: &str, keywords: &[&str], validator| CustomDetector {
        name: name.into(),
        rule: CustomRule::Regex {
            pattern: pattern.into(),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            validator,
            min_entropy: None,
        },
    };
    Scanner::with_custom(
        Detector::BUILTIN,
        &[
            regex("id", r"\bEMP-(\d{3,6})\b", &["emp"], Validator::None),
            regex("loyalty", r"9\d{7,15}", &[], Validator::Luhn),
            regex("words", r"[a-z]+ [a-z]+", &[], Validator::None),
            CustomDetector {
                name: "terms".into(),
                rule: CustomRule::Terms {
                    terms: vec!["secret".into(), "ab".into(), "a b".into()],
                    case_insensitive: true,
                },
            },
        ],
    )
    .unwrap_or_else(|e| panic!("the fuzz scanner compiles: {e}"))
});

/// Scans the input whole and streamed in chunks whose sizes come from its first bytes; the
/// matches must be the same, in bounds, and masking must keep the length and touch only them.
pub fn scan(data: &[u8]) {
    check(&SCANNER, data);
    check(&CUSTOM, data);
}

#[allow(clippy::panic)]
fn check(s: &Scanner, data: &[u8]) {
    let whole = s.scan(data, 0);
    for m in &whole {
        assert!(m.start < m.end && m.end as usize <= data.len(), "{m:?}");
    }
    let sizes: Vec<usize> = data
        .iter()
        .take(8)
        .map(|b| 1 + usize::from(*b) * 7)
        .collect();
    for mask in [false, true] {
        let mut st = Stream::new(s);
        let (mut found, mut out) = (Vec::new(), Vec::new());
        let mut i = 0;
        let mut k = 0;
        while i < data.len() {
            let n = sizes.get(k % sizes.len().max(1)).copied().unwrap_or(64);
            let end = (i + n).min(data.len());
            let (m, bytes) = st.feed(&data[i..end], mask);
            found.extend(m);
            out.extend(bytes);
            i = end;
            k += 1;
        }
        let (m, bytes) = st.finish(mask);
        found.extend(m);
        out.extend(bytes);
        assert_eq!(
            found, whole,
            "streamed matches differ from the whole body's"
        );
        assert_eq!(out.len(), data.len(), "the stream lost or added bytes");
        if !mask {
            assert_eq!(out, data, "unmasked bytes changed");
        } else {
            let mut expected = data.to_vec();
            for m in &whole {
                crate::mask(&mut expected, m.start as usize, m.end as usize, m.detector);
            }
            assert_eq!(out, expected, "masking touched other bytes");
        }
    }
}
