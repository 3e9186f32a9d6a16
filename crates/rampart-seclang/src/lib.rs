//! A SecLang engine (the language of ModSecurity and Coraza rules) that runs the OWASP Core
//! Rule Set v4 unmodified.
//!
//! This crate has no HTTP server in it; the `waf` stage adapts it to the pipeline. This first
//! part is the language: [`parse`] reads rule files (with `Include`, globs, line continuations
//! and quoting) into a typed syntax tree ([`ast`]) in which every variable, operator,
//! transformation and action is a closed enum, and reports every problem at once with the
//! file, line and a caret.

pub mod ast;
#[doc(hidden)]
pub mod bench_data;
pub mod eval;
#[doc(hidden)]
pub mod fuzzing;
pub mod libinjection;
pub mod multipart;
mod names;
pub mod operator;
pub mod parse;
pub mod pcre;
pub mod persist;
pub mod prefilter;
pub mod ruleset;
mod source;
pub mod transform;

pub use parse::{parse_file, parse_str, Diagnostic, Parsed};
