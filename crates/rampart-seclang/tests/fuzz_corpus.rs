//! Replays the SecLang fuzz targets' corpora on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Runs `target` on every file of `fuzz/corpus/<name>`, which must hold at least `min`.
fn replay(name: &str, min: usize, target: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        target(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= min, "{name}: {n} inputs");
}

#[test]
fn parse_corpus_replays() {
    replay("seclang_parse", 5, rampart_seclang::fuzzing::parse);
}

#[test]
fn transform_corpus_replays() {
    replay(
        "seclang_transform",
        20,
        rampart_seclang::fuzzing::transforms,
    );
}

#[test]
fn body_corpus_replays() {
    replay("seclang_body", 7, rampart_seclang::fuzzing::body);
}

#[test]
fn libinjection_corpus_replays() {
    replay(
        "seclang_libinjection",
        20,
        rampart_seclang::fuzzing::libinjection,
    );
}
