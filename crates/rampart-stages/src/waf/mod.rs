//! `waf.custom`: the WAF's custom rules, written in the rules language.
//!
//! Protects against whatever the operator knows to be bad (or good) about their own API: a
//! legacy path, a scanner's user agent, a parameter that must be numeric, an upstream error that
//! must not leak. Each rule has an expression (`when`), an action and an id:
//!
//! ```yaml
//! waf:
//!   custom:
//!     - id: block-legacy
//!       when: 'starts_with(http.request.uri.path, "/v1/legacy")'
//!       action: block
//!     - id: trusted-scanner
//!       when: 'ip.src in $scanners'
//!       action: skip
//!       skip: [waf.crs, ratelimit]
//!     - id: numeric-id
//!       when: 'any(http.request.uri.args["id"] matches "[^0-9]")'
//!       action: block
//!       status: 400
//!       enforcement: monitor
//! ```
//!
//! Rules run in file order, global rules first, then the API's. Each rule runs in the phase its
//! fields need (phase inference): a rule on headers runs as soon as the request head is read, a
//! rule that names `identity.*` runs after authentication, one on `http.request.body.*` once
//! the body is buffered (naming a body field is what makes the proxy buffer it), one on
//! `http.response.*` when the upstream's head arrives. The first `block` in enforce mode ends
//! the request; every match is a finding, so an event with the rule's id.

mod config;
mod crs;
mod custom;

pub use config::{CustomAction, CustomRuleConfig, WafConfig};
pub use crs::{CrsConfig, CrsRules, CrsStage, CRS_STAGE};
pub use custom::{CustomRules, CustomRulesStage, SKIPPABLE_STAGES, STAGE};

#[cfg(test)]
mod tests;
