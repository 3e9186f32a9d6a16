//! Compiling a rule set: defaults merged, removals and updates applied in file order, and the
//! checks (ids, chains, markers) reported together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use rampart_seclang::ast::{Collection, Transform};
use rampart_seclang::ruleset::{compile_ruleset, Disruptive};

fn compile(text: &str) -> Result<rampart_seclang::ruleset::Ruleset, Vec<String>> {
    let parsed = rampart_seclang::parse_str(text, "t.conf", Path::new("."));
    compile_ruleset(&parsed).map_err(|e| e.iter().map(|d| d.message.clone()).collect())
}

#[test]
fn defaults_removals_and_updates() {
    let set = compile(
        r#"
SecDefaultAction "phase:1,log,auditlog,pass,t:lowercase"
SecDefaultAction "phase:2,log,auditlog,deny,status:403"
SecRule ARGS "@rx a" "id:1,phase:1,t:urlDecode"
SecRule ARGS "@rx b" "id:2,phase:1,t:none,t:trim,block"
SecRule ARGS "@rx c" "id:3,phase:2"
SecRule ARGS "@rx d" "id:4,phase:2,pass,tag:'attack-x'"
SecRule ARGS "@rx e" "id:5,phase:2,chain"
    SecRule REQUEST_HEADERS "@rx f" "t:none"
SecRuleRemoveById 3
SecRuleUpdateTargetById 1 "!ARGS:password"
SecMarker END
SecRule ARGS "@rx g" "id:6,phase:2,skipAfter:END"
SecRuleRemoveByTag attack-x
"#,
    )
    .unwrap();
    let ids: Vec<u32> = set.rules.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 5, 6]);
    let r1 = &set.rules[0];
    assert_eq!(r1.disruptive, Disruptive::Pass, "phase 1's default");
    assert_eq!(
        *r1.links[0].transforms,
        [Transform::Lowercase, Transform::UrlDecode]
    );
    let last = r1.links[0].variables.last().unwrap();
    assert!(last.exclude && last.collection == Collection::Args);
    let r2 = &set.rules[1];
    assert_eq!(
        *r2.links[0].transforms,
        [Transform::Trim],
        "t:none clears the inherited ones"
    );
    assert_eq!(
        r2.disruptive,
        Disruptive::Pass,
        "`block` is the phase's default: pass"
    );
    let r5 = &set.rules[2];
    assert_eq!(r5.disruptive, Disruptive::Deny, "phase 2's default");
    assert_eq!(r5.links.len(), 2);
    assert!(r5.links[1].transforms.is_empty());
    assert_eq!(set.markers["END"], 3, "the marker stands before rule 6");
}

#[test]
fn every_problem_of_a_rule_set_at_once() {
    let errors = compile(
        r#"
SecDefaultAction "log,pass"
SecRule ARGS "@rx a" "phase:2,deny"
SecRule ARGS "@rx a" "id:7,phase:2,deny"
SecRule ARGS "@rx a" "id:7,phase:2,deny"
SecRule ARGS "@rx a" "id:8,phase:2,skipAfter:NOWHERE"
SecRule ARGS "@rx a" "id:9,phase:2,chain"
    SecRule ARGS "@rx b" "id:10,deny"
SecRule ARGS "@rx (" "id:11,phase:2,deny"
SecRuleUpdateTargetById 999 "!ARGS:x"
"#,
    )
    .unwrap_err();
    let want = [
        "`SecDefaultAction` needs a `phase`",
        "no rule loaded before this directive has these ids",
        "a rule needs an `id`",
        "rule id 7 is used twice",
        "`skipAfter:NOWHERE` names no `SecMarker`",
        "a chained rule cannot have `id`, `phase`, a disruptive action or `skip`",
    ];
    for w in want {
        assert!(
            errors.iter().any(|e| e == w),
            "missing {w:?} in {errors:#?}"
        );
    }
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("rule 11: invalid regular expression")),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 7, "{errors:#?}");
}

#[test]
fn the_whole_crs_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/crs");
    let main = format!(
        "Include {}\nInclude {}/rules/*.conf\n",
        dir.join("crs-setup.conf.example").display(),
        dir.display()
    );
    let parsed = rampart_seclang::parse_str(&main, "main.conf", &dir);
    let set = compile_ruleset(&parsed).unwrap_or_else(|e| panic!("{e:#?}"));
    // libinjection's four rules are among them.
    for id in [941100, 941101, 942100, 942101] {
        assert!(set.rules.iter().any(|r| r.id == id), "rule {id}");
    }
}

/// Debian's CRS 3.3.4 (`apt-get install modsecurity-crs`, which `.ci/run` installs), as users
/// on Debian have it: its PCRE-only patterns compile (rewritten for the `regex` crate, or on
/// the backtracking engine: named), `@geoLookup` and `@rbl` are named as never matching, and
/// it works: a benign request passes, attacks are refused.
#[test]
fn debians_crs_3_3_loads_and_works() {
    let rules = Path::new("/usr/share/modsecurity-crs/rules");
    let setup = Path::new("/etc/modsecurity/crs/crs-setup.conf");
    assert!(
        rules.is_dir() && setup.is_file(),
        "Debian's CRS 3.3 is needed: apt-get install modsecurity-crs"
    );
    let main = format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\nInclude {}\nInclude {}/*.conf\n",
        setup.display(),
        rules.display()
    );
    let parsed = rampart_seclang::parse_str(&main, "main.conf", rules);
    let set = compile_ruleset(&parsed).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(set.backtracking, [920120, 942130, 953120]);
    assert_eq!(set.never_matching, [(910100, "geoLookup"), (910140, "rbl")]);
    let set = std::sync::Arc::new(set);
    let get = |uri: &str| rampart_seclang::eval::Request {
        method: "GET".into(),
        uri: uri.into(),
        protocol: "HTTP/1.1".into(),
        headers: vec![
            ("Host".into(), b"shop.example".to_vec()),
            ("User-Agent".into(), b"Mozilla/5.0".to_vec()),
            ("Accept".into(), b"text/html".to_vec()),
        ],
        remote_addr: Some("192.0.2.7".parse().unwrap()),
        unique_id: "t".into(),
    };
    let verdict = |uri: &str| {
        let mut t = rampart_seclang::eval::Transaction::new(set.clone(), get(uri));
        if t.phase(1).is_none() {
            t.request_body(b"");
            t.phase(2);
        }
        (
            t.interruption().map(|i| i.rule),
            t.matched().iter().map(|m| m.id).collect::<Vec<_>>(),
        )
    };
    assert_eq!(verdict("/products?page=2&sort=price").0, None);
    for attack in [
        "/download?file=../../../../etc/passwd",
        "/items?id=1%27%20OR%20%271%27%3D%271",
        "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ] {
        let (refused, matched) = verdict(attack);
        assert_eq!(refused, Some(949110), "{attack}: {matched:?}");
    }
}
