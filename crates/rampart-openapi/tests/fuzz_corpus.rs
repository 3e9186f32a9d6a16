//! Replays the `openapi_request` and `openapi_document` fuzz targets' corpora on stable Rust.
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
fn request_corpus_replays() {
    assert!(replay("openapi_request", rampart_openapi::fuzzing::request) >= 10);
}

#[test]
fn document_corpus_replays() {
    assert!(replay("openapi_document", rampart_openapi::fuzzing::document) >= 20);
}
