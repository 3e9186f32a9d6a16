//! The one function that decides the order of the stages.

use std::sync::Arc;

use rampart_core::{Enforcement, OnError, Pipeline, Slot, Stage};
use rampart_stages::ddos::{DdosGuard, DdosStage};
use rampart_stages::dlp::{Dlp, DlpStage};
use rampart_stages::iprules::IpRules;
use rampart_stages::ratelimit::RateLimitStage;
use rampart_stages::schema::{OperationRouter, Schema, SchemaBody, SchemaValidator};
use rampart_stages::waf::{CrsRules, CrsStage, CustomRules, CustomRulesStage};

/// The stages of one API (or of requests no API serves), compiled, before they are ordered.
#[derive(Debug, Default)]
pub struct ApiStages<'a> {
    /// The global IP rules.
    pub global_ip: Option<&'a Arc<IpRules>>,
    /// The API's IP rules.
    pub api_ip: Option<&'a Arc<IpRules>>,
    /// The DDoS guard (global).
    pub ddos: Option<Arc<DdosGuard>>,
    /// The custom-rule sections (global first).
    pub waf_custom: &'a [Arc<CustomRules>],
    /// Authentication.
    pub authn: Option<Slot>,
    /// Authorization.
    pub authz: Option<Slot>,
    /// Rate limits (global and the API's).
    pub ratelimit: Option<RateLimitStage>,
    /// The API's OpenAPI document (routing to operations, then validation).
    pub schema: Option<Arc<Schema>>,
    /// Data loss prevention (the API's section, or the global one).
    pub dlp: Option<Arc<Dlp>>,
    /// The managed WAF rules (the API's, or the global ones).
    pub crs: Option<Arc<CrsRules>>,
}

/// Builds an API's pipeline. The order is a reviewed security property, not a user setting:
/// users enable and configure stages, they never reorder them.
///
/// The full order (DESIGN.md §2.1), of which the stages that exist today are placed below:
/// request head: `iprules` → `ddos` → `waf` (custom, head) → `authn` → `authz` → `ratelimit` →
/// `schema` (head); request body: `schema` (body) → `waf` (custom + CRS phase 2) → `dlp`
/// (requests); response head: `schema` (response) → `waf` (CRS phase 3); response body:
/// `waf` (CRS phase 4) → `dlp`.
pub fn build_pipeline(stages: ApiStages<'_>) -> Pipeline {
    let ApiStages {
        global_ip,
        api_ip,
        ddos,
        waf_custom,
        authn,
        authz,
        ratelimit,
        schema,
        dlp,
        crs,
    } = stages;
    let mut slots = Vec::new();
    // 0. Operation routing: names the OpenAPI operation and its path parameters, and never
    //    blocks. It comes first because everything after may read them: custom rules
    //    (`api.operation`), authorization policies by operation, events. Its cost is one
    //    lookup in a table of path templates.
    if let Some(s) = &schema {
        slots.push(Slot {
            stage: Arc::new(OperationRouter(s.clone())),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    }
    // 1. Global IP rules: the cheapest check, needing nothing but the client address. A blocked
    //    network must cost us as little as possible, and must never reach authentication (which
    //    may be expensive: argon2, token introspection) nor the upstream.
    if let Some(ip) = global_ip.filter(|r| !r.is_empty()) {
        slots.push(Slot {
            stage: ip.clone(),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    }
    // 2. The API's own IP rules: as cheap, but scoped to one API; after the global rules so
    //    that a global block cannot be undone by an API's allow.
    if let Some(ip) = api_ip.filter(|r| !r.is_empty()) {
        slots.push(Slot {
            stage: ip.clone(),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    }
    // 3. The DDoS guard: banned clients, load shedding and the per-address and per-prefix
    //    rates, after the IP rules (an operator's block needs no counting; an allowed office
    //    is still counted) and before anything that costs: a flood must be refused by a table
    //    lookup and a counter, never by rules, authentication or the upstream.
    if let Some(g) = ddos {
        slots.push(Slot {
            stage: Arc::new(DdosStage(g)),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    }
    // 3b. Schema validation of request bodies (request-body phase only; it does nothing in the
    //     head phase): the body phase runs after every head stage, and this slot puts schema
    //     validation ahead of the WAF's body rules, so that a body that is not even the
    //     declared JSON is refused before any pattern runs on it (DESIGN.md §2.1).
    if let Some(s) = &schema {
        let stage = SchemaBody(s.clone());
        if stage.phases() != rampart_core::Phases::NONE {
            slots.push(Slot {
                stage: Arc::new(stage),
                enforcement: Enforcement::Enforce,
                on_error: OnError::Deny,
            });
        }
    }
    // 4. WAF custom rules, early: the rules on the request head need only what was sent, so
    //    they run before authentication spends anything on a request the operator already
    //    knows to refuse. The same stage also runs the rules on the request body (request-body
    //    phase) and on the response head (response-head phase). Enforcement is per rule (the
    //    stage applies it), so the slot itself always enforces.
    if let Some(stage) = CustomRulesStage::early(waf_custom) {
        slots.push(Slot {
            stage: Arc::new(stage),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    }
    // 4b. The managed WAF rules (CRS): in the request-body phase, after the schema has
    //     refused bodies that are not even the declared JSON and after the custom rules (the
    //     operator's own verdicts come first), running CRS's phases 1 and 2 on the whole
    //     request at once. They cost the most of all the request stages, so everything cheap
    //     has had its say. Enforcement is the section's.
    if let Some(rules) = crs {
        slots.push(Slot {
            enforcement: rules.enforcement(),
            stage: Arc::new(CrsStage(rules)),
            on_error: OnError::Deny,
        });
    }
    // 5. Authentication: after the cheap refusals (IP rules, WAF head rules) because it may be
    //    expensive (argon2, a JWKS, an introspection call), and before everything that needs
    //    to know who the client is (authorization, identity rules, per-consumer limits). Its
    //    enforcement and on_error are the API's.
    if let Some(slot) = authn {
        slots.push(slot);
    }
    // 5b. Authorization: right after authentication, which it needs, and before rate limits,
    //     so a refused request does not use up a quota. A policy on the body is decided in
    //     the request-body phase, which runs (on an empty body if need be) for every request.
    if let Some(slot) = authz {
        slots.push(slot);
    }
    // 6. WAF custom rules that read `identity.*`: they can only run once authentication has
    //    set the principal, and before rate limiting so that a refused consumer does not use
    //    up a quota.
    if let Some(stage) = CustomRulesStage::after_auth(waf_custom) {
        slots.push(Slot {
            stage: Arc::new(stage),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    }
    // 7. Rate limits: after authentication, authorization and the identity rules, so that
    //    keys can be consumers and claims and a refused request does not use up a quota;
    //    before schema validation, so that a flood of malformed requests is counted too.
    //    Actions are per rule (the stage applies `log`), so the slot itself always enforces.
    if let Some(stage) = ratelimit {
        slots.push(Slot {
            stage: Arc::new(stage),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    }
    // 8. Schema validation: after authentication and authorization, so that a client without
    //    credentials learns nothing of the API's shape from detailed 400s, and after the rate
    //    limits, so that a flood of malformed requests is counted. The same stage validates
    //    the response (response-head and response-body phases); request bodies are
    //    validated at 3b. Enforcement is per operation and per
    //    direction (the stage applies it), so the slot itself always enforces.
    if let Some(s) = schema {
        slots.push(Slot {
            stage: Arc::new(SchemaValidator(s)),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    }
    // 9. Data loss prevention, last: on request bodies after every other check (a request
    //    refused anyway is not worth scanning), and on responses after schema validation, so
    //    that validation sees the body the upstream sent and the client gets the masked one.
    //    Its request-head hook only narrows `Accept-Encoding` to codings it can read. Monitor
    //    mode is the slot's: blocks become would-block findings and nothing is masked.
    if let Some(d) = dlp {
        let enforcement = if d.is_monitor() {
            Enforcement::Monitor
        } else {
            Enforcement::Enforce
        };
        slots.push(Slot {
            stage: Arc::new(DlpStage(d)),
            enforcement,
            on_error: OnError::Deny,
        });
    }
    Pipeline::new(slots)
}
