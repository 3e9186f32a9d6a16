//! The configuration file as written: plain serde structs mirroring the YAML.
//!
//! Every struct rejects unknown keys; units are in key names (`_ms`, `_bytes`); secrets are
//! `env:NAME` or `file:path` references. Defaults are safe ones and are documented here and in
//! `docs/configuration.md`. The compiled, immutable form is [`crate::Snapshot`].

use std::collections::BTreeMap;

use rampart_stages::authn::config::{
    AuthConfig, AuthnConfig, ConsumerConfig, IdentityProviderConfig,
};
use rampart_stages::iprules::IpRuleConfig;
use rampart_stages::waf::WafConfig;
use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where clients connect.
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    /// The admin listener (metrics, health); off when absent.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Named upstream pools.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Named lists: of addresses and prefixes (usable by `ip_rules` and rules), or of strings
    /// (usable by rules: `http.host in $name`).
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    /// The APIs behind the gateway.
    #[serde(default)]
    pub apis: Vec<ApiConfig>,
    /// IP rules for every request, before routing.
    #[serde(default)]
    pub ip_rules: Vec<IpRuleConfig>,
    /// WAF custom rules for every request, before each API's own.
    #[serde(default)]
    pub waf: WafConfig,
    /// The clients of the APIs and their credentials.
    #[serde(default)]
    pub consumers: Vec<ConsumerConfig>,
    /// JWT issuers and introspection endpoints, by name.
    #[serde(default)]
    pub identity_providers: BTreeMap<String, IdentityProviderConfig>,
    /// Settings shared by every API's authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Security events: where they are stored and exported.
    #[serde(default)]
    pub events: EventsConfig,
    /// Rate-limit rules for every API, before each API's own.
    #[serde(default)]
    pub rate_limits: Vec<rampart_stages::ratelimit::RateLimitConfig>,
    /// Request-level DDoS protection: automatic bans, load shedding, adaptive rates.
    #[serde(default)]
    pub ddos: rampart_stages::ddos::DdosConfig,
    /// Data loss prevention for every API (an API's own `dlp:` replaces it).
    #[serde(default)]
    pub dlp: Option<rampart_stages::dlp::DlpConfig>,
    /// Where shared state (rate-limit counts) lives.
    #[serde(default)]
    pub state: StateConfig,
    /// Proxy-wide settings.
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// Recording traffic for `rampart replay` (off by default).
    #[serde(default)]
    pub recording: RecordingConfig,
    /// API discovery: endpoints learned from traffic.
    #[serde(default)]
    pub discovery: DiscoveryConfig,
}

/// API discovery (docs/discovery.md).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Learn at all.
    pub enabled: bool,
    /// Observations queued towards the worker; beyond, dropped and counted.
    pub channel_capacity: u32,
    /// Trie nodes per API at most.
    pub max_nodes_per_api: u32,
    /// A declared operation without traffic is an orphan only once discovery has watched
    /// this long.
    pub orphan_after_secs: u64,
    /// The SQLite file that keeps what was learned across restarts; `off` keeps nothing.
    pub state: String,
    /// What identifies a session for rate-limit recommendations, first present wins:
    /// `identity.consumer`, `claim:NAME`, `header:NAME`, `cookie:NAME`; else the client
    /// address.
    pub session: Vec<String>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            channel_capacity: 65_536,
            max_nodes_per_api: 50_000,
            orphan_after_secs: 30 * 86_400,
            state: "rampart-discovery.db".to_owned(),
            session: vec!["identity.consumer".to_owned()],
        }
    }
}

/// The traffic recorder: exchanges written as `rampart-traffic/1` JSON lines.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Record at all.
    pub enabled: bool,
    /// The current file; rotated files get `.1`, `.2`, ….
    pub path: String,
    /// The share of requests recorded, 0 to 1.
    pub sample_rate: f64,
    /// The most bytes of each body kept (the rest is cut, and the record says so).
    pub max_body_bytes: u64,
    /// A file is rotated once it holds this many bytes.
    pub max_file_bytes: u64,
    /// Rotated files kept.
    pub max_files: u32,
    /// The HMAC key that replaces secrets (a secret reference: `env:NAME` or `file:path`).
    /// Without one, a random key is made at start: equal secrets stay equal within a run only.
    pub hmac_key: Option<String>,
    /// Request and response headers whose values are replaced by HMACs.
    pub redact_headers: Vec<String>,
    /// Query parameters whose values are replaced by HMACs.
    pub redact_query_params: Vec<String>,
    /// Records queued between the request path and the writer; beyond, dropped and counted.
    pub channel_capacity: u32,
    /// Bodies are written without the DLP scanner masking sensitive data in them.
    pub insecure_unmasked_bodies: bool,
    /// Secrets are written as they were, not replaced (lab use only).
    pub insecure_record_secrets: bool,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        let policy = rampart_traffic::RedactPolicy::default();
        Self {
            enabled: false,
            path: "traffic/rampart.jsonl".to_owned(),
            sample_rate: 0.01,
            max_body_bytes: 64 * 1024,
            max_file_bytes: 1 << 30,
            max_files: 24,
            hmac_key: None,
            redact_headers: policy.headers,
            redact_query_params: policy.query_params,
            channel_capacity: 10_000,
            insecure_unmasked_bodies: false,
            insecure_record_secrets: false,
        }
    }
}

/// One listener.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// A name for events and metrics.
    pub name: String,
    /// The address to bind, such as `0.0.0.0:8443` or `[::]:8080`.
    pub bind: String,
    /// TLS termination; plain HTTP when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Connection-level protections.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Offer HTTP/2 (ALPN `h2` on TLS, prior knowledge on plain HTTP).
    #[serde(default = "yes")]
    pub http2: bool,
}

/// TLS termination settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificates; the one whose names match the SNI is chosen, the first is the default.
    pub certificates: Vec<CertificateConfig>,
    /// Client certificate authentication (mutual TLS).
    #[serde(default)]
    pub client_auth: Option<ClientAuthConfig>,
    /// The lowest TLS version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: Option<String>,
}

/// A certificate chain and its private key, PEM files.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// The certificate chain (leaf first).
    pub cert: String,
    /// The private key.
    pub key: String,
    /// Server names this certificate serves; by default the DNS names of its SAN extension.
    #[serde(default)]
    pub server_names: Vec<String>,
}

/// Mutual TLS settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthConfig {
    /// `required`, `optional` or `off`.
    pub mode: ClientAuthMode,
    /// The CA bundle that client certificates must chain to.
    #[serde(default)]
    pub ca: Option<String>,
    /// Certificate revocation lists (PEM) checked for every client certificate.
    #[serde(default)]
    pub crls: Vec<String>,
}

/// Whether clients must present a certificate.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    /// A certificate is asked for; a connection without one is refused.
    Required,
    /// A certificate is asked for; connections without one go on (unauthenticated).
    Optional,
    /// No certificate is asked for.
    #[default]
    Off,
}

/// Connection-level limits: every limit has a safe default.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections on this listener at once.
    pub max_connections: u32,
    /// Open connections from one client IP at once.
    pub max_connections_per_ip: u32,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout_ms: u64,
    /// Time allowed to send the whole request head (slowloris).
    pub header_read_timeout_ms: u64,
    /// Idle time allowed between requests on a keep-alive connection.
    pub idle_timeout_ms: u64,
    /// Largest request head (request line and headers together).
    pub max_header_bytes: u32,
    /// Most header fields in one request.
    pub max_headers: u32,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Slowest body upload accepted once `body_rate_grace_ms` has passed (slow POST).
    pub min_body_rate_bytes_per_sec: u64,
    /// How long a body upload may be slower than the minimum rate.
    pub body_rate_grace_ms: u64,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before they are served; beyond, the connection is
    /// closed (CVE-2023-44487 rapid reset).
    pub h2_max_pending_reset_streams: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            handshake_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 32 * 1024 * 1024,
            min_body_rate_bytes_per_sec: 1024,
            body_rate_grace_ms: 10_000,
            h2_max_concurrent_streams: 128,
            h2_max_pending_reset_streams: 32,
        }
    }
}

/// The admin listener.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The address to bind; keep it on loopback.
    pub bind: String,
    /// The bearer token (`env:NAME`, `file:path` or a literal). When absent, a token is
    /// generated at the first start, printed once, and only its hash is kept (`token_hash_file`).
    #[serde(default)]
    pub token: Option<String>,
    /// Where the hash of a generated token is kept, relative to the config file.
    #[serde(default = "default_token_hash_file")]
    pub token_hash_file: String,
    /// TLS on the admin listener (with `client_auth` for mutual TLS); plain HTTP when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_token_hash_file() -> String {
    "rampart-admin-token.sha256".to_owned()
}

/// An upstream pool.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Target base URLs, `http://host:port` or `https://host:port`, chosen round robin.
    pub targets: Vec<String>,
    /// Time allowed to connect.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time allowed from sending the request to receiving the response head.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// TLS to the upstream, for `https://` targets.
    #[serde(default)]
    pub tls: Option<UpstreamTlsConfig>,
    /// Passive health checking.
    #[serde(default)]
    pub health: HealthConfig,
    /// Idle pooled connections kept per target.
    #[serde(default = "default_max_idle")]
    pub max_idle_per_target: u32,
    /// How long an idle pooled connection is kept.
    #[serde(default = "default_pool_idle_ms")]
    pub pool_idle_timeout_ms: u64,
    /// Retries of idempotent requests (GET, HEAD, OPTIONS) on another target after a connect
    /// error.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

/// TLS settings towards an upstream.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// The CA bundle the upstream's certificate must chain to; the system roots by default.
    #[serde(default)]
    pub ca: Option<String>,
    /// The name to send and verify; the target's host by default.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Skips verification of the upstream's certificate. Insecure: for tests only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Passive health checking: a target that fails is skipped for a while.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Consecutive failures (connect errors, timeouts) that mark a target down.
    pub max_failures: u32,
    /// How long a target stays down before it is tried again.
    pub cooldown_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            max_failures: 3,
            cooldown_ms: 10_000,
        }
    }
}

/// One API.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// A unique name.
    pub name: String,
    /// Host names it serves (`api.example.com`, `*.example.com`); any host when empty.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The path prefix it serves.
    #[serde(default = "default_base_path")]
    pub base_path: String,
    /// Removes `base_path` before the request goes upstream.
    #[serde(default)]
    pub strip_base_path: bool,
    /// The upstream pool's name.
    pub upstream: String,
    /// How request bodies are buffered for inspection.
    #[serde(default)]
    pub request_body: RequestBodyConfig,
    /// IP rules for this API only, after the global ones.
    #[serde(default)]
    pub ip_rules: Vec<IpRuleConfig>,
    /// WAF custom rules for this API only, after the global ones.
    #[serde(default)]
    pub waf: WafConfig,
    /// Authentication: the methods this API accepts.
    #[serde(default)]
    pub authn: Option<AuthnConfig>,
    /// Authorization policies, tried in order; none matching means 403.
    #[serde(default)]
    pub authz: Vec<rampart_stages::authz::PolicyConfig>,
    /// Rate-limit rules of this API, after the global ones.
    #[serde(default)]
    pub rate_limits: Vec<rampart_stages::ratelimit::RateLimitConfig>,
    /// The API's OpenAPI document (3.0 or 3.1, YAML or JSON), relative to the config file.
    #[serde(default)]
    pub openapi: Option<String>,
    /// Validation against that document (defaults: requests and unknown endpoints enforced,
    /// responses monitored).
    #[serde(default)]
    pub schema: Option<rampart_stages::schema::SchemaConfig>,
    /// Data loss prevention for this API, replacing the global section (`enabled: false`
    /// turns it off here).
    #[serde(default)]
    pub dlp: Option<rampart_stages::dlp::DlpConfig>,
}

/// Request body buffering for inspection.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RequestBodyConfig {
    /// The most bytes buffered for stages that read the body.
    pub max_inspect_bytes: u64,
    /// What happens to a body larger than that: `reject` (413) or `inspect_prefix`.
    pub oversize: Oversize,
}

impl Default for RequestBodyConfig {
    fn default() -> Self {
        Self {
            max_inspect_bytes: 1024 * 1024,
            oversize: Oversize::Reject,
        }
    }
}

/// What happens to a request body larger than `max_inspect_bytes`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Oversize {
    /// 413, and an event.
    #[default]
    Reject,
    /// The first `max_inspect_bytes` are inspected, the rest is forwarded unseen, and a
    /// finding records it.
    InspectPrefix,
}

/// Security events.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// The SQLite database file; `off` disables it.
    pub sqlite: String,
    /// Events older than this are deleted.
    pub retention_days: u32,
    /// The most events kept; the oldest go first.
    pub max_events: u64,
    /// The most bytes the database holds; the oldest events go first when it is over.
    pub max_bytes: u64,
    /// JSON lines export: `stdout`, `off` or a file path.
    pub jsonl: String,
    /// Events queued between the request path and the writers; beyond, they are dropped and
    /// counted.
    pub channel_capacity: u32,
    /// Access log: `stdout`, `off` or a file path (one JSON object per request).
    pub access_log: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            sqlite: "rampart-events.db".to_owned(),
            retention_days: 14,
            max_events: 1_000_000,
            max_bytes: 1 << 30,
            jsonl: "off".to_owned(),
            channel_capacity: 10_000,
            access_log: "off".to_owned(),
        }
    }
}

/// Proxy-wide settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// The request id header, sent upstream and returned to the client.
    pub request_id_header: String,
    /// The header that carries the verified client certificate identity upstream. Always
    /// removed from client requests.
    pub client_cert_header: String,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown_grace_ms: u64,
    /// Keep a client-supplied request id (from a trusted proxy only).
    pub trust_request_id_from_proxies: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            request_id_header: "x-request-id".to_owned(),
            client_cert_header: "x-client-cert".to_owned(),
            shutdown_grace_ms: 30_000,
            trust_request_id_from_proxies: true,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_max_idle() -> u32 {
    64
}
fn default_pool_idle_ms() -> u64 {
    60_000
}
fn default_retries() -> u32 {
    1
}
fn default_base_path() -> String {
    "/".to_owned()
}

/// Where shared state lives.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// `memory` (each node counts alone) or `redis` (every node shares the counts).
    pub store: StoreKind,
    /// The Redis URL (`redis://host:6379/0`), or `env:NAME` / `file:path`.
    pub url: Option<String>,
    /// How long a Redis call may take before the local limiter decides instead.
    pub timeout_ms: u64,
    /// When Redis cannot answer: `local` (this node's limiter decides) or `deny` (503).
    pub on_error: StoreOnError,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// The most keys the memory store (or the local limiter) holds; the least recently seen
    /// go first.
    pub max_keys: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            url: None,
            timeout_ms: 50,
            on_error: StoreOnError::Local,
            key_prefix: "rampart:".to_owned(),
            max_keys: 262_144,
        }
    }
}

/// The kind of state store.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In this process.
    #[default]
    Memory,
    /// In Redis.
    Redis,
}

/// What happens when the shared store cannot answer.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreOnError {
    /// This node's local limiter decides (limits still hold, per node).
    #[default]
    Local,
    /// Requests are refused with 503.
    Deny,
}
