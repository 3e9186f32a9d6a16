//! Every YAML example in README.md and docs/*.md must use real keys with the right shapes, and
//! compile, except for files and environment variables that only exist where it is deployed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```yaml" => current = Some((i + 2, String::new())),
            Some(_) if line.trim_start() == "```" => out.extend(current.take()),
            Some((_, buf)) => {
                buf.push_str(line);
                buf.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn every_yaml_example_in_the_docs_is_valid() {
    let mut files = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (line, yaml) in yaml_blocks(&text) {
            checked += 1;
            let name = format!("{}:{line}", f.display());
            // Paths are relative to docs/: `openapi: examples/openapi/users.yaml` is real.
            if let Err(e) = rampart_config::load_str(&yaml, &name, &root().join("docs")) {
                // Only what depends on the machine it runs on may fail.
                let real: Vec<_> = e
                    .diagnostics
                    .iter()
                    .filter(|d| {
                        !d.message.starts_with("cannot read")
                            && !d.message.starts_with("environment variable")
                    })
                    .collect();
                if !real.is_empty() {
                    failures.push(format!("{name}:\n{}", e.render()));
                }
            }
        }
    }
    assert!(checked >= 6, "only {checked} examples found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
