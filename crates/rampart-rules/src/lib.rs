//! The rules language: Cloudflare-style expressions over request and response fields, used by
//! WAF custom rules, rate-limit matchers and authorization conditions.
//!
//! ```
//! use rampart_rules::{Input, Limits, Lists, RuleSetBuilder};
//!
//! let lists = Lists::new();
//! let mut b = RuleSetBuilder::new(Limits::default(), &lists);
//! let admin = b
//!     .add(r#"starts_with(http.request.uri.path, "/admin") and not ip.src in {10.0.0.0/8}"#)
//!     .expect("valid rule");
//! let rules = b.build();
//!
//! let (req, ()) = http::Request::get("/admin/users").body(()).expect("request").into_parts();
//! let input = Input {
//!     client_ip: Some("192.0.2.7".parse().expect("ip")),
//!     request: Some(&req),
//!     ..Input::default()
//! };
//! let mut cx = rules.context(input);
//! assert!(rules.eval(admin, &mut cx));
//! ```
//!
//! The pipeline: [`parse`] (text to [`ast::Expr`], within [`Limits`]) → [`RuleSetBuilder`]
//! (names resolved against the [`scheme`], types checked, the phase inferred, regexes compiled,
//! fields interned into cache slots) → [`RuleSet::eval`] on a per-request [`Context`] that
//! computes each field the first time a rule reads it.

pub mod ast;
mod compile;
mod error;
mod exec;
pub mod functions;
mod lex;
mod matcher;
mod parse;
pub mod sample;
pub mod scheme;

pub use compile::{phase_of, ExprId, List, Lists, RuleSet, RuleSetBuilder};
pub use error::{RuleError, Span};
pub use exec::{Context, Input, Value};
pub use parse::{parse, Limits};
pub use scheme::FieldPhase;

/// Fuzzing entry points, shared by the fuzz targets and the tests that replay their corpus.
pub mod fuzzing {
    use super::*;

    /// Parses arbitrary text; when it parses, checks that printing and parsing again gives the
    /// same tree, then compiles it. Panics on a broken invariant.
    #[allow(clippy::panic)]
    pub fn parse_and_print(data: &[u8]) {
        let Ok(src) = std::str::from_utf8(data) else {
            return;
        };
        let limits = Limits::default();
        let Ok(ast) = parse(src, &limits) else {
            return;
        };
        let printed = ast.to_string();
        match parse(&printed, &limits) {
            Ok(again) => assert_eq!(again, ast, "round trip of {src:?} via {printed:?}"),
            Err(e) => panic!("printed form {printed:?} of {src:?} does not parse: {e}"),
        }
        let lists = Lists::new();
        let mut b = RuleSetBuilder::new(limits, &lists);
        let _ = b.add_ast(&ast);
    }

    /// Evaluates a fixed set of rules against a request built from arbitrary bytes: the path,
    /// query, a header, a cookie and the body all come from `data`.
    pub fn evaluate(data: &[u8]) {
        let rules = fuzz_rules();
        let text = String::from_utf8_lossy(data);
        let mut parts = text.splitn(4, '\n');
        let path = parts.next().unwrap_or("");
        let header = parts.next().unwrap_or("");
        let cookie = parts.next().unwrap_or("");
        let body = parts.next().unwrap_or("").as_bytes();
        let uri = format!("/{}", path.trim_start_matches('/'));
        let Ok(req) = http::Request::builder()
            .uri(uri.as_str())
            .header("x-test", header)
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(())
        else {
            return;
        };
        let (req, ()) = req.into_parts();
        let (set, ids) = &*rules;
        let mut cx = set.context(Input {
            request: Some(&req),
            body: Some(body),
            ..Input::default()
        });
        for id in ids {
            let _ = set.eval(*id, &mut cx);
        }
    }

    fn fuzz_rules() -> std::sync::Arc<(RuleSet, Vec<ExprId>)> {
        use std::sync::{Arc, OnceLock};
        static RULES: OnceLock<Arc<(RuleSet, Vec<ExprId>)>> = OnceLock::new();
        RULES
            .get_or_init(|| {
                let lists = Lists::new();
                let mut b = RuleSetBuilder::new(Limits::default(), &lists);
                let ids = FUZZ_RULES.iter().filter_map(|r| b.add(r).ok()).collect();
                Arc::new((b.build(), ids))
            })
            .clone()
    }

    const FUZZ_RULES: &[&str] = &[
        r#"url_decode(http.request.uri.query, "r") matches "(?i)union.+select""#,
        r#"any(lower(http.request.headers["x-test"]) contains "script")"#,
        r#"normalize_path(url_decode(http.request.uri.path)) wildcard "/admin/*""#,
        r#"html_entity_decode(http.request.cookies["session"]) == "<x>""#,
        r#"base64_decode(http.request.body.form["b"]) contains "passwd""#,
        r#"len(http.request.body.raw) > 100 xor remove_whitespace(http.request.body.json["/a/0"]) == "x""#,
        r#"all(http.request.uri.args["id"] matches "^[0-9]+$")"#,
        r#"concat(http.request.uri.path, http.request.uri.query) in {"/a" "/b"}"#,
    ];
}
