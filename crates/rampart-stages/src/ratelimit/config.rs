//! The YAML of a rate-limit rule, and its key.

use std::net::IpAddr;

use rampart_core::{CompileCx, Exchange};
use serde::Deserialize;

/// One rule as written.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// A name, unique in its list: the rule id of events and of the `RateLimit` headers.
    pub name: String,
    /// The requests the rule counts (rules language); all when absent.
    #[serde(default)]
    pub when: Option<String>,
    /// What is counted separately: one or more of `ip.src`, `ip.src/24`, `identity.consumer`,
    /// `api.name`, `api.operation`, `http.request.headers["name"]`, `identity.claims["name"]`,
    /// `http.request.uri.args["name"]`.
    #[serde(default = "default_key", deserialize_with = "one_or_many")]
    pub key: Vec<String>,
    /// Requests (cost units) allowed per window.
    pub requests: u64,
    /// The window.
    pub window_secs: u64,
    /// GCRA: how many may come at once (default: `requests`).
    #[serde(default)]
    pub burst: Option<u64>,
    /// `gcra` (default) or `sliding_window`.
    #[serde(default)]
    pub algorithm: AlgorithmConfig,
    /// Once over, the key is refused for this long.
    #[serde(default)]
    pub penalty_secs: u64,
    /// `block` (429, default) or `log` (an event, the request goes on).
    #[serde(default)]
    pub action: LimitAction,
    /// How many units one request counts for.
    #[serde(default = "one")]
    pub cost: u64,
}

fn default_key() -> Vec<String> {
    vec!["ip.src".to_owned()]
}

fn one() -> u64 {
    1
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The algorithm as written.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AlgorithmConfig {
    /// The generic cell rate algorithm.
    #[default]
    Gcra,
    /// A sliding window.
    SlidingWindow,
}

/// What a rule does with a key that is over.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LimitAction {
    /// 429.
    #[default]
    Block,
    /// An event; the request goes on.
    Log,
}

/// One part of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// The client address, masked: (IPv4 prefix, IPv6 prefix).
    Ip(u8, u8),
    /// The authenticated consumer.
    Consumer,
    /// The API's name.
    Api,
    /// The OpenAPI operation id.
    Operation,
    /// A request header's first value.
    Header(http::HeaderName),
    /// A token claim.
    Claim(String),
    /// A query argument's first value.
    Arg(String),
}

const KNOWN: [&str; 8] = [
    "ip.src",
    "ip.src/24",
    "identity.consumer",
    "api.name",
    "api.operation",
    "http.request.headers[\"name\"]",
    "identity.claims[\"name\"]",
    "http.request.uri.args[\"name\"]",
];

fn quoted(s: &str, prefix: &str) -> Option<String> {
    let inner = s
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?;
    let inner = inner.trim();
    let name = inner
        .strip_prefix('"')
        .and_then(|i| i.strip_suffix('"'))
        .or_else(|| inner.strip_prefix('\'').and_then(|i| i.strip_suffix('\'')))?;
    (!name.is_empty()).then(|| name.to_owned())
}

impl KeyPart {
    /// Parses a key part; problems go to `cx` with the nearest known form as a hint.
    pub fn parse(s: &str, cx: &mut CompileCx) -> Option<Self> {
        let s = s.trim();
        if s == "ip.src" {
            return Some(Self::Ip(32, 128));
        }
        if let Some(bits) = s.strip_prefix("ip.src/") {
            return match bits.parse::<u8>() {
                Ok(n) if n <= 128 && n > 0 => {
                    // One prefix for both families: up to 32 it masks IPv4 (and IPv6 at /64,
                    // a typical end-user allocation); above, it masks IPv6 (IPv4 whole).
                    Some(if n <= 32 {
                        Self::Ip(n, 64)
                    } else {
                        Self::Ip(32, n)
                    })
                }
                _ => {
                    cx.error(format!("\"{s}\": the prefix length must be 1 to 128"));
                    None
                }
            };
        }
        match s {
            "identity.consumer" => return Some(Self::Consumer),
            "api.name" => return Some(Self::Api),
            "api.operation" => return Some(Self::Operation),
            _ => {}
        }
        if let Some(name) = quoted(s, "http.request.headers") {
            return match http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
                Ok(h) => Some(Self::Header(h)),
                Err(_) => {
                    cx.error(format!("\"{name}\" is not a header name"));
                    None
                }
            };
        }
        if let Some(name) = quoted(s, "identity.claims") {
            return Some(Self::Claim(name));
        }
        if let Some(name) = quoted(s, "http.request.uri.args") {
            return Some(Self::Arg(name));
        }
        cx.unknown("key", s, KNOWN);
        None
    }

    /// The part's value for a request; `None` when the request has none.
    pub(crate) fn value(&self, req: &http::request::Parts, x: &Exchange) -> Option<String> {
        match self {
            Self::Ip(v4, v6) => Some(mask(x.client_ip, *v4, *v6)),
            Self::Consumer => x.principal.as_ref()?.consumer.clone(),
            Self::Api => x.route.as_ref().map(|r| r.api.to_string()),
            Self::Operation => x
                .route
                .as_ref()
                .and_then(|r| r.operation.as_ref())
                .map(ToString::to_string),
            Self::Header(h) => req
                .headers
                .get(h)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            Self::Claim(c) => {
                let v = x.principal.as_ref()?.claims.get(c)?;
                Some(match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }
            Self::Arg(a) => form_urlencoded::parse(req.uri.query()?.as_bytes())
                .find(|(k, _)| k == a.as_str())
                .map(|(_, v)| v.into_owned()),
        }
    }
}

/// `203.0.113.77` at /24 → `203.0.113.0/24`; a whole address stays bare.
fn mask(ip: IpAddr, v4: u8, v6: u8) -> String {
    let m = rampart_core::iptable::masked(ip, v4, v6);
    match m {
        IpAddr::V4(_) if v4 == 32 => m.to_string(),
        IpAddr::V6(_) if v6 == 128 => m.to_string(),
        IpAddr::V4(_) => format!("{m}/{v4}"),
        IpAddr::V6(_) => format!("{m}/{v6}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_mask() {
        let mut cx = CompileCx::new();
        assert_eq!(
            KeyPart::parse("ip.src/24", &mut cx),
            Some(KeyPart::Ip(24, 64))
        );
        assert_eq!(
            KeyPart::parse("ip.src/48", &mut cx),
            Some(KeyPart::Ip(32, 48))
        );
        assert_eq!(
            KeyPart::parse("http.request.headers[\"X-Api-Key\"]", &mut cx),
            Some(KeyPart::Header(http::HeaderName::from_static("x-api-key")))
        );
        assert_eq!(
            KeyPart::parse("identity.claims['sub']", &mut cx),
            Some(KeyPart::Claim("sub".into()))
        );
        assert!(cx.is_ok());
        assert_eq!(KeyPart::parse("identity.consumr", &mut cx), None);
        assert_eq!(
            cx.diagnostics()[0].help.as_deref(),
            Some("did you mean \"identity.consumer\"?")
        );
        assert_eq!(
            mask("203.0.113.77".parse().unwrap(), 24, 64),
            "203.0.113.0/24"
        );
        assert_eq!(
            mask("203.0.113.77".parse().unwrap(), 32, 64),
            "203.0.113.77"
        );
        assert_eq!(
            mask("2001:db8:1:2:3::1".parse().unwrap(), 32, 64),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            mask("::ffff:10.1.2.3".parse().unwrap(), 8, 64),
            "10.0.0.0/8"
        );
    }
}
