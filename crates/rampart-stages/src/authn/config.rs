//! The configuration of authentication, as written in YAML: consumers and their credentials,
//! identity providers, the global `auth` settings and each API's `authn`.

use std::collections::BTreeMap;

use rampart_core::{Enforcement, OnError};
use serde::Deserialize;

/// A consumer: a client of the APIs, with groups and credentials.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// A unique name: `identity.consumer` in rules, the consumer header upstream.
    pub name: String,
    /// Groups: `identity.groups`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// How the consumer proves who it is.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
}

/// One credential of a consumer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialConfig {
    /// An API key, stored as its SHA-256 (hex), given as a secret to hash at load, or read
    /// from a file of SHA-256 hashes (one per line).
    ApiKey {
        /// The key's SHA-256, 64 hex digits.
        #[serde(default)]
        key_sha256: Option<String>,
        /// The key itself, as a secret reference (`env:NAME`, `file:path`); hashed at load.
        #[serde(default)]
        key: Option<String>,
        /// A file with one SHA-256 (hex) per line; `#` starts a comment.
        #[serde(default)]
        keys_file: Option<String>,
    },
    /// HTTP basic: a user name and a password hash (argon2id, bcrypt, or `{SHA}`).
    Basic {
        /// The user name (default: the consumer's name).
        #[serde(default)]
        username: Option<String>,
        /// A PHC string (`$argon2id$…`), a bcrypt hash (`$2b$…`) or `{SHA}base64`.
        password_hash: String,
    },
    /// A client certificate verified by the listener's mutual TLS, matched by its subject or by
    /// one of its subject alternative names.
    Mtls {
        /// The subject, as `tls.client.subject` shows it (`CN=client-1,O=Example`).
        #[serde(default)]
        subject: Option<String>,
        /// A subject alternative name (`client-1.example.com`, `spiffe://example.org/app`).
        #[serde(default)]
        san: Option<String>,
    },
}

/// Settings shared by every API's authentication.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// htpasswd files (Apache's format): each user is a consumer of that name, with the groups
    /// of a consumer of the same name when there is one.
    #[serde(default)]
    pub htpasswd: Vec<String>,
    /// Failed authentications counted per client address and per user name or key prefix,
    /// with a temporary lockout.
    #[serde(default)]
    pub lockout: LockoutConfig,
    /// Headers that carry the identity to the upstream.
    #[serde(default)]
    pub forward: ForwardConfig,
    /// How long a successful password check is remembered (hashes are slow on purpose), in
    /// seconds. 0 checks every time.
    #[serde(default = "default_password_cache_secs")]
    pub password_cache_secs: u64,
}

fn default_password_cache_secs() -> u64 {
    60
}

/// The lockout after repeated failures.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failures within `window_secs` that lock a client address or a user out (0: never).
    pub max_failures: u32,
    /// The window failures are counted in.
    pub window_secs: u64,
    /// How long a lockout lasts.
    pub lockout_secs: u64,
    /// The most client addresses and users tracked at once; the oldest are forgotten.
    pub max_tracked: usize,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window_secs: 300,
            lockout_secs: 900,
            max_tracked: 100_000,
        }
    }
}

/// Headers that carry the authenticated identity upstream. Copies sent by clients are always
/// removed, so that no client can claim an identity.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// The consumer's name.
    pub consumer_header: String,
    /// The groups, comma-separated.
    pub groups_header: String,
    /// The authentication method (`jwt`, `api_key`, …).
    pub method_header: String,
    /// Claims to forward: header name → claim name.
    pub claims: BTreeMap<String, String>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            consumer_header: "x-consumer".to_owned(),
            groups_header: "x-consumer-groups".to_owned(),
            method_header: "x-authenticated-by".to_owned(),
            claims: BTreeMap::new(),
        }
    }
}

/// An identity provider: a JWT issuer or an OAuth2 introspection endpoint.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdentityProviderConfig {
    /// Bearer JWTs verified with the issuer's keys.
    Jwt(JwtConfig),
    /// Opaque bearer tokens checked with an RFC 7662 introspection endpoint.
    Introspection(IntrospectionConfig),
}

/// A JWT issuer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` every token must have (none checked when absent).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values; a token must name one (none checked when empty).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The keys: `file:jwks.json`, an `https://` URL, or inline JWKS JSON.
    pub jwks: String,
    /// The algorithms accepted; tokens with any other are refused. `none` does not exist.
    pub algorithms: Vec<String>,
    /// Clock skew allowed for `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Claims every token must have.
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// Tokens without `exp` are refused unless this is set.
    #[serde(default)]
    pub insecure_allow_no_expiry: bool,
    /// The claim that names the consumer.
    #[serde(default = "default_consumer_claim")]
    pub consumer_claim: String,
    /// The claim with the groups (an array, or a space-separated string).
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// The claim with the scopes (`scope`: space-separated, or `scp`: an array).
    #[serde(default = "default_scopes_claim")]
    pub scopes_claim: String,
    /// How often a JWKS URL is fetched again when its answer gives no `Cache-Control: max-age`,
    /// in seconds (also the most it is kept).
    #[serde(default = "default_refresh")]
    pub jwks_refresh_secs: u64,
    /// The least time between two fetches caused by an unknown `kid`, in seconds.
    #[serde(default = "default_kid_refresh")]
    pub unknown_kid_refresh_secs: u64,
    /// A CA bundle for the JWKS URL (default: the system's roots).
    #[serde(default)]
    pub tls_ca: Option<String>,
    /// Allows `http://` JWKS URLs on other hosts than loopback.
    #[serde(default)]
    pub insecure_allow_http: bool,
}

fn default_leeway() -> u64 {
    30
}
fn default_consumer_claim() -> String {
    "sub".to_owned()
}
fn default_scopes_claim() -> String {
    "scope".to_owned()
}
fn default_refresh() -> u64 {
    300
}
fn default_kid_refresh() -> u64 {
    30
}

/// An OAuth2 token introspection endpoint (RFC 7662).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The endpoint, `https://…` (or `http://` on loopback).
    pub url: String,
    /// The gateway's client id at the authorization server.
    pub client_id: String,
    /// Its secret (`env:NAME`, `file:path`).
    pub client_secret: String,
    /// How long an active token's answer is kept at most, in seconds (never past its `exp`).
    #[serde(default = "default_intro_cache")]
    pub cache_secs: u64,
    /// How long an inactive token's answer is kept, in seconds.
    #[serde(default = "default_negative_cache")]
    pub negative_cache_secs: u64,
    /// The most answers kept.
    #[serde(default = "default_cache_entries")]
    pub max_cache_entries: usize,
    /// The time allowed for the endpoint to answer, in milliseconds.
    #[serde(default = "default_intro_timeout")]
    pub timeout_ms: u64,
    /// Accepted `aud` values (none checked when empty).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The answer's field that names the consumer.
    #[serde(default = "default_intro_consumer")]
    pub consumer_claim: String,
    /// The field with the groups.
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// A CA bundle for the endpoint (default: the system's roots).
    #[serde(default)]
    pub tls_ca: Option<String>,
    /// Allows `http://` endpoints on other hosts than loopback.
    #[serde(default)]
    pub insecure_allow_http: bool,
}

fn default_intro_cache() -> u64 {
    300
}
fn default_negative_cache() -> u64 {
    10
}
fn default_cache_entries() -> usize {
    100_000
}
fn default_intro_timeout() -> u64 {
    2000
}
fn default_intro_consumer() -> String {
    "sub".to_owned()
}

/// An API's authentication.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthnConfig {
    /// The methods accepted, in the order they are tried: `api_key`, `basic`, `mtls`, or the
    /// name of an identity provider.
    pub methods: Vec<String>,
    /// Where API keys are read.
    #[serde(default)]
    pub api_key: ApiKeyLocation,
    /// The realm in `WWW-Authenticate` challenges (default: the API's name).
    #[serde(default)]
    pub realm: Option<String>,
    /// Lets requests without any credential through with no identity (authorization policies
    /// then decide). Requests with a wrong credential are still refused.
    #[serde(default)]
    pub insecure_allow_anonymous: bool,
    /// `enforce`, or `monitor` (failures become findings and the request goes on).
    #[serde(default)]
    pub enforcement: Enforcement,
    /// What happens when a provider cannot answer (keys not loaded, introspection down):
    /// `deny` (503) or `allow`.
    #[serde(default)]
    pub on_error: OnError,
}

/// Where an API key is looked for, in this order.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyLocation {
    /// A request header (default `x-api-key`).
    pub header: Option<String>,
    /// A query parameter.
    pub query: Option<String>,
    /// A cookie.
    pub cookie: Option<String>,
    /// Removes the key from the request before the upstream (default true).
    pub strip: bool,
}

impl Default for ApiKeyLocation {
    fn default() -> Self {
        Self {
            header: Some("x-api-key".to_owned()),
            query: None,
            cookie: None,
            strip: true,
        }
    }
}
