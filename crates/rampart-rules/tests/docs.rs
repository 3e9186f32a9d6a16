//! docs/rules.md is the language's reference: every `rules` example on it compiles, and it names
//! every field and every function of the scheme.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use rampart_rules::scheme::{FIELDS, FUNCTIONS};
use rampart_rules::{Limits, List, Lists, RuleSetBuilder};

fn page() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_example_compiles() {
    let text = page();
    let mut lists = Lists::new();
    lists.insert(
        "office".to_owned(),
        List::from_entries(&["203.0.113.0/24".to_owned()]).unwrap(),
    );
    let mut examples = 0;
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        if line.trim() != "```rules" {
            continue;
        }
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| l.trim() != "```")
            .collect();
        let src = body.join("\n");
        let mut b = RuleSetBuilder::new(Limits::default(), &lists);
        if let Err(errs) = b.add(&src) {
            let shown: Vec<String> = errs.iter().map(|e| e.render(&src)).collect();
            panic!("docs/rules.md:{}:\n{}", i + 2, shown.join(""));
        }
        examples += 1;
    }
    assert!(examples >= 9, "only {examples} examples");
}

#[test]
fn the_page_names_every_field_and_function() {
    let text = page();
    for f in FIELDS {
        let plain = format!("`{}`", f.name);
        let indexed = format!("`{}[", f.name);
        assert!(
            text.contains(&plain) || text.contains(&indexed),
            "docs/rules.md does not list the field {}",
            f.name
        );
    }
    for f in FUNCTIONS {
        assert!(
            text.contains(&format!("`{}(", f.name)),
            "docs/rules.md does not list the function {}",
            f.name
        );
    }
}
