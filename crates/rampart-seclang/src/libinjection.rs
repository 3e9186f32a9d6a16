//! SQL injection and XSS detection for `@detectSQLi` and `@detectXSS`: libinjection's
//! algorithms (a SQL tokenizer that folds the input into a five-token fingerprint looked up in
//! a list of known attack shapes, and an HTML5 tokenizer that looks for executable contexts).
//!
//! The work is done by `libinjectionrs`, a pure-Rust port of libinjection. It is young, so it is
//! held to libinjection's own test suite in `tests/libinjection.rs` (every unit vector, printed
//! the way libinjection's test driver prints it, and detection counts over its sample files) and
//! run under a fuzz target; a panic inside it is caught here and counts as a detection, so a
//! bug in the detector fails closed instead of letting the input through.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// The libinjection fingerprint (`s&sos`, `1UE`…) when `input` is SQL injection, else `None`.
pub fn sqli(input: &[u8]) -> Option<String> {
    match catch_unwind(AssertUnwindSafe(|| {
        let r = libinjectionrs::detect_sqli(input);
        r.is_injection().then(|| {
            r.fingerprint
                .map(|f| f.as_str().to_owned())
                .unwrap_or_default()
        })
    })) {
        Ok(found) => found,
        Err(_) => Some(String::from("panic")),
    }
}

/// Whether `input` holds an XSS vector (HTML or JavaScript that would run in any of the
/// contexts libinjection tries: text, attribute values with and without quotes).
pub fn xss(input: &[u8]) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        libinjectionrs::detect_xss(input).is_injection()
    }))
    .unwrap_or(true)
}
