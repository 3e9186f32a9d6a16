//! The parser on the OWASP CRS v4 as released (../shared/corpora/crs): every file reads without
//! a problem, with the rule ids, directives and chains the release has.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rampart_seclang::ast::{Action, DirectiveKind};

fn crs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/crs")
}

#[test]
fn the_whole_crs_parses_with_every_rule() {
    let dir = crs();
    assert!(
        dir.is_dir(),
        "corpus not found: {} (the tests read ../shared/corpora)",
        dir.display()
    );
    // What a user writes: the setup, then the rules.
    let main = format!(
        "Include {}\nInclude {}/rules/*.conf\n",
        dir.join("crs-setup.conf.example").display(),
        dir.display()
    );
    let parsed = rampart_seclang::parse_str(&main, "main.conf", &dir);
    let problems: Vec<String> = parsed.diagnostics.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(
        parsed.files.len(),
        1 + 27,
        "the setup and the 27 rule files"
    );
    let mut ids = BTreeSet::new();
    let mut chained = 0;
    for r in parsed.rules() {
        let id = r
            .id()
            .unwrap_or_else(|| panic!("a rule without id at {:?}", r.span));
        assert!(ids.insert(id), "duplicate id {id}");
        let mut link = &r.chain;
        while let Some(c) = link {
            chained += 1;
            assert!(c.id().is_none(), "a chained rule has its own id in {id}");
            link = &c.chain;
        }
    }
    // The release's own count of distinct ids (SOURCE.md), minus those only in the two
    // *.conf.example files and in comments.
    let all_ids_in_text: BTreeSet<u32> = std::fs::read_dir(dir.join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .flat_map(|l| {
                    l.match_indices("\"id:")
                        .filter_map(|(i, _)| {
                            l[i + 4..]
                                .split(|c: char| !c.is_ascii_digit())
                                .next()
                                .and_then(|n| n.parse().ok())
                        })
                        .collect::<Vec<u32>>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let parsed_rule_ids: BTreeSet<u32> = ids
        .iter()
        .copied()
        .filter(|id| all_ids_in_text.contains(id))
        .collect();
    assert_eq!(
        parsed_rule_ids, all_ids_in_text,
        "every id in the rule files is a parsed rule"
    );
    assert!(ids.len() > 550, "{} rules", ids.len());
    assert!(chained > 50, "{chained} chained rules");
    eprintln!(
        "{} rules, {} distinct ids in the files, {chained} chained links",
        ids.len(),
        all_ids_in_text.len()
    );
    let markers = parsed
        .directives
        .iter()
        .filter(|d| matches!(d.kind, DirectiveKind::Marker(_)))
        .count();
    assert_eq!(markers, 30);
    let updates = parsed
        .directives
        .iter()
        .filter(|d| matches!(d.kind, DirectiveKind::RuleUpdateTargetById(..)))
        .count();
    assert_eq!(updates, 55);
    // Paranoia-level tags exist on the rules that CRS gates by level.
    let pl4 = parsed
        .rules()
        .filter(|r| r.tags().any(|t| t == "paranoia-level/4"))
        .count();
    assert!(pl4 >= 9, "{pl4}");
    // Every rule has a phase (or inherits SecDefaultAction's).
    let with_phase = parsed
        .rules()
        .filter(|r| r.actions.iter().any(|a| matches!(a, Action::Phase(_))))
        .count();
    assert!(with_phase as f64 / ids.len() as f64 > 0.95);
}
