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

/// The body processors on the input (`fuzz/fuzz_targets/seclang_body.rs`): the first byte
/// picks the content type (form, multipart with a fixed boundary, JSON, XML), the rest is the
/// body; a small rule set reads every collection the processors fill. It checks that nothing
/// panics (the rules' verdicts are tested by the CRS regression run, not here).
#[allow(clippy::panic)]
pub fn body(data: &[u8]) {
    use std::sync::{Arc, LazyLock};

    use crate::eval::{Request, Transaction};

    static RULES: LazyLock<Arc<crate::ruleset::Ruleset>> = LazyLock::new(|| {
        let text = "SecRequestBodyAccess On\n\
            SecRule ARGS|ARGS_NAMES|FILES|FILES_NAMES|MULTIPART_PART_HEADERS|XML:/*|XML://@*|REQUEST_BODY \"@rx (?i)attack\" \"id:1,phase:2,pass,t:none,t:urlDecodeUni,t:lowercase\"\n\
            SecRule REQBODY_ERROR|MULTIPART_STRICT_ERROR \"!@eq 0\" \"id:2,phase:2,pass\"\n";
        let parsed = crate::parse_str(text, "fuzz.conf", std::path::Path::new("."));
        Arc::new(
            crate::ruleset::compile_ruleset(&parsed)
                .unwrap_or_else(|e| panic!("the fuzz rule set compiles: {e:?}")),
        )
    });
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let ct = match kind % 4 {
        0 => "application/x-www-form-urlencoded",
        1 => "multipart/form-data; boundary=XyZ",
        2 => "application/json",
        _ => "application/xml",
    };
    let req = Request {
        method: "POST".into(),
        uri: "/fuzz".into(),
        protocol: "HTTP/1.1".into(),
        headers: vec![("Content-Type".into(), ct.as_bytes().to_vec())],
        remote_addr: None,
        unique_id: "fuzz".into(),
    };
    let mut t = Transaction::new(RULES.clone(), req);
    t.phase(1);
    t.request_body(body);
    t.phase(2);
    let _ = t.matched().len();
}

/// libinjection's two detectors on the input (`fuzz/fuzz_targets/seclang_libinjection.rs`),
/// called directly so that a panic in them surfaces here instead of being caught as a
/// detection: no panic, and a fingerprint is at most five token types.
#[allow(clippy::panic)]
pub fn libinjection(data: &[u8]) {
    let sqli = libinjectionrs::detect_sqli(data);
    if let Some(fp) = &sqli.fingerprint {
        let fp = fp.as_str();
        assert!(fp.len() <= 5, "fingerprint {fp:?}");
        assert!(
            fp.bytes().all(|b| b.is_ascii_graphic()),
            "fingerprint {fp:?}"
        );
    }
    let _ = libinjectionrs::detect_xss(data).is_injection();
}
