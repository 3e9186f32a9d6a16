//! Replays the `jws_verify` fuzz target's corpus on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn jws_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/jws_verify");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        rampart_stages::authn::jws::fuzzing::verify_token(
            &std::fs::read(e.unwrap().path()).unwrap(),
        );
        n += 1;
    }
    assert!(n >= 40, "{n} inputs");
}

/// Replays the `dlp_decode` fuzz target's corpus on stable Rust.
#[test]
fn dlp_decode_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/dlp_decode");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        rampart_stages::dlp::fuzz_decode(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 10);
}
