//! `ddos`: the request-level half of DDoS mitigation (the connection-level half is in the
//! proxy: connection caps, slowloris timeouts, the HTTP/2 rapid-reset guard).
//!
//! ```yaml
//! ddos:
//!   per_ip: { requests_per_sec: 200, burst: 400, ban_secs: 300 }
//!   per_prefix: { prefix_v4: 24, prefix_v6: 64, requests_per_sec: 2000, ban_secs: 300 }
//!   max_in_flight: 4096
//!   exempt_paths: [/healthz]
//!   adaptive: { latency_ms: 500, error_rate: 0.2, factor: 0.5 }
//! ```
//!
//! - **Automatic bans.** A client address (or its prefix) faster than its rate is banned for
//!   `ban_secs`: every request of it is then refused with 429 and `Retry-After`, before any other
//!   stage spends anything on it. With `state.store: redis` a ban is published to every node
//!   (Redis pub/sub) and kept in Redis for newcomers, so a flood is banned everywhere at once.
//! - **Load shedding.** Over `max_in_flight` requests in progress, new requests get 503 with
//!   `Retry-After: 1` while those already admitted keep their latency; `exempt_paths` (health
//!   checks) are never shed, and the admin listener is not behind this stage at all.
//! - **Adaptive mode.** When the upstream's latency (an exponentially weighted average) passes
//!   `latency_ms`, or its share of 5xx passes `error_rate`, the per-address and per-prefix rates
//!   are multiplied by `factor` until it recovers.

mod bans;
mod config;
mod stage;

pub use bans::{Ban, BanTable};
pub use config::{AdaptiveConfig, DdosConfig, PrefixRateConfig, RateConfig};
pub use stage::{BansView, DdosGuard, DdosStage, STAGE};

/// The key the guard bans under for a target: `ip:203.0.113.7` for an address,
/// `net:203.0.113.0/24` for a network (also accepted already prefixed); `None` when the target
/// is neither.
pub fn ban_key(target: &str) -> Option<String> {
    let target = target.trim();
    if let Some(k) = target
        .strip_prefix("ip:")
        .or_else(|| target.strip_prefix("net:"))
    {
        return ban_key(k);
    }
    if let Ok(ip) = target.parse::<std::net::IpAddr>() {
        return Some(format!("ip:{}", rampart_core::iptable::canonical(ip)));
    }
    let cidr: rampart_core::Cidr = target.parse().ok()?;
    Some(format!("net:{cidr}"))
}
