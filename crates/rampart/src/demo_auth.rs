//! The demo's credentials, made fresh at each start: a small PKI (a CA, the TLS listener's
//! certificate, a partner's client certificate), a JWT issuer (an ES256 key, its JWKS and two
//! user tokens) and an API key.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair as CertKey, KeyUsagePurpose,
};

/// The issuer every demo token names.
pub(crate) const ISSUER: &str = "https://id.demo.rampart/";

/// What the demo made, with the files written into its directory.
#[derive(Debug)]
pub(crate) struct DemoAuth {
    /// A token for user 1.
    pub(crate) token_user1: String,
    /// The partner application's API key.
    pub(crate) api_key: String,
    /// Its SHA-256, as the configuration holds it.
    pub(crate) api_key_sha256: String,
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn random_hex(n: usize) -> Result<String, String> {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "no randomness".to_owned())?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Makes the credentials and writes `ca.pem`, `server.pem`/`.key`, `partner.pem`/`.key` and
/// `jwks.json` into `dir`.
pub(crate) fn make(dir: &Path, now_secs: u64) -> Result<DemoAuth, String> {
    let e = |e: rcgen::Error| e.to_string();
    // The PKI.
    let ca_key = CertKey::generate().map_err(e)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Rampart demo CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|err| format!("{name}: {err}"))
    };
    write("ca.pem", ca_cert.pem())?;
    let issuer = Issuer::new(ca, ca_key);
    let server_key = CertKey::generate().map_err(e)?;
    let mut server =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(e)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer).map_err(e)?;
    write("server.pem", server_cert.pem())?;
    write("server.key", server_key.serialize_pem())?;
    let client_key = CertKey::generate().map_err(e)?;
    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    client
        .distinguished_name
        .push(DnType::CommonName, "demo-partner");
    client
        .distinguished_name
        .push(DnType::OrganizationName, "Rampart demo");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer).map_err(e)?;
    write("partner.pem", client_cert.pem())?;
    write("partner.key", client_key.serialize_pem())?;

    // The JWT issuer: an ES256 key, its JWKS, and tokens valid for a day.
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| "cannot make a key".to_owned())?;
    let p = key.public_key().as_ref();
    let jwks = serde_json::json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "kid": "demo-1", "alg": "ES256", "use": "sig",
        "x": b64(&p[1..33]), "y": b64(&p[33..65]),
    }] });
    write("jwks.json", jwks.to_string())?;
    let sign = |sub: &str| -> Result<String, String> {
        let header = serde_json::json!({ "alg": "ES256", "kid": "demo-1", "typ": "JWT" });
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": "demo-api", "sub": sub,
            "iat": now_secs, "exp": now_secs + 86_400, "scope": "users:read",
        });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = key
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| "cannot sign".to_owned())?;
        Ok(format!("{input}.{}", b64(sig.as_ref())))
    };
    let api_key = format!("demo-{}", random_hex(16)?);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, api_key.as_bytes());
    Ok(DemoAuth {
        token_user1: sign("1")?,
        api_key_sha256: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
        api_key,
    })
}
