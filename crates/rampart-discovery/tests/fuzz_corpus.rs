//! Replays the `discovery_observe` fuzz target's corpus on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn discovery_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/discovery_observe");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        rampart_discovery::fuzzing::observe(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 6, "{n} inputs");
}
