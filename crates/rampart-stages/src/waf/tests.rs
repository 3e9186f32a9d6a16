use std::net::SocketAddr;
use std::sync::Arc;

use rampart_core::{
    CompileCx, Decision, Enforcement, Exchange, FindingAction, Pipeline, Principal, Reason, Slot,
    Stage, StageId, Verdict,
};
use rampart_rules::{List, Lists};

use super::*;

fn rule(id: &str, when: &str, action: CustomAction) -> CustomRuleConfig {
    CustomRuleConfig {
        id: id.to_owned(),
        description: String::new(),
        when: when.to_owned(),
        action,
        skip: Vec::new(),
        status: None,
        enforcement: None,
        phase: None,
        tags: Vec::new(),
    }
}

fn lists() -> Lists {
    let mut l = Lists::new();
    l.insert(
        "scanners".to_owned(),
        List::from_entries(&["198.51.100.0/24".to_owned()]).unwrap(),
    );
    l
}

fn compile(rules: Vec<CustomRuleConfig>) -> Result<Arc<CustomRules>, Vec<String>> {
    let ids: Vec<String> = rules.iter().map(|r| r.id.clone()).collect();
    let section = WafConfig {
        enforcement: Enforcement::Enforce,
        custom: rules,
        crs: None,
    };
    let mut cx = CompileCx::new();
    let r = cx.at("waf", |cx| {
        CustomRules::compile(&section, &lists(), &ids, cx)
    });
    r.map(Arc::new).ok_or_else(|| {
        cx.diagnostics()
            .iter()
            .map(|d| format!("{d} @{:?}", d.value_span))
            .collect()
    })
}

fn exchange(ip: &str) -> Exchange {
    let addr = SocketAddr::new(ip.parse().unwrap(), 1234);
    Exchange::new(
        "r".into(),
        rampart_core::Peer {
            addr,
            listener: Arc::from("l"),
            tls: None,
        },
        0,
    )
}

fn head(uri: &str) -> http::request::Parts {
    http::Request::get(uri)
        .header("user-agent", "scanner/1.0")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

#[test]
fn block_log_and_monitor() {
    let mut monitored = rule(
        "mon",
        r#"http.request.uri.path == "/m""#,
        CustomAction::Block,
    );
    monitored.enforcement = Some(Enforcement::Monitor);
    let mut blocking = rule(
        "legacy",
        r#"starts_with(http.request.uri.path, "/legacy")"#,
        CustomAction::Block,
    );
    blocking.status = Some(410);
    blocking.description = "legacy API is gone".to_owned();
    let set = compile(vec![
        rule(
            "ua",
            r#"http.request.headers["user-agent"] contains "scanner""#,
            CustomAction::Log,
        ),
        monitored,
        blocking,
    ])
    .unwrap();
    let stage = CustomRulesStage::early(&[set]).unwrap();
    assert!(stage.phases().contains(rampart_core::Phases::REQUEST_HEAD));
    assert!(!stage.phases().contains(rampart_core::Phases::REQUEST_BODY));

    let mut x = exchange("192.0.2.1");
    let d = stage
        .on_request_head(&mut head("/legacy/x"), &mut x)
        .unwrap();
    let Decision::Block(b) = d else {
        panic!("should block")
    };
    assert_eq!((b.status.as_u16(), b.reason), (410, Reason::WafRuleMatch));
    assert_eq!(b.rule.unwrap().as_str(), "legacy");
    assert_eq!(b.detail, "legacy API is gone");
    assert_eq!(x.findings.len(), 1);
    assert_eq!(x.findings[0].action, FindingAction::Log);

    let mut x = exchange("192.0.2.1");
    let d = stage.on_request_head(&mut head("/m"), &mut x).unwrap();
    assert_eq!(d, Decision::Continue);
    let actions: Vec<_> = x
        .findings
        .iter()
        .map(|f| (f.rule.clone().unwrap().0.to_string(), f.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("ua".to_owned(), FindingAction::Log),
            ("mon".to_owned(), FindingAction::WouldBlock)
        ]
    );
}

#[test]
fn skip_switches_off_later_rules_and_stages() {
    let mut trusted = rule("trusted", "ip.src in $scanners", CustomAction::Skip);
    trusted.skip = vec!["block-all".to_owned(), "waf.crs".to_owned()];
    let set = compile(vec![
        trusted,
        rule("block-all", "true", CustomAction::Block),
    ])
    .unwrap();
    let stage = CustomRulesStage::early(&[set]).unwrap();

    let mut x = exchange("198.51.100.7");
    assert_eq!(
        stage.on_request_head(&mut head("/"), &mut x).unwrap(),
        Decision::Continue
    );
    assert!(x.skips_stage(StageId("waf.crs")));
    assert!(x.skips_rule("block-all"));

    let mut x = exchange("192.0.2.1");
    assert!(matches!(
        stage.on_request_head(&mut head("/"), &mut x).unwrap(),
        Decision::Block(_)
    ));

    // Skipping `waf.custom` stops the rest of the custom rules, in this phase and later ones.
    let mut skip_all = rule("skip-all", "ip.src in $scanners", CustomAction::Skip);
    skip_all.skip = vec!["waf.custom".to_owned()];
    let set = compile(vec![
        skip_all,
        rule("block-all", "true", CustomAction::Block),
    ])
    .unwrap();
    let stage: Arc<dyn Stage> = Arc::new(CustomRulesStage::early(&[set]).unwrap());
    let pipeline = Pipeline::new(vec![Slot {
        stage,
        enforcement: Enforcement::Enforce,
        on_error: rampart_core::OnError::Deny,
    }]);
    let mut x = exchange("198.51.100.7");
    let v = futures_lite_block_on(pipeline.request_head(&mut head("/"), &mut x));
    assert_eq!(v, Verdict::Forward);
}

/// Runs a future that never waits (the pipeline's sync stages).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a sync pipeline waited"),
    }
}

#[test]
fn phases_are_inferred() {
    let set = compile(vec![
        rule(
            "body",
            r#"http.request.body.raw contains "x""#,
            CustomAction::Block,
        ),
        rule("rsp", "http.response.code >= 500", CustomAction::Block),
        rule(
            "who",
            r#"identity.consumer == "mallory""#,
            CustomAction::Block,
        ),
    ])
    .unwrap();
    let early = CustomRulesStage::early(std::slice::from_ref(&set)).unwrap();
    use rampart_core::Phases;
    assert!(early.phases().contains(Phases::REQUEST_BODY));
    assert!(early.phases().contains(Phases::RESPONSE_HEAD));
    assert!(!early.phases().contains(Phases::REQUEST_HEAD));
    let late = CustomRulesStage::after_auth(&[set]).unwrap();
    assert_eq!(late.phases(), Phases::REQUEST_HEAD);

    let mut x = exchange("192.0.2.1");
    x.principal = Some(Principal {
        consumer: Some("mallory".to_owned()),
        ..Principal::default()
    });
    assert!(matches!(
        late.on_request_head(&mut head("/"), &mut x).unwrap(),
        Decision::Block(_)
    ));
    let mut x = exchange("192.0.2.1");
    let mut body = bytes::Bytes::from_static(b"xyz");
    assert!(matches!(
        early
            .on_request_body(&head("/"), &mut body, &mut x)
            .unwrap(),
        Decision::Block(_)
    ));
    let mut rsp = http::Response::builder()
        .status(502)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let mut x = exchange("192.0.2.1");
    assert!(matches!(
        early
            .on_response_head(&head("/"), &mut rsp, &mut x)
            .unwrap(),
        Decision::Block(_)
    ));
    // A rule whose fields exist only later never runs early: only header rules would.
    assert!(CustomRulesStage::early(&[compile(vec![rule(
        "who",
        r#"identity.consumer == "x""#,
        CustomAction::Log
    )])
    .unwrap()])
    .is_none());
}

#[test]
fn config_problems_are_all_reported() {
    let mut bad_skip = rule("s", "true", CustomAction::Skip);
    bad_skip.skip = vec!["waf.crss".to_owned(), "authn".to_owned()];
    let mut bad_status = rule("b", "true", CustomAction::Log);
    bad_status.status = Some(404);
    let mut bad_phase = rule("p", r#"http.request.body.raw == "x""#, CustomAction::Block);
    bad_phase.phase = Some("request_head".to_owned());
    let errs = compile(vec![
        rule("u", r#"http.request.uri.pth == "/""#, CustomAction::Block),
        bad_skip,
        bad_status,
        bad_phase,
    ])
    .unwrap_err();
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(errs[0].contains("waf.custom[0].when: unknown field \"http.request.uri.pth\" (did you mean \"http.request.uri.path\"?) @Some((0, 20))"), "{}", errs[0]);
    assert!(
        errs[1].contains("waf.custom[1].skip[0]") && errs[1].contains("did you mean \"waf.crs\"?"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].contains("waf.custom[1].skip[1]") && errs[2].contains("neither a stage"),
        "{}",
        errs[2]
    );
    assert!(errs[3].contains("waf.custom[2].status"), "{}", errs[3]);
    assert!(
        errs[4].contains("waf.custom[3].phase") && errs[4].contains("http.request.body.raw"),
        "{}",
        errs[4]
    );
}
