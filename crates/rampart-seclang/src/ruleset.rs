//! From parsed directives to a rule set ready to evaluate: `SecDefaultAction` merged into each
//! rule, removals and target updates applied where they stand in the files, operators
//! compiled, and the whole checked (ids present and unique, chains well formed, `skipAfter`
//! markers that exist), every problem reported at once.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::ast::{
    Action, DirectiveKind, EngineMode, IdRange, LimitAction, Rule, Span, Transform, Variable,
};
use crate::operator::{compile, CompiledOperator};
use crate::parse::{Diagnostic, Parsed};

/// What a rule does when it matches, after `SecDefaultAction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disruptive {
    /// Nothing (scoring rules).
    Pass,
    /// Whatever `SecDefaultAction` says for `block` (CRS: `pass`, with scoring).
    Block,
    /// Refuse.
    Deny,
    /// Close the connection.
    Drop,
    /// Stop evaluating (a phase, the request, or all).
    Allow,
    /// Refuse with a redirect (treated as a refusal).
    Redirect,
}

/// One link of a compiled rule (the head or a chained rule).
#[derive(Debug)]
pub struct Link {
    /// Where it was written.
    pub span: Span,
    /// The variables inspected (exclusions included, marked).
    pub variables: Vec<Variable>,
    /// For each variable with a `/regex/` selector, the compiled regex (case-insensitive, as
    /// ModSecurity compares keys).
    pub selectors: Vec<Option<regex::bytes::Regex>>,
    /// The operator.
    pub operator: CompiledOperator,
    /// The transformations, in order (inherited ones first unless `t:none`); equal chains
    /// share one allocation, so a transaction's cache tells them apart by address.
    pub transforms: Arc<[Transform]>,
    /// Every action of the link, defaults merged for the head.
    pub actions: Vec<Action>,
    /// `multiMatch`: the operator runs after each transformation, not only the last.
    pub multi_match: bool,
    /// `capture`: the operator's groups go to `TX.0`–`TX.9` (set on the head, for the chain).
    pub capture: bool,
}

/// A compiled rule.
#[derive(Debug)]
pub struct CompiledRule {
    /// Its id.
    pub id: u32,
    /// Its phase, 1 to 5.
    pub phase: u8,
    /// What a match does (`block` already resolved to its phase's default).
    pub disruptive: Disruptive,
    /// Whether a match is logged (`nolog` turns it off).
    pub log: bool,
    /// `msg`, unexpanded.
    pub msg: Option<String>,
    /// `logdata`, unexpanded.
    pub logdata: Option<String>,
    /// `status` for a refusal.
    pub status: Option<u16>,
    /// The head, then each chained link.
    pub links: Vec<Link>,
    /// Its tags (for removals by tag and for paranoia levels).
    pub tags: Vec<String>,
    /// What its first link needs to possibly match, when the prefilter knows.
    pub prefilter: Option<crate::prefilter::RulePrefilter>,
}

/// A compiled rule set.
#[derive(Debug)]
pub struct Ruleset {
    /// The rules, in file order.
    pub rules: Vec<CompiledRule>,
    /// Markers: the index of the first rule after each.
    pub markers: HashMap<String, usize>,
    /// `SecRuleEngine`.
    pub engine: EngineMode,
    /// `SecRequestBodyAccess`.
    pub request_body_access: bool,
    /// `SecResponseBodyAccess`.
    pub response_body_access: bool,
    /// `SecResponseBodyMimeType`.
    pub response_mime_types: Vec<String>,
    /// `SecRequestBodyLimit`.
    pub request_body_limit: Option<u64>,
    /// `SecRequestBodyLimitAction`.
    pub request_body_limit_action: LimitAction,
    /// `SecComponentSignature`s.
    pub signatures: Vec<String>,
    /// Rules with a PCRE pattern only a backtracking engine runs (look-around,
    /// back-references), under [`crate::pcre::BACKTRACK_LIMIT`].
    pub backtracking: Vec<u32>,
    /// Rules with an operator that never matches in Rampart, with the operator
    /// (`@geoLookup`: no GeoIP database; `@rbl`: no DNS lookups on the request path).
    pub never_matching: Vec<(u32, &'static str)>,
    /// `SecCollectionTimeout`: how long a persistent record lives after its last change.
    pub collection_timeout_secs: u64,
    /// The prefilter's groups (rules by transformation chain), see [`crate::prefilter`].
    pub prefilter_groups: Vec<Option<crate::prefilter::Group>>,
}

fn diag(span: &Span, message: impl Into<String>, help: Option<String>) -> Diagnostic {
    Diagnostic {
        file: span.file.clone(),
        line: span.line,
        col: span.col,
        message: message.into(),
        help,
        source_line: std::fs::read_to_string(&*span.file)
            .ok()
            .and_then(|t| {
                t.lines()
                    .nth(span.line.saturating_sub(1) as usize)
                    .map(str::to_owned)
            })
            .unwrap_or_default(),
    }
}

fn is_disruptive(a: &Action) -> bool {
    matches!(
        a,
        Action::Block
            | Action::Deny
            | Action::Drop
            | Action::Pass
            | Action::Allow(_)
            | Action::Redirect(_)
    )
}

fn in_ranges(ranges: &[IdRange], id: u32) -> bool {
    ranges.iter().any(|r| r.contains(id))
}

/// Compiles what the parser read. A parse with problems is refused with them.
pub fn compile_ruleset(parsed: &Parsed) -> Result<Ruleset, Vec<Diagnostic>> {
    if !parsed.diagnostics.is_empty() {
        return Err(parsed.diagnostics.clone());
    }
    let mut errors = Vec::new();
    let mut defaults: HashMap<u8, Vec<Action>> = HashMap::new();
    let mut rules: Vec<(Rule, Span)> = Vec::new();
    // Each marker with the ids of the rules before it when it was read.
    let mut markers_at: Vec<(String, HashSet<u32>)> = Vec::new();
    let mut set = Ruleset {
        rules: Vec::new(),
        markers: HashMap::new(),
        engine: EngineMode::On,
        request_body_access: false,
        response_body_access: false,
        response_mime_types: Vec::new(),
        request_body_limit: None,
        request_body_limit_action: LimitAction::Reject,
        signatures: Vec::new(),
        backtracking: Vec::new(),
        never_matching: Vec::new(),
        collection_timeout_secs: crate::persist::DEFAULT_TIMEOUT_SECS,
        prefilter_groups: Vec::new(),
    };
    let mut rule_defaults: Vec<Vec<Action>> = Vec::new();
    let mut candidates: Vec<Option<crate::prefilter::Candidate>> = Vec::new();
    let mut chains: Vec<Arc<[Transform]>> = Vec::new();
    for d in &parsed.directives {
        match &d.kind {
            DirectiveKind::Rule(r) => {
                let phase = phase_of(&r.actions).unwrap_or(2);
                rule_defaults.push(defaults.get(&phase).cloned().unwrap_or_default());
                rules.push((r.clone(), d.span.clone()));
            }
            DirectiveKind::DefaultAction(actions) => {
                let Some(phase) = phase_of(actions) else {
                    errors.push(diag(&d.span, "`SecDefaultAction` needs a `phase`", None));
                    continue;
                };
                if !actions.iter().any(is_disruptive) {
                    errors.push(diag(
                        &d.span,
                        "`SecDefaultAction` needs a disruptive action (`pass`, `deny`, …)",
                        None,
                    ));
                }
                defaults.insert(phase, actions.clone());
            }
            DirectiveKind::Marker(m) => {
                markers_at.push((
                    m.clone(),
                    rules.iter().filter_map(|(r, _)| r.id()).collect(),
                ));
            }
            DirectiveKind::RuleEngine(m) => set.engine = *m,
            DirectiveKind::RequestBodyAccess(b) => set.request_body_access = *b,
            DirectiveKind::ResponseBodyAccess(b) => set.response_body_access = *b,
            DirectiveKind::ResponseBodyMimeType(t) => set.response_mime_types = t.clone(),
            DirectiveKind::RequestBodyLimit(n) => set.request_body_limit = Some(*n),
            DirectiveKind::RequestBodyLimitAction(a) => set.request_body_limit_action = *a,
            DirectiveKind::ComponentSignature(s) => set.signatures.push(s.clone()),
            DirectiveKind::RuleRemoveById(ranges) => {
                let mut k = 0;
                rules.retain(|(r, _)| {
                    let keep = !r.id().is_some_and(|id| in_ranges(ranges, id));
                    if !keep {
                        rule_defaults.remove(k);
                    } else {
                        k += 1;
                    }
                    keep
                });
            }
            DirectiveKind::RuleRemoveByTag(tag) => {
                let mut k = 0;
                rules.retain(|(r, _)| {
                    let keep = !r.tags().any(|t| t == tag);
                    if !keep {
                        rule_defaults.remove(k);
                    } else {
                        k += 1;
                    }
                    keep
                });
            }
            DirectiveKind::RuleRemoveByMsg(msg) => {
                let mut k = 0;
                rules.retain(|(r, _)| {
                    let keep = !r
                        .actions
                        .iter()
                        .any(|a| matches!(a, Action::Msg(m) if m == msg));
                    if !keep {
                        rule_defaults.remove(k);
                    } else {
                        k += 1;
                    }
                    keep
                });
            }
            DirectiveKind::RuleUpdateTargetById(ranges, vars) => {
                let mut hit = false;
                for (r, _) in &mut rules {
                    if r.id().is_some_and(|id| in_ranges(ranges, id)) {
                        r.variables.extend(vars.iter().cloned());
                        hit = true;
                    }
                }
                if !hit {
                    errors.push(diag(
                        &d.span,
                        "no rule loaded before this directive has these ids",
                        Some(
                            "a target update applies to rules already read: place it after them"
                                .into(),
                        ),
                    ));
                }
            }
            DirectiveKind::RuleUpdateTargetByTag(tag, vars) => {
                for (r, _) in &mut rules {
                    if r.tags().any(|t| t == tag) {
                        r.variables.extend(vars.iter().cloned());
                    }
                }
            }
            DirectiveKind::RuleUpdateActionById(ranges, actions) => {
                for (r, _) in &mut rules {
                    if r.id().is_some_and(|id| in_ranges(ranges, id)) {
                        // New disruptive actions replace the old; others are added.
                        if actions.iter().any(is_disruptive) {
                            r.actions.retain(|a| !is_disruptive(a));
                        }
                        r.actions.extend(actions.iter().cloned());
                    }
                }
            }
            DirectiveKind::RequestBodyNoFilesLimit(_)
            | DirectiveKind::ResponseBodyLimit(_)
            | DirectiveKind::ResponseBodyLimitAction(_)
            | DirectiveKind::Informational(..) => {}
            DirectiveKind::CollectionTimeout(secs) => set.collection_timeout_secs = *secs,
        }
    }
    let mut seen: HashMap<u32, Span> = HashMap::new();
    let known_markers: HashSet<&str> = markers_at.iter().map(|(m, _)| m.as_str()).collect();
    for ((rule, span), inherited) in rules.iter().zip(rule_defaults) {
        let Some(id) = rule.id() else {
            errors.push(diag(span, "a rule needs an `id`", None));
            continue;
        };
        if let Some(first) = seen.get(&id) {
            errors.push(diag(
                span,
                format!("rule id {id} is used twice"),
                Some(format!("first at {}:{}", first.file, first.line)),
            ));
            continue;
        }
        seen.insert(id, span.clone());
        for a in &rule.actions {
            if let Action::SkipAfter(m) = a {
                if !known_markers.contains(m.as_str()) {
                    errors.push(diag(
                        span,
                        format!("`skipAfter:{m}` names no `SecMarker`"),
                        None,
                    ));
                }
            }
        }
        let phase = phase_of(&rule.actions).unwrap_or(2);
        // The head's actions: the phase's defaults first, then its own; its own disruptive
        // action replaces the default one.
        let own_disruptive = rule.actions.iter().any(is_disruptive);
        let mut actions: Vec<Action> = inherited
            .iter()
            .filter(|a| !(own_disruptive && is_disruptive(a)))
            .filter(|a| !matches!(a, Action::Phase(_)))
            .cloned()
            .collect();
        actions.extend(rule.actions.iter().cloned());
        let of = |a: Option<&Action>| match a {
            Some(Action::Deny) => Disruptive::Deny,
            Some(Action::Drop) => Disruptive::Drop,
            Some(Action::Allow(_)) => Disruptive::Allow,
            Some(Action::Redirect(_)) => Disruptive::Redirect,
            Some(Action::Block) => Disruptive::Block,
            _ => Disruptive::Pass,
        };
        let mut disruptive = of(actions.iter().rev().find(|a| is_disruptive(a)));
        if disruptive == Disruptive::Block {
            // `block` does what the phase's default says.
            disruptive = match of(inherited.iter().rev().find(|a| is_disruptive(a))) {
                Disruptive::Block => Disruptive::Deny,
                d => d,
            };
        }
        let log = !actions
            .iter()
            .rev()
            .find(|a| matches!(a, Action::Log | Action::NoLog))
            .is_some_and(|a| matches!(a, Action::NoLog));
        let msg = actions.iter().rev().find_map(|a| match a {
            Action::Msg(m) => Some(m.clone()),
            _ => None,
        });
        let logdata = actions.iter().rev().find_map(|a| match a {
            Action::LogData(m) => Some(m.clone()),
            _ => None,
        });
        let status = actions.iter().rev().find_map(|a| match a {
            Action::Status(s) => Some(*s),
            _ => None,
        });
        let base = Path::new(&*span.file)
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut links = Vec::new();
        let mut link: Option<&Rule> = Some(rule);
        let mut head = true;
        let mut ok = true;
        while let Some(l) = link {
            if !head {
                let bad: Vec<&Action> = l
                    .actions
                    .iter()
                    .filter(|a| {
                        is_disruptive(a)
                            || matches!(
                                a,
                                Action::Id(_)
                                    | Action::Phase(_)
                                    | Action::Skip(_)
                                    | Action::SkipAfter(_)
                            )
                    })
                    .collect();
                if !bad.is_empty() {
                    errors.push(diag(
                        &l.span,
                        "a chained rule cannot have `id`, `phase`, a disruptive action or `skip`",
                        Some("put them on the first rule of the chain".into()),
                    ));
                    ok = false;
                }
            }
            let link_actions = if head {
                actions.clone()
            } else {
                l.actions.clone()
            };
            let mut selectors = Vec::new();
            for v in &l.variables {
                selectors.push(match &v.selector {
                    Some(crate::ast::Selector::Regex(re)) => {
                        match regex::bytes::RegexBuilder::new(re)
                            .case_insensitive(true)
                            .build()
                        {
                            Ok(r) => Some(r),
                            Err(e) => {
                                errors.push(diag(
                                    &l.span,
                                    format!("rule {id}: invalid key regex `{re}`: {e}"),
                                    None,
                                ));
                                ok = false;
                                None
                            }
                        }
                    }
                    _ => None,
                });
            }
            match compile(&l.operator, &base) {
                Ok(op) => {
                    if op.is_backtracking() {
                        set.backtracking.push(id);
                    }
                    if matches!(
                        l.operator.kind,
                        crate::ast::OperatorKind::GeoLookup | crate::ast::OperatorKind::Rbl
                    ) {
                        set.never_matching.push((id, l.operator.kind.as_str()));
                    }
                    links.push(Link {
                        span: l.span.clone(),
                        variables: l
                            .variables
                            .iter()
                            .map(|v| {
                                // TX keys are stored lowercased: the rule reads them so.
                                let mut v = v.clone();
                                if v.collection == crate::ast::Collection::Tx {
                                    if let Some(crate::ast::Selector::Key(k)) = &mut v.selector {
                                        k.make_ascii_lowercase();
                                    }
                                }
                                v
                            })
                            .collect(),
                        selectors,
                        operator: op,
                        transforms: intern(&mut chains, transforms(&link_actions)),
                        multi_match: link_actions.iter().any(|a| matches!(a, Action::MultiMatch)),
                        // Each link of a chain captures only when it says so (ModSecurity's
                        // chained rules are rules of their own): CRS 932207 logs what its second
                        // link captured, not what a later negated link saw.
                        capture: link_actions.iter().any(|a| matches!(a, Action::Capture)),
                        actions: link_actions,
                    });
                }
                Err(e) => {
                    errors.push(diag(&l.span, format!("rule {id}: {e}"), None));
                    ok = false;
                }
            }
            head = false;
            link = l.chain.as_deref();
        }
        if ok {
            candidates.push(prefilter_candidate(&rule.operator, &links[0]));
            set.rules.push(CompiledRule {
                id,
                phase,
                disruptive,
                log,
                msg,
                logdata,
                status,
                links,
                tags: rule.tags().map(str::to_owned).collect(),
                prefilter: None,
            });
        }
    }
    let (groups, prefilters) = crate::prefilter::build(candidates);
    for (r, p) in set.rules.iter_mut().zip(prefilters) {
        r.prefilter = p;
    }
    set.prefilter_groups = groups;
    // Marker positions in the compiled order.
    for (m, before) in markers_at {
        let index = set.rules.iter().filter(|r| before.contains(&r.id)).count();
        set.markers.insert(m, index);
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// What a rule's first link offers the prefilter (see [`crate::prefilter`]), if anything.
fn prefilter_candidate(
    op: &crate::ast::Operator,
    first: &Link,
) -> Option<crate::prefilter::Candidate> {
    use crate::ast::OperatorKind;
    if op.negated || first.multi_match || first.variables.is_empty() {
        return None;
    }
    let literals = match op.kind {
        OperatorKind::Rx if !op.param.contains("%{") => {
            crate::prefilter::rx_literals(&crate::operator::bytes_escapes(&op.param))?
        }
        OperatorKind::Pm | OperatorKind::PmFromFile | OperatorKind::Pmf => {
            first.operator.phrases()?.to_vec()
        }
        _ => return None,
    };
    if literals.is_empty() {
        return None;
    }
    let mut collections = Vec::new();
    for v in &first.variables {
        if v.exclude {
            continue;
        }
        if v.count || !crate::prefilter::stable(v.collection) {
            return None;
        }
        if !collections.contains(&v.collection) {
            collections.push(v.collection);
        }
    }
    if collections.is_empty() {
        return None;
    }
    Some(crate::prefilter::Candidate {
        chain: first.transforms.clone(),
        literals,
        collections,
    })
}

fn phase_of(actions: &[Action]) -> Option<u8> {
    actions.iter().rev().find_map(|a| match a {
        Action::Phase(p) => Some(*p),
        _ => None,
    })
}

/// The transformation chain: `t:none` clears what came before it.
/// One shared allocation per distinct transformation chain.
fn intern(chains: &mut Vec<Arc<[Transform]>>, chain: Vec<Transform>) -> Arc<[Transform]> {
    if let Some(c) = chains.iter().find(|c| ***c == *chain) {
        return c.clone();
    }
    let c: Arc<[Transform]> = Arc::from(chain);
    chains.push(c.clone());
    c
}

fn transforms(actions: &[Action]) -> Vec<Transform> {
    let mut out = Vec::new();
    for a in actions {
        if let Action::T(t) = a {
            if *t == Transform::None {
                out.clear();
            } else {
                out.push(*t);
            }
        }
    }
    out
}
