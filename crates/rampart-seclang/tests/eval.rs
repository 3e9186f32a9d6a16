//! Evaluation: variables, transformations, chains, setvar with macros, captures, ctl, flow
//! control and disruptive actions, on hand-written rules; then the CRS itself at paranoia
//! level 1 on a benign request and on attacks its regex rules catch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use rampart_seclang::eval::{Request, Transaction};
use rampart_seclang::ruleset::{compile_ruleset, Ruleset};

fn rules(text: &str) -> std::sync::Arc<Ruleset> {
    let parsed = rampart_seclang::parse_str(text, "t.conf", Path::new("."));
    std::sync::Arc::new(compile_ruleset(&parsed).unwrap_or_else(|e| panic!("{e:#?}")))
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: "GET".into(),
        uri: uri.into(),
        protocol: "HTTP/1.1".into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect(),
        remote_addr: Some("192.0.2.7".parse().unwrap()),
        unique_id: "rid-1".into(),
    }
}

fn ids(t: &Transaction) -> Vec<u32> {
    t.matched().iter().map(|m| m.id).collect()
}

#[test]
fn variables_transformations_and_scoring() {
    let set = rules(
        r#"
SecRuleEngine On
SecDefaultAction "phase:1,log,pass"
SecDefaultAction "phase:2,log,pass"
SecAction "id:1,phase:1,nolog,pass,setvar:tx.threshold=5,setvar:tx.score=0"
SecRule ARGS "@rx <script" "id:10,phase:1,t:none,t:urlDecodeUni,t:lowercase,setvar:'tx.score=+%{tx.threshold}',msg:'XSS in %{MATCHED_VAR_NAME}',logdata:'%{MATCHED_VAR}'"
SecRule REQUEST_HEADERS:User-Agent "@pm sqlmap nikto" "id:11,phase:1,setvar:tx.score=+3"
SecRule &REQUEST_HEADERS:Host "@eq 0" "id:12,phase:1,setvar:tx.score=+1"
SecRule ARGS_NAMES|!ARGS_NAMES:ok "@rx ^id_" "id:13,phase:1,setvar:tx.score=+1"
SecRule REQUEST_COOKIES:session "@rx ^(\w+)-(\d+)$" "id:14,phase:1,capture,setvar:tx.user=%{tx.1}"
SecRule TX:score "@ge %{tx.threshold}" "id:99,phase:1,deny,status:406,msg:'score %{tx.score}'"
"#,
    );
    // Benign.
    let mut t = Transaction::new(
        set.clone(),
        get("/a?q=hello", &[("Host", "x"), ("Cookie", "session=ann-42")]),
    );
    assert!(t.phase(1).is_none());
    assert_eq!(ids(&t), [14]);
    assert_eq!(t.tx("user"), Some(&b"ann"[..]));
    assert_eq!(t.tx("score"), Some(&b"0"[..]));
    // Encoded XSS in a query argument, no Host, an attack tool: 5 + 1 + 3 = 9 ≥ 5.
    let mut t = Transaction::new(
        set,
        get(
            "/a?q=%3CScRiPt%3Ealert(1)&id_x=1&ok=1",
            &[("User-Agent", "sqlmap/1.7")],
        ),
    );
    let i = t.phase(1).cloned().unwrap();
    assert_eq!((i.rule, i.status), (99, 406));
    assert_eq!(ids(&t), [10, 11, 12, 13, 99]);
    let m = &t.matched()[0];
    assert_eq!(m.msg, "XSS in ARGS:q");
    assert_eq!(m.logdata, "<script>alert(1)", "the value as transformed");
    assert_eq!(t.matched()[4].msg, "score 10");
}

#[test]
fn chains_ctl_skip_and_detection_only() {
    let set = rules(
        r#"
SecDefaultAction "phase:1,log,pass"
SecRule REQUEST_METHOD "@streq POST" "id:1,phase:1,chain,deny"
    SecRule REQUEST_HEADERS:Content-Type "!@rx ^application/json" "t:lowercase"
SecRule REQUEST_FILENAME "@beginsWith /admin" "id:2,phase:1,pass,ctl:ruleRemoveById=3,ctl:ruleRemoveTargetById=4;ARGS:token"
SecRule ARGS "@rx ." "id:3,phase:1,deny"
SecRule ARGS "@rx secret" "id:4,phase:1,deny"
SecRule ARGS:skip "@eq 1" "id:5,phase:1,pass,skipAfter:END"
SecRule ARGS "@rx boom" "id:6,phase:1,deny"
SecMarker END
SecRule ARGS:engine "@streq off" "id:7,phase:1,pass,ctl:ruleEngine=DetectionOnly"
SecRule ARGS "@rx late" "id:8,phase:1,deny"
"#,
    );
    let mut post = get("/x", &[("Content-Type", "Text/Plain")]);
    post.method = "POST".into();
    let mut t = Transaction::new(set.clone(), post);
    assert_eq!(
        t.phase(1).map(|i| i.rule),
        Some(1),
        "both links of the chain match"
    );
    let mut post = get("/x", &[("Content-Type", "application/JSON")]);
    post.method = "POST".into();
    let mut t = Transaction::new(set.clone(), post);
    assert!(t.phase(1).is_none(), "the second link does not");
    // ctl removes rule 3 and ARGS:token from rule 4 for this transaction only.
    let mut t = Transaction::new(set.clone(), get("/admin/x?token=secret", &[]));
    assert!(t.phase(1).is_none(), "{:?}", ids(&t));
    let mut t = Transaction::new(set.clone(), get("/x?token=secret", &[]));
    assert_eq!(t.phase(1).map(|i| i.rule), Some(3));
    // skipAfter jumps over rule 6.
    let mut t = Transaction::new(set.clone(), get("/admin?skip=1&b=boom", &[]));
    assert!(t.phase(1).is_none(), "{:?}", ids(&t));
    // DetectionOnly: the match is recorded, nothing is refused, the refusal that would have
    // been is kept.
    let mut t = Transaction::new(set, get("/admin?engine=off&c=late", &[]));
    assert!(t.phase(1).is_none());
    assert!(ids(&t).contains(&8));
    assert_eq!(t.would_interrupt().map(|i| i.rule), Some(8));
}

#[test]
fn chained_captures_and_the_logging_phase() {
    let set = rules(
        r#"
SecDefaultAction "phase:1,log,pass"
SecRule ARGS "@rx #.*" "id:1,phase:1,pass,capture,logdata:'%{TX.0}',chain"
    SecRule TX:0 "@rx \$[a-z]" "capture,chain"
        SecRule MATCHED_VAR "!@beginsWith #:~:text="
SecRule ARGS "@contains evil" "id:2,phase:1,deny,status:403"
SecRule ARGS "@contains evil" "id:3,phase:5,pass,log,msg:'logged after the refusal'"
"#,
    );
    // Each link captures only if it says so: TX.0 is what the second link captured, not the
    // value the negated third link saw.
    let mut t = Transaction::new(set.clone(), get("/?r=%23x;cat$u", &[]));
    assert!(t.phase(1).is_none());
    assert_eq!(t.matched()[0].logdata, "$u");
    // The logging phase runs after a refusal, as in ModSecurity.
    let mut t = Transaction::new(set, get("/?q=evil", &[]));
    assert_eq!(t.phase(1).map(|i| i.rule), Some(2));
    t.phase(5);
    assert_eq!(ids(&t), [2, 3]);
}

#[test]
fn bodies_form_and_json() {
    let set = rules(
        r#"
SecRequestBodyAccess On
SecRule ARGS_POST:user "@streq admin" "id:1,phase:2,deny"
SecRule ARGS:json.items.name "@rx ^<" "id:2,phase:2,deny,status:400"
SecRule REQBODY_ERROR "!@eq 0" "id:3,phase:2,deny,status:400"
"#,
    );
    let mut form = get(
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    form.method = "POST".into();
    let mut t = Transaction::new(set.clone(), form.clone());
    t.phase(1);
    t.request_body(b"user=admin&x=1");
    assert_eq!(t.phase(2).map(|i| i.rule), Some(1));
    let mut json = form;
    json.headers = vec![("Content-Type".into(), b"application/json".to_vec())];
    let mut t = Transaction::new(set.clone(), json.clone());
    t.request_body(br#"{"items":[{"name":"a"},{"name":"<b>"}]}"#);
    assert_eq!(t.phase(2).map(|i| (i.rule, i.status)), Some((2, 400)));
    let mut t = Transaction::new(set, json);
    t.request_body(b"{not json");
    assert_eq!(t.phase(2).map(|i| i.rule), Some(3));
}

fn crs() -> std::sync::Arc<Ruleset> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/crs");
    let main = format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\nInclude {}\nInclude {}/rules/*.conf\n",
        dir.join("crs-setup.conf.example").display(),
        dir.display()
    );
    let parsed = rampart_seclang::parse_str(&main, "main.conf", &dir);
    let set = compile_ruleset(&parsed).unwrap_or_else(|e| panic!("{e:#?}"));
    std::sync::Arc::new(set)
}

#[test]
fn the_crs_at_paranoia_level_1() {
    let set = crs();
    let headers = [
        ("Host", "localhost"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        ),
        ("Accept", "text/html"),
    ];
    let run = |uri: &str, extra: &[(&str, &str)]| {
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        h.extend_from_slice(extra);
        let mut t = Transaction::new(set.clone(), get(uri, &h));
        let mut out = t.phase(1).cloned();
        if out.is_none() {
            t.request_body(b"");
            out = t.phase(2).cloned();
        }
        (out, ids(&t))
    };
    let (benign, matched) = run("/products?page=2&sort=price", &[]);
    assert!(
        benign.is_none(),
        "a benign GET is let through; matched {matched:?}"
    );
    // Path traversal (930xxx), a shell command (932xxx), a scanner's user agent (913xxx):
    // each adds to the anomaly score, and 949110 refuses the request.
    for (uri, extra, family) in [
        ("/download?file=../../../../etc/passwd", vec![], 930),
        ("/?cmd=;cat%20/etc/passwd", vec![], 932),
        (
            "/",
            vec![("User-Agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")],
            913,
        ),
    ] {
        let (out, matched) = run(uri, &extra);
        let out = out.unwrap_or_else(|| panic!("{uri} not refused; matched {matched:?}"));
        assert_eq!(out.rule, 949110, "{uri}: {matched:?}");
        assert!(
            matched.iter().any(|id| id / 1000 == family),
            "{uri}: no {family}xxx rule in {matched:?}"
        );
    }
}

#[test]
fn pcre_patterns_and_macros_in_patterns() {
    let set = rules(
        r#"
SecDefaultAction "phase:1,log,pass"
SecAction "id:1,phase:1,nolog,pass,setvar:'tx.charsets=utf-8|iso-8859-1'"
SecRule ARGS:cs "!@rx ^%{tx.charsets}$" "id:2,phase:1,deny,status:415"
SecRule ARGS:q "@rx (?i)select(?!\s+ok)" "id:3,phase:1,deny"
SecRule ARGS:w "@rx ^\(\s*\)\s+{" "id:4,phase:1,deny"
"#,
    );
    let verdict = |uri: &str| {
        let mut t = Transaction::new(set.clone(), get(uri, &[]));
        t.phase(1).map(|i| i.rule)
    };
    // A macro in a pattern is expanded per transaction (CRS 3.3's 920480).
    assert_eq!(verdict("/?cs=utf-8"), None);
    assert_eq!(verdict("/?cs=ibm037"), Some(2));
    // Look-ahead runs on the backtracking engine.
    assert_eq!(verdict("/?q=SELECT%20ok"), None);
    assert_eq!(verdict("/?q=SELECT%20*"), Some(3));
    // A `{` that starts no quantifier is a literal, as in PCRE (CRS 3.3's 932170).
    assert_eq!(verdict("/?w=()%20{"), Some(4));
}

#[test]
fn persistent_collections_outlive_the_transaction() {
    let set = rules(
        r#"
SecDefaultAction "phase:1,log,pass"
SecAction "id:1,phase:1,nolog,pass,initcol:ip=%{remote_addr},initcol:global=global"
SecAction "id:2,phase:1,nolog,pass,setvar:ip.hits=+1,expirevar:ip.hits=60,setvar:global.seen=+1"
SecRule IP:hits "@gt 3" "id:3,phase:1,deny,status:429,msg:'%{ip.hits} requests'"
"#,
    );
    let store = std::sync::Arc::new(rampart_seclang::persist::Store::default());
    let from = |ip: &str, now_ms: u64| {
        let mut req = get("/", &[]);
        req.remote_addr = Some(ip.parse().unwrap());
        let mut t = Transaction::new(set.clone(), req);
        t.set_persistence(store.clone(), now_ms);
        let refused = t.phase(1).map(|i| i.status);
        (refused, t.matched().last().map(|m| m.msg.clone()))
    };
    for i in 0..3 {
        assert_eq!(from("192.0.2.1", i * 1000).0, None, "request {i}");
    }
    assert_eq!(
        from("192.0.2.1", 4_000),
        (Some(429), Some("4 requests".to_owned()))
    );
    // Another address has its own record; the global one counts everybody.
    assert_eq!(from("192.0.2.2", 5_000).0, None);
    let mut t = Transaction::new(set.clone(), get("/", &[]));
    t.set_persistence(store.clone(), 6_000);
    t.phase(1);
    assert_eq!(t.expand("%{global.seen}"), "6");
    // 60 s after the last increment the counter has expired.
    assert_eq!(from("192.0.2.1", 70_000).0, None);
    // Without a store, initcol opens nothing and the rules see no counter.
    let mut t = Transaction::new(set, get("/", &[]));
    assert!(t.phase(1).is_none());
    assert_eq!(t.expand("%{ip.hits}"), "");
}

/// The prefilter skips a rule only when none of its literals is in its collections' values
/// as the rule transforms them (the whole CRS regression suite checks it at scale).
#[test]
fn the_prefilter_sees_transformed_values() {
    let set = rules(
        r#"
SecDefaultAction "phase:1,log,pass"
SecRule ARGS "@rx <script" "id:1,phase:1,t:none,t:urlDecodeUni,t:lowercase,deny"
SecRule REQUEST_HEADERS|ARGS_NAMES "@pm evil wicked" "id:2,phase:1,t:none,deny"
"#,
    );
    assert!(set.rules.iter().all(|r| r.prefilter.is_some()));
    let verdict = |uri: &str, headers: &[(&str, &str)]| {
        let mut t = Transaction::new(set.clone(), get(uri, headers));
        t.phase(1).map(|i| i.rule)
    };
    assert_eq!(verdict("/?q=hello", &[]), None);
    // Only the decoded, lowercased value holds the literal.
    assert_eq!(verdict("/?q=%253CSCRIPT%253E", &[]), Some(1));
    assert_eq!(verdict("/?q=x", &[("X-Note", "so Wicked")]), Some(2));
    assert_eq!(verdict("/?evil=1", &[]), Some(2));
}
