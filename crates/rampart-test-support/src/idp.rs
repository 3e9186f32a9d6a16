//! Identity-provider doubles with real cryptography: [`TokenSigner`] signs JWTs with freshly
//! generated keys of any JWS algorithm and publishes their public JWK; [`TestIdp`] is a
//! loopback server with a JWKS endpoint (its answer, `Cache-Control` and availability under the
//! test's control) and an RFC 7662 introspection endpoint that checks the client's credentials.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
};
use aws_lc_rs::{hmac, rsa::KeySize};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

enum Key {
    Hmac(Box<hmac::Key>, Vec<u8>),
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair, &'static str, usize),
    Ed(Ed25519KeyPair),
}

/// Signs tokens with one generated key.
pub struct TokenSigner {
    pub alg: String,
    pub kid: String,
    key: Key,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSigner({}, {})", self.alg, self.kid)
    }
}

impl TokenSigner {
    /// Generates a key for `alg` (HS256/384/512, RS*, PS*, ES256/384/512, EdDSA).
    pub fn new(alg: &str, kid: &str) -> Self {
        let key = match alg {
            "HS256" | "HS384" | "HS512" => {
                let (a, n) = match alg {
                    "HS256" => (hmac::HMAC_SHA256, 32),
                    "HS384" => (hmac::HMAC_SHA384, 48),
                    _ => (hmac::HMAC_SHA512, 64),
                };
                let mut secret = vec![0u8; n];
                aws_lc_rs::rand::fill(&mut secret).unwrap();
                Key::Hmac(Box::new(hmac::Key::new(a, &secret)), secret)
            }
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
                let enc: &'static dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                Key::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap(), enc)
            }
            "ES256" => Key::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
                "P-256",
                32,
            ),
            "ES384" => Key::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
                "P-384",
                48,
            ),
            "ES512" => Key::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P521_SHA512_FIXED_SIGNING).unwrap(),
                "P-521",
                66,
            ),
            "EdDSA" => Key::Ed(Ed25519KeyPair::generate().unwrap()),
            other => panic!("no such algorithm {other}"),
        };
        Self {
            alg: alg.to_owned(),
            kid: kid.to_owned(),
            key,
        }
    }

    /// The key as a public JWK (for HMAC: the secret, which is the verification key too).
    pub fn jwk(&self) -> serde_json::Value {
        let b = |x: &[u8]| URL_SAFE_NO_PAD.encode(x);
        let mut v = match &self.key {
            Key::Hmac(_, secret) => serde_json::json!({ "kty": "oct", "k": b(secret) }),
            Key::Rsa(k, _) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
                serde_json::json!({ "kty": "RSA", "n": b(&c.n), "e": b(&c.e) })
            }
            Key::Ec(k, crv, size) => {
                let p = k.public_key().as_ref();
                serde_json::json!({ "kty": "EC", "crv": crv, "x": b(&p[1..1 + size]), "y": b(&p[1 + size..]) })
            }
            Key::Ed(k) => {
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": b(k.public_key().as_ref()) })
            }
        };
        v["kid"] = self.kid.clone().into();
        v["alg"] = self.alg.clone().into();
        v["use"] = "sig".into();
        v
    }

    /// The RSA public key's modulus, for the algorithm-confusion test (an HMAC secret made of
    /// the RSA public key).
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.key {
            Key::Rsa(k, _) => k.public_key().as_ref().to_vec(),
            Key::Ec(k, ..) => k.public_key().as_ref().to_vec(),
            Key::Ed(k) => k.public_key().as_ref().to_vec(),
            Key::Hmac(_, s) => s.clone(),
        }
    }

    /// Signs `claims` with the usual header (`alg`, `kid`, `typ: JWT`).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({ "alg": self.alg, "kid": self.kid, "typ": "JWT" });
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under any header (the header's `alg` is not checked against the key).
    pub fn sign_with_header(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn sign_bytes(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            Key::Hmac(k, _) => hmac::sign(k, msg).as_ref().to_vec(),
            Key::Rsa(k, enc) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(*enc, &rng, msg, &mut sig).unwrap();
                sig
            }
            Key::Ec(k, ..) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Key::Ed(k) => k.sign(msg).as_ref().to_vec(),
        }
    }
}

/// A JWKS document of `signers`' public keys.
pub fn jwks(signers: &[&TokenSigner]) -> String {
    serde_json::json!({ "keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>() }).to_string()
}

/// HMAC-SHA256 over `msg` with `secret`, for hand-made tokens.
pub fn hs256(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), msg)
        .as_ref()
        .to_vec()
}

#[derive(Debug, Default)]
struct IdpState {
    jwks: String,
    cache_control: Option<String>,
    /// Introspection answers by token.
    tokens: HashMap<String, serde_json::Value>,
}

/// A loopback identity provider: `GET /jwks` and `POST /introspect`.
#[derive(Debug)]
pub struct TestIdp {
    pub addr: SocketAddr,
    state: Arc<Mutex<IdpState>>,
    down: Arc<AtomicBool>,
    jwks_hits: Arc<AtomicUsize>,
    introspect_hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// The introspection client the [`TestIdp`] accepts.
pub const IDP_CLIENT: (&str, &str) = ("rampart", "gateway-secret");

impl TestIdp {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(IdpState::default()));
        let down = Arc::new(AtomicBool::new(false));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let introspect_hits = Arc::new(AtomicUsize::new(0));
        let (s, d, j, i) = (
            state.clone(),
            down.clone(),
            jwks_hits.clone(),
            introspect_hits.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (s, d, j, i) = (s.clone(), d.clone(), j.clone(), i.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(req, s.clone(), d.clone(), j.clone(), i.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            down,
            jwks_hits,
            introspect_hits,
            task,
        }
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    pub fn introspection_url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    /// Sets the JWKS the endpoint serves, and its `Cache-Control`.
    pub fn set_jwks(&self, jwks: &str, cache_control: Option<&str>) {
        let mut s = self.state.lock().unwrap();
        s.jwks = jwks.to_owned();
        s.cache_control = cache_control.map(str::to_owned);
    }

    /// Sets the introspection answer for a token (`{"active": true, ...}`).
    pub fn set_token(&self, token: &str, answer: serde_json::Value) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.to_owned(), answer);
    }

    /// Makes every endpoint answer 503.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn introspect_hits(&self) -> usize {
        self.introspect_hits.load(Ordering::SeqCst)
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, body: String, cache_control: Option<&str>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    if let Some(cc) = cache_control {
        r.headers_mut()
            .insert(http::header::CACHE_CONTROL, cc.parse().unwrap());
    }
    r
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<IdpState>>,
    down: Arc<AtomicBool>,
    jwks_hits: Arc<AtomicUsize>,
    introspect_hits: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/jwks" {
        jwks_hits.fetch_add(1, Ordering::SeqCst);
    } else if path == "/introspect" {
        introspect_hits.fetch_add(1, Ordering::SeqCst);
    }
    if down.load(Ordering::SeqCst) {
        return Ok(reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "{}".to_owned(),
            None,
        ));
    }
    match path.as_str() {
        "/jwks" => {
            let s = state.lock().unwrap();
            Ok(reply(
                StatusCode::OK,
                s.jwks.clone(),
                s.cache_control.as_deref(),
            ))
        }
        "/introspect" => {
            let expected = format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", IDP_CLIENT.0, IDP_CLIENT.1))
            );
            let authorized = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .is_some_and(|v| v.as_bytes() == expected.as_bytes());
            if !authorized {
                return Ok(reply(
                    StatusCode::UNAUTHORIZED,
                    r#"{"error":"invalid_client"}"#.to_owned(),
                    None,
                ));
            }
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let form = String::from_utf8_lossy(&body).to_string();
            let token = form
                .split('&')
                .find_map(|p| p.strip_prefix("token="))
                .map(|t| t.replace('+', " "))
                .map(|t| percent_decode(&t))
                .unwrap_or_default();
            let answer = state
                .lock()
                .unwrap()
                .tokens
                .get(&token)
                .cloned()
                .unwrap_or_else(|| serde_json::json!({ "active": false }));
            Ok(reply(StatusCode::OK, answer.to_string(), None))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "{}".to_owned(), None)),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
