//! `iprules`: allow and block lists of IP addresses and CIDR prefixes.
//!
//! Protects against known-bad sources and lets an API be restricted to known networks. It runs
//! first in the request-head phase: it is the cheapest check and needs nothing but the client
//! address (after trusted-proxy handling).
//!
//! ```yaml
//! lists:
//!   office: [203.0.113.0/24, 2001:db8::/32]
//! ip_rules:
//!   - { action: block, list: [198.51.100.0/24] }
//!   - { id: office-only, action: block, list: [0.0.0.0/0, "::/0"] }
//!   - { action: allow, lists: [office] }
//! ```
//!
//! Semantics: the most specific prefix that contains the client address decides (so an
//! `allow` of a /32 carves an exception out of a `block` of a /8); when a block and an allow
//! name the same prefix, the block wins; an address no rule covers is not blocked. `allow`
//! only means "not blocked by this stage": it never skips the stages after it.
//!
//! A lookup walks one binary trie per address family, so its cost is bounded by the address
//! length, whatever the number of prefixes.

mod config;
mod stage;

pub use config::{IpAction, IpRuleConfig};
pub use stage::IpRules;

#[cfg(test)]
mod tests;
