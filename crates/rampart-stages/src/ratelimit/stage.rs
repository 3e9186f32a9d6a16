//! The compiled rules and the stage that applies them.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use rampart_core::{
    Block, BoxFuture, CompileCx, Decision, Exchange, Finding, FindingAction,
    Outcome as StageOutcome, Reason, RuleId, Stage, StageError, StageId,
};
use rampart_rules::{ExprId, FieldPhase, Input, Limits, Lists, RuleSet, RuleSetBuilder};

use super::algo::{Algorithm, Limit, Outcome};
use super::config::{AlgorithmConfig, KeyPart, LimitAction, RateLimitConfig};
use super::memory::SharedStore;
use super::redis::RedisStore;

/// The stage's id.
pub const STAGE: StageId = StageId("ratelimit");

static POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

#[derive(Debug)]
struct Rule {
    id: RuleId,
    when: Option<ExprId>,
    key: Vec<KeyPart>,
    limit: Limit,
    action: LimitAction,
    cost: u64,
    /// `"name";q=100;w=60`, ready to send.
    policy: HeaderValue,
}

/// A list of compiled rules (the global ones, or an API's).
#[derive(Debug)]
pub struct RateLimits {
    set: RuleSet,
    rules: Vec<Rule>,
}

impl RateLimits {
    /// Compiles a list of rules. Problems go to `cx`.
    pub fn compile(list: &[RateLimitConfig], lists: &Lists, cx: &mut CompileCx) -> Option<Self> {
        let before = cx.diagnostics().len();
        let mut b = RuleSetBuilder::new(Limits::default(), lists);
        let mut rules = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (i, r) in list.iter().enumerate() {
            cx.at(format!("[{i}]"), |cx| {
                if r.name.is_empty() || !r.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                    cx.at("name", |cx| cx.error("a rule needs a name of letters, digits, '-', '_' or '.'"));
                } else if names.contains(&r.name.as_str()) {
                    cx.at("name", |cx| cx.error(format!("duplicate rate-limit rule \"{}\"", r.name)));
                }
                names.push(&r.name);
                if r.requests == 0 {
                    cx.at("requests", |cx| cx.error("must be at least 1"));
                }
                if r.window_secs == 0 {
                    cx.at("window_secs", |cx| cx.error("must be at least 1"));
                }
                if r.cost == 0 {
                    cx.at("cost", |cx| cx.error("must be at least 1"));
                }
                if r.burst == Some(0) {
                    cx.at("burst", |cx| cx.error("must be at least 1"));
                }
                let key: Vec<KeyPart> = cx.at("key", |cx| {
                    r.key
                        .iter()
                        .enumerate()
                        .filter_map(|(j, k)| cx.at(format!("[{j}]"), |cx| KeyPart::parse(k, cx)))
                        .collect()
                });
                let when = r.when.as_ref().and_then(|src| {
                    cx.at("when", |cx| {
                        let ast = match rampart_rules::parse(src, &Limits::default()) {
                            Ok(a) => a,
                            Err(e) => {
                                e.report(cx, src);
                                return None;
                            }
                        };
                        if rampart_rules::phase_of(&ast) != FieldPhase::RequestHead {
                            cx.error("a rate limit decides on the request head: it cannot read bodies or responses");
                            return None;
                        }
                        match b.add_ast(&ast) {
                            Ok(id) => Some(id),
                            Err(errs) => {
                                for e in &errs {
                                    e.report(cx, src);
                                }
                                None
                            }
                        }
                    })
                });
                let policy = HeaderValue::from_str(&format!(
                    "\"{}\";q={};w={}",
                    r.name, r.requests, r.window_secs
                ))
                .unwrap_or_else(|_| HeaderValue::from_static("\"limit\""));
                rules.push(Rule {
                    id: RuleId::new(&r.name),
                    when,
                    key,
                    limit: Limit {
                        requests: r.requests.max(1),
                        window_ms: r.window_secs.max(1).saturating_mul(1000),
                        burst: r.burst.unwrap_or(r.requests).max(1),
                        algorithm: match r.algorithm {
                            AlgorithmConfig::Gcra => Algorithm::Gcra,
                            AlgorithmConfig::SlidingWindow => Algorithm::SlidingWindow,
                        },
                        penalty_ms: r.penalty_secs.saturating_mul(1000),
                    },
                    action: r.action,
                    cost: r.cost.max(1),
                    policy,
                });
            });
        }
        if cx.diagnostics().len() != before {
            return None;
        }
        Some(Self {
            set: b.build(),
            rules,
        })
    }

    /// Returns true if there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Where the counts live.
#[derive(Debug, Clone)]
pub enum Backend {
    /// This process's memory.
    Memory(Arc<SharedStore>),
    /// Redis, shared by every node (with a local limiter when Redis cannot answer).
    Redis(Arc<RedisStore>),
}

/// The `ratelimit` stage of one API: the global rules, then the API's.
#[derive(Debug)]
pub struct RateLimitStage {
    sections: Vec<Arc<RateLimits>>,
    backend: Backend,
}

impl RateLimitStage {
    /// Creates the stage over the sections that apply (global first), or `None` if they
    /// have no rule.
    pub fn new(sections: Vec<Arc<RateLimits>>, backend: Backend) -> Option<Self> {
        sections
            .iter()
            .any(|s| !s.is_empty())
            .then_some(Self { sections, backend })
    }

    /// The rules that apply to this request, each with its key. Runs before any count is
    /// touched, so that the checks can then be awaited without holding the request.
    fn plan(&self, req: &http::request::Parts, x: &Exchange) -> Vec<(&Rule, String)> {
        let mut out = Vec::new();
        for section in &self.sections {
            let mut cx = None;
            for rule in &section.rules {
                if x.skips_rule(rule.id.as_str()) {
                    continue;
                }
                if let Some(w) = rule.when {
                    let ctx = cx.get_or_insert_with(|| {
                        section.set.context(Input {
                            client_ip: Some(x.client_ip),
                            request: Some(req),
                            principal: x.principal.as_ref(),
                            client_cert: x.client_cert(),
                            api: x.route.as_ref().map(|r| &*r.api),
                            operation: x.route.as_ref().and_then(|r| r.operation.as_deref()),
                            path_params: &x.path_params,
                            ..Input::default()
                        })
                    });
                    if !section.set.eval(w, ctx) {
                        continue;
                    }
                }
                let mut key = String::new();
                for (i, part) in rule.key.iter().enumerate() {
                    if i > 0 {
                        key.push('|');
                    }
                    // A request without the part (no consumer, no header) is counted by its
                    // client address: leaving the header out must not escape the limit.
                    match part.value(req, x) {
                        Some(v) => key.push_str(&v),
                        None => {
                            key.push_str("ip:");
                            key.push_str(&x.client_ip.to_string());
                        }
                    }
                }
                out.push((rule, key));
            }
        }
        out
    }

    /// The answer, from every rule's outcome (in order; a refusal by a `block` rule ends the
    /// list).
    fn decide(&self, results: &[(&Rule, String, Outcome)], x: &mut Exchange) -> StageOutcome {
        // The rule with the least quota left (as a share of its own), for the headers of an
        // allowed response.
        let mut tightest: Option<(&Rule, &Outcome)> = None;
        for (rule, key, o) in results {
            if !o.allowed {
                let detail = format!(
                    "{} over {} per {} s (key {})",
                    rule.id,
                    rule.limit.requests,
                    rule.limit.window_ms / 1000,
                    redact(key)
                );
                metrics::counter!("rampart_ratelimit_limited_total", "rule" => rule.id.to_string(), "action" => if rule.action == LimitAction::Log { "log" } else { "block" }).increment(1);
                if rule.action == LimitAction::Log {
                    if o.first_refusal {
                        x.record(Finding {
                            stage: STAGE,
                            rule: Some(rule.id.clone()),
                            action: FindingAction::Log,
                            reason: Reason::RateLimited,
                            detail,
                        });
                    }
                    continue;
                }
                let retry = o.retry_after_ms.div_ceil(1000).max(1);
                return Ok(Decision::Block(
                    Block::new(Reason::RateLimited)
                        .rule(rule.id.clone())
                        .detail(detail)
                        .repeated(!o.first_refusal)
                        .header(http::header::RETRY_AFTER, HeaderValue::from(retry))
                        .header(POLICY.clone(), rule.policy.clone())
                        .header(RATELIMIT.clone(), ratelimit_value(rule, o)),
                ));
            }
            let share = |r: &Rule, o: &Outcome| {
                o.remaining as f64 / r.limit.burst.max(r.limit.requests) as f64
            };
            if tightest.is_none_or(|(r, t)| share(rule, o) < share(r, t)) {
                tightest = Some((rule, o));
            }
        }
        if let Some((rule, o)) = tightest {
            x.response_headers
                .push((POLICY.clone(), rule.policy.clone()));
            x.response_headers
                .push((RATELIMIT.clone(), ratelimit_value(rule, o)));
        }
        Ok(Decision::Continue)
    }
}

fn header_value(s: String) -> HeaderValue {
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// `"name";r=37;t=5`: what is left of the quota and when it is whole again.
fn ratelimit_value(rule: &Rule, o: &Outcome) -> HeaderValue {
    let name = rule.id.as_str();
    header_value(format!(
        "\"{name}\";r={};t={}",
        o.remaining,
        o.reset_ms.div_ceil(1000)
    ))
}

impl Stage for RateLimitStage {
    fn id(&self) -> StageId {
        STAGE
    }

    fn is_async(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    fn on_request_head(&self, req: &mut http::request::Parts, x: &mut Exchange) -> StageOutcome {
        let now = x.now_ms();
        let plan = self.plan(req, x);
        let mut results = Vec::with_capacity(plan.len());
        for (rule, key) in plan {
            let o = match &self.backend {
                Backend::Memory(store) => {
                    store
                        .get()
                        .check(rule.id.as_str(), &key, &rule.limit, rule.cost, now)
                }
                Backend::Redis(store) => {
                    store.local(rule.id.as_str(), &key, &rule.limit, rule.cost, now)
                }
            };
            let stop = !o.allowed && rule.action == LimitAction::Block;
            results.push((rule, key, o));
            if stop {
                break;
            }
        }
        self.decide(&results, x)
    }

    fn on_request_head_async<'a>(
        &'a self,
        req: &'a mut http::request::Parts,
        x: &'a mut Exchange,
    ) -> BoxFuture<'a, StageOutcome> {
        let Backend::Redis(store) = &self.backend else {
            let out = self.on_request_head(req, x);
            return Box::pin(async move { out });
        };
        Box::pin(async move {
            let now = x.now_ms();
            let plan = self.plan(req, x);
            let mut results = Vec::with_capacity(plan.len());
            let mut degraded = None;
            for (rule, key) in plan {
                let o = match store
                    .check(rule.id.as_str(), &key, &rule.limit, rule.cost)
                    .await
                {
                    Ok(o) => o,
                    Err(e) => {
                        if store.deny_on_error() {
                            return Err(StageError::new(format!("rate-limit store: {e}")));
                        }
                        degraded.get_or_insert(e);
                        store.local(rule.id.as_str(), &key, &rule.limit, rule.cost, now)
                    }
                };
                let stop = !o.allowed && rule.action == LimitAction::Block;
                results.push((rule, key, o));
                if stop {
                    break;
                }
            }
            if let Some(e) = degraded {
                if store.note_degraded() {
                    // Once per outage, not once per request.
                    x.record(Finding {
                        stage: STAGE,
                        rule: None,
                        action: FindingAction::Log,
                        reason: Reason::Unavailable,
                        detail: format!("Redis cannot answer ({e}): the local limiter decides"),
                    });
                }
            } else if !results.is_empty() {
                store.note_healthy();
            }
            self.decide(&results, x)
        })
    }
}

/// A key for an event: addresses and names are kept, a long value (a token, an API key) is cut.
fn redact(key: &str) -> String {
    key.split('|')
        .map(|p| {
            if p.len() > 24 {
                format!(
                    "{}…",
                    &p[..p.char_indices().nth(8).map_or(p.len(), |(i, _)| i)]
                )
            } else {
                p.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("|")
}
