//! `rampart replay -c config.yaml traffic.{jsonl,har}`: recorded traffic through a
//! configuration's real pipeline, offline, with the recorded response as the upstream and the
//! recorded time as the clock.
//!
//! Each request goes through `rampart_proxy::offline` (protocol checks, routing, every stage
//! in every phase), in timestamp order (ties in file order) and on one thread, so rate limits
//! count as they did and the same inputs give a byte-identical report. What could not be
//! decided offline is reported as undecided, never as allowed. With `--baseline old.yaml`
//! each request also goes through the old configuration and the report lists the requests
//! whose decision changed. `--fail-on` turns conditions on the result into exit status 1.
//!
//! Exit status: 0 done, 1 a `--fail-on` condition was met, 2 the inputs or a configuration
//! could not be used.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use rampart_config::Snapshot;
use rampart_core::{FindingAction, Phase, Principal, Reason, TlsInfo};
use rampart_proxy::offline::{self, OfflineOutcome, OfflineRequest};
use rampart_traffic::{Entry, Format, Record};
use serde::Serialize;

use crate::print_out;

/// The command line of `rampart replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The configuration to try.
    #[arg(short, long, default_value = "rampart.yaml")]
    config: PathBuf,
    /// Recorded traffic: Rampart JSON lines (`.jsonl`) or HAR 1.2 (`.har`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The files' format.
    #[arg(long, default_value = "auto")]
    format: Format,
    /// The clock: `recorded` (each request's recorded time) or `fixed:<RFC 3339>`.
    #[arg(long, default_value = "recorded")]
    clock: String,
    /// `recorded`: the recorded responses are the upstream's answers; `none`: requests only.
    #[arg(long, default_value = "recorded")]
    responses: String,
    /// The client's address when the input has none (HAR): the socket peer of every request.
    #[arg(long, default_value = "192.0.2.1")]
    client_ip: IpAddr,
    /// Authentication: `verify` (run it; where the credentials were redacted, the recorded
    /// principal stands for it), `recorded` (always the recorded principal), `anonymous`.
    #[arg(long, default_value = "verify")]
    auth: String,
    /// An older configuration to compare with, request by request.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The report's format: `text`, `json` or `md`.
    #[arg(long, default_value = "text")]
    report: String,
    /// Write the report here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also learn from the file: the endpoints (API discovery) and rate-limit recommendations
    /// from the requests the configuration lets through.
    #[arg(long)]
    learn: bool,
    /// Exit 1 when this holds: `block` (a request was blocked), `blocked>N`, `block_rate>P%`,
    /// `change` / `changed>N` (with `--baseline`), `undecided>N`, `mismatch>N` (decisions
    /// that differ from the recorded ones). Repeatable.
    #[arg(long)]
    fail_on: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthMode {
    Verify,
    Recorded,
    Anonymous,
}

/// A condition of `--fail-on`.
#[derive(Clone, Debug, PartialEq)]
enum FailOn {
    Blocked(u64),
    BlockRate(f64),
    Changed(u64),
    Undecided(u64),
    Mismatch(u64),
}

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    let s = s.trim();
    match s {
        "block" | "blocked" => return Ok(FailOn::Blocked(0)),
        "change" | "changed" => return Ok(FailOn::Changed(0)),
        "undecided" => return Ok(FailOn::Undecided(0)),
        "mismatch" => return Ok(FailOn::Mismatch(0)),
        _ => {}
    }
    let (name, value) = s
        .split_once('>')
        .ok_or_else(|| format!("--fail-on {s:?}: expected block, change, or NAME>VALUE"))?;
    let count = || {
        value
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("--fail-on {s:?}: {value:?} is not a count"))
    };
    match name.trim() {
        "blocked" => Ok(FailOn::Blocked(count()?)),
        "changed" => Ok(FailOn::Changed(count()?)),
        "undecided" => Ok(FailOn::Undecided(count()?)),
        "mismatch" => Ok(FailOn::Mismatch(count()?)),
        "block_rate" => {
            let v = value.trim();
            let pct = v.strip_suffix('%').unwrap_or(v);
            let p: f64 = pct
                .parse()
                .map_err(|_| format!("--fail-on {s:?}: {value:?} is not a percentage"))?;
            Ok(FailOn::BlockRate(p))
        }
        other => Err(format!(
            "--fail-on {s:?}: unknown measure {other:?} (blocked, block_rate, changed, undecided, mismatch)"
        )),
    }
}

/// What a configuration decided for one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
enum Decided {
    Pass,
    Block {
        stage: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        status: u16,
        reason: String,
    },
    Undecided {
        why: String,
    },
}

impl Decided {
    fn label(&self) -> String {
        match self {
            Self::Pass => "pass".into(),
            Self::Block {
                stage,
                rule,
                status,
                ..
            } => match rule {
                Some(r) => format!("block {status} {stage} {r}"),
                None => format!("block {status} {stage}"),
            },
            Self::Undecided { why } => format!("undecided ({why})"),
        }
    }
}

/// One request's result under one configuration.
#[derive(Debug)]
struct Run {
    decided: Decided,
    api: Option<String>,
    operation: Option<String>,
    findings: Vec<(String, Option<String>, FindingAction)>,
    reached: Phase,
    principal_from_record: bool,
    response_given: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    report: &'static str,
    config: ConfigRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<ConfigRef>,
    options: Options,
    inputs: Inputs,
    fidelity: Fidelity,
    summary: Summary,
    stages: Vec<StageRow>,
    rules: Vec<RuleRow>,
    endpoints: Vec<EndpointRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<Vec<Change>>,
    mismatches: Vec<Change>,
    examples: Vec<Example>,
    #[serde(skip_serializing_if = "Option::is_none")]
    learned: Option<Vec<LearnedApi>>,
    fail_on: Vec<FailResult>,
}

#[derive(Debug, Serialize)]
struct LearnedApi {
    api: String,
    endpoints: Vec<LearnedEndpoint>,
    recommendations: Vec<LearnedRec>,
}

#[derive(Debug, Serialize)]
struct LearnedEndpoint {
    method: String,
    template: String,
    hits: u64,
}

#[derive(Debug, Serialize)]
struct LearnedRec {
    endpoint: String,
    sessions: u64,
    p50: f64,
    p99: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggested: Option<u64>,
    confidence: &'static str,
}

/// What `--learn` gathers: per API, the learner and the per-session peaks.
#[derive(Default)]
struct Learning {
    apis: BTreeMap<
        String,
        (
            rampart_discovery::Learner,
            rampart_discovery::recommend::PeakTracker,
        ),
    >,
}

impl Learning {
    /// A passed request with its recorded response; the session is the recorded consumer, else
    /// the client address.
    fn observe(&mut self, e: &Entry, run: &Run, client_ip: IpAddr) {
        let (Some(api), Some(resp)) = (&run.api, &e.record.resp) else {
            return;
        };
        if run.decided != Decided::Pass || run.operation.is_some() {
            return;
        }
        let (l, peaks) = self.apis.entry(api.clone()).or_insert_with(|| {
            (
                // A fixed key: the same file gives the same report.
                rampart_discovery::Learner::with_key(
                    rampart_discovery::Config::default(),
                    rampart_discovery::sketch::Key(0x7261_6d70, 0x0061_7274),
                ),
                rampart_discovery::recommend::PeakTracker::new(600, 250_000),
            )
        });
        let content_type = resp
            .headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map_or("", |(_, v)| v.split(';').next().unwrap_or("").trim());
        let method = e.record.req.method.as_str();
        l.observe(&rampart_discovery::Observation {
            method,
            path: &e.record.req.path,
            status: resp.status,
            content_type,
            size: resp.body.as_ref().map_or(0, |b| b.size),
        });
        if run.findings.is_empty() {
            if let Some(t) = l.template_of(method, &e.record.req.path) {
                let session = e
                    .record
                    .rampart
                    .as_ref()
                    .and_then(|m| m.principal.as_ref())
                    .and_then(|p| p.consumer.clone())
                    .or_else(|| e.record.client.as_ref().and_then(|c| c.ip.clone()))
                    .unwrap_or_else(|| client_ip.to_string());
                let h = rampart_discovery::sketch::Key(1, 2).hash(&[session.as_bytes()]);
                peaks.add(h, &format!("{method} {t}"), e.ts_ms);
            }
        }
    }

    fn report(mut self) -> Vec<LearnedApi> {
        let settings = rampart_discovery::recommend::Settings::default();
        self.apis
            .iter_mut()
            .map(|(api, (l, peaks))| {
                l.consolidate();
                let mut recommendations: Vec<LearnedRec> = peaks
                    .peaks()
                    .into_iter()
                    .map(|(endpoint, p)| {
                        let r = rampart_discovery::recommend::recommend(&p, &settings, true);
                        LearnedRec {
                            endpoint,
                            sessions: r.sessions,
                            p50: r.p50,
                            p99: r.p99,
                            suggested: r.suggested,
                            confidence: r.confidence.as_str(),
                        }
                    })
                    .collect();
                recommendations.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
                LearnedApi {
                    api: api.clone(),
                    endpoints: l
                        .endpoints()
                        .into_iter()
                        .map(|e| LearnedEndpoint {
                            method: e.method,
                            template: e.template,
                            hits: e.hits,
                        })
                        .collect(),
                    recommendations,
                }
            })
            .collect()
    }
}

#[derive(Debug, Serialize)]
struct ConfigRef {
    path: String,
    digest: String,
}

#[derive(Debug, Serialize)]
struct Options {
    clock: String,
    responses: String,
    client_ip: String,
    auth: String,
}

#[derive(Debug, Serialize)]
struct Inputs {
    files: Vec<FileRow>,
    entries: usize,
    skipped: Vec<SkippedRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
}

#[derive(Debug, Serialize)]
struct FileRow {
    path: String,
    entries: usize,
    skipped: usize,
}

#[derive(Debug, Serialize)]
struct SkippedRow {
    source: String,
    why: String,
}

#[derive(Debug, Serialize)]
struct Fidelity {
    /// What a replay cannot do at all, whatever the input.
    not_replayable: Vec<Note>,
    /// How each configured stage was replayed.
    stages: Vec<StageFidelity>,
    /// What this input lacked, with how many requests it touched.
    notes: Vec<CountedNote>,
}

#[derive(Debug, Serialize)]
struct Note {
    part: &'static str,
    why: &'static str,
}

#[derive(Debug, Serialize)]
struct StageFidelity {
    api: String,
    stage: String,
    replay: &'static str,
    note: &'static str,
}

#[derive(Debug, Serialize)]
struct CountedNote {
    note: String,
    requests: u64,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    requests: u64,
    passed: u64,
    blocked: u64,
    undecided: u64,
    /// Requests with a monitor-mode block (`would_block`).
    would_block: u64,
    /// Blocked although the upstream had answered 2xx: the best sign of a false positive.
    blocked_2xx: u64,
    block_rate_percent: f64,
}

#[derive(Debug, Default, Serialize)]
struct StageRow {
    stage: String,
    block: u64,
    would_block: u64,
    log: u64,
    mask: u64,
}

#[derive(Debug, Serialize)]
struct RuleRow {
    stage: String,
    rule: String,
    hits: u64,
    block: u64,
    would_block: u64,
}

#[derive(Debug, Default, Serialize)]
struct EndpointRow {
    api: String,
    endpoint: String,
    requests: u64,
    blocked: u64,
    would_block: u64,
    undecided: u64,
    blocked_2xx: u64,
}

#[derive(Debug, Serialize)]
struct Change {
    index: usize,
    source: String,
    request_id: String,
    request: String,
    before: String,
    after: String,
}

#[derive(Debug, Serialize)]
struct Example {
    index: usize,
    source: String,
    request_id: String,
    request: String,
    decision: String,
}

#[derive(Debug, Serialize)]
struct FailResult {
    condition: String,
    met: bool,
    value: String,
}

/// How many examples and changes the text and Markdown reports list (JSON has them all).
const SHOWN: usize = 20;

/// Runs `rampart replay`.
pub(crate) fn run(args: &Args) -> ExitCode {
    match replay(args) {
        Ok((report, failed)) => {
            let text = match args.report.as_str() {
                "json" => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
                "md" => markdown(&report),
                _ => text(&report),
            };
            match &args.out {
                Some(p) => {
                    if let Err(e) = std::fs::write(p, text) {
                        eprintln!("error: cannot write {}: {e}", p.display());
                        return ExitCode::from(2);
                    }
                }
                None => print_out(text.trim_end()),
            }
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprint!("{e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(2)
        }
    }
}

fn load(path: &Path) -> Result<(Snapshot, ConfigRef), String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    let snap = rampart_config::load_file(path).map_err(|e| e.render())?;
    Ok((
        snap,
        ConfigRef {
            path: path.display().to_string(),
            digest: format!("sha256:{}", rampart_traffic::sha256_hex(&bytes)),
        },
    ))
}

fn replay(args: &Args) -> Result<(Report, bool), String> {
    let fail_on = args
        .fail_on
        .iter()
        .map(|s| parse_fail_on(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("error: {e}"))?;
    let auth = match args.auth.as_str() {
        "verify" => AuthMode::Verify,
        "recorded" => AuthMode::Recorded,
        "anonymous" => AuthMode::Anonymous,
        a => {
            return Err(format!(
                "error: --auth {a:?}: verify, recorded or anonymous"
            ))
        }
    };
    let fixed_clock = match args.clock.as_str() {
        "recorded" => None,
        c => match c.strip_prefix("fixed:") {
            Some(t) => {
                Some(rampart_traffic::parse_ts_ms(t).map_err(|e| format!("error: --clock: {e}"))?)
            }
            None => {
                return Err(format!(
                    "error: --clock {c:?}: recorded or fixed:<RFC 3339>"
                ))
            }
        },
    };
    let with_responses = match args.responses.as_str() {
        "recorded" => true,
        "none" => false,
        r => return Err(format!("error: --responses {r:?}: recorded or none")),
    };
    if !matches!(args.report.as_str(), "text" | "json" | "md") {
        return Err(format!(
            "error: --report {:?}: text, json or md",
            args.report
        ));
    }
    if fail_on.iter().any(|f| matches!(f, FailOn::Changed(_))) && args.baseline.is_none() {
        return Err("error: --fail-on change needs --baseline".into());
    }

    let (snap, config) = load(&args.config)?;
    let baseline = match &args.baseline {
        Some(p) => Some(load(p)?),
        None => None,
    };

    // Every file first: a file that cannot be read stops the replay before anything runs.
    let mut entries: Vec<Entry> = Vec::new();
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for f in &args.files {
        let t = rampart_traffic::read_file(f, args.format).map_err(|e| format!("error: {e}"))?;
        files.push(FileRow {
            path: f.display().to_string(),
            entries: t.entries.len(),
            skipped: t.skipped.len(),
        });
        skipped.extend(t.skipped.into_iter().map(|s| SkippedRow {
            source: s.source,
            why: s.why,
        }));
        entries.extend(t.entries);
    }
    // Timestamp order; the sort is stable, so ties keep file order.
    entries.sort_by_key(|e| e.ts_ms);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("error: cannot start the runtime: {e}"))?;

    let mut summary = Summary::default();
    let mut stages: BTreeMap<String, StageRow> = BTreeMap::new();
    let mut rules: BTreeMap<(String, String), RuleRow> = BTreeMap::new();
    let mut endpoints: BTreeMap<(String, String), EndpointRow> = BTreeMap::new();
    let mut notes: BTreeMap<String, u64> = BTreeMap::new();
    let mut changed = Vec::new();
    let mut mismatches = Vec::new();
    let mut examples = Vec::new();

    let mut learning = args.learn.then(Learning::default);
    for (index, e) in entries.iter().enumerate() {
        let now_ms = fixed_clock.unwrap_or(e.ts_ms);
        let opts = RunOpts {
            client_ip: args.client_ip,
            auth,
            with_responses,
            now_ms,
        };
        let mut run = rt.block_on(run_one(&snap, e, &opts));
        let recorded = recorded_decision(&e.record);
        if let Some(rec) = &recorded {
            // The recorder masked sensitive data in a body: the stages that read it saw the
            // mask, not the data. Where that changes the decision, it is not a decision.
            let masked = e
                .record
                .redactions
                .iter()
                .any(|x| x.where_.ends_with(".body") && x.how.contains("mask"));
            if masked && !same_outcome(rec, &run.decided) {
                run.decided = Decided::Undecided {
                    why: "the recorder masked sensitive data in a body, and the stages reading it decided otherwise on the mask".into(),
                };
            }
        }
        let request = describe(&e.record);
        let request_id = e.record.id.clone();

        summary.requests += 1;
        let upstream_2xx = e.record.resp.as_ref().is_some_and(|r| {
            r.source.as_deref() != Some("gateway") && (200..300).contains(&r.status)
        });
        let api = run.api.clone().unwrap_or_else(|| "(no API)".into());
        let endpoint = match &run.operation {
            Some(op) => op.clone(),
            None => format!("{} {}", e.record.req.method, e.record.req.path),
        };
        let row = endpoints
            .entry((api.clone(), endpoint.clone()))
            .or_insert_with(|| EndpointRow {
                api,
                endpoint,
                ..EndpointRow::default()
            });
        row.requests += 1;
        match &run.decided {
            Decided::Pass => summary.passed += 1,
            Decided::Block { .. } => {
                summary.blocked += 1;
                row.blocked += 1;
                if upstream_2xx {
                    summary.blocked_2xx += 1;
                    row.blocked_2xx += 1;
                }
            }
            Decided::Undecided { why } => {
                summary.undecided += 1;
                row.undecided += 1;
                *notes.entry(format!("undecided: {why}")).or_default() += 1;
            }
        }
        if run
            .findings
            .iter()
            .any(|f| f.2 == FindingAction::WouldBlock)
        {
            summary.would_block += 1;
            row.would_block += 1;
        }
        // A repeated block (a rate limit's later refusals) records no finding; it is still a
        // block by its rule.
        let mut counted = run.findings.clone();
        if let Decided::Block { stage, rule, .. } = &run.decided {
            let found = counted
                .iter()
                .any(|(s, r, a)| s == stage && r == rule && *a == FindingAction::Block);
            if !found {
                counted.push((stage.clone(), rule.clone(), FindingAction::Block));
            }
        }
        for (stage, rule, action) in &counted {
            let s = stages.entry(stage.clone()).or_insert_with(|| StageRow {
                stage: stage.clone(),
                ..StageRow::default()
            });
            match action {
                FindingAction::Block => s.block += 1,
                FindingAction::WouldBlock => s.would_block += 1,
                FindingAction::Log => s.log += 1,
                FindingAction::Mask => s.mask += 1,
            }
            if let Some(r) = rule {
                let rr = rules
                    .entry((stage.clone(), r.clone()))
                    .or_insert_with(|| RuleRow {
                        stage: stage.clone(),
                        rule: r.clone(),
                        hits: 0,
                        block: 0,
                        would_block: 0,
                    });
                rr.hits += 1;
                match action {
                    FindingAction::Block => rr.block += 1,
                    FindingAction::WouldBlock => rr.would_block += 1,
                    _ => {}
                }
            }
        }
        if run.principal_from_record {
            *notes
                .entry(
                    "authentication: the recorded principal stood for the redacted credentials"
                        .into(),
                )
                .or_default() += 1;
        }
        if !run.response_given && run.reached != Phase::RequestHead && run.decided == Decided::Pass
        {
            let why = if with_responses {
                "no upstream response recorded: response stages did not run"
            } else {
                "--responses none: response stages did not run"
            };
            *notes.entry(why.into()).or_default() += 1;
        }
        if e.from_har {
            *notes
                .entry(format!(
                    "HAR has no client address: {} stood for the client (X-Forwarded-For applies when the listener trusts it)",
                    args.client_ip
                ))
                .or_default() += 1;
        }
        if !matches!(run.decided, Decided::Pass) && examples.len() < 1000 {
            examples.push(Example {
                index,
                source: e.source.clone(),
                request_id: request_id.clone(),
                request: request.clone(),
                decision: run.decided.label(),
            });
        }
        // What the gateway decided when it recorded the request, where it says.
        if let Some(rec) = &recorded {
            // Undecided is counted on its own, not as a different decision.
            let undecided = matches!(run.decided, Decided::Undecided { .. });
            if !undecided && !same_outcome(rec, &run.decided) {
                mismatches.push(Change {
                    index,
                    source: e.source.clone(),
                    request_id: request_id.clone(),
                    request: request.clone(),
                    before: rec.label(),
                    after: run.decided.label(),
                });
            }
        }
        if let Some(l) = learning.as_mut() {
            l.observe(e, &run, args.client_ip);
        }
        if let Some((old, _)) = &baseline {
            let before = rt.block_on(run_one(old, e, &opts));
            if before.decided != run.decided {
                changed.push(Change {
                    index,
                    source: e.source.clone(),
                    request_id,
                    request,
                    before: before.decided.label(),
                    after: run.decided.label(),
                });
            }
        }
    }
    summary.block_rate_percent = if summary.requests == 0 {
        0.0
    } else {
        (summary.blocked as f64 * 10_000.0 / summary.requests as f64).round() / 100.0
    };

    let mut rules: Vec<RuleRow> = rules.into_values().collect();
    rules.sort_by(|a, b| {
        b.hits
            .cmp(&a.hits)
            .then_with(|| (&a.stage, &a.rule).cmp(&(&b.stage, &b.rule)))
    });
    let mut endpoints: Vec<EndpointRow> = endpoints.into_values().collect();
    endpoints.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| (&a.api, &a.endpoint).cmp(&(&b.api, &b.endpoint)))
    });

    let fail_results: Vec<FailResult> = fail_on
        .iter()
        .map(|f| {
            let (cond, met, value) = match f {
                FailOn::Blocked(n) => (
                    format!("blocked>{n}"),
                    summary.blocked > *n,
                    summary.blocked.to_string(),
                ),
                FailOn::BlockRate(p) => (
                    format!("block_rate>{p}%"),
                    summary.block_rate_percent > *p,
                    format!("{}%", summary.block_rate_percent),
                ),
                FailOn::Changed(n) => (
                    format!("changed>{n}"),
                    changed.len() as u64 > *n,
                    changed.len().to_string(),
                ),
                FailOn::Undecided(n) => (
                    format!("undecided>{n}"),
                    summary.undecided > *n,
                    summary.undecided.to_string(),
                ),
                FailOn::Mismatch(n) => (
                    format!("mismatch>{n}"),
                    mismatches.len() as u64 > *n,
                    mismatches.len().to_string(),
                ),
            };
            FailResult {
                condition: cond,
                met,
                value,
            }
        })
        .collect();
    let failed = fail_results.iter().any(|f| f.met);

    let report = Report {
        report: "rampart-replay/1",
        config,
        baseline: baseline.map(|(_, r)| r),
        options: Options {
            clock: args.clock.clone(),
            responses: args.responses.clone(),
            client_ip: args.client_ip.to_string(),
            auth: args.auth.clone(),
        },
        inputs: Inputs {
            files,
            entries: entries.len(),
            skipped,
            from: entries
                .first()
                .map(|e| rampart_traffic::format_ts_us(e.ts_ms * 1000)),
            to: entries
                .last()
                .map(|e| rampart_traffic::format_ts_us(e.ts_ms * 1000)),
        },
        fidelity: Fidelity {
            not_replayable: NOT_REPLAYABLE
                .iter()
                .map(|(part, why)| Note { part, why })
                .collect(),
            stages: stage_fidelity(&snap),
            notes: notes
                .into_iter()
                .map(|(note, requests)| CountedNote { note, requests })
                .collect(),
        },
        summary,
        stages: stages.into_values().collect(),
        rules,
        endpoints,
        changed: args.baseline.as_ref().map(|_| changed),
        mismatches,
        examples,
        learned: learning.map(Learning::report),
        fail_on: fail_results,
    };
    Ok((report, failed))
}

/// What no replay can reproduce: it has requests, not connections.
const NOT_REPLAYABLE: &[(&str, &str)] = &[
    (
        "connection caps (global and per IP)",
        "a replay has no connections",
    ),
    (
        "header read timeout, minimum body rate (slowloris)",
        "a replay has no network timing",
    ),
    (
        "HTTP/2 stream limits and the rapid-reset guard",
        "a replay has no HTTP/2 connections",
    ),
    (
        "TLS handshake and client-certificate chain validation",
        "the recorded identity stands for a verified certificate",
    ),
    (
        "load shedding (in-flight requests)",
        "a replay runs one request at a time",
    ),
];

/// How each configured stage is replayed.
fn stage_fidelity(snap: &Snapshot) -> Vec<StageFidelity> {
    let mut out = Vec::new();
    for api in &snap.apis {
        for slot in api.pipeline.slots() {
            let stage = slot.stage.id().as_str();
            let (replay, note) = classify(stage);
            out.push(StageFidelity {
                api: api.name.to_string(),
                stage: stage.to_owned(),
                replay,
                note,
            });
        }
    }
    out
}

fn classify(stage: &str) -> (&'static str, &'static str) {
    match stage {
        "iprules" => ("with_inputs", "on the recorded client address (HAR: --client-ip and trusted X-Forwarded-For)"),
        "ddos" => (
            "with_inputs",
            "the per-client request guard and bans on the recorded address and clock; connection-level limits are not replayable",
        ),
        "ratelimit" => ("replayable", "in timestamp order, on the recorded clock, in memory (a Redis store is replayed in memory)"),
        "authn" => (
            "with_inputs",
            "verified when the credentials are in the input; redacted credentials: the recorded principal; introspection and URL key sets cannot be reached offline: undecided",
        ),
        "authz" => ("with_inputs", "given the principal authentication found or the recorded one"),
        "waf.custom" | "waf.crs" => ("replayable", "on the recorded request and response"),
        "schema" | "schema.route" => ("replayable", "response checks need a recorded response"),
        "dlp" => ("replayable", "on recorded response bodies (HAR bodies are decoded: compressed paths are not exercised)"),
        _ => ("replayable", ""),
    }
}

struct RunOpts {
    client_ip: IpAddr,
    auth: AuthMode,
    with_responses: bool,
    now_ms: u64,
}

/// One entry through one configuration.
async fn run_one(snap: &Snapshot, e: &Entry, o: &RunOpts) -> Run {
    let r = &e.record;
    let mut undecided_why = None;
    let request = match build_request(r) {
        Ok(req) => req,
        Err(why) => {
            return Run {
                decided: Decided::Undecided {
                    why: format!("the recorded request cannot be rebuilt: {why}"),
                },
                api: None,
                operation: None,
                findings: Vec::new(),
                reached: Phase::RequestHead,
                principal_from_record: false,
                response_given: false,
            }
        }
    };
    let read_failed = r
        .req
        .body
        .as_ref()
        .is_some_and(|b| b.omitted.as_deref() == Some("read_failed"));
    let body = match r.req.body.as_ref().map(rampart_traffic::Body::bytes) {
        Some(Ok(Some(b))) => {
            if r.req.body.as_ref().is_some_and(|b| !b.is_whole()) {
                undecided_why = Some("the request body was not recorded whole".to_owned());
            }
            Some(Bytes::from(b))
        }
        Some(Ok(None)) => {
            undecided_why = Some("the request body was not recorded".to_owned());
            None
        }
        Some(Err(_)) | None => None,
    };
    let redacted_credentials = r
        .redactions
        .iter()
        .any(|x| x.where_.starts_with("req.header:") || x.where_.starts_with("req.query:"));
    let recorded_principal = r.rampart.as_ref().and_then(|m| m.principal.as_ref());
    let principal = match o.auth {
        AuthMode::Anonymous => None,
        AuthMode::Recorded => recorded_principal.map(principal_of),
        AuthMode::Verify if redacted_credentials => recorded_principal.map(principal_of),
        AuthMode::Verify => None,
    };
    let principal_from_record = principal.is_some() && redacted_credentials;
    let response = if o.with_responses {
        r.resp
            .as_ref()
            .filter(|s| s.source.as_deref() != Some("gateway"))
            .and_then(build_response)
    } else {
        None
    };
    let response_given = response.is_some();
    let peer_ip = r
        .client
        .as_ref()
        .and_then(|c| c.ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .unwrap_or(o.client_ip);
    let port = r.client.as_ref().and_then(|c| c.port).unwrap_or(0);
    let tls = r.client.as_ref().and_then(|c| c.tls.as_ref()).map(|t| {
        Arc::new(TlsInfo {
            sni: t.sni.clone(),
            version: t.version.clone().unwrap_or_default(),
            alpn: t.alpn.clone(),
            client_cert: t.client_cert.as_ref().map(|c| rampart_core::ClientCert {
                subject: c.subject.clone(),
                sans: c.san.clone(),
                fingerprint_sha256: c.sha256.clone().unwrap_or_default(),
                ..rampart_core::ClientCert::default()
            }),
        })
    });
    let listener = snap
        .listeners
        .iter()
        .find(|l| l.tls.is_some() == (r.req.scheme.as_deref() == Some("https") || tls.is_some()))
        .map(|l| l.name.to_string());
    let out = offline::run(
        snap,
        OfflineRequest {
            listener,
            peer: SocketAddr::new(peer_ip, port),
            tls,
            request,
            body,
            principal,
            response,
            now_ms: o.now_ms,
        },
    )
    .await;
    // A body that was not recorded matters only where a stage reads bodies.
    let body_stages = out
        .api
        .as_ref()
        .and_then(|n| snap.apis.iter().find(|a| &a.name == n))
        .is_some_and(|a| a.pipeline.needs_request_body());
    let undecided_why = undecided_why.filter(|_| body_stages);
    let recorded_authn_block = r.rampart.as_ref().is_some_and(|m| {
        m.decisions
            .iter()
            .any(|d| d.stage == "authn" && d.outcome == "block")
    });
    let mut run = decide(
        out,
        redacted_credentials,
        recorded_authn_block,
        principal_from_record,
        response_given,
        undecided_why,
    );
    if read_failed {
        run.decided = Decided::Undecided {
            why: "the request body could not be read live (too slow, too large or cut off): a connection-level failure a replay cannot reproduce".into(),
        };
    }
    run
}

fn decide(
    out: OfflineOutcome,
    redacted_credentials: bool,
    recorded_authn_block: bool,
    principal_from_record: bool,
    response_given: bool,
    undecided_why: Option<String>,
) -> Run {
    let findings = out
        .findings
        .iter()
        .map(|f| {
            (
                f.stage.as_str().to_owned(),
                f.rule.as_ref().map(|r| r.to_string()),
                f.action,
            )
        })
        .collect();
    let decided = match &out.blocked {
        None => match undecided_why {
            // A body stage passed a body it never saw: not a decision.
            Some(why) if out.reached >= Phase::RequestBody => Decided::Undecided { why },
            _ => Decided::Pass,
        },
        Some(s) => {
            let stage = s.stage.as_str();
            if stage == "authn" && redacted_credentials && !principal_from_record {
                if recorded_authn_block {
                    // The gateway refused these credentials when it recorded them: that
                    // refusal is the input here, as a recorded principal is for a success.
                    Decided::Block {
                        stage: stage.to_owned(),
                        rule: s.block.rule.as_ref().map(|r| r.to_string()),
                        status: s.block.status.as_u16(),
                        reason: s.block.reason.code().to_owned(),
                    }
                } else {
                    Decided::Undecided {
                        why: "the credentials were redacted and no principal was recorded".into(),
                    }
                }
            } else if stage == "authn" && s.block.reason == Reason::Unavailable {
                Decided::Undecided {
                    why: "authentication needs a service a replay cannot reach (key set URL, introspection)".into(),
                }
            } else {
                Decided::Block {
                    stage: stage.to_owned(),
                    rule: s.block.rule.as_ref().map(|r| r.to_string()),
                    status: s.block.status.as_u16(),
                    reason: s.block.reason.code().to_owned(),
                }
            }
        }
    };
    Run {
        decided,
        api: out.api.map(|a| a.to_string()),
        operation: out.operation.map(|o| o.to_string()),
        findings,
        reached: out.reached,
        principal_from_record,
        response_given,
    }
}

fn principal_of(p: &rampart_traffic::record::RecordedPrincipal) -> Principal {
    Principal {
        consumer: p.consumer.clone(),
        groups: p.groups.clone(),
        method: p.method.clone(),
        claims: p.claims.clone(),
        scopes: p.scopes.clone(),
    }
}

fn build_request(r: &Record) -> Result<http::request::Parts, String> {
    let target = match &r.req.query {
        Some(q) => format!("{}?{q}", r.req.path),
        None => r.req.path.clone(),
    };
    let version = match r.req.version.as_deref() {
        Some("HTTP/2") => http::Version::HTTP_2,
        Some("HTTP/1.0") => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let mut b = http::Request::builder()
        .method(r.req.method.as_str())
        .uri(target.as_str())
        .version(version);
    let has_host = r.req.headers.iter().any(|(n, _)| n == "host");
    if !has_host {
        if let Some(a) = &r.req.authority {
            b = b.header(http::header::HOST, a.as_str());
        }
    }
    for (n, v) in &r.req.headers {
        b = b.header(n.as_str(), v.as_str());
    }
    b.body(())
        .map(|r| r.into_parts().0)
        .map_err(|e| e.to_string())
}

fn build_response(
    s: &rampart_traffic::record::Response,
) -> Option<(http::response::Parts, Option<Bytes>)> {
    let mut b = http::Response::builder().status(s.status);
    // A body stored decoded (HAR, or decoded by the recorder to mask it) is no longer what
    // the coding and length headers describe.
    let decoded = s.body.as_ref().is_some_and(|b| b.enc == "identity")
        && s.headers
            .iter()
            .any(|(n, v)| n == "content-encoding" && v != "identity");
    for (n, v) in &s.headers {
        if decoded && (n == "content-encoding" || n == "content-length") {
            continue;
        }
        b = b.header(n.as_str(), v.as_str());
    }
    let parts = b.body(()).ok()?.into_parts().0;
    let body = match s.body.as_ref().map(rampart_traffic::Body::bytes) {
        Some(Ok(Some(bytes))) if s.body.as_ref().is_some_and(rampart_traffic::Body::is_whole) => {
            Some(Bytes::from(bytes))
        }
        _ => None,
    };
    Some((parts, body))
}

/// The decision recorded with the request, when the record has one.
fn recorded_decision(r: &Record) -> Option<Decided> {
    let m = r.rampart.as_ref()?;
    match m.final_.as_str() {
        "pass" => Some(Decided::Pass),
        "block" => {
            let d = m.decisions.iter().rev().find(|d| d.outcome == "block");
            Some(Decided::Block {
                stage: d.map(|d| d.stage.clone()).unwrap_or_default(),
                rule: d.and_then(|d| d.rule.clone()),
                status: d
                    .and_then(|d| d.status)
                    .or(r.resp.as_ref().map(|s| s.status))
                    .unwrap_or(0),
                reason: String::new(),
            })
        }
        _ => None,
    }
}

/// The same outcome: pass and pass, or a block by the same stage and rule with the same
/// status. Undecided is never the same as a recorded decision.
fn same_outcome(recorded: &Decided, now: &Decided) -> bool {
    match (recorded, now) {
        (Decided::Pass, Decided::Pass) => true,
        (
            Decided::Block {
                stage: s1,
                rule: r1,
                status: c1,
                ..
            },
            Decided::Block {
                stage: s2,
                rule: r2,
                status: c2,
                ..
            },
        ) => s1 == s2 && r1 == r2 && c1 == c2,
        _ => false,
    }
}

fn describe(r: &Record) -> String {
    let mut path = r.req.path.clone();
    if path.len() > 120 {
        let mut cut = 120;
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        path.truncate(cut);
        path.push('…');
    }
    format!("{} {path}", r.req.method)
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "replay of {} request{} against {} ({})",
        r.summary.requests,
        crate::plural(r.summary.requests as usize),
        r.config.path,
        r.config.digest
    );
    if let Some(b) = &r.baseline {
        let _ = writeln!(s, "baseline: {} ({})", b.path, b.digest);
    }
    for f in &r.inputs.files {
        let _ = writeln!(
            s,
            "input: {} ({} entries, {} skipped)",
            f.path, f.entries, f.skipped
        );
    }
    if let (Some(a), Some(b)) = (&r.inputs.from, &r.inputs.to) {
        let _ = writeln!(s, "time range: {a} to {b}");
    }
    for k in r.inputs.skipped.iter().take(SHOWN) {
        let _ = writeln!(s, "  skipped {}: {}", k.source, k.why);
    }
    let m = &r.summary;
    let _ = writeln!(s, "\nresult: {} passed, {} blocked ({}%), {} undecided, {} would block (monitor), {} blocked although the upstream answered 2xx", m.passed, m.blocked, m.block_rate_percent, m.undecided, m.would_block, m.blocked_2xx);
    if !r.stages.is_empty() {
        let _ = writeln!(s, "\nby stage:           block  would_block    log   mask");
        for st in &r.stages {
            let _ = writeln!(
                s,
                "  {:<16} {:>7} {:>12} {:>6} {:>6}",
                st.stage, st.block, st.would_block, st.log, st.mask
            );
        }
    }
    if !r.rules.is_empty() {
        let _ = writeln!(s, "\ntop rules:");
        for x in r.rules.iter().take(SHOWN) {
            let _ = writeln!(
                s,
                "  {:<12} {:<24} hits {:>6}  block {:>6}  would_block {:>6}",
                x.stage, x.rule, x.hits, x.block, x.would_block
            );
        }
    }
    let _ = writeln!(s, "\nendpoints:");
    for x in r.endpoints.iter().take(50) {
        let _ = writeln!(s, "  {:<12} {:<40} requests {:>6}  blocked {:>5}  would_block {:>5}  undecided {:>5}  blocked_2xx {:>5}", x.api, x.endpoint, x.requests, x.blocked, x.would_block, x.undecided, x.blocked_2xx);
    }
    if let Some(ch) = &r.changed {
        let _ = writeln!(s, "\nchanged from the baseline: {}", ch.len());
        for c in ch.iter().take(SHOWN) {
            let _ = writeln!(
                s,
                "  #{} {} {}{}: {} -> {}",
                c.index,
                c.source,
                c.request,
                rid(&c.request_id),
                c.before,
                c.after
            );
        }
    }
    if !r.mismatches.is_empty() {
        let _ = writeln!(
            s,
            "\ndiffers from the recorded decision: {}",
            r.mismatches.len()
        );
        for c in r.mismatches.iter().take(SHOWN) {
            let _ = writeln!(
                s,
                "  #{} {} {}{}: recorded {} -> now {}",
                c.index,
                c.source,
                c.request,
                rid(&c.request_id),
                c.before,
                c.after
            );
        }
    }
    if !r.examples.is_empty() {
        let _ = writeln!(s, "\nexamples:");
        for x in r.examples.iter().take(SHOWN) {
            let _ = writeln!(
                s,
                "  #{} {} {}{}: {}",
                x.index,
                x.source,
                x.request,
                rid(&x.request_id),
                x.decision
            );
        }
    }
    for api in r.learned.iter().flatten() {
        let _ = writeln!(s, "\nlearned from the passed requests ({}):", api.api);
        for e in &api.endpoints {
            let _ = writeln!(s, "  {} {} ({} requests)", e.method, e.template, e.hits);
        }
        for x in &api.recommendations {
            let _ = writeln!(
                s,
                "  rate limit {}: {} sessions, p50 {:.0}, p99 {:.0}, suggested {}, confidence {}",
                x.endpoint,
                x.sessions,
                x.p50,
                x.p99,
                x.suggested
                    .map_or_else(|| "none".to_owned(), |t| format!("{t} per 600 s")),
                x.confidence
            );
        }
    }
    let _ = writeln!(s, "\nfidelity:");
    for n in &r.fidelity.notes {
        let _ = writeln!(
            s,
            "  {} ({} request{})",
            n.note,
            n.requests,
            crate::plural(n.requests as usize)
        );
    }
    for st in &r.fidelity.stages {
        let _ = writeln!(
            s,
            "  {}/{}: {}{}{}",
            st.api,
            st.stage,
            st.replay,
            if st.note.is_empty() { "" } else { ": " },
            st.note
        );
    }
    for n in &r.fidelity.not_replayable {
        let _ = writeln!(s, "  not replayable: {} ({})", n.part, n.why);
    }
    for f in &r.fail_on {
        let _ = writeln!(
            s,
            "\nfail-on {}: {} ({})",
            f.condition,
            if f.met { "MET" } else { "not met" },
            f.value
        );
    }
    s
}

/// A request id in brackets, or nothing when the input had none (HAR).
fn rid(id: &str) -> String {
    if id.is_empty() {
        String::new()
    } else {
        format!(" [{id}]")
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.summary;
    let _ = writeln!(
        s,
        "# Replay of {} requests against `{}`\n",
        m.requests,
        md_cell(&r.config.path)
    );
    let _ = writeln!(s, "Configuration digest `{}`.", r.config.digest);
    if let Some(b) = &r.baseline {
        let _ = writeln!(s, "Baseline `{}` (`{}`).", md_cell(&b.path), b.digest);
    }
    let _ = writeln!(s, "\n| passed | blocked | block rate | undecided | would block | blocked with 2xx |\n|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| {} | {} | {}% | {} | {} | {} |",
        m.passed, m.blocked, m.block_rate_percent, m.undecided, m.would_block, m.blocked_2xx
    );
    if !r.stages.is_empty() {
        let _ = writeln!(
            s,
            "\n## By stage\n\n| stage | block | would block | log | mask |\n|---|---|---|---|---|"
        );
        for st in &r.stages {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                st.stage, st.block, st.would_block, st.log, st.mask
            );
        }
    }
    if !r.rules.is_empty() {
        let _ = writeln!(s, "\n## Top rules\n\n| stage | rule | hits | block | would block |\n|---|---|---|---|---|");
        for x in r.rules.iter().take(SHOWN) {
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} |",
                x.stage,
                md_cell(&x.rule),
                x.hits,
                x.block,
                x.would_block
            );
        }
    }
    let _ = writeln!(s, "\n## Endpoints\n\n| API | endpoint | requests | blocked | would block | undecided | blocked with 2xx |\n|---|---|---|---|---|---|---|");
    for x in r.endpoints.iter().take(50) {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            md_cell(&x.api),
            md_cell(&x.endpoint),
            x.requests,
            x.blocked,
            x.would_block,
            x.undecided,
            x.blocked_2xx
        );
    }
    let changes = [
        ("Changed from the baseline", r.changed.as_deref()),
        (
            "Differs from the recorded decision",
            Some(&r.mismatches[..]),
        ),
    ];
    for (title, list) in changes {
        if let Some(list) = list.filter(|l| !l.is_empty() || title.starts_with("Changed")) {
            let _ = writeln!(s, "\n## {title}: {}\n", list.len());
            if !list.is_empty() {
                let _ = writeln!(
                    s,
                    "| # | request | request id | before | after |\n|---|---|---|---|---|"
                );
                for c in list.iter().take(SHOWN) {
                    let _ = writeln!(
                        s,
                        "| {} | `{}` | `{}` | {} | {} |",
                        c.index,
                        md_cell(&c.request),
                        md_cell(&c.request_id),
                        md_cell(&c.before),
                        md_cell(&c.after)
                    );
                }
            }
        }
    }
    let _ = writeln!(s, "\n## Fidelity\n");
    for n in &r.fidelity.notes {
        let _ = writeln!(s, "- {} ({} requests)", md_cell(&n.note), n.requests);
    }
    for st in &r.fidelity.stages {
        let _ = writeln!(
            s,
            "- `{}/{}`: {}. {}",
            md_cell(&st.api),
            st.stage,
            st.replay,
            st.note
        );
    }
    for n in &r.fidelity.not_replayable {
        let _ = writeln!(s, "- not replayable: {} ({})", n.part, n.why);
    }
    for f in &r.fail_on {
        let _ = writeln!(
            s,
            "\n`--fail-on {}`: {} ({})",
            f.condition,
            if f.met { "**met**" } else { "not met" },
            f.value
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_conditions_parse() {
        assert_eq!(parse_fail_on("block"), Ok(FailOn::Blocked(0)));
        assert_eq!(parse_fail_on("blocked>5"), Ok(FailOn::Blocked(5)));
        assert_eq!(parse_fail_on("block_rate>1.5%"), Ok(FailOn::BlockRate(1.5)));
        assert_eq!(parse_fail_on("change"), Ok(FailOn::Changed(0)));
        assert_eq!(parse_fail_on("changed > 2"), Ok(FailOn::Changed(2)));
        assert_eq!(parse_fail_on("undecided>0"), Ok(FailOn::Undecided(0)));
        assert!(parse_fail_on("blocked>x")
            .unwrap_err()
            .contains("not a count"));
        assert!(parse_fail_on("speed>1")
            .unwrap_err()
            .contains("unknown measure"));
        assert!(parse_fail_on("blocks").is_err());
    }
}
