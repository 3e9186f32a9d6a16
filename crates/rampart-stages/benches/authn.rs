//! Benches of what authentication costs per request: verifying a JWT (RS256, ES256, EdDSA:
//! the signature alone, and the provider's whole check with claims) and finding the consumer
//! of an API key among 10,000.
//!
//! ```sh
//! cargo bench -p rampart-stages --bench authn
//! ```
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use rampart_core::CompileCx;
use rampart_stages::authn::config::{AuthConfig, ConsumerConfig, CredentialConfig};
use rampart_stages::authn::consumers::Directory;
use rampart_stages::authn::jws::{self, Alg, KeySet};
use rampart_stages::authn::jwt::{ClaimMapping, JwtProvider, KeySource};

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// A token and the JWKS that verifies it, for one algorithm.
fn token_and_keys(alg: Alg) -> (String, String) {
    let rng = SystemRandom::new();
    let claims = serde_json::json!({
        "iss": "https://id.example.com/", "aud": "users-api", "sub": "user-42",
        "exp": 4_102_444_800u64, "iat": 1_700_000_000u64, "scope": "orders:read orders:write"
    });
    let header = serde_json::json!({ "alg": alg.as_str(), "kid": "k1", "typ": "JWT" });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let (sig, jwk) = match alg {
        Alg::RS256 => {
            let k = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
            let mut sig = vec![0; k.public_modulus_len()];
            k.sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
            let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
            (
                sig,
                serde_json::json!({ "kty": "RSA", "n": b64(&c.n), "e": b64(&c.e) }),
            )
        }
        Alg::ES256 => {
            let k = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            let sig = k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec();
            let p = k.public_key().as_ref();
            (
                sig,
                serde_json::json!({ "kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..]) }),
            )
        }
        _ => {
            let k = Ed25519KeyPair::generate().unwrap();
            let sig = k.sign(input.as_bytes()).as_ref().to_vec();
            (
                sig,
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref()) }),
            )
        }
    };
    let mut jwk = jwk;
    jwk["kid"] = "k1".into();
    (
        format!("{input}.{}", b64(&sig)),
        serde_json::json!({ "keys": [jwk] }).to_string(),
    )
}

fn bench_jwt(c: &mut Criterion) {
    let mut g = c.benchmark_group("jwt_verify");
    for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
        let (token, jwks) = token_and_keys(alg);
        let keys = KeySet::from_json(jwks.as_bytes(), &[alg]).unwrap();
        assert!(jws::verify(&token, &keys, &[alg]).is_ok());
        g.bench_function(format!("{alg}/signature"), |b| {
            b.iter(|| jws::verify(black_box(&token), &keys, &[alg]).unwrap());
        });
        let provider = JwtProvider {
            name: "corp".to_owned(),
            issuer: Some("https://id.example.com/".to_owned()),
            audiences: vec!["users-api".to_owned()],
            algorithms: vec![alg],
            leeway_ms: 30_000,
            required_claims: vec!["sub".to_owned()],
            allow_no_expiry: false,
            mapping: ClaimMapping {
                consumer: "sub".to_owned(),
                groups: None,
                scopes: "scope".to_owned(),
            },
            keys: Arc::new(KeySource::fixed(
                "corp",
                KeySet::from_json(jwks.as_bytes(), &[alg]).unwrap(),
                vec![alg],
            )),
        };
        let now = 1_800_000_000_000;
        assert!(provider.verify(&token, now).is_ok());
        g.bench_function(format!("{alg}/token_with_claims"), |b| {
            b.iter(|| provider.verify(black_box(&token), now).unwrap());
        });
    }
    g.finish();
}

fn bench_api_key(c: &mut Criterion) {
    let consumers: Vec<ConsumerConfig> = (0..10_000)
        .map(|i| ConsumerConfig {
            name: format!("consumer-{i}"),
            groups: vec![],
            credentials: vec![CredentialConfig::ApiKey {
                key_sha256: None,
                key: Some(format!("key-{i:08}-abcdefghijklmnop")),
                keys_file: None,
            }],
        })
        .collect();
    let mut cx = CompileCx::new();
    let dir = Directory::compile(&consumers, &AuthConfig::default(), Path::new("."), &mut cx);
    assert!(cx.is_ok());
    let hit = "key-00004242-abcdefghijklmnop";
    assert!(dir.by_api_key(hit.as_bytes()).is_some());
    let mut g = c.benchmark_group("api_key_lookup");
    g.bench_function("10k_keys/hit", |b| {
        b.iter(|| dir.by_api_key(black_box(hit.as_bytes())).unwrap());
    });
    g.bench_function("10k_keys/miss", |b| {
        b.iter(|| dir.by_api_key(black_box(b"key-99999999-abcdefghijklmnop")));
    });
    g.finish();
}

criterion_group!(benches, bench_jwt, bench_api_key);
criterion_main!(benches);
