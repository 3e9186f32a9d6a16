#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use rampart_core::CompileCx;
use rampart_dlp::Detector;

use super::config::MediaPattern;
use super::{Action, Dlp, DlpConfig};

fn compile(yaml: &str) -> (Option<std::sync::Arc<Dlp>>, Vec<(String, String)>) {
    let c: DlpConfig = serde_json::from_value(yaml_to_json(yaml)).unwrap();
    let mut cx = CompileCx::new();
    let d = Dlp::compile(&c, Path::new("."), &mut cx);
    let diags = cx
        .diagnostics()
        .iter()
        .map(|d| (d.path.clone(), d.message.clone()))
        .collect();
    (d, diags)
}

fn yaml_to_json(yaml: &str) -> serde_json::Value {
    rampart_core::yaml::parse(yaml).unwrap().to_json()
}

#[test]
fn actions_resolve_detector_over_profile_over_default() {
    let (d, diags) = compile("action: log\nactions: { pci: mask, secrets: block, jwt: log }");
    assert!(diags.is_empty(), "{diags:?}");
    let d = d.unwrap();
    let r = &d.response;
    assert_eq!(r.action(Detector::PaymentCard), Action::Mask);
    assert_eq!(r.action(Detector::AwsAccessKey), Action::Block);
    assert_eq!(r.action(Detector::Jwt), Action::Log);
    assert_eq!(r.action(Detector::Email), Action::Log);
    assert!(r.any_block && r.any_mask);
    assert!(d.request.is_none());
}

#[test]
fn every_error_is_reported_with_its_path() {
    let (d, diags) = compile(
        "profiles: [pci, pi]\ndisable: [emial]\nactions: { secret: block }\ncontent_types: ['json']\nmax_buffer_bytes: 0\ncustom:\n  - { name: a, regex: '(' }\n  - { name: b, regex: x, terms: [y] }\n  - { name: email, regex: x }\n  - { name: c, regex: x, validator: crc }",
    );
    assert!(d.is_none());
    let paths: Vec<&str> = diags.iter().map(|(p, _)| p.as_str()).collect();
    for want in [
        "profiles[1]",
        "disable[0]",
        "actions.secret",
        "content_types[0]",
        "max_buffer_bytes",
        "custom[1]",
        "custom[2].name",
        "custom[3].validator",
        "custom",
    ] {
        assert!(paths.contains(&want), "no error at {want}: {diags:#?}");
    }
    let regex = diags.iter().find(|(p, _)| p == "custom").unwrap();
    assert!(regex.1.contains("detector a: invalid regex"), "{regex:?}");
}

#[test]
fn media_patterns() {
    let p = |s: &str| {
        let c: DlpConfig =
            serde_json::from_value(serde_json::json!({ "content_types": [s] })).unwrap();
        let mut cx = CompileCx::new();
        Dlp::compile(&c, Path::new("."), &mut cx).unwrap()
    };
    let h = |v: &str| http::HeaderValue::from_str(v).unwrap();
    let json = p("application/*+json");
    assert!(json.scans(Some(&h("application/problem+json; charset=utf-8"))));
    assert!(!json.scans(Some(&h("application/json"))));
    assert!(json.scans(None), "untyped bodies are scanned by default");
    let text = p("text/*");
    assert!(text.scans(Some(&h("Text/HTML"))));
    assert!(!text.scans(Some(&h("image/png"))));
    assert_eq!(
        MediaPattern::parse_for_tests("*/json"),
        None,
        "a wildcard type with a subtype is refused"
    );
}
