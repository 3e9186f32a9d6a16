//! What a stage can say about a request: continue, or block with a reason.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// A stable identifier of a rule: `ip-deny`, `custom-block-legacy`, `942100`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleId(pub Arc<str>);

impl RuleId {
    /// Creates a rule id.
    pub fn new(id: &str) -> Self {
        Self(Arc::from(id))
    }

    /// Returns the id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outcome of one stage hook.
///
/// There is deliberately no `Allow`: every stage votes, and no stage can tell the driver to
/// skip the ones after it.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The stage has no objection.
    Continue,
    /// The stage wants the request (or response) stopped.
    Block(Block),
}

/// A request to stop the exchange, with what the client is told and what operators see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The HTTP status the client receives.
    pub status: StatusCode,
    /// The public, stable reason code.
    pub reason: Reason,
    /// The rule that decided, when there is one.
    pub rule: Option<RuleId>,
    /// A short, redacted detail for events and logs; never sent to the client.
    pub detail: String,
    /// Headers the client's response carries: `WWW-Authenticate` on a 401, `Retry-After` on a
    /// 429. Protocol headers only; never a detail of the decision.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// What the client did wrong, for clients: `(location, message)` pairs such as
    /// `("/query/limit", "must be <= 100")`. When there are any, the answer is an RFC 9457
    /// problem document listing them; they must never carry rule internals or secrets.
    pub problems: Vec<(String, String)>,
    /// A repeat of a refusal already recorded (a rate-limited key during a flood): the
    /// driver answers it without recording another finding, so an attack cannot flood the
    /// event store.
    pub repeat: bool,
}

impl Block {
    /// Creates a block with the reason's default status.
    pub fn new(reason: Reason) -> Self {
        Self {
            status: reason.default_status(),
            reason,
            rule: None,
            detail: String::new(),
            headers: Vec::new(),
            problems: Vec::new(),
            repeat: false,
        }
    }

    /// Adds a header to the client's response.
    pub fn header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds a problem the client is told about (location, message).
    pub fn problem(mut self, location: impl Into<String>, message: impl Into<String>) -> Self {
        self.problems.push((location.into(), message.into()));
        self
    }

    /// Marks the block as a repeat of one already recorded (see [`Block::repeat`]).
    pub fn repeated(mut self, repeat: bool) -> Self {
        self.repeat = repeat;
        self
    }

    /// Sets the rule id.
    pub fn rule(mut self, rule: RuleId) -> Self {
        self.rule = Some(rule);
        self
    }

    /// Sets the status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Sets the operator-facing detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// Why a request was stopped: a small, low-cardinality set that is both the public error code
/// and a metric label.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The request body is larger than allowed.
    BodyTooLarge,
    /// A response carried sensitive data and was stopped.
    DataLeak,
    /// The client may not have this.
    Forbidden,
    /// The request head is larger than allowed.
    HeaderTooLarge,
    /// The request could not be parsed or is ambiguous.
    MalformedRequest,
    /// No API or route serves this request.
    NotFound,
    /// Too many requests are in flight; new ones are shed.
    Overloaded,
    /// The client is over a rate limit.
    RateLimited,
    /// The client was too slow to send its request.
    RequestTimeout,
    /// The request or response does not match the declared schema.
    SchemaViolation,
    /// No valid credential was given.
    Unauthenticated,
    /// A stage could not decide and its `on_error` is `deny`.
    Unavailable,
    /// The upstream could not be reached or answered badly.
    UpstreamError,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// A WAF rule matched.
    WafRuleMatch,
}

impl Reason {
    /// Returns the stable code sent to clients and used as a metric label.
    pub fn code(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::DataLeak => "data_leak",
            Self::Forbidden => "forbidden",
            Self::HeaderTooLarge => "header_too_large",
            Self::MalformedRequest => "malformed_request",
            Self::NotFound => "not_found",
            Self::Overloaded => "overloaded",
            Self::RateLimited => "rate_limited",
            Self::RequestTimeout => "request_timeout",
            Self::SchemaViolation => "schema_violation",
            Self::Unauthenticated => "unauthenticated",
            Self::Unavailable => "unavailable",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::WafRuleMatch => "waf_rule_match",
        }
    }

    /// Returns the status used when a stage does not choose one.
    pub fn default_status(self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::DataLeak | Self::UpstreamError => StatusCode::BAD_GATEWAY,
            Self::Forbidden | Self::WafRuleMatch => StatusCode::FORBIDDEN,
            Self::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::MalformedRequest | Self::SchemaViolation => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Overloaded | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether a stage's blocks are applied or only recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Blocks stop the request.
    #[default]
    Enforce,
    /// Blocks become findings ("would have blocked"); the request goes on.
    Monitor,
}

/// What the driver does when a stage cannot decide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail closed: the request is answered with 503 `unavailable`.
    #[default]
    Deny,
    /// Fail open: a finding is recorded and the request goes on.
    Allow,
}
