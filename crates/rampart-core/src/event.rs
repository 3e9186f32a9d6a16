//! Security events: what is stored, exported and shown for every block and every finding.

use serde::Serialize;

use crate::{Exchange, Finding, FindingAction, UnixMillis};

/// One security event. It carries a short redacted detail, never a whole payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecurityEvent {
    /// When it happened.
    pub time_ms: UnixMillis,
    /// The request's id.
    pub request_id: String,
    /// The client's address as the stages saw it.
    pub client_ip: String,
    /// The listener's name.
    pub listener: String,
    /// The API, when the request was routed.
    pub api: Option<String>,
    /// The operation (OpenAPI `operationId`), when schema routing found one.
    pub operation: Option<String>,
    /// The authenticated consumer, when authentication named one.
    pub consumer: Option<String>,
    /// The request method.
    pub method: String,
    /// The request path (without the query).
    pub path: String,
    /// The stage (or `proxy` for protocol-level refusals).
    pub stage: String,
    /// The rule id, when there is one.
    pub rule: Option<String>,
    /// What came of it.
    pub action: EventAction,
    /// The reason code.
    pub reason: String,
    /// The HTTP status the client received, when one was sent.
    pub status: Option<u16>,
    /// A short, redacted detail.
    pub detail: String,
}

/// The action an event records.
pub type EventAction = FindingAction;

impl SecurityEvent {
    /// Builds the event for one finding of an exchange.
    pub fn from_finding(
        x: &Exchange,
        method: &str,
        path: &str,
        finding: &Finding,
        status: Option<u16>,
    ) -> Self {
        Self {
            time_ms: x.now_ms(),
            request_id: x.request_id.clone(),
            client_ip: x.client_ip.to_string(),
            listener: x.peer.listener.to_string(),
            api: x.route.as_ref().map(|r| r.api.to_string()),
            operation: x
                .route
                .as_ref()
                .and_then(|r| r.operation.as_ref().map(|o| o.to_string())),
            consumer: x.principal.as_ref().and_then(|p| p.consumer.clone()),
            method: method.to_owned(),
            path: path.to_owned(),
            stage: finding.stage.as_str().to_owned(),
            rule: finding.rule.as_ref().map(|r| r.as_str().to_owned()),
            action: finding.action,
            reason: finding.reason.code().to_owned(),
            status: if finding.action == FindingAction::Block {
                status
            } else {
                None
            },
            detail: finding.detail.clone(),
        }
    }
}
