//! JSON Web Signatures (RFC 7515, compact form) verified against JSON Web Keys (RFC 7517), with
//! the algorithms of RFC 7518 and RFC 8037. The cryptography is aws-lc-rs's; this module is the
//! strict glue around it, and parses only untrusted input it must: the token and, once per key
//! set, the JWKS.
//!
//! What it refuses, whatever the keys: `alg: none` (no such [`Alg`]), an algorithm not in the
//! caller's list, a key of another type than the algorithm (an RSA public key used as an HMAC
//! secret: "algorithm confusion"), a key whose `alg`, `use` or `key_ops` forbid the use, HMAC
//! secrets shorter than the hash, RSA moduli under 2048 bits, `crit` header parameters
//! (none is understood, RFC 7515 §4.1.11), and any base64url that is not canonical. Keys named
//! by the token (`jwk`, `jku`, `x5u`, `x5c`) are never used: only the configured key set.

use std::fmt;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use aws_lc_rs::{hmac, signature::VerificationAlgorithm};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A signature algorithm (`alg`). There is no `none`.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Alg {
    /// Every algorithm.
    pub const ALL: [Alg; 13] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
    ];

    /// Parses an `alg` value (case-sensitive, as RFC 7515 says).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Returns the `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The key type (`kty`) this algorithm needs.
    pub fn kty(self) -> &'static str {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => "oct",
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                "RSA"
            }
            Self::ES256 | Self::ES384 | Self::ES512 => "EC",
            Self::EdDSA => "OKP",
        }
    }

    fn rsa_params(self) -> Option<&'static RsaParameters> {
        Some(match self {
            Self::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    fn hmac(self) -> Option<(hmac::Algorithm, usize)> {
        Some(match self {
            Self::HS256 => (hmac::HMAC_SHA256, 32),
            Self::HS384 => (hmac::HMAC_SHA384, 48),
            Self::HS512 => (hmac::HMAC_SHA512, 64),
            _ => return None,
        })
    }

    /// The curve name and coordinate size of an ECDSA algorithm.
    fn curve(self) -> Option<(&'static str, usize, &'static dyn VerificationAlgorithm)> {
        Some(match self {
            Self::ES256 => ("P-256", 32, &signature::ECDSA_P256_SHA256_FIXED),
            Self::ES384 => ("P-384", 48, &signature::ECDSA_P384_SHA384_FIXED),
            Self::ES512 => ("P-521", 66, &signature::ECDSA_P521_SHA512_FIXED),
            _ => return None,
        })
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One verification key, ready to use.
pub struct Jwk {
    /// The key id.
    pub kid: Option<String>,
    /// The algorithms the key verifies, each with its parsed key.
    keys: Vec<(Alg, Verifier)>,
}

enum Verifier {
    Public(ParsedPublicKey),
    Hmac(Box<hmac::Key>),
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algs: Vec<&str> = self.keys.iter().map(|(a, _)| a.as_str()).collect();
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("algs", &algs)
            .finish()
    }
}

impl Jwk {
    /// Returns the algorithms this key verifies.
    pub fn algs(&self) -> impl Iterator<Item = Alg> + '_ {
        self.keys.iter().map(|(a, _)| *a)
    }

    fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
        self.keys.iter().any(|(a, v)| {
            *a == alg
                && match v {
                    Verifier::Public(k) => k.verify_sig(msg, sig).is_ok(),
                    Verifier::Hmac(k) => hmac::verify(k, msg, sig).is_ok(),
                }
        })
    }

    /// Parses one JWK (an object), keeping only the algorithms of `allowed` it may serve.
    /// Returns `Ok(None)` for a key that serves none of them (an encryption key, another
    /// algorithm's key), and an error for a key that is broken.
    pub fn from_json(v: &serde_json::Value, allowed: &[Alg]) -> Result<Option<Self>, String> {
        let obj = v.as_object().ok_or("a JWK must be a JSON object")?;
        let text = |name: &str| -> Result<Option<&str>, String> {
            match obj.get(name) {
                None => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(format!("\"{name}\" must be a string")),
            }
        };
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let s = text(name)?.ok_or_else(|| format!("missing \"{name}\""))?;
            b64(s).ok_or_else(|| format!("\"{name}\" is not base64url"))
        };
        let kty = text("kty")?.ok_or("missing \"kty\"")?;
        let kid = text("kid")?.map(str::to_owned);
        if let Some(u) = text("use")? {
            if u != "sig" {
                return Ok(None);
            }
        }
        if let Some(ops) = obj.get("key_ops") {
            let ops = ops.as_array().ok_or("\"key_ops\" must be an array")?;
            if !ops.iter().any(|o| o.as_str() == Some("verify")) {
                return Ok(None);
            }
        }
        let pinned = match text("alg")? {
            None => None,
            Some(a) => match Alg::parse(a) {
                Some(a) => Some(a),
                // An algorithm we do not verify with (an encryption algorithm, "none"): the key
                // is not for us.
                None => return Ok(None),
            },
        };
        let candidates: Vec<Alg> = allowed
            .iter()
            .copied()
            .filter(|a| a.kty() == kty && pinned.is_none_or(|p| p == *a))
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::new();
        match kty {
            "RSA" => {
                let n = bytes("n")?;
                let e = bytes("e")?;
                if n.first() == Some(&0) || e.first() == Some(&0) {
                    return Err("RSA \"n\" and \"e\" must not have leading zeros".to_owned());
                }
                if n.len() * 8 < 2048 {
                    return Err(format!(
                        "RSA key of {} bits: at least 2048 are needed",
                        n.len() * 8
                    ));
                }
                let comps = RsaPublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                };
                for a in candidates {
                    if let Some(p) = a.rsa_params() {
                        let k = comps
                            .to_parsed_public_key(p)
                            .map_err(|e| format!("invalid RSA key: {e}"))?;
                        keys.push((a, Verifier::Public(k)));
                    }
                }
            }
            "EC" => {
                let crv = text("crv")?.ok_or("missing \"crv\"")?;
                let x = bytes("x")?;
                let y = bytes("y")?;
                for a in candidates {
                    let Some((name, size, alg)) = a.curve() else {
                        continue;
                    };
                    if name != crv {
                        continue;
                    }
                    if x.len() != size || y.len() != size {
                        return Err(format!("{crv} coordinates must be {size} bytes"));
                    }
                    let mut point = Vec::with_capacity(1 + 2 * size);
                    point.push(4);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    let k = ParsedPublicKey::new(alg, &point)
                        .map_err(|e| format!("invalid {crv} key: {e}"))?;
                    keys.push((a, Verifier::Public(k)));
                }
            }
            "OKP" => {
                if text("crv")? != Some("Ed25519") {
                    return Ok(None);
                }
                let x = bytes("x")?;
                if x.len() != 32 {
                    return Err("an Ed25519 key is 32 bytes".to_owned());
                }
                let k = ParsedPublicKey::new(&signature::ED25519, &x)
                    .map_err(|e| format!("invalid Ed25519 key: {e}"))?;
                keys.push((Alg::EdDSA, Verifier::Public(k)));
            }
            "oct" => {
                let k = bytes("k")?;
                for a in candidates {
                    let Some((alg, min)) = a.hmac() else { continue };
                    if k.len() < min {
                        // RFC 7518 §3.2: a key of the same size as the hash output or larger.
                        continue;
                    }
                    keys.push((a, Verifier::Hmac(Box::new(hmac::Key::new(alg, &k)))));
                }
            }
            _ => return Ok(None),
        }
        Ok((!keys.is_empty()).then_some(Self { kid, keys }))
    }
}

/// The keys of an identity provider.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS (`{"keys": [...]}`) or a single JWK, keeping the keys that serve one of
    /// `allowed`. A broken key is an error (a JWKS is configuration: it must be right); keys for
    /// other uses are skipped.
    pub fn from_json(text: &[u8], allowed: &[Alg]) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        let list: Vec<&serde_json::Value> = match v.get("keys") {
            Some(serde_json::Value::Array(keys)) => keys.iter().collect(),
            Some(_) => return Err("\"keys\" must be an array".to_owned()),
            None if v.get("kty").is_some() => vec![&v],
            None => return Err("neither a JWKS (\"keys\") nor a JWK (\"kty\")".to_owned()),
        };
        let mut keys = Vec::new();
        for (i, k) in list.iter().enumerate() {
            if let Some(jwk) = Jwk::from_json(k, allowed).map_err(|e| format!("keys[{i}]: {e}"))? {
                keys.push(jwk);
            }
        }
        Ok(Self { keys })
    }

    /// Builds a set from keys.
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }

    /// Returns the number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns true if there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Returns true if a key has this id.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// Why a token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwsError {
    /// Not a compact JWS: three base64url parts, a JSON object header.
    Malformed(&'static str),
    /// The header's `alg` is missing, `none`, unknown, or not allowed.
    Algorithm(String),
    /// The header has `crit` parameters.
    Critical,
    /// The header names a `kid` that no key has (the key set may be out of date).
    UnknownKid(String),
    /// No key verified the signature.
    BadSignature,
}

impl fmt::Display for JwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "malformed token: {m}"),
            Self::Algorithm(a) => write!(f, "algorithm \"{a}\" is not accepted"),
            Self::Critical => f.write_str("the token has critical header parameters"),
            Self::UnknownKid(k) => write!(f, "no key has kid \"{k}\""),
            Self::BadSignature => f.write_str("the signature does not verify"),
        }
    }
}

/// A verified token.
#[derive(Debug)]
pub struct Verified {
    /// The protected header.
    pub header: serde_json::Map<String, serde_json::Value>,
    /// The payload, as signed.
    pub payload: Vec<u8>,
    /// The algorithm.
    pub alg: Alg,
}

/// Returns true if `token` has the shape of a compact JWS (three parts), without verifying it.
pub fn looks_like_jws(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Verifies a compact JWS against `keys`, accepting only the algorithms in `allowed`.
pub fn verify(token: &str, keys: &KeySet, allowed: &[Alg]) -> Result<Verified, JwsError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwsError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("a compact JWS has three parts"));
    };
    if h.is_empty() || s.is_empty() {
        return Err(JwsError::Malformed("empty header or signature"));
    }
    let header_bytes = b64(h).ok_or(JwsError::Malformed("header is not base64url"))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header_bytes)
        .map_err(|_| JwsError::Malformed("header is not a JSON object"))?;
    let alg_name = match header.get("alg") {
        Some(serde_json::Value::String(a)) => a.as_str(),
        _ => return Err(JwsError::Algorithm(String::new())),
    };
    let alg = Alg::parse(alg_name)
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| JwsError::Algorithm(alg_name.to_owned()))?;
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err(JwsError::Critical);
    }
    let payload = b64(p).ok_or(JwsError::Malformed("payload is not base64url"))?;
    let sig = b64(s).ok_or(JwsError::Malformed("signature is not base64url"))?;
    let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
    let kid = match header.get("kid") {
        None => None,
        Some(serde_json::Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(JwsError::Malformed("kid is not a string")),
    };
    let mut candidates = keys
        .keys
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
        .peekable();
    if candidates.peek().is_none() {
        return Err(match kid {
            Some(k) => JwsError::UnknownKid(k.to_owned()),
            None => JwsError::BadSignature,
        });
    }
    // Without a kid every key for the algorithm is tried; a key set is small.
    if candidates.any(|k| k.verify(alg, signing_input, &sig)) {
        Ok(Verified {
            header,
            payload,
            alg,
        })
    } else {
        Err(JwsError::BadSignature)
    }
}

/// Decodes canonical, unpadded base64url.
pub fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Entry points for fuzzing, shared with the corpus replay test.
pub mod fuzzing {
    use super::*;

    /// Verifies arbitrary text as a token against a fixed HMAC key and a fixed JWKS text built
    /// from the input's second line. Invariant: no panic; a token that verifies has an allowed
    /// algorithm.
    #[allow(clippy::panic)]
    pub fn verify_token(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let (token, jwks) = text.split_once('\n').unwrap_or((&text, ""));
        let allowed = [Alg::HS256, Alg::RS256, Alg::ES256, Alg::EdDSA];
        let hmac_set = KeySet::new(vec![Jwk {
            kid: Some("k".to_owned()),
            keys: vec![(
                Alg::HS256,
                Verifier::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]))),
            )],
        }]);
        if let Ok(v) = verify(token, &hmac_set, &allowed) {
            assert!(allowed.contains(&v.alg), "{:?}", v.alg);
        }
        if let Ok(set) = KeySet::from_json(jwks.as_bytes(), &allowed) {
            let _ = verify(token, &set, &allowed);
        }
    }
}
