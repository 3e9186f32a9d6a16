//! The OpenAPI Initiative's own documents (../shared/corpora/openapi): every 3.0 and 3.1
//! example loads, every "pass" fixture of the 3.1 schema tests loads, and every "fail" fixture
//! is refused with an error that has a file, a line and a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn corpus(rel: &str) -> PathBuf {
    let p = std::path::absolute(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpora/openapi")
            .join(rel),
    )
    .unwrap();
    let p: PathBuf = p.components().fold(PathBuf::new(), |mut acc, c| {
        match c {
            std::path::Component::ParentDir => {
                acc.pop();
            }
            other => acc.push(other),
        }
        acc
    });
    assert!(
        p.exists(),
        "corpus not found: {} (the tests read ../shared/corpora)",
        p.display()
    );
    p
}

fn files(dir: &Path, ext: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| ext.iter().any(|x| e == *x)))
        .collect();
    out.sort();
    out
}

#[test]
fn every_3_0_and_3_1_example_loads() {
    let mut n = 0;
    for dir in [
        "examples/v3.0",
        "examples/v3.1",
        "_archive_/schemas/v3.0/pass",
    ] {
        for f in files(&corpus(dir), &["json", "yaml"]) {
            match rampart_openapi::load(&f) {
                Ok(spec) => {
                    n += 1;
                    assert!(!spec.title.is_empty(), "{}", f.display());
                }
                Err(errors) => {
                    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    panic!("{} did not load:\n{}", f.display(), text.join("\n"));
                }
            }
        }
    }
    assert_eq!(n, 14, "6 JSON and 6 YAML 3.0 examples, 2 JSON 3.1 examples");
}

#[test]
fn the_3_1_pass_fixtures_load() {
    let list = files(&corpus("v3.1-dev/tests/schema/pass"), &["yaml"]);
    assert_eq!(list.len(), 35);
    for f in list {
        if let Err(errors) = rampart_openapi::load(&f) {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("{} did not load:\n{}", f.display(), text.join("\n"));
        }
    }
}

#[test]
fn the_3_1_fail_fixtures_are_refused_with_a_position() {
    let list = files(&corpus("v3.1-dev/tests/schema/fail"), &["yaml"]);
    assert_eq!(list.len(), 11);
    for f in list {
        let Err(errors) = rampart_openapi::load(&f) else {
            panic!(
                "{} loaded, but the OpenAPI schema tests say it must fail",
                f.display()
            );
        };
        for e in &errors {
            assert_eq!(e.file, f, "{e}");
            assert!(e.span.line >= 1 && !e.message.is_empty(), "{e}");
        }
    }
}

#[test]
fn swagger_2_is_named_not_misread() {
    let f = corpus("examples/v2.0/yaml/petstore.yaml");
    let errors = rampart_openapi::load(&f).unwrap_err();
    assert!(errors[0].message.contains("Swagger 2.0"), "{}", errors[0]);
}

/// Every error of the fail fixtures and of our own broken documents, as `rampart check` shows
/// them, against `tests/golden/errors.txt` (`BLESS=1` rewrites it).
#[test]
fn errors_are_golden() {
    let base = corpus("");
    let mut out = String::new();
    let mut docs: Vec<PathBuf> = files(&corpus("v3.1-dev/tests/schema/fail"), &["yaml"]);
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    docs.extend(files(&own, &["yaml", "json"]));
    for f in docs {
        let Err(errors) = rampart_openapi::load(&f) else {
            panic!("{} loaded", f.display())
        };
        for e in errors {
            let text = e.to_string();
            let text = text
                .replace(&format!("{}/", base.display()), "corpora/openapi/")
                .replace(&format!("{}/", own.display()), "tests/bad/");
            out.push_str(&text);
            out.push_str("\n\n");
        }
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/errors.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &out).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (BLESS=1 to write it)");
    assert_eq!(out, want, "errors changed (BLESS=1 to accept)");
}
