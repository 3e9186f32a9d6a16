//! `authz`: may this client have what it asks for? Per-API policies written in the rules
//! language, over the principal and the request, including object-level checks that stop
//! BOLA (broken object-level authorization: user A asking for user B's order).
//!
//! ```yaml
//! authz:
//!   - name: admins-delete
//!     when: 'http.request.method == "DELETE"'
//!     require: '"admins" in identity.groups'
//!   - name: own-profile
//!     methods: [GET, PUT]
//!     path: /v1/users/{user_id}
//!     require: 'http.request.path_params.user_id == identity.claims.sub'
//!   - name: signed-in
//!     require: 'identity.consumer != ""'
//! ```
//!
//! Policies are tried in order; the first whose `methods`, `path`, `operation` and `when` all
//! match the request decides: its `require` true (or absent) lets the request on, false answers
//! 403. When an API has policies and none matches, the request is refused (default deny). A
//! `path` template (`{name}` for one segment) also sets the path parameters rules see. A policy
//! that reads the request body is decided once the body is buffered.

use std::sync::Arc;

use bytes::Bytes;
use rampart_core::{
    Block, CompileCx, Decision, Exchange, Outcome, Phases, Reason, RuleId, Stage, StageId,
};
use rampart_rules::{ExprId, FieldPhase, Input, Limits, Lists, RuleSet, RuleSetBuilder};
use serde::Deserialize;

/// The stage's id.
pub const STAGE: StageId = StageId("authz");

/// One policy as written.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// A name, unique in the API: the rule id of its events.
    pub name: String,
    /// Methods the policy applies to (any when empty).
    #[serde(default)]
    pub methods: Vec<String>,
    /// A path template (`/v1/users/{id}`) the request path must match; its parameters become
    /// `http.request.path_params`.
    #[serde(default)]
    pub path: Option<String>,
    /// The OpenAPI operation id the request must be routed to.
    #[serde(default)]
    pub operation: Option<String>,
    /// A condition (rules language) for the policy to apply.
    #[serde(default)]
    pub when: Option<String>,
    /// What must hold for the request to be allowed (rules language); absent: allowed.
    #[serde(default)]
    pub require: Option<String>,
}

#[derive(Debug)]
struct Policy {
    id: RuleId,
    methods: Vec<http::Method>,
    path: Option<Template>,
    operation: Option<String>,
    when: Option<ExprId>,
    require: Option<ExprId>,
    needs_body: bool,
}

/// A path template: literal segments and `{name}` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl Template {
    /// Parses `/v1/users/{id}`.
    pub fn parse(t: &str) -> Result<Self, String> {
        if !t.starts_with('/') {
            return Err("a path template starts with /".to_owned());
        }
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for seg in t[1..].split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "\"{{{name}}}\" is not a parameter name (letters, digits, _)"
                    ));
                }
                if names.contains(&name) {
                    return Err(format!("parameter \"{name}\" appears twice"));
                }
                names.push(name);
                segments.push(Segment::Param(name.to_owned()));
            } else if seg.contains(['{', '}']) {
                return Err(format!(
                    "segment \"{seg}\": a parameter takes a whole segment, as in /users/{{id}}"
                ));
            } else {
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(Self { segments })
    }

    /// Matches a request path; returns the parameters, percent-decoded.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in self.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(l) => {
                    if l != part {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if part.is_empty() {
                        return None;
                    }
                    let decoded = rampart_rules::functions::url_decode_path(part.as_bytes());
                    params.push((name.clone(), String::from_utf8_lossy(&decoded).into_owned()));
                }
            }
        }
        Some(params)
    }
}

/// An API's policies, compiled.
#[derive(Debug)]
pub struct Policies {
    set: RuleSet,
    policies: Vec<Policy>,
    needs_body: bool,
}

impl Policies {
    /// Compiles an API's policies. `has_operations` tells whether the API's requests get an
    /// operation id (an OpenAPI document). Problems go to `cx`.
    pub fn compile(
        list: &[PolicyConfig],
        lists: &Lists,
        has_operations: bool,
        cx: &mut CompileCx,
    ) -> Option<Self> {
        let before = cx.diagnostics().len();
        let mut b = RuleSetBuilder::new(Limits::default(), lists);
        let mut policies = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (i, p) in list.iter().enumerate() {
            cx.at(format!("[{i}]"), |cx| {
                if p.name.is_empty() {
                    cx.at("name", |cx| cx.error("a policy needs a name"));
                } else if names.contains(&p.name.as_str()) {
                    cx.at("name", |cx| {
                        cx.error(format!("duplicate policy name \"{}\"", p.name))
                    });
                }
                names.push(&p.name);
                let methods = cx.at("methods", |cx| {
                    p.methods
                        .iter()
                        .enumerate()
                        .filter_map(|(j, m)| {
                            cx.at(format!("[{j}]"), |cx| {
                                match http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                                    Ok(m) => Some(m),
                                    Err(_) => {
                                        cx.error(format!("\"{m}\" is not a method"));
                                        None
                                    }
                                }
                            })
                        })
                        .collect::<Vec<_>>()
                });
                let path = p.path.as_ref().and_then(|t| {
                    cx.at("path", |cx| match Template::parse(t) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            cx.error(e);
                            None
                        }
                    })
                });
                if p.operation.is_some() && !has_operations {
                    cx.at("operation", |cx| {
                        cx.error_with_help(
                            "operation ids come from the API's OpenAPI document, and this API has none",
                            "match the request with `methods` and `path` instead",
                        )
                    });
                }
                let mut needs_body = false;
                let mut expr = |cx: &mut CompileCx, key: &str, src: &Option<String>| {
                    let src = src.as_ref()?;
                    cx.at(key.to_owned(), |cx| {
                        let ast = match rampart_rules::parse(src, &Limits::default()) {
                            Ok(a) => a,
                            Err(e) => {
                                e.report(cx, src);
                                return None;
                            }
                        };
                        let phase = rampart_rules::phase_of(&ast);
                        if phase == FieldPhase::ResponseHead {
                            cx.error("a policy decides before the upstream is asked: it cannot read http.response.*");
                            return None;
                        }
                        needs_body |= phase == FieldPhase::RequestBody;
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
                };
                let when = expr(cx, "when", &p.when);
                let require = expr(cx, "require", &p.require);
                policies.push(Policy {
                    id: RuleId::new(&p.name),
                    methods,
                    path,
                    operation: p.operation.clone(),
                    when,
                    require,
                    needs_body,
                });
            });
        }
        if cx.diagnostics().len() != before {
            return None;
        }
        let needs_body = policies.iter().any(|p| p.needs_body);
        Some(Self {
            set: b.build(),
            policies,
            needs_body,
        })
    }

    /// Returns true if there is no policy.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

/// The `authz` stage of one API.
#[derive(Debug, Clone)]
pub struct AuthzStage {
    policies: Arc<Policies>,
}

impl AuthzStage {
    /// Creates the stage.
    pub fn new(policies: Arc<Policies>) -> Self {
        Self { policies }
    }

    /// Decides with what is known; `body` is `None` in the head phase.
    fn decide(&self, req: &http::request::Parts, body: Option<&[u8]>, x: &mut Exchange) -> Outcome {
        let ps = &self.policies;
        for p in &ps.policies {
            if !p.methods.is_empty() && !p.methods.contains(&req.method) {
                continue;
            }
            if let Some(op) = &p.operation {
                let routed = x.route.as_ref().and_then(|r| r.operation.as_deref());
                if routed != Some(op.as_str()) {
                    continue;
                }
            }
            let params = match &p.path {
                Some(t) => match t.matches(req.uri.path()) {
                    Some(params) => Some(params),
                    None => continue,
                },
                None => None,
            };
            if p.needs_body && body.is_none() {
                // Decided once the body is there (the body phase runs for every request).
                return Ok(Decision::Continue);
            }
            if let Some(params) = params {
                x.path_params = params;
            }
            let x_ref: &Exchange = x;
            let mut cx = ps.set.context(Input {
                client_ip: Some(x_ref.client_ip),
                request: Some(req),
                body,
                principal: x_ref.principal.as_ref(),
                client_cert: x_ref.client_cert(),
                api: x_ref.route.as_ref().map(|r| &*r.api),
                operation: x_ref.route.as_ref().and_then(|r| r.operation.as_deref()),
                path_params: &x_ref.path_params,
                ..Input::default()
            });
            if p.when.is_some_and(|w| !ps.set.eval(w, &mut cx)) {
                continue;
            }
            return Ok(match p.require {
                Some(r) if !ps.set.eval(r, &mut cx) => Decision::Block(
                    Block::new(Reason::Forbidden)
                        .rule(p.id.clone())
                        .detail(format!("policy \"{}\" does not allow this request", p.id)),
                ),
                _ => Decision::Continue,
            });
        }
        Ok(Decision::Block(
            Block::new(Reason::Forbidden)
                .rule(RuleId::new("authz-default-deny"))
                .detail("no authorization policy applies to this request"),
        ))
    }
}

impl Stage for AuthzStage {
    fn id(&self) -> StageId {
        STAGE
    }

    fn phases(&self) -> Phases {
        if self.policies.needs_body {
            Phases::REQUEST_HEAD.union(Phases::REQUEST_BODY)
        } else {
            Phases::REQUEST_HEAD
        }
    }

    fn on_request_head(&self, req: &mut http::request::Parts, x: &mut Exchange) -> Outcome {
        self.decide(req, None, x)
    }

    fn on_request_body(
        &self,
        req: &http::request::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        self.decide(req, Some(body), x)
    }
}

#[cfg(test)]
mod tests;
