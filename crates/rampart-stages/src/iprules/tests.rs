use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rampart_core::{Cidr, CompileCx, Decision, Exchange, Peer, Reason, Stage};

use super::*;

fn rules(yaml_like: &[(IpAction, &[&str], &[&str])]) -> Result<IpRules, Vec<String>> {
    let cfg: Vec<IpRuleConfig> = yaml_like
        .iter()
        .map(|(a, list, lists)| IpRuleConfig {
            id: None,
            action: *a,
            list: list.iter().map(|s| (*s).to_owned()).collect(),
            lists: lists.iter().map(|s| (*s).to_owned()).collect(),
        })
        .collect();
    let mut named = HashMap::new();
    named.insert(
        "office".to_owned(),
        vec!["203.0.113.0/24".parse::<Cidr>().unwrap()],
    );
    let mut cx = CompileCx::new();
    let r = cx.at("ip_rules", |cx| IpRules::compile(&cfg, &named, cx));
    r.ok_or_else(|| cx.diagnostics().iter().map(ToString::to_string).collect())
}

fn decide(r: &IpRules, ip: &str) -> Decision {
    let addr = SocketAddr::new(ip.parse().unwrap(), 1234);
    let mut x = Exchange::new(
        "r".into(),
        Peer {
            addr,
            listener: Arc::from("l"),
            tls: None,
        },
        0,
    );
    let mut parts = http::Request::new(()).into_parts().0;
    r.on_request_head(&mut parts, &mut x).unwrap()
}

#[test]
fn block_list_blocks_and_others_pass() {
    let r = rules(&[(IpAction::Block, &["198.51.100.0/24", "2001:db8::/32"], &[])]).unwrap();
    match decide(&r, "198.51.100.7") {
        Decision::Block(b) => {
            assert_eq!(b.reason, Reason::Forbidden);
            assert_eq!(b.rule.unwrap().as_str(), "ip-rule-1");
            assert!(b.detail.contains("198.51.100.0/24"));
        }
        Decision::Continue => panic!("should block"),
    }
    assert!(matches!(decide(&r, "2001:db8::5"), Decision::Block(_)));
    assert_eq!(decide(&r, "198.51.101.7"), Decision::Continue);
}

#[test]
fn allow_carves_an_exception_from_a_wider_block() {
    let r = rules(&[
        (IpAction::Block, &["0.0.0.0/0", "::/0"], &[]),
        (IpAction::Allow, &[], &["office"]),
    ])
    .unwrap();
    assert_eq!(decide(&r, "203.0.113.9"), Decision::Continue);
    assert!(matches!(decide(&r, "8.8.8.8"), Decision::Block(_)));
    assert!(matches!(decide(&r, "::1"), Decision::Block(_)));
}

#[test]
fn block_wins_over_allow_of_the_same_prefix() {
    let r = rules(&[
        (IpAction::Block, &["10.0.0.0/8"], &[]),
        (IpAction::Allow, &["10.0.0.0/8"], &[]),
    ])
    .unwrap();
    assert!(matches!(decide(&r, "10.1.1.1"), Decision::Block(_)));
}

#[test]
fn every_bad_entry_is_reported() {
    let errs = rules(&[(IpAction::Block, &["10.0.0.0/99", "nope"], &["ofice"])]).unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("ip_rules[0].list[0]: prefix length"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("ip_rules[0].list[1]: \"nope\""),
        "{errs:?}"
    );
    assert_eq!(
        errs[2],
        "ip_rules[0].lists[0]: unknown list \"ofice\" (did you mean \"office\"?)"
    );
}
