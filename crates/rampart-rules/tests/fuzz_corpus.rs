//! Replays the `rules_parse` and `rules_eval` fuzz targets' corpora on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        f(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    n
}

#[test]
fn parse_corpus_replays() {
    assert!(replay("rules_parse", rampart_rules::fuzzing::parse_and_print) >= 100);
}

#[test]
fn eval_corpus_replays() {
    assert!(replay("rules_eval", rampart_rules::fuzzing::evaluate) >= 5);
}
