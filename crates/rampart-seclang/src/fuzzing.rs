//! The fuzz target's body (`fuzz/fuzz_targets/seclang_parse.rs`), also replayed on stable by
//! `tests/fuzz_corpus.rs`: the parser never panics, and what it says points inside the text.

use std::path::Path;

/// Parses the input as a rule file (`Include` cannot leave a directory that does not exist).
#[allow(clippy::panic)]
pub fn parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = crate::parse_str(&text, "fuzz.conf", Path::new("/nonexistent-fuzz-dir"));
    let lines = text.lines().count().max(1) as u32;
    for d in &parsed.diagnostics {
        if &*d.file == "fuzz.conf" {
            assert!(
                d.line >= 1 && d.line <= lines,
                "line {} of {lines}: {d}",
                d.line
            );
            assert!(d.col >= 1);
        }
        let _ = d.to_string();
    }
    for r in parsed.rules() {
        assert!(r.span.line >= 1 && r.span.line <= lines);
    }
}
