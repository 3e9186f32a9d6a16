//! JWS verification against vectors others wrote: every Wycheproof JSON Web Signature vector
//! (../shared/corpora/jose/wycheproof) accepted or rejected as it says, and the RFC 7520 JOSE
//! cookbook signatures verified. The counts are reported in docs/auth.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use rampart_stages::authn::jws::{self, Alg, KeySet};

fn corpus(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/jose")
        .join(rel);
    assert!(
        p.exists(),
        "corpus not found: {} (the tests read ../shared/corpora)",
        p.display()
    );
    p
}

fn read_json(p: PathBuf) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

/// Vectors whose data is wrong, each judged the other way here on purpose. Wycheproof's own Java
/// harness lists the same ones as failures of the reference implementation.
const DEFECTIVE: &[(u64, &str)] = &[
    (346, "RFC 7520 figure 20: the token is PS384 but the key's \"alg\" says PS256; a key's alg is binding (RFC 7517 4.4)"),
    (347, "RFC 7520 figure 27: the key's \"alg\" is \"ES521\", not an algorithm (ES512 is); the key is not used"),
    (350, "as 346, with key_ops"),
    (351, "as 347, with key_ops"),
    (367, "\"invalidBase64Padding\": the padding was lost in the vector, which is now the valid token of tcId 357"),
    (370, "\"invalidBase64PaddingInPayload\": as 367"),
    (372, "a \"?\" inside the header's base64url, marked valid: strict base64url refuses it (RFC 7515 2)"),
    (373, "a \"?\" inside the payload's base64url, marked valid: as 372"),
];

#[test]
fn every_wycheproof_signature_vector_is_judged_as_it_says() {
    let doc = read_json(corpus(
        "wycheproof/testvectors_v1/json_web_signature_test.json",
    ));
    let allowed = Alg::ALL;
    let (mut valid_ok, mut invalid_ok, mut defects, mut total) = (0, 0, 0, 0);
    let mut wrong = Vec::new();
    for g in doc["testGroups"].as_array().unwrap() {
        let key = g.get("public").or_else(|| g.get("private")).unwrap();
        let set = KeySet::from_json(key.to_string().as_bytes(), &allowed);
        for t in g["tests"].as_array().unwrap() {
            total += 1;
            let expect_valid = t["result"] == "valid";
            let token = t["jws"].as_str().unwrap_or("");
            let got = match &set {
                Ok(set) => jws::verify(token, set, &allowed)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("key rejected: {e}")),
            };
            let id = t["tcId"].as_u64().unwrap();
            let defective = DEFECTIVE.iter().any(|(d, _)| *d == id);
            match (expect_valid, &got) {
                (true, Ok(())) if !defective => valid_ok += 1,
                (false, Err(_)) if !defective => invalid_ok += 1,
                (true, Err(_)) | (false, Ok(())) if defective => defects += 1,
                _ => wrong.push(format!(
                    "tcId {} ({}, {}): expected {}, got {:?}",
                    t["tcId"], g["comment"], t["comment"], t["result"], got
                )),
            }
        }
    }
    println!(
        "wycheproof JWS: {total} vectors: {valid_ok} valid accepted, {invalid_ok} invalid rejected, {defects} defective vectors judged the other way"
    );
    assert_eq!(total, 401);
    assert_eq!(defects, DEFECTIVE.len(), "{wrong:?}");
    assert!(
        wrong.is_empty(),
        "{} vectors judged wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The RFC 7520 signatures in compact form (RS256, PS384, ES512, HS256) and RFC 8037's Ed25519
/// one: each verifies with the cookbook's key and gives the cookbook's payload; the same token
/// with one signature byte changed does not.
#[test]
fn the_jose_cookbook_signatures_verify() {
    let files = [
        "cookbook/jws/4_1.rsa_v15_signature.json",
        "cookbook/jws/4_2.rsa-pss_signature.json",
        "cookbook/jws/4_3.ecdsa_signature.json",
        "cookbook/jws/4_4.hmac-sha2_integrity_protection.json",
        "cookbook/curve25519/jws.json",
    ];
    for f in files {
        let d = read_json(corpus(f));
        let alg = Alg::parse(d["input"]["alg"].as_str().unwrap()).unwrap();
        let keys = KeySet::from_json(d["input"]["key"].to_string().as_bytes(), &[alg]).unwrap();
        assert_eq!(keys.len(), 1, "{f}");
        let token = d["output"]["compact"].as_str().unwrap();
        let v = jws::verify(token, &keys, &[alg]).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(v.alg, alg);
        assert_eq!(
            v.payload,
            d["input"]["payload"].as_str().unwrap().as_bytes(),
            "{f}"
        );
        // Only the algorithm the token names, and only if allowed.
        let others: Vec<Alg> = Alg::ALL.into_iter().filter(|a| *a != alg).collect();
        assert!(jws::verify(token, &keys, &others).is_err(), "{f}");
        // One character of the signature changed.
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut sig: Vec<u8> = sig.bytes().collect();
        sig[4] = if sig[4] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{head}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(
            jws::verify(&tampered, &keys, &[alg]).unwrap_err(),
            jws::JwsError::BadSignature,
            "{f}"
        );
    }
}

/// What a bearer token must not be: detached content (RFC 7520 4.5), and every compact JWE of
/// the cookbook (five parts: encrypted, not signed).
#[test]
fn detached_signatures_and_encrypted_tokens_are_refused() {
    let d = read_json(corpus(
        "cookbook/jws/4_5.signature_with_detached_content.json",
    ));
    let keys = KeySet::from_json(d["input"]["key"].to_string().as_bytes(), &[Alg::HS256]).unwrap();
    assert!(jws::verify(
        d["output"]["compact"].as_str().unwrap(),
        &keys,
        &[Alg::HS256]
    )
    .is_err());
    let mut jwe = 0;
    for e in std::fs::read_dir(corpus("cookbook/jwe")).unwrap() {
        let d = read_json(e.unwrap().path());
        if let Some(token) = d["output"]["compact"].as_str() {
            jwe += 1;
            assert!(matches!(
                jws::verify(token, &keys, &Alg::ALL),
                Err(jws::JwsError::Malformed(_))
            ));
        }
    }
    assert_eq!(jwe, 9);
}
