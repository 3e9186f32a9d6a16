//! The per-request state every stage reads and writes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Serialize;

use crate::{Reason, RuleId, StageId, UnixMillis};

/// Everything known about one request and its response, shared by the stages in named fields
/// (never a type map, so that it is plain which stage depends on which).
#[derive(Debug)]
pub struct Exchange {
    /// The request id, sent to the upstream and in every error and event.
    pub request_id: String,
    /// The connection the request came on.
    pub peer: Peer,
    /// The client's address as every stage must see it: the socket peer, or the address from
    /// `Forwarded` / `X-Forwarded-For` when the peer is a trusted proxy.
    pub client_ip: IpAddr,
    /// The API the request was routed to, once routing has run.
    pub route: Option<RouteInfo>,
    /// Who the client is, once authentication has run.
    pub principal: Option<Principal>,
    /// Everything the stages noticed, blocking or not.
    pub findings: Vec<Finding>,
    /// When things happened, from the exchange's clock.
    pub timings: Timings,
    /// True when the request body given to stages is only a prefix of the real one.
    pub body_truncated: bool,
    /// The response status, once known.
    pub response_status: Option<u16>,
    /// Stages and rules a `skip` rule has switched off for the rest of this exchange.
    pub skip: Skips,
    /// Path parameters by name, once a path template matched (an authorization policy's
    /// `path`, or the OpenAPI operation).
    pub path_params: Vec<(String, String)>,
    /// Headers the proxy adds to the response the client gets, whatever it is (the
    /// `RateLimit` headers of a limited route).
    pub response_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Counted among the requests in flight (the `ddos` stage's load shedding), to be
    /// released when the exchange completes.
    pub admitted: bool,
    /// The stage whose block stopped the exchange, set by the driver even when the block is
    /// a repeat that records no finding (a rate limit's later refusals).
    pub stopped_by: Option<StageId>,
    /// Per-exchange state a stage keeps from one phase to the next (the WAF's transaction,
    /// from the request to the response), by type.
    pub extensions: http::Extensions,
}

/// What a `skip` rule switched off for one exchange: whole stages (`waf.crs`, `ratelimit`) or
/// single rules by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skips {
    /// Stages the driver will not run.
    pub stages: Vec<StageId>,
    /// Rules their stage will not evaluate.
    pub rules: Vec<RuleId>,
}

impl Exchange {
    /// Creates an exchange for a request that arrived at `now_ms`.
    pub fn new(request_id: String, peer: Peer, now_ms: UnixMillis) -> Self {
        Self {
            request_id,
            client_ip: peer.addr.ip(),
            peer,
            route: None,
            principal: None,
            findings: Vec::new(),
            timings: Timings {
                received_ms: now_ms,
                now_ms,
            },
            body_truncated: false,
            response_status: None,
            skip: Skips::default(),
            path_params: Vec::new(),
            response_headers: Vec::new(),
            admitted: false,
            stopped_by: None,
            extensions: http::Extensions::new(),
        }
    }

    /// Returns the current time as the exchange's clock sees it.
    pub fn now_ms(&self) -> UnixMillis {
        self.timings.now_ms
    }

    /// Records a finding.
    pub fn record(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Returns true if a `skip` rule switched this stage off for this exchange.
    pub fn skips_stage(&self, stage: StageId) -> bool {
        !self.skip.stages.is_empty() && self.skip.stages.contains(&stage)
    }

    /// Returns true if a `skip` rule switched this rule off for this exchange.
    pub fn skips_rule(&self, rule: &str) -> bool {
        self.skip.rules.iter().any(|r| r.as_str() == rule)
    }

    /// Returns the TLS client certificate, when one was presented and verified.
    pub fn client_cert(&self) -> Option<&ClientCert> {
        self.peer.tls.as_ref().and_then(|t| t.client_cert.as_ref())
    }
}

/// The connection a request came on.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The socket's remote address.
    pub addr: SocketAddr,
    /// The listener's name.
    pub listener: Arc<str>,
    /// TLS details, when the connection is TLS.
    pub tls: Option<Arc<TlsInfo>>,
}

/// What the TLS handshake established.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsInfo {
    /// The server name the client asked for (SNI).
    pub sni: Option<String>,
    /// The negotiated protocol version, such as `TLSv1_3`.
    pub version: String,
    /// The negotiated application protocol (`h2`, `http/1.1`).
    pub alpn: Option<String>,
    /// The client's certificate, when mutual TLS verified one.
    pub client_cert: Option<ClientCert>,
}

/// A verified client certificate's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientCert {
    /// The subject distinguished name, RFC 4514 style (`CN=client-1,O=Example`).
    pub subject: String,
    /// The issuer distinguished name.
    pub issuer: String,
    /// Subject alternative names: DNS names, URIs, e-mail addresses and IPs as strings.
    pub sans: Vec<String>,
    /// The serial number, hex.
    pub serial: String,
    /// SHA-256 of the DER certificate, hex.
    pub fingerprint_sha256: String,
}

/// The API (and later, the operation) a request belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// The API's name.
    pub api: Arc<str>,
    /// The operation id, once schema routing has run.
    pub operation: Option<Arc<str>>,
}

/// Who made the request, as authentication established it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Principal {
    /// The consumer's name.
    pub consumer: Option<String>,
    /// The consumer's groups.
    pub groups: Vec<String>,
    /// The method that authenticated it (`mtls`, `api_key`, `jwt`, …).
    pub method: String,
    /// Claims from a token.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Scopes from a token.
    pub scopes: Vec<String>,
}

/// When things happened during the exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// When the request head was complete.
    pub received_ms: UnixMillis,
    /// The exchange's current time; the driver refreshes it before each phase.
    pub now_ms: UnixMillis,
}

/// Something a stage noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The stage that noticed.
    pub stage: StageId,
    /// The rule, when there is one.
    pub rule: Option<RuleId>,
    /// What came of it.
    pub action: FindingAction,
    /// The reason code.
    pub reason: Reason,
    /// A short, redacted detail.
    pub detail: String,
}

/// What came of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingAction {
    /// The request was stopped.
    Block,
    /// The stage would have stopped the request, but is in monitor mode.
    WouldBlock,
    /// Recorded only (a log action, a fail-open error).
    Log,
    /// The data was let through with the sensitive part masked.
    Mask,
}

impl FindingAction {
    /// Returns the stable name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::WouldBlock => "would_block",
            Self::Log => "log",
            Self::Mask => "mask",
        }
    }

    /// Parses a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "block" => Self::Block,
            "would_block" => Self::WouldBlock,
            "log" => Self::Log,
            "mask" => Self::Mask,
            _ => return None,
        })
    }
}
