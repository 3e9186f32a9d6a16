//! OAuth2 token introspection (RFC 7662) for opaque bearer tokens: the gateway asks the
//! authorization server, as a client with its own credentials, whether a token is active, and
//! caches the answer: an active token until its `exp` or `cache_secs`, whichever is first; an
//! inactive one for `negative_cache_secs`. The cache is keyed by the token's SHA-256 and
//! bounded in size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::Uri;
use rampart_core::UnixMillis;

use super::consumers::sha256;
use super::fetch::Fetcher;
use super::jwt::audience_ok;

/// An introspection endpoint, compiled.
#[derive(Debug)]
pub struct Introspector {
    /// Its name in `identity_providers`.
    pub name: String,
    uri: Uri,
    fetcher: Fetcher,
    authorization: String,
    cache_ms: u64,
    negative_ms: u64,
    max_entries: usize,
    audiences: Vec<String>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

#[derive(Clone, Debug)]
struct Cached {
    until: UnixMillis,
    claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// What the endpoint says of a token.
#[derive(Debug, Clone, PartialEq)]
pub enum Introspection {
    /// Active, with its claims.
    Active(Arc<serde_json::Map<String, serde_json::Value>>),
    /// Not active (unknown, expired, revoked), or not for this audience.
    Inactive,
}

/// Settings of an [`Introspector`].
#[derive(Debug)]
pub struct IntrospectorSettings {
    /// The provider's name.
    pub name: String,
    /// The endpoint.
    pub uri: Uri,
    /// The client.
    pub fetcher: Fetcher,
    /// The gateway's client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Positive cache time, ms.
    pub cache_ms: u64,
    /// Negative cache time, ms.
    pub negative_ms: u64,
    /// Cache size.
    pub max_entries: usize,
    /// Accepted audiences.
    pub audiences: Vec<String>,
}

impl Introspector {
    /// Creates an introspector.
    pub fn new(s: IntrospectorSettings) -> Self {
        // RFC 6749 2.3.1: the client id and secret are form-encoded, then joined and base64ed.
        let pair = format!(
            "{}:{}",
            form_encode(&s.client_id),
            form_encode(&s.client_secret)
        );
        Self {
            name: s.name,
            uri: s.uri,
            fetcher: s.fetcher,
            authorization: format!("Basic {}", STANDARD.encode(pair)),
            cache_ms: s.cache_ms,
            negative_ms: s.negative_ms,
            max_entries: s.max_entries.max(1),
            audiences: s.audiences,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Asks about `token` at `now_ms` (the cache first). An error means the endpoint could not
    /// answer: the stage's `on_error` decides.
    pub async fn check(&self, token: &str, now_ms: UnixMillis) -> Result<Introspection, String> {
        let key = sha256(token.as_bytes());
        if let Some(hit) = self.cached(&key, now_ms) {
            return Ok(hit);
        }
        let body = format!("token={}&token_type_hint=access_token", form_encode(token));
        let req = http::Request::post(self.uri.clone())
            .header(http::header::AUTHORIZATION, &self.authorization)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Bytes::from(body))
            .map_err(|e| e.to_string())?;
        let answer = self.fetcher.send(req).await?;
        if answer.status != http::StatusCode::OK {
            return Err(format!(
                "the introspection endpoint answered {}",
                answer.status
            ));
        }
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&answer.body)
            .map_err(|_| "the introspection answer is not a JSON object".to_owned())?;
        let active = v.get("active").and_then(|a| a.as_bool()) == Some(true);
        let now_s = now_ms / 1000;
        let exp = v.get("exp").and_then(|e| e.as_u64());
        let expired = exp.is_some_and(|e| e <= now_s);
        let nbf_future = v
            .get("nbf")
            .and_then(|e| e.as_u64())
            .is_some_and(|n| n > now_s);
        let aud_ok = self.audiences.is_empty() || audience_ok(v.get("aud"), &self.audiences);
        let (result, until) = if active && !expired && !nbf_future && aud_ok {
            let mut until = now_ms.saturating_add(self.cache_ms);
            if let Some(e) = exp {
                until = until.min(e.saturating_mul(1000));
            }
            (Some(Arc::new(v)), until)
        } else {
            (None, now_ms.saturating_add(self.negative_ms))
        };
        self.store(key, until, result.clone(), now_ms);
        Ok(match result {
            Some(c) => Introspection::Active(c),
            None => Introspection::Inactive,
        })
    }

    fn cached(&self, key: &[u8; 32], now_ms: UnixMillis) -> Option<Introspection> {
        let cache = self.cache.lock().ok()?;
        let c = cache.get(key).filter(|c| c.until > now_ms)?;
        Some(match &c.claims {
            Some(claims) => Introspection::Active(claims.clone()),
            None => Introspection::Inactive,
        })
    }

    fn store(
        &self,
        key: [u8; 32],
        until: UnixMillis,
        claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
        now_ms: UnixMillis,
    ) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= self.max_entries {
            cache.retain(|_, c| c.until > now_ms);
            if cache.len() >= self.max_entries {
                // Still full of live answers: drop the one that expires first.
                if let Some(k) = cache.iter().min_by_key(|(_, c)| c.until).map(|(k, _)| *k) {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(key, Cached { until, claims });
    }

    /// The number of cached answers.
    pub fn cached_len(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_the_html_rules() {
        assert_eq!(form_encode("a b+c/d:é"), "a+b%2Bc%2Fd%3A%C3%A9");
        assert_eq!(form_encode("tok-EN_1.2*"), "tok-EN_1.2*");
    }
}
