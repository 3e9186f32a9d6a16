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

/// Every transformation on the input (`fuzz/fuzz_targets/seclang_transform.rs`): no panic,
/// and what must hold does (case changes and null replacement keep the length; removals,
/// trims and decodings never grow the input; `length` is the length).
#[allow(clippy::panic)]
pub fn transforms(data: &[u8]) {
    use crate::ast::Transform as T;
    for (name, t) in T::ALL {
        let out = crate::transform::apply(*t, data);
        let (n, m) = (data.len(), out.len());
        let ok = match t {
            T::Lowercase | T::Uppercase | T::ReplaceNulls | T::None => m == n,
            T::RemoveNulls
            | T::RemoveWhitespace
            | T::CompressWhitespace
            | T::RemoveComments
            | T::RemoveCommentsChar
            | T::Trim
            | T::TrimLeft
            | T::TrimRight
            | T::UrlDecode
            | T::UrlDecodeUni
            | T::HtmlEntityDecode
            | T::JsDecode
            | T::CssDecode
            | T::EscapeSeqDecode
            | T::SqlHexDecode
            | T::HexDecode
            | T::Base64Decode
            | T::Base64DecodeExt
            | T::CmdLine
            | T::ReplaceComments => m <= n,
            T::Length => out.as_ref() == n.to_string().as_bytes(),
            T::Sha1 => m == 20,
            T::Md5 => m == 16,
            T::HexEncode => m == 2 * n,
            _ => true,
        };
        assert!(ok, "{name}: {n} bytes in, {m} out");
    }
}
