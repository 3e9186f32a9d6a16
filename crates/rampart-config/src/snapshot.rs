//! The compiled configuration: immutable, shared by every request through one `Arc`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rampart_core::{Cidr, IpTable, Pipeline};

use crate::model::{ClientAuthMode, Oversize};

/// A compiled configuration. Built off the request path; each request loads it once.
#[derive(Debug)]
pub struct Snapshot {
    /// The listeners.
    pub listeners: Vec<Arc<Listener>>,
    /// The admin listener.
    pub admin: Option<Admin>,
    /// The upstream pools by name.
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
    /// The APIs, in file order.
    pub apis: Vec<Arc<Api>>,
    /// The pipeline for requests that match no API (global stages only); they are then
    /// answered 404.
    pub unrouted: Pipeline,
    /// Named lists.
    pub lists: HashMap<String, Vec<Cidr>>,
    /// Event sinks.
    pub events: Events,
    /// Proxy-wide settings.
    pub proxy: ProxySettings,
    /// JWT key sources fetched from URLs: the gateway starts their background refresh and
    /// hands their keys over on reload.
    pub key_sources: Vec<Arc<rampart_stages::authn::jwt::KeySource>>,
    /// The DDoS guard (its counts, bans and in-flight requests are handed on at a reload).
    pub ddos: Option<Arc<rampart_stages::ddos::DdosGuard>>,
    /// The rate-limit store, handed on to the next snapshot at a reload.
    pub limit_store: Option<rampart_stages::ratelimit::Backend>,
    /// The traffic recorder, when enabled.
    pub recording: Option<Recording>,
    /// API discovery, when enabled.
    pub discovery: Option<DiscoverySettings>,
    /// The source text and where it came from, for redacted display and diffs.
    pub source: Source,
}

/// Where a snapshot came from.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// The file's path (or a name for in-memory configs).
    pub name: String,
    /// The text it was compiled from.
    pub text: String,
}

/// A compiled listener.
#[derive(Debug)]
pub struct Listener {
    /// Its name.
    pub name: Arc<str>,
    /// The bound address.
    pub bind: SocketAddr,
    /// TLS, when the listener terminates it.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The client certificate policy.
    pub client_auth: ClientAuthMode,
    /// Connection limits.
    pub limits: Limits,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: IpTable<()>,
    /// Whether HTTP/2 is offered.
    pub http2: bool,
}

/// Compiled connection limits (see `LimitsConfig` for meanings).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: u64,
    pub min_body_rate_bytes_per_sec: u64,
    pub body_rate_grace: Duration,
    pub h2_max_concurrent_streams: u32,
    pub h2_max_pending_reset_streams: usize,
}

/// The admin listener.
#[derive(Clone, Debug)]
pub struct Admin {
    /// The bound address.
    pub bind: SocketAddr,
    /// The bearer token, resolved.
    pub token: Option<String>,
    /// Where the hash of a generated token is kept.
    pub token_hash_file: std::path::PathBuf,
    /// TLS (and mutual TLS) on the admin listener.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether a client certificate is required.
    pub client_auth: ClientAuthMode,
}

/// A compiled upstream pool.
#[derive(Debug)]
pub struct Upstream {
    /// Its name.
    pub name: Arc<str>,
    /// Its targets.
    pub targets: Vec<Target>,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for the response head.
    pub request_timeout: Duration,
    /// TLS client settings for `https` targets.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The TLS server name to send and verify, when not the target's host.
    pub tls_server_name: Option<String>,
    /// Consecutive failures that mark a target down.
    pub max_failures: u32,
    /// How long a down target is skipped.
    pub cooldown: Duration,
    /// Idle pooled connections per target.
    pub max_idle_per_target: usize,
    /// How long idle pooled connections are kept.
    pub pool_idle_timeout: Duration,
    /// Retries of idempotent requests after a connect error.
    pub retries: u32,
}

/// One upstream target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: http::uri::Scheme,
    /// `host:port`.
    pub authority: http::uri::Authority,
    /// A path prefix from the target URL, without a trailing slash (often empty).
    pub path_prefix: String,
}

/// A compiled API.
#[derive(Debug)]
pub struct Api {
    /// The operations its OpenAPI document declares (empty without one).
    pub declared: Vec<DeclaredOp>,
    /// The path prefixes the declared templates are under (the document's server paths
    /// under the base path).
    pub declared_prefixes: Vec<String>,
    /// Its name.
    pub name: Arc<str>,
    /// Host patterns.
    pub hosts: Vec<HostPattern>,
    /// Path prefix, normalised to start with `/` and not end with one (except `/` itself).
    pub base_path: String,
    /// Whether `base_path` is removed before the upstream.
    pub strip_base_path: bool,
    /// The upstream pool.
    pub upstream: Arc<Upstream>,
    /// The stages, in their fixed order.
    pub pipeline: Pipeline,
    /// Buffering of request bodies for inspection.
    pub max_inspect_bytes: u64,
    /// What to do with larger bodies.
    pub oversize: Oversize,
}

/// A host pattern: exact, or `*.suffix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (lower case).
    Exact(String),
    /// Any name ending with `.suffix` (the stored value includes the dot).
    Wildcard(String),
}

impl HostPattern {
    fn rank(&self, host: &str) -> Option<u8> {
        match self {
            Self::Exact(h) => (h == host).then_some(2),
            Self::Wildcard(s) => (host.len() > s.len() && host.ends_with(s.as_str())).then_some(1),
        }
    }
}

/// An operation an API's OpenAPI document declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredOp {
    /// The operation id (or `METHOD /template`).
    pub id: Arc<str>,
    /// The method.
    pub method: String,
    /// The path template, relative to the API's base path.
    pub path: String,
    /// Marked `deprecated: true`.
    pub deprecated: bool,
}

/// Where a session key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionSource {
    /// The authenticated consumer.
    Consumer,
    /// A claim of the token.
    Claim(String),
    /// A request header.
    Header(http::HeaderName),
    /// A cookie.
    Cookie(String),
}

/// API discovery, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoverySettings {
    /// The SQLite file of what was learned, when kept.
    pub state: Option<std::path::PathBuf>,
    /// What identifies a session, first present wins; else the client address.
    pub session: Vec<SessionSource>,
    /// The queue's capacity.
    pub channel_capacity: usize,
    /// Trie nodes per API at most.
    pub max_nodes_per_api: usize,
    /// How long discovery watches before it calls a declared operation without traffic an
    /// orphan.
    pub orphan_after: std::time::Duration,
}

/// The traffic recorder, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The writer's file and rotation.
    pub writer: rampart_traffic::WriterConfig,
    /// The share of requests recorded.
    pub sample_rate: f64,
    /// The most bytes of each body kept.
    pub max_body_bytes: u64,
    /// The HMAC key, when the configuration gives one.
    pub hmac_key: Option<String>,
    /// What is replaced by HMACs.
    pub redact: rampart_traffic::RedactPolicy,
    /// The queue's capacity.
    pub channel_capacity: usize,
    /// Bodies are not masked.
    pub insecure_unmasked_bodies: bool,
    /// Secrets are not replaced.
    pub insecure_record_secrets: bool,
}

/// Event sinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Events {
    /// The SQLite database, when enabled.
    pub sqlite: Option<PathBuf>,
    /// Retention by age.
    pub retention: Duration,
    /// Retention by count.
    pub max_events: u64,
    /// Retention by size (bytes of live pages).
    pub max_bytes: u64,
    /// JSON lines export.
    pub jsonl: Output,
    /// Channel capacity.
    pub channel_capacity: usize,
    /// Access log.
    pub access_log: Output,
}

/// Where a stream of JSON lines goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Nowhere.
    Off,
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

/// Proxy-wide settings.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// The request id header.
    pub request_id_header: http::HeaderName,
    /// The client certificate header.
    pub client_cert_header: http::HeaderName,
    /// Graceful shutdown wait.
    pub shutdown_grace: Duration,
    /// Keep request ids from trusted proxies.
    pub trust_request_id_from_proxies: bool,
    /// Headers that carry the authenticated identity upstream: removed from every client
    /// request before any stage runs.
    pub identity_headers: Vec<http::HeaderName>,
}

impl Snapshot {
    /// Returns the API serving `host` and `path`: the longest matching base path, then the most
    /// specific host pattern (exact, wildcard, any).
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<&Arc<Api>> {
        let host = host.map(|h| strip_port(h).to_ascii_lowercase());
        let mut best: Option<(&Arc<Api>, usize, u8)> = None;
        for api in &self.apis {
            if !path_has_prefix(path, &api.base_path) {
                continue;
            }
            let rank = if api.hosts.is_empty() {
                0
            } else {
                match host
                    .as_deref()
                    .and_then(|h| api.hosts.iter().filter_map(|p| p.rank(h)).max())
                {
                    Some(r) => r,
                    None => continue,
                }
            };
            let key = (api.base_path.len(), rank);
            if best.is_none_or(|(_, l, r)| key > (l, r)) {
                best = Some((api, key.0, key.1));
            }
        }
        best.map(|(api, _, _)| api)
    }

    /// Returns the listener with this name.
    pub fn listener(&self, name: &str) -> Option<&Arc<Listener>> {
        self.listeners.iter().find(|l| &*l.name == name)
    }
}

/// Returns true if `path` is `prefix` or lies below it at a segment boundary.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}
