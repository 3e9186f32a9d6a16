//! `waf.crs`: the OWASP Core Rule Set (or any SecLang rule set) through `rampart-seclang`.
//!
//! ```yaml
//! waf:
//!   crs:
//!     rules: [/usr/share/modsecurity-crs/rules/*.conf]
//!     paranoia_level: 1
//!     inbound_anomaly_threshold: 5
//! ```
//!
//! Rampart writes the setup CRS needs (what `crs-setup.conf` holds: the default actions,
//! the paranoia levels, the thresholds) and includes the files listed, in order: the rules,
//! and exclusion files before or after them. The request's phases 1 and 2 run once its body
//! is buffered (the proxy buffers it for this stage); every rule that matched is a finding
//! with its id and message, and a refusal (CRS's 949110 when the anomaly score reaches the
//! threshold) answers 403.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rampart_core::{
    Block, CompileCx, Decision, Enforcement, Exchange, Finding, FindingAction, Outcome, Phases,
    Reason, RuleId, Stage, StageId,
};
use rampart_seclang::eval::{Request, Transaction};
use rampart_seclang::ruleset::{compile_ruleset, Ruleset};
use serde::Deserialize;

/// The stage's id.
pub const CRS_STAGE: StageId = StageId("waf.crs");

/// `waf.crs`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrsConfig {
    /// SecLang files to include, in order (globs in file names), relative to the config file:
    /// the CRS's `rules/*.conf`, and exclusion files before or after them.
    pub rules: Vec<String>,
    /// The blocking paranoia level, 1 to 4.
    #[serde(default = "one")]
    pub paranoia_level: u8,
    /// The detection paranoia level (rules above the blocking level only log), at least the
    /// blocking level; by default equal to it.
    #[serde(default)]
    pub detection_paranoia_level: Option<u8>,
    /// The inbound anomaly score that refuses a request (CRS's default: 5, one critical rule).
    #[serde(default = "five")]
    pub inbound_anomaly_threshold: u32,
    /// `enforce`, or `monitor` (refusals become would-block findings).
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Whether response bodies are inspected (CRS's data-leakage rules): the proxy then holds
    /// each HTML, text, XML or JSON response up to `max_response_bytes` before sending it.
    #[serde(default = "yes")]
    pub inspect_response_bodies: bool,
    /// The most response bytes held for inspection; a larger body streams uninspected, with a
    /// finding.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: u64,
}

fn yes() -> bool {
    true
}

fn default_max_response() -> u64 {
    1024 * 1024
}

fn one() -> u8 {
    1
}

fn five() -> u32 {
    5
}

/// A compiled rule set with its enforcement.
#[derive(Debug)]
pub struct CrsRules {
    rules: Arc<Ruleset>,
    /// The persistent collections (`IP`, `GLOBAL`…) of this rule set, in memory.
    store: Arc<rampart_seclang::persist::Store>,
    enforcement: Enforcement,
    max_response_bytes: u64,
}

impl CrsRules {
    /// Compiles the section; every problem of the rule files is a diagnostic.
    pub fn compile(c: &CrsConfig, base_dir: &Path, cx: &mut CompileCx) -> Option<Arc<Self>> {
        if !(1..=4).contains(&c.paranoia_level) {
            cx.at("paranoia_level", |cx| {
                cx.error("a paranoia level is 1 to 4")
            });
            return None;
        }
        let detection = c.detection_paranoia_level.unwrap_or(c.paranoia_level);
        if !(c.paranoia_level..=4).contains(&detection) {
            cx.at("detection_paranoia_level", |cx| {
                cx.error("the detection level is from the paranoia level to 4")
            });
            return None;
        }
        if c.rules.is_empty() {
            cx.at("rules", |cx| {
                cx.error_with_help(
                    "no rule files",
                    "list the CRS's rules, such as `/usr/share/modsecurity-crs/rules/*.conf`",
                )
            });
            return None;
        }
        // What crs-setup.conf holds, written from the config.
        // `monitor` is ModSecurity's `DetectionOnly`: every phase runs and the refusal the
        // rules would have made is reported once, as a would-block.
        let mut main = format!(
            "SecRuleEngine {}\n\
             SecRequestBodyAccess On\n\
             SecResponseBodyAccess {}\n\
             SecResponseBodyMimeType text/plain text/html text/xml application/json\n\
             SecDefaultAction \"phase:1,log,auditlog,pass\"\n\
             SecDefaultAction \"phase:2,log,auditlog,pass\"\n\
             SecDefaultAction \"phase:3,log,auditlog,pass\"\n\
             SecDefaultAction \"phase:4,log,auditlog,pass\"\n\
             SecDefaultAction \"phase:5,log,auditlog,pass\"\n\
             SecAction \"id:900990,phase:1,pass,nolog,setvar:tx.crs_setup_version=428\"\n\
             SecAction \"id:900000,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level={}\"\n\
             SecAction \"id:900001,phase:1,pass,nolog,setvar:tx.detection_paranoia_level={detection}\"\n\
             SecAction \"id:900110,phase:1,pass,nolog,setvar:tx.inbound_anomaly_score_threshold={}\"\n",
            match c.enforcement {
                Enforcement::Enforce => "On",
                Enforcement::Monitor => "DetectionOnly",
            },
            if c.inspect_response_bodies { "On" } else { "Off" },
            c.paranoia_level,
            c.inbound_anomaly_threshold
        );
        for r in &c.rules {
            main.push_str(&format!("Include \"{r}\"\n"));
        }
        let parsed = rampart_seclang::parse_str(&main, "<waf.crs>", base_dir);
        match compile_ruleset(&parsed) {
            Ok(rules) => {
                if !rules.backtracking.is_empty() {
                    tracing::info!(
                        rules = ?rules.backtracking,
                        limit = rampart_seclang::pcre::BACKTRACK_LIMIT,
                        "waf.crs: PCRE patterns run on a backtracking engine under a step limit"
                    );
                }
                if !rules.never_matching.is_empty() {
                    tracing::warn!(
                        rules = ?rules.never_matching,
                        "waf.crs: these rules never match in Rampart (@geoLookup: no GeoIP database; @rbl: no DNS lookups on the request path)"
                    );
                }
                Some(Arc::new(Self {
                    store: Arc::new(rampart_seclang::persist::Store::new(
                        rules.collection_timeout_secs,
                        rampart_seclang::persist::DEFAULT_MAX_RECORDS,
                    )),
                    rules: Arc::new(rules),
                    enforcement: c.enforcement,
                    max_response_bytes: c.max_response_bytes,
                }))
            }
            Err(diags) => {
                cx.at("rules", |cx| {
                    for d in diags {
                        let mut help = format!("at {}:{}:{}", d.file, d.line, d.col);
                        if !d.source_line.is_empty() {
                            help.push_str(&format!(": {}", d.source_line.trim()));
                        }
                        if let Some(h) = &d.help {
                            help.push_str(&format!("; {h}"));
                        }
                        cx.error_with_help(d.message, help);
                    }
                });
                None
            }
        }
    }

    /// How the stage's refusals apply.
    pub fn enforcement(&self) -> Enforcement {
        self.enforcement
    }
}

impl CrsRules {
    /// Whether phase 4 runs on this response: body access on and a media type the rules read.
    fn inspects_body(&self, rsp: &http::response::Parts) -> bool {
        let rules = &self.rules;
        if !rules.response_body_access {
            return false;
        }
        let ct = rsp
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        rules.response_mime_types.is_empty()
            || rules
                .response_mime_types
                .iter()
                .any(|m| m.eq_ignore_ascii_case(essence))
    }
}

/// The transaction of one exchange, kept from the request to the response, with what of it is
/// already reported.
#[derive(Clone)]
struct CrsState(Arc<Mutex<(Transaction, Reported)>>);

/// How many of a transaction's matches are findings, and whether its refusal was reported.
#[derive(Default)]
struct Reported {
    matches: usize,
    refusal: bool,
}

/// The stage.
#[derive(Debug)]
pub struct CrsStage(pub Arc<CrsRules>);

impl CrsStage {
    /// Records the matches not yet recorded; turns a refusal into a block.
    fn report(t: &Transaction, done: &mut Reported, x: &mut Exchange) -> Outcome {
        // A refusal (or in `DetectionOnly` the one the rules would have made) is reported once.
        let refused = if done.refusal {
            None
        } else {
            t.interruption().or(t.would_interrupt()).cloned()
        };
        for m in &t.matched()[done.matches.min(t.matched().len())..] {
            if refused.as_ref().is_some_and(|r| r.rule == m.id) {
                continue;
            }
            x.record(Finding {
                stage: CRS_STAGE,
                rule: Some(RuleId::new(&m.id.to_string())),
                action: FindingAction::Log,
                reason: Reason::WafRuleMatch,
                detail: if m.logdata.is_empty() {
                    m.msg.clone()
                } else {
                    format!("{} [data: {}]", m.msg, m.logdata)
                },
            });
        }
        done.matches = t.matched().len();
        let Some(r) = refused else {
            return Ok(Decision::Continue);
        };
        done.refusal = true;
        let msg = t
            .matched()
            .iter()
            .find(|m| m.id == r.rule)
            .map(|m| m.msg.clone())
            .unwrap_or_default();
        let others: Vec<String> = t
            .matched()
            .iter()
            .filter(|m| m.id != r.rule)
            .map(|m| m.id.to_string())
            .collect();
        let status = http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::FORBIDDEN);
        Ok(Decision::Block(
            Block::new(Reason::WafRuleMatch)
                .status(status)
                .rule(RuleId::new(&r.rule.to_string()))
                .detail(format!("{msg}; rules matched: {}", others.join(", "))),
        ))
    }

    fn state(x: &Exchange) -> Option<CrsState> {
        x.extensions.get::<CrsState>().cloned()
    }

    /// Runs a response phase on the exchange's transaction (none when the request phases did
    /// not run), then reports what it matched.
    fn response_phase(x: &mut Exchange, run: impl FnOnce(&mut Transaction)) -> Outcome {
        let Some(state) = Self::state(x) else {
            return Ok(Decision::Continue);
        };
        let mut guard = state
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (t, done) = &mut *guard;
        run(t);
        Self::report(t, done, x)
    }
}

impl Stage for CrsStage {
    fn id(&self) -> StageId {
        CRS_STAGE
    }

    fn phases(&self) -> Phases {
        let p = Phases::REQUEST_BODY.union(Phases::RESPONSE_HEAD);
        if self.0.rules.response_body_access {
            p.union(Phases::RESPONSE_BODY)
        } else {
            p
        }
    }

    fn on_request_body(
        &self,
        req: &http::request::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        let request = Request {
            method: req.method.as_str().to_owned(),
            uri: req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.to_string(), |p| p.as_str().to_owned()),
            protocol: format!("{:?}", req.version),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            remote_addr: Some(x.client_ip),
            unique_id: x.request_id.clone(),
        };
        let mut t = Transaction::new(self.0.rules.clone(), request);
        t.set_persistence(self.0.store.clone(), x.now_ms());
        if t.phase(1).is_none() {
            t.request_body(body);
            t.phase(2);
        }
        if t.interruption().is_some() {
            // No response phase follows a refusal: the logging phase runs now.
            t.phase(5);
        }
        let mut done = Reported::default();
        let outcome = Self::report(&t, &mut done, x);
        x.extensions
            .insert(CrsState(Arc::new(Mutex::new((t, done)))));
        outcome
    }

    fn on_response_head(
        &self,
        _req: &http::request::Parts,
        rsp: &mut http::response::Parts,
        x: &mut Exchange,
    ) -> Outcome {
        let inspects_body = self.0.inspects_body(rsp);
        Self::response_phase(x, |t| {
            t.response_head(
                rsp.status.as_u16(),
                &format!("{:?}", rsp.version),
                rsp.headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                    .collect(),
            );
            t.phase(3);
            if !inspects_body {
                t.phase(5);
            }
        })
    }

    fn response_body_limit(&self, rsp: &http::response::Parts, x: &Exchange) -> Option<u64> {
        (Self::state(x).is_some() && self.0.inspects_body(rsp)).then_some(self.0.max_response_bytes)
    }

    fn on_response_body_whole(
        &self,
        _rsp: &mut http::response::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        Self::response_phase(x, |t| {
            t.response_body(body);
            t.phase(4);
            t.phase(5);
        })
    }
}
