//! Replays the `seclang_parse` fuzz target's corpus on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn parse_corpus_replays() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/seclang_parse");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        rampart_seclang::fuzzing::parse(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn transform_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/seclang_transform");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        rampart_seclang::fuzzing::transforms(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 20);
}

#[test]
fn body_corpus_replays() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/seclang_body");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        rampart_seclang::fuzzing::body(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 7);
}
