//! JWT identity providers: a bearer token verified with the issuer's keys (a JWKS from a file,
//! inline, or a URL fetched in the background), then its claims checked (`exp`, `nbf`, `iat`,
//! `iss`, `aud`, required claims) against the exchange's clock, and mapped to a principal.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::Uri;
use rampart_core::{Principal, UnixMillis};
use tokio::sync::Notify;

use super::consumers::Directory;
use super::fetch::{self, Fetcher};
use super::jws::{self, Alg, JwsError, KeySet};

/// Where a provider's keys come from, and the keys it has now.
#[derive(Debug)]
pub struct KeySource {
    /// The provider's name, for logs.
    pub provider: String,
    origin: Origin,
    allowed: Vec<Alg>,
    keys: ArcSwap<KeySet>,
    loaded: AtomicBool,
    running: AtomicBool,
    last_fetch_ms: AtomicU64,
    wake: Arc<Notify>,
    loaded_notify: Notify,
}

#[derive(Debug)]
enum Origin {
    /// Keys given in the configuration (a file or inline): loaded once per configuration.
    Fixed,
    /// Keys fetched from a URL.
    Url {
        uri: Uri,
        fetcher: Fetcher,
        refresh: Duration,
        kid_refresh: Duration,
    },
}

impl KeySource {
    /// Keys known when the configuration compiles.
    pub fn fixed(provider: &str, keys: KeySet, allowed: Vec<Alg>) -> Self {
        Self::new(provider, Origin::Fixed, keys, allowed, true)
    }

    /// Keys fetched from `uri` once started ([`KeySource::start`]).
    pub fn url(
        provider: &str,
        uri: Uri,
        fetcher: Fetcher,
        refresh: Duration,
        kid_refresh: Duration,
        allowed: Vec<Alg>,
    ) -> Self {
        let origin = Origin::Url {
            uri,
            fetcher,
            refresh,
            kid_refresh,
        };
        Self::new(provider, origin, KeySet::default(), allowed, false)
    }

    fn new(provider: &str, origin: Origin, keys: KeySet, allowed: Vec<Alg>, loaded: bool) -> Self {
        Self {
            provider: provider.to_owned(),
            origin,
            allowed,
            keys: ArcSwap::from_pointee(keys),
            loaded: AtomicBool::new(loaded),
            running: AtomicBool::new(false),
            last_fetch_ms: AtomicU64::new(0),
            wake: Arc::new(Notify::new()),
            loaded_notify: Notify::new(),
        }
    }

    /// True once keys are there (always for fixed keys).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// The URL keys come from, if any.
    pub fn url_str(&self) -> Option<String> {
        match &self.origin {
            Origin::Url { uri, .. } => Some(uri.to_string()),
            Origin::Fixed => None,
        }
    }

    /// Takes over the keys of the source this one replaces (a reload): same URL, same
    /// algorithms, so requests never wait for a fetch because the configuration changed.
    pub fn inherit(&self, old: &KeySource) {
        if self.url_str().is_some() && self.url_str() == old.url_str() && old.is_loaded() {
            self.keys.store(old.keys.load_full());
            self.last_fetch_ms
                .store(old.last_fetch_ms.load(Ordering::Relaxed), Ordering::Relaxed);
            self.loaded.store(true, Ordering::Release);
        }
    }

    /// Starts the background refresh of a URL source (once; later calls do nothing). Must run
    /// inside a tokio runtime. The task ends when the source is dropped.
    pub fn start(self: &Arc<Self>) {
        if !matches!(self.origin, Origin::Url { .. }) || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        let wake = self.wake.clone();
        tokio::spawn(refresh_loop(weak, wake, !self.is_loaded()));
    }

    /// Waits until keys are loaded, at most `timeout`. Returns whether they are.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.loaded_notify.notified();
            if self.is_loaded() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_loaded();
            }
        }
    }

    /// Asks the background task for a fetch because a token named an unknown `kid`; at most
    /// once per `unknown_kid_refresh_secs`. Never waits.
    pub fn request_refresh(&self) {
        if let Origin::Url { .. } = self.origin {
            self.wake.notify_one();
        }
    }

    /// The current keys.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Fetches the keys once; returns how long they may be kept.
    async fn fetch(&self, now_ms: UnixMillis) -> Result<Duration, String> {
        let Origin::Url {
            uri,
            fetcher,
            refresh,
            ..
        } = &self.origin
        else {
            return Ok(Duration::MAX);
        };
        self.last_fetch_ms.store(now_ms, Ordering::Relaxed);
        let req = http::Request::get(uri.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|e| e.to_string())?;
        let answer = fetcher.send(req).await?;
        if answer.status != http::StatusCode::OK {
            return Err(format!("the JWKS URL answered {}", answer.status));
        }
        let set = KeySet::from_json(&answer.body, &self.allowed)?;
        if set.is_empty() {
            return Err("the JWKS has no key for the configured algorithms".to_owned());
        }
        self.keys.store(Arc::new(set));
        self.loaded.store(true, Ordering::Release);
        self.loaded_notify.notify_waiters();
        // Cache-Control decides, within sane bounds; the configured interval otherwise.
        let ttl = fetch::max_age(&answer.headers)
            .map_or(*refresh, |s| Duration::from_secs(s.clamp(10, 86_400)));
        Ok(ttl)
    }
}

async fn refresh_loop(source: Weak<KeySource>, wake: Arc<Notify>, mut initial: bool) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let delay = {
            let Some(s) = source.upgrade() else { return };
            let (refresh, kid_refresh) = match &s.origin {
                Origin::Url {
                    refresh,
                    kid_refresh,
                    ..
                } => (*refresh, *kid_refresh),
                Origin::Fixed => return,
            };
            let due = initial || {
                let since = now_ms().saturating_sub(s.last_fetch_ms.load(Ordering::Relaxed));
                since >= u64::try_from(kid_refresh.as_millis()).unwrap_or(u64::MAX)
            };
            if due {
                initial = false;
                match s.fetch(now_ms()).await {
                    Ok(ttl) => {
                        backoff = Duration::from_secs(1);
                        ttl.min(refresh.max(Duration::from_secs(10)))
                    }
                    Err(e) => {
                        tracing::warn!(provider = %s.provider, error = %e, "JWKS fetch failed; retrying");
                        initial = !s.is_loaded();
                        let d = backoff;
                        // Without keys, every token fails: retry often. With keys, gently.
                        let cap = if s.is_loaded() {
                            refresh.max(Duration::from_secs(1))
                        } else {
                            Duration::from_secs(5)
                        };
                        backoff = (backoff * 2).min(cap);
                        d
                    }
                }
            } else {
                kid_refresh
            }
        };
        // Sleep until the keys are due, or until a request saw an unknown kid.
        let woke = tokio::select! {
            () = tokio::time::sleep(delay) => false,
            () = wake.notified() => true,
        };
        if !woke {
            initial = true;
        }
    }
}

/// The background task's clock: it runs only in the live gateway, never in a replay.
fn now_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A JWT identity provider, compiled.
#[derive(Debug)]
pub struct JwtProvider {
    /// Its name in `identity_providers`.
    pub name: String,
    /// The required `iss`.
    pub issuer: Option<String>,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// Accepted algorithms.
    pub algorithms: Vec<Alg>,
    /// Clock skew allowed.
    pub leeway_ms: u64,
    /// Claims a token must have.
    pub required_claims: Vec<String>,
    /// Accept tokens without `exp`.
    pub allow_no_expiry: bool,
    /// Claim mapping.
    pub mapping: ClaimMapping,
    /// The keys.
    pub keys: Arc<KeySource>,
}

/// How claims become a principal.
#[derive(Clone, Debug)]
pub struct ClaimMapping {
    /// The claim naming the consumer.
    pub consumer: String,
    /// The claim with groups.
    pub groups: Option<String>,
    /// The claim with scopes.
    pub scopes: String,
}

/// Why a token was refused (for events; the client only learns "invalid token").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The signature or the shape.
    Jws(JwsError),
    /// The payload is not a JSON object.
    NotClaims,
    /// Past `exp`.
    Expired,
    /// Before `nbf`.
    NotYetValid,
    /// `iat` in the future.
    IssuedInFuture,
    /// No `exp`.
    NoExpiry,
    /// A time claim is not a number.
    BadTimeClaim(&'static str),
    /// Wrong `iss`.
    WrongIssuer,
    /// No accepted `aud`.
    WrongAudience,
    /// A required claim is missing.
    MissingClaim(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Jws(e) => e.fmt(f),
            Self::NotClaims => f.write_str("the payload is not a JSON object of claims"),
            Self::Expired => f.write_str("the token has expired"),
            Self::NotYetValid => f.write_str("the token is not valid yet (nbf)"),
            Self::IssuedInFuture => f.write_str("the token was issued in the future (iat)"),
            Self::NoExpiry => f.write_str("the token has no exp"),
            Self::BadTimeClaim(c) => write!(f, "\"{c}\" is not a number"),
            Self::WrongIssuer => f.write_str("wrong issuer"),
            Self::WrongAudience => f.write_str("wrong audience"),
            Self::MissingClaim(c) => write!(f, "missing claim \"{c}\""),
        }
    }
}

impl JwtProvider {
    /// True if the token is meant for this provider: its unverified `iss` matches (or the
    /// provider names no issuer). Used only to pick among several providers; the token is
    /// then verified in full.
    pub fn claims_issuer(&self, token: &str) -> bool {
        let Some(want) = &self.issuer else {
            return true;
        };
        let Some(payload) = token.split('.').nth(1).and_then(jws::b64) else {
            return false;
        };
        serde_json::from_slice::<serde_json::Value>(&payload)
            .ok()
            .and_then(|v| v.get("iss").and_then(|i| i.as_str()).map(|i| i == want))
            .unwrap_or(false)
    }

    /// Verifies a token at `now_ms` and returns its claims.
    pub fn verify(
        &self,
        token: &str,
        now_ms: UnixMillis,
    ) -> Result<serde_json::Map<String, serde_json::Value>, TokenError> {
        let keys = self.keys.keys();
        let v = match jws::verify(token, &keys, &self.algorithms) {
            Ok(v) => v,
            Err(JwsError::UnknownKid(k)) => {
                self.keys.request_refresh();
                return Err(TokenError::Jws(JwsError::UnknownKid(k)));
            }
            Err(e) => return Err(TokenError::Jws(e)),
        };
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&v.payload).map_err(|_| TokenError::NotClaims)?;
        self.check_claims(&claims, now_ms)?;
        Ok(claims)
    }

    fn check_claims(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        now_ms: UnixMillis,
    ) -> Result<(), TokenError> {
        let now = i128::from(now_ms / 1000);
        let leeway = i128::from(self.leeway_ms / 1000);
        let time = |name: &'static str| -> Result<Option<i128>, TokenError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| v.as_u64().map(i128::from))
                    .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i128))
                    .map(Some)
                    .ok_or(TokenError::BadTimeClaim(name)),
            }
        };
        match time("exp")? {
            Some(exp) if now > exp + leeway => return Err(TokenError::Expired),
            None if !self.allow_no_expiry => return Err(TokenError::NoExpiry),
            _ => {}
        }
        if time("nbf")?.is_some_and(|nbf| now + leeway < nbf) {
            return Err(TokenError::NotYetValid);
        }
        if time("iat")?.is_some_and(|iat| iat > now + leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        if let Some(want) = &self.issuer {
            if claims.get("iss").and_then(|v| v.as_str()) != Some(want.as_str()) {
                return Err(TokenError::WrongIssuer);
            }
        }
        if !self.audiences.is_empty() && !audience_ok(claims.get("aud"), &self.audiences) {
            return Err(TokenError::WrongAudience);
        }
        for c in &self.required_claims {
            if !claims.contains_key(c) {
                return Err(TokenError::MissingClaim(c.clone()));
            }
        }
        Ok(())
    }
}

/// True if `aud` (a string or an array of strings) names one of `accepted`.
pub fn audience_ok(aud: Option<&serde_json::Value>, accepted: &[String]) -> bool {
    match aud {
        Some(serde_json::Value::String(a)) => accepted.iter().any(|x| x == a),
        Some(serde_json::Value::Array(v)) => v
            .iter()
            .filter_map(|a| a.as_str())
            .any(|a| accepted.iter().any(|x| x == a)),
        _ => false,
    }
}

/// Builds the principal of verified claims: the consumer from its claim, groups from the
/// groups claim plus those of a configured consumer of the same name, scopes from `scope`
/// (space-separated) or an array claim.
pub fn principal_from_claims(
    claims: serde_json::Map<String, serde_json::Value>,
    mapping: &ClaimMapping,
    method: &str,
    dir: &Directory,
) -> Principal {
    let consumer = claims
        .get(&mapping.consumer)
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let mut groups = mapping
        .groups
        .as_ref()
        .and_then(|g| claims.get(g))
        .map(strings)
        .unwrap_or_default();
    if let Some(c) = consumer.as_deref().and_then(|c| dir.by_name(c)) {
        for g in &c.groups {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
    }
    let scopes = claims
        .get(&mapping.scopes)
        .or_else(|| claims.get("scp"))
        .map(strings)
        .unwrap_or_default();
    Principal {
        consumer,
        groups,
        method: method.to_owned(),
        claims,
        scopes,
    }
}

/// A claim as a list of strings: an array's strings, or a space-separated string.
fn strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
