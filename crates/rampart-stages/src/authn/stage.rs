//! The `authn` stage: finds the client's credential, checks it with the API's methods in their
//! order, and puts the principal on the exchange, or answers 401 with the challenges of the
//! methods the API accepts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{AUTHORIZATION, COOKIE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue};
use rampart_core::{
    Block, BoxFuture, Decision, Exchange, Outcome, Principal, Reason, RuleId, Stage, StageError,
    StageId, UnixMillis,
};
use tokio::sync::Semaphore;

use super::consumers::{BasicUser, Consumer, Directory};
use super::introspect::{Introspection, Introspector};
use super::jws;
use super::jwt::{principal_from_claims, ClaimMapping, JwtProvider};
use super::lockout::Lockout;
use super::password::{hash_argon2id, PasswordHashKind};

/// The stage's id.
pub const STAGE: StageId = StageId("authn");

/// A way to authenticate.
#[derive(Debug, Clone)]
pub enum Method {
    /// An API key in a header, query parameter or cookie.
    ApiKey,
    /// HTTP basic.
    Basic,
    /// The listener's verified client certificate.
    Mtls,
    /// A bearer JWT.
    Jwt(Arc<JwtProvider>),
    /// A bearer token checked by introspection.
    Introspection(Arc<Introspector>, ClaimMapping),
}

impl Method {
    fn name(&self) -> &str {
        match self {
            Self::ApiKey => "api_key",
            Self::Basic => "basic",
            Self::Mtls => "mtls",
            Self::Jwt(_) => "jwt",
            Self::Introspection(..) => "introspection",
        }
    }
}

/// What every API's authentication shares: the directory, the lockout, identity forwarding and
/// the password checker.
#[derive(Debug)]
pub struct AuthnShared {
    /// Consumers and credentials.
    pub directory: Arc<Directory>,
    /// Failure counters, when lockout is on.
    pub lockout: Option<Arc<Lockout>>,
    /// Identity headers to the upstream.
    pub forward: Arc<Forward>,
    /// Password verification, off the async workers, with a short success cache.
    pub passwords: Arc<PasswordChecker>,
}

/// Where an API key is read.
#[derive(Debug, Clone)]
pub struct KeyLocation {
    /// A header.
    pub header: Option<HeaderName>,
    /// A query parameter.
    pub query: Option<String>,
    /// A cookie.
    pub cookie: Option<String>,
    /// Remove it before the upstream.
    pub strip: bool,
}

/// The `authn` stage of one API.
#[derive(Debug)]
pub struct AuthnStage {
    methods: Vec<Method>,
    realm: String,
    key: KeyLocation,
    allow_anonymous: bool,
    shared: Arc<AuthnShared>,
}

impl AuthnStage {
    /// Creates the stage. `realm` must be safe in a quoted string (checked by the compiler).
    pub fn new(
        methods: Vec<Method>,
        realm: String,
        key: KeyLocation,
        allow_anonymous: bool,
        shared: Arc<AuthnShared>,
    ) -> Self {
        Self {
            methods,
            realm,
            key,
            allow_anonymous,
            shared,
        }
    }

    fn challenges(&self, bearer_invalid: bool) -> Vec<HeaderValue> {
        let mut out: Vec<String> = Vec::new();
        let r = &self.realm;
        for m in &self.methods {
            let c = match m {
                Method::ApiKey => format!("ApiKey realm=\"{r}\""),
                Method::Basic => format!("Basic realm=\"{r}\", charset=\"UTF-8\""),
                Method::Mtls => continue,
                Method::Jwt(_) | Method::Introspection(..) if bearer_invalid => {
                    format!("Bearer realm=\"{r}\", error=\"invalid_token\"")
                }
                Method::Jwt(_) | Method::Introspection(..) => format!("Bearer realm=\"{r}\""),
            };
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out.into_iter()
            .filter_map(|c| HeaderValue::from_str(&c).ok())
            .collect()
    }

    fn refuse(&self, detail: String, bearer_invalid: bool) -> Outcome {
        let mut b = Block::new(Reason::Unauthenticated).detail(detail);
        for c in self.challenges(bearer_invalid) {
            b = b.header(WWW_AUTHENTICATE, c);
        }
        Ok(Decision::Block(b))
    }

    async fn run(&self, req: &mut http::request::Parts, x: &mut Exchange) -> Outcome {
        let now = x.now_ms();
        let shared = &self.shared;
        // (The proxy has already removed every identity header the client sent.)
        let ip_key = format!("ip:{}", x.client_ip);
        if let Some(secs) = shared.lockout.as_ref().and_then(|l| l.locked(&ip_key, now)) {
            return Ok(Decision::Block(locked_out(secs, "client address")));
        }
        let mut invalid: Option<String> = None;
        let mut bearer_invalid = false;
        let fail = |subject: Option<&str>, why: String, invalid: &mut Option<String>| {
            if let Some(l) = &shared.lockout {
                l.failure(&ip_key, now);
                if let Some(s) = subject {
                    l.failure(s, now);
                }
            }
            invalid.get_or_insert(why);
        };
        for m in &self.methods {
            let found: Option<Principal> = match m {
                Method::ApiKey => {
                    let Some(key) = self.api_key(req) else {
                        continue;
                    };
                    match shared.directory.by_api_key(key.as_bytes()) {
                        Some(c) => {
                            if self.key.strip {
                                self.strip_key(req);
                            }
                            Some(plain_principal(c, "api_key"))
                        }
                        None => {
                            let subject =
                                format!("key:{}", key.chars().take(8).collect::<String>());
                            if let Some(secs) = shared
                                .lockout
                                .as_ref()
                                .and_then(|l| l.locked(&subject, now))
                            {
                                return Ok(Decision::Block(locked_out(secs, "API key prefix")));
                            }
                            fail(Some(&subject), "unknown API key".to_owned(), &mut invalid);
                            None
                        }
                    }
                }
                Method::Basic => {
                    let Some((user, password)) = basic_credentials(&req.headers) else {
                        continue;
                    };
                    let subject = format!("user:{user}");
                    if let Some(secs) = shared
                        .lockout
                        .as_ref()
                        .and_then(|l| l.locked(&subject, now))
                    {
                        return Ok(Decision::Block(locked_out(secs, "user")));
                    }
                    let entry = shared.directory.basic_user(&user).cloned();
                    let ok = shared
                        .passwords
                        .check(entry.as_ref(), &user, &password, now)
                        .await;
                    match (ok, entry) {
                        (true, Some(u)) => {
                            if let Some(l) = &shared.lockout {
                                l.success(&subject);
                            }
                            shared
                                .directory
                                .consumer(u.consumer)
                                .map(|c| plain_principal(c, "basic"))
                        }
                        _ => {
                            fail(
                                Some(&subject),
                                format!("wrong password for \"{user}\""),
                                &mut invalid,
                            );
                            None
                        }
                    }
                }
                Method::Mtls => {
                    let Some(cert) = x.client_cert() else {
                        continue;
                    };
                    match shared.directory.by_certificate(&cert.subject, &cert.sans) {
                        Some(c) => Some(plain_principal(c, "mtls")),
                        None => {
                            invalid.get_or_insert_with(|| {
                                format!("certificate \"{}\" belongs to no consumer", cert.subject)
                            });
                            None
                        }
                    }
                }
                Method::Jwt(p) => {
                    let Some(token) = bearer(&req.headers) else {
                        continue;
                    };
                    if !jws::looks_like_jws(token) || !p.claims_issuer(token) {
                        continue;
                    }
                    if !p.keys.is_loaded() {
                        return Err(StageError::new(format!(
                            "the keys of identity provider \"{}\" are not loaded yet",
                            p.name
                        )));
                    }
                    match p.verify(token, now) {
                        Ok(claims) => Some(principal_from_claims(
                            claims,
                            &p.mapping,
                            "jwt",
                            &shared.directory,
                        )),
                        Err(e) => {
                            bearer_invalid = true;
                            fail(None, format!("{}: {e}", p.name), &mut invalid);
                            None
                        }
                    }
                }
                Method::Introspection(i, mapping) => {
                    let Some(token) = bearer(&req.headers).map(str::to_owned) else {
                        continue;
                    };
                    match i.check(&token, now).await {
                        Ok(Introspection::Active(claims)) => Some(principal_from_claims(
                            (*claims).clone(),
                            mapping,
                            "introspection",
                            &shared.directory,
                        )),
                        Ok(Introspection::Inactive) => {
                            bearer_invalid = true;
                            fail(None, format!("{}: token not active", i.name), &mut invalid);
                            None
                        }
                        Err(e) => {
                            return Err(StageError::new(format!(
                                "identity provider \"{}\" could not answer: {e}",
                                i.name
                            )))
                        }
                    }
                }
            };
            if let Some(p) = found {
                shared.forward.apply(&mut req.headers, &p);
                x.principal = Some(p);
                return Ok(Decision::Continue);
            }
        }
        // A bearer token no provider would take (another issuer, not a JWT for a JWT-only
        // API) is a wrong credential, not a missing one.
        let bearer_methods = self
            .methods
            .iter()
            .any(|m| matches!(m, Method::Jwt(_) | Method::Introspection(..)));
        if invalid.is_none() && bearer_methods && bearer(&req.headers).is_some() {
            bearer_invalid = true;
            if let Some(l) = &shared.lockout {
                l.failure(&ip_key, now);
            }
            invalid = Some("no identity provider accepts this bearer token".to_owned());
        }
        match invalid {
            Some(why) => self.refuse(why, bearer_invalid),
            None if self.allow_anonymous => Ok(Decision::Continue),
            None => {
                let names: Vec<&str> = self.methods.iter().map(Method::name).collect();
                self.refuse(format!("no credential ({})", names.join(", ")), false)
            }
        }
    }

    fn api_key(&self, req: &http::request::Parts) -> Option<String> {
        if let Some(h) = &self.key.header {
            if let Some(v) = req.headers.get(h).and_then(|v| v.to_str().ok()) {
                return Some(v.trim().to_owned());
            }
        }
        if let Some(q) = &self.key.query {
            if let Some(v) = query_value(req.uri.query().unwrap_or(""), q) {
                return Some(v);
            }
        }
        if let Some(c) = &self.key.cookie {
            for v in req.headers.get_all(COOKIE) {
                let Ok(v) = v.to_str() else { continue };
                for pair in v.split(';') {
                    if let Some((n, val)) = pair.trim().split_once('=') {
                        if n.trim() == c {
                            return Some(val.trim().to_owned());
                        }
                    }
                }
            }
        }
        None
    }

    fn strip_key(&self, req: &mut http::request::Parts) {
        if let Some(h) = &self.key.header {
            req.headers.remove(h);
        }
        if let Some(q) = &self.key.query {
            if let Some(pq) = req.uri.path_and_query() {
                let kept: Vec<&str> = pq
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .filter(|p| !p.is_empty() && p.split('=').next() != Some(q.as_str()))
                    .collect();
                let new = if kept.is_empty() {
                    pq.path().to_owned()
                } else {
                    format!("{}?{}", pq.path(), kept.join("&"))
                };
                let mut parts = req.uri.clone().into_parts();
                if let Ok(p) = new.parse() {
                    parts.path_and_query = Some(p);
                    if let Ok(u) = http::Uri::from_parts(parts) {
                        req.uri = u;
                    }
                }
            }
        }
        if let Some(c) = &self.key.cookie {
            let kept: Vec<String> = req
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .map(str::trim)
                .filter(|p| !p.is_empty() && p.split('=').next().map(str::trim) != Some(c.as_str()))
                .map(str::to_owned)
                .collect();
            req.headers.remove(COOKIE);
            if !kept.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                    req.headers.insert(COOKIE, v);
                }
            }
        }
    }
}

impl Stage for AuthnStage {
    fn id(&self) -> StageId {
        STAGE
    }

    fn is_async(&self) -> bool {
        true
    }

    fn on_request_head_async<'a>(
        &'a self,
        req: &'a mut http::request::Parts,
        x: &'a mut Exchange,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(req, x))
    }
}

fn locked_out(secs: u64, what: &str) -> Block {
    Block::new(Reason::RateLimited)
        .rule(RuleId::new("authn-lockout"))
        .detail(format!(
            "{what} locked out after repeated failed authentications"
        ))
        .header(RETRY_AFTER, HeaderValue::from(secs))
}

fn plain_principal(c: &Consumer, method: &str) -> Principal {
    Principal {
        consumer: Some(c.name.clone()),
        groups: c.groups.clone(),
        method: method.to_owned(),
        claims: serde_json::Map::new(),
        scopes: Vec::new(),
    }
}

/// The token of `Authorization: Bearer …`.
fn bearer(h: &HeaderMap) -> Option<&str> {
    let v = h.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// The user and password of `Authorization: Basic …`.
fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn query_value(q: &str, name: &str) -> Option<String> {
    q.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| v.to_owned())
    })
}

/// Identity headers to the upstream, and their removal from client requests.
#[derive(Debug, Clone)]
pub struct Forward {
    consumer: HeaderName,
    groups: HeaderName,
    method: HeaderName,
    claims: Vec<(HeaderName, String)>,
}

impl Forward {
    /// Creates the forwarding.
    pub fn new(
        consumer: HeaderName,
        groups: HeaderName,
        method: HeaderName,
        claims: Vec<(HeaderName, String)>,
    ) -> Self {
        Self {
            consumer,
            groups,
            method,
            claims,
        }
    }

    /// Every header name this forwarding sets (to be removed from client requests).
    pub fn names(&self) -> Vec<HeaderName> {
        let mut v = vec![
            self.consumer.clone(),
            self.groups.clone(),
            self.method.clone(),
        ];
        v.extend(self.claims.iter().map(|(h, _)| h.clone()));
        v
    }

    /// Removes every identity header.
    pub fn strip(&self, h: &mut HeaderMap) {
        for n in self.names() {
            h.remove(n);
        }
    }

    /// Sets the identity headers of `p`.
    pub fn apply(&self, h: &mut HeaderMap, p: &Principal) {
        let mut set = |name: &HeaderName, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name.clone(), v);
            }
        };
        if let Some(c) = &p.consumer {
            set(&self.consumer, c);
        }
        if !p.groups.is_empty() {
            set(&self.groups, &p.groups.join(","));
        }
        set(&self.method, &p.method);
        for (name, claim) in &self.claims {
            match p.claims.get(claim) {
                Some(serde_json::Value::String(s)) => set(name, s),
                Some(v) => set(name, &v.to_string()),
                None => {}
            }
        }
    }
}

/// Verifies passwords off the async workers, a few at a time, and remembers successes briefly.
#[derive(Debug)]
pub struct PasswordChecker {
    ttl_ms: u64,
    key: hmac::Key,
    cache: Mutex<HashMap<[u8; 32], UnixMillis>>,
    permits: Semaphore,
}

/// The most successes remembered.
const PASSWORD_CACHE_ENTRIES: usize = 10_000;

impl PasswordChecker {
    /// Creates a checker that remembers a success for `ttl_ms` (0: never).
    pub fn new(ttl_ms: u64) -> Self {
        let mut seed = [0u8; 32];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            ttl_ms,
            key: hmac::Key::new(hmac::HMAC_SHA256, &seed),
            cache: Mutex::new(HashMap::new()),
            permits: Semaphore::new(workers),
        }
    }

    /// True if `password` is `user`'s. An unknown user costs as much as a known one, so that
    /// timing does not tell which users exist.
    pub async fn check(
        &self,
        entry: Option<&Arc<BasicUser>>,
        user: &str,
        password: &str,
        now: UnixMillis,
    ) -> bool {
        let mut m = Vec::with_capacity(user.len() + password.len() + 1);
        m.extend_from_slice(user.as_bytes());
        m.push(0);
        m.extend_from_slice(password.as_bytes());
        let tag = hmac::sign(&self.key, &m);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(tag.as_ref());
        if entry.is_some() && self.ttl_ms > 0 {
            if let Ok(c) = self.cache.lock() {
                if c.get(&digest).is_some_and(|until| *until > now) {
                    return true;
                }
            }
        }
        let hash = match entry {
            Some(e) if e.hash.is_cheap() => return e.hash.verify(password.as_bytes()),
            Some(e) => e.hash.clone(),
            None => dummy_hash().clone(),
        };
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || hash.verify(pw.as_bytes()))
            .await
            .unwrap_or(false);
        let ok = ok && entry.is_some();
        if ok && self.ttl_ms > 0 {
            if let Ok(mut c) = self.cache.lock() {
                if c.len() >= PASSWORD_CACHE_ENTRIES {
                    c.retain(|_, until| *until > now);
                    if c.len() >= PASSWORD_CACHE_ENTRIES {
                        c.clear();
                    }
                }
                c.insert(digest, now.saturating_add(self.ttl_ms));
            }
        }
        ok
    }
}

/// A hash no password matches, verified for unknown users.
fn dummy_hash() -> &'static PasswordHashKind {
    static DUMMY: OnceLock<PasswordHashKind> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 24];
        let _ = aws_lc_rs::rand::fill(&mut pw);
        hash_argon2id(&pw)
            .ok()
            .and_then(|h| PasswordHashKind::parse(&h).ok())
            .unwrap_or(PasswordHashKind::Sha1([0; 20]))
    })
}
