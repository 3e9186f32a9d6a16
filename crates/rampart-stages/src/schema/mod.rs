//! `schema`: the API's OpenAPI document as a positive security model. Requests the document
//! does not describe are refused (or logged), and responses that break it are replaced by a
//! 502 (or logged).
//!
//! ```yaml
//! apis:
//!   - name: users
//!     openapi: specs/users.yaml
//!     schema:
//!       request: enforce            # enforce | monitor | off
//!       response: monitor
//!       unknown_endpoints: enforce
//!       max_response_bytes: 1048576
//!       operations:
//!         uploadAvatar: { request: monitor }
//! ```
//!
//! Two stages share one compiled document: [`OperationRouter`] runs first in the pipeline and
//! only names the operation (`api.operation`, `http.request.path_params` for rules and
//! authorization); [`SchemaValidator`] judges, at its own place after authentication, rate
//! limits and the rest, on the request head, the request body, the response head and the
//! response body.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use rampart_core::{
    Block, CompileCx, Decision, Exchange, Finding, FindingAction, Outcome, Phases, Reason, RuleId,
    Stage, StageId,
};
use rampart_openapi::{Mode, RequestParts, ResponseParts, Route, Spec, Violation, ViolationKind};
use serde::Deserialize;

/// The validating stage's id.
pub const STAGE: StageId = StageId("schema");
/// The routing stage's id.
pub const ROUTER: StageId = StageId("schema.route");

/// `enforce`, `monitor` or `off`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModeConfig {
    /// Refuse what does not conform.
    Enforce,
    /// Record it, let it through.
    Monitor,
    /// Do not check.
    Off,
}

impl From<ModeConfig> for Mode {
    fn from(m: ModeConfig) -> Self {
        match m {
            ModeConfig::Enforce => Mode::Enforce,
            ModeConfig::Monitor => Mode::Monitor,
            ModeConfig::Off => Mode::Off,
        }
    }
}

/// An API's `schema` section.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    /// Requests: parameters, media type, body.
    #[serde(default = "enforce")]
    pub request: ModeConfig,
    /// Responses: status, media type, headers, JSON body.
    #[serde(default = "monitor")]
    pub response: ModeConfig,
    /// Requests to a path or method the document does not declare.
    #[serde(default = "enforce")]
    pub unknown_endpoints: ModeConfig,
    /// The largest response body held whole for validation; larger ones stream unvalidated,
    /// with a finding.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Modes of single operations, by operation id (over the document's `x-rampart`).
    #[serde(default)]
    pub operations: BTreeMap<String, OperationConfig>,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            request: ModeConfig::Enforce,
            response: ModeConfig::Monitor,
            unknown_endpoints: ModeConfig::Enforce,
            max_response_bytes: default_max_response_bytes(),
            operations: BTreeMap::new(),
        }
    }
}

fn enforce() -> ModeConfig {
    ModeConfig::Enforce
}

fn monitor() -> ModeConfig {
    ModeConfig::Monitor
}

fn default_max_response_bytes() -> u64 {
    1024 * 1024
}

/// One operation's modes.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OperationConfig {
    /// Request validation of this operation.
    #[serde(default)]
    pub request: Option<ModeConfig>,
    /// Response validation of this operation.
    #[serde(default)]
    pub response: Option<ModeConfig>,
}

/// The compiled document with the API's modes.
#[derive(Debug)]
pub struct Schema {
    spec: Spec,
    /// The path prefixes requests are matched under (the document's server paths, under the
    /// API's base path when it is stripped before the upstream), computed at compile time.
    prefixes: Vec<String>,
    unknown: Mode,
    max_response_bytes: u64,
    /// Per operation: (request mode, response mode).
    modes: Vec<(Mode, Mode)>,
    by_id: HashMap<Arc<str>, usize>,
    reads_bodies: bool,
    checks_responses: bool,
}

impl Schema {
    /// Loads and compiles an API's document. Problems with the document are reported at
    /// `openapi`; problems with the section at `schema.*`.
    pub fn compile(
        path: &Path,
        shown_as: &str,
        config: &SchemaConfig,
        base: &str,
        cx: &mut CompileCx,
    ) -> Option<Arc<Self>> {
        let spec = match rampart_openapi::load(path) {
            Ok(s) => s,
            Err(errors) => {
                let n = errors.len();
                let mut text = String::new();
                for e in &errors {
                    text.push('\n');
                    text.push_str(&e.to_string());
                }
                cx.at("openapi", |cx| {
                    cx.error(format!(
                        "the OpenAPI document {shown_as} has {n} problem{}:{text}",
                        if n == 1 { "" } else { "s" }
                    ));
                });
                return None;
            }
        };
        let known: Vec<String> = spec.operations().iter().map(|o| o.id.to_string()).collect();
        cx.at("schema", |cx| {
            cx.at("operations", |cx| {
                for id in config.operations.keys() {
                    if !known.contains(id) {
                        cx.at(id.clone(), |cx| cx.unknown("operation", id, &known));
                    }
                }
            });
        });
        let mut modes = Vec::new();
        let mut by_id = HashMap::new();
        let mut reads_bodies = false;
        let mut checks_responses = false;
        for (i, op) in spec.operations().iter().enumerate() {
            let over = config.operations.get(&*op.id);
            let req = over
                .and_then(|o| o.request)
                .map(Mode::from)
                .or(op.overrides.request)
                .unwrap_or(config.request.into());
            let rsp = over
                .and_then(|o| o.response)
                .map(Mode::from)
                .or(op.overrides.response)
                .unwrap_or(config.response.into());
            reads_bodies |= req != Mode::Off && spec.has_request_body(i);
            checks_responses |= rsp != Mode::Off;
            modes.push((req, rsp));
            by_id.insert(op.id.clone(), i);
        }
        Some(Arc::new(Self {
            prefixes: spec.route_prefixes(base),
            spec,
            unknown: config.unknown_endpoints.into(),
            max_response_bytes: config.max_response_bytes,
            modes,
            by_id,
            reads_bodies,
            checks_responses,
        }))
    }

    /// Returns the compiled document.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The path prefixes the document's templates are under (server paths, base path).
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// An operation's mode for requests (`response: false`) or responses.
    fn mode(&self, op: usize, response: bool) -> Mode {
        self.modes
            .get(op)
            .map_or(Mode::Off, |m| if response { m.1 } else { m.0 })
    }

    /// An operation's id, the rule id of its findings.
    fn op_id(&self, op: usize) -> String {
        self.spec.operation(op).map_or("", |o| &*o.id).to_owned()
    }

    fn op_of(&self, x: &Exchange) -> Option<usize> {
        let id = x.route.as_ref()?.operation.as_ref()?;
        self.by_id.get(id).copied()
    }

    /// The answer to violations, by mode: a block, a recorded finding, or nothing.
    fn judge(
        &self,
        violations: Vec<Violation>,
        mode: Mode,
        rule: &str,
        response: bool,
        x: &mut Exchange,
    ) -> Outcome {
        if violations.is_empty() || mode == Mode::Off {
            return Ok(Decision::Continue);
        }
        let mut detail = String::new();
        for v in &violations {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&v.location);
            detail.push_str(": ");
            detail.push_str(&v.message);
            if detail.len() > 1024 {
                detail.truncate(1024);
                detail.push('…');
                break;
            }
        }
        if response {
            detail.insert_str(0, "response: ");
        }
        let rule = RuleId::new(rule);
        if mode == Mode::Monitor {
            x.record(Finding {
                stage: STAGE,
                rule: Some(rule),
                action: FindingAction::WouldBlock,
                reason: Reason::SchemaViolation,
                detail,
            });
            return Ok(Decision::Continue);
        }
        let status = if response {
            http::StatusCode::BAD_GATEWAY
        } else if violations.iter().any(|v| v.kind == ViolationKind::TooLarge) {
            http::StatusCode::PAYLOAD_TOO_LARGE
        } else if violations
            .iter()
            .any(|v| v.kind == ViolationKind::UnsupportedMediaType)
        {
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE
        } else {
            http::StatusCode::BAD_REQUEST
        };
        let mut block = Block::new(Reason::SchemaViolation)
            .status(status)
            .rule(rule)
            .detail(detail);
        if !response {
            // The client is told what it did wrong; never what the upstream did.
            for v in violations {
                block = block.problem(v.location, v.message);
            }
        }
        Ok(Decision::Block(block))
    }
}

/// Names the operation of each request, first in the pipeline; never blocks.
#[derive(Debug)]
pub struct OperationRouter(pub Arc<Schema>);

impl Stage for OperationRouter {
    fn id(&self) -> StageId {
        ROUTER
    }

    fn on_request_head(&self, req: &mut http::request::Parts, x: &mut Exchange) -> Outcome {
        let s = &self.0;
        if let Route::Operation(i, raw) =
            s.spec.route_under(&req.method, req.uri.path(), &s.prefixes)
        {
            if let (Some(route), Some(op)) = (x.route.as_mut(), s.spec.operation(i)) {
                route.operation = Some(op.id.clone());
            }
            x.path_params = s.spec.decode_path_params(&raw);
        }
        Ok(Decision::Continue)
    }
}

/// Validates request bodies against the document, in the request-body phase, ahead of the
/// WAF's body rules (a body that is not even the declared JSON is refused before any pattern
/// runs on it).
#[derive(Debug)]
pub struct SchemaBody(pub Arc<Schema>);

impl Stage for SchemaBody {
    fn id(&self) -> StageId {
        STAGE
    }

    fn phases(&self) -> Phases {
        if self.0.reads_bodies {
            Phases::REQUEST_BODY
        } else {
            Phases::NONE
        }
    }

    fn on_request_body(
        &self,
        req: &http::request::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        let s = &self.0;
        let Some(i) = s.op_of(x) else {
            return Ok(Decision::Continue);
        };
        let mode = s.mode(i, false);
        if mode == Mode::Off {
            return Ok(Decision::Continue);
        }
        if x.body_truncated {
            // Only a prefix was buffered (`oversize: inspect_prefix`): its content cannot be
            // judged as a whole, and the size policy already recorded it.
            return Ok(Decision::Continue);
        }
        let ct = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let v = s.spec.validate_request_body(i, ct, body);
        let id = s.op_id(i);
        s.judge(v, mode, &id, false, x)
    }
}

/// Validates requests and responses against the document.
#[derive(Debug)]
pub struct SchemaValidator(pub Arc<Schema>);

impl Stage for SchemaValidator {
    fn id(&self) -> StageId {
        STAGE
    }

    fn phases(&self) -> Phases {
        let s = &self.0;
        // The request body is validated by [`SchemaBody`], placed before the WAF's body rules.
        let mut p = Phases::REQUEST_HEAD;
        if s.checks_responses {
            p = p.union(Phases::RESPONSE_HEAD).union(Phases::RESPONSE_BODY);
        }
        p
    }

    fn on_request_head(&self, req: &mut http::request::Parts, x: &mut Exchange) -> Outcome {
        let s = &self.0;
        match s.spec.route_under(&req.method, req.uri.path(), &s.prefixes) {
            Route::Operation(i, raw) => {
                let mode = s.mode(i, false);
                if mode == Mode::Off {
                    return Ok(Decision::Continue);
                }
                let v = s.spec.validate_request_head(
                    i,
                    &raw,
                    RequestParts {
                        query: req.uri.query(),
                        headers: &req.headers,
                    },
                );
                let id = s.op_id(i);
                s.judge(v, mode, &id, false, x)
            }
            found => {
                if s.unknown == Mode::Off {
                    return Ok(Decision::Continue);
                }
                let (status, message) = if found == Route::UnknownMethod {
                    (
                        http::StatusCode::METHOD_NOT_ALLOWED,
                        "this method is not declared for this path",
                    )
                } else {
                    (http::StatusCode::NOT_FOUND, "no such endpoint in the API")
                };
                let detail = format!("unknown endpoint: {} {}", req.method, req.uri.path());
                let rule = RuleId::new("unknown_endpoint");
                if s.unknown == Mode::Monitor {
                    x.record(Finding {
                        stage: STAGE,
                        rule: Some(rule),
                        action: FindingAction::WouldBlock,
                        reason: Reason::NotFound,
                        detail,
                    });
                    return Ok(Decision::Continue);
                }
                Ok(Decision::Block(
                    Block::new(Reason::NotFound)
                        .status(status)
                        .rule(rule)
                        .detail(detail)
                        .problem("/path", message),
                ))
            }
        }
    }

    fn on_response_head(
        &self,
        _req: &http::request::Parts,
        rsp: &mut http::response::Parts,
        x: &mut Exchange,
    ) -> Outcome {
        let s = &self.0;
        let Some(i) = s.op_of(x) else {
            return Ok(Decision::Continue);
        };
        let mode = s.mode(i, true);
        if mode == Mode::Off {
            return Ok(Decision::Continue);
        }
        let v = s.spec.validate_response_head(
            i,
            ResponseParts {
                status: rsp.status.as_u16(),
                headers: &rsp.headers,
            },
        );
        let id = s.op_id(i);
        s.judge(v, mode, &id, true, x)
    }

    fn response_body_limit(&self, rsp: &http::response::Parts, x: &Exchange) -> Option<u64> {
        let s = &self.0;
        let i = s.op_of(x)?;
        if s.mode(i, true) == Mode::Off {
            return None;
        }
        // A compressed body is not decoded here: it streams unvalidated.
        let encoded = rsp
            .headers
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let ct = rsp
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        (!encoded && s.spec.wants_response_body(i, rsp.status.as_u16(), ct))
            .then_some(s.max_response_bytes)
    }

    fn on_response_body_whole(
        &self,
        rsp: &mut http::response::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        let s = &self.0;
        let Some(i) = s.op_of(x) else {
            return Ok(Decision::Continue);
        };
        let mode = s.mode(i, true);
        let ct = rsp
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let v = s
            .spec
            .validate_response_body(i, rsp.status.as_u16(), ct, body);
        let id = s.op_id(i);
        s.judge(v, mode, &id, true, x)
    }
}

#[cfg(test)]
mod tests;
