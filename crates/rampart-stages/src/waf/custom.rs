use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use rampart_core::diagnostics::nearest;
use rampart_core::{
    Block, CompileCx, Decision, Enforcement, Exchange, Finding, FindingAction, Outcome, Phases,
    Reason, RuleId, Stage, StageId,
};
use rampart_rules::ast::{visit_operands, OperandKind};
use rampart_rules::scheme;
use rampart_rules::{ExprId, FieldPhase, Input, Limits, Lists, RuleSet, RuleSetBuilder};

use super::config::{CustomAction, CustomRuleConfig, WafConfig};

/// The stage's id, in events, metrics and `skip` lists.
pub const STAGE: StageId = StageId("waf.custom");

/// The stages a `skip` rule may switch off. Authentication, authorization, IP rules and the
/// DDoS guard are not among them: a rule can waive inspection, never identity or access.
pub const SKIPPABLE_STAGES: &[&str] = &["waf.custom", "waf.crs", "ratelimit", "schema", "dlp"];

/// One section's compiled rules (the global `waf` or an API's).
#[derive(Debug)]
pub struct CustomRules {
    set: RuleSet,
    rules: Vec<Rule>,
    /// Indexes of `rules` by phase, in file order.
    buckets: [Vec<usize>; 4],
}

#[derive(Debug)]
struct Rule {
    id: RuleId,
    expr: ExprId,
    action: Action,
    enforcement: Enforcement,
    status: StatusCode,
    detail: String,
}

#[derive(Debug)]
enum Action {
    Block,
    Log,
    Skip {
        stages: Vec<StageId>,
        rules: Vec<RuleId>,
    },
}

fn bucket(p: FieldPhase) -> usize {
    match p {
        FieldPhase::RequestHead => 0,
        FieldPhase::Authenticated => 1,
        FieldPhase::RequestBody => 2,
        FieldPhase::ResponseHead => 3,
    }
}

impl CustomRules {
    /// Compiles one section. `all_ids` holds every custom rule id of the config (for `skip`
    /// targets). Problems go to `cx`; `None` if any.
    pub fn compile(
        section: &WafConfig,
        lists: &Lists,
        all_ids: &[String],
        cx: &mut CompileCx,
    ) -> Option<Self> {
        let before = cx.diagnostics().len();
        let mut b = RuleSetBuilder::new(Limits::default(), lists);
        let mut rules = Vec::new();
        let mut buckets: [Vec<usize>; 4] = Default::default();
        cx.at("custom", |cx| {
            for (i, r) in section.custom.iter().enumerate() {
                cx.at(format!("[{i}]"), |cx| {
                    if let Some(rule) = compile_rule(r, section.enforcement, &mut b, all_ids, cx) {
                        buckets[bucket(rule.1)].push(rules.len());
                        rules.push(rule.0);
                    }
                });
            }
        });
        (cx.diagnostics().len() == before).then(|| Self {
            set: b.build(),
            rules,
            buckets,
        })
    }

    /// Returns the number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Returns true if there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn has(&self, p: FieldPhase) -> bool {
        !self.buckets[bucket(p)].is_empty()
    }
}

fn compile_rule(
    r: &CustomRuleConfig,
    default: Enforcement,
    b: &mut RuleSetBuilder<'_>,
    all_ids: &[String],
    cx: &mut CompileCx,
) -> Option<(Rule, FieldPhase)> {
    let before = cx.diagnostics().len();
    if r.id.is_empty() {
        cx.at("id", |cx| cx.error("a rule id must not be empty"));
    }
    let compiled = cx.at("when", |cx| {
        let ast = match rampart_rules::parse(&r.when, &Limits::default()) {
            Ok(ast) => ast,
            Err(e) => {
                e.report(cx, &r.when);
                return None;
            }
        };
        match b.add_ast(&ast) {
            Ok(id) => Some((id, ast)),
            Err(errs) => {
                for e in &errs {
                    e.report(cx, &r.when);
                }
                None
            }
        }
    });
    let mut phase = compiled
        .as_ref()
        .map_or(FieldPhase::RequestHead, |(_, ast)| {
            rampart_rules::phase_of(ast)
        });
    if let Some(p) = &r.phase {
        cx.at("phase", |cx| match FieldPhase::parse(p) {
            None => cx.unknown(
                "phase",
                p,
                FieldPhase::ALL.iter().map(|p| p.as_str()),
            ),
            Some(want) if want < phase => {
                // Name the field that needs the later phase.
                let mut culprit = String::new();
                if let Some((_, ast)) = &compiled {
                    visit_operands(ast, &mut |o| {
                        if let OperandKind::Field { name, .. } = &o.kind {
                            if scheme::field(name).is_some_and(|f| f.phase > want)
                                && culprit.is_empty()
                            {
                                culprit.clone_from(name);
                            }
                        }
                    });
                }
                cx.error(format!(
                    "the rule reads \"{culprit}\", which has no value before {phase}, so it cannot run in {want}"
                ));
            }
            Some(want) => phase = want,
        });
    }
    let status = match (r.action, r.status) {
        (_, None) => StatusCode::FORBIDDEN,
        (CustomAction::Block, Some(s)) => match StatusCode::from_u16(s) {
            Ok(s) if (400..=599).contains(&s.as_u16()) => s,
            _ => {
                cx.at("status", |cx| {
                    cx.error(format!("status {s} is not an error status (400-599)"))
                });
                StatusCode::FORBIDDEN
            }
        },
        (_, Some(_)) => {
            cx.at("status", |cx| {
                cx.error("`status` only applies to `action: block`")
            });
            StatusCode::FORBIDDEN
        }
    };
    let action = match r.action {
        CustomAction::Block => Action::Block,
        CustomAction::Log => Action::Log,
        CustomAction::Skip => {
            let mut stages = Vec::new();
            let mut rules = Vec::new();
            cx.at("skip", |cx| {
                if r.skip.is_empty() {
                    cx.error("`action: skip` needs a `skip` list of stages or rule ids");
                }
                for (i, t) in r.skip.iter().enumerate() {
                    cx.at(format!("[{i}]"), |cx| {
                        if let Some(s) = SKIPPABLE_STAGES.iter().find(|s| **s == t.as_str()) {
                            stages.push(StageId(s));
                        } else if all_ids.iter().any(|id| id == t) {
                            rules.push(RuleId::new(t));
                        } else {
                            let known = SKIPPABLE_STAGES
                                .iter()
                                .map(|s| (*s).to_owned())
                                .chain(all_ids.iter().cloned());
                            match nearest(t, known) {
                                Some(n) => cx.error_with_help(
                                    format!("\"{t}\" is neither a stage that can be skipped nor a custom rule id"),
                                    format!("did you mean \"{n}\"?"),
                                ),
                                None => cx.error_with_help(
                                    format!("\"{t}\" is neither a stage that can be skipped nor a custom rule id"),
                                    format!("the stages are {}", SKIPPABLE_STAGES.join(", ")),
                                ),
                            }
                        }
                    });
                }
            });
            Action::Skip { stages, rules }
        }
    };
    if r.action != CustomAction::Skip && !r.skip.is_empty() {
        cx.at("skip", |cx| {
            cx.error("`skip` only applies to `action: skip`")
        });
    }
    let (expr, _) = compiled?;
    (cx.diagnostics().len() == before).then(|| {
        (
            Rule {
                id: RuleId::new(&r.id),
                expr,
                action,
                enforcement: r.enforcement.unwrap_or(default),
                status,
                detail: if r.description.is_empty() {
                    "custom rule matched".to_owned()
                } else {
                    r.description.clone()
                },
            },
            phase,
        )
    })
}

/// The custom-rules stage at one position of the pipeline: the early one (request head, request
/// body, response head) or the one after authentication (rules that read `identity.*`).
#[derive(Clone, Debug)]
pub struct CustomRulesStage {
    sections: Vec<Arc<CustomRules>>,
    after_auth: bool,
    phases: Phases,
}

impl CustomRulesStage {
    /// The early stage over `sections` (global first), or `None` when it has nothing to do.
    pub fn early(sections: &[Arc<CustomRules>]) -> Option<Self> {
        let has = |p| sections.iter().any(|s| s.has(p));
        let mut phases = Phases::NONE;
        for (p, set) in [
            (FieldPhase::RequestHead, Phases::REQUEST_HEAD),
            (FieldPhase::RequestBody, Phases::REQUEST_BODY),
            (FieldPhase::ResponseHead, Phases::RESPONSE_HEAD),
        ] {
            if has(p) {
                phases = phases.union(set);
            }
        }
        Self::new(sections, false, phases)
    }

    /// The stage that runs after authentication, or `None` when no rule reads `identity.*`
    /// alone.
    pub fn after_auth(sections: &[Arc<CustomRules>]) -> Option<Self> {
        let phases = if sections.iter().any(|s| s.has(FieldPhase::Authenticated)) {
            Phases::REQUEST_HEAD
        } else {
            Phases::NONE
        };
        Self::new(sections, true, phases)
    }

    fn new(sections: &[Arc<CustomRules>], after_auth: bool, phases: Phases) -> Option<Self> {
        (phases != Phases::NONE).then(|| Self {
            sections: sections.to_vec(),
            after_auth,
            phases,
        })
    }

    fn run(&self, phase: FieldPhase, data: Data<'_>, x: &mut Exchange) -> Outcome {
        let b = bucket(phase);
        // Evaluate with the exchange borrowed; apply what matched afterwards.
        let mut matched: Vec<&Rule> = Vec::new();
        {
            let x_ref: &Exchange = x;
            let mut skipped_rules: Vec<&RuleId> = Vec::new();
            let mut skip_self = x_ref.skips_stage(STAGE);
            'sections: for section in &self.sections {
                let idx = &section.buckets[b];
                if idx.is_empty() {
                    continue;
                }
                let mut cx = section.set.context(Input {
                    request: data.request,
                    body: data.body,
                    response: data.response,
                    ..base_input(x_ref)
                });
                for &i in idx {
                    if skip_self {
                        break 'sections;
                    }
                    let rule = &section.rules[i];
                    if x_ref.skips_rule(rule.id.as_str()) || skipped_rules.contains(&&rule.id) {
                        continue;
                    }
                    if !section.set.eval(rule.expr, &mut cx) {
                        continue;
                    }
                    matched.push(rule);
                    match &rule.action {
                        Action::Block if rule.enforcement == Enforcement::Enforce => {
                            break 'sections;
                        }
                        Action::Skip { stages, rules } => {
                            skip_self |= stages.contains(&STAGE);
                            skipped_rules.extend(rules.iter());
                        }
                        _ => {}
                    }
                }
            }
        }
        for rule in matched {
            let finding = |action| Finding {
                stage: STAGE,
                rule: Some(rule.id.clone()),
                action,
                reason: Reason::WafRuleMatch,
                detail: rule.detail.clone(),
            };
            match &rule.action {
                Action::Block if rule.enforcement == Enforcement::Enforce => {
                    return Ok(Decision::Block(
                        Block::new(Reason::WafRuleMatch)
                            .status(rule.status)
                            .rule(rule.id.clone())
                            .detail(rule.detail.clone()),
                    ));
                }
                Action::Block => x.record(finding(FindingAction::WouldBlock)),
                Action::Log => x.record(finding(FindingAction::Log)),
                Action::Skip { stages, rules } => {
                    x.record(finding(FindingAction::Log));
                    x.skip.stages.extend(stages.iter().copied());
                    x.skip.rules.extend(rules.iter().cloned());
                }
            }
        }
        Ok(Decision::Continue)
    }
}

fn base_input(x: &Exchange) -> Input<'_> {
    Input {
        client_ip: Some(x.client_ip),
        principal: x.principal.as_ref(),
        client_cert: x.client_cert(),
        api: x.route.as_ref().map(|r| &*r.api),
        operation: x.route.as_ref().and_then(|r| r.operation.as_deref()),
        path_params: &x.path_params,
        ..Input::default()
    }
}

impl Stage for CustomRulesStage {
    fn id(&self) -> StageId {
        STAGE
    }

    fn phases(&self) -> Phases {
        self.phases
    }

    fn on_request_head(&self, req: &mut http::request::Parts, x: &mut Exchange) -> Outcome {
        let phase = if self.after_auth {
            FieldPhase::Authenticated
        } else {
            FieldPhase::RequestHead
        };
        let data = Data {
            request: Some(req),
            ..Data::default()
        };
        self.run(phase, data, x)
    }

    fn on_request_body(
        &self,
        req: &http::request::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        let data = Data {
            request: Some(req),
            body: Some(body),
            ..Data::default()
        };
        self.run(FieldPhase::RequestBody, data, x)
    }

    fn on_response_head(
        &self,
        req: &http::request::Parts,
        rsp: &mut http::response::Parts,
        x: &mut Exchange,
    ) -> Outcome {
        let data = Data {
            request: Some(req),
            response: Some(rsp),
            ..Data::default()
        };
        self.run(FieldPhase::ResponseHead, data, x)
    }
}

/// The HTTP data of the phase being run.
#[derive(Clone, Copy, Debug, Default)]
struct Data<'a> {
    request: Option<&'a http::request::Parts>,
    body: Option<&'a [u8]>,
    response: Option<&'a http::response::Parts>,
}
