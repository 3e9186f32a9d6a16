//! The parser's errors: every mistake of a file reported at once, each with its file, line and
//! a caret under the place, and a hint where one helps. Golden output in `tests/golden/`
//! (rewritten with `BLESS=1`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[test]
fn every_mistake_is_reported_with_a_caret() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let parsed = rampart_seclang::parse_file(&dir.join("data/mistakes.conf"));
    let root = dir.join("data/").display().to_string();
    let got: String = parsed
        .diagnostics
        .iter()
        .map(|d| format!("{d}\n\n").replace(&root, "tests/data/"))
        .collect();
    let golden = dir.join("golden/mistakes.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(got, want, "BLESS=1 rewrites {}", golden.display());
    // One problem per mistaken line (17), nothing else.
    assert_eq!(parsed.diagnostics.len(), 17, "{got}");
    // The rules without mistakes were still read (none here), and reading went on to the end.
    assert!(parsed.diagnostics.last().unwrap().message.contains("chain"));
}

#[test]
fn quoting_continuations_and_selectors() {
    let text = r#"
SecRule REQUEST_HEADERS:User-Agent|!REQUEST_HEADERS:Referer|&ARGS|ARGS:/^(id|key)_\d+$/|REQUEST_COOKIES:'/^_ga/'|XML:/* \
    "!@rx ^a\"b$" \
    "id:100,\
    phase:request,\
    block,\
    msg:'it\'s a test, really',\
    logdata:'Matched Data: %{MATCHED_VAR} found within %{MATCHED_VAR_NAME}',\
    t:none,t:urlDecodeUni,t:base64decode,\
    setvar:'tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}',\
    setvar:!tx.flag,\
    ctl:ruleRemoveTargetById=942100;ARGS:password,\
    severity:'CRITICAL',\
    chain"
    SecRule MATCHED_VARS "@pmFromFile words.data" "t:lowercase"
SecAction "id:101,phase:1,pass,nolog,setvar:tx.x=1"
SecRuleRemoveById 900000-900999 901001
SecMarker "END-HOST-CHECK"
"#;
    let parsed = rampart_seclang::parse_str(text, "inline.conf", Path::new("."));
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let rules: Vec<_> = parsed.rules().collect();
    assert_eq!(rules.len(), 2);
    let r = rules[0];
    use rampart_seclang::ast::Selector;
    assert_eq!(
        r.variables[3].selector,
        Some(Selector::Regex(r"^(id|key)_\d+$".into()))
    );
    assert_eq!(
        r.variables[4].selector,
        Some(Selector::Regex("^_ga".into()))
    );
    assert_eq!(r.variables[5].selector, Some(Selector::Key("/*".into())));
    assert_eq!(r.variables.len(), 6);
    assert!(r.variables[1].exclude && r.variables[2].count);
    assert!(r.operator.negated);
    assert_eq!(r.operator.param, "^a\"b$");
    assert!(r.actions.contains(&rampart_seclang::ast::Action::Msg(
        "it's a test, really".into()
    )));
    assert!(r.actions.contains(&rampart_seclang::ast::Action::Phase(2)));
    assert_eq!(r.span.line, 2);
    let chained = r.chain.as_ref().unwrap();
    assert_eq!(chained.span.line, 15);
    assert_eq!(
        chained.operator.kind,
        rampart_seclang::ast::OperatorKind::PmFromFile
    );
}
