//! Golden diagnostics: every error of `testdata/diagnostics/cases.rules`, rendered with its
//! caret and hint, compared with `testdata/diagnostics/expected.txt`. `BLESS=1` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;

use rampart_rules::{Limits, List, Lists, RuleSetBuilder};

#[test]
fn every_bad_expression_renders_its_caret_and_hint() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/diagnostics");
    let cases = std::fs::read_to_string(dir.join("cases.rules")).unwrap();
    let mut lists = Lists::new();
    lists.insert(
        "office".to_owned(),
        List::from_entries(&["203.0.113.0/24".to_owned()]).unwrap(),
    );
    lists.insert(
        "agents".to_owned(),
        List::from_entries(&["sqlmap".to_owned()]).unwrap(),
    );
    let mut out = String::new();
    let mut n = 0;
    for src in cases
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        n += 1;
        let mut b = RuleSetBuilder::new(Limits::default(), &lists);
        let Err(errs) = b.add(src) else {
            panic!("{src:?} compiled, but every case must be an error");
        };
        writeln!(out, "== {src}").unwrap();
        for e in &errs {
            // Every span lies inside the expression, so that carets point at real text.
            assert!(
                e.span.start <= e.span.end && e.span.end <= src.len(),
                "{src}: {e:?}"
            );
            out.push_str(&e.render(src));
        }
        out.push('\n');
    }
    assert!(n >= 30, "{n} cases");
    let path = dir.join("expected.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &out).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {} (run with BLESS=1)", path.display()));
    assert_eq!(out, expected, "run with BLESS=1 to accept");
}
