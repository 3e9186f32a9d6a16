//! The one function that decides the order of the stages.

use std::sync::Arc;

use rampart_core::{Enforcement, OnError, Pipeline, Slot};
use rampart_stages::iprules::IpRules;

/// Builds an API's pipeline. The order is a reviewed security property, not a user setting:
/// users enable and configure stages, they never reorder them.
///
/// The full order (DESIGN.md §2.1), of which the stages that exist today are placed below:
/// request head: `iprules` → `ddos` → `waf` (custom, head) → `authn` → `authz` → `ratelimit` →
/// `schema` (head); request body: `schema` (body) → `waf` (custom + CRS phase 2) → `dlp`
/// (requests); response head: `schema` (response) → `waf` (CRS phase 3); response body:
/// `waf` (CRS phase 4) → `dlp`.
pub fn build_pipeline(global_ip: Option<&Arc<IpRules>>, api_ip: Option<&Arc<IpRules>>) -> Pipeline {
    let mut slots = Vec::new();
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
    Pipeline::new(slots)
}
