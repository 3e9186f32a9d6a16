//! `rampart rules test FILE`: unit tests for a configuration's rules. Each test is a sample
//! request (optionally with its response, the client's identity and certificate) and what the
//! gateway must do with it; the request goes through the configuration's real pipeline,
//! offline (protocol checks, routing, IP rules, custom rules in every phase), and the outcome
//! is compared with the expectation.
//!
//! ```yaml
//! config: rampart.yaml            # default: rampart.yaml beside this file
//! tests:
//!   - name: sqlmap is blocked
//!     request: { uri: /v1/users, headers: { user-agent: sqlmap/1.7 } }
//!     expect: { action: block, rule: no-sqlmap, status: 403 }
//!   - name: a browser passes, and the debug flag is noticed
//!     request: { uri: "/v1/users?debug=1" }
//!     expect: { action: pass, matched: [watch-debug] }
//! ```
//!
//! Exit status: 0 when every test passes, 1 when one fails, 2 when the tests could not run (a
//! test file or configuration with problems, each reported with line and caret).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use rampart_config::Snapshot;
use rampart_core::{Diagnostic, FindingAction, Phase, TlsInfo};
use rampart_proxy::offline::{self, OfflineOutcome, OfflineRequest};
use rampart_rules::sample::Sample;
use serde::Deserialize;

use crate::print_out;

/// A test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// The configuration whose rules are tested, relative to the test file.
    #[serde(default)]
    config: Option<String>,
    /// The tests, run in order.
    tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    request: Sample,
    expect: Expect,
}

/// What the gateway must do with a request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// `block` or `pass`.
    action: Action,
    /// The status of the block.
    #[serde(default)]
    status: Option<u16>,
    /// The stage that blocks (`waf.custom`, `iprules`, `proxy`, `router`).
    #[serde(default)]
    stage: Option<String>,
    /// The rule that blocks.
    #[serde(default)]
    rule: Option<String>,
    /// The API the request is routed to.
    #[serde(default)]
    api: Option<String>,
    /// Every rule that matched, in order: blocks, logs, monitored blocks and skips alike.
    #[serde(default)]
    matched: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Action {
    Block,
    Pass,
}

/// Runs the tests of `file` against `config` (or the file's own `config`).
pub(crate) fn run(file: &Path, config: Option<&Path>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let decoded = match rampart_config::decode_str::<TestFile>(&text, &file.display().to_string()) {
        Ok(d) => d,
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(2);
        }
    };
    let problems = check(&decoded.value);
    let decoded = match decoded.check(problems) {
        Ok(d) => d,
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(2);
        }
    };
    let tests = &decoded.value;
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    let config_path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(tests.config.as_deref().unwrap_or("rampart.yaml")));
    let snapshot = match rampart_config::load_file(&config_path) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    print_out(&format!(
        "running {} test{} from {} against {}",
        tests.tests.len(),
        crate::plural(tests.tests.len()),
        file.display(),
        config_path.display()
    ));
    let mut failed = 0usize;
    for case in &tests.tests {
        let outcome = rt.block_on(run_one(&snapshot, &case.request));
        let problems = match outcome {
            Ok(out) => compare(&case.expect, &out),
            Err(e) => vec![e],
        };
        if problems.is_empty() {
            print_out(&format!("ok      {}", case.name));
        } else {
            failed += 1;
            print_out(&format!("FAILED  {}", case.name));
            for p in problems {
                print_out(&format!("        {p}"));
            }
        }
    }
    let passed = tests.tests.len() - failed;
    print_out(&format!("result: {passed} passed, {failed} failed"));
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Problems a test file can have beyond its shape, each under the path of its value.
fn check(file: &TestFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut at = |path: String, message: String| {
        out.push(Diagnostic {
            path,
            message,
            help: None,
            file: None,
            span: None,
            value_span: None,
        });
    };
    if file.tests.is_empty() {
        at("tests".to_owned(), "there are no tests".to_owned());
    }
    for (i, t) in file.tests.iter().enumerate() {
        let p = format!("tests[{i}]");
        // Point at the value at fault where it is known; the rest at the request.
        let method_ok = t
            .request
            .method
            .as_deref()
            .is_none_or(|m| http::Method::from_bytes(m.as_bytes()).is_ok());
        let uri_ok = t
            .request
            .uri
            .as_deref()
            .is_none_or(|u| u.parse::<http::Uri>().is_ok());
        if !method_ok {
            at(format!("{p}.request.method"), "invalid method".to_owned());
        }
        if !uri_ok {
            at(format!("{p}.request.uri"), "invalid URI".to_owned());
        }
        if method_ok && uri_ok {
            if let Err(e) = t.request.build() {
                at(format!("{p}.request"), format!("invalid request: {e}"));
            }
        }
        if t.request.api.is_some() {
            at(
                format!("{p}.request.api"),
                "the API is chosen by routing (host and path); check it with `expect.api`"
                    .to_owned(),
            );
        }
        if t.request.operation.is_some() || !t.request.path_params.is_empty() {
            at(
                format!("{p}.request"),
                "`operation` and `path_params` come from the API's OpenAPI schema, not from a sample"
                    .to_owned(),
            );
        }
        if t.expect.action == Action::Pass {
            for (key, set) in [
                ("status", t.expect.status.is_some()),
                ("stage", t.expect.stage.is_some()),
                ("rule", t.expect.rule.is_some()),
            ] {
                if set {
                    at(
                        format!("{p}.expect.{key}"),
                        format!("`{key}` describes a block, but the test expects `action: pass`"),
                    );
                }
            }
        }
    }
    out
}

/// Runs one sample through the pipeline.
async fn run_one(snap: &Snapshot, sample: &Sample) -> Result<OfflineOutcome, String> {
    let built = sample.build()?;
    let tls = built.cert.map(|c| {
        Arc::new(TlsInfo {
            sni: None,
            version: "TLSv1_3".to_owned(),
            alpn: None,
            client_cert: Some(c),
        })
    });
    let req = OfflineRequest {
        listener: None,
        peer: SocketAddr::new(built.client_ip, 40000),
        tls,
        request: built.request,
        body: built.body.map(Bytes::from),
        principal: built.principal,
        response: built
            .response
            .map(|r| (r, built.response_body.map(Bytes::from))),
        now_ms: 0,
    };
    Ok(offline::run(snap, req).await)
}

/// Compares an outcome with the expectation; returns one line per difference.
fn compare(want: &Expect, got: &OfflineOutcome) -> Vec<String> {
    let mut out = Vec::new();
    match (&got.blocked, want.action) {
        (None, Action::Block) => out.push("expected a block, got a pass".to_owned()),
        (Some(_), Action::Pass) => out.push("expected a pass, got a block".to_owned()),
        (Some(stop), Action::Block) => {
            let status = stop.block.status.as_u16();
            if want.status.is_some_and(|s| s != status) {
                out.push(format!(
                    "expected status {}, got {status}",
                    want.status.unwrap_or_default()
                ));
            }
            if let Some(s) = want.stage.as_deref().filter(|s| *s != stop.stage.as_str()) {
                out.push(format!("expected stage {s}, got {}", stop.stage));
            }
            let rule = stop.block.rule.as_ref().map(|r| r.as_str());
            if let Some(r) = want.rule.as_deref().filter(|r| Some(*r) != rule) {
                out.push(format!("expected rule {r}, got {}", rule.unwrap_or("none")));
            }
        }
        (None, Action::Pass) => {}
    }
    if let Some(api) = want
        .api
        .as_deref()
        .filter(|a| Some(*a) != got.api.as_deref())
    {
        out.push(format!(
            "expected API {api}, got {}",
            got.api.as_deref().unwrap_or("none (no API matched)")
        ));
    }
    if let Some(want_matched) = &want.matched {
        let matched = matched(got);
        if &matched != want_matched {
            out.push(format!(
                "expected matched [{}], got [{}]",
                want_matched.join(", "),
                matched.join(", ")
            ));
        }
    }
    if !out.is_empty() {
        out.push(format!("outcome: {}", describe(got)));
    }
    out
}

/// The rules that matched, in order.
fn matched(got: &OfflineOutcome) -> Vec<String> {
    got.findings
        .iter()
        .filter_map(|f| f.rule.as_ref().map(|r| r.as_str().to_owned()))
        .collect()
}

/// One line about an outcome: `pass; API users; matched: watch-debug`, `block at
/// request_head by waf.custom rule no-sqlmap (403 waf_rule_match); API users`.
fn describe(got: &OfflineOutcome) -> String {
    let matched = matched(got);
    let mut extra = Vec::new();
    if let Some(api) = &got.api {
        extra.push(format!("API {api}"));
    }
    if !matched.is_empty() {
        extra.push(format!("matched: {}", matched.join(", ")));
    }
    let notes = got
        .findings
        .iter()
        .filter(|f| f.rule.is_none() && f.action != FindingAction::Block)
        .map(|f| format!("{}: {}", f.stage, f.detail));
    extra.extend(notes);
    let tail: String = extra.iter().map(|e| format!("; {e}")).collect();
    match &got.blocked {
        None => format!("pass{tail}"),
        Some(stop) => {
            let rule = stop
                .block
                .rule
                .as_ref()
                .map(|r| format!(" rule {r}"))
                .unwrap_or_default();
            format!(
                "block at {} by {}{rule} ({} {}){tail}",
                phase_name(stop.phase),
                stop.stage,
                stop.block.status.as_u16(),
                stop.block.reason.code()
            )
        }
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::RequestHead => "request_head",
        Phase::RequestBody => "request_body",
        Phase::ResponseHead => "response_head",
        Phase::ResponseBody => "response_body",
        Phase::Complete => "complete",
    }
}
