//! The `ddos` section.

use serde::Deserialize;

/// The `ddos` section.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DdosConfig {
    /// A rate per client address, and the ban when it is passed.
    #[serde(default)]
    pub per_ip: Option<RateConfig>,
    /// A rate per network prefix, and the ban when it is passed.
    #[serde(default)]
    pub per_prefix: Option<PrefixRateConfig>,
    /// The most requests in progress at once; more are refused with 503.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Paths never shed (health checks), exactly as requested.
    #[serde(default)]
    pub exempt_paths: Vec<String>,
    /// Tighter rates while the upstream suffers.
    #[serde(default)]
    pub adaptive: Option<AdaptiveConfig>,
}

/// A rate and its ban.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Requests per second allowed on average.
    pub requests_per_sec: u64,
    /// How many may come at once (default: twice the rate).
    #[serde(default)]
    pub burst: Option<u64>,
    /// How long a client over the rate is banned.
    #[serde(default = "default_ban")]
    pub ban_secs: u64,
}

/// A rate per prefix and its ban.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PrefixRateConfig {
    /// The IPv4 prefix length addresses are grouped by.
    #[serde(default = "default_v4")]
    pub prefix_v4: u8,
    /// The IPv6 prefix length addresses are grouped by.
    #[serde(default = "default_v6")]
    pub prefix_v6: u8,
    /// Requests per second allowed on average, for the whole prefix.
    pub requests_per_sec: u64,
    /// How many may come at once (default: twice the rate).
    #[serde(default)]
    pub burst: Option<u64>,
    /// How long a prefix over the rate is banned.
    #[serde(default = "default_ban")]
    pub ban_secs: u64,
}

/// When and how much to tighten.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveConfig {
    /// Tighten when the upstream's average latency passes this.
    #[serde(default = "default_latency")]
    pub latency_ms: u64,
    /// Tighten when the upstream's share of 5xx answers passes this (0 to 1).
    #[serde(default = "default_error_rate")]
    pub error_rate: f64,
    /// The rates are multiplied by this while tightened (0 to 1).
    #[serde(default = "default_factor")]
    pub factor: f64,
}

fn default_ban() -> u64 {
    300
}

fn default_v4() -> u8 {
    24
}

fn default_v6() -> u8 {
    64
}

fn default_latency() -> u64 {
    1000
}

fn default_error_rate() -> f64 {
    0.25
}

fn default_factor() -> f64 {
    0.5
}
