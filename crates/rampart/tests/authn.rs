//! Authentication through the proxy, with real cryptography: API keys, HTTP basic (config and
//! htpasswd), mutual TLS (with a revoked certificate), JWTs of every algorithm against a JWKS
//! file and a JWKS URL, OAuth2 introspection against a loopback authorization server, the
//! lockout, and identity headers no client can forge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use rampart_test_support::{
    hs256, jwks, tls_client_config, tls_connect, HttpClient, TestGateway, TestIdp, TestPki,
    TestUpstream, TokenSigner, IDP_CLIENT,
};

/// sha256("mobile-key-0123456789abcdef")
fn sha256_hex(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn req(url: String, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

fn challenges(r: &rampart_test_support::Collected) -> Vec<String> {
    r.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn api_keys_and_basic_users() {
    let up = TestUpstream::start().await;
    let argon = rampart_stages::authn::password::hash_argon2id(b"alice-password").unwrap();
    let dir = rampart_test_support::TempDir::new("authn-basic");
    // Written by Apache's htpasswd: `htpasswd -nbB -C 5 bob password` and `htpasswd -nbs carol password`.
    dir.write(
        "users.htpasswd",
        "bob:$2y$05$B3rn6Qn7IQCzcTbIwo/yEuop5E4N9YRBjYWGPt8cgRjyI.WjwX/YS\ncarol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
    );
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{up}"] }}
consumers:
  - name: mobile-app
    groups: [partners, mobile]
    credentials:
      - {{ type: api_key, key_sha256: "{key}" }}
  - name: alice
    groups: [admins]
    credentials:
      - {{ type: basic, password_hash: "{argon}" }}
  - name: bob
    groups: [staff]
  - name: batch-jobs
    credentials:
      - {{ type: api_key, keys_file: "{keys_file}" }}
auth:
  htpasswd: ["{htpasswd}"]
  lockout: {{ max_failures: 1000 }}
events: {{ sqlite: "off", jsonl: events.jsonl }}
apis:
  - name: keys
    base_path: /keys
    strip_base_path: true
    upstream: app
    authn: {{ methods: [api_key], api_key: {{ header: x-api-key, query: api_key }} }}
  - name: users
    base_path: /users
    strip_base_path: true
    upstream: app
    authn: {{ methods: [basic, api_key], realm: "Users API" }}
  - name: web
    base_path: /web
    strip_base_path: true
    upstream: app
    authn: {{ methods: [api_key], api_key: {{ header: null, cookie: session_key }} }}
"#,
        up = up.url(),
        key = sha256_hex("mobile-key-0123456789abcdef"),
        htpasswd = dir.path().join("users.htpasswd").display(),
        keys_file = dir
            .write(
                "batch.keys",
                format!(
                    "# batch job keys\n{}  # job 1\n\n{}\n",
                    sha256_hex("batch-job-1-key-0123456789"),
                    sha256_hex("batch-job-2-key-0123456789")
                ),
            )
            .display(),
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();

    // A valid key: through, with the identity upstream and the key gone.
    let r = c
        .send(req(
            gw.url("public", "/keys/echo"),
            &[
                ("x-api-key", "mobile-key-0123456789abcdef"),
                // A client trying to claim another identity: removed.
                ("x-consumer", "admin"),
                ("x-consumer-groups", "admins"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &r.json()["headers"];
    assert_eq!(seen["x-consumer"], "mobile-app");
    assert_eq!(seen["x-consumer-groups"], "partners,mobile");
    assert_eq!(seen["x-authenticated-by"], "api_key");
    assert!(
        seen.get("x-api-key").is_none(),
        "the key reached the upstream"
    );

    // In the query: accepted, and stripped from what the upstream sees.
    let r = c
        .get(&gw.url(
            "public",
            "/keys/echo?page=2&api_key=mobile-key-0123456789abcdef&sort=asc",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/echo?page=2&sort=asc");

    // A wrong key and no key: 401 with the API's challenge, nothing upstream.
    let before = up.requests();
    let r = c
        .send(req(
            gw.url("public", "/keys/echo"),
            &[("x-api-key", "guess-0123456789abcdef")],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthenticated");
    assert_eq!(challenges(&r), ["ApiKey realm=\"keys\""]);
    let r = c.get(&gw.url("public", "/keys/echo")).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(up.requests(), before);

    // Basic: argon2 from the config, bcrypt and {SHA} from an htpasswd file.
    let basic = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
    for (user, pass, groups) in [
        ("alice", "alice-password", "admins"),
        ("bob", "password", "staff"),
        ("carol", "password", ""),
    ] {
        let r = c
            .send(req(
                gw.url("public", "/users/echo"),
                &[("authorization", &basic(user, pass))],
            ))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{user}: {}", r.text());
        assert_eq!(r.json()["headers"]["x-consumer"], user);
        assert_eq!(
            r.json()["headers"]["x-consumer-groups"]
                .as_str()
                .unwrap_or(""),
            groups
        );
        // Twice: the second is answered from the success cache, with the same outcome.
        let r = c
            .send(req(
                gw.url("public", "/users/echo"),
                &[("authorization", &basic(user, pass))],
            ))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    for (user, pass) in [("alice", "wrong"), ("nobody", "password"), ("bob", "")] {
        let r = c
            .send(req(
                gw.url("public", "/users/echo"),
                &[("authorization", &basic(user, pass))],
            ))
            .await
            .unwrap();
        assert_eq!(r.status, 401, "{user}");
        assert_eq!(
            challenges(&r),
            [
                "Basic realm=\"Users API\", charset=\"UTF-8\"",
                "ApiKey realm=\"Users API\""
            ]
        );
    }
    // The second method of the list.
    let r = c
        .send(req(
            gw.url("public", "/users/echo"),
            &[("x-api-key", "mobile-key-0123456789abcdef")],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    // Keys from a file of digests, and a key in a cookie (removed, the other cookies kept).
    let r = c
        .send(req(
            gw.url("public", "/keys/echo"),
            &[("x-api-key", "batch-job-2-key-0123456789")],
        ))
        .await
        .unwrap();
    assert_eq!(r.json()["headers"]["x-consumer"], "batch-jobs");
    let r = c
        .send(req(
            gw.url("public", "/web/echo"),
            &[(
                "cookie",
                "theme=dark; session_key=mobile-key-0123456789abcdef; lang=en",
            )],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-consumer"], "mobile-app");
    assert_eq!(r.json()["headers"]["cookie"], "theme=dark; lang=en");
    let r = c
        .send(req(
            gw.url("public", "/web/echo"),
            &[("x-api-key", "mobile-key-0123456789abcdef")],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 401, "this API reads keys from the cookie only");

    // Events: each refusal is an event of the authn stage, with what failed (never sent to
    // the client) and no secret in it.
    gw.gateway.events().flush().await;
    let jsonl = std::fs::read_to_string(gw.dir.path().join("events.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let authn: Vec<&serde_json::Value> = events.iter().filter(|e| e["stage"] == "authn").collect();
    assert_eq!(authn.len(), 6, "{jsonl}");
    assert!(authn
        .iter()
        .all(|e| e["action"] == "block" && e["status"] == 401));
    assert!(
        authn.iter().any(|e| e["detail"] == "unknown API key"),
        "{jsonl}"
    );
    assert!(
        authn
            .iter()
            .any(|e| e["detail"] == "wrong password for \"alice\""),
        "{jsonl}"
    );
    assert!(!jsonl.contains("guess-0123456789abcdef") && !jsonl.contains("alice-password"));
    gw.shutdown().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_client_out() {
    let up = TestUpstream::start().await;
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{up}"] }}
consumers:
  - {{ name: app, credentials: [{{ type: api_key, key: "the-right-key-0123456789" }}] }}
auth:
  lockout: {{ max_failures: 3, window_secs: 60, lockout_secs: 120 }}
apis:
  - {{ name: a, upstream: app, authn: {{ methods: [api_key] }} }}
"#,
        up = up.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();
    let key = |k: &str| req(gw.url("public", "/json"), &[("x-api-key", k)]);
    assert_eq!(
        c.send(key("the-right-key-0123456789"))
            .await
            .unwrap()
            .status,
        200
    );
    for i in 0..3 {
        let r = c
            .send(key(&format!("wrong-key-{i}-000000000")))
            .await
            .unwrap();
        assert_eq!(r.status, 401, "attempt {i}");
    }
    // Locked out: even the right key waits, and is told for how long.
    let r = c.send(key("the-right-key-0123456789")).await.unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"], "rate_limited");
    assert_eq!(r.headers["retry-after"], "120");
    // Another client (by its forwarded address, from a trusted proxy) is not.
    gw.shutdown().await;
}

#[tokio::test]
async fn client_certificates_map_to_consumers() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Clients CA");
    let (cert, key) = pki.server(&["localhost"]);
    let by_san = pki.client_with_serial("app-1", &["spiffe://example.org/app-1"], Some(2001));
    let by_subject = pki.client_with_serial("app-2", &[], Some(2002));
    let unknown = pki.client_with_serial("app-3", &[], Some(2003));
    let revoked = pki.client_with_serial("app-4", &[], Some(2004));
    let crl = pki.crl(&[2004]);
    let yaml = format!(
        r#"
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates: [{{ cert: "{cert}", key: "{key}" }}]
      client_auth: {{ mode: optional, ca: "{ca}", crls: ["{crl}"] }}
upstreams:
  app: {{ targets: ["{up}"] }}
consumers:
  - {{ name: app-one, groups: [workers], credentials: [{{ type: mtls, san: "spiffe://example.org/app-1" }}] }}
  - {{ name: app-two, credentials: [{{ type: mtls, subject: "O=Example,CN=app-2" }}] }}
apis:
  - {{ name: a, upstream: app, authn: {{ methods: [mtls] }} }}
"#,
        cert = cert.display(),
        key = key.display(),
        ca = pki.ca_path.display(),
        crl = crl.display(),
        up = up.url(),
    );
    let gw = TestGateway::start(&yaml).await;
    let addr = gw.addr("tls");
    let get = || {
        Request::get("https://localhost/echo")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    for (id, consumer) in [(&by_san, "app-one"), (&by_subject, "app-two")] {
        let cfg = tls_client_config(&pki.ca_pem, Some(id), &["http/1.1"]);
        let (r, _, _) = tls_connect(addr, "localhost", cfg, get()).await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{consumer}: {}", r.text());
        assert_eq!(r.json()["headers"]["x-consumer"], consumer);
        assert_eq!(r.json()["headers"]["x-authenticated-by"], "mtls");
    }
    // Verified, but no consumer has it: 401. No certificate at all: 401.
    let cfg = tls_client_config(&pki.ca_pem, Some(&unknown), &["http/1.1"]);
    let (r, _, _) = tls_connect(addr, "localhost", cfg, get()).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let cfg = tls_client_config(&pki.ca_pem, None, &["http/1.1"]);
    let (r, _, _) = tls_connect(addr, "localhost", cfg, get()).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Revoked: the handshake itself fails.
    let cfg = tls_client_config(&pki.ca_pem, Some(&revoked), &["http/1.1"]);
    assert!(tls_connect(addr, "localhost", cfg, get()).await.is_err());
    gw.shutdown().await;
}

const ALGS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "EdDSA",
];

#[tokio::test]
async fn jwts_of_every_algorithm_and_every_way_to_be_wrong() {
    let up = TestUpstream::start().await;
    let signers: Vec<TokenSigner> = ALGS
        .iter()
        .map(|a| TokenSigner::new(a, &format!("key-{a}")))
        .collect();
    let dir = rampart_test_support::TempDir::new("authn-jwt");
    let refs: Vec<&TokenSigner> = signers.iter().collect();
    let jwks_path = dir.write("jwks.json", jwks(&refs));
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{up}"] }}
consumers:
  - {{ name: user-42, groups: [beta] }}
identity_providers:
  corp:
    type: jwt
    issuer: "https://id.example.com/"
    audiences: [users-api]
    jwks: "file:{jwks}"
    algorithms: [{algs}]
    leeway_secs: 30
    required_claims: [sub]
    groups_claim: roles
auth:
  forward: {{ claims: {{ x-user-id: sub }} }}
  lockout: {{ max_failures: 1000 }}
apis:
  - {{ name: a, upstream: app, authn: {{ methods: [corp] }} }}
"#,
        up = up.url(),
        jwks = jwks_path.display(),
        algs = ALGS.join(", "),
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();
    let t = now();
    let good = serde_json::json!({
        "iss": "https://id.example.com/", "aud": ["other", "users-api"], "sub": "user-42",
        "exp": t + 300, "nbf": t - 10, "iat": t - 10, "roles": ["reader"], "scope": "orders:read orders:write"
    });
    let bearer = |tok: &str| {
        req(
            gw.url("public", "/echo"),
            &[("authorization", &format!("Bearer {tok}"))],
        )
    };
    for s in &signers {
        let r = c.send(bearer(&s.sign(&good))).await.unwrap();
        assert_eq!(r.status, 200, "{}: {}", s.alg, r.text());
        let h = &r.json()["headers"];
        assert_eq!(h["x-consumer"], "user-42", "{}", s.alg);
        assert_eq!(h["x-consumer-groups"], "reader,beta", "{}", s.alg);
        assert_eq!(h["x-user-id"], "user-42");
        assert_eq!(h["x-authenticated-by"], "jwt");
    }

    let rs = &signers[3];
    let with = |patch: serde_json::Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    // Algorithm confusion: the RS256 key's public bytes used as an HS256 secret, kid of the RSA key.
    let confused = {
        let header = serde_json::json!({ "alg": "HS256", "kid": rs.kid });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(good.to_string())
        );
        let sig = hs256(&rs.public_key_bytes(), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    };
    let stranger = TokenSigner::new("RS256", &rs.kid);
    let cases: Vec<(&str, String)> = vec![
        ("alg none", unsigned),
        ("algorithm confusion", confused),
        (
            "expired",
            rs.sign(&with(serde_json::json!({ "exp": t - 120 }))),
        ),
        (
            "not yet valid",
            rs.sign(&with(serde_json::json!({ "nbf": t + 600 }))),
        ),
        (
            "issued in the future",
            rs.sign(&with(serde_json::json!({ "iat": t + 600 }))),
        ),
        ("no exp", rs.sign(&with(serde_json::json!({ "exp": null })))),
        (
            "wrong issuer",
            rs.sign(&with(serde_json::json!({ "iss": "https://evil.example/" }))),
        ),
        (
            "wrong audience",
            rs.sign(&with(serde_json::json!({ "aud": "another-api" }))),
        ),
        (
            "missing required claim",
            rs.sign(&with(serde_json::json!({ "sub": null }))),
        ),
        (
            "signed by another key with the same kid",
            stranger.sign(&good),
        ),
        (
            "unknown kid",
            TokenSigner::new("ES256", "key-unknown").sign(&good),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, tok) in cases {
        let r = c.send(bearer(&tok)).await.unwrap();
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_eq!(
            challenges(&r),
            ["Bearer realm=\"a\", error=\"invalid_token\""],
            "{what}"
        );
    }
    // Within the leeway: accepted.
    let r = c
        .send(bearer(
            &rs.sign(&with(serde_json::json!({ "exp": t - 10 }))),
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // No token: a challenge without an error.
    let r = c.get(&gw.url("public", "/echo")).await.unwrap();
    assert_eq!(challenges(&r), ["Bearer realm=\"a\""]);
    gw.shutdown().await;
}

#[tokio::test]
async fn jwks_urls_are_fetched_in_the_background_and_on_unknown_kids() {
    let up = TestUpstream::start().await;
    let idp = TestIdp::start().await;
    let first = TokenSigner::new("ES256", "2026-01");
    idp.set_jwks(&jwks(&[&first]), Some("max-age=3600"));
    let yaml = |on_error: &str| {
        format!(
            r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{up}"] }}
identity_providers:
  corp: {{ type: jwt, jwks: "{url}", algorithms: [ES256], unknown_kid_refresh_secs: 1 }}
auth:
  lockout: {{ max_failures: 1000 }}
apis:
  - {{ name: a, upstream: app, authn: {{ methods: [corp], on_error: {on_error} }} }}
"#,
            up = up.url(),
            url = idp.jwks_url(),
        )
    };
    let gw = TestGateway::start(&yaml("deny")).await;
    let c = HttpClient::new();
    let claims = serde_json::json!({ "sub": "svc", "exp": now() + 600 });
    let bearer = |tok: &str| {
        req(
            gw.url("public", "/echo"),
            &[("authorization", &format!("Bearer {tok}"))],
        )
    };
    // The keys were fetched before serving.
    assert_eq!(
        c.send(bearer(&first.sign(&claims))).await.unwrap().status,
        200
    );
    assert_eq!(idp.jwks_hits(), 1);

    // The issuer rotates: a token with a new kid is refused once, and makes the gateway fetch
    // the JWKS in the background (not while the request waits).
    let second = TokenSigner::new("ES256", "2026-02");
    idp.set_jwks(&jwks(&[&first, &second]), Some("max-age=3600"));
    let tok = second.sign(&claims);
    assert_eq!(c.send(bearer(&tok)).await.unwrap().status, 401);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if c.send(bearer(&tok)).await.unwrap().status == 200 {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "the new key was never fetched ({} fetches)",
        idp.jwks_hits()
    );
    // Unknown kids do not make the gateway hammer the issuer: at most one fetch per second.
    let hits = idp.jwks_hits();
    let unknown = TokenSigner::new("ES256", "nope").sign(&claims);
    for _ in 0..20 {
        assert_eq!(c.send(bearer(&unknown)).await.unwrap().status, 401);
    }
    assert!(
        idp.jwks_hits() <= hits + 2,
        "{} fetches",
        idp.jwks_hits() - hits
    );
    gw.shutdown().await;

    // The JWKS server is down when the gateway starts: each API's on_error applies.
    let idp_down = TestIdp::start().await;
    idp_down.set_down(true);
    let down_yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{up}"] }}
identity_providers:
  corp: {{ type: jwt, jwks: "{url}", algorithms: [ES256] }}
apis:
  - {{ name: deny, base_path: /deny, strip_base_path: true, upstream: app, authn: {{ methods: [corp] }} }}
  - {{ name: allow, base_path: /allow, strip_base_path: true, upstream: app, authn: {{ methods: [corp], on_error: allow }} }}
"#,
        up = up.url(),
        url = idp_down.jwks_url(),
    );
    let gw = TestGateway::start(&down_yaml).await;
    let token = format!("Bearer {}", first.sign(&claims));
    let r = c
        .send(req(
            gw.url("public", "/deny/echo"),
            &[("authorization", &token)],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "unavailable");
    let r = c
        .send(req(
            gw.url("public", "/allow/echo"),
            &[("authorization", &token)],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "on_error: allow lets the request through");
    assert!(r.json()["headers"].get("x-consumer").is_none());
    // Once the issuer is back, its keys are fetched (retried with a short backoff).
    idp_down.set_jwks(&jwks(&[&first]), None);
    idp_down.set_down(false);
    let mut ok = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = c
            .send(req(
                gw.url("public", "/deny/echo"),
                &[("authorization", &token)],
            ))
            .await
            .unwrap();
        if r.status == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "the keys were not fetched once the issuer came back");
    gw.shutdown().await;
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_cached() {
    let up = TestUpstream::start().await;
    let idp = TestIdp::start().await;
    let t = now();
    idp.set_token(
        "opaque-good",
        serde_json::json!({ "active": true, "sub": "svc-7", "scope": "a b", "exp": t + 600, "aud": "api" }),
    );
    idp.set_token(
        "opaque-other-aud",
        serde_json::json!({ "active": true, "sub": "x", "aud": "other" }),
    );
    idp.set_token(
        "opaque-expired",
        serde_json::json!({ "active": true, "sub": "x", "exp": t - 5 }),
    );
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{up}"] }}
identity_providers:
  oauth:
    type: introspection
    url: "{url}"
    client_id: {id}
    client_secret: {secret}
    audiences: [api]
    negative_cache_secs: 60
apis:
  - {{ name: a, upstream: app, authn: {{ methods: [oauth] }} }}
"#,
        up = up.url(),
        url = idp.introspection_url(),
        id = IDP_CLIENT.0,
        secret = IDP_CLIENT.1,
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();
    let bearer = |tok: &str| {
        req(
            gw.url("public", "/echo"),
            &[("authorization", &format!("Bearer {tok}"))],
        )
    };
    let r = c.send(bearer("opaque-good")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-consumer"], "svc-7");
    assert_eq!(r.json()["headers"]["x-authenticated-by"], "introspection");
    for tok in ["opaque-unknown", "opaque-other-aud", "opaque-expired"] {
        let r = c.send(bearer(tok)).await.unwrap();
        assert_eq!(r.status, 401, "{tok}");
    }
    // Cached: positive and negative answers are not asked again.
    let hits = idp.introspect_hits();
    for tok in ["opaque-good", "opaque-unknown"] {
        c.send(bearer(tok)).await.unwrap();
    }
    assert_eq!(idp.introspect_hits(), hits);
    // The endpoint goes down: known answers still serve, a new token gets on_error (deny: 503).
    idp.set_down(true);
    assert_eq!(c.send(bearer("opaque-good")).await.unwrap().status, 200);
    let r = c.send(bearer("opaque-new")).await.unwrap();
    assert_eq!(r.status, 503);
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_authentication_config_is_reported_whole() {
    let dir = rampart_test_support::TempDir::new("authn-bad");
    let path = dir.write(
        "bad.yaml",
        r#"listeners:
  - { name: public, bind: 127.0.0.1:0 }
upstreams:
  app: { targets: ["http://127.0.0.1:1"] }
consumers:
  - { name: a, credentials: [{ type: api_key, key_sha256: "abc" }] }
identity_providers:
  corp: { type: jwt, jwks: "http://id.example.com/jwks", algorithms: [RS256, none] }
apis:
  - { name: a, upstream: app, authn: { methods: [copr, basic] } }
"#,
    );
    let err = rampart_config::load_file(&path).unwrap_err().render();
    for want in [
        "not a SHA-256 digest",
        "is plain HTTP",
        "\"none\" (unsigned tokens) is never accepted",
        "unknown method or identity provider \"copr\"",
        "did you mean \"corp\"?",
        "no consumer has a basic credential",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
