//! `rampart ftw <tests dir>`: the CRS regression tests (go-ftw YAML) through the real gateway.
//!
//! The gateway runs in this process on loopback with the CRS in `waf.crs` (paranoia level 4,
//! `monitor`, which is ModSecurity's `DetectionOnly`, and the argument and file limits of the
//! CRS project's own test setup), in front of a test backend that answers `/reflect` the way
//! the CRS project's backend (albedo) does. Each stage's request is written byte for byte on
//! a TCP connection (as go-ftw does: `encoded_request` as given, `autocomplete_headers: false`
//! respected), and the oracle is the gateway's own log: the events of the request's id, read
//! once its access-log line (written after its events, on the same channel) has appeared.
//! A stage passes when its `expect_ids` matched, its `no_expect_ids` did not, its log regexes
//! hold and its status (when it names one) is the one answered.
//!
//! Rampart's overrides (`ftw-overrides.yaml`, compiled in; `--overrides` replaces it) change
//! what a few stages expect, each with its reason, as the CRS project's own files do for
//! Apache, nginx and Coraza.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Rampart's overrides, compiled in.
const OVERRIDES: &str = include_str!("../ftw-overrides.yaml");

/// What `rampart ftw` was asked.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A directory of go-ftw YAML tests (searched recursively), or one file.
    pub(crate) tests: PathBuf,
    /// The CRS `rules` directory (default: `rules` beside the tests directory).
    #[arg(long)]
    pub(crate) rules: Option<PathBuf>,
    /// An overrides file (go-ftw format) instead of Rampart's own.
    #[arg(long, conflicts_with = "no_overrides")]
    pub(crate) overrides: Option<PathBuf>,
    /// Run without any overrides.
    #[arg(long)]
    pub(crate) no_overrides: bool,
    /// Only the test files whose path contains this.
    #[arg(long)]
    pub(crate) include: Option<String>,
    /// List every failing stage.
    #[arg(long)]
    pub(crate) show_failures: bool,
    /// Exit 1 when fewer stages than this pass, in percent.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) min_pass_rate: f64,
}

/// One stage's expectations.
#[derive(Clone, Debug, Default)]
struct Expect {
    ids: Vec<u32>,
    no_ids: Vec<u32>,
    match_regex: Option<String>,
    no_match_regex: Option<String>,
    status: Vec<u16>,
    error: bool,
}

impl Expect {
    fn from_output(out: &Value) -> Self {
        let log = &out["log"];
        let status = match &out["status"] {
            Value::Array(a) => a.iter().filter_map(number).collect(),
            v => number(v).into_iter().collect(),
        };
        Self {
            ids: ids(&log["expect_ids"]),
            no_ids: ids(&log["no_expect_ids"]),
            match_regex: log["match_regex"].as_str().map(str::to_owned),
            no_match_regex: log["no_match_regex"].as_str().map(str::to_owned),
            status,
            error: out["expect_error"].as_bool().unwrap_or(false),
        }
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.no_ids.is_empty()
            && self.match_regex.is_none()
            && self.no_match_regex.is_none()
            && self.status.is_empty()
            && !self.error
    }
}

fn number(v: &Value) -> Option<u16> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .and_then(|n| u16::try_from(n).ok())
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// An override: the stages of `rule_id`'s tests `test_ids` expect `output` instead.
#[derive(Debug)]
struct Override {
    rule_id: u32,
    test_ids: Vec<u64>,
    expect: Expect,
}

fn load_overrides(text: &str, name: &str) -> Result<Vec<Override>, String> {
    let doc = rampart_core::yaml::parse(text)
        .map_err(|e| format!("{name}: {e:?}"))?
        .to_json();
    let mut out = Vec::new();
    for (i, o) in doc["test_overrides"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let rule_id = o["rule_id"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("{name}: override {}: no rule_id", i + 1))?;
        if o["reason"].as_str().is_none_or(|r| r.trim().is_empty()) {
            return Err(format!(
                "{name}: override {}: every override gives its reason",
                i + 1
            ));
        }
        out.push(Override {
            rule_id,
            test_ids: o["test_ids"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
            expect: Expect::from_output(&o["output"]),
        });
    }
    Ok(out)
}

/// Runs the command.
pub(crate) fn run(args: &Args) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run_async(args)) {
        Ok(report) => {
            crate::print_out(report.render(args.show_failures).trim_end());
            if report.rate() + 1e-9 >= args.min_pass_rate {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Per rule file (the tests' directory): passed, failed.
    pub(crate) per_file: BTreeMap<String, (usize, usize)>,
    /// Stages that passed.
    pub(crate) passed: usize,
    /// Stages that failed, with why.
    pub(crate) failures: Vec<String>,
    /// Stages not run, by reason.
    pub(crate) skipped: BTreeMap<&'static str, usize>,
    /// Stages whose expectation an override changed.
    pub(crate) overridden: usize,
}

impl Report {
    /// Passed stages in percent of those run.
    pub(crate) fn rate(&self) -> f64 {
        let run = self.passed + self.failures.len();
        if run == 0 {
            return 0.0;
        }
        self.passed as f64 * 100.0 / run as f64
    }

    fn render(&self, show_failures: bool) -> String {
        let mut s = String::new();
        for (file, (p, f)) in &self.per_file {
            s.push_str(&format!("{file}: {p} passed, {f} failed\n"));
        }
        if show_failures || self.failures.len() <= 20 {
            for f in &self.failures {
                s.push_str(&format!("FAIL {f}\n"));
            }
        }
        let run = self.passed + self.failures.len();
        s.push_str(&format!(
            "total: {} of {run} stages passed ({:.2}%), {} failed; {} with an override; not run: {:?}\n",
            self.passed,
            self.rate(),
            self.failures.len(),
            self.overridden,
            self.skipped
        ));
        s
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.is_file() {
        out.push(dir.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// The CRS project's test limits (its own test setup sets them; rules 920360–920410 test
/// them), written as a rule file before the CRS's.
const TEST_SETUP: &str = "SecAction \"id:900200,phase:1,pass,nolog,\
setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,setvar:tx.max_num_args=255,\
setvar:tx.total_arg_length=64000,setvar:tx.max_file_size=64100,\
setvar:tx.combined_file_sizes=65535\"\n";

/// Runs every stage; the report.
pub(crate) async fn run_async(args: &Args) -> Result<Report, String> {
    let rules = match &args.rules {
        Some(r) => r.clone(),
        None => args
            .tests
            .parent()
            .map(|p| p.join("rules"))
            .ok_or("no rules directory: give --rules")?,
    };
    let rules = rules.canonicalize().map_err(|e| {
        format!(
            "{}: no CRS rules directory here (give --rules <crs>/rules): {e}",
            rules.display()
        )
    })?;
    let overrides = if args.no_overrides {
        Vec::new()
    } else if let Some(p) = &args.overrides {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        load_overrides(&text, &p.display().to_string())?
    } else {
        load_overrides(OVERRIDES, "ftw-overrides.yaml")?
    };
    let mut files = Vec::new();
    yaml_files(&args.tests, &mut files).map_err(|e| format!("{}: {e}", args.tests.display()))?;
    if let Some(inc) = &args.include {
        files.retain(|f| f.to_string_lossy().contains(inc.as_str()));
    }
    if files.is_empty() {
        return Err(format!("{}: no test files", args.tests.display()));
    }

    let backend = Backend::start()
        .await
        .map_err(|e| format!("test backend: {e}"))?;
    let dir = std::env::temp_dir().join(format!("rampart-ftw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("ftw-setup.conf"), TEST_SETUP).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(dir.join("events.jsonl"));
    let _ = std::fs::remove_file(dir.join("access.jsonl"));
    let yaml = format!(
        r#"listeners:
  - {{ name: ftw, bind: "127.0.0.1:0" }}
upstreams:
  backend: {{ targets: ["http://{backend}"] }}
waf:
  crs:
    rules: ["{setup}", "{rules}/*.conf"]
    paranoia_level: 4
    enforcement: monitor
apis:
  - {{ name: ftw, upstream: backend }}
events: {{ sqlite: "off", jsonl: "{dir}/events.jsonl", access_log: "{dir}/access.jsonl" }}
"#,
        backend = backend.addr,
        setup = dir.join("ftw-setup.conf").display(),
        rules = rules.display(),
        dir = dir.display(),
    );
    let config_path = dir.join("rampart.yaml");
    std::fs::write(&config_path, &yaml).map_err(|e| e.to_string())?;
    let snapshot = rampart_config::load_file(&config_path).map_err(|e| e.render())?;
    let gateway = rampart_proxy::Gateway::start(snapshot, None)
        .await
        .map_err(|e| format!("the gateway did not start: {e}"))?;
    let addr = gateway.addr("ftw").ok_or("no ftw listener")?;
    let mut log = Log::new(dir.join("events.jsonl"), dir.join("access.jsonl"));

    let mut report = Report::default();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let Ok(node) = rampart_core::yaml::parse(&text) else {
            *report.skipped.entry("unreadable YAML").or_default() += 1;
            continue;
        };
        let doc = node.to_json();
        let family = f
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rule_id: Option<u32> = f
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok());
        let fname = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for test in doc["tests"].as_array().cloned().unwrap_or_default() {
            let test_id = test["test_id"].as_u64().unwrap_or(0);
            let ov = overrides
                .iter()
                .find(|o| Some(o.rule_id) == rule_id && o.test_ids.contains(&test_id));
            for stage in test["stages"].as_array().cloned().unwrap_or_default() {
                let mut expect = Expect::from_output(&stage["output"]);
                if let Some(o) = ov {
                    expect = o.expect.clone();
                    report.overridden += 1;
                }
                if expect.is_empty() {
                    *report.skipped.entry("nothing expected").or_default() += 1;
                    continue;
                }
                let Some(raw) = raw_request(&stage["input"]) else {
                    *report.skipped.entry("unreadable request").or_default() += 1;
                    continue;
                };
                let head_only = raw.starts_with(b"HEAD ");
                let answer = exchange(addr, &raw, head_only).await;
                let lines = match answer.as_ref().and_then(|a| a.request_id.as_deref()) {
                    Some(rid) => log.lines_of(rid, &gateway).await,
                    None => Vec::new(),
                };
                let verdict = judge(&expect, answer.as_ref(), &lines);
                let entry = report.per_file.entry(family.clone()).or_default();
                match verdict {
                    Ok(()) => {
                        report.passed += 1;
                        entry.0 += 1;
                    }
                    Err(why) => {
                        entry.1 += 1;
                        report.failures.push(format!("{fname}#{test_id}: {why}"));
                    }
                }
            }
        }
    }
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// Whether the stage's expectations hold.
fn judge(expect: &Expect, answer: Option<&Answer>, lines: &[String]) -> Result<(), String> {
    if expect.error {
        return match answer {
            None => Ok(()),
            Some(a) => Err(format!("expected an error, got status {}", a.status)),
        };
    }
    let Some(answer) = answer else {
        return Err("no response".to_owned());
    };
    let matched: HashSet<u32> = lines
        .iter()
        .filter_map(|l| {
            let i = l.find("[id \"")? + 5;
            l[i..].split('"').next()?.parse().ok()
        })
        .collect();
    let mut why = Vec::new();
    if !expect.status.is_empty() && !expect.status.contains(&answer.status) {
        why.push(format!(
            "status {} (expected {:?})",
            answer.status, expect.status
        ));
    }
    let missing: Vec<u32> = expect
        .ids
        .iter()
        .copied()
        .filter(|i| !matched.contains(i))
        .collect();
    if !missing.is_empty() {
        why.push(format!("expected {missing:?} to match"));
    }
    let unwanted: Vec<u32> = expect
        .no_ids
        .iter()
        .copied()
        .filter(|i| matched.contains(i))
        .collect();
    if !unwanted.is_empty() {
        why.push(format!("{unwanted:?} matched"));
    }
    let text = lines.join("\n");
    let re = |p: &str| regex::Regex::new(p).map_err(|e| e.to_string());
    if let Some(p) = &expect.match_regex {
        match re(p) {
            Ok(r) if r.is_match(&text) => {}
            Ok(_) => why.push(format!("log does not match /{p}/")),
            Err(e) => why.push(format!("bad regex /{p}/: {e}")),
        }
    }
    if let Some(p) = &expect.no_match_regex {
        match re(p) {
            Ok(r) if !r.is_match(&text) => {}
            Ok(_) => why.push(format!("log matches /{p}/")),
            Err(e) => why.push(format!("bad regex /{p}/: {e}")),
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        let mut ids: Vec<u32> = matched.into_iter().collect();
        ids.sort_unstable();
        let mut msg = format!(
            "{}; status {}, matched {ids:?}",
            why.join("; "),
            answer.status
        );
        if expect.match_regex.is_some() || expect.no_match_regex.is_some() {
            for l in lines {
                msg.push_str("\n    ");
                msg.push_str(&l.chars().take(300).collect::<String>());
            }
        }
        Err(msg)
    }
}

/// The bytes of a stage's request, as go-ftw writes them.
fn raw_request(input: &Value) -> Option<Vec<u8>> {
    if let Some(enc) = input["encoded_request"].as_str() {
        let clean: String = enc.chars().filter(|c| !c.is_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD.decode(clean).ok();
    }
    let s = |k: &str, d: &str| input[k].as_str().unwrap_or(d).to_owned();
    let mut headers: Vec<(String, String)> = input["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let data: Vec<u8> = match &input["data"] {
        Value::String(s) => templates(s).into_bytes(),
        Value::Array(lines) => lines
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes(),
        _ => Vec::new(),
    };
    let has = |h: &[(String, String)], n: &str| h.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    // go-ftw completes what a test leaves out, unless told not to: the body's length, a form
    // content type for a body, and `Connection: close`.
    let method = s("method", "GET");
    if input["autocomplete_headers"].as_bool().unwrap_or(true) {
        // A method that carries a body announces its length even when it is empty.
        if !data.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            if !has(&headers, "content-length") {
                headers.push(("Content-Length".into(), data.len().to_string()));
            }
            if !data.is_empty() && !has(&headers, "content-type") {
                headers.push((
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
        }
        if !has(&headers, "connection") {
            headers.push(("Connection".into(), "close".into()));
        }
    }
    let mut out = format!(
        "{} {} {}\r\n",
        method,
        s("uri", "/"),
        s("version", "HTTP/1.1")
    )
    .into_bytes();
    for (k, v) in &headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&data);
    Some(out)
}

/// go-ftw's templates in `data`, of the one form the CRS tests use: `{{ "1" | repeat 64200 }}`.
fn templates(data: &str) -> String {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(re) = RE
        .get_or_init(|| regex::Regex::new(r#"\{\{\s*"([^"]*)"\s*\|\s*repeat\s+(\d+)\s*\}\}"#).ok())
    else {
        return data.to_owned();
    };
    re.replace_all(data, |c: &regex::Captures<'_>| {
        let n: usize = c[2].parse().unwrap_or(0);
        c[1].repeat(n.min(16 << 20))
    })
    .into_owned()
}

/// What the gateway answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    request_id: Option<String>,
}

/// Writes the request on a new connection and reads the response head (and its body, so the
/// exchange completes), within a few seconds.
async fn exchange(addr: SocketAddr, raw: &[u8], head_only: bool) -> Option<Answer> {
    let deadline = Duration::from_secs(5);
    tokio::time::timeout(deadline, async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(raw).await.ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let mut request_id = None;
        let mut length = None;
        let mut chunked = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "x-request-id" => request_id = Some(v.to_owned()),
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                _ => {}
            }
        }
        // The body is read so that the gateway finishes the exchange (and logs it).
        let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
        if !no_body {
            loop {
                let body = &buf[head_end..];
                let done = match (length, chunked) {
                    (Some(n), _) => body.len() >= n,
                    (None, true) => body.ends_with(b"0\r\n\r\n"),
                    (None, false) => false,
                };
                if done {
                    break;
                }
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        }
        Some(Answer { status, request_id })
    })
    .await
    .ok()
    .flatten()
}

/// The gateway's log, read as it grows: its events as ModSecurity-style lines per request id,
/// and the request ids whose access-log line (written after their events) has appeared.
struct Log {
    events: (PathBuf, u64),
    access: (PathBuf, u64),
    lines: HashMap<String, Vec<String>>,
    done: HashSet<String>,
}

impl Log {
    fn new(events: PathBuf, access: PathBuf) -> Self {
        Self {
            events: (events, 0),
            access: (access, 0),
            lines: HashMap::new(),
            done: HashSet::new(),
        }
    }

    /// The log lines of a request, once the gateway has finished it (at most 5 s).
    async fn lines_of(&mut self, rid: &str, gateway: &rampart_proxy::Gateway) -> Vec<String> {
        let start = Instant::now();
        while !self.done.contains(rid) && start.elapsed() < Duration::from_secs(5) {
            gateway.events().flush().await;
            self.read_new();
            if !self.done.contains(rid) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        self.done.remove(rid);
        self.lines.remove(rid).unwrap_or_default()
    }

    fn read_new(&mut self) {
        for v in new_lines(&mut self.events) {
            let (Some(rid), Some(rule)) = (v["request_id"].as_str(), v["rule"].as_str()) else {
                continue;
            };
            // ModSecurity's log format: the message and the logged data apart, control
            // characters escaped.
            let detail = v["detail"].as_str().unwrap_or("");
            let (msg, data) = detail
                .split_once(" [data: ")
                .map_or((detail, ""), |(m, d)| (m, d.strip_suffix(']').unwrap_or(d)));
            let line = format!(
                "[id \"{rule}\"] [msg \"{}\"] [data \"{}\"] [action \"{}\"]",
                escape(msg),
                escape(data),
                v["action"].as_str().unwrap_or("")
            );
            self.lines.entry(rid.to_owned()).or_default().push(line);
        }
        for v in new_lines(&mut self.access) {
            if let Some(rid) = v["request_id"].as_str() {
                self.done.insert(rid.to_owned());
            }
        }
    }
}

/// Control characters as `\xhh`, as ModSecurity writes them in its log.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The complete JSON lines appended to a file since the last call.
fn new_lines((path, offset): &mut (PathBuf, u64)) -> Vec<Value> {
    let Ok(mut f) = std::fs::File::open(path.as_path()) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut reader = std::io::BufReader::new(&mut f);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !line.ends_with('\n') {
                    break;
                }
                *offset += n as u64;
                if let Ok(v) = serde_json::from_str(&line) {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// The test backend: `/reflect` answers with the status, headers and body its JSON request
/// body describes (the CRS project's albedo backend); anything else gets an empty 200.
struct Backend {
    addr: SocketAddr,
}

impl Backend {
    async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(reflect);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr })
    }
}

async fn reflect(
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let is_reflect = req.uri().path().starts_with("/reflect");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let spec: Value = if is_reflect {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let status = spec["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .unwrap_or(http::StatusCode::OK);
    let text = spec["body"].as_str().unwrap_or("").to_owned();
    let mut rsp = hyper::Response::new(Full::new(Bytes::from(text)));
    *rsp.status_mut() = status;
    let mut typed = false;
    if let Some(h) = spec["headers"].as_object() {
        for (k, v) in h {
            let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v.as_str().unwrap_or("")),
            ) else {
                continue;
            };
            typed |= name == http::header::CONTENT_TYPE;
            rsp.headers_mut().append(name, value);
        }
    }
    if !typed {
        rsp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
    }
    Ok(rsp)
}
