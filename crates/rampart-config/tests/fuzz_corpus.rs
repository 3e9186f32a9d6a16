//! Replays the `config` fuzz target's corpus on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        rampart_config::fuzzing::config(&data);
        n += 1;
    }
    assert!(n >= 3, "corpus too small: {n}");
}
