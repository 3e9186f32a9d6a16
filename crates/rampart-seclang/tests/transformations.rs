//! Table tests of the transformations (`testdata/transformations.json`): strings are Latin-1,
//! one character per byte, so any byte can be written; binary outputs are in hex.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use rampart_seclang::ast::Transform;
use rampart_seclang::transform::apply;

fn bytes(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or_else(|_| panic!("not Latin-1: {s:?}")))
        .collect()
}

#[test]
fn every_transformation_against_its_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/transformations.json");
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut covered = BTreeSet::new();
    let mut wrong = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let t = Transform::from_name(name).unwrap_or_else(|| panic!("unknown {name}"));
        covered.insert(t);
        let input = bytes(c["input"].as_str().unwrap());
        let got = apply(t, &input).into_owned();
        let want = match c.get("output_hex").and_then(|v| v.as_str()) {
            Some(h) => (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect(),
            None => bytes(c["output"].as_str().unwrap()),
        };
        if got != want {
            wrong.push(format!(
                "{name}({:?}) = {:?}, want {:?}",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let missing: Vec<&str> = Transform::ALL
        .iter()
        .filter(|(_, t)| !covered.contains(t))
        .map(|(n, _)| *n)
        .collect();
    // The spellings are one transformation each; both are covered by their twin.
    let missing: Vec<&str> = missing
        .into_iter()
        .filter(|n| !["normalizePathWin"].contains(n))
        .collect();
    assert!(missing.is_empty(), "no table cases for {missing:?}");
}

#[test]
fn clean_input_is_not_copied() {
    for (name, t) in Transform::ALL {
        let clean = b"plain_ascii_text_123";
        let out = apply(*t, clean);
        let copies = !matches!(out, std::borrow::Cow::Borrowed(_));
        let allowed = [
            "uppercase",
            "urlEncode",
            "base64Decode",
            "base64DecodeExt",
            "base64Encode",
            "hexDecode",
            "hexEncode",
            "length",
            "sha1",
            "md5",
            "cmdLine",
            "removeCommentsChar",
        ];
        assert!(
            !copies || allowed.contains(name),
            "{name} copied clean input"
        );
    }
}
